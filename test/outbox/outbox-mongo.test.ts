/**
 * The MongoDB outbox store with the real `mongodb` driver: against the
 * scripted wire-protocol server always (no mongod runs here), and against a
 * real replica set when service('mongodb') gives one (else those cases skip
 * with the printed reason). Relayed into the memory broker, end to end.
 */
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import type { MemoryTxHandle } from '../../src/adapters/memory/index.js';
import { mongoTransactions } from '../../src/adapters/mongo/index.js';
import { ConfigError } from '../../src/core/index.js';
import { OUTBOX_ID_HEADER, OUTBOX_SEQ_HEADER, Outbox, OutboxRelay, memorySink, memorySource, partitionOf, pipeline } from '../../src/outbox/index.js';
import type { RelaySink } from '../../src/outbox/index.js';
import { MongoOutboxStore, mongoOutboxStore } from '../../src/outbox/stores/mongo-outbox-store.js';
import type { MongoOutboxStoreOptions } from '../../src/outbox/stores/mongo-outbox-store.js';
import { rejection } from '../../src/testing/index.js';
import type { TestApi } from '../../src/testing/index.js';
import { service } from '../support/services.js';
import { ScriptedMongoServer, scriptedClient, txnOf, uniqueName } from '../mongo/mongo-support.js';

const FAST = { initialDelayMs: 1, maxDelayMs: 20 } as const;

/** Polls a condition until it holds; fails with `what` after `timeoutMs`. */
async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface Deployment {
  name: string;
  test: TestApi;
  client: () => MongoClient;
  db: string;
  /** The scripted server, for assertions on what it saw and for faults; undefined on a real deployment. */
  server: () => ScriptedMongoServer | undefined;
  /** Whether `server()` will give the scripted server (known before it starts, so cases can be registered for it only). */
  scripted: boolean;
}

