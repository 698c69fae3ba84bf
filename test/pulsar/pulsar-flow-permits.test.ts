// Flow permits after redelivery and aborted transactions, on the real broker, with
// batched input from the official Java client. A consumer that acknowledges in
// transactions and aborts some of them (or asks for redelivery instead of acknowledging)
// must receive every message, and the permits the broker holds for it must never exceed
// its receiver queue: after each batch the subscription's stats are read from the broker.
import assert from 'node:assert/strict';
import { afterAll, describe, it } from 'vitest';
import { pulsarTransactions } from '../../src/adapters/pulsar/index.js';
import type { PulsarConsumer, SubscriptionType } from '../../src/adapters/pulsar/index.js';
import { service } from '../support/services.js';
import { consumeLoop, produceBatched, subscriptionView } from './flow-permits-support.js';
import { makeClient, uniqueName, uniqueTopic, waitUntil } from './pulsar-support.js';

const serviceUrl = service('pulsar');
const TYPES: SubscriptionType[] = ['Exclusive', 'Failover', 'Shared', 'Key_Shared'];
const TOTAL = 600;
const PER_ENTRY = 20;
const QUEUE = 50;

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
});
