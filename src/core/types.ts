import type { TxState } from './tx-state.js';

export type BackendName = 'postgres' | 'mysql' | 'sqlite' | 'mongodb' | 'kafka' | 'pulsar' | 'memory';

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

export interface BeginOptions {
  /** Client-side limit on one transaction: when it passes, txkit aborts the transaction and frees its resource. */
  timeoutMs?: number;
  /** Cancels begin, the retry back-off, a running transaction and commit. */
  signal?: AbortSignal;
}

export interface RetryPolicy {
  /** Total time budget of one `withTransaction` call, all attempts included. @default 120_000 */
  deadlineMs: number;
  /** Upper bound on runs of the whole unit. @default Infinity (the deadline bounds it) */
  maxAttempts: number;
  /** @default 5 */
  initialDelayMs: number;
  /** @default 500 */
  maxDelayMs: number;
  /** @default 1.5 */
  multiplier: number;
  /** `full`: a random delay in [0, cap); `none`: exactly the cap. @default 'full' */
  jitter: 'full' | 'none';
}

export interface RunOptions extends BeginOptions {
  /** How this call relates to the transaction already running in this async context. @default 'required' */
  propagation?: Propagation;
  /** Retry policy of this call, or `false` to run the unit once. Only the outermost call retries. */
  retry?: Partial<RetryPolicy> | false;
}

export interface Transaction<H> {
  readonly id: string;
  readonly backend: BackendName;
  readonly state: TxState;
  /** 1 on the first run, +1 per rerun of the whole unit. */
  readonly attempt: number;
  /** The native object: Knex.Transaction, PoolClient, ClientSession, or a message handle. */
  readonly handle: H;
  /** Fires when the transaction times out, the caller's signal fires, or it ends. Pass it to your own I/O. */
  readonly signal: AbortSignal;
  commit(): Promise<void>;
  abort(reason?: unknown): Promise<void>;
  /** Runs after the outermost transaction commits; awaited, in registration order. */
  afterCommit(fn: () => unknown): void;
  /** Runs after the outermost transaction aborts (also once per aborted attempt of a retried unit). */
  afterAbort(fn: (reason: unknown) => unknown): void;
}

export type TransactionCallback<H, T> = (tx: Transaction<H>) => Promise<T>;
export type OptionalTransactionCallback<H, T> = (tx: Transaction<H> | undefined) => Promise<T>;

export interface TransactionContext<H, O extends object = {}> {
  readonly backend: BackendName;
  begin(options?: O & BeginOptions): Promise<Transaction<H>>;
  withTransaction<T>(
    fn: OptionalTransactionCallback<H, T>,
    options: O & RunOptions & { propagation: OptionalPropagation },
  ): Promise<T>;
  withTransaction<T>(
    fn: TransactionCallback<H, T>,
    options?: O & RunOptions & { propagation?: RequiredPropagation },
  ): Promise<T>;
  /** The transaction of this context running in the current async context, if any. */
  current(): Transaction<H> | undefined;
  /** Closes the context; idempotent. Transactions still running are aborted. */
  close(): Promise<void>;
}
