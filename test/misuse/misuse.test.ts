/**
 * The SDK used as careless code uses it: a callback that commits itself and
 * then throws, a forgotten `await`, a timer or hook that runs after its unit
 * ended, a joining scope that asks for other options. Each rule holds on
 * every backend the core serves: memory, SQLite (knex) and Postgres (knex and pg).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryDriver, MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import { knexTransactions, pgTransactions } from '../../src/adapters/sql/index.js';
import {
  ConfigError,
  TransactionAbortedError,
  TransactionPropagationError,
  TransactionTimeoutError,
  createTransactionContext,
  TransactionStateError,
  TransientTransactionError,
} from '../../src/core/index.js';
import type { Transaction, TransactionContext } from '../../src/core/index.js';
import { MemoryOutboxStore, Outbox, sqlOutboxStore } from '../../src/outbox/index.js';
import { service } from '../support/services.js';
import { waitUntil } from '../support/wait-until.js';

const FAST = { initialDelayMs: 1, maxDelayMs: 2 } as const;

/** One backend as the misuse cases see it: a context, a counter, and an outbox where it has one. */
interface Subject {
  readonly name: string;
  readonly ctx: TransactionContext<unknown, object>;
  increment(tx: Transaction<unknown>, key: string): Promise<void>;
  read(key: string): Promise<number>;
  /** Outbox records published for `key`, read outside any transaction. */
  outboxCount?(key: string): Promise<number>;
  readonly outbox?: Outbox<unknown>;
  /** The work is still pending when the callback returns (real I/O), so a forgotten await is refused every time. */
  readonly slowIo: boolean;
  /** Clients checked out of the pool, where the backend pools them. */
  checkedOut?(): number;
}

let seq = 0;
const uniq = (label: string): string => `${label}-${process.pid}-${Date.now().toString(36)}-${seq++}`;

function memorySubject(): Subject {
  const store = new MemoryStore();
  const ctx = memoryTransactions({ store, retry: FAST });
  const outboxStore = new MemoryOutboxStore(store, { partitions: 1 });
  type H = Parameters<Parameters<typeof ctx.withTransaction>[0]>[0]['handle'];
  return {
    name: 'memory',
    ctx: ctx as unknown as TransactionContext<unknown, object>,
    slowIo: false,
    increment: async (tx, key) => {
      const h = tx.handle as H;
      await h.set(key, (((await h.get(key)) as number | undefined) ?? 0) + 1);
    },
    read: async (key) => (store.get(key) as number | undefined) ?? 0,
    outbox: new Outbox(outboxStore) as Outbox<unknown>,
    outboxCount: async (key) => (await outboxStore.read(0, 0, 100_000)).filter((r) => r.key === key).length,
  };
}

function knexSubject(name: string, db: Knex, table: string, outboxPrefix: string): Subject {
  const ctx = knexTransactions(db, { retry: FAST });
  const outboxStore = sqlOutboxStore(db, { tablePrefix: outboxPrefix, partitions: 1 });
  return {
    name,
    ctx: ctx as unknown as TransactionContext<unknown, object>,
    slowIo: name.startsWith('postgres'),
    increment: async (tx, key) => {
      await (tx.handle as Knex.Transaction).raw(`insert into ${table} (k, n) values (?, 1) on conflict (k) do update set n = ${table}.n + 1`, [key]);
    },
    read: async (key) => Number((await db(table).where({ k: key }).first())?.n ?? 0),
    outbox: new Outbox(outboxStore) as Outbox<unknown>,
    outboxCount: async (key) => (await outboxStore.read(0, 0, 100_000)).filter((r) => r.key === key).length,
    checkedOut: () => {
      const pool = (db.client as { pool?: { numUsed(): number } }).pool;
      return pool?.numUsed() ?? 0;
    },
  };
}

function pgSubject(pool: pg.Pool, table: string): Subject {
  const ctx = pgTransactions(pool, { retry: FAST });
  return {
    name: 'postgres (pg)',
    ctx: ctx as unknown as TransactionContext<unknown, object>,
    slowIo: true,
    increment: async (tx, key) => {
      await (tx.handle as pg.PoolClient).query(`insert into ${table} (k, n) values ($1, 1) on conflict (k) do update set n = ${table}.n + 1`, [key]);
    },
    read: async (key) => Number((await pool.query(`select n from ${table} where k = $1`, [key])).rows[0]?.n ?? 0),
    checkedOut: () => pool.totalCount - pool.idleCount,
  };
}

