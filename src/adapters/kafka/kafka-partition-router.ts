import type { KafkaOutgoingMessage } from './kafka-types.js';

/**
 * Why txkit routes records itself before kafkajs sends them.
 *
 * kafkajs sends one `send`/`sendBatch` as one produce request per leader
 * broker and, when one of them fails, retries the call: it works out the
 * leaders again but keeps the responses of the brokers that had answered,
 * by broker. When leadership moved in between (a broker died), a partition
 * now led by a broker that had answered is never sent (its records are lost
 * although the call succeeds), and one that moved from a broker that had
 * answered to one that had not is sent again with new sequence numbers
 * (the broker cannot tell it is a copy). Inside a transaction both commit.
 * A call that holds the records of one partition has one broker: a retry
 * sends all of it, with the same sequence numbers, to the partition's
 * leader of the moment, which drops what had already landed. A call that
 * holds the partitions of one leader is as safe when kafkajs sends it as
 * one request, which the driver checks (KafkaTransaction's send by leader).
 *
 * The router picks each record's partition the way the producer's
 * partitioner would (kafkajs' default: Java's murmur2 of the key; no key:
 * round robin over partitions that have a leader), and names its leader,
 * from topic metadata it reads with an admin client and keeps for
 * `metadataMaxAgeMs`.
 */
export class KafkaPartitionRouter {
  readonly #admin: () => KafkaRouterAdminLike | undefined;
  readonly #partitioner: PartitionerLike;
  readonly #maxAgeMs: number;
  #connected: Promise<KafkaRouterAdminLike | undefined> | undefined;
  readonly #metadata = new Map<string, { at: number; partitions: Promise<KafkaPartitionMetadataLike[] | undefined> }>();
  /** The last metadata read of each topic: used when a read again fails (a broker down is when a split matters most). */
  readonly #lastRead = new Map<string, KafkaPartitionMetadataLike[]>();

  /**
   * @param admin makes the admin client that reads topic metadata (undefined when the Kafka instance has none)
   * @param createPartitioner the producer's `createPartitioner`, when its config sets one
   */
  constructor(admin: () => KafkaRouterAdminLike | undefined, createPartitioner: unknown, metadataMaxAgeMs = 300_000) {
    this.#admin = admin;
    this.#partitioner = typeof createPartitioner === 'function' ? (createPartitioner as () => PartitionerLike)() : defaultPartitioner();
    this.#maxAgeMs = metadataMaxAgeMs;
  }

  /**
   * The records grouped by topic and partition, each with its partition set, in the order given within
   * a partition, with the partition's leader as the metadata read says. A topic whose metadata cannot be
   * read (it does not exist yet, or no admin) stays one group, as the caller gave it, unless every record
   * names its partition. The records are the caller's own copies: each gets its partition set in place
   * (a relay transaction routes thousands, and a copy, a group key and an argument object for each one
   * cost more than the hash that picks its partition).
   */
  async route(topicMessages: readonly { topic: string; messages: readonly KafkaOutgoingMessage[] }[]): Promise<RoutedGroup[]> {
    const groups: RoutedGroup[] = [];
    /** Per topic, its groups by partition (undefined: the whole topic, unrouted). */
    const byTopic = new Map<string, Map<number | undefined, RoutedGroup>>();
    for (const { topic, messages } of topicMessages) {
      const explicit = messages.every((m) => m.partition !== undefined && m.partition !== null);
      const partitionMetadata = await this.#partitionsOf(topic);
      const topicGroups = byTopic.get(topic) ?? new Map<number | undefined, RoutedGroup>();
      byTopic.set(topic, topicGroups);
      /** The group of `partition`, made with its leader the first time. */
      const groupOf = (partition: number | undefined): RoutedGroup => {
        let group = topicGroups.get(partition);
        if (group === undefined) {
          const leader = partition === undefined ? undefined : partitionMetadata?.find((p) => p.partitionId === partition)?.leader;
          group = { topic, messages: [], leader: leader !== undefined && leader >= 0 ? leader : undefined };
          topicGroups.set(partition, group);
          groups.push(group);
        }
        return group;
      };
      if (!explicit && (partitionMetadata === undefined || partitionMetadata.length === 0)) {
        const whole = groupOf(undefined).messages;
        for (const message of messages) whole.push(message);
        continue;
      }
      // One argument object for every call of the partitioner, which reads it and keeps nothing of it.
      const args = { topic, partitionMetadata: partitionMetadata as KafkaPartitionMetadataLike[], message: undefined as unknown as KafkaOutgoingMessage };
      for (const message of messages) {
        let partition = message.partition;
        if (partition === undefined || partition === null) {
          args.message = message;
          partition = this.#partitioner(args);
          message.partition = partition;
        }
        groupOf(partition).messages.push(message);
      }
    }
    return groups;
  }