function testMongoOutbox(d: Deployment): void {
  const { describe: group, it: test } = d.test;
  // Cases that need a scripted fault are reported as skipped on a real deployment.
  const scriptedOnly = d.scripted
    ? test
    : (name: string) => it.skipIf(!d.scripted)(`${name} (skipped on a real deployment: the fault can only be scripted on the test server)`, () => undefined);
  const stores: MongoOutboxStore[] = [];
  const contexts: { close(): Promise<void> }[] = [];

  async function setup(options: MongoOutboxStoreOptions = {}) {
    const prefix = `${uniqueName('ob')}_`;
    const make = (extra: MongoOutboxStoreOptions = {}): MongoOutboxStore => {
      const s = mongoOutboxStore(d.client().db(d.db), { collectionPrefix: prefix, ...options, ...extra });
      stores.push(s);
      return s;
    };
    const store = make();
    await store.migrate();
    const ctx = mongoTransactions(d.client(), { retry: { ...FAST, deadlineMs: 60_000 } });
    contexts.push(ctx);
    const broker = new MemoryStore({ partitions: 3 });
    const sinkCtx = memoryTransactions({ store: broker });
    return { prefix, make, store, ctx, outbox: new Outbox(store), broker, sinkCtx, sink: memorySink(sinkCtx) };
  }

  group(`outbox on MongoDB (${d.name})`, () => {
    afterAll(async () => {
      for (const s of stores) await s.close();
      for (const c of contexts) await c.close();
    });

    test('migrate is versioned, creates collections and indexes, and is safe to run twice and at once', async () => {
      const prefix = `${uniqueName('mig')}_`;
      const db = d.client().db(d.db);
      const a = mongoOutboxStore(db, { collectionPrefix: prefix, partitions: 3 });
      const b = mongoOutboxStore(db, { collectionPrefix: prefix, partitions: 3 });
      // Two processes starting at once, and one store asked twice.
      await Promise.all([a.migrate(), b.migrate(), a.migrate()]);
      await a.migrate();
      expect(await db.collection(a.collections.schema).find({}).toArray()).toEqual([{ _id: 'outbox', version: 3 }]);
      // Version 3 made the lease collections (listIndexes fails on a collection that does not exist), also on an upgrade from 2.
      const leaseCollections = [a.collections.leases, a.collections.leaseMembers];
      for (const name of leaseCollections) expect((await db.collection(name).indexes()).map((i) => i.name)).toEqual(['_id_']);
      for (const name of leaseCollections) await db.collection(name).drop();
      await db.collection<{ _id: string; version: number }>(a.collections.schema).updateOne({ _id: 'outbox' }, { $set: { version: 2 } });
      await a.migrate();
      expect(await db.collection(a.collections.schema).find({}).toArray()).toEqual([{ _id: 'outbox', version: 3 }]);
      for (const name of leaseCollections) expect((await db.collection(name).indexes()).map((i) => i.name)).toEqual(['_id_']);
      const counters = await db.collection(a.collections.partitions).find({}, { sort: { _id: 1 } }).toArray();
      expect(counters).toEqual([0, 1, 2].map((p) => ({ _id: p, nextSeq: 0 })));
      const indexes = await db.collection(a.collections.outbox).indexes();
      expect(indexes.find((i) => i.name === 'txkit_partition_seq')).toMatchObject({ key: { partition: 1, seq: 1 }, unique: true });
      const dl = await db.collection(a.collections.deadLetters).indexes();
      expect(dl.map((i) => i.name)).toContain('txkit_consumer_created');
    });

    test('publishes only what commits, with its outbox id as a header', async () => {
      const { ctx, outbox, store, sink, broker } = await setup();
      const [id] = await ctx.withTransaction((tx) =>
        outbox.publish(tx, { topic: 'orders', key: 'o-1', value: Buffer.from([0, 1, 254, 255]), headers: { 'trace-id': 'abc', 'a.b': '$x' } }),
      );
      await rejection(
        ctx.withTransaction(async (tx) => {
          await outbox.publish(tx, { topic: 'orders', key: 'o-2', value: 'never' });
          throw new Error('business rule failed');
        }),
      );
      const relay = new OutboxRelay({ store, sink });
      expect(await relay.drain()).toBe(1);
      const out = broker.messages('orders');
      expect(out.map((m) => [m.key, m.value])).toEqual([['o-1', Buffer.from([0, 1, 254, 255])]]);
      expect(out[0]?.headers).toMatchObject({ [OUTBOX_ID_HEADER]: id, 'trace-id': 'abc', 'a.b': '$x' });
      expect(await relay.drain()).toBe(0);
      const server = d.server();
      if (server !== undefined) {
        const reads = server.commands('find', store.collections.outbox);
        expect(reads.length).toBeGreaterThan(0);
        for (const r of reads) expect(r.readConcern).toEqual({ level: 'majority' });
      }
    });

    test('concurrent publishers write-conflict on the counter and get gapless sequences in commit order', async () => {
      const { ctx, outbox, store } = await setup();
      const server = d.server();
      // The first four counter increments all reach the server before any reply: three of them conflict.
      server?.holdUntil('findAndModify', 4);
      let reruns = 0;
      await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          ctx.withTransaction(async (tx) => {
            if (tx.attempt > 1) reruns += 1;
            await outbox.publish(tx, [
              { topic: 'events', key: null, value: `t${i}-a` },
              { topic: 'events', key: null, value: `t${i}-b` },
            ]);
          }),
        ),
      );
      const records = await store.read(0, 0, 100);
      expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 32 }, (_, i) => i + 1));
      const values = records.map((r) => String(r.value));
      // Each transaction's two records are adjacent: no other publisher got numbers in between.
      for (let i = 0; i < 32; i += 2) expect(values[i + 1]).toBe(values[i]?.replace(/-a$/, '-b'));
      if (server !== undefined) {
        expect(reruns).toBeGreaterThanOrEqual(3);
        // Sequence order is the order in which the server applied the commits.
        const valuesOf = new Map<string, string[]>();
        for (const c of server.commands('insert', store.collections.outbox)) {
          valuesOf.set(txnOf(c), (c.body.documents as { value: { buffer: Uint8Array } }[]).map((doc) => Buffer.from(doc.value.buffer).toString()));
        }
        const commitOrder = [...new Set(server.commands('commitTransaction').map(txnOf))].filter((t) => valuesOf.has(t));
        expect(commitOrder.flatMap((t) => valuesOf.get(t) ?? [])).toEqual(values);
      }
      const status = await store.status();
      expect(status.partitions[0]).toMatchObject({ published: 32, relayed: 0, pending: 32 });
    });

    test('keyed records keep per-key order through two racing relays, each sent once', async () => {
      const { ctx, outbox, store, sink, broker } = await setup({ partitions: 2 });
      for (let i = 0; i < 20; i++) {
        await ctx.withTransaction((tx) => outbox.publish(tx, { topic: 'race', key: `k${i % 3}`, value: `r${i}` }));
      }
      const retry = { initialDelayMs: 0, maxDelayMs: 2 };
      await Promise.all([new OutboxRelay({ store, sink, batchSize: 3, retry }).drain(), new OutboxRelay({ store, sink, batchSize: 3, retry }).drain()]);
      const out = broker.messages('race');
      expect(out.map((m) => String(m.value)).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `r${i}`).sort());
      for (const key of ['k0', 'k1', 'k2']) {
        const sent = out.filter((m) => m.key === key).map((m) => Number(String(m.value).slice(1)));
        expect(sent).toEqual([...sent].sort((x, y) => x - y));
      }
      expect((await store.status()).partitions.map((p) => p.pending)).toEqual([0, 0]);
    });

    test('a running relay misses nothing while publishers commit concurrently', async () => {
      const { ctx, outbox, store, sink, broker } = await setup({ partitions: 2 });
      const relay = new OutboxRelay({ store, sink, batchSize: 5, pollIntervalMs: 20 });
      relay.start();
      try {
        // Four waves of ten concurrent publishers while the relay reads: a record taking a
        // sequence number below one the relay has passed would never be sent.
        for (let wave = 0; wave < 4; wave++) {
          await Promise.all(
            Array.from({ length: 10 }, (_, i) =>
              ctx.withTransaction((tx) => outbox.publish(tx, { topic: 'busy', key: `k${i % 4}`, value: `w${wave}-${i}` })),
            ),
          );
        }
        await broker.waitFor(() => broker.messages('busy').length >= 40, 20_000);
      } finally {
        await relay.stop();
      }
      const out = broker.messages('busy');
      expect(out).toHaveLength(40);
      expect(new Set(out.map((m) => String(m.value))).size).toBe(40);
      for (const key of ['k0', 'k1', 'k2', 'k3']) {
        // Per key, the broker order is the outbox's sequence order.
        const seqs = out.filter((m) => m.key === key).map((m) => Number(String(m.headers[OUTBOX_SEQ_HEADER]).split(':')[1]));
        expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
      }
    });

    test('a relay crashing inside its broker transaction neither loses nor duplicates', async () => {
      const { ctx, outbox, store, sinkCtx, broker } = await setup();
      for (let i = 0; i < 6; i++) {
        await ctx.withTransaction((tx) => outbox.publish(tx, Array.from({ length: 5 }, (_, j) => ({ topic: 't', key: `k${j}`, value: `${i}-${j}` }))));
      }
      const base = memorySink(sinkCtx);
      for (let round = 0; round < 4; round++) {
        const crashing: RelaySink<MemoryTxHandle> = {
          ...base,
          writePosition: async (tx, { relayId: id, partition: p, seq }) => {
            await base.writePosition(tx, { relayId: id, partition: p, seq });
            throw new Error('simulated crash before the broker commit');
          },
        };
        await rejection(new OutboxRelay({ store, sink: crashing, batchSize: 4 }).relayOnce(0));
        await new OutboxRelay({ store, sink: base, batchSize: 4 }).relayOnce(0);
      }
      await new OutboxRelay({ store, sink: base }).drain();
      const values = broker.messages('t').map((m) => String(m.value));
      expect(values).toHaveLength(30);
      expect(new Set(values).size).toBe(30);
    });

    test('pipeline: exactly-once effects, poison to dead letters, resumes from stored positions; a zombie is fenced', async () => {
      const { ctx, store, sink, broker, prefix } = await setup();
      const state = await d.client().db(d.db).createCollection<{ _id: string; amount: number }>(`${prefix}state`);
      const input = memoryTransactions({ store: broker });
      await input.withTransaction((tx) =>
        tx.handle.send({
          topic: 'payments',
          messages: Array.from({ length: 30 }, (_, i) => ({ key: `p${i}`, value: i === 11 ? 'not json' : JSON.stringify({ id: `p${i}`, amount: i }) })),
        }),
      );
      const make = () =>
        pipeline({
          consumer: 'payments-job',
          source: memorySource(broker, 'payments'),
          db: ctx,
          store,
          batchSize: 4,
          maxAttempts: 2,
          onError: () => undefined,
          handler: async (m, { tx, outbox }) => {
            const payment = JSON.parse(String(m.value)) as { id: string; amount: number };
            await state.insertOne({ _id: payment.id, amount: payment.amount }, { session: tx.handle });
            await outbox.publish(tx, { topic: 'receipts', key: payment.id, value: `receipt ${payment.id}` });
          },
        });
      const first = make();
      const parts = await memorySource(broker, 'payments').partitions();
      const part = parts[0] as number;
      const offset = (await first.step(part, 0)) as number;
      // A zombie that still believes the partition is at 0 is fenced and commits nothing.
      const zombie = make();
      expect(await zombie.step(part, 0)).toBeUndefined();
      expect(zombie.stats.fenced).toEqual([part]);
      expect(await store.inboxPosition(undefined, { consumer: 'payments-job', source: 'payments', partition: part })).toBe(offset);
      const second = make();
      const stats = await second.runUntilIdle();
      expect(first.stats.deadLettered + stats.deadLettered).toBe(1);
      await new OutboxRelay({ store, sink }).drain();
      expect(await state.countDocuments({})).toBe(29);
      expect(broker.messages('receipts')).toHaveLength(29);
      const dead = await store.deadLetters('payments-job');
      expect(dead).toHaveLength(1);
      expect(dead[0]?.value?.toString()).toBe('not json');
      expect(dead[0]?.error).toMatch(/SyntaxError/);
    });

    test('cleanup keeps every row a second relay id has not sent; it relays them all afterwards; status reports each relay id', async () => {
      const { ctx, outbox, store } = await setup({ partitions: 2 });
      const relayTo = (relayId: string) => {
        const broker = new MemoryStore({ partitions: 1 });
        const relay = new OutboxRelay({ store, sink: memorySink(memoryTransactions({ store: broker })), relayId });
        return { relay, sent: () => broker.messages('events').map((m) => String(m.headers[OUTBOX_SEQ_HEADER])) };
      };
      const publish = async (from: number, to: number) => {
        for (let i = from; i < to; i++) await ctx.withTransaction((tx) => outbox.publish(tx, { topic: 'events', key: `k${i}`, value: `e${i}` }));
      };
      const rows = async () => [...(await store.read(0, 0, 100)), ...(await store.read(1, 0, 100))].map((r) => `${r.partition}:${r.seq}`).sort();
      const billing = relayTo('billing');
      const search = relayTo('search');
      await publish(0, 4);
      expect(await billing.relay.drain()).toBe(4);
      await publish(4, 12);
      const all = await rows();
      expect(await search.relay.drain()).toBe(12);
      expect(await store.cleanup(-1)).toBe(4);
      expect(await rows()).toEqual(all.filter((r) => !billing.sent().includes(r)));
      expect((await store.status()).relays.map((r) => [r.relayId, r.pending])).toEqual([
        ['billing', 8],
        ['search', 0],
      ]);
      expect(await billing.relay.drain()).toBe(8);
      expect([...billing.sent()].sort()).toEqual(all);
      expect(await store.cleanup(-1)).toBe(8);
      // A relay id registered before its first run holds cleanup back until it is removed.
      await publish(12, 14);
      await store.registerRelay('audit');
      await search.relay.drain();
      await billing.relay.drain();
      expect(await store.cleanup(-1)).toBe(0);
      expect(await store.removeRelay('audit')).toBe(true);
      expect(await store.cleanup(-1)).toBe(2);
    });

    test('a relay in another process wakes on the change stream, not on its poll, and close() ends the stream', async () => {
      const { make, ctx, sink, broker } = await setup();
      // Publisher and relay are separate store instances, as in two processes: no in-process wake-up.
      const publisher = new Outbox(make({ changeStreams: false }));
      const relayStore = make();
      const relay = new OutboxRelay({ store: relayStore, sink, pollIntervalMs: 60_000 });
      relay.start();
      try {
        await until(() => relayStore.wakeMode === 'change-stream', 10_000, 'the change stream to open');
        await ctx.withTransaction((tx) => publisher.publish(tx, { topic: 'live', key: 'a', value: 'x' }));
        // The poll interval is a minute: only the change stream can deliver this in time.
        await broker.waitFor(() => broker.messages('live').length === 1, 10_000);
        await ctx.withTransaction((tx) => publisher.publish(tx, { topic: 'live', key: 'b', value: 'y' }));
        await broker.waitFor(() => broker.messages('live').length === 2, 10_000);
      } finally {
        await relay.stop();
      }
      expect(relay.stats.relayed).toBe(2);
      await relayStore.close();
      expect(relayStore.wakeMode).toBe('closed');
      const server = d.server();
      if (server !== undefined) {
        expect(server.commands('aggregate', relayStore.collections.outbox)).toHaveLength(1);
        expect(server.openChangeStreams(d.db, relayStore.collections.outbox)).toBe(0);
      }
    });

    scriptedOnly('a change stream lost to a server error is reported, reopened, and keeps waking the relay', async () => {
      const server = d.server() as ScriptedMongoServer;
      const { make, ctx, sink, broker } = await setup();
      const publisher = new Outbox(make({ changeStreams: false }));
      const errors: unknown[] = [];
      const relayStore = make({ onError: (e) => errors.push(e) });
      const relay = new OutboxRelay({ store: relayStore, sink, pollIntervalMs: 60_000 });
      const opened = () => server.commands('aggregate', relayStore.collections.outbox).length;
      relay.start();
      try {
        await until(() => relayStore.wakeMode === 'change-stream', 10_000, 'the change stream to open');
        server.script({ command: 'getMore', when: (c) => c.body.collection === relayStore.collections.outbox, fault: { error: { code: 2, codeName: 'BadValue' } } });
        await until(() => errors.length === 1, 10_000, 'the stream error to be reported');
        await until(() => opened() === 2 && relayStore.wakeMode === 'change-stream', 10_000, 'a new change stream');
        await ctx.withTransaction((tx) => publisher.publish(tx, { topic: 'again', key: 'a', value: 'x' }));
        await broker.waitFor(() => broker.messages('again').length === 1, 10_000);
      } finally {
        await relay.stop();
        await relayStore.close();
      }
      expect((errors[0] as { codeName?: string }).codeName).toBe('BadValue');
    });

    test('records for a partition migrate() did not create get ConfigError, and bad options too', async () => {
      const { make, ctx } = await setup();
      const wider = new Outbox(make({ partitions: 64 }));
      const key = Array.from({ length: 100 }, (_, i) => `k${i}`).find((k) => partitionOf(k, 64) > 0) as string;
      const err = await rejection(ctx.withTransaction((tx) => wider.publish(tx, { topic: 't', key, value: 'v' })));
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/run migrate\(\)/);
      expect(() => mongoOutboxStore({} as never)).toThrow(ConfigError);
      expect(() => mongoOutboxStore(d.client().db(d.db), { collectionPrefix: 'bad-prefix' })).toThrow(ConfigError);
      expect(() => mongoOutboxStore(d.client().db(d.db), { partitions: 0 })).toThrow(ConfigError);
      expect(() => mongoOutboxStore(d.client().db(d.db), { readConcern: 'linearizable' as never })).toThrow(ConfigError);
    });
  });
}

