/**
 * A zombie pipeline worker: a worker process stops itself with SIGSTOP in
 * the middle of a transaction (locks held), the server ends its session once
 * it has sat idle in transaction past idle_in_transaction_session_timeout
 * (its session timeout), a successor takes the partitions over and finishes
 * them, then the zombie gets SIGCONT. Every write it attempts from then on
 * must be rejected by the inbox compare-and-set (InboxFencedError), and the
 * output must hold every input exactly once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { knexTransactions } from '../../src/adapters/sql/index.js';
import { pipeline, sqlOutboxStore } from '../../src/outbox/index.js';
import { required } from '../support/services.js';
import { reportScenario, tally, waitUntil } from './support/fault-report.js';
import { allInputIds, createEffectsTable, effectsHandler, generatedSource, readEffects } from './support/pipeline-fixture.js';
import { findPostgresBinaries, startPrivatePostgres } from './support/private-postgres.js';
import type { PrivatePostgres } from './support/private-postgres.js';
import { processState } from '../support/process-state.js';

const WORKER = fileURLToPath(new URL('./support/pipeline-worker.ts', import.meta.url));
const binaries = findPostgresBinaries();
const unavailable = 'reason' in binaries ? binaries.reason : process.platform !== 'linux' ? 'SIGSTOP and /proc are needed' : undefined;
if (unavailable !== undefined) {
  if (required().has('postgres')) throw new Error(`postgres is required but a private cluster cannot be built: ${unavailable}`);
  console.warn(`[txkit tests] skipping the zombie pipeline scenario: ${unavailable}`);
}

const PARTITIONS = 3;
const PER_PARTITION = 400;
const SESSION_TIMEOUT_MS = 1_000;

describe.skipIf(unavailable !== undefined)('a zombie pipeline worker is fenced after a successor takes over', () => {
  let server: PrivatePostgres;
  let db: Knex;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    server = await startPrivatePostgres({ idle_in_transaction_session_timeout: `${SESSION_TIMEOUT_MS}ms` });
    db = knexFactory({ client: 'pg', connection: server.url, pool: { min: 0, max: 6 }, log: { warn: () => undefined } });
  });

  afterAll(async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
    await db?.destroy();
    await server?.destroy();
  });

  it('every write of the resumed zombie is rejected; the output holds each input exactly once', async () => {
    const prefix = 'zombie_';
    const consumer = 'zombie-test';
    const store = sqlOutboxStore(db, { tablePrefix: prefix });
    await store.migrate();
    await createEffectsTable(db, `${prefix}effects`);
    const total = PARTITIONS * PER_PARTITION;

    const events = { committed: 0, attemptsAfterResume: 0, fenced: new Set<number>(), rejected: 0, errors: [] as string[] };
    const proc = spawn(process.execPath, ['--import', 'tsx', WORKER], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: {
        ...process.env,
        WORKER_DB_URL: server.url,
        WORKER_PREFIX: prefix,
        WORKER_PARTITIONS: String(PARTITIONS),
        WORKER_PER_PARTITION: String(PER_PARTITION),
        WORKER_CONSUMER: consumer,
        WORKER_NAME: 'zombie',
      },
    });
    child = proc;
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.on('message', (m: { type?: string; partition?: number; name?: string; message?: string }) => {
      if (m.type === 'committed') events.committed += 1;
      if (m.type === 'attempt') events.attemptsAfterResume += 1;
      if (m.type === 'fenced') {
        events.rejected += 1;
        events.fenced.add(m.partition as number);
      }
      if (m.type === 'error') events.errors.push(`${m.name}: ${m.message}`);
    });

    await waitUntil('the worker to commit a fifth of the input', () => events.committed >= total / 5, 60_000);
    proc.send({ type: 'freeze' });
    await waitUntil('the worker to be stopped by SIGSTOP', () => processState(proc.pid as number) === 'T', 10_000);
    const committedBeforeFreeze = events.committed;

    // The successor: same consumer name, so it takes over the stored positions.
    const successor = pipeline({
      consumer,
      source: generatedSource('input', PARTITIONS, PER_PARTITION),
      db: knexTransactions(db, { verifyCommit: true, retry: { initialDelayMs: 1, maxDelayMs: 20 } }),
      store,
      handler: effectsHandler(`${prefix}effects`, 'successor'),
      batchSize: 10,
    });
    const takeoverStarted = Date.now();
    const stats = await successor.runUntilIdle();
    const takeoverMs = Date.now() - takeoverStarted;
    assert.equal(stats.fenced.length, 0, 'the successor owns every partition');
    assert.ok(processState(proc.pid as number) === 'T', 'the zombie stayed frozen during the takeover');

    proc.kill('SIGCONT');
    await waitUntil(
      `the resumed zombie to be fenced off all ${PARTITIONS} partitions`,
      () => events.fenced.size === PARTITIONS || proc.exitCode !== null,
      30_000,
    );
    proc.send({ type: 'stop' });
    assert.equal(await exited, 0, 'the zombie stopped cleanly');
    child = undefined;

    const expected = allInputIds(PARTITIONS, PER_PARTITION);
    const { state, outbox } = await readEffects(db, `${prefix}effects`, `${prefix}outbox`);
    const s = tally(expected, state);
    const o = tally(expected, outbox);
    // Transaction ids grow: a zombie row newer than the successor's first one was written after the takeover.
    const rows = (await db.raw(
      `select count(*) as n from ${prefix}effects where worker = 'zombie' and xid > (select min(xid) from ${prefix}effects where worker = 'successor')`,
    )) as { rows: { n: string }[] };
    const zombieWritesAfterTakeover = Number(rows.rows[0]?.n);
    await store.close();

    assert.deepEqual(s, { duplicates: 0, lost: 0, unexpected: 0 }, 'state rows');
    assert.deepEqual(o, { duplicates: 0, lost: 0, unexpected: 0 }, 'outbox messages');
    assert.deepEqual([...events.fenced].sort(), Array.from({ length: PARTITIONS }, (_, p) => p), 'fenced off every partition');
    assert.equal(events.rejected, PARTITIONS, 'one rejected write per partition, after which the zombie stops writing it');
    assert.ok(events.attemptsAfterResume >= 1, 'the zombie did try to write after it resumed');
    assert.equal(zombieWritesAfterTakeover, 0, 'no zombie write committed after the takeover');
    reportScenario({
      scenario: 'zombie-pipeline-worker',
      messages: total,
      faults: 1,
      duplicates: s.duplicates + o.duplicates,
      lost: s.lost + o.lost,
      committedBeforeFreeze,
      successorProcessed: stats.processed,
      zombieAttemptsAfterResume: events.attemptsAfterResume,
      rejectedWrites: events.rejected,
      zombieWritesAfterTakeover,
      zombieOtherErrors: events.errors.length,
      takeoverMs,
    });
  }, 120_000);
});
