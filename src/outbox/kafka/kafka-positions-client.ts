/**
 * What reading a kafkaSink's stored positions takes from a Kafka client:
 * the positions topic's offsets (the topic created when missing) and a
 * read_committed reader over it. One on kafkajs (a `Kafka` instance), one
 * on @platformatic/kafka (its connection options), so a relay whose
 * producers run on @platformatic/kafka needs no other client.
 * @internal
 */
import { randomUUID } from 'node:crypto';
import { TransientTransactionError } from '../../core/index.js';
import { wait } from '../../core/backoff.js';
import { PlatformaticKafka, hasPlatformaticError } from '../../adapters/kafka/platformatic.js';
import type { PlatformaticKafkaOptions } from '../../adapters/kafka/platformatic.js';
import { kafkaSource } from './kafka-source.js';
import { EARLIEST, LATEST, READ_COMMITTED } from './kafka-source-platformatic.js';
import type { KafkaAdminLike, KafkaMessageSource, KafkaSinkClientLike } from './kafka-types.js';

/** The positions topic's settings: compacted (one record per key is enough), segments rolled hourly so compaction can run. */
const POSITIONS_TOPIC_CONFIG = [
  { name: 'cleanup.policy', value: 'compact' },
  { name: 'segment.ms', value: '3600000' },
];

/** The log start and the last stable offset of each partition of a topic. */
export type PartitionEnds = Map<number, { low: number; high: number }>;

export interface PositionsClient {
  /** Each partition's log start and last stable offset; creates the compacted topic with `partitions` partitions when it is missing. */
  offsets(topic: string, partitions: number): Promise<PartitionEnds>;
  /** A read_committed reader of `partitions` of `topic`; the caller closes it. */
  reader(topic: string, partitions: number[], readTimeoutMs: number): KafkaMessageSource;
}

/** Creates each topic once per client, with the admin client of the read that asks first (a failed attempt is tried again by the next read). */
function onceEach<A>(create: (admin: A, topic: string, partitions: number) => Promise<void>): (admin: A, topic: string, partitions: number) => Promise<void> {
  const created = new Map<string, Promise<void>>();
  return (admin, topic, partitions) => {
    let done = created.get(topic);
    if (done === undefined) {
      done = create(admin, topic, partitions);
      created.set(topic, done);
      done.catch(() => created.delete(topic));
    }
    return done;
  };
}

/** Positions read with kafkajs: an admin client connected for each read, a read_committed consumer of a group of its own. */
export function kafkajsPositionsClient(kafka: KafkaSinkClientLike): PositionsClient {
  const ensure = onceEach<KafkaAdminLike>(async (admin, topic, partitions) => {
    if (!(await admin.listTopics()).includes(topic)) {
      await admin.createTopics({ topics: [{ topic, numPartitions: partitions, configEntries: POSITIONS_TOPIC_CONFIG }], waitForLeaders: true });
    }
  });
  return {
    async offsets(topic, partitions) {
      const connected = kafka.admin();
      await connected.connect();
      try {
        await ensure(connected, topic, partitions);
        const offsets = await connected.fetchTopicOffsets(topic);
        return new Map(offsets.map((o) => [o.partition, { low: Number(o.low), high: Number(o.high) }]));
      } finally {
        await connected.disconnect().catch(() => undefined);
      }
    },
    reader: (topic, partitions, readTimeoutMs) =>
      kafkaSource({
        kafka,
        topic,
        partitions,
        catchUpTimeoutMs: readTimeoutMs,
        consumer: { maxWaitTimeInMs: 50 },
        groupId: `txkit-relay-positions-reader-${randomUUID()}`,
      }),
  };
}

interface PlatformaticAdminLike {
  listTopics(): Promise<string[]>;
  createTopics(options: { topics: string[]; partitions: number; configs: { name: string; value: string }[] }): Promise<unknown>;
  metadata(options: { topics: string[]; forceUpdate?: boolean }): Promise<{ topics: Map<string, { partitionsCount: number; partitions: { leader: number }[] }> }>;
  listOffsets(options: {
    topics: { name: string; partitions: { partitionIndex: number; timestamp: bigint }[] }[];
    isolationLevel: number;
  }): Promise<{ name: string; partitions: { partitionIndex: number; offset: bigint }[] }[]>;
  close(): Promise<void>;
}

/** How long a positions topic just created may take to have a leader for each partition. */
const LEADERS_TIMEOUT_MS = 30_000;

/** Positions read with @platformatic/kafka: an admin client made for each read, the platformatic kafkaSource (no consumer group). */
export function platformaticPositionsClient(connection: PlatformaticKafkaOptions): PositionsClient {
  const loader = new PlatformaticKafka(connection);
  const ensure = onceEach<PlatformaticAdminLike>(async (admin, topic, partitions) => {
    if ((await admin.listTopics()).includes(topic)) return;
    try {
      await admin.createTopics({ topics: [topic], partitions, configs: POSITIONS_TOPIC_CONFIG });
    } catch (err) {
      // Another relay made it first.
      if (!hasPlatformaticError(err, 'TOPIC_ALREADY_EXISTS')) throw err;
    }
    // As kafkajs' waitForLeaders: the broker's metadata may lag the controller's for a moment after the creation.
    const deadline = Date.now() + LEADERS_TIMEOUT_MS;
    // Bounded by the deadline.
    for (let delay = 10; ; delay = Math.min(delay * 2, 500)) {
      const found = (await admin.metadata({ topics: [topic], forceUpdate: true }).catch(() => undefined))?.topics.get(topic);
      if (found !== undefined && found.partitionsCount > 0 && found.partitions.every((p) => p.leader >= 0)) return;
      if (Date.now() > deadline) {
        throw new TransientTransactionError(`kafkaSink: the positions topic '${topic}' was created but has no leader for each partition after ${LEADERS_TIMEOUT_MS} ms; tried again`, {
          backend: 'kafka',
        });
      }
      await wait(delay);
    }
  });
  return {
    async offsets(topic, partitions) {
      const { Admin } = (await loader.load()) as unknown as { Admin: new (options: Record<string, unknown>) => PlatformaticAdminLike };
      const made = new Admin({ ...connection, clientId: `${connection.clientId}-txkit-positions` });
      try {
        await ensure(made, topic, partitions);
        const count = (await made.metadata({ topics: [topic] })).topics.get(topic)?.partitionsCount ?? 0;
        const ask = async (timestamp: bigint): Promise<Map<number, number>> => {
          const [listed] = await made.listOffsets({
            topics: [{ name: topic, partitions: Array.from({ length: count }, (_, partitionIndex) => ({ partitionIndex, timestamp })) }],
            isolationLevel: READ_COMMITTED,
          });
          return new Map((listed?.partitions ?? []).map((p) => [p.partitionIndex, Number(p.offset)]));
        };
        const [low, high] = await Promise.all([ask(EARLIEST), ask(LATEST)]);
        return new Map([...high].map(([partition, end]) => [partition, { low: low.get(partition) ?? 0, high: end }]));
      } finally {
        await made.close().catch(() => undefined);
      }
    },
    reader: (topic, partitions, readTimeoutMs) =>
      kafkaSource({ kafka: connection, topic, partitions, catchUpTimeoutMs: readTimeoutMs, groupId: `txkit-relay-positions-reader-${randomUUID()}` }),
  };
}
