/**
 * Load on the memory backend: 200 concurrent withTransaction units on 5 hot
 * keys (read, then write the new total). The store's write conflicts are
 * transient, so units rerun. Every unit commits exactly once (afterCommit
 * hook and committed-units keys agree) or fails with a typed error; the
 * totals are the committed units' sums; afterwards no transaction holds a
 * key.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import { ROWS, UNITS, checkRun, runUnits } from './load-units.js';

const hotKey = (row: number): string => `hot/${row}`;
const unitKey = (unit: number): string => `committed-units/${unit}`;

describe('load on the memory backend: 200 units on 5 hot keys', () => {
  it('each unit commits once or fails typed, totals match, no key left claimed', async () => {
    const store = new MemoryStore();
    const ctx = memoryTransactions({ store });
    await ctx.withTransaction(async (tx) => {
      for (let r = 0; r < ROWS; r++) await tx.handle.set(hotKey(r), 0);
    });
    const result = await runUnits(
      ctx,
      {
        read: async (tx, row) => (await tx.handle.get(hotKey(row))) as number,
        write: (tx, row, total) => tx.handle.set(hotKey(row), total),
        // A counter read and written in the unit: a second commit of one unit would leave 2.
        record: async (tx, unit) => tx.handle.set(unitKey(unit), (((await tx.handle.get(unitKey(unit))) as number | undefined) ?? 0) + 1),
      },
      {},
    );
    const committed = {
      totals: new Map(Array.from({ length: ROWS }, (_, r) => [r, store.get(hotKey(r)) as number])),
      units: new Map(store.keys('committed-units/').map((k) => [Number(k.slice('committed-units/'.length)), store.get(k) as number])),
    };
    // The memory backend has no connections: what could leak is a key claimed by a transaction that never ended.
    // A unit that must not retry writes every hot key: it fails on any claim left behind.
    let leftClaimed = 0;
    try {
      await ctx.withTransaction(async (tx) => {
        for (let r = 0; r < ROWS; r++) await tx.handle.set(hotKey(r), store.get(hotKey(r)));
      }, { retry: false });
    } catch {
      leftClaimed = 1;
    }
    checkRun('memory', result, committed, leftClaimed);
    assert.ok(result.runs > UNITS, 'write conflicts occurred and their units ran again');
    await ctx.close();
  }, 240_000);
});
