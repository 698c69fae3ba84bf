/**
 * Malformed messages into the pipeline: an undecodable payload, a missing
 * key, an oversized value and a message its handler declares poison each go
 * to the dead letters with the reason, without retries, and the messages
 * behind them are processed. Runs on the memory store and on sqlOutboxStore
 * over SQLite and Postgres, reading from the memory broker.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import { knexTransactions } from '../../src/adapters/sql/index.js';
import type { TransactionContext, Transaction } from '../../src/core/index.js';
import { TransientTransactionError } from '../../src/core/index.js';
import { MemoryOutboxStore } from '../../src/outbox/stores/memory-outbox-store.js';
import { memorySource } from '../../src/outbox/memory/memory-broker.js';
import { PoisonMessageError } from '../../src/outbox/outbox-errors.js';
import { pipeline } from '../../src/outbox/engine/pipeline.js';
import type { OutboxStore, SourceMessage } from '../../src/outbox/outbox-types.js';
import { sqlOutboxStore } from '../../src/outbox/stores/sql-outbox-store.js';
import { service } from '../support/services.js';

interface Payment {
  id: string;
  amount: number;
}

/** One database for the pipeline: its context, its outbox store, and where the handler's state lives. */
interface Env<H> {
  db: TransactionContext<H>;
  store: OutboxStore<H>;
  write(tx: Transaction<H>, p: Payment): Promise<void>;
  state(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

interface Backend {
  name: string;
  make(): Promise<Env<unknown>>;
}

const dir = mkdtempSync(join(tmpdir(), 'txkit-malformed-'));
const pgUrl = service('postgres');
let tables = 0;

function memoryBackend(): Backend {
  return {
    name: 'memory',
    make: async () => {
      const data = new MemoryStore();
      const db = memoryTransactions({ store: data, retry: { initialDelayMs: 1, maxDelayMs: 5 } });
      const env: Env<Parameters<Parameters<typeof db.withTransaction>[0]>[0]['handle']> = {
        db,
        store: new MemoryOutboxStore(data),
        write: (tx, p) => tx.handle.set(`state/${p.id}`, p.amount),
        state: async () => Object.fromEntries(data.keys('state/').map((k) => [k.slice('state/'.length), data.get(k) as number])),
        close: () => db.close(),
      };
      return env as Env<unknown>;
    },
  };
}

function sqlBackend(name: string, make: () => Knex): Backend {
  return {
    name,
    make: async () => {
      const knex = make();
      const prefix = `mf${process.pid}_${tables++}_`;
      const store = sqlOutboxStore(knex, { tablePrefix: prefix });
      await store.migrate();
      await knex.schema.createTable(`${prefix}state`, (t) => {
        t.string('id').primary();
        t.integer('amount').notNullable();
      });
      const db = knexTransactions(knex, { retry: { initialDelayMs: 1, maxDelayMs: 5 } });
      const env: Env<Knex.Transaction> = {
        db,
        store,
        write: async (tx, p) => void (await tx.handle(`${prefix}state`).insert(p)),
        state: async () => {
          const rows = (await knex(`${prefix}state`).select('id', 'amount')) as Payment[];
          return Object.fromEntries(rows.map((r) => [r.id, Number(r.amount)]));
        },
        close: async () => {
          await store.close();
          for (const t of [...store.tableNames, `${prefix}state`]) {
            await knex.schema.dropTableIfExists(t);
          }
          await knex.destroy();
        },
      };
      return env as unknown as Env<unknown>;
    },
  };
}

const backends: Backend[] = [
  memoryBackend(),
  sqlBackend('sqlite', () =>
    knexFactory({ client: 'better-sqlite3', connection: { filename: join(dir, `m-${tables}.db`) }, useNullAsDefault: true }),
  ),
  ...(pgUrl === undefined ? [] : [sqlBackend('postgres', () => knexFactory({ client: 'pg', connection: pgUrl, pool: { min: 0, max: 4 } }))]),
];

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MAX_VALUE_BYTES = 256;
const TOTAL = 20;
/** offset -> what is wrong with the message there, and the dead-letter reason it must get. */
const BAD = new Map<number, { what: string; reason: RegExp; attempts: number }>([
  [1, { what: 'undecodable payload', reason: /^decode: SyntaxError: /, attempts: 0 }],
  [3, { what: 'missing key', reason: /^key: the message has no key and the pipeline has requireKey: true$/, attempts: 0 }],
  [5, { what: 'oversized value', reason: /^value: \d+ bytes is over maxValueBytes=256$/, attempts: 0 }],
  [7, { what: 'handler declares poison', reason: /^poison: negative amount -7 in payment p7$/, attempts: 1 }],
  [11, { what: 'schema check in decode', reason: /^decode: payment p11 has no numeric amount$/, attempts: 0 }],
]);

/** The input topic: TOTAL messages, the BAD ones malformed in their own way. */
function messages(): { key: string | null; value: string }[] {
  return Array.from({ length: TOTAL }, (_, i) => {
    const good = JSON.stringify({ id: `p${i}`, amount: i });
    switch (i) {
      case 1:
        return { key: `p${i}`, value: '{"id": "p1", "amount": ' };
      case 3:
        return { key: null, value: good };
      case 5:
        return { key: `p${i}`, value: JSON.stringify({ id: `p${i}`, amount: i, pad: 'x'.repeat(MAX_VALUE_BYTES) }) };
      case 7:
        return { key: `p${i}`, value: JSON.stringify({ id: `p${i}`, amount: -i }) };
      case 11:
        return { key: `p${i}`, value: JSON.stringify({ id: `p${i}` }) };
      default:
        return { key: `p${i}`, value: good };
    }
  });
}

const GOOD = Array.from({ length: TOTAL }, (_, i) => i).filter((i) => !BAD.has(i));

describe.each(backends)('malformed messages on $name: dead letters with the reason, the pipeline keeps going', ({ make }) => {
  async function run(batchSize: number) {
    const env = await make();
    const broker = new MemoryStore();
    const input = memoryTransactions({ store: broker });
    await input.withTransaction((tx) => tx.handle.send({ topic: 'payments', messages: messages() }));
    const decodes = new Map<number, number>();
    const handled = new Map<number, number>();
    const reported: unknown[] = [];
    const worker = pipeline({
      consumer: 'malformed-job',
      source: memorySource(broker, 'payments'),
      db: env.db,
      store: env.store,
      batchSize,
      maxAttempts: 3,
      requireKey: true,
      maxValueBytes: MAX_VALUE_BYTES,
      onError: (err) => void reported.push(err),
      decode: (m: SourceMessage): Payment => {
        decodes.set(m.offset, (decodes.get(m.offset) ?? 0) + 1);
        const p = JSON.parse(String(m.value)) as Partial<Payment>;
        if (typeof p.amount !== 'number') throw new PoisonMessageError(`payment ${String(p.id)} has no numeric amount`);
        return { id: String(p.id), amount: p.amount };
      },
      handler: async (m, { tx, decoded }) => {
        handled.set(m.offset, (handled.get(m.offset) ?? 0) + 1);
        if (decoded.amount < 0) throw new PoisonMessageError(`negative amount ${decoded.amount} in payment ${decoded.id}`);
        await env.write(tx, decoded);
      },
    });
    const stats = await worker.runUntilIdle();
    return { env, stats, decodes, handled, reported };
  }

  for (const batchSize of [1, 4]) {
    it(`batchSize ${batchSize}: each malformed message is dead-lettered once with its reason, every good one is processed`, async () => {
      const { env, stats, decodes, handled, reported } = await run(batchSize);
      try {
        const dead = (await env.store.deadLetters('malformed-job')).sort((a, b) => a.offset - b.offset);
        expect(dead.map((d) => d.offset)).toEqual([...BAD.keys()]);
        for (const d of dead) {
          const bad = BAD.get(d.offset)!;
          expect(d.error, bad.what).toMatch(bad.reason);
          expect(d.attempts, bad.what).toBe(bad.attempts);
          // Nothing dropped: the dead letter keeps the message as it came.
          expect(d.value?.toString(), bad.what).toBe(messages()[d.offset]?.value);
          expect(d.key, bad.what).toBe(messages()[d.offset]?.key);
        }
        // The messages behind each bad one were processed, with their effects committed once.
        expect(await env.state()).toEqual(Object.fromEntries(GOOD.map((i) => [`p${i}`, i])));
        expect(stats).toMatchObject({ processed: GOOD.length, deadLettered: BAD.size });
        expect(await env.store.inboxPosition(undefined, { consumer: 'malformed-job', source: 'payments', partition: 0 })).toBe(TOTAL);
        // Rejected before the handler: it never saw the undecodable, keyless, oversized or schema-failing message.
        for (const offset of [1, 3, 5, 11]) expect(handled.get(offset), `offset ${offset}`).toBeUndefined();
        // The poison message ran once and was not retried, although maxAttempts is 3.
        expect(handled.get(7)).toBe(1);
        // decode ran once per message it was given (the oversized and keyless ones never reached it).
        expect([...decodes.values()].every((n) => n === 1)).toBe(true);
        expect(decodes.has(3)).toBe(false);
        expect(decodes.has(5)).toBe(false);
        // Each dead letter was reported as a typed error saying which check failed.
        const poison = reported.filter((e): e is PoisonMessageError => e instanceof PoisonMessageError);
        expect(poison.map((e) => e.reason)).toEqual(dead.map((d) => d.error));
        expect(poison.find((e) => e.reason?.startsWith('value:'))?.message).toMatch(/raise maxValueBytes or have the producer send a reference/);
        expect(poison.find((e) => e.reason?.startsWith('key:'))?.message).toMatch(/the producer must set a key/);
      } finally {
        await env.close();
      }
    });
  }

  it('a handler error that is not poison is retried up to maxAttempts, a transient one recovers, and the partition still moves on', async () => {
    const env = await make();
    try {
      const broker = new MemoryStore();
      const input = memoryTransactions({ store: broker });
      await input.withTransaction((tx) =>
        tx.handle.send({ topic: 'jobs', messages: Array.from({ length: 6 }, (_, i) => ({ key: `j${i}`, value: JSON.stringify({ id: `j${i}`, amount: i }) })) }),
      );
      const runs = new Map<number, number>();
      const worker = pipeline({
        consumer: 'retry-job',
        source: memorySource(broker, 'jobs'),
        db: env.db,
        store: env.store,
        batchSize: 1,
        maxAttempts: 3,
        onError: () => undefined,
        decode: (m) => JSON.parse(String(m.value)) as Payment,
        handler: async (m, { tx, decoded }) => {
          const n = (runs.get(m.offset) ?? 0) + 1;
          runs.set(m.offset, n);
          if (m.offset === 2) throw new Error('downstream refuses j2');
          if (m.offset === 4 && n === 1) throw new TransientTransactionError('conflict on j4');
          await env.write(tx, decoded);
        },
      });
      const stats = await worker.runUntilIdle();
      const dead = await env.store.deadLetters('retry-job');
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({ offset: 2, attempts: 3, error: 'Error: downstream refuses j2' });
      // batchSize 1: one run per attempt, no batch run before it.
      expect(runs.get(2)).toBe(3);
      expect(runs.get(4)).toBe(2);
      expect(stats).toMatchObject({ processed: 5, deadLettered: 1 });
      expect(Object.keys(await env.state()).sort()).toEqual(['j0', 'j1', 'j3', 'j4', 'j5']);
    } finally {
      await env.close();
    }
  });

  it('a running worker (start/stop) passes malformed messages and processes what arrives behind them', async () => {
    const env = await make();
    const broker = new MemoryStore();
    const input = memoryTransactions({ store: broker });
    const worker = pipeline({
      consumer: 'live-job',
      source: memorySource(broker, 'live'),
      db: env.db,
      store: env.store,
      requireKey: true,
      maxValueBytes: MAX_VALUE_BYTES,
      pollIntervalMs: 50,
      onError: () => undefined,
      decode: (m) => JSON.parse(String(m.value)) as Payment,
      handler: async (_m, { tx, decoded }) => env.write(tx, decoded),
    });
    worker.start();
    try {
      await input.withTransaction((tx) =>
        tx.handle.send({
          topic: 'live',
          messages: [
            { key: 'a', value: 'garbage' },
            { key: null, value: JSON.stringify({ id: 'b', amount: 2 }) },
            { key: 'c', value: 'x'.repeat(MAX_VALUE_BYTES + 1) },
          ],
        }),
      );
      await input.withTransaction((tx) => tx.handle.send({ topic: 'live', messages: [{ key: 'd', value: JSON.stringify({ id: 'd', amount: 4 }) }] }));
      await waitUntil('the worker to move past all four messages', async () => (await env.store.inboxPosition(undefined, { consumer: 'live-job', source: 'live', partition: 0 })) === 4);
      expect(await env.state()).toEqual({ d: 4 });
      const reasons = (await env.store.deadLetters('live-job')).sort((a, b) => a.offset - b.offset).map((d) => d.error.split(':')[0]);
      expect(reasons).toEqual(['decode', 'key', 'value']);
    } finally {
      await worker.stop();
      await env.close();
    }
  });
});

/** Waits for a condition (not for a time), failing after `timeoutMs`. */
async function waitUntil(what: string, predicate: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
