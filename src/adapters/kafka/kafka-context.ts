import { ConfigError, createTransactionContext } from '../../core/index.js';
import type { ContextOptions, RetryPolicy, TransactionContext } from '../../core/index.js';
import { KafkaDriver } from './kafka-driver.js';
import { confluentProducerConfig, producerConfig } from './kafka-producer-config.js';
import type { ConfluentProducerConfig } from './kafka-producer-config.js';
import type { KafkaLike, KafkaProducerConfigLike, KafkaProducerExtraConfig, KafkaClientFlavor, KafkaTxHandle } from './kafka-types.js';
import { PlatformaticKafka, isPlatformaticOptions } from './platformatic.js';
import type { PlatformaticKafkaOptions, PlatformaticProducerConfig } from './platformatic.js';

/** Options of {@link kafkaTransactions}: the context options plus the producer settings. */
export interface KafkaTransactionsOptions<K extends KafkaLike = KafkaLike> extends ContextOptions {
  /**
   * The client behind `kafka`: kafkajs, the KafkaJS layer of
   * @confluentinc/kafka-javascript (librdkafka), whose producer settings
   * live in a `kafkaJS` block and whose sendOffsets takes the consumer, or
   * @platformatic/kafka, whose connection options (`{ clientId,
   * bootstrapBrokers, ... }`) are passed as `kafka`.
   * @default 'platformatic' when `kafka` is connection options with `bootstrapBrokers`, else 'kafkajs'
   */
  client?: KafkaClientFlavor;
  /**
   * The producer's transactional.id: stable per logical producer (e.g. per
   * service instance), so a restarted instance fences its zombie. Give this
   * or `transactionalIdPrefix`, not both.
   */
  transactionalId?: string;
  /**
   * Runs a pool of `poolSize` transactional producers with the ids
   * `<prefix>-0` .. `<prefix>-<poolSize - 1>`, so that many transactions run
   * at once. The prefix names one process: stable across its restarts (the
   * restarted process fences its predecessor's producers when its first
   * transaction begins) and never shared by two live processes, which would
   * fence each other. Two live contexts of one Kafka instance with the same
   * prefix are refused. Give this or `transactionalId`, not both.
   */
  transactionalIdPrefix?: string;
  /**
   * Producers of the pool, i.e. transactions that run at once; more wait
   * for a free one, first come first served. Keep it the same across
   * restarts of a process: a smaller pool leaves the ids above it unfenced.
   * @default 1
   */
  poolSize?: number;
  /**
   * Further kafkajs producer config (e.g. `transactionTimeout`, `retry`).
   * txkit always sets `transactionalId`, `idempotent: true` and
   * `maxInFlightRequests: 1`; `retry` is merged over DEFAULT_KAFKA_PRODUCER_RETRY.
   * With @platformatic/kafka: `transactionTimeout` and `retry` as for
   * kafkajs, plus any @platformatic/kafka producer option except the
   * transactional ones txkit sets (`timeout` is `transactionTimeout`).
   * @default {}
   */
  producer?: KafkaProducerExtraConfig<K>;
}

/** A Kafka transaction context: one transactional producer per transaction running at once (one, or a pool). */
export type KafkaTransactionContext = TransactionContext<KafkaTxHandle> & {
  /** The first transactional.id of the context (with one producer, its only one). */
  readonly transactionalId: string;
  /** Every transactional.id of the context, one per producer of the pool. */
  readonly transactionalIds: readonly string[];
};

/** Prefixes of the live pooled contexts, per Kafka instance. */
const livePrefixes = new WeakMap<object, Set<string>>();

/** Longest transactional.id txkit makes (Kafka keeps ids as short strings; the pool suffix is added to the prefix). */
const MAX_ID_LENGTH = 249;

/** Where a context made by kafkaTransactions keeps its client flavour, for transactionalConsumer. */
const KAFKA_CLIENT: unique symbol = Symbol('txkit.kafka.client');
/** Where it keeps its driver's renewProducers, for settleKafkaProducers. */
const KAFKA_RENEW: unique symbol = Symbol('txkit.kafka.renew');
/** Where it keeps the Kafka instance it was made with, for transactionalConsumer's admin client. */
const KAFKA_INSTANCE: unique symbol = Symbol('txkit.kafka.instance');

