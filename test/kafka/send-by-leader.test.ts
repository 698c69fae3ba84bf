/**
 * A send to several partitions of one leader broker goes as one kafkajs call, checked: on the
 * real broker, the Produce requests kafkajs made are counted with a listener of the test's own,
 * and a producer is doctored (as a retry would leave it: one more answered Produce request; or an
 * answer without one of the partitions) to show that such a transaction never commits: the send
 * and a commit() after the callback caught the error both throw KAFKA_SEND_UNVERIFIED, and the
 * unit reruns on a new producer, each record committed once (read with read_committed).
 */
import assert from 'node:assert/strict';
import type { Kafka, Producer } from 'kafkajs';
import { describe, it } from 'vitest';
import { kafkaTransactions } from '../../src/adapters/kafka/index.js';
import type { KafkaLike } from '../../src/adapters/kafka/index.js';
import { TransientTransactionError } from '../../src/core/index.js';
import { service } from '../support/services.js';
import { TopicReader, createTopics, uniqueName, suiteKafka } from './kafka-support.js';

const brokers = service('kafka');
const PARTITIONS = 4;

type Doctor = (answer: { topicName: string; partition: number }[], producerIndex: number, emitProduce: () => void) => typeof answer;

/**
 * `kafka` whose producers report each answered Produce request to `produced`, and whose transactions' sendBatch
 * answers pass through `doctor` (with the producer's index, in the order made, and a way to report one more
 * answered Produce request as the producer's own event would).
 */
function instrumented(kafka: Kafka, produced: { count: number }, doctor?: Doctor): KafkaLike {
  let made = 0;
  return {
    producer: (config) => {
      const producer = kafka.producer(config as never) as Producer;
      const index = made++;
      producer.on(producer.events.REQUEST, (e) => {
        if (e.payload.apiName === 'Produce') produced.count += 1;
      });
      if (doctor === undefined) return producer;
      // The listeners txkit adds, so the doctor can report a request as kafkajs would.
      const listeners: ((e: { payload: { apiName: string } }) => void)[] = [];
      const on = producer.on.bind(producer);
      const transaction = producer.transaction.bind(producer);
      return Object.assign(Object.create(producer) as Producer, {
        on: (event: string, listener: (e: { payload: { apiName: string } }) => void) => {
          if (event === producer.events.REQUEST) listeners.push(listener);
          return on(event as never, listener as never);
        },
        transaction: async () => {
          const native = await transaction();
          const sendBatch = native.sendBatch.bind(native);
          return Object.assign(Object.create(native) as typeof native, {
            sendBatch: async (batch: Parameters<typeof sendBatch>[0]) => {
              const answer = await sendBatch(batch);
              return doctor(answer, index, () => {
                for (const listener of listeners) listener({ payload: { apiName: 'Produce' } });
              });
            },
          });
        },
      });
    },
    admin: () => kafka.admin(),
  } as KafkaLike;
}

