import { TransactionStateError, TxkitError, UnknownCommitResultError, classifyKnown } from '../../core/index.js';
import type { Classification } from '../../core/index.js';
import type { MongoErrorLike } from './mongo-types.js';

/** Error labels of the transactions spec ("Error reporting changes"); the server or the driver sets them. */
export const MongoErrorLabel = Object.freeze({
  TransientTransactionError: 'TransientTransactionError',
  UnknownTransactionCommitResult: 'UnknownTransactionCommitResult',
} as const);

/** Server error codes txkit looks at. Classification never uses them: only labels decide a retry. */
const MAX_TIME_MS_EXPIRED = 50;
const ILLEGAL_OPERATION = 20;
const CONFLICTING_OPERATION_IN_PROGRESS = 117;

/**
 * The commit ran into `maxCommitTimeMS`. The driver labels it
 * UnknownTransactionCommitResult (the commit may have been applied), but the
 * convenient-transaction spec does not retry it: "doing so would exceed the
 * user's original intention for maxTimeMS" (step 10.1). So txkit does not
 * either: the transaction ends `failed`, with neither hook list run.
 */
export class MongoCommitTimeoutError extends UnknownCommitResultError {
  constructor(cause: unknown) {
    super(
      `the MongoDB commitTransaction exceeded maxCommitTimeMS (MaxTimeMSExpired), so its outcome is unknown; ` +
        'txkit does not retry it (transactions convenient API, step 10.1): check whether the writes are present ' +
        'before running the work again, or raise maxCommitTimeMS',
      { backend: 'mongodb', code: 'COMMIT_TIMEOUT', cause },
    );
  }
}

/** A ClientSession of this context was used with a collection of a different MongoClient. */
export class MongoForeignSessionError extends TxkitError {
  constructor(cause: unknown) {
    super(
      'FOREIGN_SESSION',
      'a MongoDB transaction session (tx.handle) was passed to an operation of a different MongoClient than the one ' +
        'given to mongoTransactions(); take collections from that same client (client.db(...).collection(...)), or ' +
        'make a second context with mongoTransactions(otherClient) for the other deployment',
      { backend: 'mongodb', cause },
    );
  }
}

/** The deployment cannot run transactions: a standalone mongod, or a server without sessions. */
export class MongoTopologyError extends TxkitError {
  constructor(cause: unknown) {
    super(
      'UNSUPPORTED_TOPOLOGY',
      'MongoDB transactions need a replica set or a sharded cluster, and this server is a standalone; run it as a ' +
        'single-node replica set (mongod --replSet rs0, then rs.initiate()) and connect with ?replicaSet=rs0',
      { backend: 'mongodb', cause },
    );
  }
}

/** Two operations of one transaction ran at the same time on its session. */
export class MongoParallelUseError extends TxkitError {
  constructor(cause: unknown) {
    super(
      'PARALLEL_USE',
      'two operations ran in parallel on one MongoDB transaction and the server refused one of them; a transaction ' +
        "runs its operations one at a time: await each instead of Promise.all, or give each concurrent branch its own " +
        "transaction (propagation: 'requires_new')",
      { backend: 'mongodb', cause },
    );
  }
}

function asMongoError(err: unknown): MongoErrorLike | undefined {
  return typeof err === 'object' && err !== null ? (err as MongoErrorLike) : undefined;
}

/** Whether a driver error carries `label`, whether the server or the driver added it. */
export function hasErrorLabel(err: unknown, label: string): boolean {
  const e = asMongoError(err);
  if (e === undefined) return false;
  if (typeof e.hasErrorLabel === 'function') return e.hasErrorLabel(label);
  return Array.isArray(e.errorLabels) && e.errorLabels.includes(label);
}

/** MaxTimeMSExpired as a top-level error or inside writeConcernError (convenient API pseudo-code). */
export function isMaxTimeMSExpired(err: unknown): boolean {
  const e = asMongoError(err);
  return e !== undefined && (e.code === MAX_TIME_MS_EXPIRED || e.writeConcernError?.code === MAX_TIME_MS_EXPIRED);
}

