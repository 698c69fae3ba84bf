import type {
  KafkaBatchLike,
  KafkaClientFlavor,
  KafkaConsumerLike,
  KafkaLike,
  KafkaTransactionContext,
  PlatformaticKafkaOptions,
} from '../../adapters/kafka/index.js';
import type { MessageSource } from '../outbox-types.js';

/** The part of a kafkajs admin client the sink uses (a superset of what kafkaSource uses). */
export interface KafkaAdminLike extends KafkaSourceAdminLike {
  /** Topic names, to find out whether the positions topic exists. */
  listTopics(): Promise<string[]>;
  /** Creates the compacted positions topic when it is missing. */
  createTopics(options: { topics: { topic: string; numPartitions?: number; configEntries?: { name: string; value: string }[] }[]; waitForLeaders?: boolean }): Promise<boolean>;
}

/** A kafkajs `Kafka` instance, as far as kafkaSink needs it. */
export interface KafkaSinkClientLike extends KafkaSourceClientLike {
  admin(): KafkaAdminLike;
}

/** Options of {@link kafkaSink}. */
export interface KafkaSinkOptions {
  /**
   * One transactional producer for every outbox partition. Relays sharing
   * its transactionalId fence each other, so a second relay of the relay id
   * is a standby. Give this or `transactionalIdPrefix`, not both.
   */
  context?: KafkaTransactionContext;
  /**
   * A transactional producer per outbox partition, with the id
   * `<prefix>-<relayId>-<partition>`: relays of one relay id split the
   * partitions between them (through leases in the outbox store) and run
   * side by side, and a partition's new owner fences its former one at the
   * broker. The same on every instance of the relay. Give this or `context`.
   */
  transactionalIdPrefix?: string;
  /** Producer config of the per-partition producers (with `transactionalIdPrefix`), as kafkaTransactions takes it. @default {} */
  producer?: Record<string, unknown>;
  /** The client behind `kafka` (with `transactionalIdPrefix`), as kafkaTransactions takes it. @default 'kafkajs' */
  client?: KafkaClientFlavor;
  /**
   * With `transactionalIdPrefix` and a kafkajs `kafka`: run the
   * per-partition producers on @platformatic/kafka, made from these
   * connection options (`{ clientId, bootstrapBrokers, ... }`), while the
   * kafkajs `kafka` reads the stored positions. To run on
   * @platformatic/kafka alone, pass its connection options as `kafka`.
   */
  platformatic?: PlatformaticKafkaOptions;
  /**
   * A kafkajs `Kafka` instance, or @platformatic/kafka connection options
   * (`{ clientId, bootstrapBrokers, ... }`). The sink reads stored positions
   * with it (when a relay starts, and again after a transaction whose
   * outcome it cannot trust), with a read_committed reader and an admin
   * client it opens for that read and closes after it; with
   * `transactionalIdPrefix` it makes the per-partition producers too.
   */
  kafka: (KafkaSinkClientLike & Partial<Pick<KafkaLike, 'producer'>>) | PlatformaticKafkaOptions;
  /**
   * Compacted topic holding the relay's positions: one record per relay
   * transaction, keyed `<relayId>/<partition>`, in the partition of the same
   * number. It belongs to one relayId (the sink refuses a topic holding
   * another relay's positions). Created when missing.
   * @default `txkit-relay-positions-<relayId>`
   */
  positionsTopic?: string;
  /** Partitions of the positions topic when the sink creates it: at least the outbox's partitions. @default 16 */
  positionsPartitions?: number;
  /** Longest a read of the stored positions may wait for records the broker reports committed. @default 60_000 */
  readTimeoutMs?: number;
}

/** A topic-partition list as kafkajs' pause()/resume() take it. */
export interface KafkaTopicPartitionsLike {
  topic: string;
  partitions?: number[];
}

/** @deprecated use {@link txkit/kafka!KafkaBatchLike | KafkaBatchLike}, the one type of a kafkajs batch. */
export type KafkaSourceBatchLike = KafkaBatchLike;

/** kafkajs `EachBatchPayload` (the fields the source reads). */
export interface KafkaSourceBatchPayloadLike {
  batch: KafkaBatchLike;
  /** False once the consumer is stopping: the source stops taking the batch. */
  isRunning(): boolean;
  /** True when a seek or rebalance made the batch out of date: the source drops it. */
  isStale(): boolean;
}

