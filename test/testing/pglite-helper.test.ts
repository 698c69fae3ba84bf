/**
 * pgliteTransactions from txkit/testing: Postgres in the test process in one
 * call. A unit commits and rolls back on it, and service code typed on pg's
 * or knex's own handle runs on it unchanged (and, when a Postgres server is
 * reachable, on that server too). Missing optional packages and bad options
 * are ConfigErrors that say what to do.
 */
import knex from 'knex';
import type { Knex } from 'knex';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError } from 'txkit';
import type { TransactionContext } from 'txkit';
import { pgTransactions } from 'txkit/sql';
import type { SqlOptions } from 'txkit/sql';
import { pgliteTransactions } from 'txkit/testing';
import type { PgliteClient, PglitePool, PgliteTransactions } from 'txkit/testing';
import { service } from '../support/services.js';
import { uniqueName } from '../sql/support/sql-fixtures.js';

/** Service code on pg: typed by the handle it needs, not by the server behind it. */
async function placeOrder(ctx: TransactionContext<pg.PoolClient, SqlOptions>, table: string, id: string, total: number): Promise<number> {
  return ctx.withTransaction(async (tx) => {
    await tx.handle.query(`INSERT INTO ${table} (id, total) VALUES ($1, $2)`, [id, total]);
    if (total <= 0) throw new RangeError(`order ${id}: total must be positive, got ${total}`);
    const { rows } = await tx.handle.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
    return Number(rows[0]?.n);
  });
}

/** The same service on knex. */
async function placeOrderKnex(ctx: TransactionContext<Knex.Transaction, SqlOptions>, table: string, id: string, total: number): Promise<void> {
  await ctx.withTransaction(async (tx) => {
    await tx.handle(table).insert({ id, total });
    if (total <= 0) throw new RangeError(`order ${id}: total must be positive, got ${total}`);
  });
}

const createOrders = (table: string): string => `CREATE TABLE ${table} (id text PRIMARY KEY, total integer NOT NULL)`;

