import { TransientTransactionError, TxkitError, UnknownCommitResultError } from './errors.js';
import type { Classification } from './errors.js';
import type { BackendName } from './types.js';

/** Where an injected fault strikes: before begin, after the callback returned, or in place of the commit. */
export type FaultPoint = 'begin' | 'callback' | 'commit';

/** For a `commit-unknown` fault: what was lost, the commit's reply (it was applied) or its request (it never arrived). */
export type LostCommitPart = 'reply' | 'request';

export interface FaultPlan {
  readonly on: FaultPoint;
  readonly as: Classification;
  readonly lost: LostCommitPart;
  remaining: number;
  injected: number;
  /** Strike at every `every`-th chance (1: each one in a row). */
  readonly every: number;
  chances: number;
}

/**
 * Faults the core raises at its own seams, so every backend is tested through
 * the same lifecycle code. Empty in production: one array length check per seam.
 */
export class FaultRegistry {
  readonly plans: FaultPlan[] = [];

  /** Throws the planned error for `point`, if any plan still has faults left. */
  raise(point: FaultPoint, backend: BackendName): void {
    const fault = this.take(point, backend);
    if (fault !== undefined) throw fault.error;
  }

  /**
   * The planned fault for `point`, if any plan still has faults left, for the
   * caller to raise where it belongs: a commit whose reply is lost is raised
   * after the native commit was sent. `only` limits it to plans of one kind.
   */
  take(
    point: FaultPoint,
    backend: BackendName,
    only?: Classification,
  ): { error: Error; lost: LostCommitPart | undefined } | undefined {
    if (this.plans.length === 0) return undefined;
    const plan = this.plans.find(
      (p) => p.on === point && p.remaining > 0 && (only === undefined || p.as === only) && ++p.chances % p.every === 0,
    );
    if (plan === undefined) return undefined;
    plan.remaining -= 1;
    plan.injected += 1;
    if (plan.remaining === 0) this.plans.splice(this.plans.indexOf(plan), 1);
    const what = `injected ${plan.as} fault at ${point} (txkit/testing injectFaults)`;
    if (plan.as === 'transient') return { error: new TransientTransactionError(what, { backend, code: 'INJECTED_TRANSIENT' }), lost: undefined };
    if (plan.as === 'commit-unknown') {
      const error = new UnknownCommitResultError(`${what}: the commit's ${plan.lost} was lost`, { backend, code: 'INJECTED_COMMIT_UNKNOWN' });
      return { error, lost: plan.lost };
    }
    return { error: new TxkitError('INJECTED_FATAL', what, { backend }), lost: undefined };
  }
}
