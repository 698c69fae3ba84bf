/**
 * The subset of kafkajs that txkit calls, typed structurally so that neither
 * the runtime nor the emitted .d.ts imports kafkajs (docs/architecture.md, rule 1). A
 * kafkajs `Kafka` instance fits `KafkaLike`; so does any client with the
 * KafkaJS API, such as @confluentinc/kafka-javascript's KafkaJS layer.
 */
import type { MessageHandle, SendOffsetsRequest, Transaction } from '../../core/index.js';

/** kafkajs `RetryOptions`. */
export interface KafkaRetryOptions {
  /** Longest wait between two retries, in milliseconds. */
  maxRetryTime?: number;
  /** Wait before the first retry, in milliseconds. */
  initialRetryTime?: number;
  /** Randomization factor of each wait. */
  factor?: number;
  /** Growth of the wait per retry. */
  multiplier?: number;
  /** Retries before the request fails. */
  retries?: number;
}

/** A message as kafkajs sends it. */
export interface KafkaOutgoingMessage {
  /** Message key; chooses the partition when `partition` is not set. */
  key?: string | Buffer | null;
  /** Message payload. */
  value: string | Buffer | null;
  /** Explicit partition. */
  partition?: number;
  /** Message headers. */
  headers?: Record<string, string | Buffer>;
}

/** kafkajs `RecordMetadata` (the fields txkit reads). */
export interface KafkaRecordMetadataLike {
  /** Topic written. */
  topicName: string;
  /** Partition written. */
  partition: number;
  /** Offset of the first message written to the partition, when the broker reported it. */
  baseOffset?: string;
}

/** kafkajs `Transaction`: what `producer.transaction()` resolves to. */
export interface KafkaNativeTransaction {
  /** Sends messages to one topic in the transaction. */
  send(record: { topic: string; messages: KafkaOutgoingMessage[] }): Promise<KafkaRecordMetadataLike[]>;
  /** Sends messages to several topics in the transaction. */
  sendBatch(batch: { topicMessages: { topic: string; messages: KafkaOutgoingMessage[] }[] }): Promise<KafkaRecordMetadataLike[]>;
  /** Adds consumer offsets to the transaction. */
  sendOffsets(offsets: SendOffsetsRequest | { consumer: object; topics: SendOffsetsRequest['topics'] }): Promise<void>;
  /** Commits the transaction (EndTxn commit). */
  commit(): Promise<void>;
  /** Aborts the transaction (EndTxn abort). */
  abort(): Promise<void>;
}

/** kafkajs `Producer` (the methods txkit calls). */
export interface KafkaProducerLike {
  /** Connects the producer (and, for a transactional one, initializes its producer id). */
  connect(): Promise<void>;
  /** Disconnects the producer. */
  disconnect(): Promise<void>;
  /** Begins a transaction. */
  transaction(): Promise<KafkaNativeTransaction>;
}

/** kafkajs `ProducerConfig`: the fields txkit sets; others pass through untouched. */
export interface KafkaProducerConfigLike {
  /** The producer's transactional.id; txkit sets it from {@link KafkaTransactionsOptions.transactionalId}. */
  transactionalId?: string;
  /** Always true for a transactional producer. */
  idempotent?: boolean;
  /** Always 1 for a transactional producer. */
  maxInFlightRequests?: number;
  /** How long the coordinator lets a transaction stay open before aborting it, in milliseconds. */
  transactionTimeout?: number;
  /** Retry of the producer's own requests. */
  retry?: KafkaRetryOptions;
}

/** A kafkajs `Kafka` instance, as far as the transaction adapter needs it. */
export interface KafkaLike {
  /** Makes a producer. */
  producer(config?: KafkaProducerConfigLike): KafkaProducerLike;
}

/** The producer config a user may add; the producer's transactional settings are txkit's. */
export type KafkaProducerExtraConfig<K extends KafkaLike> = Omit<
  NonNullable<Parameters<K['producer']>[0]>,
  'transactionalId' | 'idempotent' | 'maxInFlightRequests'
>;

/**
 * sendOffsets' request: the shared shape. With @confluentinc/kafka-javascript
 * also pass `consumer` (the KafkaJS-layer consumer whose positions these are):
 * librdkafka takes the group from it; `consumerGroupId` may then be left empty.
 * With @platformatic/kafka, `consumer` (a @platformatic/kafka Consumer) is
 * optional and, when given, also names the group.
 */
export interface KafkaSendOffsetsRequest extends SendOffsetsRequest {
  /**
   * The consumer whose positions these are. Required with
   * @confluentinc/kafka-javascript; with @platformatic/kafka the offsets are
   * then committed with its group generation and member id, so a member
   * that lost its partitions in a rebalance is fenced (KIP-447).
   */
  consumer?: object;
}

/**
 * Which client the `kafka` argument is: a kafkajs `Kafka`, the KafkaJS layer
 * of @confluentinc/kafka-javascript, or @platformatic/kafka connection options.
 */
export type KafkaClientFlavor = 'kafkajs' | 'confluent' | 'platformatic';

/** The handle of a Kafka transaction: the shared message-handle shape plus `sendOffsets`. */
export interface KafkaTxHandle extends MessageHandle {
  /**
   * Commits consumer positions with this transaction (offset = the next to
   * read), so the input is marked consumed only if the output commits.
   */
  sendOffsets(request: KafkaSendOffsetsRequest): Promise<void>;
  /** The producer's transactional.id. */
  readonly transactionalId: string;
}