const subjects: Subject[] = [];
const closers: (() => Promise<void>)[] = [];
const table = `misuse_${process.pid}`;
const outboxPrefix = `misuse_${process.pid}_`;

beforeAll(async () => {
  subjects.push(memorySubject());
  const dir = mkdtempSync(join(tmpdir(), 'txkit-misuse-'));
  const sqlite = knexFactory({ client: 'better-sqlite3', connection: { filename: join(dir, 'misuse.db') }, useNullAsDefault: true });
  closers.push(async () => {
    await sqlite.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  await sqlite.schema.createTable(table, (t) => {
    t.string('k').primary();
    t.integer('n').notNullable();
  });
  const sqliteSubject = knexSubject('sqlite (knex)', sqlite, table, outboxPrefix);
  await sqlOutboxStore(sqlite, { tablePrefix: outboxPrefix, partitions: 1 }).migrate();
  subjects.push(sqliteSubject);

  const url = service('postgres');
  if (url !== undefined) {
    const pgKnex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 4 } });
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    closers.push(async () => {
      await pgKnex.schema.dropTableIfExists(table);
      for (const t of sqlOutboxStore(pgKnex, { tablePrefix: outboxPrefix }).tableNames) {
        await pgKnex.schema.dropTableIfExists(t).catch(() => undefined);
      }
      await pgKnex.destroy();
      await pool.end();
    });
    await pgKnex.schema.dropTableIfExists(table);
    await pgKnex.schema.createTable(table, (t) => {
      t.string('k').primary();
      t.integer('n').notNullable();
    });
    await sqlOutboxStore(pgKnex, { tablePrefix: outboxPrefix, partitions: 1 }).migrate();
    subjects.push(knexSubject('postgres (knex)', pgKnex, table, outboxPrefix));
    subjects.push(pgSubject(pool, table));
  }
}, 60_000);

afterAll(async () => {
  for (const s of subjects) await s.ctx.close();
  for (const close of closers) await close();
});

/** Lets real I/O and timers run: the continuation comes after every pending microtask. */
const nextMacrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const names = ['memory', 'sqlite (knex)', 'postgres (knex)', 'postgres (pg)'];
const subject = (name: string): Subject | undefined => subjects.find((s) => s.name === name);

