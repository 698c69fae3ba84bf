import type { BackendName } from './backend.js';
import type { TxState } from './tx-state.js';

export type { BackendName };

/**
 * How a `withTransaction` call relates to a transaction already running in
 * the same async context (the Spring propagation modes):
 *
 * - `required`: join the running transaction, or open a new one.
 * - `requires_new`: always open an independent transaction.
 * - `nested`: open a savepoint in the running transaction (adapters with
 *   savepoints only), or a new transaction when none is running.
 * - `mandatory`: join the running transaction; throw TransactionPropagationError when there is none.
 * - `never`: run without a transaction; throw TransactionPropagationError when one is running.
 * - `supports`: join the running transaction, or run without one.
 * - `not_supported`: run without a transaction, hiding the running one from the callback.
 */
export type Propagation =
  | 'required'
  | 'requires_new'
  | 'nested'
  | 'mandatory'
  | 'never'
  | 'supports'
  | 'not_supported';

/** Modes in which the callback may run without a transaction. */
export type OptionalPropagation = 'never' | 'supports' | 'not_supported';
/** Modes in which the callback always runs inside a transaction. */
export type RequiredPropagation = Exclude<Propagation, OptionalPropagation>;

/** Options of one transaction, accepted by `begin` and `withTransaction`. */
export interface BeginOptions {
  /**
   * Client-side limit on one transaction: when it passes, txkit aborts the
   * transaction and frees its resource, and the call rejects with
   * TransactionTimeoutError (code TX_TIMEOUT). Must be a positive finite number.
   * @default none: no client-side limit
   */
  timeoutMs?: number;
  /** Cancels begin, the retry back-off, a running transaction and commit. */
  signal?: AbortSignal;
}

/**
 * How `withTransaction` reruns a unit after a transient failure: capped,
 * jittered exponential back-off under an overall deadline. The delay before
 * rerun n is `min(initialDelayMs * multiplier^(n-1), maxDelayMs)`, randomised
 * by `jitter`.
 */
export interface RetryPolicy {
  /** Total time budget of one `withTransaction` call, all attempts included. @default 120_000 */
  deadlineMs: number;
  /** Upper bound on runs of the whole unit. @default Infinity (the deadline bounds it) */
  maxAttempts: number;
  /** Back-off cap before the first rerun, in milliseconds. @default 5 */
  initialDelayMs: number;
  /** Upper bound of the back-off cap, in milliseconds. @default 500 */
  maxDelayMs: number;
  /** Growth of the back-off cap per rerun; at least 1. @default 1.5 */
  multiplier: number;
  /** `full`: a random delay in [0, cap); `none`: exactly the cap. @default 'full' */
  jitter: 'full' | 'none';
}

/** Options of one `withTransaction` call: the begin options plus propagation and retry. */
export interface RunOptions extends BeginOptions {
  /** How this call relates to the transaction already running in this async context. @default 'required' */
  propagation?: Propagation;
  /**
   * Retry policy of this call, merged over the context's policy, or `false` to
   * run the unit once. Only the outermost call retries.
   * @default the context's policy
   */
  retry?: Partial<RetryPolicy> | false;
}

/**
 * One running transaction, as given to a `withTransaction` callback or
 * returned by `begin`. `H` is the backend's native handle.
 */
export interface Transaction<H> {
  /** The backend's own transaction id when it has one (e.g. the SQL transaction id), else a random UUID. */
  readonly id: string;
  /** The backend this transaction runs on. */
  readonly backend: BackendName;
  /** The current lifecycle state; see {@link TxState}. */
  readonly state: TxState;
  /** 1 on the first run, +1 per rerun of the whole unit. */
  readonly attempt: number;
  /** The native object: Knex.Transaction, PoolClient, ClientSession, or a message handle. */
  readonly handle: H;
  /** Fires when the transaction times out, the caller's signal fires, or it ends. Pass it to your own I/O. */
  readonly signal: AbortSignal;
  /**
   * Commits. Inside `withTransaction` the unit commits on its own when the
   * callback returns, so calling this is only needed for `begin`.
   * Called again after an UnknownCommitResultError, it resolves or resends
   * that commit instead of starting over.
   * @throws TransactionStateError when the transaction is not active (or
   *   code JOINED_COMMIT on a scope that joined another's transaction, or
   *   ROLLBACK_ONLY when a joined scope failed and the transaction was rolled back instead).
   * @throws UnknownCommitResultError when the backend cannot say whether the commit applied.
   * @throws AfterCommitHookError when the commit stands but afterCommit hooks failed.
   */
  commit(): Promise<void>;
  /**
   * Rolls back. `reason` is passed to the afterAbort hooks. On a savepoint
   * (`nested`) it rolls back to the savepoint and the enclosing transaction
   * goes on; in a scope that joined a running transaction it aborts that whole transaction.
   * @throws TransactionStateError when the transaction is not active.
   */
  abort(reason?: unknown): Promise<void>;
  /** Runs after the outermost transaction commits; awaited, in registration order. */
  afterCommit(fn: () => unknown): void;
  /** Runs after the outermost transaction aborts (also once per aborted attempt of a retried unit). */
  afterAbort(fn: (reason: unknown) => unknown): void;
}

