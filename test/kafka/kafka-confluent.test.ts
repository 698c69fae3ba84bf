// The same adapter on @confluentinc/kafka-javascript (the KafkaJS API on librdkafka). It is not a
// dependency of this repo: its install compiles librdkafka, so the global setup installs the version
// pinned by test/support/confluent/package-lock.json once into the txkit cache
// (scripts/services/confluent.mjs); TXKIT_CONFLUENT_KAFKA_MODULE names another installed copy.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { FencedError } from '../../src/core/index.js';
import { kafkaTransactions, transactionalConsumer } from '../../src/adapters/kafka/index.js';
import type { KafkaConsumerFactoryLike, KafkaLike } from '../../src/adapters/kafka/index.js';
import { rejection, testTransactionContext } from '../../src/testing/index.js';
import { service } from '../support/services.js';
import { TopicReader, conformanceReadWrite, createTopics, makeKafka, uniqueName, waitUntil } from './kafka-support.js';

interface ConfluentModule {
  KafkaJS: { Kafka: new (config: object) => KafkaLike & KafkaConsumerFactoryLike; logLevel: { NOTHING: number } };
}

const brokers = service('kafka');
const modulePath = service('confluent-kafka');
let confluent: ConfluentModule | undefined;
if (modulePath !== undefined) {
  const mod = (await import(modulePath)) as { default?: ConfluentModule } & Partial<ConfluentModule>;
  confluent = mod.KafkaJS !== undefined ? (mod as ConfluentModule) : mod.default;
}

describe.skipIf(brokers === undefined || confluent === undefined)('kafka adapter on @confluentinc/kafka-javascript', () => {
  if (confluent === undefined || brokers === undefined) return;
  const { KafkaJS } = confluent;
  const ck = new KafkaJS.Kafka({ kafkaJS: { brokers: brokers.split(','), logLevel: KafkaJS.logLevel.NOTHING } });
  const kafka = makeKafka(brokers, 'txkit-confluent-tests');
  const admin = kafka.admin();
  const closers: (() => Promise<void>)[] = [];
  beforeAll(() => admin.connect());
  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await admin.disconnect();
  });
  const context = (transactionalId = uniqueName('ck')) => {
    const ctx = kafkaTransactions(ck, { transactionalId, client: 'confluent' });
    closers.push(() => ctx.close());
    return ctx;
  };

  testTransactionContext({
    name: 'kafka (@confluentinc/kafka-javascript)',
    test: { describe, it },
    capabilities: { savepoints: false, concurrentTransactions: false },
    make: async () => {
      const topic = uniqueName('ck-conformance');
      await createTopics(admin, [topic]);
      const reader = await TopicReader.open(kafka, topic);
      const ctx = kafkaTransactions(ck, { transactionalId: uniqueName('ck-conformance'), client: 'confluent' });
      // librdkafka connects and runs InitProducerId at the first begin (~70-400 ms here): done before the
      // test, so the suite's 40 ms retry-deadline case measures retries, not the connection.
      await ctx.withTransaction(async () => undefined);
      return { context: ctx, ...conformanceReadWrite(reader), cleanup: () => reader.close() };
    },
  });

  it('aborted messages are invisible to read_committed and visible to read_uncommitted', async () => {
    const t = uniqueName('ck-visibility');
    await createTopics(admin, [t]);
    const ctx = context();
    await ctx.withTransaction((tx) => tx.handle.send({ topic: t, messages: [{ value: 'committed' }] }));
    await rejection(
      ctx.withTransaction(async (tx) => {
        await tx.handle.send({ topic: t, messages: [{ value: 'aborted' }] });
        throw new Error('abort');
      }),
    );
    const committed = await TopicReader.open(kafka, t);
    const uncommitted = await TopicReader.open(kafka, t, { readUncommitted: true });
    closers.push(() => committed.close(), () => uncommitted.close());
    assert.deepEqual((await committed.caughtUp()).values(), ['committed']);
    assert.deepEqual((await uncommitted.caughtUp()).values(), ['committed', 'aborted']);
  });

  it('zombie fencing: the fenced producer gets FencedError and its transaction stays invisible', async () => {
    const t = uniqueName('ck-fencing');
    await createTopics(admin, [t]);
    const id = uniqueName('ck-zombie');
    const zombie = context(id);
    const open = await zombie.begin();
    await open.handle.send({ topic: t, messages: [{ value: 'zombie' }] });
    await context(id).withTransaction((tx) => tx.handle.send({ topic: t, messages: [{ value: 'successor' }] }));
    const err = await rejection(open.commit());
    assert.ok(err instanceof FencedError, `expected FencedError, got ${String(err)}`);
    const r = await TopicReader.open(kafka, t);
    closers.push(() => r.close());
    assert.deepEqual((await r.caughtUp()).values(), ['successor']);
  });

  it('transactionalConsumer copies a topic exactly once with sendOffsets through the consumer', async () => {
    const input = uniqueName('ck-in');
    const output = uniqueName('ck-out');
    const group = uniqueName('ck-group');
    await createTopics(admin, [input, output]);
    const producer = kafka.producer();
    await producer.connect();
    const values = Array.from({ length: 300 }, (_, i) => `m${i}`);
    for (let i = 0; i < values.length; i += 50) await producer.send({ topic: input, messages: values.slice(i, i + 50).map((value) => ({ value })) });
    await producer.disconnect();
    const ctx = context();
    const worker = transactionalConsumer(ck, {
      context: ctx,
      groupId: group,
      topics: [input],
      fromBeginning: true,
      eachBatch: async ({ messages, tx }) => void (await tx.handle.send({ topic: output, messages: messages.map((m) => ({ value: m.value })) })),
    });
    closers.push(() => worker.stop());
    await worker.start();
    const r = await TopicReader.open(kafka, output);
    closers.push(() => r.close());
    await waitUntil(() => r.records.length >= values.length, 60_000, 'the copy');
    await worker.stop();
    await worker.done;
    assert.deepEqual((await r.caughtUp()).values(), values);
    const [t] = await admin.fetchOffsets({ groupId: group, topics: [input] });
    await waitUntil(async () => {
      const [now] = await admin.fetchOffsets({ groupId: group, topics: [input] });
      return now?.partitions[0]?.offset === '300';
    }, 10_000, `the committed input offset 300 (was ${JSON.stringify(t?.partitions)})`);
  });
});
