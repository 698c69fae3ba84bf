/**
 * The conformance suite on PGlite, with no server: unmodified pg and knex
 * code talks to an in-process PGlite through @electric-sql/pglite-socket.
 */
import knex from 'knex';
import type { Knex } from 'knex';
import pg from 'pg';
import { afterAll, beforeAll, describe } from 'vitest';
import { knexTransactions, pgTransactions } from '../../src/adapters/sql/index.js';
import { testTransactionContext } from '../../src/testing/index.js';
import { startEmbeddedPostgres } from './support/embedded-postgres.js';
import type { EmbeddedPostgres } from './support/embedded-postgres.js';
import { testApiFor } from './support/sql-fixtures.js';

let embedded: EmbeddedPostgres;
let pool: pg.Pool;
let db: Knex;

beforeAll(async () => {
  embedded = await startEmbeddedPostgres();
  pool = new pg.Pool({ connectionString: embedded.url, max: 4 });
  db = knex({ client: 'pg', connection: embedded.url, pool: { min: 0, max: 4 } });
  await pool.query('CREATE TABLE kv (k text PRIMARY KEY, v text NOT NULL)');
});

afterAll(async () => {
  await pool.end();
  await db.destroy();
  await embedded.stop();
});

/**
 * The committed value of `key`. PGlite is a single Postgres session that
 * every socket connection shares, and the socket server holds other
 * connections' queries until a transaction ends, so a read over the socket
 * during a transaction would wait for it. This reads in that one session
 * instead and keeps only row versions whose writing transaction (or
 * subtransaction) has committed, which is the committed view of a key the
 * suite writes once.
 */
async function read(key: string): Promise<string | undefined> {
  const { rows } = await embedded.db.query<{ v: string }>(
    `SELECT v FROM kv
      WHERE k = $1
        AND pg_xact_status(((pg_snapshot_xmax(pg_current_snapshot())::text::bigint >> 32) << 32
                            | xmin::text::bigint)::text::xid8) = 'committed'`,
    [key],
  );
  return rows[0]?.v;
}

// One session: a second transaction waits for the first, so requires_new inside a running one cannot work.
const capabilities = { savepoints: true, concurrentTransactions: false };

testTransactionContext({
  name: 'pglite via pglite-socket (pg Pool, verifyCommit)',
  test: testApiFor(true, describe),
  capabilities,
  make: async () => ({
    context: pgTransactions(pool, { verifyCommit: true }),
    write: async (tx, key, value) => {
      await tx.handle.query('INSERT INTO kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v', [key, value]);
    },
    read,
  }),
});

testTransactionContext({
  name: 'pglite via pglite-socket (knex pg)',
  test: testApiFor(true, describe),
  capabilities,
  make: async () => ({
    context: knexTransactions(db),
    write: async (tx, key, value) => {
      await tx.handle('kv').insert({ k: key, v: value }).onConflict('k').merge();
    },
    read,
  }),
});
