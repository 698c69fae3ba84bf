import { ConfigError } from '../core/index.js';
import type { KafkaTransactionContext, KafkaTxHandle } from '../adapters/kafka/index.js';
import type { RelaySink } from './outbox-types.js';

/** The part of a kafkajs admin client the sink uses. */
export interface KafkaAdminLike {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  listTopics(): Promise<string[]>;
  createTopics(options: { topics: { topic: string; numPartitions?: number; configEntries?: { name: string; value: string }[] }[]; waitForLeaders?: boolean }): Promise<boolean>;
  fetchOffsets(options: { groupId: string; topics: string[] }): Promise<{ topic: string; partitions: { partition: number; offset: string }[] }[]>;
}

export interface KafkaSinkOptions {
  /** The relay's broker transactions (one transactional producer; relays sharing a transactionalId fence each other). */
  context: KafkaTransactionContext;
  /** A kafkajs admin client, used to read positions and create the positions topic. */
  admin: KafkaAdminLike;
  /** Topic whose consumer-group offsets hold the relay positions. @default 'txkit-relay-positions' */
  positionsTopic?: string;
  /** Partitions of the positions topic: at least the outbox's partitions. @default 16 */
  positionsPartitions?: number;
}

/**
 * Kafka as a relay sink. The position of each outbox partition is committed
 * as a transactional consumer-group offset (TxnOffsetCommit) in the same
 * transaction as the messages, the way Kafka Connect's exactly-once sources
 * keep theirs: both become visible together or not at all. Positions are
 * read once per relay instance, after its producer has fenced any
 * predecessor, so a committed-but-unmaterialized position cannot be missed.
 */
export function kafkaSink(options: KafkaSinkOptions): RelaySink<KafkaTxHandle> {
  const { context, admin, positionsTopic = 'txkit-relay-positions', positionsPartitions = 16 } = options;
  if (context === undefined || typeof context.withTransaction !== 'function') throw new ConfigError('kafkaSink needs context: kafkaTransactions(...)');
  if (admin === undefined || typeof admin.fetchOffsets !== 'function') throw new ConfigError('kafkaSink needs admin: kafka.admin()');
  const known = new Map<string, number | undefined>();
  let ready: Promise<void> | undefined;
  const group = (relayId: string): string => `txkit-relay-${relayId}`;

  const ensureTopic = (): Promise<void> =>
    (ready ??= (async () => {
      await admin.connect();
      if (!(await admin.listTopics()).includes(positionsTopic)) {
        await admin.createTopics({ topics: [{ topic: positionsTopic, numPartitions: positionsPartitions, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }], waitForLeaders: true });
      }
    })());

  return {
    context,
    async readPosition(_tx, relayId, partition) {
      if (partition >= positionsPartitions) {
        throw new ConfigError(`outbox partition ${partition} needs positionsPartitions > ${partition} in kafkaSink`);
      }
      const key = `${relayId}/${partition}`;
      if (!known.has(key)) {
        await ensureTopic();
        const offsets = await admin.fetchOffsets({ groupId: group(relayId), topics: [positionsTopic] });
        const stored = offsets.find((t) => t.topic === positionsTopic)?.partitions.find((p) => p.partition === partition)?.offset;
        known.set(key, stored === undefined || Number(stored) < 0 ? undefined : Number(stored));
      }
      return known.get(key);
    },
    async writePosition(tx, relayId, partition, seq) {
      // Until this transaction is known to have committed, the broker, not this cache, holds the truth
      // (an aborted or unknown outcome makes the next transaction read it again).
      known.delete(`${relayId}/${partition}`);
      await tx.handle.sendOffsets({
        consumerGroupId: group(relayId),
        topics: [{ topic: positionsTopic, partitions: [{ partition, offset: String(seq) }] }],
      });
      tx.afterCommit(() => void known.set(`${relayId}/${partition}`, seq));
    },
  };
}
