/**
 * Load on real databases: 200 concurrent withTransaction units on 5 hot
 * rows (read, then write the new total) through a pool of 8 connections.
 * Postgres at serializable isolation (pgTransactions and knexTransactions),
 * MariaDB at serializable and repeatable read (knex, mysql2). Every unit
 * commits exactly once (afterCommit hook and committed-units table agree)
 * or fails with a typed error; the totals are the committed units' sums;
 * afterwards no connection is checked out and no session holds a
 * transaction.
 */
import assert from 'node:assert/strict';
import knex from 'knex';
import type { Knex } from 'knex';
import pg from 'pg';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { knexTransactions, pgTransactions } from '../../src/adapters/sql/index.js';
import type { SqlOptions } from '../../src/adapters/sql/index.js';
import { ROWS, UNITS, checkRun, runUnits } from './load-units.js';
import type { Committed } from './load-units.js';
import { service } from '../support/services.js';
import { uniqueName } from '../sql/support/sql-fixtures.js';

const POOL_SIZE = 8;
/** Each test is bounded: 200 units with a 90 s retry deadline each, run at once. */
const TEST_TIMEOUT_MS = 240_000;

interface TarnPool {
  numUsed(): number;
  numPendingAcquires(): number;
  numPendingCreates(): number;
}

function knexConnectionsInUse(db: Knex): number {
  const tarn = db.client.pool as TarnPool;
  return tarn.numUsed() + tarn.numPendingAcquires() + tarn.numPendingCreates();
}

const pgUrl = service('postgres');

describe.skipIf(pgUrl === undefined)('load on postgres (serializable): 200 units on 5 hot rows', () => {
  const url = pgUrl as string; // the suite is skipped without it
  const hot = uniqueName('load_hot');
  const units = uniqueName('load_units');
  let direct: pg.Pool;

  beforeAll(async () => {
    direct = new pg.Pool({ connectionString: url, max: 1 });
  });

  afterAll(async () => {
    await direct.query(`DROP TABLE IF EXISTS ${hot}, ${units}`);
    await direct.end();
  });

  async function reset(): Promise<void> {
    await direct.query(`DROP TABLE IF EXISTS ${hot}, ${units}`);
    await direct.query(`CREATE TABLE ${hot} (id int PRIMARY KEY, total bigint NOT NULL)`);
    await direct.query(`CREATE TABLE ${units} (unit int NOT NULL)`);
    await direct.query(`INSERT INTO ${hot} (id, total) SELECT g, 0 FROM generate_series(0, ${ROWS - 1}) g`);
  }

  async function committed(): Promise<Committed> {
    const totals = await direct.query<{ id: number; total: string }>(`SELECT id, total FROM ${hot} ORDER BY id`);
    const counts = await direct.query<{ unit: number; n: string }>(`SELECT unit, count(*) AS n FROM ${units} GROUP BY unit`);
    return {
      totals: new Map(totals.rows.map((r) => [r.id, Number(r.total)])),
      units: new Map(counts.rows.map((r) => [r.unit, Number(r.n)])),
    };
  }

  /** No session of this run is left in a transaction or running a statement. */
  async function assertServerClean(app: string): Promise<void> {
    const { rows } = await direct.query<{ state: string; n: string }>(
      `SELECT coalesce(state, 'none') AS state, count(*) AS n FROM pg_stat_activity WHERE application_name = $1 GROUP BY 1`,
      [app],
    );
    const states = Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
    assert.equal(states['idle in transaction'] ?? 0, 0, `sessions: ${JSON.stringify(states)}`);
    assert.equal(states['idle in transaction (aborted)'] ?? 0, 0, `sessions: ${JSON.stringify(states)}`);
    assert.equal(states.active ?? 0, 0, `sessions: ${JSON.stringify(states)}`);
  }

  const options: SqlOptions = { isolationLevel: 'serializable' };

  it(
    'pgTransactions: each unit commits once or fails typed, totals match, no client checked out, no session idle in transaction',
    async () => {
      await reset();
      const app = `${hot}_pg`;
      const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE, application_name: app });
      try {
        const ctx = pgTransactions(pool);
        const result = await runUnits(ctx, {
          read: async (tx, row) => Number((await tx.handle.query<{ total: string }>(`SELECT total FROM ${hot} WHERE id = $1`, [row])).rows[0]?.total),
          write: async (tx, row, total) => void (await tx.handle.query(`UPDATE ${hot} SET total = $1 WHERE id = $2`, [total, row])),
          record: async (tx, unit) => void (await tx.handle.query(`INSERT INTO ${units} (unit) VALUES ($1)`, [unit])),
        }, options);
        assert.equal(pool.waitingCount, 0);
        checkRun('postgres pgTransactions', result, await committed(), pool.totalCount - pool.idleCount);
        assert.ok(result.runs > UNITS, 'serialization failures occurred and their units ran again');
        await assertServerClean(app);
        await ctx.close();
      } finally {
        await pool.end();
      }
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'knexTransactions (pg): each unit commits once or fails typed, totals match, no connection in use, no session idle in transaction',
    async () => {
      await reset();
      const app = `${hot}_knex`;
      const db = knex({ client: 'pg', connection: { connectionString: url, application_name: app }, pool: { min: 0, max: POOL_SIZE } });
      try {
        const ctx = knexTransactions(db);
        const result = await runUnits(ctx, {
          read: async (tx, row) => Number(((await tx.handle(hot).where({ id: row }).first('total')) as { total: string }).total),
          write: async (tx, row, total) => void (await tx.handle(hot).where({ id: row }).update({ total })),
          record: async (tx, unit) => void (await tx.handle(units).insert({ unit })),
        }, options);
        checkRun('postgres knexTransactions', result, await committed(), knexConnectionsInUse(db));
        assert.ok(result.runs > UNITS, 'serialization failures occurred and their units ran again');
        await assertServerClean(app);
        await ctx.close();
      } finally {
        await db.destroy();
      }
    },
    TEST_TIMEOUT_MS,
  );
});

