/**
 * SQL transactions on knex ({@link knexTransactions}: Postgres, MySQL/MariaDB,
 * SQLite) or on a pg Pool ({@link pgTransactions}), with isolation levels,
 * read-only and deferrable transactions, savepoints and optional commit
 * verification on Postgres. knex and pg are typed structurally and never
 * loaded by txkit itself.
 *
 * @module txkit/sql
 */
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
