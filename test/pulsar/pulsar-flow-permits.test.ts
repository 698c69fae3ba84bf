// Flow permits after redelivery and aborted transactions, on the real broker, with
// batched input from the official Java client. A consumer that acknowledges in
// transactions and aborts some of them (or asks for redelivery instead of acknowledging)
// must receive every message, and the permits the broker holds for it must never exceed
// its receiver queue: after each batch the subscription's stats are read from the broker.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, it } from 'vitest';
import { pulsarTransactions } from '../../src/adapters/pulsar/index.js';
import type { PulsarConsumer, SubscriptionType } from '../../src/adapters/pulsar/index.js';
import { service } from '../support/services.js';
import { killWhen, startWorker, stopWorker } from '../support/worker-process.js';
import type { WorkerProcess } from '../support/worker-process.js';
import { consumeLoop, produceBatched, subscriptionView } from './flow-permits-support.js';
import { makeClient, uniqueName, uniqueTopic, waitUntil } from './pulsar-support.js';

const serviceUrl = service('pulsar');
const TYPES: SubscriptionType[] = ['Exclusive', 'Failover', 'Shared', 'Key_Shared'];
const TOTAL = 600;
const PER_ENTRY = 20;
const QUEUE = 50;
const WORKER = fileURLToPath(new URL('./flow-permits-worker.ts', import.meta.url));
const KILLS = 2;

/** Takes what the consumer has queued, so the broker's permits can be compared at rest. */
async function drainQueued(consumer: PulsarConsumer): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    try {
      await consumer.receive({ timeoutMs: 1 });
    } catch {
      return;
    }
  }
}

