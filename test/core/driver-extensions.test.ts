/**
 * The optional members of the driver contract, each used by a custom driver
 * through createTransactionContext, as a backend of a user's own would.
 */
import { describe, expect, it } from 'vitest';
import { MemoryDriver, MemoryStore } from '../../src/adapters/memory/index.js';
import type { MemoryTxHandle } from '../../src/adapters/memory/index.js';
import { TransactionPropagationError, createTransactionContext } from '../../src/core/index.js';
import type { DriverTransaction, TransactionDriver } from '../../src/core/index.js';

/** A memory driver whose transactions have savepoint() only when `savepoints` is true, whatever it declares. */
function memoryDriver(store: MemoryStore, savepoints: boolean, declared?: boolean): TransactionDriver<MemoryTxHandle> {
  const base = new MemoryDriver(store);
  return {
    backend: 'memory',
    ...(declared === undefined ? {} : { capabilities: { savepoints: declared } }),
    begin: async () => {
      const dtx = await base.begin();
      const tx: DriverTransaction<MemoryTxHandle> = {
        handle: dtx.handle,
        commit: () => dtx.commit(),
        rollback: () => dtx.rollback(),
      };
      if (savepoints) tx.savepoint = () => (dtx.savepoint as NonNullable<typeof dtx.savepoint>).call(dtx);
      return tx;
    },
    classify: (err) => base.classify(err),
    close: () => base.close(),
  };
}

describe('driver contract: savepoints', () => {
  it("a driver whose transactions have savepoint() runs propagation 'nested' (a deprecated capabilities: false is ignored)", async () => {
    const store = new MemoryStore();
    const ctx = createTransactionContext(memoryDriver(store, true, false));
    await ctx.withTransaction(async (tx) => {
      await tx.handle.set('outer', 1);
      await expect(
        ctx.withTransaction(
          async (inner) => {
            await inner.handle.set('inner', 1);
            throw new Error('undo the savepoint only');
          },
          { propagation: 'nested' },
        ),
      ).rejects.toThrow('undo the savepoint only');
    });
    expect(store.get('outer')).toBe(1);
    expect(store.get('inner')).toBeUndefined();
    await ctx.close();
  });

  it("a driver without savepoint() refuses propagation 'nested' inside a transaction (a deprecated capabilities: true is ignored)", async () => {
    const store = new MemoryStore();
    const ctx = createTransactionContext(memoryDriver(store, false, true));
    let ran = false;
    const err = await ctx
      .withTransaction(() =>
        ctx.withTransaction(
          async () => {
            ran = true;
          },
          { propagation: 'nested' },
        ),
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransactionPropagationError);
    expect((err as Error).message).toMatch(/propagation 'nested' needs savepoints, which the memory adapter does not have/);
    expect(ran).toBe(false);
    await ctx.close();
  });
});
