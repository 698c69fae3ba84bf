/**
 * What a relay leaves open. kafkaSink opens a producer per outbox partition
 * the first time the relay uses it; a script that drained and closed
 * everything it had made itself was kept alive by those producers, because
 * the sink is usually made inline (`sink: kafkaSink({...})`) and nothing
 * closed them. The relay now hands them back through `sink.resetPartition`
 * at the end of a drain (unless it was started) and on stop().
 * test/package/walkthrough.test.ts runs such a script on a real broker.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import type { MemoryTxHandle } from '../../src/adapters/memory/index.js';
import { MemoryOutboxStore, Outbox, OutboxRelay, memorySink } from '../../src/outbox/index.js';
import type { RelayPartition, RelaySink } from '../../src/outbox/index.js';
import { waitUntil } from '../support/wait-until.js';

function tracked(broker: ReturnType<typeof memoryTransactions>): { sink: RelaySink<MemoryTxHandle>; resets: number[] } {
  const resets: number[] = [];
  const inner = memorySink(broker);
  return { sink: { ...inner, resetPartition: async (at: RelayPartition) => void resets.push(at.partition) }, resets };
}

async function outboxWith(values: string[], partitions = 2): Promise<MemoryOutboxStore> {
  const memory = new MemoryStore();
  const store = new MemoryOutboxStore(memory, { partitions });
  const outbox = new Outbox(store);
  await memoryTransactions({ store: memory }).withTransaction((tx) => outbox.publish(tx, values.map((value) => ({ topic: 't', key: value, value }))));
  return store;
}

describe('what a relay leaves open', () => {
  it('drain() of a relay that was not started hands every partition back to the sink at the end, also when it fails', async () => {
    const broker = memoryTransactions();
    const { sink, resets } = tracked(broker);
    const store = await outboxWith(['a', 'b', 'c', 'd']);
    expect(await new OutboxRelay({ store, sink, relayId: 'r' }).drain()).toBe(4);
    expect(resets.sort()).toEqual([0, 1]);

    resets.length = 0;
    const failing: RelaySink<MemoryTxHandle> = { ...sink, readPosition: async () => Promise.reject(new Error('broker gone')) };
    await expect(new OutboxRelay({ store, sink: failing, relayId: 'r2', retry: { maxAttempts: 1 } }).drain()).rejects.toThrow('broker gone');
    expect(resets.sort()).toEqual([0, 1]);
    await broker.close();
  });

  it('of two drains at once, only the last to end hands the partitions back: the first must not close what the other still uses', async () => {
    const broker = memoryTransactions();
    const inner = memorySink(broker);
    const resets: number[] = [];
    let release: (() => void) | undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let reads = 0;
    const sink: RelaySink<MemoryTxHandle> = {
      ...inner,
      // The second position read (by whichever drain comes second) waits until released.
      readPosition: async (tx, at) => {
        if (++reads === 2) await held;
        return inner.readPosition(tx, at);
      },
      resetPartition: async (at) => void resets.push(at.partition),
    };
    const store = await outboxWith(['a'], 1);
    const relay = new OutboxRelay({ store, sink, relayId: 'r' });
    const ended: number[] = [];
    const drains = [relay.drain(), relay.drain()].map((d, i) => d.then(() => void ended.push(i)));
    await waitUntil(() => ended.length === 1, 10_000, 'one drain to end while the other waits in its read');
    expect(resets).toEqual([]);
    release?.();
    await Promise.all(drains);
    expect(resets).toEqual([0]);
    expect(broker.store.messages('t').map((m) => String(m.value))).toEqual(['a']);
    await broker.close();
  });

  it('stop() hands every partition back; a drain while started leaves them to the running relay', async () => {
    const broker = memoryTransactions();
    const { sink, resets } = tracked(broker);
    const store = await outboxWith(['a', 'b']);
    const relay = new OutboxRelay({ store, sink, relayId: 'r', leases: false, pollIntervalMs: 50 });
    relay.start();
    await waitUntil(() => broker.store.messages('t').length === 2, 10_000, 'the started relay to send both records');
    await relay.drain();
    expect(resets).toEqual([]);
    await relay.stop();
    expect(resets.sort()).toEqual([0, 1]);
    await broker.close();
  });
});
