/**
 * Pulsar transactions (PIP-31) over txkit's own implementation of the Pulsar
 * binary protocol ({@link pulsarTransactions}): messages sent and
 * acknowledgements made in one transaction commit or abort together. Also the
 * client it runs on ({@link PulsarClient}, with producers and consumers) and a
 * typed error for every server error code. Needs no native Pulsar library.
 *
 * @module txkit/pulsar
 */
export { pulsarTransactions } from './pulsar-context.js';
export type { PulsarTransactionContext, PulsarTransactionsOptions } from './pulsar-context.js';
export { PulsarDriver } from './pulsar-driver.js';
export type { PulsarDriverDefaults } from './pulsar-driver.js';
export type { HashingScheme } from '../../pulsar-client/routing.js';
export type { PulsarBeginOptions, PulsarRecordMetadata, PulsarTxHandle } from './pulsar-types.js';
export {
  PULSAR_SERVER_ERROR_NAMES,
  PulsarChecksumError,
  PulsarClosedError,
  PulsarConnectionError,
  PulsarProtocolError,
  PulsarServerError,
  PulsarTimeoutError,
  PulsarTransactionsDisabledError,
  PulsarUnsupportedError,
  classifyPulsarError,
} from './pulsar-errors.js';
export type { PulsarServerErrorName } from './pulsar-errors.js';
export { PulsarClient } from '../../pulsar-client/client.js';
export type { PulsarClientOptions, PulsarTlsOptions } from '../../pulsar-client/client-options.js';
export { oauth2Authentication, tokenAuthentication } from '../../pulsar-client/authentication.js';
export type { OAuth2Options, PulsarAuthentication } from '../../pulsar-client/authentication.js';
export { PulsarProducer } from '../../pulsar-client/producer.js';
export type { ProducerMessage, ProducerOptions } from '../../pulsar-client/producer.js';
export { PulsarConsumer } from '../../pulsar-client/consumer.js';
export type { AckTarget, ConsumerOptions, PulsarMessage, ReceiveOptions, SubscriptionType } from '../../pulsar-client/consumer.js';
export { PulsarMessageId } from '../../pulsar-client/message-id.js';
