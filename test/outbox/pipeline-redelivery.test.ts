/**
 * The pipeline's redelivery policy: a message whose handler fails with an
 * ordinary error is rerun after a back-off while its partition waits, so an
 * outage of the handler's dependency delays messages without dead-lettering
 * them or changing their order. Poison messages, decode failures and the
 * input checks still go to the dead letters at once. Memory backend and
 * SQLite.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import { knexTransactions } from '../../src/adapters/sql/index.js';
import { ConfigError } from '../../src/core/index.js';
import type { Transaction, TransactionContext } from '../../src/core/index.js';
import {
  MemoryOutboxStore,
  MessageRetryError,
  PoisonMessageError,
  RedeliveryExhaustedError,
  memorySource,
  pipeline,
  sqlOutboxStore,
} from '../../src/outbox/index.js';
import type { OutboxStore, PipelineOptions } from '../../src/outbox/index.js';
import { waitUntil } from '../support/wait-until.js';

/** The pipeline's database: its context and store, and the handler's effects in commit order. */
interface Env<H> {
  db: TransactionContext<H>;
  store: OutboxStore<H>;
  /** Records that the message at `offset` was processed, inside the handler's transaction. */
  write(tx: Transaction<H>, offset: number): Promise<void>;
  /** Offsets of the processed messages, in the order their transactions committed. */
  committed(): Promise<number[]>;
  close(): Promise<void>;
}