const mysqlUrl = service('mysql');

describe.skipIf(mysqlUrl === undefined)('load on mariadb (knex, mysql2): 200 units on 5 hot rows', () => {
  const url = mysqlUrl as string; // the suite is skipped without it
  const hot = uniqueName('load_hot');
  const units = uniqueName('load_units');
  let db: Knex;

  beforeAll(() => {
    db = knex({ client: 'mysql2', connection: url, pool: { min: 0, max: POOL_SIZE } });
  });

  afterAll(async () => {
    await db.schema.dropTableIfExists(hot);
    await db.schema.dropTableIfExists(units);
    await db.destroy();
  });

  async function reset(): Promise<void> {
    await db.schema.dropTableIfExists(hot);
    await db.schema.dropTableIfExists(units);
    await db.schema.createTable(hot, (t) => {
      t.integer('id').primary();
      t.bigInteger('total').notNullable();
    });
    await db.schema.createTable(units, (t) => {
      t.integer('unit').notNullable();
    });
    await db(hot).insert(Array.from({ length: ROWS }, (_, id) => ({ id, total: 0 })));
  }

  async function committed(): Promise<Committed> {
    const totals = (await db(hot).select('id', 'total').orderBy('id')) as { id: number; total: string | number }[];
    const counts = (await db(units).select('unit').count({ n: '*' }).groupBy('unit')) as { unit: number; n: string | number }[];
    return {
      totals: new Map(totals.map((r) => [r.id, Number(r.total)])),
      units: new Map(counts.map((r) => [r.unit, Number(r.n)])),
    };
  }

  /** None of the server threads the units ran on holds an InnoDB transaction or runs a statement. */
  async function assertServerClean(threads: ReadonlySet<number>): Promise<void> {
    assert.ok(threads.size > 0);
    const ids = [...threads];
    const [trx] = (await db.raw(`SELECT count(*) AS n FROM information_schema.innodb_trx WHERE trx_mysql_thread_id IN (${ids.map(() => '?').join(',')})`, ids)) as [
      { n: number }[],
    ];
    assert.equal(Number(trx[0]?.n), 0, 'no open InnoDB transaction on the threads of the run');
    const [busy] = (await db.raw(`SELECT count(*) AS n FROM information_schema.processlist WHERE id IN (${ids.map(() => '?').join(',')}) AND id <> CONNECTION_ID() AND command <> 'Sleep'`, ids)) as [
      { n: number }[],
    ];
    assert.equal(Number(busy[0]?.n), 0, 'no statement left running on the threads of the run');
  }

  for (const [isolationLevel, read] of [
    // Serializable: InnoDB turns the plain SELECT into a shared-lock read; two units upgrading deadlock (1213, transient).
    ['serializable', 'SELECT total FROM ?? WHERE id = ?'],
    // Repeatable read: a plain SELECT would read a stale snapshot and lose updates, so the unit locks the row it will write.
    ['repeatable read', 'SELECT total FROM ?? WHERE id = ? FOR UPDATE'],
  ] as const) {
    it(
      `${isolationLevel}: each unit commits once or fails typed, totals match, no connection in use, no open transaction`,
      async () => {
        await reset();
        const threads = new Set<number>();
        const ctx = knexTransactions(db);
        const result = await runUnits(ctx, {
          read: async (tx, row) => {
            const [rows] = (await tx.handle.raw(`${read}; `.trim().replace(/;$/, ''), [hot, row])) as [{ total: string | number }[]];
            return Number(rows[0]?.total);
          },
          write: async (tx, row, total) => void (await tx.handle(hot).where({ id: row }).update({ total })),
          record: async (tx, unit) => {
            await tx.handle(units).insert({ unit });
            const [rows] = (await tx.handle.raw('SELECT CONNECTION_ID() AS id')) as [{ id: number }[]];
            threads.add(Number(rows[0]?.id));
          },
        }, { isolationLevel });
        checkRun(`mariadb ${isolationLevel}`, result, await committed(), knexConnectionsInUse(db));
        // Serializable: shared-lock reads upgraded by two units deadlock, and the victim runs again.
        if (isolationLevel === 'serializable') assert.ok(result.runs > UNITS, 'deadlocks occurred and their units ran again');
        await assertServerClean(threads);
        await ctx.close();
      },
      TEST_TIMEOUT_MS,
    );
  }
});
