/**
 * A group's committed offsets read with `require_stable` (KIP-447, OffsetFetch v7) over the
 * connections of a kafkajs client. kafkajs speaks OffsetFetch up to v4, which answers a
 * partition whose offset a transaction is still committing (EndTxn answered, markers not
 * written yet) with the offset before it; with `require_stable` the coordinator answers
 * UNSTABLE_OFFSET_COMMIT instead until the transaction is complete, and the read is asked
 * again, as the Java consumer does. Only the request is txkit's: kafkajs' own cluster
 * (brokers, TLS, SASL, timeouts) carries it.
 * @internal
 */
import type { NativeErrorCode } from '../../core/error-codes.js';
import { backoff, wait } from '../../core/backoff.js';
import type { BackoffShape } from '../../core/backoff.js';
import { TransientTransactionError, TxkitError } from '../../core/errors.js';
import { kafkaErrorRule } from './kafka-errors.js';
import { clusterFactoryOf } from './kafkajs-cluster.js';

/** OffsetFetch's API key; v7 adds require_stable and is a flexible version (KIP-482). */
const OFFSET_FETCH = 9;
const VERSION = 7;
/** Error codes the request is asked again for: the coordinator is loading, moved, or unreachable; or an offset is unstable. */
const COORDINATOR_LOADING = 14;
const COORDINATOR_NOT_AVAILABLE = 15;
const NOT_COORDINATOR = 16;
const UNSTABLE_OFFSET_COMMIT = 88;
/** Pauses between tries: 20 ms doubling to 500 ms. */
const RETRY: BackoffShape = { initialMs: 20, maxMs: 500, multiplier: 2, jitter: 'none' };

/** The part of a kafkajs Broker this uses. */
interface BrokerLike {
  versions?: Record<number, { minVersion: number; maxVersion: number } | undefined> | null;
}
interface ClusterLike {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  findGroupCoordinator(options: { groupId: string }): Promise<BrokerLike>;
  metadata(options: { topics: string[] }): Promise<{ topicMetadata: { topic: string; partitionMetadata: { partitionId: number }[] }[] }>;
}

/** What {@link StableOffsets.read} found: the offsets, or that the broker is too old for require_stable. */
export type StableRead = { offsets: Map<string, bigint> } | { unsupported: true };

export interface StableOffsetsOptions {
  /** How long a read may wait for offsets to become stable (and for a coordinator) before it fails. @default 60000 */
  timeoutMs?: number;
  /** Called before each repeated request (e.g. to heartbeat the group while waiting). */
  onWait?: () => Promise<void>;
}

/** Reads committed offsets with require_stable through one kafkajs client's own cluster, connected at the first read. */
export class StableOffsets {
  readonly #createCluster: () => ClusterLike;
  #cluster: Promise<ClusterLike> | undefined;

  private constructor(createCluster: () => ClusterLike) {
    this.#createCluster = createCluster;
  }

  /** A reader for `kafka` when it is a kafkajs client (the Kafka class of kafkajs 2.x); undefined otherwise. */
  static of(kafka: unknown): StableOffsets | undefined {
    const factory = clusterFactoryOf(kafka);
    if (factory === undefined) return undefined;
    return new StableOffsets(() => factory.create({ allowAutoTopicCreation: false }) as ClusterLike);
  }