const dir = mkdtempSync(join(tmpdir(), 'txkit-redelivery-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let made = 0;

const backends: { name: string; make: () => Promise<Env<unknown>> }[] = [
  {
    name: 'memory',
    make: async () => {
      const data = new MemoryStore();
      const db = memoryTransactions({ store: data, retry: { initialDelayMs: 1, maxDelayMs: 5 } });
      const env: Env<Parameters<Parameters<typeof db.withTransaction>[0]>[0]['handle']> = {
        db,
        store: new MemoryOutboxStore(data),
        write: async (tx, offset) => tx.handle.set('log', [...(((await tx.handle.get('log')) as number[] | undefined) ?? []), offset]),
        committed: async () => (data.get('log') as number[] | undefined) ?? [],
        close: () => db.close(),
      };
      return env as Env<unknown>;
    },
  },
  {
    name: 'sqlite',
    make: async () => {
      const knex = knexFactory({ client: 'better-sqlite3', connection: { filename: join(dir, `r-${made++}.db`) }, useNullAsDefault: true });
      const store = sqlOutboxStore(knex);
      await store.migrate();
      await knex.schema.createTable('effects', (t) => {
        t.increments('id');
        t.integer('msg_offset').notNullable();
      });
      const db = knexTransactions(knex, { retry: { initialDelayMs: 1, maxDelayMs: 5 } });
      const env: Env<Knex.Transaction> = {
        db,
        store,
        write: async (tx, offset) => void (await tx.handle('effects').insert({ msg_offset: offset })),
        committed: async () => ((await knex('effects').select('msg_offset').orderBy('id')) as { msg_offset: number }[]).map((r) => Number(r.msg_offset)),
        close: async () => {
          await store.close();
          await knex.destroy();
        },
      };
      return env as unknown as Env<unknown>;
    },
  },
];

const FAST = { initialDelayMs: 1, maxDelayMs: 20 } as const;

/** A one-partition broker and the 'orders' topic as the pipeline's source. */
function input(): { broker: MemoryStore; source: ReturnType<typeof memorySource> } {
  const broker = new MemoryStore({ partitions: 1 });
  return { broker, source: memorySource(broker, 'orders') };
}

async function send(broker: MemoryStore, values: readonly string[]): Promise<void> {
  const ctx = memoryTransactions({ store: broker });
  await ctx.withTransaction((tx) => tx.handle.send({ topic: 'orders', messages: values.map((value, i) => ({ key: `k${i % 2}`, value, partition: 0 })) }));
  await ctx.close();
}

/** A downstream service the handler calls: down until `recover()` says it is back. */
function dependency(recover: (failures: number) => boolean) {
  const state = { failures: 0, up: false };
  return {
    state,
    call(): void {
      if (!state.up && recover(state.failures)) state.up = true;
      if (state.up) return;
      state.failures += 1;
      throw new Error(`payments service unavailable (failure ${state.failures})`);
    },
  };
}

function options<H>(env: Env<H>, source: ReturnType<typeof memorySource>, extra: Partial<PipelineOptions<H>>): PipelineOptions<H> {
  return { consumer: 'redelivery-job', source, db: env.db, store: env.store, handler: async () => undefined, ...extra } as PipelineOptions<H>;
}

describe.each(backends)('pipeline redelivery on $name', ({ make }) => {
  for (const batchSize of [1, 5]) {
    it(`batchSize ${batchSize}: a dependency down for a while delays the partition; every message is processed once, in order, none dead-lettered, each rerun reported`, async () => {
      const env = await make();
      try {
        const { broker, source } = input();
        await send(broker, ['a', 'b', 'c', 'd', 'e']);
        // Down for the first 8 calls: more runs than the old rule gave a message before dead-lettering it.
        const dep = dependency((failures) => failures >= 8);
        const reported: unknown[] = [];
        const worker = pipeline(
          options(env, source, {
            batchSize,
            redelivery: FAST,
            onError: (err) => void reported.push(err),
            handler: async (m, { tx }) => {
              dep.call();
              await env.write(tx, m.offset);
            },
          }),
        );
        const stats = await worker.runUntilIdle();
        expect(await env.store.deadLetters()).toEqual([]);
        expect(stats).toMatchObject({ processed: 5, deadLettered: 0 });
        expect(await env.committed()).toEqual([0, 1, 2, 3, 4]);
        expect(await env.store.inboxPosition(undefined, { consumer: 'redelivery-job', source: 'orders', partition: 0 })).toBe(5);
        // Every failure was reported: reruns of the first message as MessageRetryError, counting up,
        // and (with batches) the failed batch run before it as the handler's own error.
        const retries = reported.filter((e): e is MessageRetryError => e instanceof MessageRetryError);
        expect(retries.length + (batchSize > 1 ? 1 : 0)).toBe(dep.state.failures);
        expect(reported).toHaveLength(dep.state.failures);
        expect(retries.map((r) => r.offset)).toEqual(retries.map(() => 0));
        expect(retries.map((r) => r.attempt)).toEqual(retries.map((_, i) => i + 1));
        for (const r of retries) {
          expect(r.code).toBe('MESSAGE_RETRY');
          expect(r.message).toMatch(/failed on message 0 of 'orders' partition 0 .*payments service unavailable.*the partition waits and reruns it in \d+ ms/);
          expect((r.cause as Error).message).toMatch(/payments service unavailable/);
        }
      } finally {
        await env.close();
      }
    });
  }

  it('PoisonMessageError, a decode failure and an input check still dead-letter at once, without reruns', async () => {
    const env = await make();
    try {
      const { broker, source } = input();
      await send(broker, ['ok', 'not json', 'poison', 'x'.repeat(50), 'ok']);
      const runs = new Map<number, number>();
      const reported: unknown[] = [];
      const worker = pipeline(
        options(env, source, {
          // The default redelivery: a rerun would wait at least a little; none happens.
          maxValueBytes: 20,
          onError: (err) => void reported.push(err),
          decode: (m) => (String(m.value) === 'not json' ? JSON.parse('{') : String(m.value)) as never,
          handler: async (m, { tx }) => {
            runs.set(m.offset, (runs.get(m.offset) ?? 0) + 1);
            if (String(m.value) === 'poison') throw new PoisonMessageError('unknown order type');
            await env.write(tx, m.offset);
          },
        }),
      );
      await worker.runUntilIdle();
      const dead = (await env.store.deadLetters()).sort((a, b) => a.offset - b.offset);
      expect(dead.map((d) => [d.offset, d.attempts])).toEqual([
        [1, 0],
        [2, 1],
        [3, 0],
      ]);
      expect(dead[0]?.error).toMatch(/^decode: SyntaxError/);
      expect(dead[1]?.error).toBe('poison: unknown order type');
      expect(dead[2]?.error).toMatch(/^value: /);
      expect(runs.get(2)).toBe(1);
      expect(reported.filter((e) => e instanceof MessageRetryError)).toEqual([]);
      expect(await env.committed()).toEqual([0, 4]);
    } finally {
      await env.close();
    }
  });

  it('a message still failing when the budget is spent goes to the dead letters with its last error and run count; the partition goes on', async () => {
    const env = await make();
    try {
      const { broker, source } = input();
      await send(broker, ['a', 'b', 'c']);
      let runs = 0;
      const reported: unknown[] = [];
      const worker = pipeline(
        options(env, source, {
          batchSize: 1,
          redelivery: { ...FAST, budgetMs: 50 },
          onError: (err) => void reported.push(err),
          handler: async (m, { tx }) => {
            if (m.offset === 1) throw new Error(`ledger refuses b (run ${++runs})`);
            await env.write(tx, m.offset);
          },
        }),
      );
      const stats = await worker.runUntilIdle();
      expect(stats).toMatchObject({ processed: 2, deadLettered: 1 });
      const dead = await env.store.deadLetters();
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({ offset: 1, attempts: runs, error: `Error: ledger refuses b (run ${runs})` });
      expect(runs).toBeGreaterThan(1);
      const exhausted = reported.filter((e): e is RedeliveryExhaustedError => e instanceof RedeliveryExhaustedError);
      expect(exhausted).toHaveLength(1);
      expect(exhausted[0]).toMatchObject({ code: 'REDELIVERY_EXHAUSTED', offset: 1, attempts: runs });
      expect(exhausted[0]?.message).toMatch(/after \d+ runs .*redelivery budget of 50 ms.*last error: Error: ledger refuses b/);
      expect(reported.filter((e) => e instanceof MessageRetryError)).toHaveLength(runs - 1);
      expect(await env.committed()).toEqual([0, 2]);
    } finally {
      await env.close();
    }
  });

  it('stop() ends a back-off at once; the waiting message stays unprocessed for the next worker, which processes it', async () => {
    const env = await make();
    try {
      const { broker, source } = input();
      await send(broker, ['a', 'b']);
      let up = false;
      const reported: unknown[] = [];
      const make = () =>
        pipeline(
          options(env, source, {
            // A ten-minute wait: only the stop signal can end it within the test.
            redelivery: { initialDelayMs: 600_000, maxDelayMs: 600_000, jitter: 'none' },
            onError: (err) => void reported.push(err),
            handler: async (m, { tx }) => {
              if (!up) throw new Error('inventory service restarting');
              await env.write(tx, m.offset);
            },
          }),
        );
      const first = make();
      first.start();
      await waitUntil(() => reported.some((e) => e instanceof MessageRetryError), 10_000, 'the first rerun to be scheduled');
      await first.stop();
      expect(first.stats).toMatchObject({ processed: 0, deadLettered: 0 });
      expect(await env.store.inboxPosition(undefined, { consumer: 'redelivery-job', source: 'orders', partition: 0 })).toBeUndefined();
      up = true;
      const second = make();
      expect(await second.runUntilIdle()).toMatchObject({ processed: 2, deadLettered: 0 });
      expect(await env.committed()).toEqual([0, 1]);
    } finally {
      await env.close();
    }
  });
});

describe('pipeline redelivery with the default policy', () => {
  it(
    'a 30-second outage of the handler’s dependency ends with every message processed once, in order, none dead-lettered; the logger reports each rerun',
    async () => {
      const env = await (backends[0] as (typeof backends)[number]).make();
      const { broker, source } = input();
      await send(broker, ['a', 'b', 'c', 'd', 'e']);
      // The dependency goes down at the first call and comes back 30 s later (a restart-length outage).
      let downUntil: number | undefined;
      const dep = dependency(() => Date.now() >= (downUntil ??= Date.now() + 30_000));
      const logged: { obj: Record<string, unknown>; msg: string }[] = [];
      const worker = pipeline(
        options(env, source, {
          logger: { error: (obj, msg) => void logged.push({ obj, msg }) },
          handler: async (m, { tx }) => {
            dep.call();
            await env.write(tx, m.offset);
          },
        }),
      );
      worker.start();
      try {
        await waitUntil(async () => (await env.committed()).length === 5, 120_000, () => `5 messages processed (have ${worker.stats.processed}, ${dep.state.failures} failures)`);
      } finally {
        await worker.stop();
      }
      expect(dep.state.up).toBe(true);
      expect(await env.committed()).toEqual([0, 1, 2, 3, 4]);
      expect(await env.store.deadLetters()).toEqual([]);
      expect(worker.stats).toMatchObject({ processed: 5, deadLettered: 0 });
      const retries = logged.filter((l) => l.obj.err instanceof MessageRetryError);
      // Every failure but the batch run's is a rerun the logger saw, with the consumer named.
      expect(retries).toHaveLength(dep.state.failures - 1);
      expect(retries[0]?.obj).toMatchObject({ consumer: 'redelivery-job' });
      console.log(`30 s outage: ${dep.state.failures} failed runs, ${retries.length} reruns reported, 0 dead letters`);
      await env.close();
    },
    180_000,
  );
});

describe('pipeline redelivery option', () => {
  const base = () => ({
    consumer: 'c',
    source: memorySource(new MemoryStore(), 'in'),
    db: memoryTransactions() as never,
    store: new MemoryOutboxStore(new MemoryStore()) as never,
    handler: async () => undefined,
  });
  const cases: [string, unknown, RegExp][] = [
    ['not an object', 5, /option 'redelivery' must be an object/],
    ['an unknown field', { initialDelay: 5 }, /option 'redelivery' has unknown field initialDelay; the fields are initialDelayMs, maxDelayMs, multiplier, jitter, budgetMs/],
    ['a negative delay', { initialDelayMs: -1 }, /'redelivery.initialDelayMs' must be a finite number of milliseconds, 0 or more, got -1/],
    ['an infinite budget', { budgetMs: Number.POSITIVE_INFINITY }, /'redelivery.budgetMs' must be a finite number/],
    ['a budget that is not a number', { budgetMs: '5m' }, /'redelivery.budgetMs' must be a finite number of milliseconds, 0 or more, got "5m"/],
    ['a multiplier below 1', { multiplier: 0.5 }, /'redelivery.multiplier' must be a finite number of at least 1, got 0.5/],
    ['an unknown jitter', { jitter: 'half' }, /'redelivery.jitter' must be 'full' or 'none', got "half"/],
    ['a cap below the first wait', { initialDelayMs: 1000, maxDelayMs: 10 }, /'redelivery.maxDelayMs' \(10\) is below 'redelivery.initialDelayMs' \(1000\)/],
  ];
  for (const [what, redelivery, message] of cases) {
    it(`refuses ${what} with ConfigError`, () => {
      let caught: unknown;
      try {
        pipeline({ ...base(), redelivery: redelivery as never });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as Error).message).toMatch(message);
    });
  }

  it('takes a partial policy over the defaults', () => {
    expect(() => pipeline({ ...base(), redelivery: { budgetMs: 0 } })).not.toThrow();
    expect(() => pipeline({ ...base(), redelivery: { initialDelayMs: 0, maxDelayMs: 0, jitter: 'none', multiplier: 1, budgetMs: 1000 } })).not.toThrow();
  });
});
