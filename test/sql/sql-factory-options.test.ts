/**
 * Factory options are checked as strictly as a call's: an unknown or
 * misspelt key is a ConfigError naming it and the accepted ones, and the
 * transaction options given directly at the factory (timeoutMs, signal,
 * isolationLevel...) apply to every transaction, as in `defaults`.
 */
import assert from 'node:assert/strict';
import knex from 'knex';
import type { Knex } from 'knex';
import pg from 'pg';
import { afterAll, describe, it } from 'vitest';
import { knexTransactions, pgTransactions } from '../../src/adapters/sql/index.js';
import type { SqlContextOptions } from '../../src/adapters/sql/index.js';
import { ConfigError, TransactionAbortedError, TransactionTimeoutError } from '../../src/index.js';
import type { TransactionContext } from '../../src/index.js';
import { rejection } from '../../src/testing/index.js';
import { service } from '../support/services.js';
import { sqliteDir } from './support/sql-fixtures.js';

const pgUrl = service('postgres');
const mysqlUrl = service('mysql');
const files = sqliteDir();
afterAll(() => files.remove());

type Factory = (options: SqlContextOptions) => TransactionContext<unknown, object>;
interface Subject {
  readonly factory: Factory;
  end(): Promise<void>;
}

const subjects: [string, () => Subject][] = [
  [
    'knex sqlite',
    () => {
      const db = knex({ client: 'better-sqlite3', connection: { filename: files.file('options.db') }, useNullAsDefault: true });
      return { factory: (o) => knexTransactions(db, o) as never, end: () => db.destroy() };
    },
  ],
];
if (pgUrl !== undefined) {
  subjects.push(
    [
      'pg',
      () => {
        const pool = new pg.Pool({ connectionString: pgUrl, max: 2 });
        return { factory: (o) => pgTransactions(pool, o) as never, end: () => pool.end() };
      },
    ],
    [
      'knex pg',
      () => {
        const db: Knex = knex({ client: 'pg', connection: pgUrl, pool: { min: 0, max: 2 } });
        return { factory: (o) => knexTransactions(db, o) as never, end: () => db.destroy() };
      },
    ],
  );
}
if (mysqlUrl !== undefined) {
  subjects.push([
    'knex mysql',
    () => {
      const db: Knex = knex({ client: 'mysql2', connection: mysqlUrl, pool: { min: 0, max: 2 } });
      return { factory: (o) => knexTransactions(db, o) as never, end: () => db.destroy() };
    },
  ]);
}

/** Waits until txkit aborts the transaction (its signal fires), as a unit that runs too long would be. */
const outlive = async (tx: { signal: AbortSignal }): Promise<void> =>
  new Promise<void>((resolve) => tx.signal.addEventListener('abort', () => resolve(), { once: true }));

describe.each(subjects)('%s factory options', (name, make) => {
  it('an unknown or misspelt key is a ConfigError naming it and the accepted options, at the top level and in defaults', async () => {
    const s = make();
    try {
      for (const [options, key, hint] of [
        [{ isolation: 'serializable' }, 'isolation', /isolationLevel/],
        [{ timeout: 100 }, 'timeout', /timeoutMs/],
        [{ propagation: 'nested' }, 'propagation', /per call/],
        [{ defaults: { isolation: 'serializable' } }, 'isolation', /isolationLevel/],
        [{ defaults: { retry: { maxAttempts: 1 } } }, 'retry', /options are/],
      ] as unknown as [SqlContextOptions, string, RegExp][]) {
        assert.throws(
          () => s.factory(options),
          (e: unknown) => e instanceof ConfigError && e.message.includes(`'${key}'`) && /options are/.test(e.message) && hint.test(e.message),
          `${name}: ${JSON.stringify(options)}`,
        );
      }
    } finally {
      await s.end();
    }
  });

  it('timeoutMs and signal given directly at the factory apply to every transaction', async () => {
    const s = make();
    try {
      const timed = s.factory({ timeoutMs: 200 });
      const err = await rejection(timed.withTransaction(outlive));
      assert.ok(err instanceof TransactionTimeoutError && err.code === 'TX_TIMEOUT', `${name}: got ${String(err)}`);

      const controller = new AbortController();
      const cancelled = s.factory({ signal: controller.signal });
      const running = cancelled.withTransaction(async (tx) => {
        controller.abort(new Error('shutting down'));
        await outlive(tx);
      });
      assert.ok((await rejection(running)) instanceof TransactionAbortedError, name);

      // A call's own option wins over the factory's.
      assert.equal(await timed.withTransaction(async () => 'in time', { timeoutMs: 60_000 }), 'in time');
    } finally {
      await s.end();
    }
  });
});
