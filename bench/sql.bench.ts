// `npm run bench -- sql`: the cost of txkit's transaction model over the native
// APIs on real Postgres, next to the machine's fsync floor (pg_test_fsync).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import knex from 'knex';
import pg from 'pg';
import { SMOKE, benchGoal, controlledVerdict, differenceInterval, fmt, fmtControl, fmtInterval, interleaved, keptOf, loadEntry, median, ratioInterval, sized } from './harness.js';
import type { BenchResult, InterleavedResult, Variant } from './harness.js';
type SqlModule = typeof import('../src/adapters/sql/index.js');
// The built package, as users run it (the sources run through tsx carry its helpers on every closure).
const { knexTransactions, pgTransactions } = await loadEntry<SqlModule>('sql');

const URL_ = process.env.TXKIT_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ROUNDS = sized(300, 2);
const OPS_PER_ROUND = sized(51, 3);
// Transactions of each variant before the rounds: V8 goes on optimizing the code of a knex transaction for thousands of
// them (in one run, txkit's extra client CPU over knex.transaction fell from 43 to 19 µs between the first and the last
// quarter of the rounds, after 500), work its compiler threads do beside the main thread. The rounds measure a
// process that has settled, as a service does.
const WARMUP_OPS = sized(5_000, 1);
/** The goal for txkit / native, per transaction. */
const GOAL = 1.03;

/** One commit mode: 'on' (the server's default: each commit waits for its WAL flush) or 'off' (the client's cost without the flush's variance). */
type CommitMode = 'on' | 'off';

/** The connection settings of a commit mode: a session setting, sent at connect (the server default for 'on'). */
function connectionOf(synchronousCommit: CommitMode): { connectionString: string; options?: string } {
  return { connectionString: URL_, ...(synchronousCommit === 'off' ? { options: '-c synchronous_commit=off' } : {}) };
}

/** The two APIs, each measured in a process of its own (see measureApi). */
const APIS = ['pg', 'knex'] as const;
type Api = (typeof APIS)[number];
const COMMIT_MODES: readonly CommitMode[] = ['on', 'off'];

/** The variants of an API in one commit mode: the native API, txkit, and the native API again as the control. */
type Role = 'native' | 'txkit' | 'control';

/** What each variant of an API is called, before its commit mode. */
const NAMES: Readonly<Record<Api, Readonly<Record<Role, string>>>> = {
  pg: { native: 'pg BEGIN/COMMIT (native)', txkit: 'txkit pgTransactions', control: 'pg BEGIN/COMMIT (native, control)' },
  knex: { native: 'knex.transaction (native)', txkit: 'txkit knexTransactions', control: 'knex.transaction (native, control)' },
};

/** The label of one variant: its name and its commit mode. */
function labelOf(api: Api, role: Role, mode: CommitMode): string {
  return `${NAMES[api][role]}, synchronous_commit=${mode}`;
}

/**
 * One API's native and txkit variants, both commit modes, in this process: each mode's variants interleaved in
 * rounds of their own (in shared rounds, the first synchronous_commit=on variant after an `off` one would pay for
 * flushing the WAL its commits left behind, which favours no API).
 */
