/**
 * The SQL outbox store on a plain pg Pool, with pgTransactions: relays woken
 * by LISTEN/NOTIFY from another store (so not by the in-process wake-up),
 * also after a rolled-back savepoint and after the LISTEN connection broke;
 * one schema shared with knex-based stores; the pipeline on pgTransactions;
 * and what the store says when given something else than a knex instance or a
 * pg Pool. Needs Postgres (service('postgres')); bad input needs no server.
 */
import knexFactory from 'knex';
import type { Knex } from 'knex';
import pgDriver from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import { knexTransactions, pgTransactions } from '../../src/adapters/sql/index.js';
import { ConfigError } from '../../src/core/index.js';
import { Outbox, OutboxRelay, memorySink, memorySource, pipeline, sqlOutboxStore } from '../../src/outbox/index.js';
import type { OutboxRecordStore, PendingRecord, SqlOutboxStore } from '../../src/outbox/index.js';
import { rejection } from '../../src/testing/index.js';
import { service } from '../support/services.js';
import { viewOf } from '../support/view-of.js';
import { uniqueName, waitFor } from '../sql/support/sql-fixtures.js';

const FAST = { initialDelayMs: 1, maxDelayMs: 20 } as const;
/** Longer than any test waits: a relay that delivers in time was woken, not polling. */
const NEVER_POLL_MS = 600_000;

function record(id: string): PendingRecord {
  return { id, topic: 'orders', key: `k-${id}`, value: Buffer.from(id), headers: {}, createdAt: Date.now() };
}

/**
 * The store as a relay sees it, calling `onRead` with the number of records
 * each read of the relay found: after one that finds nothing (or, with a
 * LISTEN connection up, fewer than a batch) the relay waits for a publish
 * (it starts listening before it reads).
 */
function watched<H>(store: OutboxRecordStore<H>, onRead: (found: number) => void): OutboxRecordStore<H> {
  return viewOf(store, {
    read: async (partition, afterSeq, limit) => {
      const records = await store.read(partition, afterSeq, limit);
      onRead(records.length);
      return records;
    },
  });
}

