/**
 * Pool hygiene: 1,000 transactions that commit, abort, time out, are
 * cancelled, fail on SQL errors, roll back savepoints and retry, 8 at a
 * time on a pool of 4. Afterwards no connection is checked out and no
 * server session is left idle in transaction (or still running a statement).
 */
import assert from 'node:assert/strict';
import knex from 'knex';
import type { Knex } from 'knex';
import pg from 'pg';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { knexTransactions, pgTransactions } from '../../src/adapters/sql/index.js';
import {
  TransactionAbortedError,
  TransactionTimeoutError,
  TransientTransactionError,
  TxkitError,
} from '../../src/index.js';
import type { Transaction, TransactionContext } from '../../src/index.js';
import type { SqlOptions } from '../../src/adapters/sql/index.js';
import { rejection } from '../../src/testing/index.js';
import { service } from '../support/services.js';
import { uniqueName } from './support/sql-fixtures.js';

const OPERATIONS = 1_000;
const WORKERS = 8;
const POOL_SIZE = 4;
const FAST = { initialDelayMs: 1, maxDelayMs: 5 } as const;

type Kind = 'commit' | 'throw' | 'abort' | 'timeout' | 'sql-error' | 'savepoint' | 'signal' | 'transient';
const KINDS: readonly Kind[] = ['commit', 'throw', 'abort', 'timeout', 'sql-error', 'savepoint', 'signal', 'transient'];
const COMMITTING: ReadonlySet<Kind> = new Set(['commit', 'savepoint', 'transient']);

/** The SQL a mixed operation runs, for one adapter's handle. */
interface Statements<H> {
  insert(tx: Transaction<H>, id: number): Promise<unknown>;
  sleep(tx: Transaction<H>): Promise<unknown>;
  fail(tx: Transaction<H>): Promise<unknown>;
}

const pgUrl = service('postgres');

