/**
 * isolationLevel, readOnly and deferrable reach the server (observed from
 * inside the transaction), and options a dialect lacks fail with a
 * ConfigError before any work.
 */
import assert from 'node:assert/strict';
import knex from 'knex';
import type { Knex } from 'knex';
import pg from 'pg';
import { afterAll, beforeAll, describe, expectTypeOf, it } from 'vitest';
import { knexTransactions, pgTransactions } from '../../src/adapters/sql/index.js';
import type { IsolationLevel, SqlOptions } from '../../src/adapters/sql/index.js';
import { ConfigError } from '../../src/index.js';
import type { TransactionContext } from '../../src/index.js';
import { rejection } from '../../src/testing/index.js';
import { service } from '../support/services.js';
import { sqliteDir, uniqueName } from './support/sql-fixtures.js';

const LEVELS: readonly IsolationLevel[] = ['read uncommitted', 'read committed', 'repeatable read', 'serializable'];
const codeOf = (err: unknown): unknown => (err as { code?: unknown }).code;

const pgUrl = service('postgres');

describe.skipIf(pgUrl === undefined)('postgres options', () => {
  const url = pgUrl as string; // the suite is skipped without it
  const table = uniqueName('options_pg');
  let pool: pg.Pool;
  let db: Knex;

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: url, max: 2 });
    db = knex({ client: 'pg', connection: url, pool: { min: 0, max: 2 } });
    await pool.query(`CREATE TABLE ${table} (k text PRIMARY KEY)`);
  });

  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
    await db.destroy();
  });

  /** The transaction's modes as the server reports them, through either adapter. */
  const adapters = [
    {
      name: 'pg',
      modes: (options: SqlOptions) =>
        pgTransactions(pool).withTransaction(async (tx) => {
          const show = async (name: string): Promise<unknown> => (await tx.handle.query(`SHOW ${name}`)).rows[0]?.[name];
          return [await show('transaction_isolation'), await show('transaction_read_only'), await show('transaction_deferrable')];
        }, options),
    },
    {
      name: 'knex',
      modes: (options: SqlOptions) =>
        knexTransactions(db).withTransaction(async (tx) => {
          const show = async (name: string): Promise<unknown> => (await tx.handle.raw(`SHOW ${name}`)).rows[0]?.[name];
          return [await show('transaction_isolation'), await show('transaction_read_only'), await show('transaction_deferrable')];
        }, options),
    },
  ];

  for (const { name, modes } of adapters) {
    it(`${name}: every isolation level is the one the server runs`, async () => {
      for (const level of LEVELS) assert.deepEqual(await modes({ isolationLevel: level }), [level, 'off', 'off']);
    });

    it(`${name}: readOnly and deferrable reach the server`, async () => {
      assert.deepEqual(await modes({ readOnly: true }), ['read committed', 'on', 'off']);
      assert.deepEqual(await modes({ isolationLevel: 'serializable', readOnly: true, deferrable: true }), ['serializable', 'on', 'on']);
    });
  }

  it('a write in a readOnly transaction fails on the server (25006) and is not retried', async () => {
    let runs = 0;
    const err = await rejection(
      pgTransactions(pool).withTransaction(
        async (tx) => {
          runs += 1;
          await tx.handle.query(`INSERT INTO ${table} (k) VALUES ('x')`);
        },
        { readOnly: true },
      ),
    );
    assert.equal(codeOf(err), '25006');
    assert.equal(runs, 1);
  });

  it("factory options apply to every transaction and a call's own options win", async () => {
    const ctx = pgTransactions(pool, { isolationLevel: 'serializable' });
    const level = (options?: SqlOptions) =>
      ctx.withTransaction(async (tx) => (await tx.handle.query('SHOW transaction_isolation')).rows[0]?.transaction_isolation, options);
    assert.equal(await level(), 'serializable');
    assert.equal(await level({ isolationLevel: 'read committed' }), 'read committed');
  });

  it('bad options fail with ConfigError: at the factory synchronously, per call before a client is checked out', async () => {
    const fresh = new pg.Pool({ connectionString: url, max: 1 });
    try {
      assert.throws(() => pgTransactions(fresh, { isolationLevel: 'snapshot' as IsolationLevel }), ConfigError);
      assert.throws(() => knexTransactions(db, { readOnly: 'yes' as unknown as boolean }), ConfigError);
      const ctx = pgTransactions(fresh);
      const bad: SqlOptions[] = [
        { isolationLevel: 'chaos' as IsolationLevel },
        { deferrable: true },
        { deferrable: true, isolationLevel: 'serializable' },
        { verifyCommit: 1 as unknown as boolean },
      ];
      for (const options of bad) {
        const err = await rejection(ctx.withTransaction(async () => 1, options));
        assert.ok(err instanceof ConfigError, `${JSON.stringify(options)}: ${String(err)}`);
        assert.equal(err.backend, 'postgres');
      }
      const deferrable = await rejection(ctx.withTransaction(async () => 1, { deferrable: true }));
      assert.match(String((deferrable as Error).message), /serializable read-only/);
      assert.equal(fresh.totalCount, 0, 'no connection was even opened');
    } finally {
      await fresh.end();
    }
  });

  it('the handle type is inferred from the argument: PoolClient for a pg Pool, Knex.Transaction for knex', () => {
    expectTypeOf(pgTransactions(pool)).toEqualTypeOf<TransactionContext<pg.PoolClient, SqlOptions>>();
    expectTypeOf(knexTransactions(db)).toEqualTypeOf<TransactionContext<Knex.Transaction, SqlOptions>>();
  });
});

const mysqlUrl = service('mysql');

