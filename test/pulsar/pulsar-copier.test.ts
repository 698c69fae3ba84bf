import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, it } from 'vitest';
import type { PulsarMessage } from '../../src/adapters/pulsar/index.js';
import { service } from '../support/services.js';
import { TopicReader, createPartitionedTopic, makeClient, uniqueName, uniqueTopic, waitUntil } from './pulsar-support.js';

const serviceUrl = service('pulsar');
const WORKER = fileURLToPath(new URL('./copier-worker.ts', import.meta.url));
const TOTAL = 10_000;
const PARTITIONS = 2;
const KILLS = 3;

interface Worker {
  child: ChildProcess;
  /** Messages this worker committed, as it reported them. */
  committed: number;
  started: boolean;
  holding: boolean;
  conflicts: number;
  /** Transactions or receives that failed and that the worker went on after. */
  failures: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: string[];
}

const inputValues = Array.from({ length: TOTAL }, (_, i) => `m-${i}`);

/** Exactly the input, each once. */
function assertExactCopy(records: readonly PulsarMessage[], what: string): void {
  const values = records.map((r) => r.value?.toString() ?? '<null>');
  assert.equal(values.length, TOTAL, `${what}: ${values.length} messages, expected ${TOTAL}`);
  assert.equal(new Set(values).size, TOTAL, `${what}: duplicates`);
  assert.deepEqual([...values].sort(), [...inputValues].sort(), `${what}: differs from the input`);
  for (const r of records) assert.equal(r.key, r.value?.toString(), `${what}: key and value travelled together`);
}

