// A child process for pulsar-flow-permits.test.ts: consumes FP_TOPIC on FP_SUBSCRIPTION
// (FP_TYPE), acknowledging each batch in a transaction and aborting every third, and
// reports over IPC what it committed and the most permits the broker held for it. When
// nothing arrives for a second while the broker has a backlog and permits for it, it asks
// for redelivery: on Exclusive and Failover that is how messages come back whose
// acknowledgements a killed predecessor's transaction held until the coordinator aborted
// it. SIGTERM stops it; the test SIGKILLs it.
import { PulsarClient, pulsarTransactions } from '../../src/adapters/pulsar/index.js';
import type { SubscriptionType } from '../../src/adapters/pulsar/index.js';
import { consumeLoop, subscriptionView } from './flow-permits-support.js';

const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`flow-permits-worker needs ${name}`);
  return v;
};
const topic = env('FP_TOPIC');
const subscription = env('FP_SUBSCRIPTION');

const client = new PulsarClient({ serviceUrl: env('FP_SERVICE_URL'), operationTimeoutMs: 20_000 });
// A killed worker's open transaction is aborted by the coordinator after this.
const context = pulsarTransactions({ client, transactionTimeoutMs: 5_000 });
const consumer = await client.subscribe({
  topic,
  subscription,
  subscriptionType: env('FP_TYPE') as SubscriptionType,
  initialPosition: 'earliest',
  receiverQueueSize: Number(env('FP_QUEUE')),
});
let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
  void context
    .close()
    .then(() => client.close())
    .then(() => process.exit(0));
});

process.send?.({ type: 'started' });
let maxPermits = -Infinity;
try {
  await consumeLoop({
    consumer,
    mode: 'abort',
    context,
    every: 3,
    committed: new Set(),
    done: () => stopping,
    idleMs: 1_000,
    onIdle: async () => {
      // Asked only when the broker holds permits for us and has messages: then what waits is
      // behind our read position. Out of permits it is a flow-control stall, left for the test to see.
      const view = await subscriptionView(topic, subscription);
      if (view.msgBacklog > 0 && Math.max(...view.permits) > 0) await consumer.redeliverUnacknowledged();
      return true;
    },
    maxBatches: Number.MAX_SAFE_INTEGER,
    onCommitted: (values) => process.send?.({ type: 'committed', count: values.length }),
    afterBatch: async () => {
      const view = await subscriptionView(topic, subscription);
      const max = Math.max(...view.permits);
      if (max > maxPermits) {
        maxPermits = max;
        process.send?.({ type: 'permits', max });
      }
    },
  });
} catch (err) {
  // SIGTERM closes the consumer under a receive; anything else ends the worker with its error.
  if (!stopping) throw err;
}
