/**
 * Support of pulsar-flow-permits.test.ts and flow-permits-worker.ts: batched input from
 * the official Java client, the broker's view of a subscription (admin REST stats), and a
 * consumer loop that acknowledges in transactions and aborts some of them, or asks for
 * redelivery instead of acknowledging some batches.
 */
import { PulsarTimeoutError } from '../../src/adapters/pulsar/index.js';
import type { PulsarConsumer, PulsarMessage, PulsarTransactionContext } from '../../src/adapters/pulsar/index.js';
import { runJavaWitness } from '../support/java-witness.js';
import { webServiceUrl } from './pulsar-support.js';

export const PULSAR_CLIENT = ['org.apache.pulsar:pulsar-client:4.0.7'];

/** Sends `count` messages `m-<i>` with the Java client's batching; returns how many entries they took. */
export async function produceBatched(serviceUrl: string, topic: string, count: number, perBatch: number): Promise<number> {
  const out = await runJavaWitness({ coords: PULSAR_CLIENT, source: 'PulsarBatchProducer.java', args: [serviceUrl, topic, String(count), String(perBatch)] });
  const sent = /^sent:(\d+)$/m.exec(out);
  const entries = /^entries:(\d+)$/m.exec(out);
  if (sent === null || entries === null || Number(sent[1]) !== count) throw new Error(`the Java producer did not report its sends:\n${out.slice(-2000)}`);
  return Number(entries[1]);
}

export interface SubscriptionView {
  msgBacklog: number;
  /** availablePermits of each connected consumer, as the broker counts them. */
  permits: number[];
}

/** The broker's stats of one subscription of a non-partitioned topic. */
export async function subscriptionView(topic: string, subscription: string): Promise<SubscriptionView> {
  const path = topic.replace('persistent://', '');
  const response = await fetch(`${await webServiceUrl()}/admin/v2/persistent/${path}/stats`);
  if (!response.ok) throw new Error(`stats of ${topic}: HTTP ${response.status} ${await response.text()}`);
  const stats = (await response.json()) as {
    subscriptions: Record<string, { msgBacklog: number; consumers: { availablePermits: number }[] } | undefined>;
  };
  const sub = stats.subscriptions[subscription];
  if (sub === undefined) throw new Error(`${topic} has no subscription ${subscription}`);
  return { msgBacklog: sub.msgBacklog, permits: sub.consumers.map((c) => c.availablePermits) };
}

export class Aborted extends Error {}

export interface LoopOptions {
  consumer: PulsarConsumer;
  /** 'abort': acknowledge each batch in a transaction and abort every `every`-th; 'redeliver': acknowledge outside transactions and ask for redelivery instead every `every`-th batch. */
  mode: 'abort' | 'redeliver';
  context?: PulsarTransactionContext;
  every: number;
  /** Values acknowledged for good (in committed transactions, or acknowledged). */
  committed: Set<string>;
  /** Ends the loop. */
  done(): boolean;
  /** Called after each batch, e.g. to read the broker's stats. */
  afterBatch?(): Promise<void>;
  /** How long the first receive of a batch may wait; then `onIdle` decides. */
  idleMs: number;
  /** Nothing arrived within idleMs: return true to receive again, false to stop (stalled). */
  onIdle(): Promise<boolean>;
  maxBatches: number;
  onCommitted?(values: string[]): void;
}

/** Runs the loop; returns the number of aborted (or redelivered) batches. */
export async function consumeLoop(o: LoopOptions): Promise<{ batches: number; rolledBack: number }> {
  let batches = 0;
  let rolledBack = 0;
  // Bounded by maxBatches.
  while (!o.done() && batches < o.maxBatches) {
    const batch: PulsarMessage[] = [];
    const add = (m: PulsarMessage): void => {
      const v = m.value?.toString() ?? '';
      if (!o.committed.has(v) && !batch.some((b) => b.messageId.equals(m.messageId))) batch.push(m);
    };
    try {
      add(await o.consumer.receive({ timeoutMs: o.idleMs }));
    } catch (err) {
      if (!(err instanceof PulsarTimeoutError)) throw err;
      if (await o.onIdle()) continue;
      return { batches, rolledBack };
    }
    // At most 10 per batch: what is already there, or arrives right after.
    for (let i = 0; i < 20 && batch.length < 10; i++) {
      try {
        add(await o.consumer.receive({ timeoutMs: 10 }));
      } catch (err) {
        if (err instanceof PulsarTimeoutError) break;
        throw err;
      }
    }
    if (batch.length === 0) continue;
    batches += 1;
    const rollBack = batches % o.every === 0;
    const values = batch.map((m) => m.value?.toString() ?? '');
    if (o.mode === 'abort') {
      const context = o.context;
      if (context === undefined) throw new Error('abort mode needs a transaction context');
      try {
        await context.withTransaction(async (tx) => {
          await tx.handle.acknowledge(o.consumer, batch);
          if (rollBack) throw new Aborted(`batch ${batches} rolled back on purpose`);
        });
        for (const v of values) o.committed.add(v);
        o.onCommitted?.(values);
      } catch (err) {
        if (!(err instanceof Aborted)) throw err;
        rolledBack += 1;
      }
    } else if (rollBack) {
      await o.consumer.redeliverUnacknowledged();
      rolledBack += 1;
    } else {
      await o.consumer.acknowledge(batch);
      for (const v of values) o.committed.add(v);
      o.onCommitted?.(values);
    }
    await o.afterBatch?.();
  }
  return { batches, rolledBack };
}
