import knex from 'knex';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe } from 'vitest';
import { knexTransactions } from '../../src/adapters/sql/index.js';
import { testTransactionContext } from '../../src/testing/index.js';
import { sqliteDir, testApiFor } from './support/sql-fixtures.js';

const files = sqliteDir();
const filename = files.file('conformance.db');
const open = (): Knex => knex({ client: 'better-sqlite3', connection: { filename }, useNullAsDefault: true });
// Transactions and reads use separate connections (knex gives SQLite a pool of one), so a read
// inside a running transaction sees the committed state, as the suite expects.
let db: Knex;
let reader: Knex;

beforeAll(async () => {
  db = open();
  reader = open();
  // WAL: readers do not block the writer and see only committed data.
  await db.raw('PRAGMA journal_mode = WAL');
  await db.schema.createTable('kv', (t) => {
    t.text('k').primary();
    t.text('v').notNullable();
  });
});

afterAll(async () => {
  await db.destroy();
  await reader.destroy();
  files.remove();
});

testTransactionContext({
  name: 'sqlite (knex better-sqlite3)',
  test: testApiFor(true, describe),
  // One writer at a time: a second transaction waits for the first, so requires_new inside one cannot work.
  capabilities: { savepoints: true, concurrentTransactions: false },
  make: async () => ({
    context: knexTransactions(db),
    write: async (tx, key, value) => {
      await tx.handle('kv').insert({ k: key, v: value }).onConflict('k').merge();
    },
    read: async (key) => ((await reader('kv').where({ k: key }).first()) as { v: string } | undefined)?.v,
  }),
});