describe.skipIf(mysqlUrl === undefined)('mariadb options', () => {
  const url = mysqlUrl as string; // the suite is skipped without it
  const table = uniqueName('options_my');
  let db: Knex;

  beforeAll(async () => {
    db = knex({ client: 'mysql2', connection: url, pool: { min: 0, max: 3 } });
    await db.schema.createTable(table, (t) => {
      t.string('k', 32).primary();
      t.string('v', 32).notNullable();
    });
    await db(table).insert({ k: 'a', v: 'clean' });
  });

  afterAll(async () => {
    await db.schema.dropTableIfExists(table);
    await db.destroy();
  });

  // MariaDB cannot report the isolation level of the running transaction (information_schema.innodb_trx
  // is a cache refreshed every 100 ms), so each level is checked by the anomaly it allows or prevents.
  const read = async (tx: Knex.Transaction): Promise<string> => ((await tx(table).where({ k: 'a' }).first()) as { v: string }).v;

  it("'read uncommitted' reads another transaction's uncommitted write; 'read committed' does not", async () => {
    const ctx = knexTransactions(db);
    const dirtyRead = (isolationLevel: IsolationLevel) =>
      ctx.withTransaction(
        async (tx) => {
          const peer = await ctx.begin();
          await peer.handle(table).where({ k: 'a' }).update({ v: 'dirty' });
          const seen = await read(tx.handle);
          await peer.abort();
          return seen;
        },
        { isolationLevel },
      );
    assert.equal(await dirtyRead('read uncommitted'), 'dirty');
    assert.equal(await dirtyRead('read committed'), 'clean');
  });

  it("'read committed' sees a change committed after its first read; 'repeatable read' does not", async () => {
    const ctx = knexTransactions(db);
    const twoReads = (isolationLevel: IsolationLevel) =>
      ctx.withTransaction(
        async (tx) => {
          const first = await read(tx.handle);
          await db(table).where({ k: 'a' }).update({ v: 'next' });
          const second = await read(tx.handle);
          await db(table).where({ k: 'a' }).update({ v: 'clean' });
          return [first, second];
        },
        { isolationLevel },
      );
    assert.deepEqual(await twoReads('read committed'), ['clean', 'next']);
    assert.deepEqual(await twoReads('repeatable read'), ['clean', 'clean']);
  });

  it("'serializable' turns a plain read into a shared lock (a NOWAIT writer is refused); 'repeatable read' does not", async () => {
    const ctx = knexTransactions(db);
    const lockAfterRead = (isolationLevel: IsolationLevel) =>
      ctx.withTransaction(
        async (tx) => {
          await read(tx.handle);
          try {
            await db.raw(`SELECT k FROM ${table} WHERE k = 'a' FOR UPDATE NOWAIT`);
            return 'lock granted';
          } catch {
            return 'lock refused';
          }
        },
        { isolationLevel },
      );
    assert.equal(await lockAfterRead('serializable'), 'lock refused');
    assert.equal(await lockAfterRead('repeatable read'), 'lock granted');
  });

  it('readOnly makes a write fail on the server (1792) without a retry', async () => {
    let runs = 0;
    const err = await rejection(
      knexTransactions(db).withTransaction(
        async (tx) => {
          runs += 1;
          await tx.handle(table).insert({ k: 'b', v: 'x' });
        },
        { readOnly: true },
      ),
    );
    assert.equal((err as { errno?: unknown }).errno, 1792, 'ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION');
    assert.equal(runs, 1);
  });

  it('Postgres-only options are ConfigErrors that say why', async () => {
    const ctx = knexTransactions(db);
    const deferrable = await rejection(
      ctx.withTransaction(async () => 1, { isolationLevel: 'serializable', readOnly: true, deferrable: true }),
    );
    assert.ok(deferrable instanceof ConfigError);
    assert.match(deferrable.message, /Postgres option; MySQL\/MariaDB/);
    const verify = await rejection(ctx.withTransaction(async () => 1, { verifyCommit: true }));
    assert.ok(verify instanceof ConfigError);
    assert.match(verify.message, /pg_xact_status/);
    assert.throws(() => knexTransactions(db, { verifyCommit: true }), ConfigError);
  });
});

describe('sqlite options', () => {
  const files = sqliteDir();
  let db: Knex;

  beforeAll(() => {
    db = knex({ client: 'better-sqlite3', connection: { filename: files.file('options.db') }, useNullAsDefault: true });
  });

  afterAll(async () => {
    await db.destroy();
    files.remove();
  });

  it("'serializable' is accepted (it is what SQLite always runs); every other level is a ConfigError", async () => {
    const ctx = knexTransactions(db);
    assert.equal(await ctx.withTransaction(async (tx) => (await tx.handle.raw('SELECT 1 AS one'))[0]?.one, { isolationLevel: 'serializable' }), 1);
    for (const level of LEVELS.filter((l) => l !== 'serializable')) {
      const err = await rejection(ctx.withTransaction(async () => 1, { isolationLevel: level }));
      assert.ok(err instanceof ConfigError, level);
      assert.equal(err.backend, 'sqlite');
      assert.match(err.message, /every SQLite transaction is serializable/);
    }
  });

  it('readOnly, deferrable and verifyCommit are ConfigErrors on SQLite', async () => {
    const ctx = knexTransactions(db);
    for (const options of [{ readOnly: true }, { deferrable: true }, { verifyCommit: true }] as SqlOptions[]) {
      const err = await rejection(ctx.withTransaction(async () => 1, options));
      assert.ok(err instanceof ConfigError, JSON.stringify(options));
    }
    assert.throws(() => knexTransactions(db, { readOnly: true }), /open the database read-only/);
  });
});
