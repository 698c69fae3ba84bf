#!/usr/bin/env node
// `npm run bench:profile [-- memory|knex|knex-pg|pg]`: where txkit's time per transaction goes. Runs N transactions
// twice under `node --cpu-prof`, natively and through withTransaction, and prints each function's self time
// in µs per transaction, txkit's run beside the native one, largest difference first. Targets:
//   memory (default): the memory backend's own begin/set/commit vs withTransaction (the core alone);
//   knex: knex.transaction vs knexTransactions on in-memory SQLite (better-sqlite3: no server, no network);
//   knex-pg: the same on the Postgres at TXKIT_PG_URL (synchronous_commit=off);
//   pg:   pg Pool BEGIN/COMMIT vs pgTransactions on the Postgres at TXKIT_PG_URL (synchronous_commit=off).
// Each transaction of knex and pg inserts one row and updates it. The profiles are written to a temp dir and
// removed; nothing is kept in the repository. Uses the built package (`npm run build` first). Proportions
// hold on a busy machine; absolute times do not, and two runs compared on a busy machine differ by its load.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const target = process.argv[2] ?? 'memory';
const N = Number(process.env.PROFILE_TRANSACTIONS ?? (target === 'memory' ? 300_000 : 20_000));
const TOP = Number(process.env.PROFILE_TOP ?? 25);
// PROFILE_FROM_SOURCES=1 (the test suite's smoke run): the TypeScript sources through tsx, no build needed.
const fromSources = process.env.PROFILE_FROM_SOURCES === '1';
const root = fileURLToPath(new URL('..', import.meta.url));
const built = (name, source) => path.join(root, fromSources ? source : `dist/${name}.js`);
const entries = { memory: built('memory', 'src/adapters/memory/index.ts'), sql: built('sql', 'src/adapters/sql/index.ts') };
const entry = target === 'memory' ? entries.memory : entries.sql;
if (!fs.existsSync(entry)) {
  console.error('bench:profile needs the built package: run `npm run build` first');
  process.exit(2);
}
const requireFromRoot = createRequire(path.join(root, 'package.json'));
const lib = (name) => JSON.stringify(requireFromRoot.resolve(name));
const PG_URL = process.env.TXKIT_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** knex.transaction vs knexTransactions on the knex made from `config` (source text): insert a row, update it. */
function knexTarget(config) {
  return {
    setup: `const { default: knex } = await import(${lib('knex')});
const { knexTransactions } = await import(${JSON.stringify(entry)});
const db = knex(${config});
const table = \`txkit_profile_\${process.pid}\`;
await db.schema.createTable(table, (t) => { t.bigInteger('id').primary(); t.integer('n'); });
const ctx = knexTransactions(db);
let id = 0;
const work = async (trx) => { const i = ++id; await trx(table).insert({ id: i, n: 0 }); await trx(table).where({ id: i }).update({ n: 1 }); };`,
    native: 'await db.transaction(work);',
    txkit: 'await ctx.withTransaction((tx) => work(tx.handle));',
    teardown: 'await ctx.close(); await db.schema.dropTable(table); await db.destroy();',
  };
}

