export { DEFAULT_KAFKA_PRODUCER_RETRY, kafkaTransactions } from './kafka-context.js';
export type { KafkaTransactionContext, KafkaTransactionsOptions } from './kafka-context.js';
export { KAFKA_ERROR_TABLE, classifyKafkaError } from './kafka-errors.js';
export type { KafkaErrorKind, KafkaErrorRule } from './kafka-errors.js';
export { transactionalConsumer } from './kafka-consumer.js';
export type { TransactionalConsumer, TransactionalConsumerOptions, TransactionalBatch } from './kafka-consumer.js';
export type {
  KafkaBatchLike,
  KafkaClientFlavor,
  KafkaConsumerFactoryLike,
  KafkaConsumerLike,
  KafkaIncomingMessage,
  KafkaLike,
  KafkaNativeTransaction,
  KafkaProducerLike,
  KafkaRetryOptions,
  KafkaSendOffsetsRequest,
  KafkaTxHandle,
} from './kafka-types.js';
