import knex from 'knex';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe } from 'vitest';
import { knexTransactions } from '../../src/adapters/sql/index.js';
import { testTransactionContext } from '../../src/testing/index.js';
import { service } from '../support/services.js';
import { testApiFor, uniqueName } from './support/sql-fixtures.js';

const url = service('mysql');
const test = testApiFor(url !== undefined, describe);
const table = uniqueName('conf_my');
let db: Knex;

beforeAll(async () => {
  if (url === undefined) return;
  db = knex({ client: 'mysql2', connection: url, pool: { min: 0, max: 6 } });
  await db.schema.createTable(table, (t) => {
    t.string('k', 191).primary();
    t.text('v').notNullable();
  });
});

afterAll(async () => {
  if (url === undefined) return;
  await db.schema.dropTableIfExists(table);
  await db.destroy();
});

testTransactionContext({
  name: 'mariadb (knex mysql2)',
  test,
  capabilities: { savepoints: true, concurrentTransactions: true },
  make: async () => ({
    context: knexTransactions(db),
    write: async (tx, key, value) => {
      await tx.handle(table).insert({ k: key, v: value }).onConflict('k').merge();
    },
    read: async (key) => ((await db(table).where({ k: key }).first()) as { v: string } | undefined)?.v,
  }),
});