// ---- consumer side, for transactionalConsumer -------------------------------------------

/** A consumed message as kafkajs delivers it. */
export interface KafkaIncomingMessage {
  /** Message key. */
  key: Buffer | null;
  /** Message payload. */
  value: Buffer | null;
  /** Offset in the partition, as a decimal string. */
  offset: string;
  /** Timestamp in milliseconds since the epoch, as a decimal string. */
  timestamp: string;
  /** Message headers. */
  headers?: Record<string, Buffer | string | (Buffer | string)[] | undefined>;
}

/** kafkajs `Batch` (the fields txkit reads). */
export interface KafkaBatchLike {
  /** Topic of the batch. */
  topic: string;
  /** Partition of the batch. */
  partition: number;
  /** Messages fetched. */
  messages: KafkaIncomingMessage[];
  /** Offset of the last record of the batch, control records included. */
  lastOffset(): string;
  /** The offset the fetch asked for (present in kafkajs 2). */
  fetchedOffset?: string;
}

/** kafkajs `EachBatchPayload` (the fields txkit reads). */
export interface KafkaEachBatchPayloadLike {
  /** The fetched batch. */
  batch: KafkaBatchLike;
  /** Marks `offset` as processed, for the consumer's own bookkeeping. */
  resolveOffset(offset: string): void;
  /** Sends a heartbeat to keep the group membership alive. */
  heartbeat(): Promise<void>;
  /** False once the consumer is stopping. */
  isRunning(): boolean;
  /** True when the batch is stale after a rebalance or seek. */
  isStale(): boolean;
}

/** kafkajs `Consumer` (the methods txkit calls). */
export interface KafkaConsumerLike {
  /** Connects the consumer. */
  connect(): Promise<void>;
  /** Leaves the group and disconnects. */
  disconnect(): Promise<void>;
  /** Subscribes to topics. */
  subscribe(subscription: { topics: string[]; fromBeginning?: boolean }): Promise<void>;
  /** Starts consuming, handing each fetched batch to `eachBatch`. */
  run(config: {
    autoCommit: boolean;
    eachBatchAutoResolve: boolean;
    partitionsConsumedConcurrently: number;
    eachBatch: (payload: KafkaEachBatchPayloadLike) => Promise<void>;
  }): Promise<void>;
  /** Stops consuming. */
  stop(): Promise<void>;
  /** Listens for consumer crashes. */
  on(event: 'consumer.crash', listener: (event: { payload: { error: Error; restart: boolean } }) => void): unknown;
  /** Moves the next fetch of a partition to `offset` (the batch in hand becomes stale). */
  seek?(position: { topic: string; partition: number; offset: string }): void;
}

/** The part of a kafkajs admin client transactionalConsumer uses with per-partition producers: the group's committed offsets. */
export interface KafkaOffsetsAdminLike {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  /** Committed offsets of a group (`'-1'` where none). */
  fetchOffsets(options: { groupId: string; topics: string[] }): Promise<{ topic: string; partitions: { partition: number; offset: string }[] }[]>;
}

/** kafkajs `ConsumerConfig`: the fields txkit sets. */
export interface KafkaConsumerConfigLike {
  /** The consumer group. */
  groupId: string;
  /** Always false: the consumer reads committed data only. */
  readUncommitted?: boolean;
}

/** A kafkajs `Kafka` instance, as far as transactionalConsumer needs it. */
export interface KafkaConsumerFactoryLike {
  /** Makes a consumer. */
  consumer(config: KafkaConsumerConfigLike): KafkaConsumerLike;
}

/** The consumer config a user may add; the group and the isolation level are txkit's. */
export type KafkaConsumerExtraConfig<K extends KafkaConsumerFactoryLike> = Omit<
  Parameters<K['consumer']>[0],
  'groupId' | 'readUncommitted'
>;

/** One fetched batch of one partition, handled inside one Kafka transaction. */
export interface TransactionalBatch {
  /** Topic of the batch. */
  readonly topic: string;
  /** Partition of the batch. */
  readonly partition: number;
  /** The committed messages of the batch, in offset order (aborted ones and control records are filtered out). */
  readonly messages: readonly KafkaIncomingMessage[];
  /** Produce the output through `tx.handle`; txkit adds the input offsets to this transaction itself. */
  readonly tx: Transaction<KafkaTxHandle>;
  /** Keeps the group membership alive during long work. */
  heartbeat(): Promise<void>;
}

/** A running consume-transform-produce loop made by transactionalConsumer. */
export interface TransactionalConsumer {
  /** Fences earlier producers of the transactional.id, then joins the group and consumes. */
  start(): Promise<void>;
  /**
   * Stops consuming after the batch in progress and leaves the group; the
   * context stays open. Idempotent. Called from eachBatch (to stop after
   * that batch), it resolves at once and the batch still commits; `done`
   * settles once the consumer has stopped.
   */
  stop(): Promise<void>;
  /**
   * Settles when the consumer has stopped: resolves after stop(), rejects with
   * the error that stopped it (a batch that failed for good, fencing, an
   * unknown commit, a consumer crash kafkajs does not restart).
   */
  readonly done: Promise<void>;
  /** Batches committed so far by this consumer. */
  readonly committedBatches: number;
  /**
   * Batches whose transaction was refused because another instance of the
   * group had taken the partition and fenced its producer (with
   * `transactionalIdPrefix`): their output never became visible, and the new
   * owner processes them.
   */
  readonly fencedBatches: number;
}
