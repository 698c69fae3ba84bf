/**
 * Real transient failures from real databases, provoked by lining two
 * transactions up with barriers: txkit classifies them, aborts the loser,
 * reruns its unit, and both units end committed exactly once.
 */
import assert from 'node:assert/strict';
import knex from 'knex';
import type { Knex } from 'knex';
import pg from 'pg';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { classifySqlError, knexTransactions, pgTransactions } from '../../src/adapters/sql/index.js';
import type { Transaction } from '../../src/index.js';
import { service } from '../support/services.js';
import { barrier, sqliteDir, uniqueName } from './support/sql-fixtures.js';

const FAST = { initialDelayMs: 1, maxDelayMs: 20 } as const;

/** What a unit left behind: how often it ran and why its failed attempts aborted. */
interface UnitLog {
  runs: number;
  abortReasons: unknown[];
}

function track<H>(log: UnitLog, tx: Transaction<H>): void {
  log.runs += 1;
  tx.afterAbort((reason) => void log.abortReasons.push(reason));
}

const codeOf = (err: unknown): unknown => (err as { code?: unknown }).code;
const errnoOf = (err: unknown): unknown => (err as { errno?: unknown }).errno;

const pgUrl = service('postgres');

describe.skipIf(pgUrl === undefined)('postgres: real serialization failures and deadlocks', () => {
  const url = pgUrl as string; // the suite is skipped without it
  const table = uniqueName('conflict_pg');
  let pool: pg.Pool;
  let db: Knex;

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: url, max: 6 });
    db = knex({ client: 'pg', connection: url, pool: { min: 0, max: 6 } });
    await pool.query(`CREATE TABLE ${table} (id int PRIMARY KEY, n int NOT NULL)`);
    await pool.query(`CREATE TABLE ${table}_log (unit text NOT NULL)`);
  });

  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}, ${table}_log`);
    await pool.end();
    await db.destroy();
  });

  async function reset(): Promise<void> {
    await pool.query(`TRUNCATE ${table}, ${table}_log`);
    await pool.query(`INSERT INTO ${table} (id, n) VALUES (1, 0), (2, 0)`);
  }

  async function committedPerUnit(): Promise<Record<string, number>> {
    const { rows } = await pool.query<{ unit: string; c: string }>(`SELECT unit, count(*) AS c FROM ${table}_log GROUP BY unit`);
    return Object.fromEntries(rows.map((r) => [r.unit, Number(r.c)]));
  }

  it('pg: two serializable read-modify-write units on one row: the 40001 loser reruns, no update is lost', async () => {
    await reset();
    const ctx = pgTransactions(pool, { isolationLevel: 'serializable' });
    const bothRead = barrier(2);
    const logs = { a: { runs: 0, abortReasons: [] }, b: { runs: 0, abortReasons: [] } } as Record<'a' | 'b', UnitLog>;
    const unit = (name: 'a' | 'b') =>
      ctx.withTransaction(
        async (tx) => {
          track(logs[name], tx);
          const { rows } = await tx.handle.query<{ n: number }>(`SELECT n FROM ${table} WHERE id = 1`);
          if (tx.attempt === 1) await bothRead.arrive();
          await tx.handle.query(`UPDATE ${table} SET n = $1 WHERE id = 1`, [(rows[0]?.n ?? 0) + 1]);
          await tx.handle.query(`INSERT INTO ${table}_log (unit) VALUES ($1)`, [name]);
          return tx.attempt;
        },
        { retry: FAST },
      );
    const attempts = await Promise.all([unit('a'), unit('b')]);
    const { rows } = await pool.query<{ n: number }>(`SELECT n FROM ${table} WHERE id = 1`);
    assert.equal(rows[0]?.n, 2, 'both increments applied');
    assert.deepEqual(await committedPerUnit(), { a: 1, b: 1 });
    const reasons = [...logs.a.abortReasons, ...logs.b.abortReasons];
    assert.ok(reasons.length >= 1, 'one unit lost the conflict');
    for (const r of reasons) {
      assert.equal(codeOf(r), '40001', `aborted for ${String(r)}`);
      assert.equal(classifySqlError(r), 'transient');
    }
    assert.equal(Math.max(...attempts), 1 + reasons.length, 'the loser committed on the attempt after its failures');
    await ctx.close();
  });

  it('knex pg: the same conflict through knex.transaction is retried the same way', async () => {
    await reset();
    const ctx = knexTransactions(db, { isolationLevel: 'serializable' });
    const bothRead = barrier(2);
    const logs = { a: { runs: 0, abortReasons: [] }, b: { runs: 0, abortReasons: [] } } as Record<'a' | 'b', UnitLog>;
    const unit = (name: 'a' | 'b') =>
      ctx.withTransaction(
        async (tx) => {
          track(logs[name], tx);
          const row = (await tx.handle(table).where({ id: 1 }).first()) as { n: number };
          if (tx.attempt === 1) await bothRead.arrive();
          await tx.handle(table).where({ id: 1 }).update({ n: row.n + 1 });
          await tx.handle(`${table}_log`).insert({ unit: name });
        },
        { retry: FAST },
      );
    await Promise.all([unit('a'), unit('b')]);
    const { rows } = await pool.query<{ n: number }>(`SELECT n FROM ${table} WHERE id = 1`);
    assert.equal(rows[0]?.n, 2);
    assert.deepEqual(await committedPerUnit(), { a: 1, b: 1 });
    const reasons = [...logs.a.abortReasons, ...logs.b.abortReasons];
    assert.ok(reasons.length >= 1);
    for (const r of reasons) assert.equal(codeOf(r), '40001');
    await ctx.close();
  });

  it('pg: a lock-order inversion is a real deadlock (40P01): the victim reruns, both commit once', async () => {
    await reset();
    const ctx = pgTransactions(pool);
    const bothLocked = barrier(2);
    const logs = { a: { runs: 0, abortReasons: [] }, b: { runs: 0, abortReasons: [] } } as Record<'a' | 'b', UnitLog>;
    const unit = (name: 'a' | 'b', first: number, second: number) =>
      ctx.withTransaction(
        async (tx) => {
          track(logs[name], tx);
          await tx.handle.query(`UPDATE ${table} SET n = n + 1 WHERE id = $1`, [first]);
          if (tx.attempt === 1) await bothLocked.arrive();
          await tx.handle.query(`UPDATE ${table} SET n = n + 1 WHERE id = $1`, [second]);
          await tx.handle.query(`INSERT INTO ${table}_log (unit) VALUES ($1)`, [name]);
        },
        { retry: FAST },
      );
    await Promise.all([unit('a', 1, 2), unit('b', 2, 1)]);
    const { rows } = await pool.query<{ id: number; n: number }>(`SELECT id, n FROM ${table} ORDER BY id`);
    assert.deepEqual(rows, [
      { id: 1, n: 2 },
      { id: 2, n: 2 },
    ]);
    assert.deepEqual(await committedPerUnit(), { a: 1, b: 1 });
    const reasons = [...logs.a.abortReasons, ...logs.b.abortReasons];
    assert.equal(reasons.length, 1, 'exactly one victim');
    assert.equal(codeOf(reasons[0]), '40P01');
    await ctx.close();
  });
});

const mysqlUrl = service('mysql');

describe.skipIf(mysqlUrl === undefined)('mariadb: real deadlocks and lock wait timeouts', () => {
  const url = mysqlUrl as string; // the suite is skipped without it
  const table = uniqueName('conflict_my');
  let db: Knex;

  beforeAll(async () => {
    db = knex({ client: 'mysql2', connection: url, pool: { min: 0, max: 6 } });
    await db.schema.createTable(table, (t) => {
      t.integer('id').primary();
      t.integer('n').notNullable();
    });
    await db.schema.createTable(`${table}_log`, (t) => {
      t.string('unit', 16).notNullable();
    });
  });

  afterAll(async () => {
    await db.schema.dropTableIfExists(table);
    await db.schema.dropTableIfExists(`${table}_log`);
    await db.destroy();
  });

  async function reset(): Promise<void> {
    await db(table).del();
    await db(`${table}_log`).del();
    await db(table).insert([
      { id: 1, n: 0 },
      { id: 2, n: 0 },
    ]);
  }

  it('a lock-order inversion deadlocks (1213): the victim reruns and both units commit exactly once', async () => {
    await reset();
    const ctx = knexTransactions(db);
    const bothLocked = barrier(2);
    const logs = { a: { runs: 0, abortReasons: [] }, b: { runs: 0, abortReasons: [] } } as Record<'a' | 'b', UnitLog>;
    const unit = (name: 'a' | 'b', first: number, second: number) =>
      ctx.withTransaction(
        async (tx) => {
          track(logs[name], tx);
          await tx.handle(table).where({ id: first }).increment('n', 1);
          if (tx.attempt === 1) await bothLocked.arrive();
          await tx.handle(table).where({ id: second }).increment('n', 1);
          await tx.handle(`${table}_log`).insert({ unit: name });
        },
        { retry: FAST },
      );
    await Promise.all([unit('a', 1, 2), unit('b', 2, 1)]);
    assert.deepEqual(await db(table).select('id', 'n').orderBy('id'), [
      { id: 1, n: 2 },
      { id: 2, n: 2 },
    ]);
    const perUnit = (await db(`${table}_log`).select('unit').count({ c: '*' }).groupBy('unit').orderBy('unit')) as {
      unit: string;
      c: number | string;
    }[];
    assert.deepEqual(
      perUnit.map((r) => [r.unit, Number(r.c)]),
      [
        ['a', 1],
        ['b', 1],
      ],
    );
    const reasons = [...logs.a.abortReasons, ...logs.b.abortReasons];
    assert.equal(reasons.length, 1, 'exactly one victim');
    assert.equal(errnoOf(reasons[0]), 1213);
    assert.equal(classifySqlError(reasons[0]), 'transient');
    await ctx.close();
  });

  it('a lock wait timeout (1205) reruns the unit, which commits once the lock is free', async () => {
    await reset();
    // A connection whose lock waits give up after one second, so the timeout comes quickly.
    const impatient = knex({
      client: 'mysql2',
      connection: url,
      pool: {
        min: 0,
        max: 1,
        afterCreate: (conn: { query(sql: string, cb: (err: Error | null) => void): void }, done: (err: Error | null, c: unknown) => void) =>
          conn.query('SET SESSION innodb_lock_wait_timeout = 1', (err) => done(err, conn)),
      },
    });
    try {
      const holderCtx = knexTransactions(db);
      const ctx = knexTransactions(impatient);
      const log: UnitLog = { runs: 0, abortReasons: [] };
      const locked = barrier(2);
      const released = barrier(2);
      const holder = holderCtx.withTransaction(async (tx) => {
        await tx.handle(table).where({ id: 1 }).increment('n', 10);
        await locked.arrive();
        // Keeps the row lock until the other unit has failed on it once.
        await released.arrive();
      });
      const waiter = ctx.withTransaction(
        async (tx) => {
          track(log, tx);
          if (tx.attempt === 1) {
            await locked.arrive();
            tx.afterAbort(() => void released.arrive());
          }
          await tx.handle(table).where({ id: 1 }).increment('n', 1);
        },
        { retry: FAST },
      );
      await Promise.all([holder, waiter]);
      assert.equal(((await db(table).where({ id: 1 }).first()) as { n: number }).n, 11);
      assert.equal(errnoOf(log.abortReasons[0]), 1205);
      assert.equal(log.runs, 1 + log.abortReasons.length);
      await ctx.close();
      await holderCtx.close();
    } finally {
      await impatient.destroy();
    }
  });
});

describe('sqlite: real SQLITE_BUSY', () => {
  const files = sqliteDir();
  afterAll(() => files.remove());

  /** A knex on `filename` whose busy handler never waits: better-sqlite3 would block the event loop while it did. */
  function open(filename: string): Knex {
    return knex({
      client: 'better-sqlite3',
      connection: { filename },
      useNullAsDefault: true,
      pool: {
        afterCreate: (conn: { pragma(sql: string): unknown }, done: (err: Error | null, c: unknown) => void) => {
          conn.pragma('busy_timeout = 0');
          done(null, conn);
        },
      },
    });
  }

  it('two writers on one WAL database: the SQLITE_BUSY loser reruns, both increments land once', async () => {
    const filename = files.file('busy.db');
    const one = open(filename);
    const two = open(filename);
    try {
      await one.raw('PRAGMA journal_mode = WAL');
      await one.schema.createTable('counter', (t) => {
        t.integer('id').primary();
        t.integer('n').notNullable();
      });
      await one.schema.createTable('log', (t) => t.text('unit').notNullable());
      await one('counter').insert({ id: 1, n: 0 });
      const bothRead = barrier(2);
      const logs = { a: { runs: 0, abortReasons: [] }, b: { runs: 0, abortReasons: [] } } as Record<'a' | 'b', UnitLog>;
      const unit = (name: 'a' | 'b', db: Knex) =>
        knexTransactions(db).withTransaction(
          async (tx) => {
            track(logs[name], tx);
            const row = (await tx.handle('counter').where({ id: 1 }).first()) as { n: number };
            if (tx.attempt === 1) await bothRead.arrive();
            await tx.handle('counter').where({ id: 1 }).update({ n: row.n + 1 });
            await tx.handle('log').insert({ unit: name });
          },
          { retry: FAST },
        );
      await Promise.all([unit('a', one), unit('b', two)]);
      assert.equal(((await one('counter').where({ id: 1 }).first()) as { n: number }).n, 2);
      const perUnit = (await one('log').select('unit').count({ c: '*' }).groupBy('unit').orderBy('unit')) as {
        unit: string;
        c: number | string;
      }[];
      assert.deepEqual(
        perUnit.map((r) => [r.unit, Number(r.c)]),
        [
          ['a', 1],
          ['b', 1],
        ],
      );
      const reasons = [...logs.a.abortReasons, ...logs.b.abortReasons];
      assert.ok(reasons.length >= 1, 'one writer got SQLITE_BUSY');
      for (const r of reasons) {
        assert.match(String(codeOf(r)), /^SQLITE_BUSY/);
        assert.equal(classifySqlError(r), 'transient');
      }
    } finally {
      await one.destroy();
      await two.destroy();
    }
  });

  it('COMMIT refused with SQLITE_BUSY (a reader holds its lock) leaves no transaction open: the rerun commits', async () => {
    // Rollback-journal mode: COMMIT needs every reader gone. SQLite keeps the
    // transaction open after that SQLITE_BUSY; if it stayed open on the pooled
    // connection, the rerun's BEGIN would fail with "cannot start a transaction within a transaction".
    const filename = files.file('commit-busy.db');
    const writerDb = open(filename);
    const readerDb = open(filename);
    try {
      await writerDb.schema.createTable('kv', (t) => {
        t.text('k').primary();
        t.text('v').notNullable();
      });
      await writerDb('kv').insert({ k: 'x', v: 'old' });
      const reader = await knexTransactions(readerDb).begin();
      assert.equal(((await reader.handle('kv').where({ k: 'x' }).first()) as { v: string }).v, 'old');
      const log: UnitLog = { runs: 0, abortReasons: [] };
      await knexTransactions(writerDb).withTransaction(
        async (tx) => {
          track(log, tx);
          // The reader lets go once the first COMMIT has been refused.
          if (tx.attempt === 1) tx.afterAbort(() => reader.commit());
          await tx.handle('kv').where({ k: 'x' }).update({ v: `new ${tx.attempt}` });
        },
        { retry: FAST },
      );
      assert.equal(log.runs, 2);
      assert.equal(codeOf(log.abortReasons[0]), 'SQLITE_BUSY');
      assert.equal(((await writerDb('kv').where({ k: 'x' }).first()) as { v: string }).v, 'new 2');
    } finally {
      await writerDb.destroy();
      await readerDb.destroy();
    }
  });
});
