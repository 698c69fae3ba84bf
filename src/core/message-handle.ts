import { ConfigError } from './errors.js';
import type { BackendName } from './types.js';

/**
 * The message shape shared by the Kafka, Pulsar and memory handles (the
 * kafkajs producer shape), so a broker can be swapped for another in tests.
 */
export interface OutgoingMessage {
  key?: string | Buffer | null;
  value: string | Buffer | null;
  headers?: Record<string, string | Buffer>;
  /** Explicit partition; otherwise chosen from the key. */
  partition?: number;
}

export interface SendRequest {
  topic: string;
  messages: OutgoingMessage[];
}

export interface SendBatchRequest {
  topicMessages: SendRequest[];
}

export interface RecordMetadata {
  topicName: string;
  partition: number;
  /** Offset of the first message of this request in the partition, once known. */
  baseOffset?: string;
}

export interface MessageHandle {
  send(request: SendRequest): Promise<RecordMetadata[]>;
  sendBatch(request: SendBatchRequest): Promise<RecordMetadata[]>;
}

/** Consumer positions committed with a transaction (kafkajs `sendOffsets` shape): offset = next to read. */
export interface SendOffsetsRequest {
  consumerGroupId: string;
  topics: { topic: string; partitions: { partition: number; offset: string }[] }[];
}

/** The same checks for every broker, so bad input fails the same way before anything is sent. */
export function validateSendRequest(request: SendRequest, backend: BackendName, method = 'send'): void {
  if (typeof request !== 'object' || request === null) {
    throw new ConfigError(`${method}() needs { topic, messages }, got ${String(request)}`, { backend });
  }
  if (typeof request.topic !== 'string' || request.topic.length === 0) {
    throw new ConfigError(`${method}() needs a non-empty topic name, got ${JSON.stringify(request.topic)}`, { backend });
  }
  if (!Array.isArray(request.messages) || request.messages.length === 0) {
    throw new ConfigError(`${method}() to topic '${request.topic}' needs a non-empty messages array`, { backend });
  }
  request.messages.forEach((m, i) => {
    const where = `${method}() to topic '${request.topic}', messages[${i}]`;
    if (typeof m !== 'object' || m === null) throw new ConfigError(`${where} must be an object`, { backend });
    if (!isBytes(m.value)) {
      throw new ConfigError(`${where}.value must be a string, a Buffer or null, got ${typeOf(m.value)}; serialize objects first (e.g. JSON.stringify)`, {
        backend,
      });
    }
    if (m.key !== undefined && !isBytes(m.key)) {
      throw new ConfigError(`${where}.key must be a string, a Buffer or null, got ${typeOf(m.key)}`, { backend });
    }
    if (m.partition !== undefined && !(Number.isInteger(m.partition) && m.partition >= 0)) {
      throw new ConfigError(`${where}.partition must be a non-negative integer, got ${String(m.partition)}`, { backend });
    }
    if (m.headers !== undefined) {
      if (typeof m.headers !== 'object' || m.headers === null) {
        throw new ConfigError(`${where}.headers must be an object of strings or Buffers`, { backend });
      }
      for (const [name, v] of Object.entries(m.headers)) {
        if (typeof v !== 'string' && !Buffer.isBuffer(v)) {
          throw new ConfigError(`${where}.headers['${name}'] must be a string or a Buffer, got ${typeOf(v)}`, { backend });
        }
      }
    }
  });
}

export function validateSendBatchRequest(request: SendBatchRequest, backend: BackendName): void {
  if (typeof request !== 'object' || request === null || !Array.isArray(request.topicMessages)) {
    throw new ConfigError('sendBatch() needs { topicMessages: [{ topic, messages }] }', { backend });
  }
  for (const r of request.topicMessages) validateSendRequest(r, backend, 'sendBatch');
}

export function validateSendOffsetsRequest(request: SendOffsetsRequest, backend: BackendName): void {
  if (typeof request !== 'object' || request === null || typeof request.consumerGroupId !== 'string' || request.consumerGroupId === '') {
    throw new ConfigError('sendOffsets() needs a non-empty consumerGroupId', { backend });
  }
  if (!Array.isArray(request.topics)) throw new ConfigError('sendOffsets() needs topics: [{ topic, partitions }]', { backend });
  for (const t of request.topics) {
    for (const p of t.partitions) {
      if (!Number.isInteger(p.partition) || p.partition < 0 || !/^\d+$/.test(String(p.offset))) {
        throw new ConfigError(
          `sendOffsets() for topic '${t.topic}' needs integer partitions and offsets as decimal strings, got ${JSON.stringify(p)}`,
          { backend },
        );
      }
    }
  }
}

function isBytes(v: unknown): boolean {
  return v === null || typeof v === 'string' || Buffer.isBuffer(v);
}

function typeOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}