describe('sqlOutboxStore(pool): bad input', () => {
  it('a pg.Client, anything that is neither knex nor a pg Pool, and a foreign handle get a ConfigError saying what to pass', async () => {
    const client = new pgDriver.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
    expect(() => sqlOutboxStore(client as never)).toThrow(ConfigError);
    expect(() => sqlOutboxStore(client as never)).toThrow(/needs a pg Pool, not a pg.Client.*pass new pg.Pool/);
    for (const bad of [{}, null, undefined, 'postgres://postgres@127.0.0.1:5432/test', { query: async () => ({ rows: [] }) }, { raw: () => undefined }]) {
      let err: unknown;
      try {
        sqlOutboxStore(bad as never);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(bad)).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/needs a knex instance \(knex\(\{ client, connection \}\)\) or a pg Pool \(new pg.Pool\(\{ connectionString \}\)\), got/);
    }
    // A pool that is never connected: the store only checks what it was given.
    const pool = new pgDriver.Pool({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
    const store = sqlOutboxStore(pool);
    expect(store.dialect).toBe('postgres');
    // A handle of another backend (the memory store's) is refused before any query.
    const foreign = await rejection(store.append({ get: () => undefined } as never, 0, [record('x')]));
    expect(foreign).toBeInstanceOf(ConfigError);
    expect((foreign as Error).message).toMatch(/tx\.handle of knexTransactions\(knex\) or pgTransactions\(pool\)/);
    await pool.end();
    // A pg client's handle on a store of another database.
    const sqlite = knexFactory({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true });
    try {
      const err = await rejection(sqlOutboxStore(sqlite).append({ query: async () => ({ rows: [] }) }, 0, [record('y')]));
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/tx\.handle of knexTransactions\(knex\) on the store's database, got object with query\(\) on a sqlite store/);
    } finally {
      await sqlite.destroy();
    }
  });
});

const url = service('postgres');

describe.skipIf(url === undefined)('sqlOutboxStore on a pg Pool with pgTransactions', () => {
  let admin: pgDriver.Pool;
  let publisherPool: pgDriver.Pool;
  let knex: Knex;
  const prefixes: string[] = [];
  const stores: SqlOutboxStore[] = [];
  const pools: pgDriver.Pool[] = [];

  beforeAll(() => {
    admin = new pgDriver.Pool({ connectionString: url, max: 2 });
    publisherPool = new pgDriver.Pool({ connectionString: url, max: 4 });
    knex = knexFactory({ client: 'pg', connection: url as string, pool: { min: 0, max: 4 } });
  });

  afterAll(async () => {
    for (const s of stores) await s.close();
    for (const p of prefixes) {
      for (const t of ['schema', 'outbox', 'outbox_partitions', 'outbox_relays', 'inbox', 'dead_letters', 'leases', 'lease_members', 'state']) {
        await admin.query(`drop table if exists ${p}${t}`);
      }
    }
    await knex?.destroy();
    await Promise.all([admin, publisherPool, ...pools].map((pool) => pool?.end()));
  });

  function prefix(): string {
    const p = `${uniqueName('ob')}_`;
    prefixes.push(p);
    return p;
  }

  function store(db: pgDriver.Pool | Knex, p: string, partitions = 1): SqlOutboxStore {
    const s = db instanceof pgDriver.Pool ? sqlOutboxStore(db, { tablePrefix: p, partitions }) : sqlOutboxStore(db, { tablePrefix: p, partitions });
    stores.push(s);
    return s;
  }

  /**
   * A publisher and a relay in what could be two processes: two stores on
   * two pools, so only a NOTIFY through the database can wake the relay. The
   * relay's store listens before the relay starts; `emptyReads()` counts the
   * relay's reads that found nothing, after each of which it waits, `reads()`
   * all of them.
   */
  async function twoSides() {
    const p = prefix();
    const publisher = store(publisherPool, p);
    await publisher.migrate();
    // An application name of its own, to find the relay store's LISTEN session on the server.
    const appName = uniqueName('relay');
    const relayPool = new pgDriver.Pool({ connectionString: url, max: 4, application_name: appName });
    pools.push(relayPool);
    const relayStore = store(relayPool, p);
    await relayStore.waitForPublish(1);
    const broker = new MemoryStore({ partitions: 1 });
    let emptyReads = 0;
    let reads = 0;
    const relay = new OutboxRelay({
      store: watched(relayStore, (found) => {
        reads += 1;
        if (found === 0) emptyReads += 1;
      }),
      sink: memorySink(memoryTransactions({ store: broker })),
      leases: false,
      pollIntervalMs: NEVER_POLL_MS,
    });
    const ctx = pgTransactions(publisherPool, { retry: FAST });
    const listening = async (): Promise<number[]> =>
      (
        await admin.query<{ pid: number }>(
          "select pid from pg_stat_activity where application_name = $1 and query = 'LISTEN txkit_outbox' and state = 'idle'",
          [appName],
        )
      ).rows.map((r) => r.pid);
    return { p, relayStore, broker, relay, ctx, outbox: new Outbox(publisher), emptyReads: () => emptyReads, reads: () => reads, listening };
  }

  it('a pgTransactions unit publishes with the outbox; a relay on another store delivers it, woken by NOTIFY', async () => {
    const { p, relay, ctx, outbox, broker, emptyReads } = await twoSides();
    await admin.query(`create table ${p}state (id text primary key, total integer not null)`);
    relay.start();
    try {
      await waitFor('the relay to find nothing and wait', () => emptyReads() >= 1);
      const ids = await ctx.withTransaction(async (tx) => {
        await tx.handle.query(`insert into ${p}state (id, total) values ($1, $2)`, ['o-1', 42]);
        return outbox.publish(tx, { topic: 'orders', key: 'o-1', value: 'created' });
      });
      await broker.waitFor(() => broker.messages('orders').length === 1, 10_000);
      const [message] = broker.messages('orders');
      expect([message?.key, String(message?.value), message?.headers['txkit-outbox-id']]).toEqual(['o-1', 'created', ids[0]]);
      expect((await admin.query(`select total from ${p}state`)).rows).toEqual([{ total: 42 }]);
    } finally {
      await relay.stop();
      await ctx.close();
    }
    expect(relay.stats.relayed).toBe(1);
  });

  it('a publish after a rolled-back savepoint that published still wakes relays elsewhere (a pg handle is shared by its savepoints)', async () => {
    const { relay, ctx, outbox, broker, emptyReads } = await twoSides();
    relay.start();
    try {
      await waitFor('the relay to find nothing and wait', () => emptyReads() >= 1);
      await ctx.withTransaction(async (tx) => {
        const undone = await rejection(
          ctx.withTransaction(
            async (sp) => {
              await outbox.publish(sp, { topic: 'orders', key: 'k', value: 'undone' });
              throw new Error('savepoint rolled back');
            },
            { propagation: 'nested' },
          ),
        );
        expect((undone as Error).message).toBe('savepoint rolled back');
        await outbox.publish(tx, { topic: 'orders', key: 'k', value: 'kept' });
      });
      await broker.waitFor(() => broker.messages('orders').length === 1, 10_000);
      expect(broker.messages('orders').map((m) => String(m.value))).toEqual(['kept']);
    } finally {
      await relay.stop();
      await ctx.close();
    }
  });

  it("a publish's NOTIFY names its outbox table, so stores of other prefixes on the database are not woken by it", async () => {
    const p = prefix();
    const publisher = store(publisherPool, p);
    await publisher.migrate();
    const listener = new pgDriver.Client({ connectionString: url });
    await listener.connect();
    const payloads: string[] = [];
    listener.on('notification', (m) => void payloads.push(String(m.payload)));
    await listener.query('LISTEN txkit_outbox');
    const ctx = pgTransactions(publisherPool, { retry: FAST });
    try {
      await ctx.withTransaction((tx) => new Outbox(publisher).publish(tx, { topic: 'orders', key: 'k', value: 'v' }));
      await waitFor('the notification of the publish', () => payloads.some((m) => m.startsWith(`${p}outbox:`.toLowerCase())));
      expect(payloads.filter((m) => m.startsWith(`${p}outbox:`.toLowerCase()))).toEqual([`${p}outbox:0`.toLowerCase()]);
    } finally {
      await ctx.close();
      await listener.end();
    }
  });

  it('with its LISTEN connection up, a relay that read fewer records than a batch waits for the next NOTIFY instead of reading again', async () => {
    const { relay, ctx, outbox, broker, reads } = await twoSides();
    relay.start();
    try {
      await waitFor('the relay to read and wait', () => reads() >= 1);
      for (const [n, value] of ['first', 'second'].entries()) {
        await ctx.withTransaction((tx) => outbox.publish(tx, { topic: 'orders', key: 'k', value }));
        await broker.waitFor(() => broker.messages('orders').length === n + 1, 10_000);
      }
    } finally {
      await relay.stop();
      await ctx.close();
    }
    // The first read found nothing; each NOTIFY then woke one read, which found its record and was all there was.
    expect(reads()).toBe(3);
    expect(broker.messages('orders').map((m) => String(m.value))).toEqual(['first', 'second']);
  });

  it('the store says it hears every commit only while its LISTEN connection is up and not quiet for a whole wait since its last notification', async () => {
    const { p, relayStore, ctx, outbox } = await twoSides();
    // twoSides() set up the LISTEN connection with a first wait.
    expect(relayStore.hearsEveryCommit()).toBe(true);
    // The wait that sets the LISTEN up ends once it is up (a read made meanwhile may have missed a commit): not after its time.
    const another = store(publisherPool, p);
    expect(another.hearsEveryCommit()).toBe(false);
    await another.waitForPublish(NEVER_POLL_MS);
    expect(another.hearsEveryCommit()).toBe(true);
    // A wait that runs its whole time: a silent connection (a half-open socket, a proxy that drops notifications) looks the same.
    await relayStore.waitForPublish(20);
    expect(relayStore.hearsEveryCommit()).toBe(false);
    const waiting = relayStore.waitForPublish(60_000);
    await ctx.withTransaction((tx) => outbox.publish(tx, { topic: 'orders', key: 'k', value: 'v' }));
    await waiting;
    expect(relayStore.hearsEveryCommit()).toBe(true);
    await relayStore.close();
    expect(relayStore.hearsEveryCommit()).toBe(false);
    await ctx.close();
  });

  it('when its LISTEN connection breaks, the store listens on a new one and relays wake on NOTIFY again', async () => {
    const { relay, relayStore, ctx, outbox, broker, emptyReads, listening } = await twoSides();
    relay.start();
    try {
      await waitFor('the relay to find nothing and wait', () => emptyReads() >= 1);
      await ctx.withTransaction((tx) => outbox.publish(tx, { topic: 'orders', key: 'k', value: 'before' }));
      await broker.waitFor(() => broker.messages('orders').length === 1, 10_000);
      // Having read fewer records than a batch with LISTEN up, the relay waits for a NOTIFY without reading again.
      const before = await listening();
      expect(before).toHaveLength(1);
      const reads = emptyReads();
      await admin.query('select pg_terminate_backend($1)', [before[0]]);
      // The loss ends the relay's wait; its next round listens on a new connection, reads, and waits.
      await waitFor('a new LISTEN connection and a relay waiting on it', async () => {
        const now = await listening();
        return emptyReads() > reads && now.length === 1 && now[0] !== before[0];
      });
      await ctx.withTransaction((tx) => outbox.publish(tx, { topic: 'orders', key: 'k', value: 'after' }));
      await broker.waitFor(() => broker.messages('orders').length === 2, 10_000);
      expect(broker.messages('orders').map((m) => String(m.value))).toEqual(['before', 'after']);
    } finally {
      await relay.stop();
      await ctx.close();
    }
    await relayStore.close();
    expect(await listening()).toEqual([]);
  });

  it('one schema for stores on knex and on pg: each migrates for the other, both append gaplessly to one sequence, migrations at once are safe', async () => {
    const knexCtx = knexTransactions(knex, { retry: FAST });
    const pgCtx = pgTransactions(publisherPool, { retry: FAST });
    try {
      // Migrated through knex, used through pg.
      const p1 = prefix();
      const byKnex = store(knex, p1, 2);
      await byKnex.migrate();
      const pgOnKnexSchema = store(publisherPool, p1, 2);
      await pgOnKnexSchema.migrate();
      await pgCtx.withTransaction((tx) => pgOnKnexSchema.append(tx.handle, 1, [record('a1'), record('a2')]));
      await knexCtx.withTransaction((tx) => byKnex.append(tx.handle, 1, [record('a3')]));
      for (const s of [byKnex, pgOnKnexSchema]) {
        expect((await s.read(1, 0, 10)).map((r) => [r.seq, r.id, String(r.value)])).toEqual([
          [1, 'a1', 'a1'],
          [2, 'a2', 'a2'],
          [3, 'a3', 'a3'],
        ]);
      }
      expect((await pgOnKnexSchema.status()).partitions.map((s) => s.published)).toEqual([0, 3]);

      // Migrated through pg, used through knex (and the schema version knex reads is the one it writes).
      const p2 = prefix();
      const byPg = store(publisherPool, p2);
      await byPg.migrate();
      expect(await knex(`${p2}schema`).select('component', 'version')).toEqual([{ component: 'outbox', version: 3 }]);
      const knexOnPgSchema = store(knex, p2);
      await knexOnPgSchema.migrate();
      await knexCtx.withTransaction((tx) => knexOnPgSchema.append(tx.handle, 0, [record('b1')]));
      await knexCtx.withTransaction((tx) => knexOnPgSchema.advanceInbox(tx.handle, { consumer: 'c', source: 's', partition: 0, expected: undefined, next: 4 }));
      await pgCtx.withTransaction((tx) => byPg.advanceInbox(tx.handle, { consumer: 'c', source: 's', partition: 0, expected: 4, next: 5 }));
      expect((await byPg.read(0, 0, 10)).map((r) => [r.seq, r.id])).toEqual([[1, 'b1']]);
      expect(await knexOnPgSchema.inboxPosition(undefined, { consumer: 'c', source: 's', partition: 0 })).toBe(5);

      // Either handle goes through either store on Postgres.
      await knexCtx.withTransaction((tx) => byPg.append(tx.handle, 0, [record('b2')]));
      await pgCtx.withTransaction((tx) => knexOnPgSchema.append(tx.handle, 0, [record('b3')]));
      expect((await knexOnPgSchema.read(0, 0, 10)).map((r) => [r.seq, r.id])).toEqual([
        [1, 'b1'],
        [2, 'b2'],
        [3, 'b3'],
      ]);

      // Both kinds migrating a fresh schema at once take the same lock.
      const p3 = prefix();
      const [k, g] = [store(knex, p3, 3), store(publisherPool, p3, 3)];
      await Promise.all([k.migrate(), g.migrate(), k.migrate(), g.migrate()]);
      expect(await knex(`${p3}schema`).select('version')).toEqual([{ version: 3 }]);
      expect((await g.status()).partitions.map((s) => s.partition)).toEqual([0, 1, 2]);
    } finally {
      await knexCtx.close();
      await pgCtx.close();
    }
  });

  it('pipeline on pgTransactions: effects, outbox and inbox position commit together, a poison message goes to the dead letters', async () => {
    const p = prefix();
    const s = store(publisherPool, p);
    await s.migrate();
    await admin.query(`create table ${p}state (id text primary key, amount integer not null)`);
    const broker = new MemoryStore({ partitions: 1 });
    await memoryTransactions({ store: broker }).withTransaction((tx) =>
      tx.handle.send({
        topic: 'payments',
        messages: Array.from({ length: 12 }, (_, i) => ({ key: `p${i}`, value: i === 5 ? 'not json' : JSON.stringify({ id: `p${i}`, amount: i }) })),
      }),
    );
    const db = pgTransactions(publisherPool, { retry: FAST });
    const job = pipeline({
      consumer: 'payments-job',
      source: memorySource(broker, 'payments'),
      db,
      store: s,
      batchSize: 4,
      maxAttempts: 2,
      redelivery: { initialDelayMs: 1, maxDelayMs: 5 },
      onError: () => undefined,
      handler: async (m, { tx, outbox }) => {
        const payment = JSON.parse(String(m.value)) as { id: string; amount: number };
        await tx.handle.query(`insert into ${p}state (id, amount) values ($1, $2)`, [payment.id, payment.amount]);
        await outbox.publish(tx, { topic: 'receipts', key: payment.id, value: `receipt ${payment.id}` });
      },
    });
    try {
      const stats = await job.runUntilIdle();
      expect(stats.deadLettered).toBe(1);
    } finally {
      await db.close();
    }
    await new OutboxRelay({ store: s, sink: memorySink(memoryTransactions({ store: broker })) }).drain();
    expect((await admin.query(`select count(*)::int as n from ${p}state`)).rows[0].n).toBe(11);
    expect(broker.messages('receipts')).toHaveLength(11);
    expect(await s.inboxPosition(undefined, { consumer: 'payments-job', source: 'payments', partition: 0 })).toBe(12);
    const dead = await s.deadLetters('payments-job');
    expect(dead.map((d) => [d.offset, String(d.value)])).toEqual([[5, 'not json']]);
    expect(dead[0]?.error).toMatch(/SyntaxError/);
  });
});
