import { randomUUID } from 'node:crypto';
import type { DriverTransaction, NativeEnd } from './driver.js';
import {
  TransactionStateError,
  TransactionTimeoutError,
  TransientTransactionError,
  TxkitError,
  UnknownCommitResultError,
} from './errors.js';
import type { Classification } from './errors.js';
import type { FaultRegistry, LostCommitPart } from './faults.js';
import { runWith } from './ambient.js';
import { HookList } from './hooks.js';
import type { OpenList, OpenNode } from './open-list.js';
import { PendingWork, pendingWorkRefusal } from './pending-work.js';
import { abortedError } from './retry-policy.js';
import { SavepointTransaction } from './savepoint.js';
import { ScopeBase } from './scope.js';
import type { Scope } from './scope.js';
import { TxState, transition } from './tx-state.js';
import type { BackendName, BeginOptions, Transaction } from './types.js';

/**
 * The retry loop's own commit steps on a root transaction (see RootTransaction[SEND_COMMIT]): symbols, so a
 * callback's `tx` does not offer them by name. Only run-transaction.ts uses them.
 */
export const SEND_COMMIT: unique symbol = Symbol('txkit.sendCommit');
export const COMMIT_DONE: unique symbol = Symbol('txkit.commitDone');
export const COMMIT_FAILED: unique symbol = Symbol('txkit.commitFailed');

/** #commit's mark for an endedNatively() nobody has asked yet. */
const NOT_ASKED: unique symbol = Symbol('not asked');

/** What a root transaction needs from the context that opened it. */
export interface RootDeps {
  readonly backend: BackendName;
  readonly faults: FaultRegistry;
  classify(err: unknown): Classification;
  onAbortHookError(err: unknown, tx: Transaction<unknown>): void;
  /** The context's open transactions: a transaction is in it from construction until it ends. */
  readonly open?: OpenList<RootTransaction<unknown>>;
  /** For a transaction begun by hand: the driver's translation of errors its commit() and abort() hand the caller. */
  translateError?(err: unknown): unknown;
}

const ENDED = 'the transaction has ended';

/** Attaches a failed abort to the error that caused it, without replacing that error. */
export function attachAbortError(original: unknown, abortError: unknown): void {
  if (original instanceof TxkitError && original.abortError === undefined) {
    original.abortError = abortError;
  } else if (typeof original === 'object' && original !== null && Object.isExtensible(original)) {
    Object.defineProperty(original, 'abortError', { value: abortError, configurable: true, enumerable: false });
  }
}

/**
 * The outermost transaction of one attempt. Every state change goes through
 * `transition()`; `failed` is terminal, so nothing stays in committing forever.
 */
export class RootTransaction<H> extends ScopeBase implements Scope<H> {
  /** Made on first read: the driver's own id, or a random UUID (most transactions are never asked). */
  #id: string | undefined;
  readonly backend: BackendName;
  readonly attempt: number;
  readonly handle: H;
  readonly root: RootTransaction<H> = this;
  protected readonly kind = 'transaction';
  /** Made on first use: most transactions register no hooks. */
  #hooks: HookList | undefined;

  #state: TxState = TxState.active;
  readonly #dtx: DriverTransaction<H>;
  readonly #deps: RootDeps;
  #busy = false;
  /** A commit sent by [SEND_COMMIT]() waits for the retry loop to settle it. */
  #loopCommit = false;
  #rollbackOnly: { reason: unknown } | undefined;
  /** The native commit (or recommit) was sent at least once. */
  #commitSent = false;
  /** commit() was called, by the retry loop or by the callback. */
  #commitEntered = false;
  /** Made on first use: most transactions track no work. */
  #pending: PendingWork | undefined;
  #lastUnknown: UnknownCommitResultError | undefined;
  #controller: AbortController | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #userSignal: AbortSignal | undefined;
  /** Listens to the caller's signal; made only when one was given. */
  #onUserAbort: (() => void) | undefined;
  #interrupted: { promise: Promise<never>; reject: (reason: unknown) => void } | undefined;
  #interruptReason: unknown;
  #ending: Promise<void> | undefined;
  /** Its place in the context's open transactions (deps.open), until it ends. */
  readonly #openNode: OpenNode<RootTransaction<unknown>> | undefined;

  /** The begin options this transaction was opened with (the call's over the context defaults). */
  readonly options: BeginOptions;

