import { ConfigError } from '../../core/index.js';
import { kafkaTransactions } from '../../adapters/kafka/index.js';
import type { KafkaLike, KafkaTransactionContext, KafkaTransactionsOptions, KafkaTxHandle } from '../../adapters/kafka/index.js';
import type { RelaySink } from '../outbox-types.js';
import { isPlatformaticOptions } from '../../adapters/kafka/platformatic.js';
import { kafkajsPositionsClient, platformaticPositionsClient } from './kafka-positions-client.js';
import { KafkaRelayPositions, TOPIC_NAME } from './kafka-relay-positions.js';
import type { KafkaSinkOptions } from './kafka-types.js';

/**
 * Kafka as a relay sink. The position of each outbox partition is a record
 * in a compacted positions topic, sent with the batch (one `sendBatch`, one
 * produce request per broker) in the same transaction as the messages, the
 * way Kafka Connect's exactly-once sources keep their offsets in the offsets
 * topic: both become visible
 * together or not at all, and a relay transaction costs no round trip more
 * than one without a position (a consumer-group offset would cost
 * AddOffsetsToTxn, TxnOffsetCommit and their coordinator lookups).
 *
 * Positions are read with read_committed isolation after the relay's
 * producer has fenced any predecessor (InitProducerId completes the
 * predecessor's transactions first), up to the last stable offset, so a
 * committed position cannot be missed; then they are cached, updated by
 * this relay's own commits, and read again after a transaction whose outcome
 * is not known.
 *
 * With `context`, one transactional producer carries every partition: a
 * second relay of the relay id fences the first and stands by. With
 * `transactionalIdPrefix`, each outbox partition has a producer of its own
 * (`<prefix>-<relayId>-<partition>`), so relays of one relay id split the
 * partitions through leases in the outbox store, and the broker fences a
 * partition's former owner when the new one starts on it. Those producers
 * run on the client of `kafka`. Given @platformatic/kafka connection options
 * as `kafka` (`{ clientId, bootstrapBrokers, ... }`), the sink runs on
 * @platformatic/kafka alone: producers and the read of stored positions.
 *
 * @example
 * ```ts
 * // Any number of relay processes, the same options in each.
 * const sink = kafkaSink({ kafka, transactionalIdPrefix: 'orders-relay' });
 * const relay = new OutboxRelay({ store, sink, relayId: 'orders' });
 * relay.start();
 * // on shutdown:
 * await relay.stop();
 * await sink.close();
 * ```
 */