  /** Reads a topic's metadata again at the next send (after a failed send: partitions may have been added or moved). */
  forget(topic?: string): void {
    if (topic === undefined) this.#metadata.clear();
    else this.#metadata.delete(topic);
  }

  async close(): Promise<void> {
    const admin = await this.#connected?.catch(() => undefined);
    this.#connected = undefined;
    await admin?.disconnect().catch(() => undefined);
  }

  #partitionsOf(topic: string): Promise<KafkaPartitionMetadataLike[] | undefined> {
    const known = this.#metadata.get(topic);
    if (known !== undefined && Date.now() - known.at < this.#maxAgeMs) return known.partitions;
    const partitions = (async () => {
      const admin = await this.#connect();
      if (admin === undefined) return undefined;
      try {
        const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
        const read = topics.find((t) => t.name === topic)?.partitions;
        if (read !== undefined && read.length > 0) this.#lastRead.set(topic, read);
        return read;
      } catch {
        // No metadata now: the last read still splits the send (partitions are added rarely, and never
        // removed); a topic never read (it may be created by this very send) goes as one call.
        this.#metadata.delete(topic);
        return this.#lastRead.get(topic);
      }
    })();
    this.#metadata.set(topic, { at: Date.now(), partitions });
    return partitions;
  }

  #connect(): Promise<KafkaRouterAdminLike | undefined> {
    this.#connected ??= (async () => {
      const admin = this.#admin();
      if (admin === undefined) return undefined;
      await admin.connect();
      return admin;
    })();
    const connected = this.#connected;
    connected.catch(() => {
      if (this.#connected === connected) this.#connected = undefined;
    });
    return connected.catch(() => undefined);
  }
}

/** The records of one partition (or, `leader` undefined and no partition set, of a topic whose metadata is unknown). */
export interface RoutedGroup {
  topic: string;
  messages: KafkaOutgoingMessage[];
  /** The node leading the partition in the metadata the router read; undefined when it does not know. */
  leader: number | undefined;
}

/** A partition of a topic's metadata, as kafkajs gives it to a partitioner. */
export interface KafkaPartitionMetadataLike {
  partitionId: number;
  leader: number;
}

/** The admin calls the router makes. */
export interface KafkaRouterAdminLike {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  fetchTopicMetadata(options: { topics: string[] }): Promise<{ topics: { name: string; partitions: KafkaPartitionMetadataLike[] }[] }>;
}

type PartitionerLike = (args: { topic: string; partitionMetadata: KafkaPartitionMetadataLike[]; message: KafkaOutgoingMessage }) => number;

/** kafkajs' DefaultPartitioner (Java's): murmur2 of the key, or round robin over partitions with a leader. */
function defaultPartitioner(): PartitionerLike {
  const counters = new Map<string, number>();
  return ({ topic, partitionMetadata, message }) => {
    if (message.key !== null && message.key !== undefined) return (murmur2(message.key) & 0x7fffffff) % partitionMetadata.length;
    const next = ((counters.get(topic) ?? Math.floor(Math.random() * 0x7fffffff)) + 1) & 0x7fffffff;
    counters.set(topic, next);
    const available = partitionMetadata.filter((p) => p.leader >= 0);
    const from = available.length > 0 ? available : partitionMetadata;
    return (from[next % from.length] as KafkaPartitionMetadataLike).partitionId;
  };
}

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2) of a key's bytes: a signed 32-bit hash. */
export function murmur2(key: Buffer | string): number {
  const data = typeof key === 'string' ? Buffer.from(key) : key;
  const m = 0x5bd1e995;
  const length = data.length;
  let h = (0x9747b28c ^ length) | 0;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = (data[i] as number) | ((data[i + 1] as number) << 8) | ((data[i + 2] as number) << 16) | ((data[i + 3] as number) << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const tail = length % 4;
  if (tail === 3) h ^= (data[whole + 2] as number) << 16;
  if (tail >= 2) h ^= (data[whole + 1] as number) << 8;
  if (tail >= 1) {
    h ^= data[whole] as number;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}
