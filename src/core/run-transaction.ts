import type { DriverTransaction } from './driver.js';
import type { Classification } from './errors.js';
import { TransactionTimeoutError } from './errors.js';
import type { FaultRegistry } from './faults.js';
import { backoffDelay, sleep } from './retry-policy.js';
import type { RetryReason } from './telemetry.js';
import { COMMIT_DONE, COMMIT_FAILED, SEND_COMMIT, attachAbortError } from './transaction.js';
import type { RootTransaction } from './transaction.js';
import { TxState } from './tx-state.js';
import type { BackendName, BeginOptions, RetryPolicy, Transaction } from './types.js';
import type { UnitEvents } from './unit-monitor.js';

/**
 * What the loop needs from a context: open one attempt (begin the native
 * transaction, then adopt it as the attempt's root transaction: two steps, so
 * the loop awaits the driver's own promise and nothing else), run a callback
 * as its scope, judge errors.
 */
export interface UnitHost<H, B extends BeginOptions = BeginOptions> {
  readonly backend: BackendName;
  readonly faults: FaultRegistry;
  /**
   * Begins the native transaction of one attempt, no longer than the call's signal and `timeoutMs` allow; may throw at once.
   * `unitState` is what the driver's runUnit gave this unit, for its begin.
   */
  begin(attempt: number, options: B, unitState: unknown): Promise<DriverTransaction<H>>;
  /**
   * The begun native transaction as the attempt's root transaction.
   * `startedAt` (Date.now() before begin) is given when `timeoutMs` is set.
   */
  adopt(dtx: DriverTransaction<H>, attempt: number, options: B, startedAt: number | undefined): RootTransaction<H>;
  /** Why a transaction just adopted may not run (the context closed, or the signal fired, while it began), else undefined. */
  refusal(options: B): unknown;
  runScoped<T>(tx: RootTransaction<H>, fn: (tx: Transaction<H>) => Promise<T>): Promise<T>;
  classify(err: unknown): Classification;
  /** The error the unit ends with, as the caller gets it (the driver's translateError), if the driver has one. */
  readonly translate?: (err: unknown) => unknown;
}

/** Time as the loop sees it; the property tests drive the loop on a virtual clock through this. */
export interface LoopClock {
  now(): number;
  sleep(ms: number, signal: AbortSignal | undefined, backend: BackendName): Promise<void>;
}

const realClock: LoopClock = { now: () => performance.now(), sleep };
/** Reads the state afresh: commit() moves it, which control-flow narrowing cannot see. */
const stateOf = (tx: Transaction<unknown>): TxState => tx.state;

/**
 * The one retry loop of txkit, for every backend. It follows the MongoDB
 * convenient-transaction API (transactions spec, "withTransaction"), with a
 * capped, jittered back-off between reruns and a deadline over all of it.
 */
export async function runTransaction<H, T, B extends BeginOptions>(
  host: UnitHost<H, B>,
  fn: (tx: Transaction<H>) => Promise<T>,
  policy: Readonly<RetryPolicy>,
  options: B,
  clock: LoopClock = realClock,
  events?: UnitEvents,
  unitState?: unknown,
): Promise<T> {
  // The unit's error is translated here, in the loop's own frame: a .catch around the loop would cost a
  // promise on every unit. What only a failure needs is done in functions of its own (failedCallback,
  // failedCommit), so the code every unit runs stays small.
  try {
    const loop: Loop = { host, policy, clock, started: clock.now(), signal: options.signal, events };
    for (let attempt = 1; ; attempt++) {
      // Step 1: begin, then run the callback. A failed begin ran nothing, so it is judged like a failed callback.
      events?.attemptStarted(attempt);
      let tx: RootTransaction<H>;
      try {
        const startedAt = options.timeoutMs === undefined ? undefined : Date.now();
        tx = host.adopt(await host.begin(attempt, options, unitState), attempt, options, startedAt);
        const refused = host.refusal(options);
        if (refused !== undefined) await abortAndThrow(tx, refused);
      } catch (err) {
        await backOffOrThrow(loop, err, attempt, 'begin');
        continue;
      }
      events?.opened(tx as RootTransaction<unknown>);
      let result: T;
      try {
        result = await host.runScoped(tx, fn);
        // Only drivers that can tell pay for the check, and only an end to settle costs an await.
        if (tx.endsNatively) {
          const settling = tx.settleNativeEnd(undefined);
          if (settling !== undefined) await settling;
        }
        host.faults.raise('callback', host.backend);
      } catch (err) {
        await failedCallback(loop, tx, err, attempt);
        continue;
      }

      // Step 3: the callback already committed or aborted: its decision stands. An end that came from
      // outside the callback while it ran (the context closed) is not its decision: the unit fails with it.
      if (tx.state !== TxState.active) {
        if (tx.interruptReason !== undefined) throw tx.interruptReason;
        return result;
      }

      // Step 4: commit; the first try awaits the native commit itself when it can (see RootTransaction[SEND_COMMIT]),
      // a turn fewer than commit(). A failed commit is judged by failedCommit: committed after all, or a rerun.
      try {
        const sent = tx[SEND_COMMIT]();
        if (sent === undefined) {
          await tx.commit();
        } else {
          try {
            await sent;
          } catch (err) {
            await tx[COMMIT_FAILED](err);
          }
          const hooks = tx[COMMIT_DONE]();
          if (hooks !== undefined) await hooks;
        }
        return result;
      } catch (err) {
        if ((await failedCommit(loop, tx, err, attempt)) === 'committed') return result;
      }
    }
  } catch (err) {
    throw host.translate === undefined ? err : host.translate(err);
  }
}

