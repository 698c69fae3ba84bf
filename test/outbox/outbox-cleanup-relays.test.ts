/**
 * Outbox cleanup with two relay ids reading one outbox: a row is deleted only
 * once every relay id known to the store has sent it, so a relay id that is
 * behind (down, or slower) still finds every row it has not sent. Status
 * reports each relay id's position. Memory store, SQLite, PostgreSQL and
 * MariaDB; MongoDB (scripted server) is in outbox-mongo.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import { knexTransactions } from '../../src/adapters/sql/index.js';
import type { TransactionContext } from '../../src/core/index.js';
import { MemoryOutboxStore, OUTBOX_SEQ_HEADER, Outbox, OutboxRelay, memorySink, sqlOutboxStore } from '../../src/outbox/index.js';
import type { OutboxStore } from '../../src/outbox/index.js';
import { service } from '../support/services.js';
import { viewOf } from '../support/view-of.js';
import { waitUntil } from '../support/wait-until.js';

interface Env {
  store: OutboxStore<unknown>;
  db: TransactionContext<unknown>;
  close(): Promise<void>;
}

const dir = mkdtempSync(join(tmpdir(), 'txkit-cleanup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let made = 0;

function sql(name: string, make: () => Knex): { name: string; make: () => Promise<Env> } {
  return {
    name,
    make: async () => {
      const knex = make();
      const prefix = `cr${process.pid}_${Date.now().toString(36)}_${made++}_`;
      const store = sqlOutboxStore(knex, { tablePrefix: prefix, partitions: 2 });
      await store.migrate();
      const db = knexTransactions(knex, { retry: { initialDelayMs: 1, maxDelayMs: 20 } });
      return {
        store: store as OutboxStore<unknown>,
        db: db as TransactionContext<unknown>,
        close: async () => {
          await store.close();
          for (const t of Object.values(store.tables)) await knex.schema.dropTableIfExists(t);
          await knex.destroy();
        },
      };
    },
  };
}

const pg = service('postgres');
const mysql = service('mysql');
const backends = [
  {
    name: 'memory',
    make: async (): Promise<Env> => {
      const data = new MemoryStore();
      const db = memoryTransactions({ store: data });
      return { store: new MemoryOutboxStore(data, { partitions: 2 }) as OutboxStore<unknown>, db: db as TransactionContext<unknown>, close: () => db.close() };
    },
  },
  sql('sqlite', () => knexFactory({ client: 'better-sqlite3', connection: { filename: join(dir, `c-${made}.db`) }, useNullAsDefault: true })),
  ...(pg === undefined ? [] : [sql('postgres', () => knexFactory({ client: 'pg', connection: pg, pool: { min: 0, max: 4 } }))]),
  ...(mysql === undefined ? [] : [sql('mariadb', () => knexFactory({ client: 'mysql2', connection: mysql, pool: { min: 0, max: 4 } }))]),
];

/** A relay with its own broker, so what each relay id sent can be told apart. */
function relayTo(store: OutboxStore<unknown>, relayId: string) {
  const broker = new MemoryStore({ partitions: 1 });
  const relay = new OutboxRelay({ store, sink: memorySink(memoryTransactions({ store: broker })), relayId });
  /** `<partition>:<seq>` of every record this relay id sent, in the order sent. */
  const sent = (): string[] => broker.messages('events').map((m) => String(m.headers[OUTBOX_SEQ_HEADER]));
  return { relay, sent };
}

async function publish(env: Env, from: number, to: number): Promise<void> {
  const outbox = new Outbox(env.store);
  for (let i = from; i < to; i++) await env.db.withTransaction((tx) => outbox.publish(tx, { topic: 'events', key: `k${i}`, value: `e${i}` }));
}

async function rows(store: OutboxStore<unknown>): Promise<string[]> {
  const out: string[] = [];
  for (let p = 0; p < store.partitions; p++) out.push(...(await store.read(p, 0, 1000)).map((r) => `${r.partition}:${r.seq}`));
  return out.sort();
}