  /** @param startedAt when begin was asked for (Date.now()), used only with `timeoutMs`: it counts from there, the wait to begin included (default: now). */
  constructor(dtx: DriverTransaction<H>, deps: RootDeps, attempt: number, options: BeginOptions, startedAt?: number) {
    super();
    this.#dtx = dtx;
    this.#deps = deps;
    this.backend = deps.backend;
    this.attempt = attempt;
    this.handle = dtx.handle;
    this.options = options;
    this.#openNode = deps.open?.add(this as RootTransaction<unknown>);
    const { timeoutMs, signal } = options;
    if (timeoutMs !== undefined || signal !== undefined) {
      let reject!: (reason: unknown) => void;
      const promise = new Promise<never>((_, r) => (reject = r));
      promise.catch(() => undefined);
      this.#interrupted = { promise, reject };
    }
    if (timeoutMs !== undefined) {
      const started = startedAt ?? Date.now();
      this.#timer = setTimeout(() => {
        void this.#interrupt(
          new TransactionTimeoutError(
            'TX_TIMEOUT',
            `the ${this.backend} transaction exceeded timeoutMs=${timeoutMs} and was aborted; ` +
              'raise timeoutMs or do less work per transaction',
            { backend: this.backend, elapsedMs: Date.now() - started },
          ),
        );
      }, Math.max(0, timeoutMs - (Date.now() - started)));
    }
    if (signal !== undefined) {
      this.#userSignal = signal;
      this.#onUserAbort = () => void this.#interrupt(abortedError(signal, this.backend, 'the transaction'));
      signal.addEventListener('abort', this.#onUserAbort, { once: true });
    }
  }

  get id(): string {
    return (this.#id ??= this.#dtx.id ?? randomUUID());
  }

  get state(): TxState {
    return this.#state;
  }

  get hooks(): HookList {
    return (this.#hooks ??= new HookList());
  }

  /** Lazily made: most transactions never look at it. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#interruptReason !== undefined) this.#controller.abort(this.#interruptReason);
      else if (this.#isEnded()) this.#controller.abort(new TransactionStateError(ENDED, { backend: this.backend }));
    }
    return this.#controller.signal;
  }

  markRollbackOnly(reason: unknown): void {
    this.#rollbackOnly ??= { reason };
  }

  /**
   * Commits. Called again after an UnknownCommitResultError (state still
   * `committing`), it resolves or resends the commit instead of starting over.
   */
  commit(): Promise<void> {
    const translate = this.#deps.translateError;
    const committing = this.#plainCommit();
    return translate === undefined ? committing : committing.catch((err: unknown) => Promise.reject(translate(err)));
  }

  /**
   * The first commit when nothing stands in its way, the path of nearly every transaction: as #commit runs it,
   * without an async function's promise and its await (where an AsyncLocalStorage is in use, every promise
   * costs its hooks). Anything unusual goes to #commit: a retried commit, a commit or abort in progress, a
   * native transaction the callback ended through its handle, rollback-only, an aborted signal, pending work,
   * planned faults.
   */
  #plainCommit(): Promise<void> {
    let native: NativeEnd | Promise<NativeEnd | undefined> | undefined;
    try {
      if (!this.#plain()) return this.#commit(NOT_ASKED);
      const dtx = this.#dtx;
      native = dtx.endedNatively === undefined ? undefined : dtx.endedNatively();
    } catch {
      // #commit asks again, and meets the error where it handles it.
      return this.#commit(NOT_ASKED);
    }
    if (native !== undefined) return this.#commit(native);
    return this.#send().then(
      () => this.#committed(),
      (err: unknown) => this.#sentFailed(err),
    );
  }

  /**
   * For the retry loop: the first commit's native promise when the plain path applies to a driver that cannot
   * end its transactions natively (see #plainCommit), for the loop to await and then settle with
   * [COMMIT_DONE]() or [COMMIT_FAILED](err): one promise and one turn of the microtask queue fewer than commit().
   * Undefined when commit() must do it; no commit was sent then. Keyed by a symbol, so a callback's `tx` does not
   * offer it by name.
   */
  [SEND_COMMIT](): Promise<void> | undefined {
    try {
      if (this.#dtx.endedNatively !== undefined || !this.#plain()) return undefined;
    } catch {
      return undefined;
    }
    this.#loopCommit = true;
    return this.#send();
  }

  /** For the retry loop, after the native commit sent by [SEND_COMMIT]() succeeded (see #committed). */
  [COMMIT_DONE](): Promise<void> | undefined {
    this.#settleLoopCommit();
    return this.#committed();
  }

  /** For the retry loop, after the native commit sent by [SEND_COMMIT]() failed: what commit() would have thrown. */
  [COMMIT_FAILED](err: unknown): Promise<never> {
    this.#settleLoopCommit();
    return this.#sentFailed(err);
  }

  /** The loop settles only a commit it sent itself, once. */
  #settleLoopCommit(): void {
    if (!this.#loopCommit) {
      throw new TransactionStateError(`the ${this.backend} transaction has no commit sent by the retry loop to settle`, {
        backend: this.backend,
        state: this.#state,
      });
    }
    this.#loopCommit = false;
  }

  /** Nothing stands in the way of the first commit (the checks #commit makes, as one expression). */
  #plain(): boolean {
    const dtx = this.#dtx;
    return !(
      this.#state !== TxState.active ||
      this.#busy ||
      this.#rollbackOnly !== undefined ||
      this.#userSignal?.aborted === true ||
      this.#deps.faults.plans.length > 0 ||
      (this.#pending?.count ?? 0) + (dtx.pendingWork?.() ?? 0) > 0
    );
  }

  /** Enters `committing` and sends the native commit. */
  #send(): Promise<void> {
    this.#enter('commit', TxState.committing);
    this.#commitEntered = true;
    this.#commitSent = true;
    try {
      return Promise.resolve(this.#dtx.commit());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * After the native commit sent by #send succeeded: the transaction has committed. Returns the afterCommit
   * hooks' promise when there are hooks, and is idle once they are done.
   */
  #committed(): Promise<void> | undefined {
    let hooks: Promise<void> | undefined;
    try {
      hooks = this.#finish(TxState.committed, undefined, 'commit');
    } finally {
      if (hooks === undefined) this.#busy = false;
    }
    return hooks === undefined ? undefined : this.#idleAfter(hooks);
  }

  /** After the native commit sent by #send failed: what commit() would have thrown (it always rejects). */
  #sentFailed(err: unknown): Promise<never> {
    return this.#idleAfter(this.#commitFailed(err)) as Promise<never>;
  }

  /** `work`, after which no commit or abort is in progress any more (what #commit's finally does). */
  #idleAfter(work: Promise<void>): Promise<void> {
    return work.then(
      () => {
        this.#busy = false;
      },
      (err: unknown) => {
        this.#busy = false;
        throw err;
      },
    );
  }

  /** `native`: what the driver's endedNatively() answered, when #plainCommit asked it already. */
  async #commit(native: NativeEnd | Promise<NativeEnd | undefined> | undefined | typeof NOT_ASKED): Promise<void> {
    const retry = this.#state === TxState.committing;
    this.#enter('commit', TxState.committing);
    this.#commitEntered = true;
    try {
      if (retry) return await this.#retryCommit();
      if (this.#dtx.endedNatively !== undefined) {
        const ended = native === NOT_ASKED ? this.#dtx.endedNatively() : native;
        if (ended !== undefined && (await this.#nativeEndAtCommit(ended))) return;
      }
      try {
        if (this.#rollbackOnly !== undefined) throw this.#rollbackOnlyError(this.#rollbackOnly.reason);
        if (this.#userSignal?.aborted) throw abortedError(this.#userSignal, this.backend, 'commit');
        const pending = (this.#pending?.count ?? 0) + (this.#dtx.pendingWork?.() ?? 0);
        if (pending > 0) throw pendingWorkRefusal(this.backend, 'transaction', pending);
        // An injected fault stands in for the commit, except a lost reply, which strikes after it.
        const fault = this.#commitFault();
        if (fault !== undefined && fault.lost !== 'reply') {
          if (fault.lost === 'request') await this.#requestLost(fault.error);
          throw fault.error;
        }
        this.#commitSent = true;
        await this.#dtx.commit();
        if (fault !== undefined) throw fault.error;
      } catch (err) {
        return await this.#commitFailed(err);
      }
      const hooks = this.#finish(TxState.committed, undefined, 'commit');
      if (hooks !== undefined) await hooks;
    } finally {
      this.#busy = false;
    }
  }

  /** The driver can tell when the callback ended the native transaction itself (see settleNativeEnd). */
  get endsNatively(): boolean {
    return this.#dtx.endedNatively !== undefined;
  }

  /**
   * For the retry loop, after the callback: takes an end the callback gave the
   * native transaction through its handle as this transaction's own.
   * Undefined (nothing to wait for) when the native transaction is still open.
   */
  settleNativeEnd(reason: unknown): Promise<void> | undefined {
    if (this.#dtx.endedNatively === undefined || this.#state !== TxState.active || this.#busy) return undefined;
    const ended = this.#dtx.endedNatively();
    return ended === undefined ? undefined : this.#settleNativeEnd(ended, reason);
  }

  async #settleNativeEnd(answer: NativeEnd | Promise<NativeEnd | undefined>, reason: unknown): Promise<void> {
    const ended = await answer;
    if (ended === undefined || this.#state !== TxState.active) return;
    if (ended === 'committed') {
      this.#commitEntered = true;
      this.#commitSent = true;
      this.#state = transition(this.#state, TxState.committing, 'commit', this.backend);
      await this.#finish(TxState.committed, undefined, 'commit');
    } else {
      this.#state = transition(this.#state, TxState.aborting, 'abort', this.backend);
      await this.#finish(TxState.aborted, reason, 'abort');
    }
  }

  /**
   * commit() on a transaction the caller already ended through its handle:
   * a native commit stands (true: nothing more to do); a native abort is
   * reported, since the commit that was asked for did not happen.
   */
  async #nativeEndAtCommit(answer: NativeEnd | Promise<NativeEnd | undefined>): Promise<boolean> {
    const ended = await answer;
    if (ended === undefined) return false;
    if (ended === 'committed') {
      this.#commitSent = true;
      const hooks = this.#finish(TxState.committed, undefined, 'commit');
      if (hooks !== undefined) await hooks;
      return true;
    }
    const err = new TransactionStateError(
      `commit() is not allowed: the ${this.backend} transaction was already aborted through its handle ` +
        '(e.g. tx.handle.abortTransaction()), so nothing was committed; end it with tx.abort() instead, or let ' +
        "withTransaction end it (it returns the callback's value when the callback aborted)",
      { backend: this.backend, code: 'ABORTED_BY_HANDLE', state: TxState.aborted, method: 'commit' },
    );
    await this.#finish(TxState.aborted, err, 'commit');
    throw err;
  }

  /**
   * True once this transaction committed, or once its commit was started and
   * did not end rolled back: its effects may be applied, so the unit must not
   * run again, whatever the callback threw afterwards.
   */
  get mayHaveCommitted(): boolean {
    return this.#commitEntered && this.#state !== TxState.aborted;
  }

  /**
   * Tracks work started in this transaction (a publish, a joined or nested
   * scope, a wrapped handle call): while any is pending, commit is refused.
   */
  track<T>(work: Promise<T>): Promise<T> {
    return (this.#pending ??= new PendingWork()).track(work);
  }

  abort(reason?: unknown): Promise<void> {
    const translate = this.#deps.translateError;
    return translate === undefined ? this.#abort(reason) : this.#abort(reason).catch((err: unknown) => Promise.reject(translate(err)));
  }

  async #abort(reason: unknown): Promise<void> {
    this.#enter('abort', TxState.aborting);
    try {
      await this.#rollbackToEnd(reason);
    } finally {
      this.#busy = false;
    }
  }

  /** The driver's transactions open savepoints (they have `savepoint()`), so `propagation: 'nested'` works. */
  get savepoints(): boolean {
    return this.#dtx.savepoint !== undefined;
  }

  async openSavepoint(): Promise<SavepointTransaction<H>> {
    this.assertActive('savepoint');
    if (this.#dtx.savepoint === undefined) {
      throw new TransactionStateError(`the ${this.backend} adapter cannot open savepoints`, {
        backend: this.backend,
      });
    }
    return new SavepointTransaction(this, this, await this.#dtx.savepoint());
  }

  /**
   * Runs the callback as this transaction's scope, the ambient transaction of
   * `owner` (its context) in it. Rejects as soon as the timeout or the
   * caller's signal fires, while the native transaction is being aborted,
   * instead of waiting for a callback that may never end.
   */
  run<T>(owner: object, fn: (tx: Transaction<H>) => Promise<T>): Promise<T> {
    const result = runWith(owner, this, fn, this);
    if (this.#interrupted === undefined) return result;
    result.catch(() => undefined);
    return Promise.race([result, this.#interrupted.promise]);
  }

  /** For the retry loop: aborts if still active and waits for any abort in flight. Never throws. */
  async abortQuietly(reason: unknown): Promise<void> {
    if (this.#state === TxState.active && !this.#busy) {
      try {
        await this.#abort(reason);
      } catch (err) {
        attachAbortError(reason, err);
      }
    }
    await this.#ending;
  }

  /**
   * For the context's close(): aborts a transaction still active, whose
   * callback may still be running, and records why. The callback's unit then
   * fails with `reason` instead of returning as if the callback had ended the
   * transaction itself; a callback racing a timeout or signal is woken now.
   */
  async closeAbort(reason: unknown): Promise<void> {
    if (this.#state === TxState.active && !this.#busy) this.#markInterrupted(reason);
    await this.abortQuietly(reason);
  }

  /** For the retry loop: an unknown commit outcome that will not be resolved ends here, failed. */
  async giveUp(reason: unknown): Promise<void> {
    if (this.#state !== TxState.committing) return;
    await this.#releaseUnsent(reason);
    await this.#finish(TxState.failed, reason, 'commit', true);
  }

  /** Why the transaction was ended from outside its callback (timeout, the caller's signal, the context's close), if it was. */
  get interruptReason(): unknown {
    return this.#interruptReason;
  }

  #rollbackOnlyError(reason: unknown): TransactionStateError {
    return new TransactionStateError(
      `the ${this.backend} transaction was marked rollback-only because a joined scope failed; it was rolled back ` +
        'instead of committed (catching an error inside withTransaction does not undo its writes)',
      { backend: this.backend, code: 'ROLLBACK_ONLY', cause: reason, method: 'commit', state: TxState.committing },
    );
  }

  /**
   * The injected fault planned for this commit, if any (txkit/testing
   * injectFaults). Once the native commit was sent, only another unknown
   * outcome can follow: a definite failure would contradict a commit that may
   * have been applied.
   */
  #commitFault(): { error: Error; lost: LostCommitPart | undefined } | undefined {
    return this.#deps.faults.take('commit', this.backend, this.#commitSent ? 'commit-unknown' : undefined);
  }

  /**
   * After an unknown result: resolve the outcome, or send the commit again. An
   * injected lost reply strikes after the recovery step, a lost request before it.
   */
  async #retryCommit(): Promise<void> {
    try {
      const fault = this.#commitFault();
      if (fault !== undefined && fault.lost !== 'reply') {
        if (fault.lost === 'request') await this.#requestLost(fault.error);
        throw fault.error;
      }
      if (this.#dtx.resolveCommit !== undefined) {
        const outcome = await this.#dtx.resolveCommit();
        if (outcome === 'aborted') {
          // The backend rolled the transaction back: rerunning the unit is safe.
          const err = new TransientTransactionError(
            `the ${this.backend} commit whose result was unknown turned out rolled back; the unit can run again`,
            { backend: this.backend, code: 'COMMIT_ROLLED_BACK', cause: this.#lastUnknown },
          );
          await this.#releaseUnsent(err);
          await this.#finish(TxState.aborted, err, 'commit');
          throw err;
        }
        if (outcome === 'unknown') throw this.#lastUnknown ?? this.#unknown(undefined);
      } else if (this.#dtx.recommit !== undefined) {
        this.#commitSent = true;
        await this.#dtx.recommit();
      } else {
        const err = this.#lastUnknown ?? this.#unknown(undefined);
        await this.#releaseUnsent(err);
        await this.#finish(TxState.failed, err, 'commit', true);
        throw err;
      }
      if (fault !== undefined) throw fault.error;
    } catch (err) {
      if (this.#state !== TxState.committing) throw err;
      return this.#commitFailed(err);
    }
    return this.#finish(TxState.committed, undefined, 'commit');
  }

  /**
   * An injected lost commit request. An adapter that resolves unknown
   * commits by asking the backend (`resolveCommit`) has transactions bound to
   * their connection, and a request is lost with its connection: the backend
   * rolls the transaction back, and so does this. An adapter that recommits
   * has transactions that outlive a connection (MongoDB, Pulsar): it stays open.
   */
  async #requestLost(reason: unknown): Promise<void> {
    if (this.#dtx.resolveCommit !== undefined) await this.#releaseUnsent(reason);
  }

  /**
   * A native transaction whose commit was never sent (an injected lost
   * request) is still open: roll it back to free its connection, as the
   * backend would for a connection that was lost.
   */
  async #releaseUnsent(reason: unknown): Promise<void> {
    if (this.#commitSent) return;
    this.#commitSent = true;
    try {
      await this.#dtx.rollback();
    } catch (err) {
      attachAbortError(reason, err);
    }
  }

  async #commitFailed(err: unknown): Promise<never> {
    if (this.#deps.classify(err) === 'commit-unknown') {
      // Stay in `committing`: only the commit may be retried (docs/architecture.md, rule 3).
      this.#lastUnknown = err instanceof UnknownCommitResultError ? err : this.#unknown(err);
      throw this.#lastUnknown;
    }
    // A definite failure: the backend did not commit. Release the native transaction.
    try {
      await this.#dtx.rollback();
    } catch (rollbackError) {
      attachAbortError(err, rollbackError);
    }
    await this.#finish(TxState.aborted, err, 'commit');
    throw err;
  }

  #unknown(cause: unknown): UnknownCommitResultError {
    return new UnknownCommitResultError(
      `the ${this.backend} commit may or may not have been applied, and this adapter cannot tell which; ` +
        'check whether the effects are present before running the work again',
      { backend: this.backend, cause },
    );
  }

  async #rollbackToEnd(reason: unknown): Promise<void> {
    try {
      await this.#dtx.rollback();
    } catch (err) {
      await this.#finish(TxState.failed, reason, 'abort');
      throw err;
    }
    return this.#finish(TxState.aborted, reason, 'abort');
  }

  /** Timeout or caller's signal: cancel running work, abort, and free the resource now. */
  async #interrupt(reason: unknown): Promise<void> {
    if (this.#state !== TxState.active || this.#busy) return;
    this.#markInterrupted(reason);
    this.#enter('abort', TxState.aborting);
    const ending = (async () => {
      try {
        await this.#dtx.interrupt?.();
      } catch {
        // Best effort: the rollback below is what frees the resource.
      }
      try {
        await this.#rollbackToEnd(reason);
      } catch (err) {
        attachAbortError(reason, err);
      } finally {
        this.#busy = false;
      }
    })();
    this.#ending = ending;
    await ending;
  }

  /**
   * Records why the transaction is ended from outside its callback, and wakes
   * what waits on that: the callback's race first (a callback woken by the
   * signal must not win the race with a normal return), then `tx.signal`.
   */
  #markInterrupted(reason: unknown): void {
    this.#interruptReason = reason;
    this.#interrupted?.reject(reason);
    this.#controller?.abort(reason);
  }

  /** Ends the transaction; hooks run only when some were registered, so the common path stays synchronous. */
  #finish(to: TxState, reason: unknown, method: string, outcomeUnknown = false): Promise<void> | undefined {
    this.#state = transition(this.#state, to, method, this.backend);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#onUserAbort !== undefined) this.#userSignal?.removeEventListener('abort', this.#onUserAbort);
    if (this.#controller !== undefined && !this.#controller.signal.aborted) {
      this.#controller.abort(new TransactionStateError(ENDED, { backend: this.backend }));
    }
    if (this.#openNode !== undefined) this.#deps.open?.delete(this.#openNode);
    return this.#hooks === undefined ? undefined : this.#runHooks(this.#hooks, to, reason, outcomeUnknown);
  }

  async #runHooks(hooks: HookList, to: TxState, reason: unknown, outcomeUnknown: boolean): Promise<void> {
    const onError = (err: unknown): void => this.#deps.onAbortHookError(err, this as Transaction<unknown>);
    if (to === TxState.committed) {
      await hooks.runUndone(onError);
      await hooks.runCommit(this.backend);
    } else if (!outcomeUnknown) {
      await hooks.runAbort(reason, onError);
      await hooks.runUndone(onError);
    } else {
      // The outcome is unknown: neither afterCommit nor afterAbort may claim it.
      await hooks.runUndone(onError);
    }
  }

  #isEnded(): boolean {
    return this.#state === TxState.committed || this.#state === TxState.aborted || this.#state === TxState.failed;
  }

  /** Starts a commit or abort: one at a time, and only from a state the transition table allows. */
  #enter(method: string, to: TxState): void {
    if (this.#busy) {
      throw new TransactionStateError(`${method}() is not allowed while a commit or abort of this ${this.backend} transaction is in progress`, {
        backend: this.backend,
        state: this.#state,
        method,
      });
    }
    this.#state = transition(this.#state, to, method, this.backend);
    this.#busy = true;
  }
}