  /**
   * The committed offsets of `groupId` on `topics`, by `<partition>:<topic>` (partitions without one left out),
   * once no transaction is still committing any of them.
   * @throws TransientTransactionError when they stay unstable (or no coordinator answers) for `timeoutMs`.
   */
  async read(groupId: string, topics: readonly string[], options: StableOffsetsOptions = {}): Promise<StableRead> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    // Every partition named: the coordinator checks require_stable only for the partitions a request lists.
    let partitions: { topic: string; partitions: number[] }[] | undefined;
    // Kept while it answers; looked up again on a new connection after a failure or a moved coordinator.
    let broker: BrokerLike | undefined;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        const delay = backoff(RETRY, attempt);
        if (Date.now() + delay > deadline) {
          throw new TransientTransactionError(
            `the committed offsets of group '${groupId}' did not become readable within ${timeoutMs} ms (${last}): ` +
              'a transaction that commits them is not complete (its markers are not written yet); they are read again before the next batch',
            { backend: 'kafka', code: UNSTABLE_CODE },
          );
        }
        await wait(delay);
        await options.onWait?.();
      }
      try {
        const cluster = await this.#connected();
        partitions ??= (await cluster.metadata({ topics: [...topics] })).topicMetadata.map((t) => ({
          topic: t.topic,
          partitions: t.partitionMetadata.map((p) => p.partitionId),
        }));
        broker ??= await cluster.findGroupCoordinator({ groupId });
      } catch (err) {
        last = `finding the coordinator: ${(err as Error).message}`;
        broker = this.#dropCluster();
        continue;
      }
      const range = broker.versions?.[OFFSET_FETCH];
      if (range !== undefined && range !== null && range.maxVersion < VERSION) return { unsupported: true };
      let answer: OffsetFetchAnswer;
      try {
        answer = await send(broker, groupId, partitions);
      } catch (err) {
        last = `OffsetFetch: ${(err as Error).message}`;
        broker = this.#dropCluster();
        continue;
      }
      if (answer.errorCode === COORDINATOR_LOADING || answer.errorCode === COORDINATOR_NOT_AVAILABLE || answer.errorCode === NOT_COORDINATOR || answer.errorCode === UNSTABLE_OFFSET_COMMIT) {
        last = `error code ${answer.errorCode}`;
        if (answer.errorCode !== UNSTABLE_OFFSET_COMMIT) broker = this.#dropCluster();
        continue;
      }
      if (answer.errorCode !== 0) throw offsetFetchError(groupId, answer.errorCode);
      const wanted = new Set(topics);
      const offsets = new Map<string, bigint>();
      let unstable = false;
      for (const p of answer.partitions) {
        if (!wanted.has(p.topic)) continue;
        if (p.errorCode === UNSTABLE_OFFSET_COMMIT) unstable = true;
        else if (p.errorCode !== 0) throw offsetFetchError(groupId, p.errorCode, `${p.topic}[${p.partition}]`);
        else if (p.offset >= 0n) offsets.set(`${p.partition}:${p.topic}`, p.offset);
      }
      if (!unstable) return { offsets };
      last = 'an offset is unstable (UNSTABLE_OFFSET_COMMIT)';
    }
  }

  async disconnect(): Promise<void> {
    const cluster = this.#cluster;
    this.#cluster = undefined;
    await (await cluster?.catch(() => undefined))?.disconnect().catch(() => undefined);
  }

  #connected(): Promise<ClusterLike> {
    if (this.#cluster === undefined) {
      const cluster = this.#createCluster();
      const connected = cluster.connect().then(() => cluster);
      this.#cluster = connected;
      connected.catch(() => {
        if (this.#cluster === connected) this.#cluster = undefined;
      });
    }
    return this.#cluster;
  }

  /** After a failure: the next attempt looks up the coordinator on a new connection (so no broker is kept). */
  #dropCluster(): undefined {
    void this.disconnect();
    return undefined;
  }
}

/** The code of the error a read that stayed unstable ends with: Kafka's name of the condition. */
export const UNSTABLE_CODE = 'UNSTABLE_OFFSET_COMMIT' as NativeErrorCode;

/** True for the error {@link StableOffsets.read} ends with when the offsets stayed unstable. */
export function isUnstableOffsets(err: unknown): boolean {
  return err instanceof TxkitError && err.code === UNSTABLE_CODE;
}

function offsetFetchError(groupId: string, code: number, where?: string): TxkitError {
  const [name, rule] = kafkaErrorRule({ code }) ?? [`KAFKA_ERROR_${code}`, undefined];
  return new TxkitError(
    name as NativeErrorCode,
    `reading the committed offsets of group '${groupId}'${where === undefined ? '' : ` on ${where}`} failed: ${name} (error code ${code})${rule === undefined ? '' : `, ${rule.reason}`}`,
    { backend: 'kafka' },
  );
}

interface OffsetFetchAnswer {
  errorCode: number;
  partitions: { topic: string; partition: number; offset: bigint; errorCode: number }[];
}

