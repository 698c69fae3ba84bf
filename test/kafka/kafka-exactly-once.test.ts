import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { service } from '../support/services.js';
import { TopicReader, createTopics, fillCopierInput, makeKafka, uniqueName, waitUntil } from './kafka-support.js';
import type { ReadRecord } from './kafka-support.js';

const brokers = service('kafka');
const WORKER = fileURLToPath(new URL('./copier-worker.ts', import.meta.url));
const TOTAL = 20_000;
const PARTITIONS = 3;
const KILLS = 3;

interface Worker {
  child: ChildProcess;
  /** Messages this worker committed, as it reported them. */
  committed: number;
  /** It said 'started': its SIGTERM handler is installed and it joined the group. */
  started?: boolean;
  /** It wrote a batch's output and waits, its transaction open (after a 'hold' request). */
  holding: boolean;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: string[];
}

/** The input set: value `p:i` is the i-th message of partition p. */
const expected = (p: number): string[] =>
  Array.from({ length: Math.floor(TOTAL / PARTITIONS) + (p < TOTAL % PARTITIONS ? 1 : 0) }, (_, i) => `${p}:${i}`);

/** Exactly the input, no duplicates, and partition p holds p's messages in input order. */
function assertExactCopy(records: ReadRecord[], what: string): void {
  assert.equal(records.length, TOTAL, `${what}: ${records.length} records, expected ${TOTAL}`);
  assert.equal(new Set(records.map((r) => r.value)).size, TOTAL, `${what}: duplicates`);
  for (let p = 0; p < PARTITIONS; p++) {
    const values = records.filter((r) => r.partition === p).map((r) => r.value);
    assert.deepEqual(values, expected(p), `${what}: partition ${p} differs from the input (missing, duplicated or reordered)`);
  }
}