describe.each(names)('misuse on %s', (name) => {
  const withSubject = (title: string, body: (s: Subject) => Promise<void>): void => {
    it(title, async (ctx) => {
      const s = subject(name);
      if (s === undefined) {
        ctx.skip();
        return;
      }
      await body(s);
      if (s.checkedOut !== undefined) expect(s.checkedOut(), 'no connection left checked out').toBe(0);
    });
  };

  withSubject('a callback that commits, then throws a transient error, is not rerun: the error reaches the caller and the commit stands', async (s) => {
    const key = uniq('commit-then-throw');
    let runs = 0;
    const thrown = new TransientTransactionError('a later call failed after the commit');
    const err = await s.ctx
      .withTransaction(async (tx) => {
        runs += 1;
        await s.increment(tx, key);
        await tx.commit();
        throw thrown;
      })
      .catch((e: unknown) => e);
    expect(err).toBe(thrown);
    expect(runs).toBe(1);
    expect(await s.read(key)).toBe(1);
  });

  withSubject('a callback that commits, then throws any error, returns that error once; one that aborts and throws a transient error is rerun', async (s) => {
    const key = uniq('commit-then-fatal');
    let runs = 0;
    await expect(
      s.ctx.withTransaction(async (tx) => {
        runs += 1;
        await s.increment(tx, key);
        await tx.commit();
        throw new Error('fatal after commit');
      }),
    ).rejects.toThrow('fatal after commit');
    expect(runs).toBe(1);
    expect(await s.read(key)).toBe(1);

    const aborted = uniq('abort-then-transient');
    let attempts = 0;
    await s.ctx.withTransaction(async (tx) => {
      attempts += 1;
      await s.increment(tx, aborted);
      if (attempts === 1) {
        await tx.abort();
        throw new TransientTransactionError('conflict');
      }
    });
    expect(attempts).toBe(2);
    expect(await s.read(aborted)).toBe(1);
  });

  withSubject('an un-awaited nested withTransaction stops the commit with PENDING_WORK ("did you forget await?") and nothing commits', async (s) => {
    const key = uniq('floating-nested');
    let floating: Promise<unknown> | undefined;
    const err = await s.ctx
      .withTransaction(async (tx) => {
        await s.increment(tx, key);
        floating = s.ctx.withTransaction(async (inner) => {
          await nextMacrotask();
          await s.increment(inner, key);
        });
        // Not awaited; the handler only keeps its later failure from being an unhandled rejection here.
        floating.catch(() => undefined);
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransactionStateError);
    expect((err as TransactionStateError).code).toBe('PENDING_WORK');
    expect((err as Error).message).toMatch(/did you forget await\?/);
    // The forgotten call fails on its own once it touches the rolled-back transaction.
    await floating?.catch(() => undefined);
    expect(await s.read(key)).toBe(0);
  });

  withSubject('an un-awaited outbox.publish never lets the business row commit without its record', async (s) => {
    if (s.outbox === undefined || s.outboxCount === undefined) return;
    const outbox = s.outbox;
    const key = uniq('floating-publish');
    let floating: Promise<unknown> | undefined;
    const outcome = await s.ctx
      .withTransaction(async (tx) => {
        await s.increment(tx, key);
        floating = outbox.publish(tx, { topic: 'misuse', key, value: 'v' });
        floating.catch(() => undefined);
      })
      .then(
        () => 'committed',
        (e: unknown) => e,
      );
    await floating?.catch(() => undefined);
    const rows = await s.read(key);
    const records = await s.outboxCount(key);
    if (outcome === 'committed') {
      // The publish happened to finish before the commit (no real I/O): both are there.
      expect(s.slowIo).toBe(false);
      expect([rows, records]).toEqual([1, 1]);
    } else {
      expect((outcome as TransactionStateError).code).toBe('PENDING_WORK');
      expect([rows, records]).toEqual([0, 0]);
    }
  });

  withSubject('a timer started in a unit that runs after the unit ended starts a new transaction instead of joining the dead one', async (s) => {
    const key = uniq('late-timer');
    let fire: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (fire = resolve));
    let later: Promise<{ id: string; ambientBefore: unknown }> | undefined;
    const firstId = await s.ctx.withTransaction(async (tx) => {
      await s.increment(tx, key);
      // Runs in this unit's async context, but only once the unit has ended.
      later = gate.then(() => {
        const ambientBefore = s.ctx.current();
        return s.ctx.withTransaction(async (tx2) => {
          await s.increment(tx2, key);
          return { id: tx2.id, ambientBefore };
        });
      });
      return tx.id;
    });
    fire();
    const result = await later;
    expect(result?.ambientBefore).toBeUndefined();
    expect(result?.id).not.toBe(firstId);
    expect(await s.read(key)).toBe(2);
    // 'mandatory' finds no transaction there either.
    let fireMandatory: () => void = () => undefined;
    const gate2 = new Promise<void>((resolve) => (fireMandatory = resolve));
    let mandatory: Promise<unknown> | undefined;
    await s.ctx.withTransaction(async () => {
      mandatory = gate2.then(() => s.ctx.withTransaction(async () => undefined, { propagation: 'mandatory' }));
    });
    fireMandatory();
    await expect(mandatory).rejects.toBeInstanceOf(TransactionPropagationError);
  });

  withSubject('an afterCommit hook that opens a transaction gets a new one, also when the callback committed explicitly', async (s) => {
    for (const explicit of [false, true]) {
      const key = uniq(`hook-${explicit}`);
      const followUp = uniq(`hook-follow-up-${explicit}`);
      let hook: Promise<unknown> | undefined;
      await s.ctx.withTransaction(async (tx) => {
        await s.increment(tx, key);
        tx.afterCommit(() => (hook = s.ctx.withTransaction((tx2) => s.increment(tx2, followUp))));
        if (explicit) await tx.commit();
      });
      await hook;
      expect([await s.read(key), await s.read(followUp)]).toEqual([1, 1]);
    }
  });

  withSubject('a joining scope has its options checked: bad retry and timeout values are refused', async (s) => {
    await expect(
      s.ctx.withTransaction(() => s.ctx.withTransaction(async () => undefined, { retry: { deadlineMs: -1 } } as never)),
    ).rejects.toBeInstanceOf(ConfigError);
    await expect(
      s.ctx.withTransaction(() => s.ctx.withTransaction(async () => undefined, { timeoutMs: 0 } as never)),
    ).rejects.toBeInstanceOf(ConfigError);
  });
});

