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