describe.skipIf(brokers === undefined)('kafka exactly-once consume-transform-produce', () => {
  const kafka = makeKafka(brokers ?? '', 'txkit-copier-test');
  const admin = kafka.admin();
  const workers: Worker[] = [];
  const readers: TopicReader[] = [];
  beforeAll(() => admin.connect());
  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    for (const r of readers) await r.close().catch(() => undefined);
    await admin.disconnect();
  });

  // The worker's producer runs on kafkajs or on @platformatic/kafka, its consumer on kafkajs or (with the
  // @platformatic/kafka producer) on @platformatic/kafka, whose offsets are committed with the group generation.
  const variants = [
    { client: 'kafkajs', consumer: 'kafkajs', label: 'producer on kafkajs' },
    { client: 'platformatic', consumer: 'kafkajs', label: 'producer on platformatic' },
    { client: 'platformatic', consumer: 'platformatic', label: 'consumer and producer on platformatic' },
  ] as const;
  for (const { client, consumer, label } of variants) it(
    `copies ${TOTAL} messages exactly once while the worker is SIGKILLed ${KILLS} times (${label})`,
    async () => {
      const input = uniqueName('copier-in');
      const output = uniqueName('copier-out');
      const group = uniqueName('copier-group');
      const transactionalId = uniqueName('copier');
      // This test's workers (`workers` holds every test's, for the clean-up).
      const runs: Worker[] = [];
      await createTopics(admin, [input, output], PARTITIONS);

      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      for (let p = 0; p < PARTITIONS; p++) {
        const values = expected(p);
        // Small record batches, so the worker's fetches (and transactions) stay small.
        for (let i = 0; i < values.length; i += 25) {
          await producer.send({ topic: input, messages: values.slice(i, i + 25).map((value) => ({ key: value, value, partition: p })) });
        }
      }
      await producer.disconnect();

      // Reads the output the whole time, as a downstream service would.
      const concurrent = await TopicReader.open(kafka, output);
      readers.push(concurrent);

      const start = async (): Promise<Worker> => {
        const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
          stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
          env: {
            ...process.env,
            COPIER_BROKERS: brokers ?? '',
            COPIER_INPUT: input,
            COPIER_OUTPUT: output,
            COPIER_GROUP: group,
            COPIER_TRANSACTIONAL_ID: transactionalId,
            COPIER_CLIENT: client,
            COPIER_CONSUMER: consumer,
          },
        });
        const w: Worker = {
          child,
          committed: 0,
          holding: false,
          stderr: [],
          exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
        };
        child.stderr?.on('data', (d: Buffer) => w.stderr.push(d.toString()));
        child.on('message', (m: { type?: string; count?: number }) => {
          if (m.type === 'started') w.started = true;
          if (m.type === 'committed') w.committed += m.count ?? 0;
          if (m.type === 'holding') w.holding = true;
        });
        workers.push(w);
        runs.push(w);
        return w;
      };
      const alive = (w: Worker): boolean => w.child.exitCode === null && w.child.signalCode === null;

      // Three kinds of kill point, in random order: inside a transaction (output written, commit not sent),
      // right after a commit, and at a random moment. Each after 20-25% of the input, or half of what is left when
      // less is. The first two the worker keeps itself ('hold-at': it holds once it committed that many records),
      // so it stops within one batch of the point; at a random moment the test kills it once it has seen the count,
      // and the worker commits on until the SIGKILL lands (thousands of records on a fast machine, more when the
      // test process lags behind the worker's reports).
      const phases = (['mid-transaction', 'after-commit', 'random-moment'] as const)
        .map((phase) => ({ phase, r: Math.random() }))
        .sort((a, b) => a.r - b.r)
        .map((x) => x.phase);
      const kills: { run: number; phase: string; killAt: number; committedByRun: number; visibleDownstream: number }[] = [];
      for (let run = 1; run <= KILLS; run++) {
        const phase = phases[run - 1] as (typeof phases)[number];
        const w = await start();
        const left = TOTAL - concurrent.records.length;
        const killAt = Math.min(Math.ceil(TOTAL * 0.2) + Math.floor(Math.random() * TOTAL * 0.05), Math.floor(left / 2));
        let ranOut = false;
        if (phase === 'random-moment') {
          await waitUntil(() => w.committed >= killAt || !alive(w), 120_000, `worker run ${run} to commit ${killAt} messages`);
          assert.ok(alive(w), `worker run ${run} exited on its own: ${w.stderr.join('')}`);
          // Not a synchronisation: a random offset so this kill lands in whatever phase the worker is in.
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 40));
        } else {
          w.child.send({ type: 'hold-at', count: killAt, where: phase });
          // A worker that copied the rest of the input before reaching its kill point has no next batch to hold in:
          // then it is killed idle, and the copy must still be exact.
          await waitUntil(() => w.holding || !alive(w) || concurrent.records.length >= TOTAL, 120_000, `worker run ${run} to hold at ${killAt} (${phase})`);
          assert.ok(alive(w), `worker run ${run} exited on its own: ${w.stderr.join('')}`);
          ranOut = !w.holding;
        }
        w.child.kill('SIGKILL');
        const { signal } = await w.exited;
        assert.equal(signal, 'SIGKILL');
        kills.push({ run, phase: ranOut ? `${phase} (input ran out first)` : phase, killAt, committedByRun: w.committed, visibleDownstream: concurrent.records.length });
      }

      const last = await start();
      await waitUntil(() => concurrent.records.length >= TOTAL || !alive(last), 180_000, 'the whole input to be copied');
      assert.ok(alive(last), `the last worker exited on its own: ${last.stderr.join('')}`);
      // Every input offset consumed and committed with the transactions (visible shortly after the commit).
      const ends = await admin.fetchTopicOffsets(input);
      await waitUntil(
        async () => {
          const [t] = await admin.fetchOffsets({ groupId: group, topics: [input] });
          return ends.every((e) => t?.partitions.find((p) => p.partition === e.partition)?.offset === e.high);
        },
        30_000,
        'the group offsets to reach the end of the input',
      );
      // The killed workers may have copied everything between them (each commits on past its kill point until the
      // SIGKILL lands): then the copy is complete before the last worker has even loaded, and a SIGTERM then would
      // meet no handler. It is stopped once it says it started.
      await waitUntil(() => last.started === true || !alive(last), 60_000, 'the last worker to start');
      const aliveAtStop = alive(last);
      last.child.kill('SIGTERM');
      const stopped = await last.exited;
      assert.equal(
        stopped.code,
        0,
        `the last worker (alive when SIGTERM was sent: ${aliveAtStop}) ended with code ${stopped.code}, signal ${stopped.signal}; stderr: ${last.stderr.join('')}`,
      );

      await concurrent.caughtUp();
      assertExactCopy(concurrent.records, 'the concurrent read_committed consumer');
      const final = await (await TopicReader.open(kafka, output)).caughtUp();
      readers.push(final);
      assertExactCopy(final.records, 'the final output');
      const uncommitted = await (await TopicReader.open(kafka, output, { readUncommitted: true })).caughtUp();
      readers.push(uncommitted);

      const committedTotal = runs.reduce((n, w) => n + w.committed, 0);
      console.log(
        `[copier, ${label}] kills: ${kills.map((k) => `run ${k.run} ${k.phase} at ${k.killAt}, after ${k.committedByRun} committed (downstream saw ${k.visibleDownstream})`).join('; ')}; ` +
          `committed by runs: ${runs.map((w) => w.committed).join('+')}=${committedTotal}; ` +
          `output records incl. aborted (read_uncommitted): ${uncommitted.records.length}`,
      );
      for (const k of kills) {
        assert.ok(k.committedByRun >= k.killAt, `run ${k.run} was killed before its kill point ${k.killAt}`);
        assert.ok(k.killAt >= TOTAL * 0.05, `run ${k.run} had only ${k.killAt} messages before its kill point: the earlier runs left too little`);
      }
      // Unless the worker copied the rest of the input before it could hold (then it was killed idle).
      if (kills.some((k) => k.phase === 'mid-transaction')) {
        assert.ok(uncommitted.records.length > TOTAL, 'the mid-transaction kill left aborted output in the log, which read_committed never showed');
      }
      // A SIGKILL right after a commit can swallow that commit's report, so the reports can only undercount;
      // the exact-copy checks on the output above are what prove exactly-once.
      assert.ok(committedTotal <= TOTAL, `the workers reported ${committedTotal} commits for ${TOTAL} messages`);
    },
    300_000,
  );

  it('three copiers of one group with a producer per input partition, SIGKILLed and restarted at random moments while partitions move: an exact copy', async () => {
    const total = 12_000;
    const partitions = 6;
    const input = uniqueName('group-in');
    const output = uniqueName('group-out');
    await createTopics(admin, [input, output], partitions);
    const want = await fillCopierInput(kafka, input, total, partitions);
    const reader = await TopicReader.open(kafka, output);
    readers.push(reader);
    const env = {
      ...process.env,
      COPIER_BROKERS: brokers ?? '',
      COPIER_INPUT: input,
      COPIER_OUTPUT: output,
      COPIER_GROUP: uniqueName('group'),
      COPIER_TRANSACTIONAL_ID_PREFIX: uniqueName('group-copier'),
    };
    const start = (): Worker => {
      const child = spawn(process.execPath, ['--import', 'tsx', WORKER], { stdio: ['ignore', 'inherit', 'pipe', 'ipc'], env });
      const w: Worker = { child, committed: 0, holding: false, stderr: [], exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))) };
      child.stderr?.on('data', (d: Buffer) => w.stderr.push(d.toString()));
      child.on('message', (m: { type?: string; count?: number }) => {
        if (m.type === 'committed') w.committed += m.count ?? 0;
      });
      workers.push(w);
      return w;
    };
    const copiers = [start(), start(), start()];
    let kills = 0;
    // Bounded: at most 6 kills, each after some progress; a killed copier is replaced at once, so partitions keep moving.
    for (let k = 0; k < 6 && reader.records.length < total * 0.75; k++) {
      const from = reader.records.length;
      const step = 400 + Math.floor(Math.random() * 1_200);
      await waitUntil(() => reader.records.length >= Math.min(total, from + step), 120_000, `copy progress past ${from + step}`);
      const victim = Math.floor(Math.random() * copiers.length);
      const w = copiers[victim] as Worker;
      w.child.kill('SIGKILL');
      await w.exited;
      kills += 1;
      copiers[victim] = start();
    }
    await waitUntil(() => reader.records.length >= total, 240_000, `the whole input copied (have ${reader.records.length})`);
    for (const w of copiers) {
      w.child.kill('SIGTERM');
      await w.exited;
    }
    await reader.caughtUp();
    assert.ok(kills >= 3, `at least 3 kills, got ${kills}`);
    assert.equal(reader.records.length, total, 'nothing more arrived after the copy ended');
    assert.equal(new Set(reader.records.map((r) => r.value)).size, total, 'no duplicates');
    for (let p = 0; p < partitions; p++) {
      assert.deepEqual(
        reader.records.filter((r) => r.partition === p).map((r) => r.value),
        want.filter((v) => v.startsWith(`${p}:`)),
        `partition ${p} in input order`,
      );
    }
  }, 480_000);
});
