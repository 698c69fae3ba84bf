import { describe, expect, it } from 'vitest';
import { ConfigError, TransactionStateError } from '../../src/core/index.js';
import { MemoryStore, MemoryWriteConflictError, memoryTransactions } from '../../src/adapters/memory/index.js';
import type { MemoryTxHandle } from '../../src/adapters/memory/index.js';
import type { Transaction } from '../../src/core/index.js';
import { rejection } from '../../src/testing/index.js';

/** A promise with its resolve function, to line two transactions up without sleeping. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

describe('memory backend', () => {
  it('reads are read-committed: uncommitted writes of another transaction are invisible', async () => {
    const ctx = memoryTransactions();
    const writer = await ctx.begin();
    await writer.handle.set('k', 'uncommitted');
    const seen = await ctx.withTransaction(async (tx) => tx.handle.get('k'));
    expect(seen).toBeUndefined();
    await writer.commit();
    expect(await ctx.withTransaction(async (tx) => tx.handle.get('k'))).toBe('uncommitted');
  });

  it('a write to a key another open transaction wrote is a real conflict, classified transient', async () => {
    const ctx = memoryTransactions();
    const first = await ctx.begin();
    await first.handle.set('k', 1);
    const second = await ctx.begin();
    const err = await rejection(second.handle.set('k', 2));
    expect(err).toBeInstanceOf(MemoryWriteConflictError);
    expect((err as MemoryWriteConflictError).retriable).toBe(true);
    await first.commit();
    await second.abort();
  });

  it('concurrent read-modify-write units conflict for real and are retried until each counts once', async () => {
    const ctx = memoryTransactions({ retry: { initialDelayMs: 0, maxDelayMs: 1 } });
    const bothRead = gate();
    let reads = 0;
    let attempts = 0;
    const increment = () =>
      ctx.withTransaction(async (tx: Transaction<MemoryTxHandle>) => {
        attempts += 1;
        const n = ((await tx.handle.get('counter')) as number | undefined) ?? 0;
        if (tx.attempt === 1) {
          // Make both first attempts read the same value before either writes: a lost update unless detected.
          if (++reads === 2) bothRead.open();
          await bothRead.promise;
        }
        await tx.handle.set('counter', n + 1);
      });
    await Promise.all([increment(), increment()]);
    expect(ctx.store.get('counter')).toBe(2);
    expect(attempts).toBeGreaterThan(2);
  });

  it('a handle used after its transaction ended throws TransactionStateError', async () => {
    const ctx = memoryTransactions();
    let handle: MemoryTxHandle | undefined;
    await ctx.withTransaction(async (tx) => {
      handle = tx.handle;
    });
    const err = await rejection((handle as MemoryTxHandle).set('late', 1));
    expect(err).toBeInstanceOf(TransactionStateError);
    expect((err as TransactionStateError).code).toBe('HANDLE_ENDED');
    expect(ctx.store.get('late')).toBeUndefined();
  });

  it('messages are published on commit only, with offsets per partition and consumer positions committed alongside', async () => {
    const store = new MemoryStore({ partitions: 3 });
    const ctx = memoryTransactions({ store });
    await rejection(
      ctx.withTransaction(async (tx) => {
        await tx.handle.send({ topic: 't', messages: [{ key: 'a', value: 'lost' }] });
        throw new Error('abort');
      }),
    );
    expect(store.messages('t')).toEqual([]);
    await ctx.withTransaction(async (tx) => {
      await tx.handle.sendBatch({
        topicMessages: [{ topic: 't', messages: [{ key: 'a', value: '1' }, { key: 'a', value: '2' }, { key: 'b', value: '3' }] }],
      });
      await tx.handle.sendOffsets({ consumerGroupId: 'g', topics: [{ topic: 'in', partitions: [{ partition: 0, offset: '7' }] }] });
    });
    const all = store.messages('t');
    expect(all.map((m) => m.value)).toEqual(['1', '2', '3']);
    const a = all.filter((m) => m.key === 'a');
    expect(a[0]?.partition).toBe(a[1]?.partition);
    expect(a.map((m) => m.offset)).toEqual([0, 1]);
    expect(store.committedOffset('g', 'in', 0)).toBe(7);
  });

  it('bad input gets ConfigError saying what was wrong, and nothing is sent', async () => {
    const ctx = memoryTransactions();
    const cases: [string, (h: MemoryTxHandle) => Promise<unknown>, RegExp][] = [
      ['empty topic', (h) => h.send({ topic: '', messages: [{ value: 'x' }] }), /non-empty topic/],
      ['no messages', (h) => h.send({ topic: 't', messages: [] }), /non-empty messages/],
      ['object value', (h) => h.send({ topic: 't', messages: [{ value: { a: 1 } as never }] }), /serialize objects first/],
      ['bad header', (h) => h.send({ topic: 't', messages: [{ value: 'x', headers: { n: 5 as never } }] }), /headers\['n'\]/],
      ['bad offset', (h) => h.sendOffsets({ consumerGroupId: 'g', topics: [{ topic: 't', partitions: [{ partition: 0, offset: 'x' }] }] }), /decimal strings/],
      ['empty key', (h) => h.set('', 1), /non-empty string key/],
      ['undefined value', (h) => h.set('k', undefined), /use delete/],
    ];
    for (const [name, call, message] of cases) {
      const err = await rejection(ctx.withTransaction(async (tx) => call(tx.handle)));
      expect(err, name).toBeInstanceOf(ConfigError);
      expect((err as Error).message, name).toMatch(message);
    }
    expect(ctx.store.messages('t')).toEqual([]);
  });

  it('committed values are copies: mutating what you read or wrote changes nothing stored', async () => {
    const ctx = memoryTransactions();
    const value = { n: 1 };
    await ctx.withTransaction(async (tx) => tx.handle.set('obj', value));
    value.n = 99;
    const read = ctx.store.get('obj') as { n: number };
    read.n = 42;
    expect(ctx.store.get('obj')).toEqual({ n: 1 });
  });
});