/**
 * A transaction context on kafkajs transactional producers: one
 * (`transactionalId`), or a pool of `poolSize` (`transactionalIdPrefix`).
 * Kafka allows one open transaction per producer, so as many transactions
 * run at once as the context has producers: further concurrent
 * `withTransaction` calls from separate async flows queue and each gets its
 * turn on the next producer to become free. The producer is created and connected at the
 * first transaction (every producer of a pool then, so the first
 * transaction fences the zombies of every id), and rebuilt after a failed request. There are no
 * savepoints, and a second transaction begun inside a running one of the same
 * context throws TransactionPropagationError. When another producer takes
 * over one of its transactional.ids the context is fenced: FencedError, and it
 * refuses new transactions. `close()` disconnects the producers.
 * @throws ConfigError when `kafka` has no `producer()`, neither or both of
 *   `transactionalId` and `transactionalIdPrefix` are given, `poolSize` is not
 *   a positive whole number (or above 1 without a prefix), the prefix is in
 *   use by another live context of the same Kafka instance, or the producer
 *   config contradicts a transactional producer (`idempotent: false`,
 *   `maxInFlightRequests` other than 1).
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
 *
 * // Eight transactions at once, e.g. for concurrent HTTP handlers; one prefix per process.
 * const pooled = kafkaTransactions(kafka, { transactionalIdPrefix: `orders-${podName}`, poolSize: 8 });
 * ```
 */
export function kafkaTransactions(
  kafka: PlatformaticKafkaOptions,
  options: Omit<KafkaTransactionsOptions, 'client' | 'producer'> & { client?: 'platformatic'; producer?: PlatformaticProducerConfig },
): KafkaTransactionContext;
export function kafkaTransactions<K extends KafkaLike>(kafka: K, options: KafkaTransactionsOptions<K>): KafkaTransactionContext;
export function kafkaTransactions(kafka: KafkaLike | PlatformaticKafkaOptions, options: KafkaTransactionsOptions): KafkaTransactionContext {
  const platformatic = isPlatformaticOptions(kafka);
  if (typeof (kafka as { beginTransaction?: unknown } | null)?.beginTransaction === 'function') {
    throw new ConfigError(
      'kafkaTransactions got a @platformatic/kafka Producer: pass its connection options instead, e.g. ' +
        "kafkaTransactions({ clientId: 'orders', bootstrapBrokers: ['127.0.0.1:9092'] }, { transactionalId: 'orders-1' }); " +
        'txkit makes a producer per transactional.id of the context',
      { backend: 'kafka' },
    );
  }
  if (typeof kafka !== 'object' || kafka === null || (!platformatic && typeof (kafka as Partial<KafkaLike>).producer !== 'function')) {
    throw new ConfigError(
      'kafkaTransactions(kafka, options) needs a kafkajs Kafka instance (an object with producer()), or @platformatic/kafka ' +
        "connection options ({ clientId, bootstrapBrokers }) with client: 'platformatic'",
      { backend: 'kafka' },
    );
  }
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError("kafkaTransactions(kafka, options) needs options with a transactionalId, e.g. { transactionalId: 'orders-1' }", {
      backend: 'kafka',
    });
  }
  const { transactionalId, transactionalIdPrefix, poolSize, producer = {}, client = platformatic ? 'platformatic' : 'kafkajs', ...contextOptions } = options;
  if (client !== 'kafkajs' && client !== 'confluent' && client !== 'platformatic') {
    throw new ConfigError(`kafkaTransactions: client must be 'kafkajs', 'confluent' or 'platformatic', got ${JSON.stringify(client)}`, {
      backend: 'kafka',
    });
  }
  if ((client === 'platformatic') !== platformatic) {
    throw new ConfigError(
      client === 'platformatic'
        ? "kafkaTransactions with client 'platformatic' takes @platformatic/kafka connection options as `kafka`, " +
            "e.g. { clientId: 'orders', bootstrapBrokers: ['127.0.0.1:9092'] }, not a client instance"
        : `kafkaTransactions: \`kafka\` is @platformatic/kafka connection options (it has bootstrapBrokers) but client is '${client}'; ` +
            "pass client: 'platformatic' or leave client out",
      { backend: 'kafka' },
    );
  }
  const ids = transactionalIdsOf(transactionalId, transactionalIdPrefix, poolSize);
  const configs = ids.map((id) => ({
    transactionalId: id,
    config:
      client === 'confluent'
        ? confluentProducerConfig(id, producer as ConfluentProducerConfig)
        : producerConfig(id, producer as KafkaProducerConfigLike),
  }));
  const instance = platformatic ? new PlatformaticKafka(kafka) : kafka;
  const releases: (() => void | Promise<void>)[] = [];
  if (transactionalIdPrefix !== undefined) {
    const live = livePrefixes.get(kafka) ?? new Set<string>();
    if (live.has(transactionalIdPrefix)) {
      throw new ConfigError(
        `kafkaTransactions: transactionalIdPrefix '${transactionalIdPrefix}' is in use by another live context of this Kafka instance; ` +
          'two pools with one prefix fence each other. Close the other context first, or give each its own prefix',
        { backend: 'kafka' },
      );
    }
    livePrefixes.set(kafka, live.add(transactionalIdPrefix));
    releases.push(() => void live.delete(transactionalIdPrefix));
  }
  if (instance instanceof PlatformaticKafka) releases.push(() => instance.close());
  const driver = new KafkaDriver(instance, configs, client, async () => {
    for (const release of releases) await release();
  });
  return createTransactionContext(driver, contextOptions, {
    transactionalId: driver.transactionalId,
    transactionalIds: driver.transactionalIds,
    [KAFKA_CLIENT]: client,
    [KAFKA_RENEW]: () => driver.renewProducers(),
    [KAFKA_INSTANCE]: instance,
  });
}

