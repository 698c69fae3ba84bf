import { ConfigError, createTransactionContext } from '../../core/index.js';
import type { ContextOptions, TransactionContext } from '../../core/index.js';
import type { PulsarBeginOptions, PulsarTxHandle } from './pulsar-types.js';
import { PulsarDriver } from './pulsar-driver.js';
import { PulsarClient } from '../../pulsar-client/client.js';
import { positiveNumber } from '../../pulsar-client/client-options.js';
import type { PulsarClientOptions } from '../../pulsar-client/client-options.js';
import { hashingScheme as checkHashingScheme } from '../../pulsar-client/routing.js';
import type { HashingScheme } from '../../pulsar-client/routing.js';

/**
 * Options of {@link pulsarTransactions}: the context options every backend takes, the
 * options of the client it makes (with `serviceUrl`), and the transaction defaults.
 */
export interface PulsarTransactionsOptions
  extends ContextOptions<PulsarBeginOptions>,
    Omit<PulsarClientOptions, 'serviceUrl'> {
  /**
   * The cluster to connect to (`pulsar://host:port`); the context makes its own client
   * and closes it with the context. Give either serviceUrl or client.
   */
  serviceUrl?: string;
  /**
   * A client to share (e.g. with the consumers whose messages the transactions
   * acknowledge); the context does not close it. Give either serviceUrl or client.
   */
  client?: PulsarClient;
  /**
   * Default time after which the transaction coordinator aborts a transaction by itself.
   * @default 60_000
   */
  transactionTimeoutMs?: number;
  /** Time a message sent in a transaction may wait for the broker's receipt. @default 30_000 */
  sendTimeoutMs?: number;
  /**
   * How a keyed message picks its partition: `'javaStringHash'`, as a Java producer does by
   * default, or `'murmur3_32'`, as one built with `HashingScheme.Murmur3_32Hash` does.
   * @default 'javaStringHash'
   */
  hashingScheme?: HashingScheme;
}

/** The transaction context {@link pulsarTransactions} returns: `withTransaction` over {@link PulsarTxHandle}, plus its client. */
export type PulsarTransactionContext = TransactionContext<PulsarTxHandle, PulsarBeginOptions> & {
  /** The client the context runs on: subscribe consumers with it to acknowledge in transactions. */
  readonly client: PulsarClient;
};

const CLIENT_OPTION_KEYS = [
  'operationTimeoutMs',
  'connectionTimeoutMs',
  'keepAliveIntervalMs',
  'initialReconnectDelayMs',
  'maxReconnectDelayMs',
  'maxLookupRedirects',
  'tls',
  'authentication',
] as const;

/**
 * Pulsar transactions (PIP-31) over txkit's own implementation of the Pulsar binary
 * protocol: messages sent and acknowledgements made through `tx.handle` commit or abort
 * together, so consume-transform-produce from one topic to another is exactly-once.
 * The broker needs `transactionCoordinatorEnabled=true`.
 *
 * @throws {@link txkit!ConfigError | ConfigError} unless exactly one of `serviceUrl` and `client` is given, when
 *   `client` is not a {@link PulsarClient} or comes with client options, or when a timeout or the service URL is invalid.
 *
 * @example
 * ```ts
 * const ctx = pulsarTransactions({ serviceUrl: 'pulsar://127.0.0.1:6650' });
 * await ctx.withTransaction(async (tx) => {
 *   await tx.handle.send({ topic: 'orders', messages: [{ key: 'o-1', value: 'created' }] });
 *   await tx.handle.send({ topic: 'audit', messages: [{ value: 'o-1 created' }] });
 * }); // both delivered, or neither
 * await ctx.close();
 * ```
 */
export function pulsarTransactions(options: PulsarTransactionsOptions): PulsarTransactionContext {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('pulsarTransactions() needs options: { serviceUrl } or { client }', { backend: 'pulsar' });
  }
  const { serviceUrl, client: given, transactionTimeoutMs = 60_000, sendTimeoutMs = 30_000, hashingScheme, ...rest } = options;
  const clientOptions: Partial<PulsarClientOptions> = {};
  const contextOptions: Record<string, unknown> = { ...rest };
  for (const key of CLIENT_OPTION_KEYS) {
    if (rest[key] !== undefined) (clientOptions as Record<string, unknown>)[key] = rest[key];
    delete contextOptions[key];
  }
  if ((serviceUrl === undefined) === (given === undefined)) {
    throw new ConfigError('pulsarTransactions() needs exactly one of serviceUrl (a new client) or client (a shared one)', {
      backend: 'pulsar',
    });
  }
  if (given !== undefined) {
    if (!(given instanceof PulsarClient)) throw new ConfigError('pulsarTransactions({ client }) needs a PulsarClient', { backend: 'pulsar' });
    if (Object.keys(clientOptions).length > 0) {
      throw new ConfigError(`${Object.keys(clientOptions).join(', ')} configure a new client: set them on the PulsarClient you pass instead`, {
        backend: 'pulsar',
      });
    }
  }
  positiveNumber(transactionTimeoutMs, 'transactionTimeoutMs');
  positiveNumber(sendTimeoutMs, 'sendTimeoutMs');
  const scheme = checkHashingScheme(hashingScheme);
  const client = given ?? new PulsarClient({ ...clientOptions, serviceUrl: serviceUrl as string });
  const driver = new PulsarDriver(client, given === undefined, { transactionTimeoutMs, sendTimeoutMs, hashingScheme: scheme });
  return createTransactionContext(driver, contextOptions as ContextOptions<PulsarBeginOptions>, { client });
}