describe.skipIf(serviceUrl === undefined)('pulsar flow permits with redelivery and aborts (batched input from the Java client)', () => {
  const url = serviceUrl ?? '';
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  });

  for (const type of TYPES) {
    for (const mode of ['abort', 'redeliver'] as const) {
      const how = mode === 'abort' ? 'acknowledging in transactions and aborting every third' : 'asking for redelivery instead of acknowledging every third batch';
      it(`${type}: receives all ${TOTAL} messages ${how}, the broker's permits within the receiver queue`, async () => {
        const topic = uniqueTopic(`flow-${type.toLowerCase()}-${mode}`);
        const subscription = uniqueName('flow');
        const entries = await produceBatched(url, topic, TOTAL, PER_ENTRY);
        assert.ok(entries < TOTAL / 2, `the Java client batched its sends (${entries} entries for ${TOTAL} messages)`);

        const client = makeClient(url);
        closers.push(() => client.close());
        const context = pulsarTransactions({ client, transactionTimeoutMs: 30_000 });
        closers.push(() => context.close());
        const consumer = await client.subscribe({ topic, subscription, subscriptionType: type, initialPosition: 'earliest', receiverQueueSize: QUEUE });

        const committed = new Set<string>();
        let maxPermits = -Infinity;
        const seen: number[] = [];
        const { batches, rolledBack } = await consumeLoop({
          consumer,
          mode,
          context,
          every: 3,
          committed,
          done: () => committed.size >= TOTAL,
          idleMs: 20_000,
          onIdle: () => Promise.resolve(false),
          maxBatches: 10 * TOTAL,
          afterBatch: async () => {
            const view = await subscriptionView(topic, subscription);
            for (const p of view.permits) maxPermits = Math.max(maxPermits, p);
            seen.push(...view.permits);
          },
        });
        const view = await subscriptionView(topic, subscription);
        assert.equal(
          committed.size,
          TOTAL,
          `received ${committed.size} of ${TOTAL} after ${batches} batches (${rolledBack} rolled back), then nothing for 20 s; ` +
            `the broker shows backlog ${view.msgBacklog}, permits ${view.permits.join(',')}`,
        );
        assert.ok(rolledBack >= 5, `${rolledBack} batches were rolled back`);
        assert.ok(maxPermits <= QUEUE, `the broker held up to ${maxPermits} permits for a receiver queue of ${QUEUE} (last ones: ${seen.slice(-10).join(',')})`);

        // At rest: nothing left, and the permits the broker holds plus those the consumer has
        // not sent yet (under half the queue) make up the receiver queue again.
        let last = view;
        await waitUntil(
          async () => {
            await drainQueued(consumer);
            last = await subscriptionView(topic, subscription);
            return last.msgBacklog === 0 && last.permits.length === 1 && (last.permits[0] ?? 0) > QUEUE - (QUEUE >> 1) && (last.permits[0] ?? 0) <= QUEUE;
          },
          30_000,
          () => `backlog 0 and permits in (${QUEUE - (QUEUE >> 1)}, ${QUEUE}]: backlog ${last.msgBacklog}, permits ${last.permits.join(',')}`,
        );
        console.log(
          `[pulsar flow permits] ${type} ${mode}: ${TOTAL} messages in ${entries} entries, ${batches} batches, ${rolledBack} rolled back; ` +
            `broker permits at most ${maxPermits}, at rest ${last.permits.join(',')} (queue ${QUEUE})`,
        );
        await consumer.close();
      }, 120_000);
    }
  }

  for (const type of ['Exclusive', 'Shared'] as const) {
    it(`${type}: a consumer process SIGKILLed ${KILLS} times mid-stream; the next one receives the rest, the broker's permits within the receiver queue`, async () => {
      const topic = uniqueTopic(`flow-kill-${type.toLowerCase()}`);
      const subscription = uniqueName('flow-kill');
      const total = 2 * TOTAL;
      await produceBatched(url, topic, total, PER_ENTRY);
      const workers: { w: WorkerProcess; committed: number; maxPermits: number }[] = [];
      closers.push(async () => {
        for (const { w } of workers) if (w.alive()) w.child.kill('SIGKILL');
        await Promise.all(workers.map(({ w }) => w.exited));
      });
      const start = (): (typeof workers)[number] => {
        const w = startWorker(WORKER, { FP_SERVICE_URL: url, FP_TOPIC: topic, FP_SUBSCRIPTION: subscription, FP_TYPE: type, FP_QUEUE: String(QUEUE) });
        const entry = { w, committed: 0, maxPermits: -Infinity };
        w.child.on('message', (m: { type?: string; count?: number; max?: number }) => {
          if (m.type === 'committed') entry.committed += m.count ?? 0;
          if (m.type === 'permits') entry.maxPermits = Math.max(entry.maxPermits, m.max ?? -Infinity);
        });
        workers.push(entry);
        return entry;
      };
      for (let run = 1; run <= KILLS; run++) {
        const entry = start();
        // Each run commits a fifth of the input, then dies wherever it is (often inside a transaction).
        await killWhen(entry.w, () => entry.committed >= total / 5, 60_000, `run ${run} of the ${type} consumer to commit ${total / 5} messages`);
      }
      const last = start();
      let view = await subscriptionView(topic, subscription);
      await waitUntil(
        async () => {
          if (!last.w.alive()) throw new Error(`the last consumer exited on its own: ${last.w.stderr.join('').slice(-4000)}`);
          view = await subscriptionView(topic, subscription);
          return view.msgBacklog === 0;
        },
        90_000,
        () => `the last ${type} consumer to leave no backlog: backlog ${view.msgBacklog}, permits ${view.permits.join(',')}; ${last.committed} committed by it`,
      );
      // At rest, as above: the broker's permits plus those not sent yet make up the receiver queue.
      await waitUntil(
        async () => {
          view = await subscriptionView(topic, subscription);
          return view.permits.length === 1 && (view.permits[0] ?? 0) > QUEUE - (QUEUE >> 1) && (view.permits[0] ?? 0) <= QUEUE;
        },
        30_000,
        () => `the last ${type} consumer's permits at rest in (${QUEUE - (QUEUE >> 1)}, ${QUEUE}]: ${view.permits.join(',')}`,
      );
      assert.equal(await stopWorker(last.w), 0, last.w.stderr.join('').slice(-4000));
      const committed = workers.map((x) => x.committed);
      const maxPermits = Math.max(...workers.map((x) => x.maxPermits));
      console.log(
        `[pulsar flow permits] ${type} with ${KILLS} SIGKILLs: committed per run ${committed.join('+')} of ${total}; ` +
          `broker permits at most ${maxPermits}, at rest ${view.permits.join(',')} (queue ${QUEUE})`,
      );
      assert.ok(maxPermits <= QUEUE, `the broker held up to ${maxPermits} permits for a receiver queue of ${QUEUE}`);
      // Reports come after commits, so a kill can swallow the last one: never more than the input.
      assert.ok(committed.reduce((a, b) => a + b, 0) <= total);
    }, 240_000);
  }
});
