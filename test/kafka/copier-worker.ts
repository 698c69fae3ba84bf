// A child process for kafka-exactly-once.test.ts: copies INPUT to OUTPUT exactly once with
// transactionalConsumer (partition p to partition p), reporting each committed batch over IPC.
// The test kills it with SIGKILL at random points; SIGTERM stops it cleanly.
import { kafkaTransactions, transactionalConsumer } from '../../src/adapters/kafka/index.js';
import { makeKafka } from './kafka-support.js';

const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`copier-worker needs ${name}`);
  return v;
};
const output = env('COPIER_OUTPUT');
// Consumer crashes (kafkajs restarts the consumer, which reads the group's offsets again) are reported to the test.
const kafka = makeKafka(env('COPIER_BROKERS'), `copier-${process.pid}`, { onConsumerCrash: (message) => void process.send?.({ type: 'crash', message }) });
// COPIER_TRANSACTIONAL_ID_PREFIX: a producer per input partition, the same prefix in every instance of the group;
// else one producer with COPIER_TRANSACTIONAL_ID.
const prefix = process.env['COPIER_TRANSACTIONAL_ID_PREFIX'];
// COPIER_CLIENT=platformatic: the context's producer runs on @platformatic/kafka.
const transactionalId = prefix ? undefined : env('COPIER_TRANSACTIONAL_ID');
const context =
  transactionalId === undefined
    ? undefined
    : process.env['COPIER_CLIENT'] === 'platformatic'
      ? kafkaTransactions({ clientId: `copier-${process.pid}`, bootstrapBrokers: env('COPIER_BROKERS').split(',') }, { transactionalId })
      : kafkaTransactions(kafka, { transactionalId });
const worker = transactionalConsumer(kafka, {
  ...(context === undefined ? { transactionalIdPrefix: prefix as string } : { context }),
  groupId: env('COPIER_GROUP'),
  topics: [env('COPIER_INPUT')],
  fromBeginning: true,
  // Small fetches make many small transactions, so a kill can land in any phase of one.
  consumer: { sessionTimeout: 6_000, rebalanceTimeout: 10_000, heartbeatInterval: 500, maxBytesPerPartition: 8_192, maxWaitTimeInMs: 100 },
  eachBatch: async ({ partition, messages, tx }) => {
    await tx.handle.send({ topic: output, messages: messages.map((m) => ({ key: m.key, value: m.value, partition })) });
    if (hold) {
      // The test asked for a kill inside a transaction: its output is written, its commit not sent.
      process.send?.({ type: 'holding', count: messages.length });
      await new Promise<never>(() => undefined);
    }
    tx.afterCommit(() => void process.send?.({ type: 'committed', count: messages.length }));
  },
});

let hold = false;
process.on('message', (m: { type?: string }) => {
  if (m.type === 'hold') hold = true;
});

process.on('SIGTERM', () => {
  void worker
    .stop()
    .then(() => context?.close())
    .then(() => process.exit(0));
});
worker.done.catch((err: unknown) => {
  console.error('copier-worker stopped by', err);
  process.exit(1);
});
await worker.start();
process.send?.({ type: 'started' });