describe.skipIf(serviceUrl === undefined)('pulsar exactly-once consume-transform-produce across worker crashes', () => {
  const url = serviceUrl ?? '';
  const workers: Worker[] = [];
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    for (const close of closers.reverse()) await close().catch(() => undefined);
  });

  it(
    `copies ${TOTAL} messages exactly once through transactions while the worker is SIGKILLed ${KILLS} times`,
    async () => {
      const input = uniqueTopic('copier-in');
      const output = uniqueTopic('copier-out');
      const subscription = uniqueName('copier');
      await createPartitionedTopic(input, PARTITIONS);
      await createPartitionedTopic(output, PARTITIONS);

      const client = makeClient(url);
      closers.push(() => client.close());
      const producer = await client.createProducer({ topic: input });
      for (let i = 0; i < TOTAL; i += 500) {
        await producer.sendAll(inputValues.slice(i, i + 500).map((value) => ({ key: value, value })));
      }

      // Reads the output the whole time, as a downstream service would: committed messages only.
      const concurrent = await TopicReader.open(url, output);
      closers.push(() => concurrent.close());

      const start = (): Worker => {
        const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
          stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
          env: { ...process.env, COPIER_SERVICE_URL: url, COPIER_INPUT: input, COPIER_OUTPUT: output, COPIER_SUBSCRIPTION: subscription },
        });
        const w: Worker = {
          child,
          committed: 0,
          started: false,
          holding: false,
          conflicts: 0,
          failures: [],
          stderr: [],
          exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
        };
        child.stderr?.on('data', (d: Buffer) => w.stderr.push(d.toString()));
        child.on('message', (m: { type?: string; count?: number; error?: string }) => {
          if (m.type === 'failed') w.failures.push(m.error ?? '?');
          if (m.type === 'started') w.started = true;
          if (m.type === 'committed') w.committed += m.count ?? 0;
          if (m.type === 'holding') w.holding = true;
          if (m.type === 'conflict') w.conflicts += 1;
        });
        workers.push(w);
        return w;
      };
      const alive = (w: Worker): boolean => w.child.exitCode === null && w.child.signalCode === null;

      // Three kinds of kill point, in random order: inside a transaction (copies sent and
      // originals acknowledged, commit not sent), right after a commit, and at a random moment.
      // Each after at least 20% of the input, plus a random stretch.
      const phases = (['mid-transaction', 'after-commit', 'random-moment'] as const)
        .map((phase) => ({ phase, r: Math.random() }))
        .sort((a, b) => a.r - b.r)
        .map((x) => x.phase);
      const kills: { run: number; phase: string; committedByRun: number; visibleDownstream: number }[] = [];
      for (let run = 1; run <= KILLS; run++) {
        const phase = phases[run - 1] as (typeof phases)[number];
        const w = start();
        const killAt = Math.ceil(TOTAL * 0.2) + Math.floor(Math.random() * TOTAL * 0.05);
        await waitUntil(() => w.committed >= killAt || !alive(w), 120_000, `worker run ${run} to commit ${killAt} messages`);
        assert.ok(alive(w), `worker run ${run} exited on its own: ${w.stderr.join('')}`);
        if (phase === 'mid-transaction') {
          w.child.send({ type: 'hold' });
          await waitUntil(() => w.holding || !alive(w), 60_000, `worker run ${run} to hold inside a transaction`);
        } else if (phase === 'random-moment') {
          // Not a synchronisation: a random offset so this kill lands in whatever phase the worker is in.
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 40));
        }
        w.child.kill('SIGKILL');
        const { signal } = await w.exited;
        assert.equal(signal, 'SIGKILL');
        kills.push({ run, phase, committedByRun: w.committed, visibleDownstream: concurrent.records.length });
      }

      const last = start();
      await waitUntil(() => concurrent.records.length >= TOTAL || !alive(last), 180_000, 'the whole input to be copied');
      // The killed workers may have copied everything between them: then the last one is stopped only once it says
      // it started, so its SIGTERM handler is there to stop it cleanly.
      await waitUntil(() => last.started || !alive(last), 60_000, 'the last worker to start');
      assert.ok(alive(last), `the last worker exited on its own: ${last.stderr.join('')}`);
      last.child.kill('SIGTERM');
      assert.equal((await last.exited).code, 0, last.stderr.join(''));

      // Every original was acknowledged in a committed transaction: a new consumer of the
      // subscription gets only messages produced after now (one per partition).
      const drained = await client.subscribe({ topic: input, subscription, subscriptionType: 'Shared' });
      await Promise.all(Array.from({ length: PARTITIONS }, (_, partition) => producer.send({ value: `after-${partition}`, partition })));
      const firsts = [await drained.receive({ timeoutMs: 30_000 }), await drained.receive({ timeoutMs: 30_000 })];
      assert.deepEqual(firsts.map((m) => m.value?.toString()).sort(), ['after-0', 'after-1'], 'no original was left unacknowledged');
      await drained.close();

      await concurrent.caughtUp();
      assertExactCopy(concurrent.records, 'the concurrent reader');
      const final = await TopicReader.open(url, output);
      closers.push(() => final.close());
      assertExactCopy((await final.caughtUp()).records, 'a reader of the final output');

      const committedTotal = workers.reduce((n, w) => n + w.committed, 0);
      console.log(
        `[pulsar copier] kills: ${kills.map((k) => `run ${k.run} ${k.phase} after ${k.committedByRun} committed (downstream saw ${k.visibleDownstream})`).join('; ')}; ` +
          `committed by runs: ${workers.map((w) => w.committed).join('+')}=${committedTotal}; ` +
          `conflicts: ${workers.reduce((n, w) => n + w.conflicts, 0)}; ` +
          `failed transactions gone on from: ${workers.flatMap((w) => w.failures).join(' | ') || 'none'}`,
      );
      for (const k of kills) assert.ok(k.committedByRun >= TOTAL * 0.2);
      assert.ok(kills.some((k) => k.phase === 'mid-transaction'));
      // Workers report a commit after it happened, so a kill can swallow the report of the last one:
      // reports never exceed the input (nothing committed twice); the output above shows the rest.
      assert.ok(committedTotal <= TOTAL, `workers reported ${committedTotal} committed messages for ${TOTAL} inputs`);
    },
    300_000,
  );
});
