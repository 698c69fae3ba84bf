/**
 * MongoDB transactions on the official driver ({@link mongoTransactions}):
 * one ClientSession per transaction, errors judged by their labels as the
 * MongoDB transactions spec prescribes. The driver is typed structurally and
 * never loaded by txkit itself.
 *
 * @module txkit/mongo
 */
export { mongoTransactions } from './mongo-context.js';
export type { MongoTransactionContext, MongoTransactionsOptions, MongoTxOptions } from './mongo-context.js';
export {
  MongoCommitTimeoutError,
  MongoErrorLabel,
  MongoForeignSessionError,
  MongoParallelUseError,
  MongoTopologyError,
  classifyMongoError,
} from './mongo-errors.js';
export type {
  MongoClientLike,
  MongoErrorLike,
  MongoReadConcernLevel,
  MongoReadConcernLike,
  MongoReadPreferenceLike,
  MongoReadPreferenceMode,
  MongoSessionLike,
  MongoSessionOptionsLike,
  MongoTransactionOptionsLike,
  MongoWriteConcernLike,
  SessionOf,
} from './mongo-types.js';