describe('misuse: options of joining scopes', () => {
  it('kafka and memory contexts refuse an option their transactions do not have, per call and in defaults', async () => {
    const { kafkaTransactions } = await import('../../src/adapters/kafka/index.js');
    const kafka = { producer: () => ({}) } as never;
    expect(() => kafkaTransactions(kafka, { transactionalId: 'misuse-options', defaults: { isolationLevel: 'serializable' } as never })).toThrow(
      /unknown option 'isolationLevel' in the defaults of a kafka transaction/,
    );
    expect(() => memoryTransactions({ retries: 3 } as never)).toThrow(/unknown option 'retries' in the options of a memory transaction context/);
    expect(() => memoryTransactions({ timeoutMs: 5 } as never)).toThrow(/give it as \{ defaults: \{ timeoutMs \} \}/);
  });

  it('memory: a misspelt key in a joining scope is refused', async () => {
    const ctx = memoryTransactions();
    await expect(ctx.withTransaction(() => ctx.withTransaction(async () => undefined, { isolation: 'serializable' } as never))).rejects.toThrow(
      /unknown option 'isolation'/,
    );
  });

  it('postgres: a joining scope that asks for another isolation level or readOnly is refused; the same level joins', async (t) => {
    const pgSubjectOf = subject('postgres (knex)');
    if (pgSubjectOf === undefined) {
      t.skip();
      return;
    }
    const ctx = pgSubjectOf.ctx as TransactionContext<unknown, { isolationLevel?: string; readOnly?: boolean }>;
    const outer = { isolationLevel: 'serializable' } as const;
    await expect(
      ctx.withTransaction(() => ctx.withTransaction(async () => undefined, { isolationLevel: 'read committed' }), outer),
    ).rejects.toThrow(TransactionPropagationError);
    await expect(ctx.withTransaction(() => ctx.withTransaction(async () => undefined, { readOnly: true }), outer)).rejects.toThrow(
      /readOnly=true.*use propagation 'requires_new'/,
    );
    await expect(ctx.withTransaction(() => ctx.withTransaction(async () => 'joined', { isolationLevel: 'serializable' }), outer)).resolves.toBe(
      'joined',
    );
  });
});

describe('misuse: a begin that does not answer', () => {
  /** A memory driver whose begin waits until released, as one stuck on a pool, a session or a coordinator. */
  function stuckBegin(): { ctx: TransactionContext<unknown, object>; release: () => void; rolledBack: () => number } {
    const base = new MemoryDriver(new MemoryStore());
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let rolledBack = 0;
    const ctx = createTransactionContext({
      backend: 'memory',
      begin: async () => {
        await gate;
        const dtx = await base.begin();
        return {
          handle: dtx.handle,
          commit: () => dtx.commit(),
          rollback: async () => {
            rolledBack += 1;
            await dtx.rollback();
          },
        };
      },
      classify: (err) => base.classify(err),
      close: () => base.close(),
    });
    return { ctx: ctx as unknown as TransactionContext<unknown, object>, release, rolledBack: () => rolledBack };
  }

  it('timeoutMs bounds the wait to begin on any backend (TX_TIMEOUT); the transaction that opens late is rolled back', async () => {
    const { ctx, release, rolledBack } = stuckBegin();
    let ran = false;
    const err = await ctx
      .withTransaction(
        async () => {
          ran = true;
        },
        { timeoutMs: 50 },
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransactionTimeoutError);
    expect((err as TransactionTimeoutError).code).toBe('TX_TIMEOUT');
    expect((err as Error).message).toMatch(/before it began/);
    expect(ran).toBe(false);
    release();
    await waitUntil(() => rolledBack() === 1, 5_000, 'the late transaction rolled back');
  });

  it("the caller's signal ends a begin that does not answer, on any backend", async () => {
    const { ctx, release, rolledBack } = stuckBegin();
    const controller = new AbortController();
    const pending = ctx.withTransaction(async () => undefined, { signal: controller.signal }).catch((e: unknown) => e);
    controller.abort(new Error('request cancelled'));
    const err = await pending;
    expect(err).toBeInstanceOf(TransactionAbortedError);
    expect((err as Error).cause).toEqual(new Error('request cancelled'));
    release();
    await waitUntil(() => rolledBack() === 1, 5_000, 'the late transaction rolled back');
  });
});
