/**
 * Kafka transactions on a kafkajs, @confluentinc/kafka-javascript (KafkaJS
 * layer) or @platformatic/kafka transactional producer ({@link kafkaTransactions}),
 * and exactly-once consume-transform-produce from Kafka to Kafka
 * ({@link transactionalConsumer}). The clients are typed structurally; only
 * @platformatic/kafka, whose connection options are passed instead of a
 * client, is loaded by txkit, at the first transaction.
 *
 * @module txkit/kafka
 */
export { kafkaTransactions } from './kafka-context.js';
export { DEFAULT_KAFKA_PRODUCER_RETRY } from './kafka-producer-config.js';
export type { KafkaTransactionContext, KafkaTransactionsOptions } from './kafka-context.js';
export { KAFKA_ERROR_TABLE, classifyKafkaError } from './kafka-errors.js';
export type { KafkaErrorKind, KafkaErrorRule } from './kafka-errors.js';
export type { PlatformaticConsumerLike, PlatformaticKafkaOptions, PlatformaticProducerConfig } from './platformatic.js';
export { transactionalConsumer } from './kafka-consumer.js';
export type { TransactionalConsumerOptions } from './kafka-consumer.js';
export type { PlatformaticTransactionalConsumerOptions } from './platformatic-consumer.js';
export type {
  KafkaBatchLike,
  KafkaClientFlavor,
  KafkaConsumerConfigLike,
  KafkaConsumerExtraConfig,
  KafkaConsumerFactoryLike,
  KafkaConsumerLike,
  KafkaEachBatchPayloadLike,
  KafkaIncomingMessage,
  KafkaLike,
  KafkaNativeTransaction,
  KafkaOutgoingMessage,
  KafkaProducerConfigLike,
  KafkaProducerExtraConfig,
  KafkaProducerLike,
  KafkaRecordMetadataLike,
  KafkaRetryOptions,
  KafkaSendOffsetsRequest,
  KafkaTxHandle,
  TransactionalBatch,
  TransactionalConsumer,
} from './kafka-types.js';