/** The body of a unit of work: it always gets a transaction. */
export type TransactionCallback<H, T> = (tx: Transaction<H>) => Promise<T>;
/** The body of a unit run with an optional propagation mode (`never`, `supports`, `not_supported`): it may get no transaction. */
export type OptionalTransactionCallback<H, T> = (tx: Transaction<H> | undefined) => Promise<T>;

/**
 * The one transaction API of txkit, made per backend by a factory such as
 * `knexTransactions`, `mongoTransactions` or `kafkaTransactions`.
 * `H` is the native handle a transaction carries and `O` the backend's own
 * begin options.
 */
export interface TransactionContext<H, O extends object = {}> {
  /** The backend this context talks to. */
  readonly backend: BackendName;
  /**
   * Opens a transaction that the caller commits or aborts itself. It is not
   * made ambient and never retried; prefer `withTransaction`.
   * @throws ConfigError on invalid options.
   * @throws TransactionStateError (code CONTEXT_CLOSED) after `close()`.
   */
  begin(options?: O & BeginOptions): Promise<Transaction<H>>;
  /**
   * Runs `fn` without a transaction or joined to a running one, for the
   * optional propagation modes (`never`, `supports`, `not_supported`).
   */
  withTransaction<T>(
    fn: OptionalTransactionCallback<H, T>,
    options: O & RunOptions & { propagation: OptionalPropagation },
  ): Promise<T>;
  /**
   * Runs `fn` as one unit of work and resolves with its result. Unless it
   * joins a running transaction (see {@link Propagation}), the unit begins a
   * transaction, makes it the ambient one for `fn`, commits when `fn` returns
   * (unless `fn` committed or aborted it itself) and aborts when `fn` throws,
   * rethrowing the same error. A transient failure of begin, callback or
   * commit reruns the whole unit under the retry policy; an unknown commit
   * result retries or resolves only the commit, until the deadline.
   * @throws ConfigError on invalid options or a missing callback.
   * @throws TransactionStateError (code CONTEXT_CLOSED) after `close()`.
   * @throws TransactionPropagationError when the propagation mode's precondition fails.
   * @throws TransactionTimeoutError when `timeoutMs` (code TX_TIMEOUT) or the retry deadline (code RETRY_DEADLINE) passes.
   * @throws TransactionAbortedError when the caller's signal fires.
   * @throws UnknownCommitResultError when the adapter can neither resolve nor resend a commit whose outcome is unknown.
   * @throws AfterCommitHookError when the unit committed but afterCommit hooks failed (do not rerun it).
   * @example
   * ```ts
   * const id = await ctx.withTransaction(async (tx) => {
   *   // use tx.handle, the native transaction object
   *   return 42;
   * }, { timeoutMs: 5_000, retry: { deadlineMs: 30_000 } });
   * ```
   */
  withTransaction<T>(
    fn: TransactionCallback<H, T>,
    options?: O & RunOptions & { propagation?: RequiredPropagation },
  ): Promise<T>;
  /** The transaction of this context running in the current async context, if any. */
  current(): Transaction<H> | undefined;
  /**
   * Closes the context; idempotent. Transactions still running are aborted:
   * a `withTransaction` unit whose callback is still running then fails with
   * TransactionStateError CONTEXT_CLOSED (it never returns as if it had
   * committed), and a transaction begun by hand refuses commit().
   */
  close(): Promise<void>;
}
