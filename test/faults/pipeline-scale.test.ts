/**
 * Three pipeline worker processes of one consumer share six source
 * partitions through leases in Postgres while they are SIGKILLed and
 * restarted at random moments, so partitions keep moving between them. The
 * state table (no unique key) and the outbox, read by the test, must hold
 * every input exactly once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { sqlOutboxStore } from '../../src/outbox/index.js';
import { service } from '../support/services.js';
import { reportScenario, tally, waitUntil } from './support/fault-report.js';
import { allInputIds, createEffectsTable, readEffects } from './support/pipeline-fixture.js';

const WORKER = fileURLToPath(new URL('./support/pipeline-worker.ts', import.meta.url));
const pg = service('postgres');
const PARTITIONS = 6;
const PER_PARTITION = 1_000;

interface Worker {
  proc: ChildProcess;
  committed: number;
  exited: Promise<unknown>;
}

describe.skipIf(pg === undefined)('pipeline workers sharing partitions through leases, killed and restarted', () => {
  let db: Knex;
  const prefix = `ps${process.pid}_${Date.now().toString(36)}_`;
  const workers: Worker[] = [];
  beforeAll(() => {
    db = knexFactory({ client: 'pg', connection: pg as string, pool: { min: 0, max: 6 } });
  });
  afterAll(async () => {
    for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    for (const t of [...sqlOutboxStore(db, { tablePrefix: prefix }).tableNames, `${prefix}effects`]) await db.schema.dropTableIfExists(t);
    await db.destroy();
  });

  it('three workers over six partitions, SIGKILLed and restarted at random moments: every input once in the state and the outbox', async () => {
    const store = sqlOutboxStore(db, { tablePrefix: prefix });
    await store.migrate();
    await store.close();
    await createEffectsTable(db, `${prefix}effects`);
    const total = PARTITIONS * PER_PARTITION;
    const committed = (): number => workers.reduce((n, w) => n + w.committed, 0);
    let started = 0;
    const start = (): Worker => {
      const proc = spawn(process.execPath, ['--import', 'tsx', WORKER], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        env: {
          ...process.env,
          WORKER_DB_URL: pg as string,
          WORKER_PREFIX: prefix,
          WORKER_PARTITIONS: String(PARTITIONS),
          WORKER_PER_PARTITION: String(PER_PARTITION),
          WORKER_CONSUMER: 'scale-test',
          WORKER_NAME: `w${started++}`,
          WORKER_LEASE_TTL_MS: '1500',
        },
      });
      const w: Worker = { proc, committed: 0, exited: new Promise((resolve) => proc.once('exit', resolve)) };
      proc.on('message', (m: { type?: string }) => {
        if (m.type === 'committed') w.committed += 1;
      });
      workers.push(w);
      return w;
    };
    const running = [start(), start(), start()];
    let kills = 0;
    // Bounded: at most 8 kills, each after some progress; the killed worker is replaced at once.
    for (let k = 0; k < 8 && committed() < total * 0.75; k++) {
      const from = committed();
      const step = 200 + Math.floor(Math.random() * 600);
      await waitUntil(`progress past ${from + step} commits`, () => committed() >= Math.min(total, from + step), 120_000);
      const victim = Math.floor(Math.random() * running.length);
      const w = running[victim] as Worker;
      w.proc.kill('SIGKILL');
      await w.exited;
      kills += 1;
      running[victim] = start();
    }
    const done = async (): Promise<boolean> => {
      const { state } = await readEffects(db, `${prefix}effects`, `${prefix}outbox`);
      return new Set(state).size >= total;
    };
    await waitUntil('every input processed', done, 240_000);
    for (const w of running) {
      w.proc.send({ type: 'stop' });
      await w.exited;
    }
    const expected = allInputIds(PARTITIONS, PER_PARTITION);
    const { state, outbox } = await readEffects(db, `${prefix}effects`, `${prefix}outbox`);
    const s = tally(expected, state);
    const o = tally(expected, outbox);
    assert.ok(kills >= 3, `at least 3 kills, got ${kills}`);
    assert.deepEqual(s, { duplicates: 0, lost: 0, unexpected: 0 }, 'state rows');
    assert.deepEqual(o, { duplicates: 0, lost: 0, unexpected: 0 }, 'outbox messages');
    reportScenario({ scenario: 'pipeline-workers-leases-kills', messages: total, faults: kills, duplicates: s.duplicates + o.duplicates, lost: s.lost + o.lost, workers: started });
  }, 420_000);
});
