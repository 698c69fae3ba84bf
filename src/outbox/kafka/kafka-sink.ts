import { ConfigError } from '../../core/index.js';
import type { KafkaTxHandle } from '../../adapters/kafka/index.js';
import type { RelaySink } from '../outbox-types.js';
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
 */
export function kafkaSink(options: KafkaSinkOptions): RelaySink<KafkaTxHandle> {
  if (typeof options !== 'object' || options === null) throw new ConfigError('kafkaSink needs options: { context: kafkaTransactions(...), kafka }');
  const { context, kafka, positionsTopic, positionsPartitions = 16, readTimeoutMs = 60_000 } = options;
  if (context === undefined || typeof context.withTransaction !== 'function') throw new ConfigError('kafkaSink needs context: kafkaTransactions(...)');
  if (typeof kafka !== 'object' || kafka === null || typeof kafka.consumer !== 'function' || typeof kafka.admin !== 'function') {
    throw new ConfigError(
      'kafkaSink needs kafka: the kafkajs Kafka instance (with consumer() and admin()); it reads the stored relay positions with it' +
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
  const positions = new KafkaRelayPositions(kafka, positionsTopic, positionsPartitions, readTimeoutMs);
  return {
    context,
    readPosition: (_tx, { relayId, partition }) => positions.read(relayId, partition),
    positionMessage: (tx, { relayId, partition, seq }) => positions.message(tx, relayId, partition, seq),
    writePosition: async (tx, { relayId, partition, seq }) => positions.write(tx, relayId, partition, seq),
  };
}
