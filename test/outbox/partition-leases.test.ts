/**
 * Workers sharing partitions through leases in the store. Relays of one relay
 * id: each outbox partition has one owner at a time, partitions move when a
 * relay stops or stops renewing (its database unreachable), and every record
 * reaches the broker once, in sequence order per partition, whoever relayed
 * it. Pipeline workers of one consumer: each source partition is processed by
 * one worker at a time and every message's effects commit once.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import type { MemoryTxHandle } from '../../src/adapters/memory/index.js';
import { ConfigError, FencedError } from '../../src/core/index.js';
import { MemoryOutboxStore, OUTBOX_SEQ_HEADER, Outbox, OutboxRelay, memorySink, memorySource, pipeline } from '../../src/outbox/index.js';
import type { Pipeline } from '../../src/outbox/index.js';
import type { PartitionLeaseStore } from '../../src/outbox/index.js';
import { PartitionLeases } from '../../src/outbox/engine/partition-leases.js';
import { waitUntil } from '../support/wait-until.js';

const TOPIC = 'orders';
const PARTITIONS = 8;

interface World {
  data: MemoryStore;
  store: MemoryOutboxStore;
  broker: MemoryStore;
  outbox: Outbox<MemoryTxHandle>;
  publish(n: number): Promise<void>;
  relay(owner: string, store?: MemoryOutboxStore): OutboxRelay;
  /** `<partition>:<seq>` of every message the broker committed, in broker order. */
  delivered(): string[];
}

const running: OutboxRelay[] = [];
/** Errors the relays survived (the cut-off relay's failed calls). */
const errors: unknown[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
  errors.length = 0;
});

function world(): World {
  const data = new MemoryStore();
  const store = new MemoryOutboxStore(data, { partitions: PARTITIONS });
  const broker = new MemoryStore();
  const sinkContext = memoryTransactions({ store: broker });
  const ctx = memoryTransactions({ store: data });
  const outbox = new Outbox(store);
  let published = 0;
  return {
    data,
    store,
    broker,
    outbox,
    publish: async (n) => {
      for (let i = 0; i < n; i++) {
        const k = published++;
        await ctx.withTransaction((tx) => outbox.publish(tx, { topic: TOPIC, key: `k${k % 32}`, value: String(k) }));
      }
    },
    relay: (owner, from = store) => {
      const relay = new OutboxRelay({
        store: from,
        sink: memorySink(sinkContext),
        relayId: 'shared',
        leases: { ttlMs: 600, owner },
        pollIntervalMs: 50,
        onError: (err) => errors.push(err),
      });
      running.push(relay);
      return relay;
    },
    delivered: () => broker.messages(TOPIC).map((m) => String(m.headers?.[OUTBOX_SEQ_HEADER])),
  };
}

/** Every record once, and in each outbox partition in sequence order. */
function assertOnceInOrder(delivered: readonly string[], total: number): void {
  assert.equal(new Set(delivered).size, delivered.length, `duplicates among ${delivered.length} delivered`);
  assert.equal(delivered.length, total);
  const last = new Map<number, number>();
  for (const ps of delivered) {
    const [p, s] = ps.split(':').map(Number) as [number, number];
    assert.equal(s, (last.get(p) ?? 0) + 1, `partition ${p}: seq ${s} after ${last.get(p) ?? 0}`);
    last.set(p, s);
  }
}

const disjointCover = (relays: readonly OutboxRelay[]): boolean => {
  const owned = relays.flatMap((r) => r.stats.owned);
  return owned.length === PARTITIONS && new Set(owned).size === PARTITIONS;
};

