/**
 * Test support for txkit contexts: {@link injectFaults} makes begin, callback
 * or commit fail on purpose through the real error path, and
 * {@link testTransactionContext} is the conformance suite every
 * TransactionContext must pass, {@link testOutboxStore} the one every
 * outbox store must pass. {@link pgliteTransactions} starts Postgres in the
 * test process (PGlite) and returns a context on it, for tests of code
 * written against `pgTransactions` or `knexTransactions`.
 *
 * @module txkit/testing
 */
export { injectFaults } from './inject-faults.js';
export type { FaultInjection, FaultSpec } from './inject-faults.js';
export type { FaultPoint, LostCommitPart } from '../core/faults.js';
export { testTransactionContext } from './conformance/suite.js';
export { rejection } from './conformance/support.js';
export type { ConformanceCapabilities, ConformanceOptions, ConformanceSubject, TestApi } from './conformance/options.js';
export { testOutboxStore } from './outbox-store-conformance.js';
export type { OutboxStoreConformanceOptions, OutboxStoreSubject } from './outbox-store-conformance.js';
export { pgliteTransactions } from './pglite.js';
export type {
  PgliteClient,
  PgliteDatabase,
  PgliteKnexOptions,
  PgliteOptions,
  PglitePool,
  PglitePoolOptions,
  PgliteQueryResult,
  PgliteTransactions,
} from './pglite.js';
