/**
 * What both Kafka sources (kafkajs and @platformatic/kafka) share: their
 * options, the checks of every call, the out-of-range error, headers.
 * @internal
 */
import { randomUUID } from 'node:crypto';
import { ConfigError, TransactionStateError, TxkitError } from '../../core/index.js';
import type { KafkaIncomingMessage } from '../../adapters/kafka/index.js';
import type { KafkaSourceClientLike, KafkaSourceOptions } from './kafka-types.js';
import type { PlatformaticKafkaOptions } from '../../adapters/kafka/index.js';
import { isPlatformaticOptions } from '../../adapters/kafka/platformatic.js';

export interface ResolvedSourceOptions {
  /** The kafkajs client (unused when `platformatic` is set). */
  kafka: KafkaSourceClientLike;
  /** The connection options when the source reads with @platformatic/kafka. */
  platformatic: PlatformaticKafkaOptions | undefined;
  topic: string;
  partitions: readonly number[] | undefined;
  maxBufferedMessages: number;
  catchUpTimeoutMs: number;
  consumer: Record<string, unknown>;
  groupId: string;
}

export function resolveSourceOptions(options: KafkaSourceOptions): ResolvedSourceOptions {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('kafkaSource(options) needs { kafka, topic }', { backend: 'kafka' });
  }
  const { kafka, topic, partitions } = options;
  const platformatic = isPlatformaticOptions(kafka);
  if (!platformatic && (typeof kafka !== 'object' || kafka === null || typeof kafka.consumer !== 'function' || typeof kafka.admin !== 'function')) {
    throw new ConfigError(
      'kafkaSource option `kafka` must be a kafkajs Kafka instance (with consumer() and admin()) or @platformatic/kafka connection options ({ clientId, bootstrapBrokers })',
      { backend: 'kafka' },
    );
  }
  if (platformatic && (typeof kafka.clientId !== 'string' || kafka.clientId === '' || kafka.bootstrapBrokers.length === 0)) {
    throw new ConfigError("kafkaSource option `kafka`: @platformatic/kafka connection options need a clientId and bootstrapBrokers, e.g. { clientId: 'inbox', bootstrapBrokers: ['127.0.0.1:9092'] }", {
      backend: 'kafka',
    });
  }
  if (typeof topic !== 'string' || topic === '') {
    throw new ConfigError(`kafkaSource option \`topic\` must be a non-empty topic name, got ${JSON.stringify(topic)}`, { backend: 'kafka' });
  }
  if (partitions !== undefined) {
    if (!Array.isArray(partitions) || partitions.length === 0 || partitions.some((p) => !Number.isInteger(p) || p < 0)) {
      throw new ConfigError(
        `kafkaSource option \`partitions\` must be a non-empty array of partition numbers (integers >= 0), got ${JSON.stringify(partitions)}; leave it out to read every partition`,
        { backend: 'kafka' },
      );
    }
    if (new Set(partitions).size !== partitions.length) {
      throw new ConfigError(`kafkaSource option \`partitions\` lists a partition twice: ${JSON.stringify(partitions)}`, { backend: 'kafka' });
    }
  }
  const positive = (name: string, value: unknown, fallback: number): number => {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      throw new ConfigError(`kafkaSource option \`${name}\` must be a positive integer, got ${String(value)}; leave it out for ${fallback}`, { backend: 'kafka' });
    }
    return value;
  };
  if (options.consumer !== undefined && (typeof options.consumer !== 'object' || options.consumer === null)) {
    throw new ConfigError('kafkaSource option `consumer` must be an object of consumer settings (kafkajs, or @platformatic/kafka)', { backend: 'kafka' });
  }
  if (options.groupId !== undefined && (typeof options.groupId !== 'string' || options.groupId === '')) {
    throw new ConfigError('kafkaSource option `groupId` must be a non-empty string; leave it out for a group of its own', { backend: 'kafka' });
  }
  return {
    kafka: kafka as KafkaSourceClientLike,
    platformatic: platformatic ? kafka : undefined,
    topic,
    partitions: partitions === undefined ? undefined : [...partitions],
    maxBufferedMessages: positive('maxBufferedMessages', options.maxBufferedMessages, 1000),
    catchUpTimeoutMs: positive('catchUpTimeoutMs', options.catchUpTimeoutMs, 10_000),
    consumer: options.consumer ?? {},
    groupId: options.groupId ?? `txkit-source-${topic}-${randomUUID()}`,
  };
}


/** Throws when the source is closed, the offset is not an offset, or the partition is not one the source serves. */
export function checkSourceCall(
  name: string,
  { method, partition, offset, closed, wanted }: { method: string; partition: number; offset: number; closed: boolean; wanted: ReadonlySet<number> | undefined },
): void {
  if (closed) {
    throw new TransactionStateError(`kafkaSource('${name}').${method}() was called after close(); make a new source`, {
      backend: 'kafka',
      method,
      state: 'closed',
    });
  }
  if (!Number.isInteger(offset) || offset < 0) {
    throw new ConfigError(`kafkaSource.${method} needs an offset >= 0, got ${String(offset)}`, { backend: 'kafka' });
  }
  if (method !== 'partitions' && wanted !== undefined && !wanted.has(partition)) {
    throw new ConfigError(
      `kafkaSource('${name}') does not serve partition ${String(partition)}; it serves ${[...wanted].join(', ')}`,
      { backend: 'kafka' },
    );
  }
}

/** The partition's log no longer (or not yet) holds `offset`: the stored inbox position must move. */
export function offsetOutOfRange(name: string, partition: number, offset: number, low: number, high: number): TxkitError {
  return new TxkitError(
    'SOURCE_OFFSET_OUT_OF_RANGE',
    `kafkaSource: offset ${offset} of '${name}' partition ${partition} is outside the log [${low}, ${high}]: ` +
      (offset < low ? `records ${offset}..${low - 1} were deleted (retention) before they were processed` : 'the topic was recreated or truncated') +
      `; move the consumer's stored inbox position to a valid offset`,
    { backend: 'kafka' },
  );
}

export function headersOf(headers: KafkaIncomingMessage['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.map(String).join(',') : v.toString();
  }
  return out;
}