/** The part of a kafkajs consumer the source uses (connect, disconnect and subscribe as the adapter's consumer has them). */
export interface KafkaSourceConsumerLike extends Pick<KafkaConsumerLike, 'connect' | 'disconnect' | 'subscribe'> {
  /** Starts fetching; the source buffers each batch per partition and never commits offsets. */
  run(config: {
    autoCommit: boolean;
    eachBatchAutoResolve: boolean;
    partitionsConsumedConcurrently: number;
    eachBatch: (payload: KafkaSourceBatchPayloadLike) => Promise<void>;
  }): Promise<void>;
  /** Moves a partition's fetch position to the offset the pipeline asked for. */
  seek(topicPartitionOffset: { topic: string; partition: number; offset: string }): void;
  /** Stops fetching partitions whose buffer is full or that this worker does not read. */
  pause(topicPartitions: KafkaTopicPartitionsLike[]): void;
  /** Fetches a paused partition again once its buffer has room. */
  resume(topicPartitions: KafkaTopicPartitionsLike[]): void;
  /** A crash: the source seeks every partition again after kafkajs restarts the consumer. */
  on(event: 'consumer.crash', listener: (event: { payload: { error: Error; restart: boolean } }) => void): unknown;
  /** A (re)join of the group: the source seeks every partition again from the pipeline's offsets. */
  on(event: 'consumer.group_join', listener: (event: { payload: unknown }) => void): unknown;
  /** The end of a fetched batch: the source learns how far a partition was read. */
  on(
    event: 'consumer.end_batch_process',
    listener: (event: { payload: { topic: string; partition: number; batchSize: number; firstOffset: string | null; lastOffset: string } }) => void,
  ): unknown;
}

/** The part of a kafkajs admin client the source uses. */
export interface KafkaSourceAdminLike {
  /** Connects the admin client the source uses for metadata and offsets. */
  connect(): Promise<void>;
  /** Disconnects it; called by the source's close(). */
  disconnect(): Promise<void>;
  /** The topic's partitions, when the source reads all of them. */
  fetchTopicMetadata(options: { topics: string[] }): Promise<{ topics: { name: string; partitions: { partitionId: number }[] }[] }>;
  /** kafkajs asks with READ_COMMITTED: `high` is the last stable offset, `low` the log start. */
  fetchTopicOffsets(topic: string): Promise<{ partition: number; high: string; low: string }[]>;
}

/** A kafkajs `Kafka` instance, as far as kafkaSource needs it. */
export interface KafkaSourceClientLike {
  /** A consumer in the source's own group, read_committed. */
  consumer(config: { groupId: string; readUncommitted?: boolean; maxWaitTimeInMs?: number }): KafkaSourceConsumerLike;
  /** An admin client for topic metadata and committed end offsets. */
  admin(): KafkaSourceAdminLike;
}

/** Options of {@link kafkaSource}. */
export interface KafkaSourceOptions {
  /**
   * A kafkajs `Kafka` instance, or @platformatic/kafka connection options
   * (`{ clientId, bootstrapBrokers, ... }`): the source then fetches each
   * partition at the pipeline's offsets itself, with no consumer group.
   * Required.
   */
  kafka: KafkaSourceClientLike | PlatformaticKafkaOptions;
  /** The input topic; also the source name positions are stored under. Required. */
  topic: string;
  /**
   * Partitions this worker consumes. Give each worker its own set to split
   * the topic; leave it out and every worker reads every partition, and the
   * inbox's compare-and-set on the stored position fences all but the first
   * to commit on each partition (the others stop on it with InboxFencedError).
   * @default every partition of the topic
   */
  partitions?: readonly number[];
  /**
   * Messages held per partition ahead of the pipeline; the partition's
   * fetching pauses at this bound and resumes when half of it is consumed
   * (one fetch response may overshoot it, by at most the consumer's
   * maxBytesPerPartition). @default 1000
   */
  maxBufferedMessages?: number;
  /**
   * Longest time fetch() waits for records it knows are committed (below the
   * last stable offset) but not yet received, before returning what it has.
   * @default 10_000
   */
  catchUpTimeoutMs?: number;
  /**
   * Further kafkajs consumer config (maxBytesPerPartition, sessionTimeout...).
   * The group, the isolation level and offset committing are the source's.
   * @default { maxWaitTimeInMs: 250 }
   */
  consumer?: Record<string, unknown>;
  /**
   * The consumer group the source's consumer joins to be assigned the topic.
   * No offsets are ever committed to it. Give each source its own (the
   * default does): two sources in one group would split the partitions
   * between them behind the pipeline's back.
   * @default `txkit-source-<topic>-<random>`
   */
  groupId?: string;
}

/** What kafkaSource() returns: a MessageSource that holds a Kafka consumer until close(). */
export interface KafkaMessageSource extends MessageSource {
  /** Leaves the consumer group and disconnects; idempotent. Later calls throw TransactionStateError. */
  close(): Promise<void>;
}
