// A child process for pipeline-kafka.test.ts: Kafka input -> pipeline (Postgres totals + outbox,
// one transaction per batch) -> relay -> Kafka output, all in this process. The test SIGKILLs it
// at points of its choosing; SIGTERM stops it cleanly.
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { kafkaTransactions } from '../../src/adapters/kafka/index.js';
import { knexTransactions } from '../../src/adapters/sql/index.js';
import { OutboxRelay, kafkaSink, pipeline, sqlOutboxStore } from '../../src/outbox/index.js';
import type { PipelineContext, SourceMessage } from '../../src/outbox/index.js';
import { kafkaSource } from '../../src/outbox/kafka/kafka-source.js';
import { makeKafka } from '../kafka/kafka-support.js';

const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`pipeline-process needs ${name}`);
  return v;
};
const prefix = env('PIPELINE_TABLE_PREFIX');
const output = env('PIPELINE_OUTPUT');
const totals = `${prefix}totals`;

const kafka = makeKafka(env('PIPELINE_BROKERS'), `pipeline-${process.pid}`);
const db = knexFactory({ client: 'pg', connection: env('PIPELINE_DATABASE_URL'), pool: { min: 0, max: 6 } });
// The input is partitioned with the outbox's own partitionOf(key, 4), so each partition loop publishes
// to one outbox partition only, and the loops neither wait on nor deadlock with each other.
const store = sqlOutboxStore(db, { tablePrefix: prefix, partitions: 4 });
const ctx = knexTransactions(db);
// PIPELINE_SOURCE_CLIENT=platformatic: the source reads with @platformatic/kafka (Fetch at the pipeline's offsets, no group).
const source = kafkaSource({
  kafka: process.env['PIPELINE_SOURCE_CLIENT'] === 'platformatic' ? { clientId: `pipeline-source-${process.pid}`, bootstrapBrokers: env('PIPELINE_BROKERS').split(',') } : kafka,
  topic: env('PIPELINE_INPUT'),
  maxBufferedMessages: 500,
});
const relayContext = kafkaTransactions(kafka, { transactionalId: env('PIPELINE_RELAY_ID') });
// Errors the pipeline and relay survive, reported as they happen: the test shows this stderr when it fails.
const report = (err: unknown): void => console.error('pipeline-process:', err instanceof Error ? `${err.name}: ${err.message}` : err);

const job = pipeline({
  consumer: env('PIPELINE_CONSUMER'),
  source,
  db: ctx,
  store,
  batchSize: 100,
  pollIntervalMs: 200,
  onError: report,
  handler: async (m: SourceMessage, { tx, outbox }: PipelineContext<Knex.Transaction>) => {
    const input = JSON.parse(String(m.value)) as { id: number; key: string; amount: number };
    // One effect per message: a duplicate would show as a count or a sum above the input's.
    await tx.handle.raw(`insert into ?? (key, n, total) values (?, 1, ?) on conflict (key) do update set n = ??.n + 1, total = ??.total + excluded.total`, [
      totals,
      input.key,
      input.amount,
      totals,
      totals,
    ]);
    await outbox.publish(tx, { topic: output, key: input.key, value: String(m.value), headers: { 'input-id': String(input.id) } });
  },
});
const relay = new OutboxRelay({
  store,
  sink: kafkaSink({ context: relayContext, kafka }),
  relayId: env('PIPELINE_RELAY_ID'),
  batchSize: 500,
  pollIntervalMs: 200,
  onError: report,
});

process.on('SIGTERM', () => {
  clearInterval(progress);
  const stage = (name: string): void => void (process.env.PIPELINE_DEBUG && console.error(`stopping: ${name}`));
  void (async () => {
    stage('pipeline');
    await job.stop();
    stage('relay');
    await relay.stop();
    await relay.drain();
    stage('clients');
    await Promise.all([source.close(), relayContext.close()]);
    stage('database context');
    await ctx.close();
    stage('store');
    await store.close();
    stage('knex');
    await db.destroy();
    stage('done');
    process.exit(0);
  })().catch((err: unknown) => {
    console.error('pipeline-process failed to stop:', err);
    process.exit(1);
  });
});

relay.start();
job.start();
// The SIGTERM handler is installed: the test may stop this worker from now on.
process.send?.({ type: 'started' });
// PIPELINE_DEBUG: a progress line a second and the shutdown stages on stderr.
const progress = process.env.PIPELINE_DEBUG ? setInterval(() => console.error('stats', JSON.stringify(job.stats), JSON.stringify(relay.stats)), 1000) : undefined;
progress?.unref();