async function measureApi(api: Api): Promise<SqlResult[]> {
  const admin = new pg.Pool({ connectionString: URL_, max: 1 });
  const table = `txkit_bench_sql_${process.pid}`;
  await admin.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, n int NOT NULL)`);
  // Contexts first, then the clients under them.
  const closers: (() => Promise<unknown>)[] = [];
  try {
    let nextId = 0;
    // The same work everywhere: insert one row, update it, commit. The callback notes when it starts and ends (see timedPhases).
    const viaKnex = async (trx: knex.Knex.Transaction): Promise<void> => {
      callbackStarted = performance.now();
      const id = ++nextId;
      await trx(table).insert({ id, n: 0 });
      await trx(table).where({ id }).update({ n: 1 });
      callbackEnded = performance.now();
    };
    const viaPg = async (client: pg.PoolClient): Promise<void> => {
      callbackStarted = performance.now();
      const id = ++nextId;
      await client.query(`INSERT INTO ${table} (id, n) VALUES ($1, 0)`, [id]);
      await client.query(`UPDATE ${table} SET n = 1 WHERE id = $1`, [id]);
      callbackEnded = performance.now();
    };
    // One connection per commit mode, shared by its variants (they take turns): every transaction waits
    // for its own commit, as one request handler would, and all variants talk to the same server process. With a
    // connection each, the two server processes' own speed was counted as txkit's: the same native pg code on two
    // pools of one connection ran at 0.81 [0.77, 0.84] (synchronous_commit=on) and 0.56 [0.52, 0.58] (off) of
    // each other in one run. The third variant, the native code again, is the run's control (see controlledVerdict).
    const variantsOf = (synchronousCommit: CommitMode): Variant[] => {
      const connection = connectionOf(synchronousCommit);
      const label = (role: Role): string => labelOf(api, role, synchronousCommit);
      if (api === 'knex') {
        const db = knex({ client: 'pg', connection, pool: { min: 1, max: 1 } });
        const knexCtx = knexTransactions(db);
        closers.unshift(() => knexCtx.close());
        closers.push(() => db.destroy());
        const native = (): Promise<unknown> => db.transaction(viaKnex);
        return [
          timedPhases(label('native'), native),
          timedPhases(label('txkit'), () => knexCtx.withTransaction((tx) => viaKnex(tx.handle))),
          timedPhases(label('control'), native),
        ];
      }
      const pool = new pg.Pool({ ...connection, max: 1 });
      const pgCtx = pgTransactions(pool);
      closers.unshift(() => pgCtx.close());
      closers.push(() => pool.end());
      const native = async (): Promise<void> => {
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
      };
      return [
        timedPhases(label('native'), native),
        timedPhases(label('txkit'), () => pgCtx.withTransaction((tx) => viaPg(tx.handle))),
        timedPhases(label('control'), native),
      ];
    };
    const results: SqlResult[] = [];
    for (const mode of COMMIT_MODES) {
      const variants = variantsOf(mode);
      const measured = await interleaved(variants, { rounds: ROUNDS, opsPerRound: OPS_PER_ROUND, warmupOps: WARMUP_OPS, alternate: true });
      results.push(...measured.map((r) => ({ ...r, phasesUs: phasesOf(r.label, r.timedOps) })));
    }
    return results;
  } finally {
    for (const close of closers) await close().catch(() => undefined);
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
    await admin.end();
  }
}

/** When the running transaction's callback started and ended (performance.now()), noted by the callback itself. */
let callbackStarted = 0;
let callbackEnded = 0;

/** Where a variant's time per transaction goes, in µs (medians over the timed transactions). */
interface Phases {
  /** From the call to the callback's first line: a connection, BEGIN, and what the API does around them. */
  begin: number;
  /** The callback's own two statements, on the handle the API gives. */
  callback: number;
  /** From the callback's return to the transaction's promise settling: COMMIT, the release and what the API does around them. */
  end: number;
}

type SqlResult = InterleavedResult & { phasesUs: Phases };

/** Every transaction's phases, in ms, per variant label. */
const phaseTimes = new Map<string, Record<keyof Phases, number[]>>();

/** A variant that also notes, for each transaction, its three phases (see Phases); phasesOf reads those of the timed transactions. */
function timedPhases(label: string, run: () => Promise<unknown>): Variant {
  const times: Record<keyof Phases, number[]> = { begin: [], callback: [], end: [] };
  phaseTimes.set(label, times);
  return {
    label,
    run: async () => {
      const called = performance.now();
      await run();
      const settled = performance.now();
      times.begin.push(callbackStarted - called);
      times.callback.push(callbackEnded - callbackStarted);
      times.end.push(settled - callbackEnded);
    },
  };
}

/** The median phases of the last `timedOps` transactions of a variant (the warm-up's came before them). */
function phasesOf(label: string, timedOps: number): Phases {
  const times = phaseTimes.get(label);
  if (times === undefined) throw new RangeError(`no phases were noted for '${label}': make its variant with timedPhases`);
  const us = (xs: number[]): number => median(xs.slice(-timedOps)) * 1e3;
  return { begin: us(times.begin), callback: us(times.callback), end: us(times.end) };
}

/** The child process of one API: its results as JSON on the last line of stdout. */
const CHILD_API = process.env.TXKIT_SQL_BENCH_API as Api | undefined;
if (CHILD_API !== undefined && APIS.includes(CHILD_API)) {
  const results = await measureApi(CHILD_API);
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

/**
 * Runs measureApi(api) in a process of its own. txkit's core code is shared by its SQL adapters: in a process
 * that runs both, every call site sees two drivers, and knex's garbage is collected during pg's rounds too. An
 * application using one of them does not pay that, so each API gets a fresh process (the native and the txkit
 * variant of one API still take turns transaction by transaction in it).
 */
function measureApiInChild(api: Api): Promise<SqlResult[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
      env: { ...process.env, TXKIT_SQL_BENCH_API: api },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !last.startsWith('[')) reject(new Error(`the ${api} SQL bench process exited with ${String(code)}: ${out.slice(-500)}`));
      else resolve(JSON.parse(last) as SqlResult[]);
    });
  });
}

export default async function sqlBench(): Promise<BenchResult> {
  const admin = new pg.Pool({ connectionString: URL_, max: 1 });
  const settings = await serverSettings(admin);
  try {
    const results: SqlResult[] = [];
    for (const api of APIS) results.push(...(await measureApiInChild(api)));
    const fsync = SMOKE ? { binary: 'not run (smoke)', opsPerSec: 'n/a', sameDevice: false } : pgTestFsync(settings.walSyncMethod, settings.dataDirectory);

    const by = (label: string): SqlResult => results.find((r) => r.label === label) as SqlResult;
    const us = (ns: number[]): number[] => ns.map((n) => n / 1e3);
    const comparisons = COMMIT_MODES.flatMap((mode) =>
      (['knex', 'pg'] as const).map((api) => {
        const mine = by(labelOf(api, 'txkit', mode));
        const native = by(labelOf(api, 'native', mode));
        const control = by(labelOf(api, 'control', mode));
        const ratio = ratioInterval(mine.roundsNs, native.roundsNs);
        const controlRatio = ratioInterval(control.roundsNs, native.roundsNs);
        return {
          mine,
          native,
          control,
          ratio,
          controlRatio,
          cpuRatio: ratioInterval(mine.roundsCpuNs, native.roundsCpuNs),
          overhead: differenceInterval(us(mine.roundsNs), us(native.roundsNs)),
          cpuOverhead: differenceInterval(us(mine.roundsCpuNs), us(native.roundsCpuNs)),
          verdict: controlledVerdict(ratio, controlRatio, { atMost: GOAL }),
        };
      }),
    );
    const of = (label: string) => comparisons.find((c) => c.mine.label === label);
    const controlOf = (label: string) => comparisons.find((c) => c.control.label === label);
    const rows = results.map((r) => {
      const c = of(r.label);
      const k = controlOf(r.label);
      const spread = `${fmt(Math.min(...r.roundsNs) / 1e3, 0)}–${fmt(Math.max(...r.roundsNs) / 1e3, 0)}`;
      return [
        r.label,
        fmt(r.medianNs / 1e3, 1),
        spread,
        fmt(r.cpuNs / 1e3, 1),
        kilobytes(r),
        fmt(1e9 / r.medianNs, 0),
        c !== undefined ? fmtInterval(c.ratio) : k !== undefined ? `${fmtInterval(k.controlRatio)} (control)` : '1 (baseline)',
        c === undefined ? '' : fmtInterval(c.cpuRatio),
        c === undefined ? '' : `${fmtInterval(c.overhead, 1)} (CPU ${fmtInterval(c.cpuOverhead, 1)})`,
        c === undefined ? '' : c.verdict,
      ];
    });
    const line = (c: (typeof comparisons)[number]): string =>
      `- ${c.mine.label}: **${fmtInterval(c.ratio)}** of the native time (**${c.verdict}**), ${fmtInterval(c.overhead, 1)} µs more per ` +
      `transaction; client CPU ${fmtInterval(c.cpuOverhead, 1)} µs more (${fmtInterval(c.cpuRatio)} of native); ` +
      `${kilobytes(c.mine)} kB allocated per transaction, native ${kilobytes(c.native)} kB, of which garbage collection ${fmt(median(c.mine.roundsPauseNs ?? [0]) / 1e3, 1)} and ${fmt(median(c.native.roundsPauseNs ?? [0]) / 1e3, 1)} µs. ` +
      `The native code against itself: ${fmtControl(c.controlRatio)}. ${phaseText(c.mine, c.native)}`;
    const summary = [
      'One transaction = insert one row + update it + commit, on one connection, one at a time. Each API (pg, then',
      "knex) runs in a Node process of its own, as an application using one of them does; in it, the API's native",
      'and txkit variants take turns on one connection transaction by transaction (native, txkit, control, in an',
      'order where each follows every one equally often), with `synchronous_commit=on` (every commit waits for its',
      "own WAL flush) and `off` (the flush no longer dominates the time or its variance: what is left is round trips",
      "and the client's CPU); each mode's variants in rounds of their own, so no `on` transaction starts by flushing",
      'WAL an `off` one left. Both variants run with AsyncLocalStorage enabled (txkit enables it in the process),',
      'which a program without txkit would not pay.',
      '',
      "A transaction's time runs until what it left to run after it resolved has run. A round's figure per variant",
      `is the mean time of its ${OPS_PER_ROUND} transactions without garbage-collection pauses, the slowest ${OPS_PER_ROUND - keptOf(OPS_PER_ROUND)} left out (a`,
      'hiccup of the server or the machine lands on one transaction of one variant), plus its share of the pauses:',
      "the bytes a transaction of it allocates times the run's pause per allocated byte (which transaction a",
      'pause falls in is chance; what each allocates is not). Taking turns by transaction rather than in blocks of',
      '50 narrowed the intervals about threefold: in a script of 300 rounds on 2026-12-07 (slowest tenth left out,',
      'pauses not yet apportioned), knex `off` gave 1.048 [1.016, 1.074] in blocks and 1.037 [1.028, 1.047] taking',
      'turns, its control 1.006 [0.974, 1.027] and 1.001 [0.994, 1.011].',
      '',
      `Each ratio is txkit's median figure over the native API's, with a 95% bootstrap interval over the paired`,
      `rounds; the goal (at most ${GOAL}) is **met** only when the whole interval is under it, **missed** when`,
      'all of it is above, else **undecided** (the noise is larger than the margin). Each mode also runs the native',
      "code a second time as a control: when the control's interval against the native variant leaves out 1, the run",
      "told two identical variants apart, and no verdict is given. CPU is the whole process's user + system time per",
      'transaction (process.cpuUsage), pg and knex included, over every transaction of the round (none left out, pauses included).',
      'Connections are shared because two connections are not',
      'alike: the same native pg code on two pools of one connection each ran at 0.81 [0.77, 0.84] (`on`) and 0.56',
      '[0.52, 0.58] (`off`) of each other in one run of 2026-12-07.',
      '',
      ...comparisons.map(line),
      `- Server: ${settings.version}; server default synchronous_commit=${settings.synchronousCommit}, fsync=${settings.fsync}, ` +
        `wal_sync_method=${settings.walSyncMethod}.`,
      `- Physical floor: \`pg_test_fsync\` (${fsync.binary}, -s 2) measures **${fsync.opsPerSec}** ${settings.walSyncMethod} ` +
        `ops/s for one 8 kB write${fsync.sameDevice ? ' on the device of the data directory' : ''}: with synchronous_commit=on a single ` +
        `client cannot commit faster than that, whatever the API. Native pg reaches ${floorShare(by(labelOf('pg', 'native', 'on')), fsync.opsPerSec)}.`,
      `- ${ROUNDS} rounds × ${OPS_PER_ROUND} transactions per variant after ${WARMUP_OPS} warm-up transactions each; ` +
        'spread = fastest–slowest round.',
    ].join('\n');
    return {
      name: 'sql',
      title: 'SQL: txkit vs knex.transaction and raw BEGIN/COMMIT (pg, real Postgres)',
      command: 'npm run bench -- sql',
      summary,
      table: {
        headers: ['variant', 'median µs / tx', 'round spread µs', 'CPU µs / tx', 'kB allocated / tx', 'commits/s', 'ratio to native [95% CI]', 'CPU ratio [95% CI]', 'txkit overhead µs [95% CI]', `goal <= ${GOAL}`],
        rows,
      },
      goals: comparisons.map((c) =>
        benchGoal(
          {
            measure: `${c.mine.label.replace(/ \(native\)/, '')}: time per transaction / ${c.native.label.replace(/, synchronous_commit=\w+$/, '')}`,
            figure: fmtInterval(c.ratio),
            goal: `<= ${GOAL}`,
            verdict: c.verdict,
          },
          () =>
            `the goal's ${fmt((GOAL - 1) * 100, 0)}% is ${fmt(((GOAL - 1) * c.native.medianNs) / 1e3, 1)} µs of the native ` +
            `${fmt(c.native.medianNs / 1e3, 0)} µs; txkit adds ${fmtInterval(c.overhead, 1)} µs (client CPU ${fmtInterval(c.cpuOverhead, 1)} µs): ` +
            `${phaseDeltas(c.mine, c.native)}; the native code against itself ${fmtInterval(c.controlRatio)}`,
        ),
      ),
      chart: {
        title: 'SQL: time per transaction relative to the native API (lower is better)',
        reference: { value: 1, label: 'native = 1' },
        groups: COMMIT_MODES.map((mode) => ({
          label: `µs per transaction / native, synchronous_commit=${mode} (goal <= ${GOAL})`,
          bars: comparisons
            .filter((c) => c.mine.label.endsWith(`=${mode}`))
            .map((c) => ({ label: c.mine.label.replace(/, synchronous_commit=\w+$/, ''), value: Number(fmt(c.ratio.value, 3)) })),
        })),
      },
    };
  } finally {
    await admin.end();
  }
}

