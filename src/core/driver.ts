import type { Classification } from './errors.js';
import type { BackendName, BeginOptions, Transaction } from './types.js';

/**
 * What an adapter implements. The core owns the lifecycle, state checks,
 * hooks, propagation and retry; a driver only opens, ends and classifies.
 * Pass one to {@link createTransactionContext} to get a TransactionContext.
 */
export interface TransactionDriver<H, O extends object = {}> {
  /** The backend this driver talks to; the context and its transactions report it. */
  readonly backend: BackendName;
  /**
   * Ignored: what a driver can do is what it implements (savepoints: a
   * {@link DriverTransaction.savepoint} method).
   * @deprecated Leave it out; it is kept so drivers that still declare it compile.
   */
  readonly capabilities?: DriverCapabilities;
  /**
   * The keys of this backend's own transaction options (e.g. `isolationLevel`).
   * When given, the core refuses any other key in a call's options, in
   * `defaults` and in a joining scope's options with a ConfigError that
   * names it, so a misspelt option never passes silently.
   * @default none: the core checks only its own keys' values
   */
  readonly optionKeys?: readonly string[];
  /** Validates options up front so bad input fails before any work (throw ConfigError). */
  validateOptions?(options: O): void;
  /**
   * Opens a native transaction. `options` are the call's options over the
   * context defaults; `signal` fires when the caller cancels (a signal that
   * never fires when the caller gave none); `info` says which begin this is.
   */
  begin(options: O & BeginOptions, signal: AbortSignal, info: DriverBeginInfo<H>): Promise<DriverTransaction<H>>;
  /**
   * Runs one `withTransaction` unit: the core calls it around the unit's
   * whole retry loop, so every begin of the unit's attempts (those with
   * `info.unit` true) runs inside `run`. A driver uses it to share state
   * across the attempts of one unit and to free that state when the unit is
   * over (MongoDB reruns a unit on one session, ended here): what it passes to
   * `run` reaches each attempt's begin as {@link DriverBeginInfo.unitState}.
   * It must settle as `run` does. Units that join a running transaction begin
   * nothing and are not run through it.
   * @default the unit runs as it is
   */
  runUnit?<T>(run: (unitState?: unknown) => Promise<T>): Promise<T>;
  /** Judges a native error. Unknown errors must come back `fatal`. */
  classify(err: unknown): Classification;
  /**
   * Turns an error on its way to the caller into the one the caller should
   * get, e.g. a native error that reveals a misuse into a typed error; any
   * other error is returned as it is. The core applies it once, where an error
   * leaves the context: the rejection of `withTransaction` (for a unit, as the
   * error leaves its retry loop, after the loop judged the native error with
   * {@link TransactionDriver.classify}: {@link TransactionDriver.runUnit} sees
   * it translated, and an error of runUnit's own is passed on as it is), of
   * `begin()`, and of `commit()` and `abort()` of a transaction begun with
   * `begin()`.
   * @default errors reach the caller as they are
   */
  translateError?(err: unknown): unknown;
  /** Frees the driver's resources; called once, by the context's `close()`, after open transactions were aborted. */
  close(): Promise<void>;
}

/**
 * What drivers used to declare about themselves; the core ignores it.
 * @deprecated A driver supports savepoints when its transactions have a
 * {@link DriverTransaction.savepoint} method; nothing else is declared.
 */
export interface DriverCapabilities {
  /** Ignored: `propagation: 'nested'` works when {@link DriverTransaction.savepoint} is implemented. */
  readonly savepoints?: boolean;
}

/** What the core tells {@link TransactionDriver.begin} about the transaction it asks for. */
export interface DriverBeginInfo<H> {
  /** Which attempt of its unit this transaction is: 1, then 2, 3... for reruns; 1 for a transaction begun with `begin()`. */
  readonly attempt: number;
  /**
   * True when the transaction is an attempt of a `withTransaction` unit (the
   * begin runs inside {@link TransactionDriver.runUnit}); false when it is
   * begun by hand with `begin()`, which is no attempt of any unit, even when
   * called inside one's callback.
   */
  readonly unit: boolean;
  /**
   * The transaction of this context that the caller is running in, if any
   * is active: the new transaction begins beside it, independent of it
   * (`propagation: 'requires_new'`, or `begin()` inside a callback). A backend
   * that cannot run two at once refuses here instead of waiting for it.
   */
  readonly ambient: Transaction<H> | undefined;
  /** For an attempt of a unit: what {@link TransactionDriver.runUnit} passed to its `run` (undefined without runUnit). */
  readonly unitState?: unknown;
}

/** How the callback ended a native transaction through its handle (see {@link DriverTransaction.endedNatively}). */
export type NativeEnd = 'committed' | 'aborted';

/** What {@link DriverTransaction.resolveCommit} found out about a commit whose result was unknown. */
export type CommitOutcome = 'committed' | 'aborted' | 'unknown';

/** One native transaction opened by a driver; the core decides when each method runs. */
export interface DriverTransaction<H> {
  /** The native object given to callbacks as `tx.handle`. */
  readonly handle: H;
  /** Backend-native id when there is one (SQL xid, Kafka producer id...); the core makes its own otherwise. */
  readonly id?: string;
  /** Commits the native transaction; a failure is judged by {@link TransactionDriver.classify}. */
  commit(): Promise<void>;
  /** Rolls the native transaction back and frees its resource (connection, session...). */
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
  /**
   * How many calls of the handle are still in flight (a send not yet
   * acknowledged). While any is, the core refuses to commit and rolls the
   * unit back: a caller that forgot to await one would otherwise commit
   * without it, or race the commit with it.
   */
  pendingWork?(): number;
  /**
   * After the callback returned or threw: when the callback ended the native
   * transaction itself through its handle (MongoDB's
   * `session.commitTransaction()`), free what it held and say how it ended.
   * The core then takes that end as the transaction's own: no second commit or
   * abort is sent, the matching hooks run, and a unit whose transaction was
   * committed this way never runs again. `undefined`: still open, the core ends it.
   * The core asks after every callback, so answer a still-open transaction
   * synchronously (`undefined`, no promise) and return a promise only when
   * there is something to free.
   */
  endedNatively?(): NativeEnd | undefined | Promise<NativeEnd | undefined>;
  /**
   * Opens a savepoint for `propagation: 'nested'`. Having this method is what
   * supporting savepoints means: without it, `nested` inside a running
   * transaction throws TransactionPropagationError.
   */
  savepoint?(): Promise<DriverSavepoint<H>>;
  /**
   * The transaction timed out or was cancelled while work may be running:
   * cancel it (e.g. pg_cancel_backend) so the following rollback is not
   * stuck behind a long statement.
   */
  interrupt?(): Promise<void>;
}

/** A savepoint opened by {@link DriverTransaction.savepoint}. */
export interface DriverSavepoint<H> {
  /** The native object given to the `nested` callback as `tx.handle`. */
  readonly handle: H;
  /** Releases the savepoint, keeping its work in the enclosing transaction. */
  release(): Promise<void>;
  /** Rolls back to the savepoint; the enclosing transaction goes on. */
  rollback(): Promise<void>;
  /** Opens a savepoint inside this one, for `nested` inside `nested`. */
  savepoint?(): Promise<DriverSavepoint<H>>;
}
