import { ConfigError } from '../core/index.js';
import type { Classification, TransactionContext } from '../core/index.js';
import { faultRegistryOf } from '../core/context.js';
import type { FaultPlan, FaultPoint, LostCommitPart } from '../core/faults.js';

/** What {@link injectFaults} should raise, where and how often. */
export interface FaultSpec {
  /** Where the fault strikes: before begin, after the callback returned, or in place of the commit. */
  on: FaultPoint;
  /** What the fault is judged as; `commit-unknown` (at `commit` only) makes the commit's outcome unknown, see `lost`. */
  as: Classification;
  /**
   * For `commit-unknown`: what was lost. `reply` (the default): the native
   * commit was sent and applied, and its answer never came, so the adapter's
   * `resolveCommit` or `recommit` must find it committed and not apply it twice.
   * `request`: the commit never reached the backend, so `resolveCommit` must
   * find it not committed, or `recommit` must apply it. An adapter with neither
   * gives the caller UnknownCommitResultError, as a real lost commit would.
   * @default 'reply'
   */
  lost?: LostCommitPart;
  /** How many faults in all. @default 1 */
  times?: number;
  /** Strike at every `every`-th begin/callback/commit instead of each one in a row, to spread faults out. @default 1 */
  every?: number;
}

/** A running fault plan returned by {@link injectFaults}. */
export interface FaultInjection {
  /** Faults raised so far. */
  readonly injected: number;
  /** Faults still to raise. */
  readonly remaining: number;
  /** Stops raising the rest. */
  clear(): void;
}

const POINTS: readonly FaultPoint[] = ['begin', 'callback', 'commit'];
const KINDS: readonly Classification[] = ['transient', 'commit-unknown', 'fatal'];

/**
 * Makes the next `times` begins, callbacks or commits of `ctx` (or every
 * `every`-th of them) fail as the given kind, through the same code path real
 * backend errors take: `transient` raises TransientTransactionError (code
 * INJECTED_TRANSIENT), `commit-unknown` UnknownCommitResultError (code
 * INJECTED_COMMIT_UNKNOWN) after the native commit was sent (or instead of
 * sending it, with `lost: 'request'`), so the adapter's own commit recovery
 * runs, and `fatal` a TxkitError (code INJECTED_FATAL).
 * Plans stack; the first plan with faults left for a point strikes.
 * @throws ConfigError when `ctx` was not made by a txkit factory or
 *   createTransactionContext, or when `spec` is invalid (including
 *   `commit-unknown` anywhere but `commit`).
 * @example
 * ```ts
 * import { injectFaults } from 'txkit/testing';
 *
 * const faults = injectFaults(ctx, { on: 'commit', as: 'transient', times: 2 });
 * await ctx.withTransaction(async (tx) => { ... }); // runs three times, commits once
 * expect(faults.injected).toBe(2);
 * ```
 */
export function injectFaults(ctx: TransactionContext<unknown, object>, spec: FaultSpec): FaultInjection {
  const registry = faultRegistryOf(ctx);
  if (registry === undefined) {
    throw new ConfigError('injectFaults() needs a context made by a txkit factory (or createTransactionContext)');
  }
  const { on, as, times = 1, every = 1, lost = 'reply' } = spec ?? ({} as FaultSpec);
  if (!POINTS.includes(on)) throw new ConfigError(`injectFaults: 'on' must be one of ${POINTS.join(', ')}, got ${String(on)}`);
  if (!KINDS.includes(as)) throw new ConfigError(`injectFaults: 'as' must be one of ${KINDS.join(', ')}, got ${String(as)}`);
  if (!(times === Number.POSITIVE_INFINITY || (Number.isInteger(times) && times > 0))) {
    throw new ConfigError(`injectFaults: 'times' must be a positive integer or Infinity, got ${String(times)}`);
  }
  if (!(Number.isInteger(every) && every > 0)) {
    throw new ConfigError(`injectFaults: 'every' must be a positive integer, got ${String(every)}`);
  }
  if (on !== 'commit' && as === 'commit-unknown') {
    throw new ConfigError("injectFaults: 'commit-unknown' only makes sense on 'commit'");
  }
  if (lost !== 'reply' && lost !== 'request') {
    throw new ConfigError(`injectFaults: 'lost' must be 'reply' or 'request', got ${String(lost)}`);
  }
  if (spec.lost !== undefined && as !== 'commit-unknown') {
    throw new ConfigError("injectFaults: 'lost' only applies to 'commit-unknown' faults");
  }
  const plan: FaultPlan = { on, as, lost, remaining: times, injected: 0, every, chances: 0 };
  registry.plans.push(plan);
  return {
    get injected() {
      return plan.injected;
    },
    get remaining() {
      return plan.remaining;
    },
    clear() {
      plan.remaining = 0;
      const i = registry.plans.indexOf(plan);
      if (i >= 0) registry.plans.splice(i, 1);
    },
  };
}
