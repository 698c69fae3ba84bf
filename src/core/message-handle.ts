import { ConfigError } from './errors.js';
import type { BackendName } from './types.js';

/**
 * The message shape shared by the Kafka, Pulsar and memory handles (the
 * kafkajs producer shape), so a broker can be swapped for another in tests.
 */
export interface OutgoingMessage {
  /** Message key; messages with the same key go to the same partition. */
  key?: string | Buffer | null;
  /** Message payload; serialize objects first (e.g. JSON.stringify). */
  value: string | Buffer | null;
  /** Message headers, strings or Buffers. */
  headers?: Record<string, string | Buffer>;
  /** Explicit partition; otherwise chosen from the key. */
  partition?: number;
}

/** Messages for one topic (kafkajs `send` shape). */
export interface SendRequest {
  /** Non-empty topic name. */
  topic: string;
  /** At least one message. */
  messages: OutgoingMessage[];
}

/** Messages for several topics in one call (kafkajs `sendBatch` shape). */
export interface SendBatchRequest {
  /** One request per topic. */
  topicMessages: SendRequest[];
}

/** Where a sent message went, one entry per partition written. */
export interface RecordMetadata {
  /** Topic written. */
  topicName: string;
  /** Partition written. */
  partition: number;
  /** Offset of the first message of this request in the partition, once known. */
  baseOffset?: string;
}

/**
 * The transactional producer API shared by the Kafka, Pulsar and memory
 * handles: messages sent through it become visible only if the transaction commits.
 */
export interface MessageHandle {
  /**
   * Sends messages to one topic inside the transaction.
   * @throws ConfigError when the request is malformed (see {@link validateSendRequest}).
   */
  send(request: SendRequest): Promise<RecordMetadata[]>;
  /**
   * Sends messages to several topics inside the transaction.
   * @throws ConfigError when the request is malformed (see {@link validateSendBatchRequest}).
   */
  sendBatch(request: SendBatchRequest): Promise<RecordMetadata[]>;
}

/** Consumer positions committed with a transaction (kafkajs `sendOffsets` shape): offset = next to read. */
export interface SendOffsetsRequest {
  consumerGroupId: string;
  topics: { topic: string; partitions: { partition: number; offset: string }[] }[];
}

/**
 * The same checks for every broker, so bad input fails the same way before
 * anything is sent: a non-empty topic, a non-empty messages array, values and
 * keys that are strings, Buffers or null, non-negative integer partitions and
 * string or Buffer headers. `method` names the caller in the message.
 * @throws ConfigError naming the first invalid field.
 */
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
  const { messages } = request;
  // A relay transaction checks thousands of records: the message naming one is built only for a record that fails.
  for (let i = 0; i < messages.length; i++) {
    const problem = messageProblem(messages[i]);
    if (problem !== undefined) throw new ConfigError(`${method}() to topic '${request.topic}', messages[${i}]${problem}`, { backend });
  }
}

/** What is wrong with one message, as the end of a sentence naming it (`.value must be ...`); undefined when nothing is. */
function messageProblem(m: SendRequest['messages'][number] | undefined): string | undefined {
  if (typeof m !== 'object' || m === null) return ' must be an object';
  if (!isBytes(m.value)) return `.value must be a string, a Buffer or null, got ${typeOf(m.value)}; serialize objects first (e.g. JSON.stringify)`;
  if (m.key !== undefined && !isBytes(m.key)) return `.key must be a string, a Buffer or null, got ${typeOf(m.key)}`;
  if (m.partition !== undefined && !(Number.isInteger(m.partition) && m.partition >= 0)) {
    return `.partition must be a non-negative integer, got ${String(m.partition)}`;
  }
  const { headers } = m;
  if (headers === undefined) return undefined;
  if (typeof headers !== 'object' || headers === null) return '.headers must be an object of strings or Buffers';
  for (const name in headers) {
    if (!Object.hasOwn(headers, name)) continue;
    const v = headers[name];
    if (typeof v !== 'string' && !Buffer.isBuffer(v)) return `.headers['${name}'] must be a string or a Buffer, got ${typeOf(v)}`;
  }
  return undefined;
}

/**
 * Checks a `sendBatch` request: `topicMessages` must be an array, and each
 * entry passes {@link validateSendRequest}.
 * @throws ConfigError naming the first invalid field.
 */
export function validateSendBatchRequest(request: SendBatchRequest, backend: BackendName): void {
  if (typeof request !== 'object' || request === null || !Array.isArray(request.topicMessages)) {
    throw new ConfigError('sendBatch() needs { topicMessages: [{ topic, messages }] }', { backend });
  }
  for (const r of request.topicMessages) validateSendRequest(r, backend, 'sendBatch');
}

/**
 * Checks a `sendOffsets` request: a non-empty `consumerGroupId`, a `topics`
 * array, integer partitions and offsets as decimal strings.
 * @throws ConfigError naming the first invalid field.
 */
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
