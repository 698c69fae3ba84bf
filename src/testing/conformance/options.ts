import type { Transaction, TransactionContext } from '../../core/index.js';

/** One fresh context plus a way to write and read through it, made per test. */
export interface ConformanceSubject<H> {
  readonly context: TransactionContext<H, object>;
  /** Writes `value` under `key` inside `tx` (a row, a document, a message with that key...). */
  write(tx: Transaction<H>, key: string, value: string): Promise<void>;
  /** The committed value of `key`, read outside any transaction; undefined when absent. */
  read(key: string): Promise<string | undefined>;
  /** Frees what make() created (tables, topics, clients); the suite closes the context itself. */
  cleanup?(): Promise<void>;
}

/** What the backend under test supports; cases that need a missing feature are skipped. */
export interface ConformanceCapabilities {
  /** The backend supports savepoints (`propagation: 'nested'`). */
  savepoints: boolean;
  /** Two transactions can be open at once on one context (`requires_new` inside a running one). */
  concurrentTransactions: boolean;
}

/** The subset of a test framework the suite uses: vitest, jest, mocha and node:test all fit. */
export interface TestApi {
  /** Declares a group of tests. */
  describe(name: string, fn: () => void): unknown;
  /** Declares one test with its timeout in milliseconds. */
  it(name: string, fn: () => Promise<void>, timeoutMs?: number): unknown;
}

/** Options of {@link testTransactionContext}. */
export interface ConformanceOptions<H> {
  /** Names the suite in the test report, e.g. `postgres (knex)`. */
  name: string;
  /** Makes a fresh subject for each test. */
  make: () => Promise<ConformanceSubject<H>>;
  /** What the backend supports. */
  capabilities: ConformanceCapabilities;
  /**
   * The test framework's functions.
   * @default the globals `describe` and `it`
   */
  test?: TestApi;
  /** Per-test timeout for slow backends. @default 30_000 */
  timeoutMs?: number;
}