describe('relays sharing partitions through leases', () => {
  it('three relays split eight partitions (3/3/2), each partition relayed by its owner only, every record once in order', async () => {
    const w = world();
    const relays = ['a', 'b', 'c'].map((o) => w.relay(o));
    for (const r of relays) r.start();
    await waitUntil(() => disjointCover(relays) && relays.every((r) => r.stats.owned.length >= 2), 15_000, () => `split: ${relays.map((r) => r.stats.owned.join(',')).join(' | ')}`);
    assert.deepEqual(relays.map((r) => r.stats.owned.length).sort(), [2, 3, 3]);

    await w.publish(400);
    await waitUntil(() => w.delivered().length >= 400, 15_000, () => `400 delivered, got ${w.delivered().length}`);
    assertOnceInOrder(w.delivered(), 400);
    // Each relay sent only what its partitions held, and all of them took part.
    for (const r of relays) assert.ok(r.stats.relayed > 0, `every relay relayed something (owned ${r.stats.owned.join(',')})`);
    assert.equal(relays.reduce((n, r) => n + r.stats.relayed, 0), 400);
    // The store and the relays agree on who holds what. Waited for, not asserted at once: with leases of
    // 600 ms a round that runs late on a loaded machine lets a lease lapse, and it moves (as it should).
    let disagreement = '';
    await waitUntil(
      async () => {
        const leases = await w.store.leases('relay/shared');
        const wrong = leases.filter((lease) => {
          const holder = relays.find((r) => r.stats.owned.includes(lease.partition));
          return holder === undefined || !holder.leases.some((l) => l.owner === lease.owner && l.epoch === lease.epoch);
        });
        disagreement = `${leases.length} leases stored, not held as stored: ${wrong.map((l) => l.partition).join(',')}`;
        return leases.length === PARTITIONS && wrong.length === 0;
      },
      15_000,
      () => disagreement,
    );
  });

  it('a relay that stops gives its partitions back and the others take them at once; one that joins gets its share', async () => {
    const w = world();
    const [a, b] = [w.relay('a'), w.relay('b')];
    a.start();
    b.start();
    await waitUntil(() => disjointCover([a, b]) && a.stats.owned.length === 4, 15_000, 'a 4/4 split');
    await w.publish(100);
    await b.stop();
    await waitUntil(() => a.stats.owned.length === PARTITIONS, 15_000, () => `a takes all, owns ${a.stats.owned.join(',')}`);
    await w.publish(100);
    const c = w.relay('c');
    c.start();
    await waitUntil(() => disjointCover([a, c]) && c.stats.owned.length === 4, 15_000, () => `c joins: a ${a.stats.owned.join(',')} c ${c.stats.owned.join(',')}`);
    await w.publish(100);
    await waitUntil(() => w.delivered().length >= 300, 15_000, () => `300 delivered, got ${w.delivered().length}`);
    assertOnceInOrder(w.delivered(), 300);
    assert.ok(c.stats.relayed > 0);
  });

  it('a relay cut off from its database loses its partitions after the lease lapses; it commits nothing more there, and nothing is lost', async () => {
    const w = world();
    let cutOff = false;
    // The same store, as the cut-off relay sees it: lease calls fail while cut off.
    const unreachable = new Proxy(w.store, {
      get(target, name) {
        const value = Reflect.get(target, name) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (cutOff && ['heartbeat', 'acquireLease', 'releaseLease', 'leaveGroup', 'read'].includes(String(name))) {
            return Promise.reject(new Error('connection refused (test: database unreachable)'));
          }
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    }) as MemoryOutboxStore;
    const healthy = w.relay('healthy');
    const cut = w.relay('cut', unreachable);
    healthy.start();
    cut.start();
    await waitUntil(() => disjointCover([healthy, cut]) && cut.stats.owned.length === 4, 15_000, 'a 4/4 split');
    await w.publish(80);
    await waitUntil(() => w.delivered().length >= 80, 15_000, '80 delivered');
    cutOff = true;
    const relayedBefore = cut.stats.relayed;
    await waitUntil(() => healthy.stats.owned.length === PARTITIONS, 15_000, () => `healthy takes over, owns ${healthy.stats.owned.join(',')}`);
    await w.publish(80);
    await waitUntil(() => w.delivered().length >= 160, 15_000, '160 delivered');
    assert.equal(cut.stats.relayed, relayedBefore, 'the cut-off relay relayed nothing after losing its leases');
    cutOff = false;
    // Back in touch: it rejoins and gets its share again; still every record once.
    await waitUntil(() => cut.stats.owned.length === 4 && disjointCover([healthy, cut]), 15_000, 'the 4/4 split again');
    await w.publish(80);
    await waitUntil(() => w.delivered().length >= 240, 15_000, '240 delivered');
    assertOnceInOrder(w.delivered(), 240);
  });

  it('a worker stops committing once its lease is no longer valid on its own clock, before another may take it', async () => {
    const w = world();
    const checks: string[] = [];
    const keeper = new PartitionLeases({
      store: w.store as PartitionLeaseStore,
      group: 'g',
      owner: 'solo',
      partitions: [0],
      ttlMs: 300,
      work: async (lease, signal) => {
        checks.push(`valid:${lease.valid()}`);
        assert.doesNotThrow(() => lease.check());
        // Not renewed (no further round): the lease runs out on this instance's clock.
        await waitUntil(() => !lease.valid() || signal.aborted, 5_000, 'lease to run out');
        assert.equal(signal.aborted, false);
        assert.throws(() => lease.check(), FencedError);
        checks.push('stopped');
      },
      onError: (err) => {
        throw err;
      },
    });
    await keeper.round();
    await waitUntil(() => checks.includes('stopped'), 5_000, 'the worker to stop');
    assert.deepEqual(checks, ['valid:true', 'stopped']);
  });

  it('instances given different partitions are told so: the one that sees a partition held outside its list reports a ConfigError, once', async () => {
    const w = world();
    const reported: unknown[] = [];
    const keeper = (owner: string, partitions: number[]): PartitionLeases =>
      new PartitionLeases({
        store: w.store as PartitionLeaseStore,
        group: 'mixed',
        owner,
        partitions,
        ttlMs: 60_000,
        work: (_lease, signal) => new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })),
        onError: (err) => void reported.push(err),
      });
    // 'a' was given partitions 0 and 1; 'b' every partition. Each works out its share from its own list.
    const a = keeper('a', [0, 1]);
    const b = keeper('b', [0, 1, 2, 3, 4, 5, 6, 7]);
    const stop = new AbortController();
    try {
      await a.round();
      await b.round();
      await a.round();
      await a.round();
      // 'b' holds partitions of its share (every other one of 0..7) that are not in 'a's list; 'a' has no share of 2..7.
      expect(b.owned.some((p) => p > 1)).toBe(true);
      expect(reported).toHaveLength(1);
      expect(reported[0]).toBeInstanceOf(ConfigError);
      expect((reported[0] as Error).message).toMatch(/lease group 'mixed': other instances hold partition \d \(held by 'b'\).*outside the partitions of instance 'a' \[0, 1\]\. Every instance of a group must be given the same partitions/);
    } finally {
      stop.abort();
      await Promise.all([a.run(stop.signal), b.run(stop.signal)]);
    }
  });

  it('bad lease options are refused with ConfigError; leases: false relays every partition without leases', async () => {
    const w = world();
    const sink = memorySink(memoryTransactions({ store: w.broker }));
    for (const leases of [{ ttlMs: 10 }, { ttlMs: Number.NaN }, { owner: '' }, 'yes']) {
      assert.throws(() => new OutboxRelay({ store: w.store, sink, leases: leases as never }), ConfigError, JSON.stringify(leases));
    }
    const plain = new OutboxRelay({ store: w.store, sink, relayId: 'plain', leases: false, pollIntervalMs: 50 });
    running.push(plain);
    plain.start();
    await w.publish(20);
    await waitUntil(() => plain.stats.relayed >= 20, 15_000, '20 relayed');
    assert.deepEqual(plain.stats.owned, []);
    assert.deepEqual(await w.store.leases('relay/plain'), []);
  });
});