describe.each(backends)('outbox cleanup with two relay ids on $name', ({ make }) => {
  it('one relay id relays and cleans up past retention; the other’s unsent rows remain and it relays them all afterwards', async () => {
    const env = await make();
    try {
      const billing = relayTo(env.store, 'billing');
      const search = relayTo(env.store, 'search');
      await publish(env, 0, 4);
      // billing relays the first rows, then goes down; more rows are published meanwhile.
      expect(await billing.relay.drain()).toBe(4);
      await publish(env, 4, 12);
      const all = await rows(env.store);
      expect(all).toHaveLength(12);
      // search relays everything, and cleanup runs with retention passed for every row.
      expect(await search.relay.drain()).toBe(12);
      expect(await env.store.cleanup(-1)).toBe(4);
      // Only what both relay ids sent is gone: every row billing has not sent is still there.
      expect(await rows(env.store)).toEqual(all.filter((r) => !billing.sent().includes(r)));
      // billing comes back and sends every row it had not, exactly once.
      expect(await billing.relay.drain()).toBe(8);
      expect([...billing.sent()].sort()).toEqual(all);
      expect([...search.sent()].sort()).toEqual(all);
      expect(await env.store.cleanup(-1)).toBe(8);
      expect(await rows(env.store)).toEqual([]);
    } finally {
      await env.close();
    }
  });

  it('status reports each relay id; a registered relay id holds cleanup back until it is removed', async () => {
    const env = await make();
    try {
      const search = relayTo(env.store, 'search');
      await publish(env, 0, 6);
      // Known before its first run, at position 0: cleanup keeps everything for it.
      await env.store.registerRelay('audit');
      await env.store.registerRelay('audit');
      await search.relay.drain();
      const status = await env.store.status();
      expect(status.relays.map((r) => [r.relayId, r.pending])).toEqual([
        ['audit', 6],
        ['search', 0],
      ]);
      const published = status.partitions.map((p) => p.published);
      expect(published.reduce((a, b) => a + b, 0)).toBe(6);
      expect(status.relays[1]?.partitions).toEqual(status.partitions.map((p) => ({ partition: p.partition, relayed: p.published, pending: 0 })));
      // The partitions' backlog is what some known relay id still has to send.
      expect(status.partitions.map((p) => [p.relayed, p.pending])).toEqual(published.map((n) => [0, n]));
      expect(status.pendingByTopic).toEqual({ events: 6 });
      expect(await env.store.cleanup(-1)).toBe(0);
      // Retired: cleanup no longer waits for it.
      expect(await env.store.removeRelay('audit')).toBe(true);
      expect(await env.store.removeRelay('audit')).toBe(false);
      const after = await env.store.status();
      expect(after.relays.map((r) => r.relayId)).toEqual(['search']);
      expect(after.partitions.every((p) => p.pending === 0)).toBe(true);
      expect(after.pendingByTopic).toEqual({});
      expect(await env.store.cleanup(-1)).toBe(6);
    } finally {
      await env.close();
    }
  });

  it('a relay that committed to the broker and died before recording its hint: the next relay of the id records it from the broker, so nothing shows pending and cleanup deletes', async () => {
    const env = await make();
    try {
      const broker = new MemoryStore({ partitions: 1 });
      const relayOn = (store: OutboxStore<unknown>): OutboxRelay => new OutboxRelay({ store, sink: memorySink(memoryTransactions({ store: broker })), relayId: 'r' });
      await publish(env, 0, 6);
      // The first relay's hints never reach the store, as when it is SIGKILLed right after its broker commits.
      expect(await relayOn(withoutHints(env.store)).drain()).toBe(6);
      expect(broker.messages('events')).toHaveLength(6);
      expect((await env.store.status()).relays.map((r) => [r.relayId, r.pending])).toEqual([['r', 6]]);
      // The next relay finds nothing to send, and records where the broker has the position.
      expect(await relayOn(env.store).drain()).toBe(0);
      expect((await env.store.status()).relays.map((r) => [r.relayId, r.pending])).toEqual([['r', 0]]);
      expect(await env.store.cleanup(-1)).toBe(6);
      expect(broker.messages('events')).toHaveLength(6);
    } finally {
      await env.close();
    }
  });

  it('a hint the store refuses once: the running relay reads the broker position again and records it, though nothing more is published', async () => {
    const env = await make();
    const errors: unknown[] = [];
    let refusals = 0;
    const refusing = viewOf(env.store, {
      markRelayed: async (position) => {
        if (refusals++ < 2) throw new Error('store unreachable for a moment');
        await env.store.markRelayed(position);
      },
    });
    const broker = new MemoryStore({ partitions: 1 });
    const relay = new OutboxRelay({ store: refusing, sink: memorySink(memoryTransactions({ store: broker })), relayId: 'r', leases: false, pollIntervalMs: 20, onError: (e) => void errors.push(e) });
    try {
      await publish(env, 0, 6);
      relay.start();
      await waitUntil(async () => (await env.store.status()).relays.find((r) => r.relayId === 'r')?.pending === 0, 10_000, 'the relay id reported with nothing pending');
      expect(broker.messages('events')).toHaveLength(6);
      expect(refusals).toBeGreaterThan(2);
      expect(errors.map((e) => (e as Error).message)).toEqual(['store unreachable for a moment', 'store unreachable for a moment']);
    } finally {
      await relay.stop();
      await env.close();
    }
  });
});

/** A store whose relay hints are lost: the broker commits, the store never hears of it. */
function withoutHints(store: OutboxStore<unknown>): OutboxStore<unknown> {
  return viewOf(store, { markRelayed: async () => undefined });
}
