/**
 * The transactional outbox, relay and inbox pipeline: {@link Outbox} writes
 * messages in the business transaction, {@link OutboxRelay} moves the
 * committed ones to a broker inside broker transactions (sinks for Kafka,
 * Pulsar and the memory broker), and {@link pipeline} consumes a source with
 * each message's effects, outbox messages and consumer position committed in
 * one database transaction, setting poison messages aside as dead letters.
 * The records live in a SQL database ({@link sqlOutboxStore}, on knex or a pg Pool), MongoDB
 * ({@link mongoOutboxStore}) or the memory store ({@link MemoryOutboxStore}).
 *
 * @module txkit/outbox
 */
export { Outbox, OUTBOX_ID_HEADER, partitionOf } from './engine/outbox.js';
export type { OutboxOptions } from './engine/outbox.js';
export { OutboxRelay, OUTBOX_SEQ_HEADER } from './engine/relay.js';
export type { OutboxRelayOptions, RelayStats } from './engine/relay.js';
export type { LeaseOption } from './engine/partition-leases.js';
export { DEFAULT_REDELIVERY, Pipeline, pipeline } from './engine/pipeline.js';
export type { PipelineContext, PipelineOptions, PipelineStats, RedeliveryPolicy } from './engine/pipeline.js';
export { SqlOutboxStore, sqlOutboxStore } from './stores/sql-outbox-store.js';
export type { KnexInstanceLike, KnexRawLike, PgQueryableLike, SqlOutboxHandle, SqlOutboxStoreOptions } from './stores/sql-outbox-store.js';
export { MemoryOutboxStore } from './stores/memory-outbox-store.js';
export { MongoOutboxStore, mongoOutboxStore } from './stores/mongo-outbox-store.js';
export type {
  MongoChangeStreamLike,
  MongoCollectionLike,
  MongoDbLike,
  MongoDocumentLike,
  MongoOperationOptionsLike,
  MongoOutboxCollections,
  MongoOutboxStoreOptions,
  MongoOutboxWakeMode,
} from './stores/mongo-outbox-store.js';
export { memorySink, memorySource } from './memory/memory-broker.js';
export { InboxFencedError, MessageRetryError, POSITION_OUTBOX_HEADER, PoisonMessageError, RedeliveryExhaustedError, checkPositionOwner } from './outbox-errors.js';
export type {
  DeadLetter,
  DeadLetterStore,
  InboxMove,
  InboxPartition,
  InboxStore,
  LeaseMember,
  LeaseRequest,
  MessageSource,
  OutboxMessage,
  OutboxPartitionStatus,
  OutboxRecord,
  OutboxRecordStore,
  OutboxRelayStatus,
  OutboxStatus,
  OutboxStore,
  PartitionLease,
  PartitionLeaseStore,
  PendingRecord,
  RelayPartition,
  RelayPosition,
  RelaySink,
  SourceMessage,
} from './outbox-types.js';
export { kafkaSink } from './kafka/kafka-sink.js';
export type { KafkaRelaySink } from './kafka/kafka-sink.js';
export { kafkaSource } from './kafka/kafka-source.js';
export { RELAY_POSITIONS_SUBSCRIPTION, pulsarSink } from './pulsar/pulsar-sink.js';
export type { PulsarRelaySink, PulsarSinkOptions } from './pulsar/pulsar-sink.js';
export { PulsarOffsetOverflowError, pulsarSource } from './pulsar/pulsar-source.js';
export type { PulsarSourceOptions } from './pulsar/pulsar-source.js';
export type {
  KafkaAdminLike,
  KafkaMessageSource,
  KafkaSinkClientLike,
  KafkaSinkOptions,
  KafkaSourceAdminLike,
  KafkaSourceBatchLike,
  KafkaSourceBatchPayloadLike,
  KafkaSourceClientLike,
  KafkaSourceConsumerLike,
  KafkaSourceOptions,
  KafkaTopicPartitionsLike,
} from './kafka/kafka-types.js';