/** Sends OffsetFetch v7 for `partitions`, require_stable set, through the broker's connection pool. */
async function send(broker: BrokerLike, groupId: string, partitions: readonly { topic: string; partitions: readonly number[] }[]): Promise<OffsetFetchAnswer> {
  const symbol = Object.getOwnPropertySymbols(Object.getPrototypeOf(broker) as object).find((s) => s.description === 'private:Broker:sendRequest');
  const sendRequest = symbol === undefined ? undefined : (broker as unknown as Record<symbol, unknown>)[symbol];
  if (typeof sendRequest !== 'function') throw new Error('this kafkajs version has no Broker sendRequest: cannot read offsets with require_stable');
  const body = encodeRequest(groupId, partitions);
  const request = {
    apiKey: OFFSET_FETCH,
    apiVersion: VERSION,
    apiName: 'OffsetFetch',
    // kafkajs writes request header v1; header v2 (flexible versions) adds its tagged fields, the body's first byte here.
    encode: () => Promise.resolve({ buf: body, buffer: body }),
  };
  const response = {
    decode: (payload: Buffer) => Promise.resolve(decodeResponse(payload)),
    parse: (decoded: OffsetFetchAnswer) => Promise.resolve(decoded),
  };
  return (await (sendRequest as (r: object) => Promise<OffsetFetchAnswer>).call(broker, { request, response })) as OffsetFetchAnswer;
}

/** The OffsetFetch v7 request body (with the header's tagged fields first). @internal */
export function encodeRequest(groupId: string, topics: readonly { topic: string; partitions: readonly number[] }[]): Buffer {
  const parts: Buffer[] = [Buffer.from([0])]; // request header v2: no tagged fields
  parts.push(compactString(groupId), uvarint(topics.length + 1));
  for (const { topic, partitions } of topics) {
    const indexes = Buffer.alloc(4 * partitions.length);
    partitions.forEach((p, i) => indexes.writeInt32BE(p, 4 * i));
    parts.push(compactString(topic), uvarint(partitions.length + 1), indexes, Buffer.from([0]));
  }
  parts.push(Buffer.from([1]), Buffer.from([0])); // require_stable; no tagged fields
  return Buffer.concat(parts);
}

function compactString(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  return Buffer.concat([uvarint(bytes.length + 1), bytes]);
}

function uvarint(value: number): Buffer {
  const bytes: number[] = [];
  let v = value >>> 0;
  while (v >= 0x80) {
    bytes.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

/** OffsetFetch v7 response, after kafkajs took off the size and correlation id. @internal */
export function decodeResponse(payload: Buffer): OffsetFetchAnswer & { clientSideThrottleTime: number } {
  const r = new Reader(payload);
  r.taggedFields(); // response header v1
  const throttleTime = r.int32();
  const partitions: OffsetFetchAnswer['partitions'] = [];
  const topics = r.compactLength();
  for (let t = 0; t < topics; t++) {
    const topic = r.compactString() ?? '';
    const count = r.compactLength();
    for (let i = 0; i < count; i++) {
      const partition = r.int32();
      const offset = r.int64();
      r.int32(); // committed_leader_epoch
      r.compactString(); // metadata
      const errorCode = r.int16();
      r.taggedFields();
      partitions.push({ topic, partition, offset, errorCode });
    }
    r.taggedFields();
  }
  const errorCode = r.int16();
  return { errorCode, partitions, clientSideThrottleTime: throttleTime };
}

class Reader {
  #offset = 0;
  readonly #buffer: Buffer;
  constructor(buffer: Buffer) {
    this.#buffer = buffer;
  }
  int16(): number {
    const v = this.#buffer.readInt16BE(this.#offset);
    this.#offset += 2;
    return v;
  }
  int32(): number {
    const v = this.#buffer.readInt32BE(this.#offset);
    this.#offset += 4;
    return v;
  }
  int64(): bigint {
    const v = this.#buffer.readBigInt64BE(this.#offset);
    this.#offset += 8;
    return v;
  }
  uvarint(): number {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = this.#buffer.readUInt8(this.#offset++);
      value |= (byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return value >>> 0;
    }
    throw new Error('malformed OffsetFetch response: varint too long');
  }
  /** A compact array's length (null reads as empty). */
  compactLength(): number {
    return Math.max(0, this.uvarint() - 1);
  }
  compactString(): string | undefined {
    const n = this.uvarint();
    if (n === 0) return undefined;
    const s = this.#buffer.toString('utf8', this.#offset, this.#offset + n - 1);
    this.#offset += n - 1;
    return s;
  }
  taggedFields(): void {
    const count = this.uvarint();
    for (let i = 0; i < count; i++) {
      this.uvarint(); // tag
      const size = this.uvarint(); // read before it moves the offset on
      this.#offset += size;
    }
  }
}
