import type { Classification } from './errors.js';
import type { BackendName, BeginOptions } from './types.js';

/**
 * What an adapter implements. The core owns the lifecycle, state checks,
 * hooks, propagation and retry; a driver only opens, ends and classifies.
 */
export interface TransactionDriver<H, O extends object = {}> {
  readonly backend: BackendName;
  readonly capabilities: DriverCapabilities;
  /** Validates options up front so bad input fails before any work (throw ConfigError). */
  validateOptions?(options: O): void;
  begin(options: O & BeginOptions, signal: AbortSignal): Promise<DriverTransaction<H>>;
  /** Judges a native error. Unknown errors must come back `fatal`. */
  classify(err: unknown): Classification;
  close(): Promise<void>;
}

export interface DriverCapabilities {
  /** `propagation: 'nested'` works through savepoints. */
  readonly savepoints: boolean;
}

export type CommitOutcome = 'committed' | 'aborted' | 'unknown';

export interface DriverTransaction<H> {
  readonly handle: H;
  /** Backend-native id when there is one (SQL xid, Kafka producer id...); the core makes its own otherwise. */
  readonly id?: string;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  /**
   * After a `commit-unknown` failure: finds out what happened (e.g. pg_xact_status
   * on a fresh connection). Drivers that cannot tell leave this out.
   */
  resolveCommit?(): Promise<CommitOutcome>;
  /**
   * After a `commit-unknown` failure: sends the commit again (it must be
   * idempotent, as MongoDB's commitTransaction is). Drivers whose connection
   * is gone leave this out, and the caller gets UnknownCommitResultError.
   */
  recommit?(): Promise<void>;
  /** Opens a savepoint for `propagation: 'nested'`. Required when capabilities.savepoints is true. */
  savepoint?(): Promise<DriverSavepoint<H>>;
  /**
   * The transaction timed out or was cancelled while work may be running:
   * cancel it (e.g. pg_cancel_backend) so the following rollback is not
   * stuck behind a long statement.
   */
  interrupt?(): Promise<void>;
}

export interface DriverSavepoint<H> {
  readonly handle: H;
  release(): Promise<void>;
  rollback(): Promise<void>;
  /** Opens a savepoint inside this one, for `nested` inside `nested`. */
  savepoint?(): Promise<DriverSavepoint<H>>;
}