/** The transactional.ids of a context: the one given, or `<prefix>-0..<prefix>-<poolSize - 1>`. */
function transactionalIdsOf(transactionalId: unknown, prefix: unknown, poolSize: unknown): string[] {
  const size = poolSize ?? 1;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size > 1024) {
    throw new ConfigError(`kafkaTransactions: poolSize must be a whole number of producers from 1 to 1024, got ${JSON.stringify(poolSize)}`, {
      backend: 'kafka',
    });
  }
  if (transactionalId !== undefined && prefix !== undefined) {
    throw new ConfigError('kafkaTransactions takes transactionalId (one producer) or transactionalIdPrefix (a pool), not both', { backend: 'kafka' });
  }
  if (prefix !== undefined) {
    if (typeof prefix !== 'string' || prefix.trim() === '' || prefix.length + 1 + String(size - 1).length > MAX_ID_LENGTH) {
      throw new ConfigError(
        `kafkaTransactions needs transactionalIdPrefix as a non-empty string of at most ${MAX_ID_LENGTH - 5} characters, got ${JSON.stringify(prefix)}; ` +
          "one per process, stable across its restarts, e.g. 'orders-' plus the pod name",
        { backend: 'kafka' },
      );
    }
    return Array.from({ length: size }, (_, i) => `${prefix}-${i}`);
  }
  if (typeof transactionalId !== 'string' || transactionalId.trim() === '') {
    throw new ConfigError(
      `kafkaTransactions needs a non-empty transactionalId string, got ${JSON.stringify(transactionalId)}; ` +
        'use one stable id per producing instance so a restarted instance fences its predecessor ' +
        '(or transactionalIdPrefix with poolSize for a pool of producers)',
      { backend: 'kafka' },
    );
  }
  if (size !== 1) {
    throw new ConfigError(
      `kafkaTransactions: poolSize ${size} needs transactionalIdPrefix (the pool's ids are <prefix>-0..<prefix>-${size - 1}), not transactionalId`,
      { backend: 'kafka' },
    );
  }
  return [transactionalId];
}

/** The client flavour of a context made by kafkaTransactions, or undefined for any other value. */
export function kafkaClientOf(ctx: unknown): KafkaClientFlavor | undefined {
  if (typeof ctx !== 'object' || ctx === null || !(KAFKA_CLIENT in ctx)) return undefined;
  const client = ctx[KAFKA_CLIENT];
  return client === 'kafkajs' || client === 'confluent' || client === 'platformatic' ? client : undefined;
}

/** The Kafka instance a context made by kafkaTransactions was made with; undefined for any other value. */
export function kafkaInstanceOf(ctx: unknown): KafkaLike | undefined {
  if (typeof ctx !== 'object' || ctx === null || !(KAFKA_INSTANCE in ctx)) return undefined;
  return ctx[KAFKA_INSTANCE] as KafkaLike;
}

/**
 * Resolves once every transaction the context's producers ended is complete
 * at the coordinator, so what they committed (group offsets included) is
 * what any reader sees. kafkajs reads group offsets without KIP-447's
 * require_stable: an offset committed in a transaction whose EndTxn was
 * answered but whose markers are not written yet (the broker restarted in
 * between) still reads as the one before it.
 *
 * Each producer is renewed: an empty transaction per producer, all held open
 * until every one has begun (so each takes a different producer), begins on
 * a new producer, whose InitProducerId the coordinator answers only after the
 * markers of the previous transaction are written. It runs under the
 * context's retry policy (or `options.retry`).
 */
export async function settleKafkaProducers(ctx: KafkaTransactionContext, options: { retry?: Partial<RetryPolicy> | false } = {}): Promise<void> {
  const renew = (ctx as unknown as { [KAFKA_RENEW]?: () => void })[KAFKA_RENEW];
  if (renew === undefined) throw new ConfigError('settleKafkaProducers needs a context made by kafkaTransactions', { backend: 'kafka' });
  renew();
  const producers = ctx.transactionalIds.length;
  let begun = 0;
  let openAll!: () => void;
  const allBegun = new Promise<void>((resolve) => (openAll = resolve));
  const empty = async (): Promise<void> => {
    begun += 1;
    if (begun === producers) openAll();
    await allBegun;
  };
  // A run that fails for good lets the others end too, then its error is the result.
  await Promise.all(Array.from({ length: producers }, () => ctx.withTransaction(empty, options).finally(openAll)));
}
