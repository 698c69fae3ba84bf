/**
 * The outbox on real databases (SQLite embedded, Postgres and MariaDB as
 * running here), relayed into the memory broker, and the pipeline reading
 * from it. Crash points are injected into the relay's broker transaction.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import { knexTransactions } from '../../src/adapters/sql/index.js';
import { ConfigError, TxkitError } from '../../src/core/index.js';
import type { NativeErrorCode } from '../../src/core/index.js';
import {
  InboxFencedError,
  OUTBOX_ID_HEADER,
  Outbox,
  OutboxRelay,
  memorySink,
  memorySource,
  pipeline,
  sqlOutboxStore,
} from '../../src/outbox/index.js';
import type { RelaySink } from '../../src/outbox/index.js';
import type { MemoryTxHandle } from '../../src/adapters/memory/index.js';
import { rejection } from '../../src/testing/index.js';
import { service } from '../support/services.js';

interface Db {
  name: string;
  make: () => Knex;
  cleanup?: () => void;
}

const dir = mkdtempSync(join(tmpdir(), 'txkit-outbox-'));
const pg = service('postgres');
const mysql = service('mysql');
const databases: Db[] = [
  {
    name: 'sqlite',
    make: () => knexFactory({ client: 'better-sqlite3', connection: { filename: join(dir, `o-${Date.now()}-${Math.random()}.db`) }, useNullAsDefault: true }),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  },
  ...(pg ? [{ name: 'postgres', make: () => knexFactory({ client: 'pg', connection: pg, pool: { min: 0, max: 6 } }) }] : []),
  ...(mysql ? [{ name: 'mariadb', make: () => knexFactory({ client: 'mysql2', connection: mysql, pool: { min: 0, max: 6 } }) }] : []),
];

let run = 0;
const prefix = (): string => `tx${process.pid}_${Date.now().toString(36)}_${run++}_`;

async function dropTables(db: Knex, p: string): Promise<void> {
  for (const t of [...sqlOutboxStore(db, { tablePrefix: p }).tableNames, `${p}state`, `${p}commit_order`]) await db.schema.dropTableIfExists(t);
}

describe.each(databases)('outbox on $name', ({ make, cleanup }) => {
  let db: Knex;
  const prefixes: string[] = [];
  const stores: { close(): Promise<void> }[] = [];
  beforeAll(() => {
    db = make();
  });
  afterAll(async () => {
    // A store holds a LISTEN connection on Postgres: close it before the pool.
    for (const s of stores) await s.close();
    for (const p of prefixes) await dropTables(db, p);
    await db.destroy();
    cleanup?.();
  });

  async function setup(partitions = 1) {
    const p = prefix();
    prefixes.push(p);
    const store = sqlOutboxStore(db, { tablePrefix: p, partitions });
    stores.push(store);
    await Promise.all([store.migrate(), store.migrate()]);
    await store.migrate();
    const ctx = knexTransactions(db, { retry: { initialDelayMs: 1, maxDelayMs: 20 } });
    const broker = new MemoryStore({ partitions: 3 });
    const sinkCtx = memoryTransactions({ store: broker });
    return { p, store, ctx, outbox: new Outbox(store), broker, sinkCtx, sink: memorySink(sinkCtx) };
  }

  it('migrate is versioned and safe to run twice, also at once', async () => {
    const { p } = await setup();
    const rows = (await db(`${p}schema`).select('component', 'version')) as { component: string; version: number }[];
    expect(rows).toEqual([{ component: 'outbox', version: 3 }]);
  });

  it('migrate upgrades a version 2 schema with the lease tables, and tableNames lists every table it made', async () => {
    const { p, store } = await setup();
    await db.schema.dropTable(store.tables.leases);
    await db.schema.dropTable(store.tables.leaseMembers);
    await db(`${p}schema`).where({ component: 'outbox' }).update({ version: 2 });
    await store.migrate();
    expect(await db(`${p}schema`).select('version')).toEqual([{ version: 3 }]);
    for (const t of store.tableNames) expect(await db.schema.hasTable(t), t).toBe(true);
    expect([...store.tableNames].sort()).toEqual(
      ['dead_letters', 'inbox', 'lease_members', 'leases', 'outbox', 'outbox_partitions', 'outbox_relays', 'schema'].map((t) => `${p}${t}`),
    );
    const lease = await store.acquireLease({ group: 'relay/upgraded', partition: 0, owner: 'w1', ttlMs: 60_000 });
    expect([lease?.owner, lease?.epoch]).toEqual(['w1', 1]);
    expect((await store.heartbeat({ group: 'relay/upgraded', owner: 'w1', ttlMs: 60_000 })).map((m) => m.owner)).toEqual(['w1']);
  });

  it('publishes only what commits, with its outbox id as a header', async () => {
    const { ctx, outbox, store, sink, broker } = await setup();
    const [id] = await ctx.withTransaction((tx) => outbox.publish(tx, { topic: 'orders', key: 'o-1', value: 'created' }));
    await rejection(
      ctx.withTransaction(async (tx) => {
        await outbox.publish(tx, { topic: 'orders', key: 'o-2', value: 'never' });
        throw new Error('business rule failed');
      }),
    );
    const relay = new OutboxRelay({ store, sink });
    expect(await relay.drain()).toBe(1);
    const out = broker.messages('orders');
    expect(out.map((m) => [m.key, m.value?.toString()])).toEqual([['o-1', 'created']]);
    expect(out[0]?.headers[OUTBOX_ID_HEADER]).toBe(id);
    expect(await relay.drain()).toBe(0);
  });

  it('keeps commit order per key across concurrent publishers, with gapless sequences', async () => {
    const { p, ctx, outbox, store, sink, broker } = await setup(2);
    // The commit order is taken on the server, not from the order in which
    // the client happens to read the COMMIT replies: each transaction's last
    // statement bumps one counter row, whose lock it holds until it commits,
    // so the counter values are the order of the commits.
    await db.schema.createTable(`${p}commit_order`, (t) => {
      t.integer('id').primary();
      t.integer('n').notNullable();
    });
    await db(`${p}commit_order`).insert({ id: 1, n: 0 });
    const order: { value: string; n: number }[] = [];
    await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        ctx.withTransaction(async (tx) => {
          await outbox.publish(tx, { topic: 'events', key: `k${i % 3}`, value: `e${i}` });
          await tx.handle(`${p}commit_order`).where({ id: 1 }).increment('n', 1);
          const [row] = (await tx.handle(`${p}commit_order`).where({ id: 1 }).select('n')) as { n: number }[];
          tx.afterCommit(() => void order.push({ value: `e${i}`, n: Number(row?.n) }));
        }),
      ),
    );
    const committed = order.sort((a, b) => a.n - b.n).map((o) => o.value);
    expect(new Set(order.map((o) => o.n)).size).toBe(24);
    await new OutboxRelay({ store, sink }).drain();
    const out = broker.messages('events');
    expect(out).toHaveLength(24);
    for (const key of ['k0', 'k1', 'k2']) {
      const values = out.filter((m) => m.key === key).map((m) => String(m.value));
      // The relay's order for a key is the order in which those transactions committed.
      expect(values).toEqual(committed.filter((v) => values.includes(v)));
    }
    const status = await store.status();
    expect(status.partitions.reduce((n, s) => n + s.published, 0)).toBe(24);
    expect(status.partitions.every((s) => s.pending === 0)).toBe(true);
  });

  it('a relay crashing inside its broker transaction at any point neither loses nor duplicates', async () => {
    const { ctx, outbox, store, sinkCtx, broker } = await setup();
    for (let i = 0; i < 10; i++) {
      await ctx.withTransaction((tx) => outbox.publish(tx, Array.from({ length: 7 }, (_, j) => ({ topic: 't', key: `k${j}`, value: `${i}-${j}` }))));
    }
    const base = memorySink(sinkCtx);
    const crashes = ['before-send', 'after-send', 'after-position'] as const;
    for (let round = 0; round < 9; round++) {
      const at = crashes[round % crashes.length];
      const crashing: RelaySink<MemoryTxHandle> = {
        context: sinkCtx,
        readPosition: async (tx, { relayId: id, partition: p }) => {
          if (at === 'before-send') throw new TxkitError('CRASH' as NativeErrorCode, 'simulated crash before send');
          return base.readPosition(tx, { relayId: id, partition: p });
        },
        writePosition: async (tx, { relayId: id, partition: p, seq }) => {
          if (at === 'after-send') throw new TxkitError('CRASH' as NativeErrorCode, 'simulated crash after send');
          await base.writePosition(tx, { relayId: id, partition: p, seq });
          if (at === 'after-position') throw new TxkitError('CRASH' as NativeErrorCode, 'simulated crash before commit');
        },
      };
      const err = await rejection(new OutboxRelay({ store, sink: crashing, batchSize: 5 }).relayOnce(0));
      expect((err as TxkitError).code).toBe('CRASH');
      // A healthy relay instance makes progress between crashes.
      await new OutboxRelay({ store, sink: base, batchSize: 5 }).relayOnce(0);
    }
    await new OutboxRelay({ store, sink: base }).drain();
    const values = broker.messages('t').map((m) => String(m.value));
    expect(values).toHaveLength(70);
    expect(new Set(values).size).toBe(70);
  });

  it('two relays racing on one partition never send a record twice', async () => {
    const { ctx, outbox, store, sink, broker } = await setup();
    for (let i = 0; i < 20; i++) await ctx.withTransaction((tx) => outbox.publish(tx, { topic: 'race', key: null, value: `r${i}` }));
    const a = new OutboxRelay({ store, sink, batchSize: 3, retry: { initialDelayMs: 0, maxDelayMs: 2 } });
    const b = new OutboxRelay({ store, sink, batchSize: 3, retry: { initialDelayMs: 0, maxDelayMs: 2 } });
    await Promise.all([a.drain(), b.drain()]);
    const values = broker.messages('race').map((m) => String(m.value));
    expect(values).toEqual(Array.from({ length: 20 }, (_, i) => `r${i}`));
  });

  it('a running relay wakes on commit and stops cleanly', async () => {
    const { ctx, outbox, store, sink, broker } = await setup();
    const relay = new OutboxRelay({ store, sink, pollIntervalMs: 60_000 });
    relay.start();
    await ctx.withTransaction((tx) => outbox.publish(tx, { topic: 'live', key: 'a', value: 'x' }));
    // The poll interval is a minute: only the commit notification can deliver this in time.
    await broker.waitFor(() => broker.messages('live').length === 1, 10_000);
    await relay.stop();
    expect(relay.stats.relayed).toBe(1);
  });

  it('pipeline: exactly-once effects, poison to dead letters, resumes from stored positions', async () => {
    const { ctx, store, sink, broker, p } = await setup();
    await db.schema.createTable(`${p}state`, (t) => {
      t.string('id').primary();
      t.integer('amount').notNullable();
    });
    const input = memoryTransactions({ store: broker });
    await input.withTransaction((tx) =>
      tx.handle.send({
        topic: 'payments',
        messages: Array.from({ length: 60 }, (_, i) => ({ key: `p${i}`, value: i === 17 ? 'not json' : JSON.stringify({ id: `p${i}`, amount: i }) })),
      }),
    );
    const make = () =>
      pipeline({
        consumer: 'payments-job',
        source: memorySource(broker, 'payments'),
        db: ctx,
        store,
        batchSize: 7,
        maxAttempts: 2,
        onError: () => undefined,
        handler: async (m, { tx, outbox }) => {
          const payment = JSON.parse(String(m.value)) as { id: string; amount: number };
          await tx.handle.raw(`insert into ${p}state (id, amount) values (?, ?)`, [payment.id, payment.amount]);
          await outbox.publish(tx, { topic: 'receipts', key: payment.id, value: `receipt ${payment.id}` });
        },
      });
    // First worker stops after some batches; a second one resumes from the database positions.
    const first = make();
    const parts = await memorySource(broker, 'payments').partitions();
    let offset = 0;
    for (let i = 0; i < 2; i++) offset = (await first.step(parts[0] as number, offset)) as number;
    const second = make();
    const stats = await second.runUntilIdle();
    expect(first.stats.deadLettered + stats.deadLettered).toBe(1);
    await new OutboxRelay({ store, sink }).drain();
    const rows = (await db(`${p}state`).select('id')) as { id: string }[];
    expect(rows).toHaveLength(59);
    expect(broker.messages('receipts')).toHaveLength(59);
    const dead = await store.deadLetters('payments-job');
    expect(dead).toHaveLength(1);
    expect(dead[0]?.value?.toString()).toBe('not json');
    expect(dead[0]?.error).toMatch(/SyntaxError/);
    expect((await store.status()).deadLetters).toBe(1);
  });

  it('a zombie worker whose partition was taken over is fenced and commits nothing', async () => {
    const { ctx, store, broker } = await setup();
    const input = memoryTransactions({ store: broker });
    await input.withTransaction((tx) => tx.handle.send({ topic: 'z', messages: [{ key: 'a', value: '1', partition: 0 }, { key: 'a', value: '2', partition: 0 }] }));
    let effects = 0;
    const make = () =>
      pipeline({
        consumer: 'z-job',
        source: memorySource(broker, 'z', { partitions: [0] }),
        db: ctx,
        store,
        batchSize: 1,
        onError: () => undefined,
        handler: async () => void (effects += 1),
      });
    const zombie = make();
    const successor = make();
    expect(await successor.step(0, 0)).toBe(1);
    // The zombie still believes it is at offset 0 with no position stored.
    expect(await zombie.step(0, 0)).toBeUndefined();
    expect(zombie.stats.fenced).toEqual([0]);
    expect(await store.inboxPosition(undefined, { consumer: 'z-job', source: 'z', partition: 0 })).toBe(1);
    expect(effects).toBe(2); // the zombie's handler ran, but its transaction rolled back
  });

  it('bad messages get ConfigError and nothing is written', async () => {
    const { ctx, outbox, store } = await setup();
    const bad = [
      { topic: '', value: 'x' },
      { topic: 't', value: { a: 1 } },
      { topic: 't', key: 5, value: 'x' },
      { topic: 't', value: 'x', headers: { h: 1 } },
      { topic: 't', value: Buffer.alloc(2_000_001) },
    ];
    for (const m of bad) {
      const err = await rejection(ctx.withTransaction((tx) => outbox.publish(tx, m as never)));
      expect(err).toBeInstanceOf(ConfigError);
    }
    expect((await store.status()).partitions[0]?.published).toBe(0);
    expect(InboxFencedError.prototype).toBeInstanceOf(TxkitError);
  });
});
