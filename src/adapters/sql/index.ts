export { knexTransactions } from './knex-context.js';
export { pgTransactions } from './pg-context.js';
export { classifySqlError, sqlTransientReason } from './sql-errors.js';
export type { SqlTransientReason } from './sql-errors.js';
export type { IsolationLevel, SqlContextOptions, SqlOptions } from './sql-context.js';
export type {
  KnexClientLike,
  KnexLike,
  KnexTransactionConfigLike,
  KnexTransactionLike,
  KnexTransactionOf,
  PgPoolClientLike,
  PgPoolLike,
  PgQueryResultLike,
  PoolClientOf,
} from './sql-types.js';
