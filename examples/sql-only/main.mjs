// txkit with Postgres and nothing else: only `txkit` and `pg` are installed.
// Run: DATABASE_URL=postgres://... node main.mjs
import { createRequire } from 'node:module';
import pg from 'pg';
import { pgTransactions } from 'txkit/sql';

const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const table = `sql_only_${process.pid}_${Date.now().toString(36)}`;
const pool = new pg.Pool({ connectionString: url, max: 2 });
const ctx = pgTransactions(pool);

try {
  await pool.query(`CREATE TABLE ${table} (id text PRIMARY KEY, total integer NOT NULL)`);

  const attempts = await ctx.withTransaction(async (tx) => {
    await tx.handle.query(`INSERT INTO ${table} (id, total) VALUES ($1, $2)`, ['o-1', 42]);
    return tx.attempt;
  });

  const { rows } = await pool.query(`SELECT total FROM ${table} WHERE id = $1`, ['o-1']);
  if (rows[0]?.total !== 42) throw new Error(`expected the committed row o-1 with total 42, found ${JSON.stringify(rows)}`);

  // No other backend library is installed next to txkit, and none was needed.
  const require = createRequire(import.meta.url);
  const present = ['knex', 'mysql2', 'better-sqlite3', 'mongodb', 'kafkajs'].filter((name) => {
    try {
      require.resolve(name);
      return true;
    } catch {
      return false;
    }
  });
  if (present.length > 0) throw new Error(`expected only pg as a backend library, but ${present.join(', ')} resolve`);

  console.log(`ok: committed o-1 in ${attempts} attempt(s) with only pg installed`);
} finally {
  await pool.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
  await ctx.close();
  await pool.end();
}
