/**
 * The core of txkit: one transaction model for every backend.
 * {@link TransactionContext} and {@link withTransaction} run a unit of work
 * with retry, propagation, hooks and timeouts; the typed errors
 * ({@link TxkitError} and its subclasses) say what went wrong and whether a
 * rerun is safe; {@link createTransactionContext} turns a
 * {@link TransactionDriver} into a context. The backends live in the subpath
 * modules `txkit/sql`, `txkit/mongo`, `txkit/kafka`, `txkit/pulsar` and
 * `txkit/memory`.
 *
 * @module txkit
 */
export * from './core/index.js';
