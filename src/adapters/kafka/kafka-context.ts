import { ConfigError, createTransactionContext } from '../../core/index.js';
import type { ContextOptions, TransactionContext } from '../../core/index.js';
import { KafkaDriver } from './kafka-driver.js';
import { confluentProducerConfig, producerConfig } from './kafka-producer-config.js';
import type { ConfluentProducerConfig } from './kafka-producer-config.js';
import type { KafkaLike, KafkaProducerConfigLike, KafkaProducerExtraConfig, KafkaClientFlavor, KafkaTxHandle } from './kafka-types.js';

/** Options of {@link kafkaTransactions}: the context options plus the producer settings. */
export interface KafkaTransactionsOptions<K extends KafkaLike = KafkaLike> extends ContextOptions {
  /**
   * The client behind `kafka`: kafkajs, or the KafkaJS layer of
   * @confluentinc/kafka-javascript (librdkafka), whose producer settings
   * live in a `kafkaJS` block and whose sendOffsets takes the consumer.
   * @default 'kafkajs'
   */
  client?: KafkaClientFlavor;
  /**
   * The producer's transactional.id: stable per logical producer (e.g. per
   * service instance), so a restarted instance fences its zombie. Required.
   */
  transactionalId: string;
  /**
   * Further kafkajs producer config (e.g. `transactionTimeout`, `retry`).
   * txkit always sets `transactionalId`, `idempotent: true` and
   * `maxInFlightRequests: 1`; `retry` is merged over DEFAULT_KAFKA_PRODUCER_RETRY.
   * @default {}
   */
  producer?: KafkaProducerExtraConfig<K>;
}

/** A Kafka transaction context: one transactional producer, transactions run one at a time. */
export type KafkaTransactionContext = TransactionContext<KafkaTxHandle> & { readonly transactionalId: string };

/** Where a context made by kafkaTransactions keeps its client flavour, for transactionalConsumer. */
const KAFKA_CLIENT: unique symbol = Symbol('txkit.kafka.client');

/**
 * A transaction context on one kafkajs transactional producer. Transactions
 * of this context run one after another (Kafka allows one open transaction
 * per producer): concurrent `withTransaction` calls from separate async flows
 * queue and each gets its turn. The producer is created and connected at the
 * first transaction, and rebuilt after a failed request. There are no
 * savepoints, and a second transaction begun inside a running one of the same
 * context throws TransactionPropagationError. When another producer takes
 * over the transactional.id the context is fenced: FencedError, and it
 * refuses new transactions. `close()` disconnects the producer.
 * @throws ConfigError when `kafka` has no `producer()`, `transactionalId` is
 *   missing or empty, or the producer config contradicts a transactional
 *   producer (`idempotent: false`, `maxInFlightRequests` other than 1).
 * @example
 * ```ts
 * import { kafkaTransactions } from 'txkit/kafka';
 *
 * const kafka = new Kafka({ brokers: ['127.0.0.1:9092'], clientId: 'orders' }); // kafkajs' Kafka
 * const ctx = kafkaTransactions(kafka, { transactionalId: 'orders-service-1' });
 * await ctx.withTransaction(async (tx) => {
 *   await tx.handle.send({ topic: 'orders', messages: [{ key: 'o-1', value: 'created' }] });
 *   await tx.handle.send({ topic: 'audit', messages: [{ value: 'o-1 created' }] });
 * }); // both committed, or neither visible to read_committed consumers
 * await ctx.close();
 * ```
 */
export function kafkaTransactions<K extends KafkaLike>(kafka: K, options: KafkaTransactionsOptions<K>): KafkaTransactionContext {
  if (typeof kafka !== 'object' || kafka === null || typeof (kafka as Partial<KafkaLike>).producer !== 'function') {
    throw new ConfigError('kafkaTransactions(kafka, options) needs a kafkajs Kafka instance (an object with producer())', {
      backend: 'kafka',
    });
  }
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError("kafkaTransactions(kafka, options) needs options with a transactionalId, e.g. { transactionalId: 'orders-1' }", {
      backend: 'kafka',
    });
  }
  const { transactionalId, producer = {}, client = 'kafkajs', ...contextOptions } = options;
  if (client !== 'kafkajs' && client !== 'confluent') {
    throw new ConfigError(`kafkaTransactions: client must be 'kafkajs' or 'confluent', got ${JSON.stringify(client)}`, { backend: 'kafka' });
  }
  if (typeof transactionalId !== 'string' || transactionalId.trim() === '') {
    throw new ConfigError(
      `kafkaTransactions needs a non-empty transactionalId string, got ${JSON.stringify(transactionalId)}; ` +
        'use one stable id per producing instance so a restarted instance fences its predecessor',
      { backend: 'kafka' },
    );
  }
  const config =
    client === 'kafkajs'
      ? producerConfig(transactionalId, producer as KafkaProducerConfigLike)
      : confluentProducerConfig(transactionalId, producer as ConfluentProducerConfig);
  const driver = new KafkaDriver(kafka, transactionalId, config, client);
  return createTransactionContext(driver, contextOptions, { transactionalId, [KAFKA_CLIENT]: client });
}

/** The client flavour of a context made by kafkaTransactions, or undefined for any other value. */
export function kafkaClientOf(ctx: unknown): KafkaClientFlavor | undefined {
  if (typeof ctx !== 'object' || ctx === null || !(KAFKA_CLIENT in ctx)) return undefined;
  const client = ctx[KAFKA_CLIENT];
  return client === 'kafkajs' || client === 'confluent' ? client : undefined;
}
