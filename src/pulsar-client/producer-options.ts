/**
 * The options of a producer and their checks, and the messages it takes.
 */
import { PulsarConfigError } from './errors.js';
import { positiveNumber } from './client-options.js';
import { hashingScheme } from './routing.js';
import type { HashingScheme } from './routing.js';

/** Options of {@link PulsarClient.createProducer}. */
export interface ProducerOptions {
  /** Topic name (`name`, `tenant/ns/name` or `persistent://tenant/ns/name`); partitioned or not. */
  topic: string;
  /**
   * Producer name, which the broker's deduplication keys on: a producer that reconnects
   * under the same name continues its sequence. Must be unique among connected producers.
   * @default a name the broker generates
   */
  producerName?: string;
  /** Time a message may wait for the broker's receipt, reconnects included. @default 30_000 */
  sendTimeoutMs?: number;
  /** Sends (single messages or batches) awaiting receipts per partition before send() waits for room. @default 1_000 */
  maxPendingMessages?: number;
  /** Most messages in one batched entry; 1 turns batching off. @default 1_000 */
  batchingMaxMessages?: number;
  /** Most payload bytes in one batched entry (a larger message travels alone). @default 131_072 */
  batchingMaxBytes?: number;
  /**
   * How a keyed message picks its partition: `'javaStringHash'` (Java's `String.hashCode()`
   * of the key), as a Java producer does by default, or `'murmur3_32'` (Murmur3 of the
   * key's UTF-8 bytes), as a Java producer built with `HashingScheme.Murmur3_32Hash` does.
   * Producers that share keys must use the same scheme, or per-key order is lost.
   * @default 'javaStringHash'
   */
  hashingScheme?: HashingScheme;
}

/** A message to produce. */
export interface ProducerMessage {
  /** Partition key: routes the message and is the key consumers see. */
  key?: string | Buffer | null;
  value: string | Buffer | null;
  properties?: Readonly<Record<string, string>>;
  /** Application event time, epoch milliseconds. */
  eventTime?: number;
  /** Explicit partition of a partitioned topic; otherwise chosen from the key. */
  partition?: number;
}

/** The options with their defaults applied. @internal */
export interface ResolvedProducerOptions {
  producerName: string | undefined;
  sendTimeoutMs: number;
  maxPendingMessages: number;
  batchingMaxMessages: number;
  batchingMaxBytes: number;
  hashingScheme: HashingScheme;
}

/** Checks the options and applies their defaults. @internal */
export function resolveProducerOptions(options: ProducerOptions): ResolvedProducerOptions {
  const sendTimeoutMs = options.sendTimeoutMs ?? 30_000;
  positiveNumber(sendTimeoutMs, 'sendTimeoutMs');
  const maxPendingMessages = options.maxPendingMessages ?? 1_000;
  if (!Number.isInteger(maxPendingMessages) || maxPendingMessages < 1) {
    throw new PulsarConfigError(`maxPendingMessages must be a positive integer, got ${String(maxPendingMessages)}`);
  }
  if (options.producerName !== undefined && (typeof options.producerName !== 'string' || options.producerName === '')) {
    throw new PulsarConfigError('producerName must be a non-empty string');
  }
  const batchingMaxMessages = options.batchingMaxMessages ?? 1_000;
  if (!Number.isInteger(batchingMaxMessages) || batchingMaxMessages < 1) {
    throw new PulsarConfigError(`batchingMaxMessages must be a positive integer, got ${String(batchingMaxMessages)}`);
  }
  const batchingMaxBytes = options.batchingMaxBytes ?? 128 * 1024;
  if (!Number.isInteger(batchingMaxBytes) || batchingMaxBytes < 1) {
    throw new PulsarConfigError(`batchingMaxBytes must be a positive integer, got ${String(batchingMaxBytes)}`);
  }
  return {
    producerName: options.producerName,
    sendTimeoutMs,
    maxPendingMessages,
    batchingMaxMessages,
    batchingMaxBytes,
    hashingScheme: hashingScheme(options.hashingScheme),
  };
}
