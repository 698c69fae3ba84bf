/**
 * The conformance suite must catch broken adapters: run it against contexts
 * with a planted defect and check that the right cases fail.
 */
import { describe, expect, it } from 'vitest';
import { createTransactionContext } from '../../src/core/index.js';
import type { DriverTransaction, TransactionDriver } from '../../src/core/index.js';
import { MemoryDriver, MemoryStore } from '../../src/adapters/memory/index.js';
import type { MemoryTxHandle } from '../../src/adapters/memory/index.js';
import { testTransactionContext } from '../../src/testing/index.js';
import type { TestApi } from '../../src/testing/index.js';

/** Replaces some methods of a working memory transaction. */
type Defect = (tx: DriverTransaction<MemoryTxHandle>) => {
  [K in keyof DriverTransaction<MemoryTxHandle>]?: DriverTransaction<MemoryTxHandle>[K] | undefined;
};

function withDefect(tx: DriverTransaction<MemoryTxHandle>, defect: Defect): DriverTransaction<MemoryTxHandle> {
  const { recommit, savepoint } = tx as Required<DriverTransaction<MemoryTxHandle>>;
  // A defect may take a method away (undefined): the core must then do without it.
  return {
    handle: tx.handle,
    commit: () => tx.commit(),
    rollback: () => tx.rollback(),
    recommit: () => recommit.call(tx),
    savepoint: () => savepoint.call(tx),
    ...defect(tx),
  } as DriverTransaction<MemoryTxHandle>;
}

/** Collects the suite's cases instead of registering them, then runs them and reports which failed. */
async function runSuiteAgainst(defect: Defect, savepoints = true): Promise<Map<string, boolean>> {
  const cases: { name: string; fn: () => Promise<void> }[] = [];
  const path: string[] = [];
  const api: TestApi = {
    describe(name, fn) {
      path.push(name);
      fn();
      path.pop();
    },
    it(name, fn) {
      cases.push({ name: [...path.slice(1), name].join(' > '), fn });
    },
  };
  testTransactionContext({
    name: 'defective',
    test: api,
    capabilities: { savepoints, concurrentTransactions: true },
    make: async () => {
      const store = new MemoryStore();
      const base = new MemoryDriver(store);
      const driver: TransactionDriver<MemoryTxHandle> = {
        backend: 'memory',
        // Savepoints are supported exactly when the transactions have savepoint().
        begin: async () => withDefect(await base.begin(), savepoints ? defect : (tx) => ({ savepoint: undefined, ...defect(tx) })),
        classify: (e) => base.classify(e),
        close: () => base.close(),
      };
      const context = createTransactionContext(driver);
      return {
        context,
        write: (tx, key, value) => tx.handle.set(key, value),
        read: async (key) => store.get(key) as string | undefined,
      };
    },
  });
  const passed = new Map<string, boolean>();
  for (const c of cases) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    // A defect may also show as a case that never ends: bound each one.
    const hang = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${c.name}: hung`)), 5_000)));
    try {
      await Promise.race([c.fn(), hang]);
      passed.set(c.name, true);
    } catch (err) {
      if (process.env.TXKIT_DEBUG) console.log(c.name, err);
      passed.set(c.name, false);
    } finally {
      clearTimeout(timer);
    }
  }
  return passed;
}

const failing = (results: Map<string, boolean>): string[] => [...results].filter(([, ok]) => !ok).map(([n]) => n);

describe('the conformance suite catches defects', () => {
  it('passes a correct adapter in full', async () => {
    const results = await runSuiteAgainst(() => ({}));
    expect(failing(results)).toEqual([]);
    expect(results.size).toBeGreaterThan(30);
  });

  it('fails an adapter whose commit does not make writes durable', async () => {
    const results = await runSuiteAgainst((tx) => ({ commit: () => tx.rollback(), recommit: () => tx.rollback() }));
    expect(failing(results)).toEqual(
      expect.arrayContaining([
        'commit and abort > commits: the write is visible after withTransaction returns, with the callback result',
        'retry > an unknown commit result (its request lost) is resolved without losing or repeating the commit, or reported as unknown',
      ]),
    );
  });

  it('fails an adapter whose commit recovery throws a commit away that never arrived', async () => {
    // Commit itself works; only the recommit after a lost request rolls back instead of committing.
    const results = await runSuiteAgainst((tx) => ({ recommit: () => tx.rollback() }));
    expect(failing(results)).toEqual([
      'retry > an unknown commit result (its request lost) is resolved without losing or repeating the commit, or reported as unknown',
    ]);
  });

  it('fails an adapter whose commit recovery takes an applied commit for a rolled-back one (the unit runs twice)', async () => {
    const results = await runSuiteAgainst(() => ({ recommit: undefined, resolveCommit: async () => 'aborted' as const }));
    expect(failing(results)).toEqual(
      expect.arrayContaining([
        'retry > an unknown commit result (its reply lost) is resolved without losing or repeating the commit, or reported as unknown',
      ]),
    );
  });

  it('passes an adapter that cannot resolve an unknown commit and says so', async () => {
    const results = await runSuiteAgainst(() => ({ recommit: undefined }));
    expect(failing(results)).toEqual([]);
  });

  it('fails an adapter whose rollback commits anyway', async () => {
    const results = await runSuiteAgainst((tx) => ({ rollback: () => tx.commit() }));
    expect(failing(results)).toEqual(
      expect.arrayContaining([
        'commit and abort > aborts when the callback throws: the same error comes back and nothing is visible',
        'retry > a transient callback failure reruns the whole unit; only the last attempt commits',
        'timeouts and cancellation > timeoutMs aborts a transaction that runs too long and frees it',
      ]),
    );
  });

  it('fails an adapter that claims savepoints but whose savepoint rollback undoes nothing', async () => {
    const results = await runSuiteAgainst((tx) => ({
      savepoint: async () => ({ handle: tx.handle, release: async () => undefined, rollback: async () => undefined }),
    }));
    expect(failing(results)).toEqual(['propagation > nested rolls back only the inner scope on failure; the outer commits']);
  });
});
