/**
 * The optional members of the driver contract, each used by a custom driver
 * through createTransactionContext, as a backend of a user's own would.
 */
import { describe, expect, it } from 'vitest';
import { MemoryDriver, MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import type { MemoryTxHandle } from '../../src/adapters/memory/index.js';
import { HandleGuard } from '../../src/core/handle-guard.js';
import { TransactionPropagationError, TransactionStateError, createTransactionContext } from '../../src/core/index.js';
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

describe('handle guard', () => {
  it('refuses every call once the transaction ended, with HANDLE_ENDED in the one message shape of every adapter', async () => {
    const guard = new HandleGuard<'committed' | 'rolled back'>({
      backend: 'memory',
      label: 'custom',
      describe: (ended) => ({ how: `was ${ended}`, state: ended === 'committed' ? 'committed' : 'aborted' }),
      advice: ' (a custom hint)',
    });
    expect(guard.refusal('put')).toBeUndefined();
    guard.assertOpen('put');
    guard.ended = 'rolled back';
    const err = guard.refusal('put');
    expect(err).toBeInstanceOf(TransactionStateError);
    expect(err?.code).toBe('HANDLE_ENDED');
    expect(err?.state).toBe('aborted');
    expect(err?.method).toBe('put');
    expect(err?.message).toBe(
      'put() is not allowed: this custom transaction handle belongs to a transaction that was rolled back; ' +
        'use the handle of the transaction you are in (a custom hint)',
    );
    expect(() => guard.assertOpen('get')).toThrow(/^get\(\) is not allowed: this custom transaction handle belongs to a transaction that was rolled back/);

    // The memory adapter's handles refuse through the same guard.
    const ctx = memoryTransactions();
    const kept = await ctx.withTransaction(async (tx) => tx.handle);
    const refused = await kept.get('k').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TransactionStateError);
    expect((refused as TransactionStateError).message).toBe(
      'get() is not allowed: this memory transaction handle belongs to a transaction that was committed; use the handle of the transaction you are in',
    );
    await ctx.close();
  });
});
