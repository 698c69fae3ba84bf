/**
 * When a running relay reads again and when it waits for a publish. It
 * starts listening before it reads, so a record committed after a read
 * wakes the wait: after a read that found fewer records than a batch, a
 * relay whose store hears every commit waits instead of reading once more
 * to find nothing. Rows read ahead (during the previous broker transaction,
 * before the wait began) prove nothing about what was committed since, so
 * the relay reads again before it waits. The Postgres case, woken by a
 * NOTIFY from another store, is in outbox-pg.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import type { MemoryTxHandle } from '../../src/adapters/memory/index.js';
import type { TransactionContext } from '../../src/core/index.js';
import { MemoryOutboxStore, Outbox, OutboxRelay, memorySink } from '../../src/outbox/index.js';
import type { RelaySink } from '../../src/outbox/index.js';
import { deferred } from '../support/deferred.js';
import { viewOf } from '../support/view-of.js';
import { waitUntil } from '../support/wait-until.js';

/** Longer than any test waits: a relay that delivers in time was woken or read again, not polling. */
const NEVER_POLL_MS = 600_000;

function setup() {
  const memory = new MemoryStore();
  const store = new MemoryOutboxStore(memory, { partitions: 1 });
  const outbox = new Outbox(store);
  const db = memoryTransactions({ store: memory });
  const broker = new MemoryStore();
  const publish = (...values: string[]): Promise<unknown> => db.withTransaction((tx) => outbox.publish(tx, values.map((value) => ({ topic: 't', key: 'k', value }))));
  return { store, broker, sink: memorySink(memoryTransactions({ store: broker })), publish, values: () => broker.messages('t').map((m) => String(m.value)) };
}

describe('a running relay: read again or wait', () => {
  it('with a store that hears every commit, a read of fewer records than a batch is followed by a wait, not by another read', async () => {
    const { store, broker, sink, publish, values } = setup();
    let reads = 0;
    const relay = new OutboxRelay({
      store: viewOf(store, {
        read: (...args) => {
          reads += 1;
          return store.read(...args);
        },
      }),
      sink,
      batchSize: 10,
      leases: false,
      pollIntervalMs: NEVER_POLL_MS,
    });
    expect(store.hearsEveryCommit()).toBe(true);
    relay.start();
    try {
      await waitUntil(() => reads >= 1, 10_000, 'the relay to read and wait');
      await publish('a');
      await broker.waitFor(() => values().length === 1, 10_000);
      await publish('b', 'c');
      await broker.waitFor(() => values().length === 3, 10_000);
    } finally {
      await relay.stop();
    }
    // One read that found nothing, then one per commit, each finding all there was. The relay's own marks, written
    // to the same memory store, do not wake it: only appends do.
    expect(reads).toBe(3);
    expect(values()).toEqual(['a', 'b', 'c']);
  });

  it('a record committed while a full batch was in flight, after the rows that follow it were read ahead, is relayed without waiting for a poll', async () => {
    const { store, broker, sink, publish, values } = setup();
    const BATCH = 2;
    await publish('a', 'b');
    // The relay's broker transaction of the full batch ends only once 'c' has committed, after the read ahead found
    // nothing: the wake of that commit reaches the round that is ending, before the next round begins listening. The next
    // round takes the empty rows read ahead; only a read made then finds 'c' (the memory store wakes on appends only, so
    // no later commit of the relay's own marks could wake a wait that ought not to be waiting).
    const committedAfterAhead = deferred();
    let fullBatchRead = false;
    let aheadReads = 0;
    const context = sink.context as TransactionContext<MemoryTxHandle>;
    const gated: RelaySink<MemoryTxHandle> = {
      ...sink,
      context: viewOf(context, {
        withTransaction: ((fn: (tx: never) => Promise<unknown>, options?: object) =>
          context.withTransaction(async (tx) => {
            const result = await fn(tx as never);
            await committedAfterAhead.promise;
            return result;
          }, options)) as typeof context.withTransaction,
      }),
    };
    const relay = new OutboxRelay({
      store: viewOf(store, {
        read: async (partition, afterSeq, limit) => {
          const rows = await store.read(partition, afterSeq, limit);
          if (fullBatchRead && aheadReads++ === 0) {
            // The read ahead after the full batch: nothing yet. Then 'c' commits, before the next round begins listening.
            expect(rows).toEqual([]);
            await publish('c');
            committedAfterAhead.resolve();
          }
          if (rows.length === limit) fullBatchRead = true;
          return rows;
        },
      }),
      sink: gated,
      batchSize: BATCH,
      leases: false,
      pollIntervalMs: NEVER_POLL_MS,
    });
    relay.start();
    try {
      await broker.waitFor(() => values().length === 3, 10_000);
    } finally {
      committedAfterAhead.resolve();
      await relay.stop();
    }
    expect(values()).toEqual(['a', 'b', 'c']);
    expect(aheadReads).toBeGreaterThanOrEqual(2);
  });
});

describe('relayOnce and drain after rows were read ahead', () => {
  /** A relay that sent a full batch of 'a' and 'b' (reading the next rows ahead while the broker committed, and finding none), then 'c' committed. */
  async function afterFullBatch() {
    const { store, sink, publish, values } = setup();
    const relay = new OutboxRelay({ store, sink, batchSize: 2, leases: false });
    await publish('a', 'b');
    expect(await relay.relayOnce(0)).toBe(2);
    await publish('c');
    return { relay, values };
  }

  it('a drain after relayOnce sent a full batch sends what was committed since, not stopping at the empty rows read ahead', async () => {
    const { relay, values } = await afterFullBatch();
    expect(await relay.drain()).toBe(1);
    expect(values()).toEqual(['a', 'b', 'c']);
  });

  it('relayOnce after a full batch sends what was committed since', async () => {
    const { relay, values } = await afterFullBatch();
    expect(await relay.relayOnce(0)).toBe(1);
    expect(await relay.relayOnce(0)).toBe(0);
    expect(values()).toEqual(['a', 'b', 'c']);
  });
});
