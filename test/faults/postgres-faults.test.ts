/**
 * Postgres faults on a private cluster (never the machine's shared one): a
 * COMMIT stalled in either direction until the connection is reset, COMMITs
 * cut under a running pipeline, and an immediate shutdown (a crash) of the
 * server in the middle of a pipeline run. Each ends with every input
 * processed exactly once in the database state and in the outbox.
 */
import assert from 'node:assert/strict';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import pg from 'pg';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { knexTransactions, pgTransactions } from '../../src/adapters/sql/index.js';
import { UnknownCommitResultError } from '../../src/core/errors.js';
import { pipeline, sqlOutboxStore } from '../../src/outbox/index.js';
import { rejection } from '../../src/testing/index.js';
import { required } from '../support/services.js';
import { FaultProxy, postgresCommit } from './support/fault-proxy.js';
import type { Direction, FaultRule } from './support/fault-proxy.js';
import { reportScenario, tally, waitUntil } from './support/fault-report.js';
import { allInputIds, createEffectsTable, effectsHandler, generatedSource, readEffects } from './support/pipeline-fixture.js';
import { findPostgresBinaries, startPrivatePostgres } from './support/private-postgres.js';
import type { PrivatePostgres } from './support/private-postgres.js';

const binaries = findPostgresBinaries();
const unavailable = 'reason' in binaries ? binaries.reason : undefined;
if (unavailable !== undefined) {
  if (required().has('postgres')) throw new Error(`postgres is required but a private cluster cannot be built: ${unavailable}`);
  console.warn(`[txkit tests] skipping the Postgres fault scenarios: ${unavailable}`);
}

const FAST = { initialDelayMs: 1, maxDelayMs: 20 } as const;
// knex warns about every connection a fault breaks; those are these tests' point.
const QUIET = { warn: () => undefined, error: () => undefined };

/** A CommandComplete ('C') answering COMMIT: what the server sends once the commit is durable. */
const commitCompleted = (frame: Buffer): boolean => frame[0] === 0x43 && frame.subarray(5, frame.length - 1).toString('utf8') === 'COMMIT';

