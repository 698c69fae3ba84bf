import type {
  OptionalPropagation,
  OptionalTransactionCallback,
  RequiredPropagation,
  RunOptions,
  Transaction,
  TransactionCallback,
  TransactionContext,
} from './types.js';

/**
 * Runs `fn` through `ctx` with an optional propagation mode (`never`,
 * `supports`, `not_supported`): without a transaction, or joined to the
 * running one. The same as `ctx.withTransaction(fn, options)`.
 */
export function withTransaction<H, O extends object, T>(
  ctx: TransactionContext<H, O>,
  fn: OptionalTransactionCallback<H, T>,
  options: O & RunOptions & { propagation: OptionalPropagation },
): Promise<T>;
/**
 * Runs `fn` as one unit of work in a transaction of `ctx`, with the retry
 * loop and propagation rules of txkit; the same as
 * `ctx.withTransaction(fn, options)` (see {@link TransactionContext.withTransaction}
 * for what it throws). The transaction commits when `fn` returns and aborts
 * when it throws; transient failures rerun the whole unit.
 * @example
 * ```ts
 * import { withTransaction } from 'txkit';
 * import { knexTransactions } from 'txkit/sql';
 *
 * const ctx = knexTransactions(knex);
 * const orderId = await withTransaction(ctx, async (tx) => {
 *   const [row] = await tx.handle('orders').insert({ total: 10 }).returning('id');
 *   return row.id;
 * }, { isolationLevel: 'serializable' });
 * ```
 */
export function withTransaction<H, O extends object, T>(
  ctx: TransactionContext<H, O>,
  fn: TransactionCallback<H, T>,
  options?: O & RunOptions & { propagation?: RequiredPropagation },
): Promise<T>;
export function withTransaction<H, O extends object, T>(
  ctx: TransactionContext<H, O>,
  fn: (tx: Transaction<H>) => Promise<T>,
  options?: O & RunOptions,
): Promise<T> {
  return (ctx.withTransaction as (f: typeof fn, o?: O & RunOptions) => Promise<T>)(fn, options);
}
