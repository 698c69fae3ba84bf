// A child process for kafka-exactly-once.test.ts: copies INPUT to OUTPUT exactly once with
// transactionalConsumer (partition p to partition p), reporting each committed batch over IPC.
// The test kills it with SIGKILL at random points; SIGTERM stops it cleanly.
import { kafkaTransactions, transactionalConsumer } from '../../src/adapters/kafka/index.js';
import type { KafkaTransactionContext, TransactionalBatch } from '../../src/adapters/kafka/index.js';
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
// COPIER_CLIENT=platformatic: the context's producer runs on @platformatic/kafka (COPIER_CONSUMER=platformatic needs it).
const transactionalId = prefix ? undefined : env('COPIER_TRANSACTIONAL_ID');
const context =
  transactionalId === undefined
    ? undefined
    : process.env['COPIER_CLIENT'] === 'platformatic'
      ? kafkaTransactions({ clientId: `copier-${process.pid}`, bootstrapBrokers: env('COPIER_BROKERS').split(',') }, { transactionalId })
      : kafkaTransactions(kafka, { transactionalId });
const eachBatch = async ({ partition, messages, tx }: TransactionalBatch): Promise<void> => {
  // A kill point the worker keeps itself ('hold-at'): once it committed that many records, the next batch holds,
  // before writing its output (after a commit) or after (inside a transaction). Held by the worker, not by a
  // message the test sends when it sees the count, it cannot overshoot by what the worker commits meanwhile.
  if (holdAt !== undefined && committed >= holdAt.count) {
    const where = holdAt.where;
    holdAt = undefined;
    if (where === 'after-commit') {
      process.send?.({ type: 'holding', count: 0 });
      await new Promise<never>(() => undefined);
    }
    hold = new Promise<never>(() => undefined);
  }
  await tx.handle.send({ topic: output, messages: messages.map((m) => ({ key: m.key, value: m.value, partition })) });
  if (hold !== undefined) {
    // The test asked for a kill (or a stop) inside a transaction: its output is written, its commit not sent.
    const release = hold;
    hold = undefined;
    process.send?.({ type: 'holding', count: messages.length });
    await release;
  }
  tx.afterCommit(() => {
    committed += messages.length;
    process.send?.({ type: 'committed', count: messages.length });
  });
};
// COPIER_CONSUMER=platformatic: the consumer runs on @platformatic/kafka too (its offsets are committed with the
// group generation); else on kafkajs. Small fetches make many small transactions, so a kill can land in any phase of one.
const worker =
  process.env['COPIER_CONSUMER'] === 'platformatic'
    ? transactionalConsumer(
        { clientId: `copier-consumer-${process.pid}`, bootstrapBrokers: env('COPIER_BROKERS').split(',') },
        {
          context: context as KafkaTransactionContext,
          groupId: env('COPIER_GROUP'),
          topics: [env('COPIER_INPUT')],
          fromBeginning: true,
          // A batch is what the message stream holds for a partition: highWaterMark (1024 by default) bounds it.
          consumer: { sessionTimeout: 6_000, rebalanceTimeout: 10_000, heartbeatInterval: 500, maxBytes: 8_192, maxWaitTime: 100, highWaterMark: 50 },
          eachBatch,
        },
      )
    : transactionalConsumer(kafka, {
        ...(context === undefined ? { transactionalIdPrefix: prefix as string } : { context }),
        groupId: env('COPIER_GROUP'),
        topics: [env('COPIER_INPUT')],
        fromBeginning: true,
        consumer: { sessionTimeout: 6_000, rebalanceTimeout: 10_000, heartbeatInterval: 500, maxBytesPerPartition: 8_192, maxWaitTimeInMs: 100 },
        eachBatch,
      });

/** Set by 'hold' (for ever) or 'hold-until-release' (until a 'release' message): the next batch waits on it. */
let hold: Promise<void> | undefined;
let release: (() => void) | undefined;
/** Records this worker committed, and the kill point set by 'hold-at': hold for ever once `count` are committed. */
let committed = 0;
let holdAt: { count: number; where: 'after-commit' | 'mid-transaction' } | undefined;
// COPIER_HOLD=until-release: the first batch holds from the start.
if (process.env['COPIER_HOLD'] === 'until-release') hold = new Promise<void>((resolve) => (release = resolve));
process.on('message', (m: { type?: string; count?: number; where?: 'after-commit' | 'mid-transaction' }) => {
  if (m.type === 'hold') hold = new Promise<never>(() => undefined);
  if (m.type === 'hold-at') holdAt = { count: m.count ?? 0, where: m.where ?? 'mid-transaction' };
  if (m.type === 'hold-until-release') hold = new Promise<void>((resolve) => (release = resolve));
  if (m.type === 'release') release?.();
});

process.on('SIGTERM', () => {
  void worker
    .stop()
    .then(() => context?.close())
    .then(
      () =>
        new Promise<void>((resolve) => {
          const stats = { type: 'stats', committedBatches: worker.committedBatches, fencedBatches: worker.fencedBatches };
          if (process.send === undefined) resolve();
          else process.send(stats, () => resolve());
        }),
    )
    .then(() => process.exit(0));
});
worker.done.catch((err: unknown) => {
  console.error('copier-worker stopped by', err);
  process.exit(1);
});
await worker.start();
process.send?.({ type: 'started' });
