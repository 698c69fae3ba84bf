/**
 * The subset of kafkajs that txkit calls, typed structurally so that neither
 * the runtime nor the emitted .d.ts imports kafkajs (DESIGN section 1). A
 * kafkajs `Kafka` instance fits `KafkaLike`; so does any client with the
 * KafkaJS API, such as @confluentinc/kafka-javascript's KafkaJS layer.
 */
import type { MessageHandle, SendOffsetsRequest } from '../../core/index.js';

/** kafkajs `RetryOptions`. */
export interface KafkaRetryOptions {
  maxRetryTime?: number;
  initialRetryTime?: number;
  factor?: number;
  multiplier?: number;
  retries?: number;
}

/** A message as kafkajs sends it. */
export interface KafkaOutgoingMessage {
  key?: string | Buffer | null;
  value: string | Buffer | null;
  partition?: number;
  headers?: Record<string, string | Buffer>;
}

/** kafkajs `RecordMetadata` (the fields txkit reads). */
export interface KafkaRecordMetadataLike {
  topicName: string;
  partition: number;
  baseOffset?: string;
}

/** kafkajs `Transaction`: what `producer.transaction()` resolves to. */
export interface KafkaNativeTransaction {
  send(record: { topic: string; messages: KafkaOutgoingMessage[] }): Promise<KafkaRecordMetadataLike[]>;
  sendBatch(batch: { topicMessages: { topic: string; messages: KafkaOutgoingMessage[] }[] }): Promise<KafkaRecordMetadataLike[]>;
  sendOffsets(offsets: SendOffsetsRequest | { consumer: object; topics: SendOffsetsRequest['topics'] }): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** kafkajs `Producer` (the methods txkit calls). */
export interface KafkaProducerLike {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  transaction(): Promise<KafkaNativeTransaction>;
}

/** kafkajs `ProducerConfig`: the fields txkit sets; others pass through untouched. */
export interface KafkaProducerConfigLike {
  transactionalId?: string;
  idempotent?: boolean;
  maxInFlightRequests?: number;
  transactionTimeout?: number;
  retry?: KafkaRetryOptions;
}

/** A kafkajs `Kafka` instance, as far as the transaction adapter needs it. */
export interface KafkaLike {
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
 */
export interface KafkaSendOffsetsRequest extends SendOffsetsRequest {
  consumer?: object;
}

/** Which KafkaJS-API client the `kafka` argument is. */
export type KafkaClientFlavor = 'kafkajs' | 'confluent';

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
  key: Buffer | null;
  value: Buffer | null;
  offset: string;
  timestamp: string;
  headers?: Record<string, Buffer | string | (Buffer | string)[] | undefined>;
}

/** kafkajs `Batch` (the fields txkit reads). */
export interface KafkaBatchLike {
  topic: string;
  partition: number;
  messages: KafkaIncomingMessage[];
  lastOffset(): string;
}

/** kafkajs `EachBatchPayload` (the fields txkit reads). */
export interface KafkaEachBatchPayloadLike {
  batch: KafkaBatchLike;
  resolveOffset(offset: string): void;
  heartbeat(): Promise<void>;
  isRunning(): boolean;
  isStale(): boolean;
}

/** kafkajs `Consumer` (the methods txkit calls). */
export interface KafkaConsumerLike {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  subscribe(subscription: { topics: string[]; fromBeginning?: boolean }): Promise<void>;
  run(config: {
    autoCommit: boolean;
    eachBatchAutoResolve: boolean;
    partitionsConsumedConcurrently: number;
    eachBatch: (payload: KafkaEachBatchPayloadLike) => Promise<void>;
  }): Promise<void>;
  stop(): Promise<void>;
  on(event: 'consumer.crash', listener: (event: { payload: { error: Error; restart: boolean } }) => void): unknown;
}

/** kafkajs `ConsumerConfig`: the fields txkit sets. */
export interface KafkaConsumerConfigLike {
  groupId: string;
  readUncommitted?: boolean;
}

/** A kafkajs `Kafka` instance, as far as transactionalConsumer needs it. */
export interface KafkaConsumerFactoryLike {
  consumer(config: KafkaConsumerConfigLike): KafkaConsumerLike;
}

/** The consumer config a user may add; the group and the isolation level are txkit's. */
export type KafkaConsumerExtraConfig<K extends KafkaConsumerFactoryLike> = Omit<
  Parameters<K['consumer']>[0],
  'groupId' | 'readUncommitted'
>;
