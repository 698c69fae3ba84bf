import { TransactionStateError } from './errors.js';
import type { BackendName, Transaction } from './types.js';

/**
 * Counts work started in one transaction scope that has not settled yet: a
 * publish, a joined or nested scope, a handle call txkit wraps. A scope
 * refuses to commit while the count is above zero, so a forgotten `await`
 * aborts the unit instead of committing without that work.
 */
export class PendingWork {
  count = 0;

  /**
   * Counts `work` until it settles. The count drops in a reaction registered
   * before the caller can await `work`, so an awaiting caller always sees it done.
   */
  track<T>(work: Promise<T>): Promise<T> {
    this.count += 1;
    const done = (): void => {
      this.count -= 1;
    };
    work.then(done, done);
    return work;
  }
}

/** The error of a commit refused while `count` operations started in the scope are still running. */
export function pendingWorkRefusal(backend: BackendName, scope: 'transaction' | 'savepoint', count: number): TransactionStateError {
  return new TransactionStateError(
    `commit refused: ${count} operation(s) started in this ${backend} ${scope} are still running ` +
      '(did you forget await? e.g. on outbox.publish(tx, ...) or a nested withTransaction); the unit was rolled back. ' +
      'Await every call that uses the transaction; the lint rule @typescript-eslint/no-floating-promises finds the ones that are not',
    { backend, code: 'PENDING_WORK', method: 'commit', state: 'committing' },
  );
}

/**
 * Registers `work` as started in `tx`: `tx` will refuse to commit until it
 * settles, and its unit is rolled back with TransactionStateError (code
 * PENDING_WORK) if it commits first. Libraries that take a transaction (the
 * outbox's `publish`, a repository helper) call this with their promise so a
 * caller's forgotten `await` cannot commit without their work.
 * Returns `work` itself. A transaction from another implementation is left as it is.
 * @example
 * ```ts
 * import { trackWork } from 'txkit';
 *
 * function saveOrder(tx: Transaction<Knex.Transaction>, order: Order): Promise<void> {
 *   return trackWork(tx, tx.handle('orders').insert(order).then(() => undefined));
 * }
 * ```
 */
export function trackWork<T>(tx: Transaction<unknown>, work: Promise<T>): Promise<T> {
  if (typeof tx !== 'object' || tx === null) return work;
  const track = (tx as { track?: unknown }).track;
  return typeof track === 'function' ? (track as (w: Promise<T>) => Promise<T>).call(tx, work) : work;
}
