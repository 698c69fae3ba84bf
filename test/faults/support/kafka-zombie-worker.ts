// A Kafka copier process for the zombie scenario: copies INPUT to OUTPUT with
// transactionalConsumer (partition p to p). On a 'freeze' request it stops
// itself with SIGSTOP inside a transaction, after its output was sent and
// before the commit. When it runs again it goes on to commit; it reports
// over IPC every batch it committed and every write refused because a
// successor fenced its producer epoch. With per-partition producers
// (COPIER_TRANSACTIONAL_ID_PREFIX) a fence costs it only the partition that
// moved: it rejoins the group and goes on.
import { FencedError } from '../../../src/core/errors.js';
import { kafkaTransactions, transactionalConsumer } from '../../../src/adapters/kafka/index.js';
import { makeKafka } from '../../kafka/kafka-support.js';

const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`kafka-zombie-worker needs ${name}`);
  return v;
};
const output = env('COPIER_OUTPUT');
const kafka = makeKafka(env('COPIER_BROKERS'), `zombie-${process.pid}`);
// COPIER_TRANSACTIONAL_ID_PREFIX: a producer per input partition, the same prefix in every instance of the group;
// else one producer with COPIER_TRANSACTIONAL_ID.
const prefix = process.env['COPIER_TRANSACTIONAL_ID_PREFIX'];
const context = prefix ? undefined : kafkaTransactions(kafka, { transactionalId: env('COPIER_TRANSACTIONAL_ID') });
let freeze = false;
let resumed = false;

const worker = transactionalConsumer(kafka, {
  ...(context === undefined ? { transactionalIdPrefix: prefix as string } : { context }),
  groupId: env('COPIER_GROUP'),
  topics: [env('COPIER_INPUT')],
  fromBeginning: true,
  consumer: { sessionTimeout: 6_000, rebalanceTimeout: 10_000, heartbeatInterval: 500, maxBytesPerPartition: 8_192, maxWaitTimeInMs: 100 },
  eachBatch: async ({ partition, messages, tx }) => {
    if (resumed) process.send?.({ type: 'attempt' });
    await tx.handle.send({ topic: output, messages: messages.map((m) => ({ key: m.key, value: m.value, partition })) });
    tx.afterCommit(() => void process.send?.({ type: 'committed', count: messages.length, resumed }));
    if (freeze) {
      freeze = false;
      resumed = true;
      // The transaction that was open while the process stood still: it must never commit.
      tx.afterCommit(() => void process.send?.({ type: 'frozen-committed' }));
      process.send?.({ type: 'freezing', count: messages.length });
      process.kill(process.pid, 'SIGSTOP');
    }
  },
});

process.on('message', (m: { type?: string }) => {
  if (m.type === 'freeze') freeze = true;
});
worker.done.then(
  () => process.exit(0),
  (err: unknown) => {
    process.send?.({ type: 'stopped', fenced: err instanceof FencedError, name: (err as Error)?.name, message: (err as Error)?.message }, () =>
      process.exit(err instanceof FencedError ? 3 : 1),
    );
  },
);
// Batches refused because another instance took their partition (per-partition producers), as they happen.
let reportedFenced = 0;
setInterval(() => {
  if (worker.fencedBatches === reportedFenced) return;
  reportedFenced = worker.fencedBatches;
  process.send?.({ type: 'fenced-batches', count: reportedFenced });
}, 50).unref();
await worker.start();
process.send?.({ type: 'started' });
