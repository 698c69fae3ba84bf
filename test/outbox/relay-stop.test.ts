/**
 * A relay stopped while a broker transaction is in flight. Its partitions'
 * leases are given back only once the work ends, so the transaction commits:
 * stop() is not a lost lease, and nothing is reported as one (the demo used
 * to end with a warning that "another instance may own the partition now").
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import type { MemoryTxHandle } from '../../src/adapters/memory/index.js';
import { MemoryOutboxStore, Outbox, OutboxRelay, memorySink } from '../../src/outbox/index.js';
import type { RelaySink } from '../../src/outbox/index.js';
import { deferred } from '../support/deferred.js';
import { waitUntil } from '../support/wait-until.js';

describe('stopping a relay with leases', () => {
  it('a broker transaction in flight when stop() is called commits, and nothing is reported as fenced', async () => {
    const memory = new MemoryStore();
    const store = new MemoryOutboxStore(memory, { partitions: 1 });
    await memoryTransactions({ store: memory }).withTransaction((tx) => new Outbox(store).publish(tx, [{ topic: 't', key: 'k', value: 'a' }]));
    const broker = new MemoryStore();
    const inner = memorySink(memoryTransactions({ store: broker }));
    let inFlight = false;
    const letCommit = deferred();
    // The position is written right before the relay checks its lease and commits: hold the transaction there.
    const sink: RelaySink<MemoryTxHandle> = {
      ...inner,
      writePosition: async (tx, at) => {
        inFlight = true;
        await letCommit.promise;
        return inner.writePosition(tx, at);
      },
    };
    const errors: unknown[] = [];
    const relay = new OutboxRelay({ store, sink, relayId: 'r', leases: { ttlMs: 30_000 }, onError: (err) => void errors.push(err) });
    relay.start();
    await waitUntil(() => inFlight, 10_000, 'the relay to be in its broker transaction');
    const stopping = relay.stop();
    letCommit.resolve();
    await stopping;
    expect(broker.messages('t').map((m) => String(m.value))).toEqual(['a']);
    expect(relay.stats).toMatchObject({ relayed: 1, fenced: [] });
    expect(errors).toEqual([]);
    // The lease was given back: another instance takes the partition at once.
    expect((await store.leases()).filter((l) => l.owner !== '')).toEqual([]);
  });
});
