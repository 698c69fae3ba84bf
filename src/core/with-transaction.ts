import type {
  OptionalPropagation,
  OptionalTransactionCallback,
  RequiredPropagation,
  RunOptions,
  Transaction,
  TransactionCallback,
  TransactionContext,
} from './types.js';

/** Runs `fn` in a transaction of `ctx`, with the retry loop and propagation rules of txkit. */
export function withTransaction<H, O extends object, T>(
  ctx: TransactionContext<H, O>,
  fn: OptionalTransactionCallback<H, T>,
  options: O & RunOptions & { propagation: OptionalPropagation },
): Promise<T>;
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