describe('pgliteTransactions() with the pg Pool it makes', () => {
  let pglite: PgliteTransactions<PgliteClient, PglitePool>;

  beforeAll(async () => {
    pglite = await pgliteTransactions({ retry: { initialDelayMs: 0 } });
    await pglite.db.query(createOrders('orders'));
  });
  afterAll(() => pglite.close());

  it('commits a unit', async () => {
    const attempt = await pglite.context.withTransaction(async (tx) => {
      await tx.handle.query('INSERT INTO orders (id, total) VALUES ($1, $2)', ['o-1', 42]);
      return tx.attempt;
    });
    expect(attempt).toBe(1);
    const { rows } = await pglite.db.query<{ total: number }>('SELECT total FROM orders WHERE id = $1', ['o-1']);
    expect(rows).toEqual([{ total: 42 }]);
  });

  it('rolls a failed unit back', async () => {
    const failure = new Error('refused');
    await expect(
      pglite.context.withTransaction(async (tx) => {
        await tx.handle.query('INSERT INTO orders (id, total) VALUES ($1, $2)', ['o-2', 7]);
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect((await pglite.db.query('SELECT id FROM orders WHERE id = $1', ['o-2'])).rows).toEqual([]);
    // PGlite itself sees the same committed state.
    expect((await pglite.pglite.query<{ id: string }>('SELECT id FROM orders ORDER BY id')).rows).toEqual([{ id: 'o-1' }]);
  });

  it('reruns a unit that hit a serialization failure', async () => {
    let runs = 0;
    await pglite.context.withTransaction(async (tx) => {
      runs += 1;
      await tx.handle.query('INSERT INTO orders (id, total) VALUES ($1, $2)', [`o-r${runs}`, 1]);
      if (runs === 1) await tx.handle.query("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$");
    });
    expect(runs).toBe(2);
    expect((await pglite.db.query('SELECT id FROM orders WHERE id LIKE $1 ORDER BY id', ['o-r%'])).rows).toEqual([{ id: 'o-r2' }]);
  });
});

describe('pgliteTransactions({ pool }) and ({ knex }): the same service code as on a server', () => {
  it('runs a service typed on pg.PoolClient, committing and rolling back', async () => {
    const pglite = await pgliteTransactions({ pool: (url) => new pg.Pool({ connectionString: url, max: 2 }) });
    try {
      await pglite.db.query(createOrders('orders'));
      expect(await placeOrder(pglite.context, 'orders', 'o-1', 10)).toBe(1);
      await expect(placeOrder(pglite.context, 'orders', 'o-2', 0)).rejects.toBeInstanceOf(RangeError);
      expect(await placeOrder(pglite.context, 'orders', 'o-3', 5)).toBe(2);
      expect((await pglite.db.query('SELECT id FROM orders ORDER BY id')).rows).toEqual([{ id: 'o-1' }, { id: 'o-3' }]);
    } finally {
      await pglite.close();
    }
  });

  it('runs a service typed on Knex.Transaction, committing and rolling back', async () => {
    const pglite = await pgliteTransactions({ knex: (url) => knex({ client: 'pg', connection: url, pool: { min: 0, max: 2 } }) });
    try {
      await pglite.db.raw(createOrders('orders'));
      await placeOrderKnex(pglite.context, 'orders', 'o-1', 10);
      await expect(placeOrderKnex(pglite.context, 'orders', 'o-2', -1)).rejects.toBeInstanceOf(RangeError);
      expect(await pglite.db('orders').select('id').orderBy('id')).toEqual([{ id: 'o-1' }]);
    } finally {
      await pglite.close();
    }
  });

  const pgUrl = service('postgres');
  it.skipIf(pgUrl === undefined)('runs the same service on a Postgres server through pgTransactions', async () => {
    const pool = new pg.Pool({ connectionString: pgUrl, max: 2 });
    const table = uniqueName('pglite_swap');
    const ctx = pgTransactions(pool);
    try {
      await pool.query(createOrders(table));
      expect(await placeOrder(ctx, table, 'o-1', 10)).toBe(1);
      await expect(placeOrder(ctx, table, 'o-2', 0)).rejects.toBeInstanceOf(RangeError);
      expect((await pool.query(`SELECT id FROM ${table}`)).rows).toEqual([{ id: 'o-1' }]);
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
      await ctx.close();
      await pool.end();
    }
  });
});

describe('pgliteTransactions: close()', () => {
  it('stops the server and closes PGlite, and can be called twice', async () => {
    const pglite = await pgliteTransactions();
    const url = pglite.url;
    expect(url).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
    await Promise.all([pglite.close(), pglite.close()]);
    await pglite.close();
    const client = new pg.Client({ connectionString: url });
    await expect(client.connect()).rejects.toThrow();
    await client.end().catch(() => undefined);
    await expect(pglite.context.withTransaction(async () => undefined)).rejects.toThrow(/closed/i);
  });
});

describe('pgliteTransactions: what it refuses', () => {
  it('refuses pool and knex together, a pool that is not a function, and a bad maxConnections', async () => {
    const both = { pool: () => new pg.Pool(), knex: () => knex({ client: 'pg' }) } as unknown as Parameters<typeof pgliteTransactions>[0];
    await expect(pgliteTransactions(both)).rejects.toThrow(ConfigError);
    await expect(pgliteTransactions(both)).rejects.toThrow(/`pool` or `knex`, not both/);
    const notAFunction = { pool: new pg.Pool() } as unknown as Parameters<typeof pgliteTransactions>[0];
    await expect(pgliteTransactions(notAFunction)).rejects.toThrow(/option pool must be a function of the connection string/);
    await expect(pgliteTransactions({ maxConnections: 0 })).rejects.toThrow(/maxConnections must be a positive integer, got number/);
  });

  it("checks the context's own options: a misspelt one before anything starts, a bad value as the factory does", async () => {
    const misspelt = { isolation: 'serializable' } as unknown as Parameters<typeof pgliteTransactions>[0];
    const err = await pgliteTransactions(misspelt).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/unknown option 'isolation' in pgliteTransactions options.*Use isolationLevel/);
    const badLevel = { isolationLevel: 'snapshot' } as unknown as Parameters<typeof pgliteTransactions>[0];
    await expect(pgliteTransactions(badLevel)).rejects.toThrow(/isolationLevel must be one of/);
  });
});

describe('pgliteTransactions: optional peer dependencies not installed', () => {
  const notFound = (name: string): Error =>
    Object.assign(new Error(`Cannot find package '${name}' imported from /app/node_modules/txkit/dist/testing.js`), { code: 'ERR_MODULE_NOT_FOUND' });

  async function freshHelper(): Promise<typeof pgliteTransactions> {
    vi.resetModules();
    return (await import('../../src/testing/pglite.js')).pgliteTransactions;
  }

  afterAll(() => {
    vi.doUnmock('@electric-sql/pglite');
    vi.doUnmock('@electric-sql/pglite-socket');
    vi.doUnmock('pg');
    vi.resetModules();
  });

  it('says to install @electric-sql/pglite when it is missing', async () => {
    vi.doMock('@electric-sql/pglite', () => {
      throw notFound('@electric-sql/pglite');
    });
    const helper = await freshHelper();
    const err = await helper().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('CONFIG');
    expect((err as Error).message).toMatch(/needs the optional peer dependency @electric-sql\/pglite, which is not installed: install @electric-sql\/pglite \(npm install --save-dev @electric-sql\/pglite\)/);
    vi.doUnmock('@electric-sql/pglite');
  });

  it('says to install @electric-sql/pglite-socket when it is missing', async () => {
    vi.doMock('@electric-sql/pglite-socket', () => {
      throw notFound('@electric-sql/pglite-socket');
    });
    const err = await (await freshHelper())().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/install @electric-sql\/pglite-socket/);
    vi.doUnmock('@electric-sql/pglite-socket');
  });

  it('says to install pg, or to pass pool or knex, when pg is missing and neither is given', async () => {
    vi.doMock('pg', () => {
      throw notFound('pg');
    });
    const err = await (await freshHelper())().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/install pg \(npm install --save-dev pg\), or pass `pool` or `knex`/);
    vi.doUnmock('pg');
  });

  it('passes on other failures of a package as they are', async () => {
    const broken = new TypeError('PGlite failed to initialise');
    vi.doMock('@electric-sql/pglite', () => {
      throw broken;
    });
    const err = await (await freshHelper())().catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(ConfigError);
    expect(String((err as Error).cause ?? err)).toContain('PGlite failed to initialise');
    vi.doUnmock('@electric-sql/pglite');
  });
});
