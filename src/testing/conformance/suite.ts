import { ConfigError } from '../../core/index.js';
import { commitAndAbortCases } from './commit-abort.js';
import { hookCases } from './hooks.js';
import { lifecycleCases } from './lifecycle.js';
import type { ConformanceOptions, ConformanceSubject, TestApi } from './options.js';
import { propagationCases } from './propagation.js';
import { retryCases } from './retry.js';
import { stateErrorCases } from './state-errors.js';
import type { SuiteKit } from './support.js';
import { timeoutCases } from './timeouts.js';

/**
 * The suite every TransactionContext must pass. Call it from a test file of
 * the adapter, once per backend flavour; add backend-specific cases beside it.
 * @throws ConfigError when `test` is not given and the framework's globals
 *   `describe` and `it` are missing.
 * @example
 * ```ts
 * import { describe, it } from 'vitest';
 * import { memoryTransactions } from 'txkit/memory';
 * import { testTransactionContext } from 'txkit/testing';
 *
 * testTransactionContext({
 *   name: 'memory',
 *   test: { describe, it },
 *   capabilities: { savepoints: true, concurrentTransactions: true },
 *   make: async () => {
 *     const context = memoryTransactions();
 *     return {
 *       context,
 *       write: (tx, key, value) => tx.handle.set(key, value),
 *       read: async (key) => context.store.get(key) as string | undefined,
 *     };
 *   },
 * });
 * ```
 */
export function testTransactionContext<H>(options: ConformanceOptions<H>): void {
  const api = options.test ?? globalTestApi();
  const { describe } = api;
  const timeout = options.timeoutMs ?? 30_000;
  const caps = options.capabilities;
  let seq = 0;
  const uniq = (label: string): string => `${label}-${process.pid}-${Date.now().toString(36)}-${seq++}`;

  /** Runs a test with a fresh subject, closing the context (twice: close is idempotent) and cleaning up. */
  const it = (name: string, body: (s: ConformanceSubject<H>) => Promise<void>, when = true): void => {
    if (!when) return;
    api.it(
      name,
      async () => {
        const subject = await options.make();
        try {
          await body(subject);
        } finally {
          await subject.context.close();
          await subject.context.close();
          await subject.cleanup?.();
        }
      },
      timeout,
    );
  };

  const kit: SuiteKit<H> = { describe, it, uniq, caps };
  describe(`${options.name}: TransactionContext conformance`, () => {
    commitAndAbortCases(kit);
    retryCases(kit);
    stateErrorCases(kit);
    hookCases(kit);
    propagationCases(kit);
    timeoutCases(kit);
    lifecycleCases(kit);
  });
}

function globalTestApi(): TestApi {
  const g = globalThis as { describe?: TestApi['describe']; it?: TestApi['it'] };
  if (typeof g.describe !== 'function' || typeof g.it !== 'function') {
    throw new ConfigError(
      "testTransactionContext needs your test framework's functions: pass { test: { describe, it } } " +
        "(e.g. import { describe, it } from 'vitest'), or enable its globals",
    );
  }
  return { describe: g.describe, it: g.it };
}
