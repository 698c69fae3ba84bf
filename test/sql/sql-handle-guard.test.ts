/**
 * A transaction handle belongs to its unit: once the transaction ends, any
 * query on it fails with HANDLE_ENDED; while it runs, the callback cannot
 * commit or roll it back behind txkit's back (HANDLE_OWNS_END), neither with
 * knex's trx.commit()/trx.rollback() nor with COMMIT/ROLLBACK text.
 */
import assert from 'node:assert/strict';
import knex from 'knex';
import type { Knex } from 'knex';
import pg from 'pg';
import { afterAll, describe, it } from 'vitest';
import { knexTransactions, pgTransactions } from '../../src/adapters/sql/index.js';
import { TransactionStateError } from '../../src/index.js';
import { rejection } from '../../src/testing/index.js';
import { service } from '../support/services.js';
import { sqliteDir, uniqueName } from './support/sql-fixtures.js';

const codeOf = (err: unknown): unknown => (err instanceof TransactionStateError ? err.code : `not a TransactionStateError: ${String(err)}`);

/** Runs `fn` and returns what it threw (synchronously or as a rejection). */
async function refusal(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a refusal');
}

const pgUrl = service('postgres');
const mysqlUrl = service('mysql');
const files = sqliteDir();
afterAll(() => files.remove());

const knexConfigs: [string, () => Knex][] = [
  ['sqlite', () => knex({ client: 'better-sqlite3', connection: { filename: files.file('guard.db') }, useNullAsDefault: true })],
];
if (pgUrl !== undefined) knexConfigs.push(['pg', () => knex({ client: 'pg', connection: pgUrl, pool: { min: 0, max: 2 } })]);
if (mysqlUrl !== undefined) knexConfigs.push(['mysql', () => knex({ client: 'mysql2', connection: mysqlUrl, pool: { min: 0, max: 2 } })]);

describe.each(knexConfigs)('knex %s: the transaction handle', (name, make) => {
  it('a handle kept after commit, after rollback, or of a released savepoint refuses queries with HANDLE_ENDED', async () => {
    const db = make();
    try {
      const ctx = knexTransactions(db);
      let committed: Knex.Transaction | undefined;
      let savepoint: Knex.Transaction | undefined;
      await ctx.withTransaction(async (tx) => {
        committed = tx.handle;
        await ctx.withTransaction(async (sp) => void (savepoint = sp.handle), { propagation: 'nested' });
        assert.equal(codeOf(await rejection(Promise.resolve((savepoint as Knex.Transaction).raw('SELECT 1')))), 'HANDLE_ENDED');
      });
      let rolledBack: Knex.Transaction | undefined;
      await rejection(
        ctx.withTransaction(async (tx) => {
          rolledBack = tx.handle;
          throw new Error('roll back');
        }),
      );
      for (const kept of [committed, rolledBack] as Knex.Transaction[]) {
        assert.equal(codeOf(await rejection(Promise.resolve(kept.raw('SELECT 1')))), 'HANDLE_ENDED', `${name}: raw`);
        assert.equal(codeOf(await rejection(Promise.resolve(kept.select(db.raw('1 AS one'))))), 'HANDLE_ENDED', `${name}: builder`);
      }
    } finally {
      await db.destroy();
    }
  });

  it('trx.commit(), trx.rollback() and COMMIT/ROLLBACK text in the callback fail with HANDLE_OWNS_END; txkit still ends the unit', async () => {
    const db = make();
    const table = uniqueName(`guard_${name}`);
    try {
      await db.schema.createTable(table, (t) => t.string('k', 32).primary());
      const ctx = knexTransactions(db);
      const codes = await ctx.withTransaction(async (tx) => {
        await tx.handle(table).insert({ k: 'kept' });
        const seen = [
          codeOf(await refusal(() => tx.handle.commit())),
          codeOf(await refusal(() => tx.handle.rollback())),
          codeOf(await refusal(() => tx.handle.raw('COMMIT'))),
          codeOf(await refusal(() => tx.handle.raw(' rollback; '))),
        ];
        await ctx.withTransaction(async (sp) => void seen.push(codeOf(await refusal(() => sp.handle.commit()))), { propagation: 'nested' });
        // The transaction is still open and usable: the refused calls sent nothing.
        await tx.handle(table).insert({ k: 'after' });
        return seen;
      });
      assert.deepEqual(codes, Array(5).fill('HANDLE_OWNS_END'));
      assert.deepEqual((await db(table).select('k').orderBy('k')).map((r: { k: string }) => r.k), ['after', 'kept']);
      // Savepoint statements are not transaction ends.
      await ctx.withTransaction(async (tx) => {
        await tx.handle.raw('SAVEPOINT manual');
        await tx.handle.raw('ROLLBACK TO SAVEPOINT manual');
      });
    } finally {
      await db.schema.dropTableIfExists(table);
      await db.destroy();
    }
  });
});

describe.skipIf(pgUrl === undefined)('pg: the transaction handle', () => {
  it("query('COMMIT') and friends fail with HANDLE_OWNS_END and leave the transaction to txkit", async () => {
    const pool = new pg.Pool({ connectionString: pgUrl as string, max: 2 });
    try {
      const ctx = pgTransactions(pool);
      const codes = await ctx.withTransaction(async (tx) => {
        // SET LOCAL lasts until the transaction ends: still set afterwards means the same transaction.
        await tx.handle.query("SET LOCAL application_name = 'txkit_guard'");
        const seen = [];
        for (const sql of ['COMMIT', 'end;', 'ROLLBACK WORK', 'abort']) seen.push(codeOf(await rejection(tx.handle.query(sql))));
        seen.push(codeOf(await rejection(tx.handle.query({ text: 'commit' }))));
        // Still inside the transaction the unit began.
        seen.push((await tx.handle.query<{ application_name: string }>('SHOW application_name')).rows[0]?.application_name);
        return seen;
      });
      assert.deepEqual(codes, [...Array(5).fill('HANDLE_OWNS_END'), 'txkit_guard']);
      assert.equal(pool.totalCount - pool.idleCount, 0);
    } finally {
      await pool.end();
    }
  });
});