/**
 * Judges a driver error by its labels only, as the convenient-transaction
 * spec does: TransientTransactionError reruns the unit (step 7.2, 10.2);
 * UnknownTransactionCommitResult retries only the commit (step 10.1), except
 * after MaxTimeMSExpired; anything else is fatal and thrown as it is.
 */
export function classifyMongoError(err: unknown): Classification {
  const known = classifyKnown(err);
  if (known !== undefined) return known;
  if (hasErrorLabel(err, MongoErrorLabel.TransientTransactionError)) return 'transient';
  if (hasErrorLabel(err, MongoErrorLabel.UnknownTransactionCommitResult) && !isMaxTimeMSExpired(err)) {
    return 'commit-unknown';
  }
  return 'fatal';
}

/**
 * A failed commitTransaction as txkit reports it: an unknown result becomes
 * UnknownCommitResultError (MongoCommitTimeoutError after MaxTimeMSExpired);
 * anything else, transient or not, stays the driver's own error.
 */
export function commitError(err: unknown): unknown {
  if (!hasErrorLabel(err, MongoErrorLabel.UnknownTransactionCommitResult)) return err;
  if (isMaxTimeMSExpired(err)) return new MongoCommitTimeoutError(err);
  const detail = asMongoError(err)?.message ?? String(err);
  return new UnknownCommitResultError(
    `the MongoDB commitTransaction result is unknown (UnknownTransactionCommitResult: ${detail}); ` +
      "withTransaction retries only the commit, with write concern w: 'majority', until retry.deadlineMs; " +
      'after begin(), call commit() again to retry it',
    { backend: 'mongodb', cause: err },
  );
}

/**
 * Misuses the driver or the server only report in their own words, turned
 * into typed errors. Matching messages is a last resort: the driver gives
 * these no code, and the server's codes are too broad on their own.
 */
const MISUSES: readonly { readonly test: (e: MongoErrorLike) => boolean; readonly make: (cause: unknown) => TxkitError }[] = [
  {
    // node-mongodb-native src/operations/execute_operation.ts
    test: (e) => e.name === 'MongoInvalidArgumentError' && /ClientSession must be from the same MongoClient/.test(e.message ?? ''),
    make: (cause) => new MongoForeignSessionError(cause),
  },
  {
    // mongod on a standalone refuses any command with a txnNumber; the driver wraps that
    // refusal of a write in a "does not support retryable writes" error (originalError).
    test: (e) =>
      isStandaloneRefusal(e) ||
      (e.originalError !== undefined && isStandaloneRefusal(e.originalError)) ||
      (e.name === 'MongoCompatibilityError' && /does not support sessions/.test(e.message ?? '')),
    make: (cause) => new MongoTopologyError(cause),
  },
  {
    // mongod: two first commands of a transaction both carried startTransaction (they ran in parallel);
    // the driver in load-balanced mode: two operations tried to pin the session at once.
    test: (e) =>
      (e.code === CONFLICTING_OPERATION_IN_PROGRESS && /start a new transaction at the active transaction number/.test(e.message ?? '')) ||
      (e.name === 'TypeError' && /Cannot pin multiple connections to the same session/.test(e.message ?? '')),
    make: (cause) => new MongoParallelUseError(cause),
  },
  {
    // node-mongodb-native src/error.ts MongoExpiredSessionError: the session of an earlier unit, kept and used again.
    test: (e) => e.name === 'MongoExpiredSessionError',
    make: (cause) =>
      new TransactionStateError(
        'a MongoDB session (tx.handle) was used after its transaction ended, and txkit ends the session with the ' +
          'transaction; pass { session: tx.handle } of the transaction you are in, not one kept from an earlier unit',
        { backend: 'mongodb', cause, code: 'HANDLE_ENDED' },
      ),
  },
];

function isStandaloneRefusal(e: MongoErrorLike): boolean {
  return e.code === ILLEGAL_OPERATION && /only allowed on a replica set member or mongos/.test(e.message ?? '');
}

/** The typed error for a known misuse, or undefined. */
export function misuseError(err: unknown): TxkitError | undefined {
  const e = asMongoError(err);
  if (e === undefined || err instanceof TxkitError) return undefined;
  return MISUSES.find((m) => m.test(e))?.make(err);
}