/** A transaction that may not run (see UnitHost.refusal): aborted, then the unit's attempt fails with `reason`. */
async function abortAndThrow(tx: RootTransaction<unknown>, reason: unknown): Promise<never> {
  await tx.abortQuietly(reason);
  throw reason;
}

/**
 * Step 2: the callback threw. Take an end it gave the native transaction
 * itself, else abort if still active (a failed abort is attached to the
 * error, never put in its place); then back off for a rerun, or throw.
 */
async function failedCallback(loop: Loop, tx: RootTransaction<unknown>, err: unknown, attempt: number): Promise<void> {
  if (tx.endsNatively) await tx.settleNativeEnd(err)?.catch((settleError: unknown) => attachAbortError(err, settleError));
  await tx.abortQuietly(err);
  // A unit whose transaction committed (the callback committed it, then
  // threw) or may have, never runs again: the error goes to the caller and
  // the commit stands.
  if (tx.mayHaveCommitted) throw err;
  await backOffOrThrow(loop, err, attempt, 'callback');
}

/**
 * Step 4, after a failed commit: an unknown result retries only the commit
 * (or resolves it) until the deadline, and may end `committed`; a transient
 * failure backs off for a rerun of the unit (`rerun`); anything else is thrown.
 * `unknown` counts the commits whose result was unknown, for telemetry to
 * report how each one settled.
 */
async function failedCommit(loop: Loop, tx: RootTransaction<unknown>, failure: unknown, attempt: number): Promise<'committed' | 'rerun'> {
  const { host, policy, clock, events } = loop;
  let unknown = 0;
  let err = failure;
  // `err` is the failure of commit try `commitTry`.
  for (let commitTry = 1; ; commitTry++) {
    const kind = host.classify(err);
    if (kind === 'commit-unknown' && stateOf(tx) === TxState.committing) {
      unknown += 1;
      events?.commitUnknown(attempt, commitTry, err);
      const delay = backoffDelay(policy, commitTry);
      const elapsed = clock.now() - loop.started;
      if (elapsed + delay >= policy.deadlineMs) {
        // Step 5: out of time with the outcome still unknown.
        await tx.giveUp(err);
        events?.commitResolved(attempt, 'unresolved', commitTry);
        throw deadlineError(host.backend, policy, attempt, elapsed, err);
      }
      try {
        await clock.sleep(delay, loop.signal, host.backend);
      } catch (abortError) {
        await tx.giveUp(err);
        events?.commitResolved(attempt, 'unresolved', commitTry);
        throw abortError;
      }
      try {
        await tx.commit();
      } catch (again) {
        // Committed, and what failed came after the commit (an afterCommit hook): the outcome was settled.
        if (stateOf(tx) === TxState.committed) {
          events?.commitResolved(attempt, 'committed', commitTry + 1);
          throw again;
        }
        err = again;
        continue;
      }
      events?.commitResolved(attempt, 'committed', commitTry + 1);
      return 'committed';
    }
    if (kind === 'transient') {
      // After an unknown result, a transient failure means the backend rolled the commit back.
      if (unknown > 0) events?.commitResolved(attempt, 'rolled_back', commitTry);
      await backOffOrThrow(loop, err, attempt, unknown > 0 ? 'commit_rolled_back' : 'commit');
      return 'rerun';
    }
    if (unknown > 0) events?.commitResolved(attempt, 'unresolved', commitTry);
    throw err;
  }
}

/** What a unit's back-off needs. */
interface Loop {
  readonly host: UnitHost<unknown, never>;
  readonly policy: Readonly<RetryPolicy>;
  readonly clock: LoopClock;
  readonly started: number;
  readonly signal: AbortSignal | undefined;
  readonly events: UnitEvents | undefined;
}

/**
 * Step 2/5: a transient failure reruns the unit after a back-off, unless the
 * attempts or the deadline are used up. Anything else is rethrown as it is.
 */
async function backOffOrThrow(loop: Loop, err: unknown, attempt: number, reason: RetryReason): Promise<void> {
  const { host, policy, clock } = loop;
  if (host.classify(err) !== 'transient' || attempt >= policy.maxAttempts) throw err;
  const delay = backoffDelay(policy, attempt);
  const elapsed = clock.now() - loop.started;
  if (elapsed + delay >= policy.deadlineMs) throw deadlineError(host.backend, policy, attempt, elapsed, err);
  loop.events?.retry(attempt, reason, delay, err);
  await clock.sleep(delay, loop.signal, host.backend);
}

function deadlineError(
  backend: BackendName,
  policy: Readonly<RetryPolicy>,
  attempts: number,
  elapsedMs: number,
  cause: unknown,
): TransactionTimeoutError {
  return new TransactionTimeoutError(
    'RETRY_DEADLINE',
    `gave up retrying the ${backend} transaction after ${attempts} attempt(s) and ${Math.round(elapsedMs)} ms ` +
      `(retry.deadlineMs=${policy.deadlineMs}); the last error is the cause: fix what it names, or raise the deadline`,
    { backend, cause, elapsedMs },
  );
}
