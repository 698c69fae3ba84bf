/**
 * The router that gives each partition's records a kafkajs call of their own
 * picks the partition the producer would: kafkajs' default partitioner
 * (Java's murmur2), or the producer's own createPartitioner.
 */
import { randomBytes } from 'node:crypto';
import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { KafkaPartitionRouter, murmur2 } from '../../src/adapters/kafka/kafka-partition-router.js';
import type { KafkaPartitionMetadataLike, KafkaRouterAdminLike } from '../../src/adapters/kafka/kafka-partition-router.js';

const metadataOf = (n: number): (KafkaPartitionMetadataLike & kafkajs.PartitionMetadata)[] =>
  Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: partitionId % 3, partitionErrorCode: 0, replicas: [0], isr: [0] }));

function adminWith(partitions: Record<string, number>, calls: string[] = []): () => KafkaRouterAdminLike {
  return () => ({
    connect: async () => undefined,
    disconnect: async () => undefined,
    fetchTopicMetadata: async ({ topics }) => {
      calls.push(...topics);
      const missing = topics.find((t) => partitions[t] === undefined);
      if (missing !== undefined) throw new Error(`This server does not host this topic-partition: ${missing}`);
      return { topics: topics.map((name) => ({ name, partitions: metadataOf(partitions[name] as number) })) };
    },
  });
}

describe('partition router', () => {
  it("murmur2 gives Kafka's published values (Utils.murmur2)", () => {
    expect(murmur2('21')).toBe(-973932308);
    expect(murmur2('foobar')).toBe(-790332482);
    expect(murmur2('a-little-bit-long-string')).toBe(-985981536);
    expect(murmur2('a-little-bit-longer-string')).toBe(-1486304829);
    expect(murmur2('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8')).toBe(-58897971);
    expect(murmur2(Buffer.from('abc'))).toBe(479470107);
  });

  it("keyed records go where kafkajs' default partitioner sends them, for 2,000 random keys and several partition counts", async () => {
    const kafkajsPartitioner = kafkajs.Partitioners.DefaultPartitioner();
    for (const n of [1, 3, 7, 16]) {
      const router = new KafkaPartitionRouter(adminWith({ t: n }), undefined);
      const messages = Array.from({ length: 500 }, (_, i) => ({ key: i % 2 === 0 ? randomBytes(1 + (i % 40)) : `key-${i}-${randomBytes(4).toString('hex')}`, value: String(i) }));
      const groups = await router.route([{ topic: 't', messages }]);
      for (const group of groups) {
        for (const m of group.messages) {
          expect(m.partition).toBe(kafkajsPartitioner({ topic: 't', partitionMetadata: metadataOf(n), message: { key: m.key, value: m.value } as kafkajs.Message }));
        }
      }
      expect(groups.reduce((k, g) => k + g.messages.length, 0)).toBe(500);
    }
  });

  it("groups by topic and partition, keeps the order within a partition, honours explicit partitions, round-robins records without a key, and names each partition's leader", async () => {
    const router = new KafkaPartitionRouter(adminWith({ a: 4, b: 2 }), undefined);
    const groups = await router.route([
      { topic: 'a', messages: [{ key: 'x', value: '1' }, { key: null, value: '2' }, { key: 'x', value: '3' }, { key: null, value: '4' }] },
      { topic: 'b', messages: [{ value: 'p1', partition: 1 }, { value: 'p0', partition: 0 }, { value: 'p1b', partition: 1 }] },
    ]);
    const a = groups.filter((g) => g.topic === 'a');
    const xs = a.find((g) => g.messages.some((m) => m.value === '1'));
    expect(xs?.messages.filter((m) => m.key === 'x').map((m) => m.value)).toEqual(['1', '3']);
    // Every group holds one partition.
    for (const g of groups) expect(new Set(g.messages.map((m) => m.partition)).size).toBe(1);
    const unkeyed = a.flatMap((g) => g.messages.filter((m) => m.key === null).map((m) => m.partition));
    expect(unkeyed[0]).not.toBe(unkeyed[1]);
    expect(groups.filter((g) => g.topic === 'b').map((g) => g.messages.map((m) => m.value))).toEqual([['p1', 'p1b'], ['p0']]);
    // Each group carries its partition's leader from the metadata, explicit partitions too (a send by leader needs it).
    for (const g of groups) expect(g.leader).toBe((g.messages[0]?.partition as number) % 3);
  });

  it("a topic whose metadata cannot be read stays one call, as given; the producer's createPartitioner is used when set; metadata is read once until forgotten", async () => {
    const calls: string[] = [];
    const router = new KafkaPartitionRouter(adminWith({ known: 3 }, calls), () => () => 2);
    const groups = await router.route([
      { topic: 'new-topic', messages: [{ key: 'a', value: '1' }, { key: 'b', value: '2' }] },
      { topic: 'known', messages: [{ key: 'a', value: '1' }, { key: 'b', value: '2' }] },
    ]);
    expect(groups).toEqual([
      { topic: 'new-topic', messages: [{ key: 'a', value: '1' }, { key: 'b', value: '2' }], leader: undefined },
      { topic: 'known', messages: [{ key: 'a', value: '1', partition: 2 }, { key: 'b', value: '2', partition: 2 }], leader: 2 },
    ]);
    await router.route([{ topic: 'known', messages: [{ key: 'c', value: '3' }] }]);
    expect(calls.filter((t) => t === 'known')).toHaveLength(1);
    router.forget('known');
    await router.route([{ topic: 'known', messages: [{ key: 'c', value: '3' }] }]);
    expect(calls.filter((t) => t === 'known')).toHaveLength(2);
    await router.close();
  });

  it('metadata that cannot be read again (a broker down) leaves the last read in use: the send is still split by partition', async () => {
    let down = false;
    const admin = adminWith({ t: 4 });
    const router = new KafkaPartitionRouter(() => {
      const a = admin();
      return { ...a, fetchTopicMetadata: async (o) => (down ? Promise.reject(new Error('connection refused')) : a.fetchTopicMetadata(o)) };
    }, undefined);
    // Fresh records for each send: route() sets the partition of the records it is given.
    const messages = (): { key: string; value: string }[] => Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, value: String(i) }));
    const before = await router.route([{ topic: 't', messages: messages() }]);
    down = true;
    router.forget('t');
    const after = await router.route([{ topic: 't', messages: messages() }]);
    expect(after).toEqual(before);
    expect(after.length).toBeGreaterThan(1);
    await router.close();
  });
});