describe.skipIf(pgUrl === undefined)('postgres: pool hygiene after 1,000 mixed transactions', () => {
  const url = pgUrl as string; // the suite is skipped without it
  const table = uniqueName('hygiene');
  let direct: pg.Pool;

  beforeAll(async () => {
    direct = new pg.Pool({ connectionString: url, max: 1 });
    await direct.query(`CREATE TABLE ${table} (adapter text NOT NULL, id int NOT NULL, PRIMARY KEY (adapter, id))`);
  });

  afterAll(async () => {
    await direct.query(`DROP TABLE IF EXISTS ${table}`);
    await direct.end();
  });

  /** Runs operation `id` and checks that it ended the way its kind must end. */
  async function operate<H>(ctx: TransactionContext<H, SqlOptions>, sql: Statements<H>, id: number): Promise<void> {
    const kind = KINDS[id % KINDS.length] as Kind;
    switch (kind) {
      case 'commit':
        await ctx.withTransaction((tx) => sql.insert(tx, id));
        return;
      case 'throw': {
        const boom = new Error(`op ${id}`);
        const err = await rejection(ctx.withTransaction(async (tx) => (await sql.insert(tx, id), Promise.reject(boom))));
        assert.equal(err, boom);
        return;
      }
      case 'abort':
        await ctx.withTransaction(async (tx) => (await sql.insert(tx, id), tx.abort('changed my mind')));
        return;
      case 'timeout': {
        const err = await rejection(
          ctx.withTransaction(async (tx) => (await sql.insert(tx, id), sql.sleep(tx)), { timeoutMs: 30 }),
        );
        assert.ok(err instanceof TransactionTimeoutError, `op ${id}: ${String(err)}`);
        return;
      }
      case 'sql-error': {
        const err = await rejection(ctx.withTransaction(async (tx) => (await sql.insert(tx, id), sql.fail(tx))));
        assert.equal((err as { code?: unknown }).code, '22012', `op ${id}: ${String(err)}`); // division_by_zero: fatal
        return;
      }
      case 'savepoint':
        await ctx.withTransaction(async (tx) => {
          await sql.insert(tx, id);
          await rejection(
            ctx.withTransaction(async (sp) => (await sql.insert(sp, id + OPERATIONS), sql.fail(sp)), { propagation: 'nested' }),
          );
        });
        return;
      case 'signal': {
        const controller = new AbortController();
        const err = await rejection(
          ctx.withTransaction(
            async (tx) => {
              await sql.insert(tx, id);
              const sleeping = sql.sleep(tx);
              controller.abort();
              await sleeping;
            },
            { signal: controller.signal },
          ),
        );
        assert.ok(err instanceof TransactionAbortedError, `op ${id}: ${String(err)}`);
        return;
      }
      case 'transient': {
        let runs = 0;
        await ctx.withTransaction(
          async (tx) => {
            await sql.insert(tx, id);
            if ((runs += 1) === 1) throw new TransientTransactionError('try again');
          },
          { retry: FAST },
        );
        assert.equal(runs, 2);
        return;
      }
    }
  }

  async function runMixed<H>(ctx: TransactionContext<H, SqlOptions>, sql: Statements<H>): Promise<void> {
    let next = 0;
    await Promise.all(
      Array.from({ length: WORKERS }, async () => {
        for (let id = next++; id < OPERATIONS; id = next++) await operate(ctx, sql, id);
      }),
    );
  }

  async function assertCommittedExactly(adapter: string): Promise<void> {
    const { rows } = await direct.query<{ id: number }>(`SELECT id FROM ${table} WHERE adapter = $1 ORDER BY id`, [adapter]);
    const expected = Array.from({ length: OPERATIONS }, (_, id) => id).filter((id) => COMMITTING.has(KINDS[id % KINDS.length] as Kind));
    assert.deepEqual(
      rows.map((r) => r.id),
      expected,
      'exactly the committing operations left rows (no savepoint row, nothing aborted)',
    );
  }

  async function assertServerClean(app: string): Promise<void> {
    const { rows } = await direct.query<{ state: string; n: string }>(
      `SELECT coalesce(state, 'none') AS state, count(*) AS n FROM pg_stat_activity WHERE application_name = $1 GROUP BY 1`,
      [app],
    );
    const states = Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
    assert.equal(states['idle in transaction'] ?? 0, 0, `sessions: ${JSON.stringify(states)}`);
    assert.equal(states['idle in transaction (aborted)'] ?? 0, 0, `sessions: ${JSON.stringify(states)}`);
    assert.equal(states.active ?? 0, 0, `no statement left running: ${JSON.stringify(states)}`);
  }

  it('pg Pool: no client checked out, no session idle in transaction', async () => {
    const app = `${table}_pg`;
    const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE, application_name: app });
    try {
      const ctx = pgTransactions(pool);
      await runMixed(ctx, {
        insert: (tx, id) => tx.handle.query(`INSERT INTO ${table} (adapter, id) VALUES ('pg', $1)`, [id]),
        sleep: (tx) => tx.handle.query('SELECT pg_sleep(5)'),
        fail: (tx) => tx.handle.query('SELECT 1 / 0'),
      });
      assert.equal(pool.totalCount - pool.idleCount, 0, 'no client checked out');
      assert.equal(pool.waitingCount, 0);
      await assertServerClean(app);
      await assertCommittedExactly('pg');
      await ctx.close();
    } finally {
      await pool.end();
    }
  });

  it('knex pg: no connection in use, no session idle in transaction', async () => {
    const app = `${table}_knex`;
    const db: Knex = knex({ client: 'pg', connection: { connectionString: url, application_name: app }, pool: { min: 0, max: POOL_SIZE } });
    try {
      const ctx = knexTransactions(db);
      await runMixed(ctx, {
        insert: (tx, id) => Promise.resolve(tx.handle(table).insert({ adapter: 'knex', id })),
        sleep: (tx) => Promise.resolve(tx.handle.raw('SELECT pg_sleep(5)')),
        fail: (tx) => Promise.resolve(tx.handle.raw('SELECT 1 / 0')),
      });
      const tarn = db.client.pool as { numUsed(): number; numPendingAcquires(): number; numPendingCreates(): number };
      assert.equal(tarn.numUsed(), 0, 'no connection in use');
      assert.equal(tarn.numPendingAcquires(), 0);
      await assertServerClean(app);
      await assertCommittedExactly('knex');
      await ctx.close();
    } finally {
      await db.destroy();
    }
  });

  it('the error kinds above are what they claim: a SQL error is fatal and ends the unit at once', async () => {
    // Guards the mixed run against passing vacuously: a division by zero is not retried.
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    try {
      let runs = 0;
      const err = await rejection(
        pgTransactions(pool).withTransaction(async (tx) => {
          runs += 1;
          await tx.handle.query('SELECT 1 / 0');
        }),
      );
      assert.equal(runs, 1);
      assert.ok(!(err instanceof TxkitError));
    } finally {
      await pool.end();
    }
  });
});