// ---- the scripted server, always ----

let scripted: ScriptedMongoServer;
let scriptedMongo: MongoClient;

beforeAll(async () => {
  scripted = await new ScriptedMongoServer().start();
  scriptedMongo = scriptedClient(scripted);
  await scriptedMongo.connect();
});

afterAll(async () => {
  await scriptedMongo?.close();
  await scripted?.stop();
});

testMongoOutbox({ name: 'scripted server', test: { describe, it }, client: () => scriptedMongo, db: 'txkit', server: () => scripted, scripted: true });

describe('outbox on MongoDB without change streams', () => {
  let server: ScriptedMongoServer;
  let client: MongoClient;
  beforeAll(async () => {
    server = await new ScriptedMongoServer({ changeStreams: false }).start();
    client = scriptedClient(server);
    await client.connect();
  });
  afterAll(async () => {
    await client?.close();
    await server?.stop();
  });

  it('falls back to polling when the deployment refuses the change stream, and says so once', async () => {
    const prefix = `${uniqueName('poll')}_`;
    const errors: unknown[] = [];
    const relayStore = mongoOutboxStore(client.db('txkit'), { collectionPrefix: prefix, onError: (e) => errors.push(e) });
    const publisherStore = mongoOutboxStore(client.db('txkit'), { collectionPrefix: prefix, changeStreams: false });
    await relayStore.migrate();
    const ctx = mongoTransactions(client, { retry: FAST });
    const broker = new MemoryStore();
    const relay = new OutboxRelay({ store: relayStore, sink: memorySink(memoryTransactions({ store: broker })), pollIntervalMs: 50 });
    relay.start();
    try {
      await until(() => relayStore.wakeMode === 'polling', 10_000, 'the store to fall back to polling');
      for (let i = 0; i < 3; i++) await ctx.withTransaction((tx) => new Outbox(publisherStore).publish(tx, { topic: 'polled', key: null, value: `v${i}` }));
      await broker.waitFor(() => broker.messages('polled').length === 3, 10_000);
    } finally {
      await relay.stop();
      await relayStore.close();
      await publisherStore.close();
      await ctx.close();
    }
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(ConfigError);
    expect((errors[0] as Error).message).toMatch(/refused a change stream.*\$changeStream stage is only supported on replica sets/);
    const changeStreamAggregates = server.commands('aggregate').filter((c) => (c.body.pipeline as { $changeStream?: unknown }[])[0]?.$changeStream !== undefined);
    expect(changeStreamAggregates).toHaveLength(1);
  });

  it('with changeStreams: false never asks for one and waits out its timeout', async () => {
    const store = mongoOutboxStore(client.db('txkit'), { collectionPrefix: `${uniqueName('off')}_`, changeStreams: false });
    const before = server.commands('aggregate').length;
    const started = Date.now();
    await store.waitForPublish(30);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    expect(store.wakeMode).toBe('polling');
    expect(server.commands('aggregate').length).toBe(before);
    await store.close();
  });
});

// ---- a real replica set, when one is reachable ----

const url = service('mongodb');
let real: MongoClient;
const realDb = uniqueName('txkit_outbox');

beforeAll(async () => {
  if (url === undefined) return;
  real = new MongoClient(url, { serverSelectionTimeoutMS: 10_000 });
  await real.connect();
});

afterAll(async () => {
  if (url === undefined) return;
  await real.db(realDb).dropDatabase();
  await real.close();
});

testMongoOutbox({
  name: 'replica set from MONGODB_URI',
  // Each case is registered and reported as skipped when no replica set is reachable.
  test: { describe, it: (name, fn, timeoutMs) => it.skipIf(url === undefined)(name, fn, timeoutMs ?? 60_000) },
  client: () => real,
  db: realDb,
  server: () => undefined,
  scripted: false,
});