export function kafkaSink(options: KafkaSinkOptions): KafkaRelaySink {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError("kafkaSink needs options: { kafka, transactionalIdPrefix: 'orders-relay' } or { kafka, context: kafkaTransactions(...) }");
  }
  const { context, transactionalIdPrefix, kafka, positionsTopic, positionsPartitions = 16, readTimeoutMs = 60_000 } = options;
  if (context !== undefined && transactionalIdPrefix !== undefined) {
    throw new ConfigError('kafkaSink takes context (one producer for every partition) or transactionalIdPrefix (one per partition), not both');
  }
  if (context === undefined && transactionalIdPrefix === undefined) {
    throw new ConfigError(
      "kafkaSink needs transactionalIdPrefix (a producer per outbox partition, relays share the work), e.g. 'orders-relay', or context: kafkaTransactions(...)",
    );
  }
  if (context !== undefined && typeof context.withTransaction !== 'function') throw new ConfigError('kafkaSink needs context: kafkaTransactions(...)');
  if (transactionalIdPrefix !== undefined && (typeof transactionalIdPrefix !== 'string' || transactionalIdPrefix.trim() === '')) {
    throw new ConfigError(`kafkaSink transactionalIdPrefix must be a non-empty string, got ${JSON.stringify(transactionalIdPrefix)}`);
  }
  const onPlatformatic = isPlatformaticOptions(kafka);
  if (!onPlatformatic && (typeof kafka !== 'object' || kafka === null || typeof kafka.consumer !== 'function' || typeof kafka.admin !== 'function')) {
    throw new ConfigError(
      'kafkaSink needs kafka: the kafkajs Kafka instance (with consumer() and admin()), or @platformatic/kafka connection options ' +
        "({ clientId, bootstrapBrokers }); it reads the stored relay positions with it" +
        ('admin' in options ? ' (the `admin` option is gone: pass the Kafka instance instead)' : ''),
    );
  }
  if (positionsTopic !== undefined && (typeof positionsTopic !== 'string' || !TOPIC_NAME.test(positionsTopic))) {
    throw new ConfigError(`kafkaSink positionsTopic must be a Kafka topic name (letters, digits, '.', '_', '-'; at most 249), got ${JSON.stringify(positionsTopic)}`);
  }
  if (!Number.isInteger(positionsPartitions) || positionsPartitions < 1) {
    throw new ConfigError(`kafkaSink positionsPartitions must be a positive integer, got ${String(positionsPartitions)}`);
  }
  if (typeof readTimeoutMs !== 'number' || !(readTimeoutMs > 0) || !Number.isFinite(readTimeoutMs)) {
    throw new ConfigError(`kafkaSink readTimeoutMs must be a positive number of milliseconds, got ${String(readTimeoutMs)}`);
  }
  const { platformatic } = options;
  if (onPlatformatic) {
    if (platformatic !== undefined) {
      throw new ConfigError('kafkaSink: `kafka` is @platformatic/kafka connection options already, so everything runs on @platformatic/kafka; leave `platformatic` out');
    }
    if (options.client !== undefined && options.client !== 'platformatic') {
      throw new ConfigError(`kafkaSink: \`kafka\` is @platformatic/kafka connection options, but client is '${options.client}'`);
    }
  } else if (platformatic !== undefined) {
    if (transactionalIdPrefix === undefined) {
      throw new ConfigError('kafkaSink: `platformatic` sets up the per-partition producers of transactionalIdPrefix; with `context`, make it on @platformatic/kafka instead');
    }
    if (options.client !== undefined && options.client !== 'platformatic') {
      throw new ConfigError(`kafkaSink: \`platformatic\` runs the producers on @platformatic/kafka, but client is '${options.client}'`);
    }
  } else if (transactionalIdPrefix !== undefined && typeof kafka.producer !== 'function') {
    throw new ConfigError('kafkaSink with transactionalIdPrefix needs kafka with producer(): the kafkajs Kafka instance');
  }
  const positions = new KafkaRelayPositions(
    onPlatformatic ? platformaticPositionsClient(kafka) : kafkajsPositionsClient(kafka),
    positionsTopic,
    positionsPartitions,
    readTimeoutMs,
  );
  const contexts = new Map<string, KafkaTransactionContext>();
  let closed = false;
  const contextFor =
    transactionalIdPrefix === undefined
      ? undefined
      : ({ relayId, partition }: { relayId: string; partition: number }): KafkaTransactionContext => {
          const transactionalId = `${transactionalIdPrefix}-${relayId}-${partition}`;
          let made = contexts.get(transactionalId);
          if (made === undefined) {
            if (closed) throw new ConfigError('kafkaSink was closed: make a new one to relay again');
            const producerOptions: Partial<KafkaTransactionsOptions> = { transactionalId };
            if (options.producer !== undefined) producerOptions.producer = options.producer;
            if (options.client !== undefined) producerOptions.client = options.client;
            const on = onPlatformatic ? kafka : platformatic;
            made =
              on === undefined
                ? kafkaTransactions(kafka as KafkaLike, producerOptions as KafkaTransactionsOptions)
                : kafkaTransactions(on, producerOptions as KafkaTransactionsOptions & { client?: 'platformatic' });
            contexts.set(transactionalId, made);
          }
          return made;
        };
  return {
    ...(context === undefined ? {} : { context, singleProducer: true }),
    ...(contextFor === undefined ? {} : { contextFor }),
    resetPartition: async ({ relayId, partition }) => {
      positions.forget(relayId, partition);
      // A fresh producer next time: its InitProducerId fences whoever relayed the partition in between.
      const transactionalId = `${transactionalIdPrefix}-${relayId}-${partition}`;
      const made = transactionalIdPrefix === undefined ? undefined : contexts.get(transactionalId);
      contexts.delete(transactionalId);
      await made?.close();
    },
    close: async () => {
      closed = true;
      const open = [...contexts.values()];
      contexts.clear();
      await Promise.all(open.map((c) => c.close()));
    },
    readPosition: (_tx, at) => positions.read(at),
    positionMessage: (tx, position) => positions.message(tx, position),
    writePosition: async (tx, { relayId, partition, seq }) => positions.write(tx, relayId, partition, seq),
  };
}

/** The Kafka relay sink: {@link RelaySink} plus close(), which closes the producers it made (with `transactionalIdPrefix`). */
export interface KafkaRelaySink extends RelaySink<KafkaTxHandle> {
  /** Disconnects the per-partition producers the sink made; a `context` given to it stays open (close it yourself). */
  close(): Promise<void>;
}
