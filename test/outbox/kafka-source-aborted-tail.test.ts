/**
 * kafkaSource after an aborted tail, on the real broker: when a partition's
 * newest records are an aborted transaction fetched on its own, fetch() at
 * the offset after the committed records reports "caught up" (empty) as soon
 * as the consumer has read past them, rather than waiting out
 * catchUpTimeoutMs, and the next committed record is read from there.
 */
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { kafkaSource } from '../../src/outbox/kafka/kafka-source.js';
import { createTopics, makeKafka, uniqueName, waitUntil } from '../kafka/kafka-support.js';
import { service } from '../support/services.js';

const brokers = service('kafka');
/** Far beyond the test's own timeout: a fetch that waited for it would fail the test instead of returning. */
const NEVER_MS = 3_600_000;

// Read with kafkajs, and with @platformatic/kafka (whose source fetches at the asked offsets itself).
describe.skipIf(brokers === undefined).each(['kafkajs', 'platformatic'] as const)('kafkaSource on %s after an aborted tail', (client) => {
  const kafka = makeKafka(brokers ?? '', 'txkit-source-tail-test');
  const reader = client === 'kafkajs' ? kafka : { clientId: uniqueName('txkit-source-tail-test'), bootstrapBrokers: (brokers ?? '').split(',') };
  const admin = kafka.admin();
  beforeAll(() => admin.connect());
  afterAll(() => admin.disconnect());

  it('an aborted transaction fetched on its own: fetch after the committed records is empty, then yields the next committed record', async () => {
    const topic = uniqueName('source-tail');
    await createTopics(admin, [topic]);
    const producer = kafka.producer({ transactionalId: uniqueName('source-tail-tx'), idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const write = async (values: string[], commit: boolean): Promise<void> => {
      const tx = await producer.transaction();
      await tx.send({ topic, messages: values.map((value) => ({ value, partition: 0 })) });
      await (commit ? tx.commit() : tx.abort());
    };
    const values = (ms: { value: unknown }[]): string[] => ms.map((m) => String(m.value));
    // A commit is readable once its marker is written, a moment after commit() returns: until then the last stable
    // offset stays before it, and fetch() rightly reports "caught up". Wait for the marker, as a reader would.
    const stableReaches = (end: number): Promise<void> =>
      waitUntil(async () => Number((await admin.fetchTopicOffsets(topic))[0]?.high ?? 0) >= end, 30_000, `the last stable offset of ${topic} to reach ${end}`);
    const sources = [kafkaSource({ kafka: reader, topic, partitions: [0], catchUpTimeoutMs: NEVER_MS })];
    try {
      const source = sources[0] as (typeof sources)[0];
      await write(['c0', 'c1', 'c2'], true);
      await stableReaches(4);
      const committed = await source.fetch(0, 0, 10);
      assert.deepEqual(values(committed), ['c0', 'c1', 'c2']);
      // After c2 and its commit marker (offsets 0..3): two aborted records and the abort marker (4..6).
      await write(['x0', 'x1'], false);
      assert.deepEqual(await source.fetch(0, 4, 10), []);

      // A source started at that position (a restarted worker) reads only the aborted tail: caught up too.
      const restarted = kafkaSource({ kafka: reader, topic, partitions: [0], catchUpTimeoutMs: NEVER_MS });
      sources.push(restarted);
      assert.deepEqual(await restarted.fetch(0, 4, 10), []);

      await write(['c3'], true);
      await stableReaches(9);
      for (const s of sources) {
        const next = await s.fetch(0, 4, 10);
        assert.deepEqual(
          next.map((m) => [m.offset, String(m.value)]),
          [[7, 'c3']],
        );
      }
    } finally {
      for (const s of sources) await s.close();
      await producer.disconnect();
    }
  });
});
