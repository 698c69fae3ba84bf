import { describe, it } from 'vitest';
import { memoryTransactions } from '../../src/adapters/memory/index.js';
import { testTransactionContext } from '../../src/testing/index.js';

testTransactionContext({
  name: 'memory',
  test: { describe, it },
  capabilities: { savepoints: true, concurrentTransactions: true },
  make: async () => {
    const context = memoryTransactions();
    return {
      context,
      write: (tx, key, value) => tx.handle.set(key, value),
      read: async (key) => context.store.get(key) as string | undefined,
    };
  },
});
