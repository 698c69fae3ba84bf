// `npm run bench -- sql`: the cost of txkit's transaction model over the native
// APIs on real Postgres, next to the machine's fsync floor (pg_test_fsync).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import knex from 'knex';
import pg from 'pg';
import { knexTransactions, pgTransactions } from '../src/adapters/sql/index.js';
import { fmt, interleaved } from './harness.js';
import type { BenchResult, InterleavedResult, Variant } from './harness.js';

const URL_ = process.env.TXKIT_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ROUNDS = 100;
const OPS_PER_ROUND = 50;
const WARMUP_OPS = 500;

export default async function sqlBench(): Promise<BenchResult> {
  // One connection per variant: every transaction waits for its own commit, as one request handler would.
  const pool = new pg.Pool({ connectionString: URL_, max: 1 });
  const txkitPool = new pg.Pool({ connectionString: URL_, max: 1 });
  const db = knex({ client: 'pg', connection: URL_, pool: { min: 1, max: 1 } });
  const txkitDb = knex({ client: 'pg', connection: URL_, pool: { min: 1, max: 1 } });
  const table = `txkit_bench_sql_${process.pid}`;
  await pool.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, n int NOT NULL)`);
  const settings = await serverSettings(pool);
  try {
    const knexCtx = knexTransactions(txkitDb);
    const pgCtx = pgTransactions(txkitPool);
    let nextId = 0;

    // The same work everywhere: insert one row, update it, commit.
    const viaKnex = async (trx: knex.Knex.Transaction): Promise<void> => {
      const id = ++nextId;
      await trx(table).insert({ id, n: 0 });
      await trx(table).where({ id }).update({ n: 1 });
    };
    const viaPg = async (client: pg.PoolClient): Promise<void> => {
      const id = ++nextId;
      await client.query(`INSERT INTO ${table} (id, n) VALUES ($1, 0)`, [id]);
      await client.query(`UPDATE ${table} SET n = 1 WHERE id = $1`, [id]);
    };

    const variants: Variant[] = [
      { label: 'knex.transaction (native)', run: () => db.transaction(viaKnex) },
      { label: 'txkit knexTransactions', run: () => knexCtx.withTransaction((tx) => viaKnex(tx.handle)) },
      {
        label: 'pg BEGIN/COMMIT (native)',
        run: async () => {
          const client = await pool.connect();
          try {
            await client.query('BEGIN');
            await viaPg(client);
            await client.query('COMMIT');
          } catch (err) {
            await client.query('ROLLBACK');
            throw err;
          } finally {
            client.release();
          }
        },
      },
      { label: 'txkit pgTransactions', run: () => pgCtx.withTransaction((tx) => viaPg(tx.handle)) },
    ];
    const results = await interleaved(variants, { rounds: ROUNDS, opsPerRound: OPS_PER_ROUND, warmupOps: WARMUP_OPS });
    const fsync = pgTestFsync(settings.walSyncMethod, settings.dataDirectory);

    const by = (label: string): InterleavedResult => results.find((r) => r.label === label) as InterleavedResult;
    const pairs: [string, string][] = [
      ['txkit knexTransactions', 'knex.transaction (native)'],
      ['txkit pgTransactions', 'pg BEGIN/COMMIT (native)'],
    ];
    const ratioOf = new Map(pairs.map(([mine, native]) => [mine, by(mine).medianNs / by(native).medianNs]));
    const overheadOf = new Map(pairs.map(([mine, native]) => [mine, (by(mine).medianNs - by(native).medianNs) / 1e3]));
    const rows = results.map((r) => {
      const ratio = ratioOf.get(r.label);
      const overhead = overheadOf.get(r.label);
      const spread = `${fmt(Math.min(...r.roundsNs) / 1e3, 0)}–${fmt(Math.max(...r.roundsNs) / 1e3, 0)}`;
      return [
        r.label,
        fmt(r.medianNs / 1e3, 1),
        spread,
        fmt(1e9 / r.medianNs, 0),
        ratio === undefined ? '1 (baseline)' : fmt(ratio, 3),
        overhead === undefined ? '' : `${overhead >= 0 ? '+' : ''}${fmt(overhead, 1)}`,
      ];
    });
    const worst = Math.max(...ratioOf.values());
    const summary = [
      'One transaction = insert one row + update it + commit, on one connection, one at a time, so every',
      'commit waits for its own WAL flush. The variants run interleaved in the same process against the',
      'same server, in many short rounds that alternate their order; the ratio is txkit\'s median time per',
      'transaction over the native API\'s (goal: at most 1.03). Both run with AsyncLocalStorage enabled (txkit',
      'enables it in the process), which a program without txkit would not pay.',
      '',
      `- Worst ratio txkit/native: **${fmt(worst, 3)}** (${worst <= 1.03 ? 'within' : 'above'} the 1.03 goal).`,
      `- Server: ${settings.version}; synchronous_commit=${settings.synchronousCommit}, fsync=${settings.fsync}, ` +
        `wal_sync_method=${settings.walSyncMethod}.`,
      `- Physical floor: \`pg_test_fsync\` (${fsync.binary}, -s 2) measures **${fsync.opsPerSec}** ${settings.walSyncMethod} ` +
        `ops/s for one 8 kB write${fsync.sameDevice ? ' on the device of the data directory' : ''}: a single client ` +
        'cannot commit faster than that, whatever the API.',
      `- Against that floor: ${floorShare(by('pg BEGIN/COMMIT (native)'), fsync.opsPerSec)} (native pg), ` +
        `${floorShare(by('txkit pgTransactions'), fsync.opsPerSec)} (txkit pg). Below 100%, a transaction's four round ` +
        'trips and the client\'s CPU cost more than the flush.',
      `- ${ROUNDS} rounds × ${OPS_PER_ROUND} transactions per variant after ${WARMUP_OPS} warm-up transactions each; ` +
        'spread = fastest–slowest round.',
    ].join('\n');
    await knexCtx.close();
    await pgCtx.close();
    return {
      name: 'sql',
      title: 'SQL: txkit vs knex.transaction and raw BEGIN/COMMIT (pg, real Postgres)',
      command: 'npm run bench -- sql',
      summary,
      table: {
        headers: ['variant', 'median µs / transaction', 'round spread µs', 'commits/s', 'ratio txkit/native', 'txkit overhead µs'],
        rows,
      },
      chart: {
        title: 'SQL: time per transaction relative to the native API (lower is better)',
        reference: { value: 1, label: 'native = 1' },
        groups: [
          {
            label: 'µs per transaction / native (goal <= 1.03)',
            bars: rows.map((r) => ({ label: String(r[0]), value: String(r[4]).startsWith('1 (') ? 1 : Number(r[4]) })),
          },
        ],
      },
    };
  } finally {
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
    await txkitPool.end();
    await db.destroy();
    await txkitDb.destroy();
  }
}

