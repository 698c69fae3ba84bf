/**
 * Structural types of the few `mongodb` driver members txkit calls, so the
 * driver is never loaded by txkit (nor named by the emitted .d.ts). The
 * factory is generic over the client and hands back the user's own session
 * type (`ClientSession`), inferred from the client argument.
 */

/** Read concern levels of the driver; a transaction accepts only local, majority and snapshot. */
export type MongoReadConcernLevel = 'local' | 'majority' | 'linearizable' | 'available' | 'snapshot';

/** A read concern as the driver takes it: a level, `{ level }`, or the driver's `ReadConcern`. */
export type MongoReadConcernLike = MongoReadConcernLevel | { readonly level: MongoReadConcernLevel | string };

/** A write concern as the driver takes it: a plain object or the driver's `WriteConcern`. */
export interface MongoWriteConcernLike {
  /** Acknowledgement: a number of members, 'majority', or a tag set name. Transactions refuse 0. */
  readonly w?: number | 'majority' | (string & Record<never, never>);
  /** Wait for the journal. */
  readonly journal?: boolean;
  /** How long to wait for the acknowledgement, in milliseconds. */
  readonly wtimeoutMS?: number;
}

/** Read preference modes of the driver. */
export type MongoReadPreferenceMode = 'primary' | 'primaryPreferred' | 'secondary' | 'secondaryPreferred' | 'nearest';

/** A read preference as the driver takes it: a mode or the driver's `ReadPreference`. */
export type MongoReadPreferenceLike = MongoReadPreferenceMode | { readonly mode: MongoReadPreferenceMode };

/** The transaction options txkit passes to `ClientSession.startTransaction`. */
export interface MongoTransactionOptionsLike {
  /** See {@link MongoTxOptions.readConcern}. */
  readConcern?: MongoReadConcernLike;
  /** See {@link MongoTxOptions.writeConcern}. */
  writeConcern?: MongoWriteConcernLike;
  /** See {@link MongoTxOptions.readPreference}. */
  readPreference?: MongoReadPreferenceLike;
  /** See {@link MongoTxOptions.maxCommitTimeMS}. */
  maxCommitTimeMS?: number;
}

/** The session options txkit passes to `MongoClient.startSession`. */
export interface MongoSessionOptionsLike {
  /** See {@link MongoTransactionsOptions.causalConsistency}. */
  causalConsistency?: boolean;
}

/** The subset of the driver's `ClientSession` txkit uses. */
export interface MongoSessionLike {
  /** Starts a transaction on the session; its first operation sends it to the server. */
  startTransaction(options?: MongoTransactionOptionsLike): void;
  /** Called again after an unknown result: the driver then sends it with w: 'majority' (transactions spec). */
  commitTransaction(): Promise<unknown>;
  /** Aborts the transaction in progress. */
  abortTransaction(): Promise<unknown>;
  /** Aborts a transaction still in progress and returns the server session to the pool; never throws a server error. */
  endSession(): Promise<unknown>;
  /** True while a transaction is in progress on the session. */
  inTransaction(): boolean;
  /** True once `endSession()` ran. */
  readonly hasEnded: boolean;
}

/** The subset of the driver's `MongoClient` txkit uses. */
export interface MongoClientLike {
  /** Starts a session; txkit starts one per transaction and always ends it. */
  startSession(options?: MongoSessionOptionsLike): MongoSessionLike;
}

/**
 * The driver's `MongoClient` as a program that opens one itself uses it
 * besides sessions: connect, a database by name (of type `D`), close.
 */
export interface MongoDriverClientLike<D = unknown> extends MongoClientLike {
  /** Connects to the deployment. */
  connect(): Promise<unknown>;
  /** A database by name. */
  db(name: string): D;
  /** Closes the client's connections. */
  close(): Promise<void>;
}

/** The session type of a client: `ClientSession` for the driver's `MongoClient`. */
export type SessionOf<C extends MongoClientLike> = ReturnType<C['startSession']>;

/** What txkit reads from a driver error: labels first (transactions spec), codes only to name a misuse. */
export interface MongoErrorLike {
  /** The driver's error class name. */
  readonly name?: string;
  /** The error message. */
  readonly message?: string;
  /** The server's error code. */
  readonly code?: number | string;
  /** The server's name for the code, e.g. `WriteConflict`. */
  readonly codeName?: string;
  /** Error labels, e.g. `TransientTransactionError`. */
  readonly errorLabels?: readonly string[];
  /** True when the error carries `label`; preferred over `errorLabels` when present. */
  hasErrorLabel?(label: string): boolean;
  /** The write concern failure of a command that otherwise succeeded. */
  readonly writeConcernError?: { readonly code?: number; readonly codeName?: string };
  /** The server's error that the driver wrapped in this one. */
  readonly originalError?: MongoErrorLike;
}
