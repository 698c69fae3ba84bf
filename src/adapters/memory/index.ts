/**
 * An in-memory transactional key-value store and message broker
 * ({@link memoryTransactions}, {@link MemoryStore}): no server, real write
 * conflicts, read-committed visibility. For tests and examples.
 *
 * @module txkit/memory
 */
export { MemoryDriver, memoryTransactions } from './memory-context.js';
export type { MemoryTransactionContext, MemoryTransactionsOptions } from './memory-context.js';
export { MemoryStore } from './memory-store.js';
export { MemoryWriteConflictError } from './memory-errors.js';
export type { CommittedMessage, MemoryStoreOptions, MemoryTxHandle } from './memory-types.js';