describe('pipeline workers sharing source partitions through leases', () => {
  const SOURCE_PARTITIONS = 6;
  const workers: Pipeline<MemoryTxHandle>[] = [];
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
  });

  it('three workers split six partitions 2/2/2, every message processed once; a stopped worker hands its partitions over', async () => {
    const broker = new MemoryStore({ partitions: SOURCE_PARTITIONS });
    const data = new MemoryStore();
    const store = new MemoryOutboxStore(data, { partitions: 2 });
    const db = memoryTransactions({ store: data, retry: { initialDelayMs: 1, maxDelayMs: 5 } });
    const producer = memoryTransactions({ store: broker });
    let sent = 0;
    const send = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++, sent++) {
        const at = sent;
        await producer.withTransaction((tx) => tx.handle.send({ topic: 'in', messages: [{ key: `k${at % 12}`, value: String(at), partition: at % SOURCE_PARTITIONS }] }));
      }
    };
    const processedBy = new Map<string, string>();
    const make = (owner: string): Pipeline<MemoryTxHandle> => {
      const worker = pipeline({
        consumer: 'enricher',
        source: memorySource(broker, 'in'),
        db,
        store,
        pollIntervalMs: 50,
        leases: { ttlMs: 600, owner },
        onError: (err) => errors.push(err),
        handler: async (m, { tx }) => {
          const key = `done/${m.partition}/${m.offset}`;
          // A counter per message: a second committed run of it would make it 2.
          await tx.handle.set(key, (((await tx.handle.get(key)) as number | undefined) ?? 0) + 1);
          tx.afterCommit(() => void processedBy.set(key, owner));
        },
      });
      workers.push(worker);
      return worker;
    };
    const all = [make('a'), make('b'), make('c')];
    for (const w of all) w.start();
    const cover = (ws: readonly Pipeline<MemoryTxHandle>[]): boolean => {
      const owned = ws.flatMap((w) => w.stats.owned);
      return owned.length === SOURCE_PARTITIONS && new Set(owned).size === SOURCE_PARTITIONS;
    };
    await waitUntil(() => cover(all) && all.every((w) => w.stats.owned.length === 2), 15_000, () => `2/2/2 split: ${all.map((w) => w.stats.owned.join(',')).join(' | ')}`);
    await send(120);
    await waitUntil(() => processedBy.size >= 120, 15_000, () => `120 processed, have ${processedBy.size}`);
    expect(new Set(processedBy.values())).toEqual(new Set(['a', 'b', 'c']));
    await (all[2] as Pipeline<MemoryTxHandle>).stop();
    const rest = all.slice(0, 2);
    await waitUntil(() => cover(rest) && rest.every((w) => w.stats.owned.length === 3), 15_000, () => `3/3 after c stopped: ${rest.map((w) => w.stats.owned.join(',')).join(' | ')}`);
    await send(120);
    await waitUntil(() => processedBy.size >= 240, 15_000, () => `240 processed, have ${processedBy.size}`);
    for (let n = 0; n < 240; n++) expect(data.get(`done/${n % SOURCE_PARTITIONS}/${Math.floor(n / SOURCE_PARTITIONS)}`), `message ${n}`).toBe(1);
    expect(all.reduce((n, w) => n + w.stats.processed, 0)).toBe(240);
    expect((await store.leases('pipeline/enricher')).filter((l) => l.owner === 'c')).toEqual([]);
  });

  it('pipeline leases: bad options are refused with ConfigError; without leases start() takes none', async () => {
    const broker = new MemoryStore({ partitions: 2 });
    const data = new MemoryStore();
    const store = new MemoryOutboxStore(data);
    const db = memoryTransactions({ store: data });
    const base = { consumer: 'plain', source: memorySource(broker, 'in'), db, store, handler: async () => undefined };
    for (const leases of [{ ttlMs: 0 }, { owner: 7 }, 'on']) {
      expect(() => pipeline({ ...base, leases: leases as never }), JSON.stringify(leases)).toThrow(ConfigError);
    }
    const plain = pipeline({ ...base, pollIntervalMs: 50 });
    workers.push(plain);
    plain.start();
    await waitUntil(async () => (await store.status()).partitions !== undefined, 5_000, 'the worker to start');
    expect(plain.stats.owned).toEqual([]);
    expect(await store.leases('pipeline/plain')).toEqual([]);
  });
});