/** Commits/s of `r` as a share of the fsync floor, e.g. "1,200 commits/s = 23% of the floor". */
function floorShare(r: InterleavedResult, floorOpsPerSec: string): string {
  const perSec = 1e9 / r.medianNs;
  const floor = Number(floorOpsPerSec);
  const share = Number.isFinite(floor) && floor > 0 ? ` = ${fmt((100 * perSec) / floor, 0)}% of the floor` : '';
  return `${fmt(perSec, 0)} commits/s${share}`;
}

interface ServerSettings {
  version: string;
  synchronousCommit: string;
  fsync: string;
  walSyncMethod: string;
  dataDirectory: string | undefined;
}

async function serverSettings(pool: pg.Pool): Promise<ServerSettings> {
  const show = async (name: string): Promise<string | undefined> => {
    try {
      return String((await pool.query(`SHOW ${name}`)).rows[0]?.[name]);
    } catch {
      return undefined; // data_directory needs superuser or pg_read_all_settings
    }
  };
  const version = ((await pool.query('SELECT version() AS v')).rows[0]?.v as string).split(' on ')[0] ?? 'unknown';
  return {
    version,
    synchronousCommit: (await show('synchronous_commit')) ?? '?',
    fsync: (await show('fsync')) ?? '?',
    walSyncMethod: (await show('wal_sync_method')) ?? 'fdatasync',
    dataDirectory: await show('data_directory'),
  };
}

/** Runs pg_test_fsync on a temporary file and reads the `method` line of "one 8kB write". */
function pgTestFsync(method: string, dataDirectory: string | undefined): { binary: string; opsPerSec: string; sameDevice: boolean } {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  const binary = versions.map((v) => path.join(root, v, 'bin', 'pg_test_fsync')).find((p) => existsSync(p));
  if (binary === undefined) return { binary: 'not found under /usr/lib/postgresql/*/bin', opsPerSec: 'n/a', sameDevice: false };
  const dir = mkdtempSync(path.join(tmpdir(), 'txkit-fsync-'));
  try {
    const output = execFileSync(binary, ['-s', '2', '-f', path.join(dir, 'probe')], { encoding: 'utf8' });
    const oneWrite = output.split('Compare file sync methods using two')[0] ?? output;
    const line = oneWrite.split('\n').find((l) => l.trim().startsWith(`${method} `));
    const opsPerSec = line?.match(/([\d.]+) ops\/sec/)?.[1] ?? 'n/a';
    let sameDevice = false;
    try {
      sameDevice = dataDirectory !== undefined && statSync(dataDirectory).dev === statSync(dir).dev;
    } catch {
      // The data directory may not be readable by this user.
    }
    return { binary, opsPerSec: opsPerSec === 'n/a' ? opsPerSec : fmt(Number(opsPerSec), 0), sameDevice };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
