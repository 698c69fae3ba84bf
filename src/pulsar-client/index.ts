/**
 * txkit's Pulsar client over the Pulsar binary protocol, in TypeScript: producers,
 * consumers and the transaction coordinator client ({@link PulsarClient}), with a
 * typed error for every failure ({@link PulsarClientError}). Needs no native
 * Pulsar library. `txkit/pulsar` runs Pulsar transactions on it and re-exports
 * the client.
 *
 * @module txkit/pulsar-client
 */
export { PulsarClient } from './client.js';
export type { PulsarClientOptions, PulsarTlsOptions } from './client-options.js';
export { oauth2Authentication, tokenAuthentication } from './authentication.js';
export type { OAuth2Options, PulsarAuthentication } from './authentication.js';
export { PulsarProducer } from './producer.js';
export type { ProducerMessage, ProducerOptions } from './producer.js';
export { PulsarConsumer } from './consumer.js';
export type { AckTarget, ConsumerOptions, PulsarMessage, ReceiveOptions, SubscriptionType } from './consumer.js';
export { PulsarMessageId } from './message-id.js';
export type { HashingScheme } from './routing.js';
export { fullTopicName, partitionTopicName } from './topic-name.js';
export {
  PULSAR_SERVER_ERROR_NAMES,
  PulsarChecksumError,
  PulsarClientError,
  PulsarClientErrorCodes,
  PulsarClosedError,
  PulsarConfigError,
  PulsarConnectionError,
  PulsarProtocolError,
  PulsarServerError,
  PulsarTimeoutError,
  PulsarTransactionsDisabledError,
  PulsarUnsupportedError,
} from './errors.js';
export type { PulsarClientErrorCode, PulsarClientErrorOptions, PulsarServerErrorName } from './errors.js';
