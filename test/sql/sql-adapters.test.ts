/**
 * Behaviour of the SQL adapters beyond the conformance suite: what the
 * handle allows, how a lost connection and a silently rolled-back
 * transaction are reported, verifyCommit's transaction id, knex BEGIN
 * failures, nested savepoints, and misuse caught up front.
 */
import assert from 'node:assert/strict';
import knex from 'knex';
import type { Knex } from 'knex';
import pg from 'pg';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { classifySqlError, knexTransactions, pgTransactions } from '../../src/adapters/sql/index.js';
import type { KnexLike } from '../../src/adapters/sql/index.js';
import { ConfigError, TransactionStateError, TxkitError } from '../../src/index.js';
import { rejection } from '../../src/testing/index.js';
import { service } from '../support/services.js';
import { deferred, sqliteDir, uniqueName } from './support/sql-fixtures.js';

const FAST = { initialDelayMs: 1, maxDelayMs: 5 } as const;
const pgUrl = service('postgres');

describe.skipIf(pgUrl === undefined)('postgres adapters', () => {
  const url = pgUrl as string; // the suite is skipped without it
  const table = uniqueName('adapters_pg');
  let pool: pg.Pool;
  let db: Knex;

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: url, max: 4 });
    // knex warns when it discards the connection a test terminates on purpose.
    db = knex({ client: 'pg', connection: url, pool: { min: 0, max: 4 }, log: { warn: () => undefined } });
    await pool.query(`CREATE TABLE ${table} (k text PRIMARY KEY, v text NOT NULL)`);
  });

  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
    await db.destroy();
  });

  const exists = async (key: string): Promise<boolean> =>
    (await pool.query(`SELECT 1 FROM ${table} WHERE k = $1`, [key])).rowCount === 1;

  it('a caught statement error makes Postgres answer COMMIT with ROLLBACK: reported as a fatal error, nothing written', async () => {
    const attempts: [string, () => Promise<unknown>][] = [
      [
        'pg',
        () =>
          pgTransactions(pool).withTransaction(async (tx) => {
            await tx.handle.query(`INSERT INTO ${table} (k, v) VALUES ('swallowed-pg', 'x')`);
            await tx.handle.query('SELECT 1 / 0').catch(() => undefined);
          }),
      ],
      [
        'knex',
        () =>
          knexTransactions(db).withTransaction(async (tx) => {
            await tx.handle(table).insert({ k: 'swallowed-knex', v: 'x' });
            await tx.handle.raw('SELECT 1 / 0').catch(() => undefined);
          }),
      ],
    ];
    for (const [name, run] of attempts) {
      const err = await rejection(run());
      assert.ok(err instanceof TxkitError && err.code === 'ROLLED_BACK_ON_COMMIT', `${name}: ${String(err)}`);
      assert.equal(classifySqlError(err), 'fatal');
      assert.match(err.message, /propagation 'nested'/);
      assert.equal(await exists(`swallowed-${name}`), false);
    }
  });

  it("pg: the handle is the pool's client, refuses queries once the transaction ended, and release() is txkit's", async () => {
    const ctx = pgTransactions(pool);
    let kept: pg.PoolClient | undefined;
    await ctx.withTransaction(async (tx) => {
      kept = tx.handle;
      assert.ok(tx.handle instanceof pg.Client);
      assert.throws(() => tx.handle.release(), (e: unknown) => e instanceof TransactionStateError && e.code === 'HANDLE_RELEASE');
    });
    const client = kept as pg.PoolClient;
    const err = await rejection(client.query('SELECT 1'));
    assert.ok(err instanceof TransactionStateError && err.code === 'HANDLE_ENDED', String(err));
    assert.equal(pool.totalCount - pool.idleCount, 0);
  });

  it('pg: a callback still running after a timeout cannot queue work on the released client', async () => {
    const ctx = pgTransactions(pool);
    const late = deferred<unknown>();
    await rejection(
      ctx.withTransaction(
        async (tx) => {
          // Keeps going after the timeout, as careless code does.
          tx.signal.addEventListener('abort', () => {
            setImmediate(() => late.resolve(rejection(tx.handle.query(`INSERT INTO ${table} (k, v) VALUES ('zombie', 'x')`))));
          });
          await new Promise<void>((resolve) => tx.signal.addEventListener('abort', () => resolve()));
        },
        { timeoutMs: 20 },
      ),
    );
    const err = await late.promise;
    assert.ok(err instanceof TransactionStateError && err.code === 'HANDLE_ENDED', String(err));
    assert.equal(await exists('zombie'), false);
  });

  it('a connection lost before COMMIT is transient: the unit reruns on a new connection and commits once', async () => {
    for (const [name, ctx] of [
      ['pg', pgTransactions(pool, { retry: FAST })],
      ['knex', knexTransactions(db, { retry: FAST })],
    ] as const) {
      const reasons: unknown[] = [];
      const key = `lost-${name}`;
      await (ctx as ReturnType<typeof pgTransactions<pg.Pool>>).withTransaction(async (tx) => {
        tx.afterAbort((r) => void reasons.push(r));
        const run = async (sql: string, values: unknown[]): Promise<{ rows: { pid?: number }[] }> =>
          name === 'pg'
            ? tx.handle.query(sql, values)
            : ((tx.handle as unknown as Knex.Transaction).raw(sql.replace(/\$\d/g, '?'), values as string[]) as never);
        const { rows } = await run('SELECT pg_backend_pid() AS pid', []);
        if (tx.attempt === 1) await pool.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid]);
        await run(`INSERT INTO ${table} (k, v) VALUES ($1, $2)`, [key, `attempt ${tx.attempt}`]);
      });
      assert.equal(reasons.length, 1, name);
      assert.equal(classifySqlError(reasons[0]), 'transient', `${name}: ${String(reasons[0])}`);
      const { rows } = await pool.query<{ v: string }>(`SELECT v FROM ${table} WHERE k = $1`, [key]);
      assert.deepEqual(rows, [{ v: 'attempt 2' }], name);
      await ctx.close();
    }
    assert.equal(pool.totalCount - pool.idleCount, 0, 'the broken client was destroyed, not leaked');
  });

  it('verifyCommit: the transaction id is the server transaction id', async () => {
    for (const ctx of [pgTransactions(pool, { verifyCommit: true }), knexTransactions(db, { verifyCommit: true })]) {
      await (ctx as ReturnType<typeof pgTransactions<pg.Pool>>).withTransaction(async (tx) => {
        const sql = 'SELECT pg_current_xact_id()::text AS xid';
        const result = 'raw' in tx.handle ? await (tx.handle as unknown as Knex.Transaction).raw(sql) : await tx.handle.query(sql);
        assert.equal(tx.id, (result as { rows: { xid: string }[] }).rows[0]?.xid);
      });
    }
  });

  it('knex: savepoints nest three deep; each rollback undoes only its own level', async () => {
    const ctx = knexTransactions(db);
    const put = (trx: Knex.Transaction, k: string) => trx(table).insert({ k, v: k });
    await ctx.withTransaction(async (outer) => {
      await put(outer.handle, 'sp-0');
      await ctx.withTransaction(
        async (one) => {
          await put(one.handle, 'sp-1');
          await rejection(
            ctx.withTransaction(
              async (two) => {
                await put(two.handle, 'sp-2');
                await ctx.withTransaction(async (three) => put(three.handle, 'sp-3'), { propagation: 'nested' });
                throw new Error('undo levels 2 and 3');
              },
              { propagation: 'nested' },
            ),
          );
        },
        { propagation: 'nested' },
      );
    });
    const keys = (await pool.query<{ k: string }>(`SELECT k FROM ${table} WHERE k LIKE 'sp-%' ORDER BY k`)).rows.map((r) => r.k);
    assert.deepEqual(keys, ['sp-0', 'sp-1']);
  });

  it('close() aborts running transactions but leaves the pool and knex instance to their owner', async () => {
    const ctx = pgTransactions(pool);
    const tx = await ctx.begin();
    await tx.handle.query(`INSERT INTO ${table} (k, v) VALUES ('closed', 'x')`);
    await ctx.close();
    assert.equal(tx.state, 'aborted');
    assert.equal(await exists('closed'), false);
    assert.equal((await pool.query('SELECT 1 AS one')).rows[0]?.one, 1);
    await knexTransactions(db).close();
    assert.equal((await db.raw('SELECT 1 AS one')).rows[0]?.one, 1);
  });

  it('pgTransactions needs a Pool: a pg.Client is refused with ConfigError before it is touched', () => {
    const client = new pg.Client({ connectionString: url });
    assert.throws(() => pgTransactions(client as unknown as pg.Pool), /pass a Pool/);
  });
});

