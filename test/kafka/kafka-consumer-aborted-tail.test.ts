/**
 * transactionalConsumer after an aborted tail, on the real broker: when the
 * newest records of a partition are an aborted transaction (or its abort
 * marker), the group's committed offset still reaches the end of the log,
 * so the group shows no lag, and later records are processed exactly once.
 */
import assert from 'node:assert/strict';
import type { Consumer, ConsumerConfig, Kafka as KafkaClient, Producer } from 'kafkajs';
import { describe, it } from 'vitest';
import { kafkaTransactions, transactionalConsumer } from '../../src/adapters/kafka/index.js';
import type { TransactionalConsumer } from '../../src/adapters/kafka/index.js';
import { runJavaWitness } from '../support/java-witness.js';
import { service } from '../support/services.js';
import { TopicReader, createTopics, highWatermarks, uniqueName, waitUntil, suiteKafka } from './kafka-support.js';

const brokers = service('kafka');
const WAIT_MS = 60_000;
const KAFKA_CLIENTS = ['org.apache.kafka:kafka-clients:3.9.1'];

describe.skipIf(brokers === undefined)('transactionalConsumer after an aborted tail', () => {
  const { kafka, admin, closers } = suiteKafka(brokers ?? '', 'txkit-aborted-tail-tests');

  /** A transactional producer writing whole transactions to given partitions, committed or aborted. */
  const writer = async (): Promise<(topic: string, partition: number, values: string[], commit: boolean) => Promise<void>> => {
    const producer: Producer = kafka.producer({ transactionalId: uniqueName('tail-writer'), idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    closers.push(() => producer.disconnect());
    return async (topic, partition, values, commit) => {
      const tx = await producer.transaction();
      await tx.send({ topic, messages: values.map((value) => ({ value, partition })) });
      await (commit ? tx.commit() : tx.abort());
    };
  };

  /** The kafka client, with every consumer it makes reporting how far each partition was read (aborted or control records included). */
  const observed = (readTo: Map<number, bigint>): { consumer(config: ConsumerConfig): Consumer } => ({
    consumer(config) {
      const consumer = kafka.consumer(config);
      consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
        const next = BigInt(payload.lastOffset) + 1n;
        if (next > (readTo.get(payload.partition) ?? -1n)) readTo.set(payload.partition, next);
      });
      return consumer;
    },
  });

  /** A copier from `input` to `output` (same partition), recording the values it committed. */
  const copier = (client: { consumer(config: ConsumerConfig): Consumer } | KafkaClient, input: string, output: string, groupId: string, seen: string[]): TransactionalConsumer => {
    const context = kafkaTransactions(kafka, { transactionalId: `${groupId}-tx` });
    closers.push(() => context.close());
    const worker = transactionalConsumer(client, {
      context,
      groupId,
      topics: [input],
      fromBeginning: true,
      consumer: { maxWaitTimeInMs: 100 },
      eachBatch: async ({ partition, messages, tx }) => {
        await tx.handle.send({ topic: output, messages: messages.map((m) => ({ value: m.value, partition })) });
        tx.afterCommit(() => seen.push(...messages.map((m) => String(m.value))));
      },
    });
    closers.push(() => worker.stop());
    return worker;
  };

  /** Each partition's committed group offset, the last stable offset (kafkajs' admin) and the high watermark. */
  const positions = async (topic: string, groupId: string, partitions: number[]) => {
    const [group] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const stable = await admin.fetchTopicOffsets(topic);
    const high = await highWatermarks(brokers ?? '', topic, partitions);
    return partitions.map((partition) => ({
      partition,
      committed: group?.partitions.find((p) => p.partition === partition)?.offset,
      stable: stable.find((p) => p.partition === partition)?.offset,
      high: String(high.get(partition)),
    }));
  };

  /**
   * Waits until each partition's log ends at the offset its layout gives (records plus one marker per
   * transaction) and returns those ends. The broker answers commit() and abort() once the outcome is
   * logged by the coordinator; the markers reach the partitions just after, so a single read of the
   * high watermark may still be one marker short.
   */
  const ends = async (topic: string, expected: Record<number, bigint>): Promise<Map<number, bigint>> => {
    const partitions = Object.keys(expected).map(Number);
    let last = new Map<number, bigint>();
    await waitUntil(
      async () => {
        last = await highWatermarks(brokers ?? '', topic, partitions);
        return partitions.every((p) => last.get(p) === expected[p]);
      },
      WAIT_MS,
      () => `the log of ${topic} to end at ${JSON.stringify(Object.entries(expected).map(([p, o]) => [Number(p), String(o)]))} (ends at ${JSON.stringify([...last].map(([p, o]) => [p, String(o)]))})`,
    );
    return last;
  };

  it('an aborted transaction fetched on its own after the committed records: the committed offset reaches the end of the log', async () => {
    const [input, output] = [uniqueName('tail-in'), uniqueName('tail-out')];
    await createTopics(admin, [input, output]);
    const write = await writer();
    const groupId = uniqueName('tail-group');
    const readTo = new Map<number, bigint>();
    const seen: string[] = [];

    const worker = copier(observed(readTo), input, output, groupId, seen);
    await worker.start();
    await write(input, 0, ['c0', 'c1', 'c2'], true);
    await waitUntil(() => seen.length === 3, WAIT_MS, () => `the three committed records copied (copied ${JSON.stringify(seen)})`);
    // The aborted transaction comes after the consumer read everything before it, so it is a fetch of its own.
    await write(input, 0, ['x0', 'x1'], false);
    // Three records and a commit marker, then two aborted records and an abort marker.
    const end = (await ends(input, { 0: 7n })).get(0) as bigint;
    await waitUntil(() => (readTo.get(0) ?? 0n) >= end, WAIT_MS, () => `the consumer read past the aborted tail to ${end} (read to ${readTo.get(0)})`);
    await worker.stop();
    await worker.done;

    const [p0] = await positions(input, groupId, [0]);
    // Three records and a commit marker, then two aborted records and an abort marker.
    assert.deepEqual(p0, { partition: 0, committed: '7', stable: '7', high: '7' });
    assert.deepEqual(seen, ['c0', 'c1', 'c2']);

    // A new instance goes on from there: the next committed record is copied once, nothing is copied again.
    const again: string[] = [];
    const next = copier(kafka, input, output, groupId, again);
    await next.start();
    await write(input, 0, ['c3'], true);
    await waitUntil(() => again.length === 1, WAIT_MS, () => `c3 copied (copied ${JSON.stringify(again)})`);
    await next.stop();
    await next.done;
    assert.deepEqual(again, ['c3']);
    const [after] = await positions(input, groupId, [0]);
    assert.deepEqual(after, { partition: 0, committed: '9', stable: '9', high: '9' });
    const out = await TopicReader.open(kafka, output);
    closers.push(() => out.close());
    assert.deepEqual((await out.caughtUp()).values(), ['c0', 'c1', 'c2', 'c3']);
  });

  it('a partition holding only aborted transactions and one whose committed records end in one: no lag on either', async () => {
    const [input, output] = [uniqueName('tail-only-in'), uniqueName('tail-only-out')];
    await createTopics(admin, [input, output], 2);
    const write = await writer();
    await write(input, 0, ['c0', 'c1'], true);
    await write(input, 0, ['x0'], false);
    await write(input, 1, ['y0', 'y1'], false);
    await write(input, 1, ['y2'], false);
    const end = await ends(input, { 0: 5n, 1: 5n });

    const groupId = uniqueName('tail-only-group');
    const readTo = new Map<number, bigint>();
    const seen: string[] = [];
    const worker = copier(observed(readTo), input, output, groupId, seen);
    await worker.start();
    await waitUntil(
      () => seen.length === 2 && [0, 1].every((p) => (readTo.get(p) ?? 0n) >= (end.get(p) as bigint)),
      WAIT_MS,
      () => `both partitions read to their ends ${JSON.stringify([...end].map(([p, o]) => [p, String(o)]))} (read to ${JSON.stringify([...readTo].map(([p, o]) => [p, String(o)]))}, copied ${JSON.stringify(seen)})`,
    );
    await worker.stop();
    await worker.done;

    assert.deepEqual(await positions(input, groupId, [0, 1]), [
      { partition: 0, committed: '5', stable: '5', high: '5' },
      { partition: 1, committed: '5', stable: '5', high: '5' },
    ]);
    assert.deepEqual(seen, ['c0', 'c1']);
  });

  it('witness: the official Java consumer (read_committed) moves its position past the same tail to the end offset', { timeout: 300_000 }, async () => {
    const input = uniqueName('tail-java');
    await createTopics(admin, [input]);
    const write = await writer();
    await write(input, 0, ['c0', 'c1', 'c2'], true);
    await write(input, 0, ['x0', 'x1'], false);
    await ends(input, { 0: 7n });
    const java = async (from: number): Promise<string[]> => {
      const out = await runJavaWitness({ coords: KAFKA_CLIENTS, source: 'KafkaAbortedTail.java', args: [brokers ?? '', input, '0', String(from)] });
      return out.split('\n').filter((line) => /^(values|position|end):/.test(line));
    };
    // From the start, and from just after the commit marker, where the aborted transaction is all a fetch returns.
    assert.deepEqual(await java(0), ['values:c0,c1,c2', 'position:7', 'end:7']);
    assert.deepEqual(await java(4), ['values:', 'position:7', 'end:7']);
  });
});