describe.skipIf(brokers === undefined)('kafka sends by leader broker (kafkajs)', () => {
  const { kafka, admin, closers } = suiteKafka(brokers ?? '', 'txkit-send-by-leader');

  const topics = async (): Promise<[string, string]> => {
    const names: [string, string] = [uniqueName('by-leader'), uniqueName('by-leader-b')];
    await createTopics(admin, [names[0]], PARTITIONS);
    await createTopics(admin, [names[1]]);
    return names;
  };
  const records = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: `v${i}` }));

  it('a send to four partitions and a second topic makes one Produce request, and each record is read once', async () => {
    const [a, b] = await topics();
    const produced = { count: 0 };
    const context = kafkaTransactions(instrumented(kafka, produced), { transactionalId: uniqueName('by-leader-tx') });
    closers.push(() => context.close());
    await context.withTransaction(async () => undefined); // the producer made and fenced first
    const before = produced.count;
    const answer = await context.withTransaction((tx) =>
      tx.handle.sendBatch({ topicMessages: [{ topic: a, messages: records(40) }, { topic: b, messages: [{ key: 'p', value: 'position' }] }] }),
    );
    assert.equal(produced.count - before, 1, 'Produce requests for one send to 5 partitions of one broker');
    assert.deepEqual(new Set(answer.map((r) => `${r.topicName}:${r.partition}`)).size, PARTITIONS + 1);
    const read = await TopicReader.open(kafka, a);
    closers.push(() => read.close());
    await read.caughtUp();
    assert.deepEqual(read.records.map((r) => r.value).sort(), records(40).map((r) => r.value).sort());
    assert.equal(new Set(read.records.map((r) => r.partition)).size, PARTITIONS, 'records in every partition');
  });

  it("the caller's records are left as given: the same objects sent to a 4-partition and a 1-partition topic in one transaction land in both, and carry no partition afterwards", async () => {
    const [a, b] = await topics();
    const context = kafkaTransactions(kafka as KafkaLike, { transactionalId: uniqueName('by-leader-reuse') });
    closers.push(() => context.close());
    const mine = records(12);
    await context.withTransaction(async (tx) => {
      await tx.handle.send({ topic: a, messages: mine });
      await tx.handle.sendBatch({ topicMessages: [{ topic: b, messages: mine }] });
    });
    assert.deepEqual(mine, records(12), 'the records as the caller made them');
    for (const topic of [a, b]) {
      const read = await TopicReader.open(kafka, topic);
      closers.push(() => read.close());
      await read.caughtUp();
      assert.deepEqual(read.records.map((r) => r.value).sort(), records(12).map((r) => r.value).sort(), topic);
    }
  });

  const doctored: { name: string; doctor: Doctor; problem: RegExp }[] = [
    {
      name: 'one Produce request more than calls (as a retry makes)',
      doctor: (answer, producer, emitProduce) => {
        if (producer === 0) emitProduce();
        return answer;
      },
      problem: /2 produce requests were answered for 1 calls/,
    },
    {
      name: 'an answer without one of its partitions',
      doctor: (answer, producer) => (producer === 0 ? answer.slice(1) : answer),
      problem: /the answer does not name/,
    },
  ];
  for (const { name, doctor, problem } of doctored) {
    it(`${name}: the send and a commit after the callback caught it throw KAFKA_SEND_UNVERIFIED; the unit reruns on a new producer, each record committed once`, async () => {
      const [a, b] = await topics();
      const context = kafkaTransactions(instrumented(kafka, { count: 0 }, doctor), { transactionalId: uniqueName('by-leader-doctored') });
      closers.push(() => context.close());
      const caught: unknown[] = [];
      let attempts = 0;
      await context.withTransaction(async (tx) => {
        attempts += 1;
        try {
          await tx.handle.sendBatch({ topicMessages: [{ topic: a, messages: records(12) }, { topic: b, messages: [{ value: 'x' }] }] });
        } catch (err) {
          // A careless callback: it catches the failed send and returns, so the core commits.
          caught.push(err);
        }
      });
      assert.equal(attempts, 2, 'the unit ran again after the refused commit');
      assert.equal(caught.length, 1);
      const [err] = caught;
      assert.ok(err instanceof TransientTransactionError, String(err));
      assert.equal(err.code, 'KAFKA_SEND_UNVERIFIED');
      assert.match(err.message, problem);
      const read = await TopicReader.open(kafka, a);
      closers.push(() => read.close());
      await read.caughtUp();
      assert.deepEqual(read.records.map((r) => r.value).sort(), records(12).map((r) => r.value).sort(), 'each record once');
    });
  }

  it('a call refused for good (a record too large) ends the unit with that error, also when the callback caught it; nothing of it commits', async () => {
    const topic = uniqueName('by-leader-too-large');
    await admin.createTopics({
      topics: [{ topic, numPartitions: PARTITIONS, configEntries: [{ name: 'max.message.bytes', value: '1024' }] }],
      waitForLeaders: true,
    });
    const context = kafkaTransactions(instrumented(kafka, { count: 0 }), { transactionalId: uniqueName('by-leader-too-large-tx') });
    closers.push(() => context.close());
    let attempts = 0;
    const caught: unknown[] = [];
    const messages = [...records(12), { key: 'big', value: 'x'.repeat(4096) }];
    const failure = await context
      .withTransaction(async (tx) => {
        attempts += 1;
        // A careless callback again: it catches the refused send and returns.
        await tx.handle.sendBatch({ topicMessages: [{ topic, messages }] }).catch((err: unknown) => void caught.push(err));
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    assert.equal(attempts, 1, 'not rerun: it would fail again');
    assert.equal(caught.length, 1);
    assert.equal(failure, caught[0], 'the commit throws the send\'s own error');
    assert.equal((failure as { code?: string }).code, 'MESSAGE_TOO_LARGE');
    const read = await TopicReader.open(kafka, topic);
    closers.push(() => read.close());
    await read.caughtUp();
    assert.deepEqual(read.records, [], 'nothing of the unit committed');
  });

  it('concurrent sends of one transaction are each checked against their own requests', async () => {
    const [a, b] = await topics();
    const produced = { count: 0 };
    const context = kafkaTransactions(instrumented(kafka, produced), { transactionalId: uniqueName('by-leader-concurrent') });
    closers.push(() => context.close());
    await context.withTransaction(async (tx) => {
      // Not awaited one by one: the first goes by leader, the others wait for it or go a call per partition.
      await Promise.all([0, 1, 2].map((i) => tx.handle.sendBatch({ topicMessages: [{ topic: a, messages: records(8).map((r) => ({ ...r, value: `${i}-${r.value}` })) }, { topic: b, messages: [{ value: `${i}` }] }] })));
    });
    const read = await TopicReader.open(kafka, a);
    closers.push(() => read.close());
    await read.caughtUp();
    assert.equal(read.records.length, 24);
    assert.equal(new Set(read.records.map((r) => r.value)).size, 24);
  });
});