describe('misuse caught up front', () => {
  it('the factories refuse what is not a pg Pool or a knex instance of a supported dialect', () => {
    assert.throws(() => pgTransactions(null as unknown as pg.Pool), ConfigError);
    assert.throws(() => knexTransactions({} as unknown as KnexLike), /needs a knex instance/);
    const mssql = { transaction: () => Promise.resolve(), raw: () => Promise.resolve(), client: { dialect: 'mssql' } };
    assert.throws(() => knexTransactions(mssql), /'mssql' dialect/);
    assert.throws(() => pgTransactions({ connect: () => Promise.reject(new Error('x')) }, null as never), ConfigError);
  });
});

describe('knex: a BEGIN that fails', () => {
  const files = sqliteDir();
  afterAll(() => files.remove());

  it('surfaces the BEGIN error and never runs the callback (knex itself still calls its own)', async () => {
    // A pool of one connection left inside a transaction: the next BEGIN fails.
    const db = knex({ client: 'better-sqlite3', connection: { filename: files.file('begin.db') }, useNullAsDefault: true });
    try {
      await db.raw('BEGIN');
      let runs = 0;
      const err = await rejection(knexTransactions(db).withTransaction(async () => void (runs += 1)));
      assert.match(String((err as Error).message), /cannot start a transaction within a transaction/);
      assert.equal(runs, 0);
      assert.equal(classifySqlError(err), 'fatal');
    } finally {
      await db.destroy();
    }
  });
});