/** Per target: what both runs set up, then one transaction natively and through txkit. */
const targets = {
  memory: {
    setup: `const { MemoryDriver, MemoryStore, memoryTransactions } = await import(${JSON.stringify(entry)});
const store = new MemoryStore();
const driver = new MemoryDriver(store);
const ctx = memoryTransactions({ store });
let i = 0;`,
    native: 'const tx = await driver.begin(); await tx.handle.set(`k${i++ % 1000}`, i); await tx.commit();',
    txkit: 'await ctx.withTransaction((tx) => tx.handle.set(`k${i++ % 1000}`, i));',
    teardown: 'await ctx.close();',
  },
  knex: knexTarget(`{ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true, pool: { min: 1, max: 1 } }`),
  'knex-pg': knexTarget(
    `{ client: 'pg', connection: ${JSON.stringify(PG_URL)}, pool: { min: 1, max: 1, afterCreate: (conn, done) => conn.query('SET synchronous_commit = off', (err) => done(err, conn)) } }`,
  ),
  pg: {
    setup: `const { default: pg } = await import(${lib('pg')});
const { pgTransactions } = await import(${JSON.stringify(entry)});
const pool = new pg.Pool({ connectionString: ${JSON.stringify(PG_URL)}, options: '-c synchronous_commit=off', max: 1 });
const table = \`txkit_profile_\${process.pid}\`;
await pool.query(\`CREATE TABLE \${table} (id bigint PRIMARY KEY, n int NOT NULL)\`);
const ctx = pgTransactions(pool);
let id = 0;
const work = async (c) => { const i = ++id; await c.query(\`INSERT INTO \${table} (id, n) VALUES ($1, 0)\`, [i]); await c.query(\`UPDATE \${table} SET n = 1 WHERE id = $1\`, [i]); };`,
    native: "const c = await pool.connect(); try { await c.query('BEGIN'); await work(c); await c.query('COMMIT'); } finally { c.release(); }",
    txkit: 'await ctx.withTransaction((tx) => work(tx.handle));',
    teardown: 'await ctx.close(); await pool.query(`DROP TABLE ${table}`); await pool.end();',
  },
};
const chosen = targets[target];
if (chosen === undefined) {
  console.error(`bench:profile: unknown target '${target}'; use one of ${Object.keys(targets).join(', ')}`);
  process.exit(2);
}
// Both runs make the same objects, and run one transaction through txkit first: that enables its
// AsyncLocalStorage, whose hooks Node 20 then runs for every promise of the process (the benches measure
// the native API with them on too, as in a program that uses txkit).
const script = (body) => `${chosen.setup}
${chosen.txkit}
for (let n = 0; n < ${N}; n++) { ${body} }
${chosen.teardown}`;
const variants = { native: script(chosen.native), txkit: script(chosen.txkit) };

/** Self time per function (µs per transaction) of one variant's run. */
function profile(name, source, dir) {
  // The same file name for both runs, so their own functions line up in the table.
  fs.mkdirSync(path.join(dir, name));
  const script = path.join(dir, name, 'run.mjs');
  const out = path.join(dir, name, 'profile');
  fs.writeFileSync(script, source);
  const run = spawnSync(process.execPath, [...(fromSources ? ['--import', 'tsx'] : []), '--cpu-prof', `--cpu-prof-dir=${out}`, script], {
    stdio: 'inherit',
    cwd: root,
  });
  if (run.status !== 0) throw new Error(`the ${name} run failed (exit ${run.status})`);
  const file = path.join(out, fs.readdirSync(out)[0]);
  const p = JSON.parse(fs.readFileSync(file, 'utf8'));
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  p.samples.forEach((id, i) => {
    const { functionName, url, lineNumber } = nodes.get(id).callFrame;
    const where = url === '' ? '' : ` (${url.split('/').at(-1)}:${lineNumber + 1})`;
    const key = `${functionName || '(anonymous)'}${where}`;
    const us = p.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + us);
    total += us;
  });
  return { total: total / N, self: new Map([...self].map(([k, v]) => [k, v / N])) };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'txkit-profile-'));
try {
  const native = profile('native', variants.native, dir);
  const txkit = profile('txkit', variants.txkit, dir);
  console.log(`${target}: ${N} transactions each; self time in µs per transaction (Node ${process.version})`);
  console.log(`total: native ${native.total.toFixed(2)}, txkit ${txkit.total.toFixed(2)} (+${(txkit.total - native.total).toFixed(2)})`);
  console.log('| function | txkit | native | difference |\n| --- | --- | --- | --- |');
  const keys = new Set([...txkit.self.keys(), ...native.self.keys()]);
  const rows = [...keys].map((key) => [key, txkit.self.get(key) ?? 0, native.self.get(key) ?? 0]);
  for (const [key, mine, theirs] of rows.sort((a, b) => Math.abs(b[1] - b[2]) - Math.abs(a[1] - a[2])).slice(0, TOP)) {
    console.log(`| ${key} | ${mine.toFixed(3)} | ${theirs.toFixed(3)} | ${(mine - theirs).toFixed(3)} |`);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
