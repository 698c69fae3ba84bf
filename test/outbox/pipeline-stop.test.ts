/**
 * pipeline.stop() called from the pipeline's own handler (to stop after a
 * message): it resolves at once instead of waiting for the loop that runs
 * the handler (which waited for ever), the handler's transaction commits,
 * and the loops end after it. Memory backend.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import { MemoryOutboxStore, memorySource, pipeline } from '../../src/outbox/index.js';
import { waitUntil } from '../support/wait-until.js';

describe('pipeline.stop() from its own handler', () => {
  it("resolves at once; the handler's transaction commits and nothing after it is processed", async () => {
    const broker = new MemoryStore({ partitions: 1 });
    const producer = memoryTransactions({ store: broker });
    await producer.withTransaction((tx) => tx.handle.send({ topic: 'orders', messages: ['a', 'b', 'c', 'd', 'e'].map((value) => ({ value, partition: 0 })) }));
    await producer.close();
    const data = new MemoryStore();
    const db = memoryTransactions({ store: data });
    const store = new MemoryOutboxStore(data);
    const seen: string[] = [];
    let stoppedFromHandler = false;
    const worker = pipeline({
      consumer: 'stop-job',
      source: memorySource(broker, 'orders'),
      db,
      store,
      batchSize: 1,
      handler: async (m, { tx }) => {
        await tx.handle.set(`processed-${m.offset}`, String(m.value));
        tx.afterCommit(() => void seen.push(String(m.value)));
        if (String(m.value) === 'c') {
          await worker.stop();
          stoppedFromHandler = true;
        }
      },
    });
    worker.start();
    await waitUntil(() => stoppedFromHandler, 10_000, "the handler's stop() to resolve");
    await worker.stop();
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(await store.inboxPosition(undefined, { consumer: 'stop-job', source: 'orders', partition: 0 })).toBe(3);
    await db.close();
  });
});
