import { describe, expect, it } from 'vitest';
import { createTransactionContext } from '../../src/core/index.js';
import { OpenList } from '../../src/core/open-list.js';
import { MemoryDriver, MemoryStore } from '../../src/adapters/memory/index.js';

describe('a context’s open transactions', () => {
  it('OpenList: members leave from the head, the middle and the tail; a node deleted twice stays out', () => {
    const list = new OpenList<string>();
    const nodes = ['a', 'b', 'c', 'd', 'e'].map((v) => list.add(v));
    expect(list.values()).toEqual(['e', 'd', 'c', 'b', 'a']);
    list.delete(nodes[2]!); // middle
    list.delete(nodes[4]!); // head
    list.delete(nodes[0]!); // tail
    list.delete(nodes[2]!); // again: nothing changes
    expect(list.values()).toEqual(['d', 'b']);
    const f = list.add('f');
    expect(list.values()).toEqual(['f', 'd', 'b']);
    for (const n of [f, nodes[1]!, nodes[3]!]) list.delete(n);
    expect(list.values()).toEqual([]);
  });

  it('close() aborts exactly the transactions still open, begun by hand or in a unit, and leaves ended ones alone', async () => {
    const store = new MemoryStore();
    const ctx = createTransactionContext(new MemoryDriver(store));
    const byHand = await Promise.all(Array.from({ length: 6 }, () => ctx.begin()));
    await byHand[0]!.commit();
    await byHand[2]!.abort();
    await byHand[4]!.commit();
    // Units still in their callback when close() is called.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const inUnits: string[] = [];
    const units = Array.from({ length: 3 }, (_, i) =>
      ctx
        .withTransaction(async (tx) => {
          inUnits.push(tx.state);
          await held;
          return i;
        })
        .then(
          () => 'committed',
          (err: unknown) => (err as { code?: string }).code ?? String(err),
        ),
    );
    await expect.poll(() => inUnits.length, { timeout: 5_000 }).toBe(3);
    const closing = ctx.close();
    release();
    await closing;
    expect(byHand.map((tx) => tx.state)).toEqual(['committed', 'aborted', 'aborted', 'aborted', 'committed', 'aborted']);
    const outcomes = await Promise.all(units);
    expect(outcomes).toEqual(['CONTEXT_CLOSED', 'CONTEXT_CLOSED', 'CONTEXT_CLOSED']);
  });
});
