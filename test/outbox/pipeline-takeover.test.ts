/**
 * A worker fenced off a partition with `takeOverAfterMs` stands by and takes
 * the partition back once the worker that fenced it is gone and messages
 * wait; every effect still commits once (memory backend and memory broker).
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import type { MemoryTxHandle } from '../../src/adapters/memory/index.js';
import type { Transaction } from '../../src/core/index.js';
import { InboxFencedError, MemoryOutboxStore, memorySource, pipeline } from '../../src/outbox/index.js';
import { waitUntil } from '../support/wait-until.js';

describe('pipeline takeOverAfterMs', () => {
  it('a fenced worker stands by and takes its partition back after the other worker stops; every effect once', async () => {
    const broker = new MemoryStore({ partitions: 1 });
    const send = (from: number, to: number): Promise<unknown> =>
      memoryTransactions({ store: broker }).withTransaction((tx) =>
        tx.handle.send({ topic: 'in', messages: Array.from({ length: to - from }, (_, i) => ({ key: `k${from + i}`, value: String(from + i), partition: 0 })) }),
      );
    const data = new MemoryStore();
    const store = new MemoryOutboxStore(data, { partitions: 1 });
    const db = memoryTransactions({ store: data, retry: { initialDelayMs: 1, maxDelayMs: 5 } });
    const count = async (tx: Transaction<MemoryTxHandle>, value: string): Promise<void> => {
      const seen = (await tx.handle.get(`count:${value}`)) as number | undefined;
      await tx.handle.set(`count:${value}`, (seen ?? 0) + 1);
    };
    const position = (): Promise<number | undefined> => store.inboxPosition(undefined, { consumer: 'takeover', source: 'in', partition: 0 });

    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let holding = false;
    const errorsA: unknown[] = [];
    const a = pipeline<MemoryTxHandle>({
      consumer: 'takeover',
      source: memorySource(broker, 'in'),
      db,
      store,
      pollIntervalMs: 20,
      takeOverAfterMs: 100,
      // A's first batch waits inside its transaction until B has committed the same messages.
      handler: async (m, { tx }) => {
        if (!holding) {
          holding = true;
          await gate;
        }
        await count(tx, String(m.value));
      },
      onError: (err) => void errorsA.push(err),
    });
    const b = pipeline<MemoryTxHandle>({
      consumer: 'takeover',
      source: memorySource(broker, 'in'),
      db,
      store,
      pollIntervalMs: 20,
      handler: async (m, { tx }) => count(tx, String(m.value)),
    });

    await send(0, 10);
    a.start();
    await waitUntil(() => holding, 10_000, 'worker A inside its first batch');
    b.start();
    await waitUntil(async () => (await position()) === 10, 10_000, 'worker B to commit the first 10 messages');
    release();
    await waitUntil(() => a.stats.fenced.includes(0), 10_000, 'worker A to be fenced off partition 0');
    expect(errorsA.some((e) => e instanceof InboxFencedError)).toBe(true);

    await b.stop();
    await send(10, 30);
    await waitUntil(async () => a.stats.takeovers === 1 && (await position()) === 30, 10_000, 'worker A to take partition 0 back and process messages 10..29');
    await a.stop();

    expect(a.stats.fenced).toEqual([]);
    expect(a.stats.processed).toBe(20);
    expect(b.stats.processed).toBe(10);
    const counts = await db.withTransaction(async (tx) => Promise.all(Array.from({ length: 30 }, (_, i) => tx.handle.get(`count:${i}`))));
    expect(counts).toEqual(Array.from({ length: 30 }, () => 1));
  });
});
