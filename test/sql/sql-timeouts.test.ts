/**
 * timeoutMs and the caller's AbortSignal cancel the statement that is
 * running on the server (not only the JavaScript promise), roll back, and
 * give the connection back, usable at once.
 */
import assert from 'node:assert/strict';
import knex from 'knex';
import type { Knex } from 'knex';
import pg from 'pg';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { knexTransactions, pgTransactions } from '../../src/adapters/sql/index.js';
import { TransactionAbortedError, TransactionTimeoutError } from '../../src/index.js';
import type { TransactionContext } from '../../src/index.js';
import { rejection } from '../../src/testing/index.js';
import { service } from '../support/services.js';
import { deferred, uniqueName, waitFor } from './support/sql-fixtures.js';

const codeOf = (err: unknown): unknown => (err as { code?: unknown }).code;
const errnoOf = (err: unknown): unknown => (err as { errno?: unknown }).errno;
// Long enough that only a cancel can end it within the test's time limit.
const FOREVER_S = 60;
// Generous: the statement must have reached the server before the timeout fires.
const TIMEOUT_MS = 500;

/**
 * Starts a unit whose statement only a server-side cancel can end. Returns the
 * unit's promise and a promise of the statement's own outcome (its error).
 */
function longStatement<H>(
  ctx: TransactionContext<H, object>,
  run: (handle: H) => PromiseLike<unknown>,
  options: { timeoutMs?: number; signal?: AbortSignal },
): { unit: Promise<unknown>; statement: Promise<unknown> } {
  const statement = deferred<unknown>();
  const unit = ctx.withTransaction(async (tx) => {
    const running = Promise.resolve(run(tx.handle));
    statement.resolve(running.catch((e: unknown) => e));
    await running;
  }, options);
  return { unit, statement: statement.promise };
}

const pgUrl = service('postgres');

describe.skipIf(pgUrl === undefined)('postgres: timeouts cancel the running statement', () => {
  const url = pgUrl as string; // the suite is skipped without it
  const app = uniqueName('timeout_pg');
  let direct: pg.Pool;

  beforeAll(() => {
    direct = new pg.Pool({ connectionString: url, max: 1 });
  });
  afterAll(() => direct.end());

  async function sessions(state: string): Promise<number> {
    const { rows } = await direct.query<{ n: string }>(
      'SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1 AND state = $2',
      [app, state],
    );
    return Number(rows[0]?.n);
  }

  it('pg: timeoutMs cancels pg_sleep on the server (57014) and the only pooled client is free again', async () => {
    const pool = new pg.Pool({ connectionString: url, max: 1, application_name: app });
    try {
      const ctx = pgTransactions(pool);
      const { unit, statement } = longStatement(ctx, (h) => h.query(`SELECT pg_sleep(${FOREVER_S})`), { timeoutMs: TIMEOUT_MS });
      const err = await rejection(unit);
      assert.ok(err instanceof TransactionTimeoutError && err.code === 'TX_TIMEOUT', `got ${String(err)}`);
      assert.equal(codeOf(await statement), '57014', 'the server cancelled the statement');
      assert.equal(pool.totalCount - pool.idleCount, 0, 'the client went back to the pool');
      assert.equal(await sessions('active'), 0, 'nothing runs on the server any more');
      assert.equal(await sessions('idle in transaction'), 0);
      // The pool has one client: this only runs if that client is free and healthy.
      assert.equal(await ctx.withTransaction(async (tx) => (await tx.handle.query('SELECT 1 AS one')).rows[0]?.one), 1);
      await ctx.close();
    } finally {
      await pool.end();
    }
  });

  it("pg: the caller's AbortSignal cancels the running statement too", async () => {
    const pool = new pg.Pool({ connectionString: url, max: 1, application_name: app });
    try {
      const ctx = pgTransactions(pool);
      const controller = new AbortController();
      const { unit, statement } = longStatement(ctx, (h) => h.query(`SELECT pg_sleep(${FOREVER_S})`), { signal: controller.signal });
      await waitFor('pg_sleep to run on the server', async () => (await sessions('active')) === 1);
      controller.abort(new Error('caller gave up'));
      const err = await rejection(unit);
      assert.ok(err instanceof TransactionAbortedError, `got ${String(err)}`);
      assert.equal(codeOf(await statement), '57014');
      assert.equal(pool.totalCount - pool.idleCount, 0);
      assert.equal(await sessions('active'), 0);
      await ctx.close();
    } finally {
      await pool.end();
    }
  });

  it('knex pg: timeoutMs cancels the statement and knex gets its connection back', async () => {
    const db: Knex = knex({ client: 'pg', connection: { connectionString: url, application_name: app }, pool: { min: 0, max: 1 } });
    try {
      const ctx = knexTransactions(db);
      const { unit, statement } = longStatement(ctx, (h) => h.raw(`SELECT pg_sleep(${FOREVER_S})`), { timeoutMs: TIMEOUT_MS });
      const err = await rejection(unit);
      assert.ok(err instanceof TransactionTimeoutError && err.code === 'TX_TIMEOUT', `got ${String(err)}`);
      assert.equal(codeOf(await statement), '57014');
      const tarn = db.client.pool as { numUsed(): number; numPendingAcquires(): number };
      assert.equal(tarn.numUsed(), 0, 'knex released the connection');
      assert.equal(await sessions('active'), 0);
      assert.equal(await sessions('idle in transaction'), 0);
      assert.deepEqual(await ctx.withTransaction(async (tx) => (await tx.handle.raw('SELECT 1 AS one')).rows), [{ one: 1 }]);
      await ctx.close();
    } finally {
      await db.destroy();
    }
  });
});

const mysqlUrl = service('mysql');

describe.skipIf(mysqlUrl === undefined)('mariadb: timeouts kill the running query', () => {
  const url = mysqlUrl as string; // the suite is skipped without it
  it('knex mysql2: timeoutMs runs KILL QUERY (1317) and the connection is usable again', async () => {
    const db: Knex = knex({ client: 'mysql2', connection: url, pool: { min: 0, max: 1 } });
    try {
      const ctx = knexTransactions(db);
      const { unit, statement } = longStatement(ctx, (h) => h.raw(`SELECT SLEEP(${FOREVER_S})`), { timeoutMs: TIMEOUT_MS });
      const err = await rejection(unit);
      assert.ok(err instanceof TransactionTimeoutError && err.code === 'TX_TIMEOUT', `got ${String(err)}`);
      assert.equal(errnoOf(await statement), 1317, 'ER_QUERY_INTERRUPTED: the server stopped the query');
      const tarn = db.client.pool as { numUsed(): number };
      assert.equal(tarn.numUsed(), 0);
      const [rows] = (await ctx.withTransaction(async (tx) => tx.handle.raw('SELECT 1 AS one'))) as [unknown[]];
      assert.deepEqual(rows, [{ one: 1 }]);
      await ctx.close();
    } finally {
      await db.destroy();
    }
  });
});