describe.skipIf(unavailable !== undefined)('postgres faults (private cluster)', () => {
  let server: PrivatePostgres;
  let admin: pg.Pool;
  let proxy: FaultProxy;
  let proxiedUrl: string;

  beforeAll(async () => {
    server = await startPrivatePostgres();
    admin = new pg.Pool({ connectionString: server.url, max: 2 });
    admin.on('error', () => undefined); // idle clients die with the crash test's server
    proxy = new FaultProxy({ target: { host: '127.0.0.1', port: server.port }, framing: 'postgres' });
    const { port } = await proxy.start();
    proxiedUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  });

  afterAll(async () => {
    await proxy?.close();
    await admin?.end();
    await server?.destroy();
  });

  async function count(table: string, round: number): Promise<number> {
    const { rows } = await admin.query<{ n: string }>(`select count(*) as n from ${table} where round = $1`, [round]);
    return Number(rows[0]?.n);
  }

  it('a COMMIT stalled in either direction until the connection resets: verifyCommit resolves it, each row exactly once', async () => {
    const ROUNDS = 20;
    const table = 'stalled_commit';
    await admin.query(`create table ${table} (round int not null, attempt int not null)`);
    const pool = new pg.Pool({ connectionString: proxiedUrl, max: 2 });
    pool.on('error', () => undefined);
    const ctx = pgTransactions(pool, { verifyCommit: true, retry: FAST });
    const attempts: number[] = [];
    try {
      for (let round = 0; round < ROUNDS; round++) {
        // Even rounds: the COMMIT never reaches the server. Odd rounds: it commits and the answer is held.
        const direction: Direction = round % 2 === 0 ? 'to-server' : 'to-client';
        const rule = proxy.addRule({ direction, match: direction === 'to-server' ? postgresCommit : commitCompleted, action: { kind: 'stall' } });
        const run = ctx.withTransaction(async (tx) => {
          await tx.handle.query(`insert into ${table} (round, attempt) values ($1, $2)`, [round, tx.attempt]);
          return tx.attempt;
        });
        await within(rule.hit, 10_000, `round ${round}: the COMMIT to stall`);
        // The stalled connection is reset, as a peer or middlebox giving up on it would.
        proxy.cut(rule.connections[0] as number);
        attempts.push(await run);
        assert.equal(await count(table, round), 1, `round ${round}: exactly one row`);
      }
    } finally {
      await ctx.close();
      await pool.end();
    }
    // A COMMIT the server never saw resolves as aborted and the unit runs again; one it applied resolves as committed.
    const reruns = attempts.filter((a, round) => round % 2 === 0 && a === 2).length;
    const resolvedCommitted = attempts.filter((a, round) => round % 2 === 1 && a === 1).length;
    assert.equal(reruns, ROUNDS / 2, `dropped COMMITs rerun once each: attempts ${attempts.join(',')}`);
    assert.equal(resolvedCommitted, ROUNDS / 2, `applied COMMITs resolve as committed: attempts ${attempts.join(',')}`);
    const { rows } = await admin.query<{ round: number; n: string }>(`select round, count(*) as n from ${table} group by round order by round`);
    const t = tally(
      Array.from({ length: ROUNDS }, (_, r) => String(r)),
      rows.flatMap((r) => Array.from({ length: Number(r.n) }, () => String(r.round))),
    );
    assert.deepEqual([t.duplicates, t.lost], [0, 0]);
    reportScenario({ scenario: 'postgres-commit-stall', messages: ROUNDS, faults: ROUNDS, duplicates: t.duplicates, lost: t.lost, reruns, resolvedCommitted });
  }, 60_000);

  it('without verifyCommit a stalled-then-reset COMMIT is reported as UnknownCommitResultError and never rerun', async () => {
    const table = 'stalled_commit_plain';
    await admin.query(`create table ${table} (round int not null, attempt int not null)`);
    const pool = new pg.Pool({ connectionString: proxiedUrl, max: 2 });
    pool.on('error', () => undefined);
    const ctx = pgTransactions(pool, { retry: FAST });
    let faults = 0;
    try {
      for (const [round, direction] of [[0, 'to-server'], [1, 'to-client']] as const) {
        const rule: FaultRule = proxy.addRule({ direction, match: direction === 'to-server' ? postgresCommit : commitCompleted, action: { kind: 'stall' } });
        let runs = 0;
        const run = ctx.withTransaction(async (tx) => {
          runs += 1;
          await tx.handle.query(`insert into ${table} (round, attempt) values ($1, $2)`, [round, tx.attempt]);
        });
        await within(rule.hit, 10_000, `round ${round}: the COMMIT to stall`);
        proxy.cut(rule.connections[0] as number);
        faults += 1;
        const err = await rejection(run);
        assert.ok(err instanceof UnknownCommitResultError, `${direction}: got ${String(err)}`);
        assert.equal(err.backend, 'postgres');
        assert.equal(runs, 1, 'an unknown outcome never reruns the unit');
        // The truth the caller was told it cannot know: applied only if the COMMIT reached the server.
        const expected = direction === 'to-client' ? 1 : 0;
        await waitUntil(`the ${direction} round's outcome to settle on the server`, async () => (await count(table, round)) === expected, 10_000);
      }
    } finally {
      await ctx.close();
      await pool.end();
    }
    reportScenario({ scenario: 'postgres-commit-stall-unverified', messages: 2, faults, duplicates: 0, lost: 0, reported: 'UnknownCommitResultError' });
  }, 60_000);

  it('a pipeline whose COMMITs are cut every few transactions processes every input exactly once', async () => {
    const PARTITIONS = 3;
    const PER_PARTITION = 200;
    const prefix = 'cut_';
    const db: Knex = knexFactory({ client: 'pg', connection: proxiedUrl, pool: { min: 0, max: 6 }, log: QUIET });
    const store = sqlOutboxStore(db, { tablePrefix: prefix });
    await store.migrate();
    await createEffectsTable(db, `${prefix}effects`);
    let commits = 0;
    // Every 7th COMMIT is cut after it reaches the server, every 7th (shifted) before: both outcomes occur.
    const delivered = proxy.addRule({ direction: 'to-server', match: (f) => postgresCommit(f) && commits++ % 7 === 3, action: { kind: 'cut', forward: true }, times: 1_000 });
    const dropped = proxy.addRule({ direction: 'to-server', match: (f) => postgresCommit(f) && commits % 7 === 6, action: { kind: 'cut' }, times: 1_000 });
    const errors: unknown[] = [];
    const worker = pipeline({
      consumer: 'cut-test',
      source: generatedSource('input', PARTITIONS, PER_PARTITION),
      db: knexTransactions(db, { verifyCommit: true, retry: FAST }),
      store,
      handler: effectsHandler(`${prefix}effects`, 'w1'),
      batchSize: 10,
      pollIntervalMs: 50,
      onError: (err) => void errors.push(err),
    });
    try {
      worker.start();
      await waitUntil('every partition to be processed to its end', () => positionsAt(admin, `${prefix}inbox`, 'cut-test', PARTITIONS, PER_PARTITION), 120_000);
      await worker.stop();
    } finally {
      delivered.retire();
      dropped.retire();
      await worker.stop();
      await store.close();
      await db.destroy();
    }
    const expected = allInputIds(PARTITIONS, PER_PARTITION);
    const { state, outbox } = await readEffects(knexOf(server.url), `${prefix}effects`, `${prefix}outbox`);
    const s = tally(expected, state);
    const o = tally(expected, outbox);
    assert.deepEqual(s, { duplicates: 0, lost: 0, unexpected: 0 }, 'state rows');
    assert.deepEqual(o, { duplicates: 0, lost: 0, unexpected: 0 }, 'outbox messages');
    assert.equal(worker.stats.fenced.length, 0, 'resolving its own unknown commits never looks like being fenced');
    const faults = delivered.hits + dropped.hits;
    assert.ok(delivered.hits >= 3 && dropped.hits >= 3, `both cut kinds happened: ${delivered.hits} after, ${dropped.hits} before the server`);
    reportScenario({
      scenario: 'postgres-commit-cut-pipeline',
      messages: expected.length,
      faults,
      duplicates: s.duplicates + o.duplicates,
      lost: s.lost + o.lost,
      cutAfterServer: delivered.hits,
      cutBeforeServer: dropped.hits,
      survivedErrors: errors.length,
    });
  }, 120_000);

  it('an immediate shutdown of the server mid-run: after recovery every input is processed exactly once', async () => {
    const PARTITIONS = 3;
    const PER_PARTITION = 500;
    const prefix = 'crash_';
    const db: Knex = knexFactory({ client: 'pg', connection: server.url, pool: { min: 0, max: 6 }, log: QUIET });
    const store = sqlOutboxStore(db, { tablePrefix: prefix });
    await store.migrate();
    await createEffectsTable(db, `${prefix}effects`);
    const errors: unknown[] = [];
    const handle = effectsHandler(`${prefix}effects`, 'w1');
    let rerunsAfterCrash = 0;
    const worker = pipeline({
      consumer: 'crash-test',
      source: generatedSource('input', PARTITIONS, PER_PARTITION),
      db: knexTransactions(db, { verifyCommit: true, retry: { ...FAST, deadlineMs: 30_000 } }),
      store,
      handler: async (m, context) => {
        if (context.tx.attempt > 1) rerunsAfterCrash += 1;
        await handle(m, context);
      },
      batchSize: 10,
      pollIntervalMs: 100,
      onError: (err) => void errors.push(err),
    });
    let processedAtCrash = 0;
    try {
      worker.start();
      await waitUntil('a third of the input to be processed', () => worker.stats.processed >= (PARTITIONS * PER_PARTITION) / 3, 60_000);
      processedAtCrash = worker.stats.processed;
      await server.crash();
      await server.start();
      await waitUntil('every partition to be processed to its end after recovery', () => positionsAt(admin, `${prefix}inbox`, 'crash-test', PARTITIONS, PER_PARTITION), 120_000);
      await worker.stop();
    } finally {
      await worker.stop();
      await store.close();
      await db.destroy();
    }
    const expected = allInputIds(PARTITIONS, PER_PARTITION);
    const { state, outbox } = await readEffects(knexOf(server.url), `${prefix}effects`, `${prefix}outbox`);
    const s = tally(expected, state);
    const o = tally(expected, outbox);
    assert.deepEqual(s, { duplicates: 0, lost: 0, unexpected: 0 }, 'state rows');
    assert.deepEqual(o, { duplicates: 0, lost: 0, unexpected: 0 }, 'outbox messages');
    assert.equal(worker.stats.fenced.length, 0, 'the crash never made the worker give a partition up');
    assert.ok(processedAtCrash < expected.length, 'the crash happened mid-run');
    // The crash broke transactions in flight: they were rerun (or reported and retried by the loop).
    assert.ok(rerunsAfterCrash + errors.length > 0, 'the worker saw the crash');
    assert.ok(worker.stats.processed > processedAtCrash, 'the worker went on after recovery');
    reportScenario({
      scenario: 'postgres-immediate-shutdown-pipeline',
      messages: expected.length,
      faults: 1,
      duplicates: s.duplicates + o.duplicates,
      lost: s.lost + o.lost,
      processedAtCrash,
      rerunsAfterCrash,
      survivedErrors: errors.length,
    });
  }, 120_000);
});

const knexes: Knex[] = [];
afterAll(async () => {
  for (const k of knexes) await k.destroy();
});

/** A direct (unproxied) knex for reading results. */
function knexOf(url: string): Knex {
  const k = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
  knexes.push(k);
  return k;
}

/** Whether the consumer's stored position of every partition has reached `end`. */
async function positionsAt(admin: pg.Pool, inbox: string, consumer: string, partitions: number, end: number): Promise<boolean> {
  try {
    const { rows } = await admin.query<{ n: string }>(`select count(*) as n from ${inbox} where consumer = $1 and next_offset = $2`, [consumer, end]);
    return Number(rows[0]?.n) === partitions;
  } catch {
    return false; // the server is down or restarting
  }
}

async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
