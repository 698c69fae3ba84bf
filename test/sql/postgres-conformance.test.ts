import knex from 'knex';
import type { Knex } from 'knex';
import pg from 'pg';
import { afterAll, beforeAll, describe } from 'vitest';
import { knexTransactions, pgTransactions } from '../../src/adapters/sql/index.js';
import { testTransactionContext } from '../../src/testing/index.js';
import { service } from '../support/services.js';
import { testApiFor, uniqueName } from './support/sql-fixtures.js';

const url = service('postgres');
const test = testApiFor(url !== undefined, describe);
const table = uniqueName('conf_pg');
let pool: pg.Pool;
let db: Knex;

beforeAll(async () => {
  if (url === undefined) return;
  pool = new pg.Pool({ connectionString: url, max: 6, application_name: table });
  db = knex({ client: 'pg', connection: url, pool: { min: 0, max: 6 } });
  await pool.query(`CREATE TABLE ${table} (k text PRIMARY KEY, v text NOT NULL)`);
});

afterAll(async () => {
  if (url === undefined) return;
  await pool.query(`DROP TABLE IF EXISTS ${table}`);
  await pool.end();
  await db.destroy();
});

async function read(key: string): Promise<string | undefined> {
  const { rows } = await pool.query<{ v: string }>(`SELECT v FROM ${table} WHERE k = $1`, [key]);
  return rows[0]?.v;
}

testTransactionContext({
  name: 'postgres (pg Pool)',
  test,
  capabilities: { savepoints: true, concurrentTransactions: true },
  make: async () => ({
    context: pgTransactions(pool),
    write: async (tx, key, value) => {
      await tx.handle.query(`INSERT INTO ${table} (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, [
        key,
        value,
      ]);
    },
    read,
  }),
});

testTransactionContext({
  name: 'postgres (knex pg)',
  test,
  capabilities: { savepoints: true, concurrentTransactions: true },
  make: async () => ({
    context: knexTransactions(db),
    write: async (tx, key, value) => {
      await tx.handle(table).insert({ k: key, v: value }).onConflict('k').merge();
    },
    read,
  }),
});

testTransactionContext({
  name: 'postgres (pg Pool, verifyCommit)',
  test,
  capabilities: { savepoints: true, concurrentTransactions: true },
  make: async () => ({
    context: pgTransactions(pool, { verifyCommit: true }),
    write: async (tx, key, value) => {
      await tx.handle.query(`INSERT INTO ${table} (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, [
        key,
        value,
      ]);
    },
    read,
  }),
});
