/**
 * read_committed readers against the official Java consumer, on the real
 * broker, with the input that broke one of them: a producer's transactions
 * committed between its aborted ones, where some aborted transactions wrote
 * nothing to the partition (the partition was added to the transaction, the
 * broker refused the send, the transaction aborted: only the abort marker is
 * in the log, and the broker lists no aborted transaction for it; a process
 * killed between AddPartitionsToTxn and Produce leaves the same).
 *
 * The @platformatic/kafka library's own read_committed filter (Consumer.fetch,
 * 1.x) dropped every batch of a producer from its last listed aborted
 * transaction to its last abort marker in the response: the committed
 * transaction in between was lost by kafkaSource and transactionalConsumer
 * on @platformatic/kafka (and a relay reading its positions there read a
 * stale one), and an abort marker of a producer with nothing listed threw in
 * the library's callback. Every reader must read what the Java consumer reads.
 */
import assert from 'node:assert/strict';
import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { kafkaTransactions } from '../../src/adapters/kafka/index.js';
import { kafkaSource } from '../../src/outbox/kafka/kafka-source.js';
import { service } from '../support/services.js';
import { createTopics, makeKafka, platformaticCopier, readCommittedWithJava, uniqueName, waitUntil } from './kafka-support.js';

const brokers = service('kafka');
/** The topic's largest record batch: a send of one bigger value is refused (MESSAGE_TOO_LARGE) after its partition was added. */
const MAX_MESSAGE_BYTES = 1024;
const TOO_LARGE = 'x'.repeat(4 * MAX_MESSAGE_BYTES);
/**
 * The inputs, one partition each. `one producer`: P aborts A (the broker lists it), commits B, aborts a
 * transaction that wrote nothing here, commits D (the library's filter dropped B). `two producers`: the same,
 * and Q aborts a transaction that wrote nothing here (nothing listed for Q: the library's filter threw) and
 * commits E. One fetch from the start holds all of an input.
 */
const INPUTS = {
  'one producer': { committed: ['B1', 'B2', 'D1'] },
  'two producers': { committed: ['B1', 'B2', 'D1', 'E1'] },
} as const;
type InputName = keyof typeof INPUTS;

describe.skipIf(brokers === undefined)('read_committed readers read what the Java consumer reads', () => {
  const kafka = makeKafka(brokers ?? '', 'txkit-read-committed-tests');
  const admin = kafka.admin();
  const closers: (() => Promise<void>)[] = [];
  const connection = () => ({ clientId: uniqueName('read-committed'), bootstrapBrokers: (brokers ?? '').split(',') });
  const topics = new Map<InputName, string>();
  const topicOf = (name: InputName): string => topics.get(name) as string;

  beforeAll(async () => {
    await admin.connect();
    for (const name of Object.keys(INPUTS) as InputName[]) {
      const topic = uniqueName('read-committed-in');
      topics.set(name, topic);
      await admin.createTopics({
        topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: String(MAX_MESSAGE_BYTES) }] }],
        waitForLeaders: true,
      });
      const [p, q] = await Promise.all([writer(topic, 'p'), writer(topic, 'q')]);
      await p(['A1', 'A2'], false);
      await p(['B1', 'B2'], true);
      if (name === 'two producers') await q([TOO_LARGE], false);
      await p([TOO_LARGE], false);
      await p(['D1'], true);
      if (name === 'two producers') await q(['E1'], true);
    }
  });
  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await admin.disconnect();
  });

  /** A transactional producer (its own producer id) writing whole transactions to partition 0; a refused send still ends its transaction. */
  async function writer(topic: string, name: string): Promise<(values: string[], commit: boolean) => Promise<void>> {
    const producer: Producer = kafka.producer({ transactionalId: uniqueName(`read-committed-${name}`), idempotent: true, maxInFlightRequests: 1, retry: { retries: 1 } });
    await producer.connect();
    closers.push(() => producer.disconnect());
    return async (values, commit) => {
      const tx = await producer.transaction();
      const sent = await tx.send({ topic, messages: values.map((value) => ({ value, partition: 0 })) }).then(
        () => true,
        (err: unknown) => {
          assert.match(String((err as { type?: string }).type), /MESSAGE_TOO_LARGE/, `only the oversized send is refused, got ${String(err)}`);
          return false;
        },
      );
      assert.equal(sent, values[0] !== TOO_LARGE);
      await (commit ? tx.commit() : tx.abort());
    };
  }

  describe.each(Object.keys(INPUTS) as InputName[])('%s', (name) => {
    const COMMITTED = INPUTS[name].committed;
    it('the official Java consumer reads the committed transactions only (the witness)', async () => {
      assert.deepEqual((await readCommittedWithJava(brokers as string, topicOf(name))).map((r) => r.value), COMMITTED);
    });

    for (const client of ['kafkajs', 'platformatic'] as const) {
      it(`kafkaSource on ${client} reads the same records`, async () => {
        const source = kafkaSource({ kafka: client === 'kafkajs' ? kafka : connection(), topic: topicOf(name), partitions: [0], catchUpTimeoutMs: 10_000 });
        closers.push(() => source.close());
        const read: string[] = [];
        // Bounded: each round reads at least one record or ends the loop.
        for (let offset = 0, round = 0; round < 20; round++) {
          const batch = await source.fetch(0, offset, 100);
          if (batch.length === 0) break;
          read.push(...batch.map((m) => String(m.value)));
          offset = (batch.at(-1) as { offset: number }).offset + 1;
        }
        await source.close();
        assert.deepEqual(read, COMMITTED);
      });
    }

    it('transactionalConsumer on @platformatic/kafka copies the same records, and the Java consumer reads them in its output', async () => {
      const output = uniqueName('read-committed-out');
      const groupId = uniqueName('read-committed-group');
      await createTopics(admin, [output]);
      const context = kafkaTransactions(connection(), { transactionalId: `${groupId}-tx` });
      closers.push(() => context.close());
      const copied: string[] = [];
      const worker = platformaticCopier(connection(), { context, groupId, input: topicOf(name), output, copied });
      closers.push(() => worker.stop());
      await worker.start();
      await waitUntil(() => copied.length >= COMMITTED.length, 30_000, () => `the committed input to be copied (copied so far: ${copied.join(', ')})`);
      await worker.stop();
      await worker.done;
      assert.deepEqual(copied, COMMITTED);
      assert.deepEqual((await readCommittedWithJava(brokers as string, output)).map((r) => r.value), COMMITTED);
    });
  });
});
