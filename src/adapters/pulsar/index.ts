export { PulsarDriver, pulsarTransactions } from './pulsar-context.js';
export type { PulsarTransactionContext, PulsarTransactionsOptions } from './pulsar-context.js';
export type { PulsarBeginOptions, PulsarRecordMetadata, PulsarTxHandle } from './pulsar-types.js';
export {
  PULSAR_SERVER_ERROR_NAMES,
  PulsarChecksumError,
  PulsarClosedError,
  PulsarConnectionError,
  PulsarProtocolError,
  PulsarServerError,
  PulsarTimeoutError,
  PulsarUnsupportedError,
  classifyPulsarError,
} from './pulsar-errors.js';
export type { PulsarServerErrorName } from './pulsar-errors.js';
export { PulsarClient } from './protocol/client.js';
export type { PulsarClientOptions } from './protocol/client.js';
export { PulsarProducer } from './protocol/producer.js';
export type { ProducerMessage, ProducerOptions } from './protocol/producer.js';
export { PulsarConsumer } from './protocol/consumer.js';
export type { AckTarget, ConsumerOptions, PulsarMessage, ReceiveOptions, SubscriptionType } from './protocol/consumer.js';
export { PulsarMessageId } from './protocol/message-id.js';
export { PulsarTransactionsDisabledError } from './protocol/transaction-coordinator.js';