/** Where txkit's time per transaction goes against the native API's, phase by phase (see Phases). */
function phaseText(mine: SqlResult, native: SqlResult): string {
  const part = (name: keyof Phases, what: string): string =>
    `${what} ${fmt(mine.phasesUs[name], 1)} µs (native ${fmt(native.phasesUs[name], 1)}, ${phaseDelta(mine, native, name)})`;
  return `Median phases: ${part('begin', 'call to callback')}, ${part('callback', 'callback')}, ${part('end', 'return to settled')}.`;
}

/** `+9.8 µs before the callback, +4.8 in it, +4.4 after it`. */
function phaseDeltas(mine: SqlResult, native: SqlResult): string {
  const d = (name: keyof Phases): string => phaseDelta(mine, native, name);
  return `${d('begin')} µs before the callback, ${d('callback')} in it, ${d('end')} after it`;
}

/** `+9.8`: what txkit adds to one phase, in µs. */
function phaseDelta(mine: SqlResult, native: SqlResult, name: keyof Phases): string {
  const n = mine.phasesUs[name] - native.phasesUs[name];
  return `${n >= 0 ? '+' : '-'}${fmt(Math.abs(n), 1)}`;
}

/** The median kilobytes `r` allocates per transaction (measured when the variants take turns by transaction). */
function kilobytes(r: InterleavedResult): string {
  return r.roundsAllocatedBytes === undefined ? 'n/a' : fmt(median(r.roundsAllocatedBytes) / 1024, 1);
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
