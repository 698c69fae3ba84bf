/**
 * kafkaSource on @platformatic/kafka: each partition is fetched at the
 * offsets the pipeline asks for, with Fetch requests of its own to the
 * partition's leader (read_committed), so the source needs no consumer
 * group, no seek and no pause: the pipeline's stored position is the only
 * position there is. Records of aborted transactions are kept out by the
 * Java consumer's rule (readCommittedAsJava: the library's own filter drops
 * committed records in some cases), control records are never returned.
 * @internal
 */
import { ConfigError } from '../../core/index.js';
import type { TxkitError } from '../../core/index.js';
import { wait } from '../../core/backoff.js';
import type { PlatformaticKafkaOptions } from '../../adapters/kafka/index.js';
import { PlatformaticKafka, hasPlatformaticError } from '../../adapters/kafka/platformatic.js';
import { CONTROL_BATCH, readCommittedAsJava } from '../../adapters/kafka/platformatic-consumer.js';
import type { FetchingClientLike } from '../../adapters/kafka/platformatic-consumer.js';
import type { SourceMessage } from '../outbox-types.js';
import { checkSourceCall, offsetOutOfRange } from './kafka-source-shared.js';
import type { ResolvedSourceOptions } from './kafka-source-shared.js';
import type { KafkaMessageSource } from './kafka-types.js';

/** Isolation level of a Fetch that reads committed records only (up to the last stable offset). */
export const READ_COMMITTED = 1;
/** ListOffsets timestamps: the log start and (read_committed) the last stable offset. */
export const EARLIEST = -2n;
export const LATEST = -1n;
/** Longest a single Fetch waits at the broker for new records, so close() and deadlines are seen in time. */
const LONG_POLL_MS = 500;
/** Fetches of one call that may fail on a moved leader before the error goes to the caller. */
const LEADER_RETRIES = 5;

interface FetchedRecord {
  offsetDelta: number;
  key?: Buffer | null;
  value?: Buffer | null;
  headers?: [Buffer | null, Buffer | null][];
}
interface FetchedBatch {
  firstOffset: bigint;
  lastOffsetDelta: number;
  producerId: bigint;
  attributes: number;
  records: FetchedRecord[];
}
interface FetchedPartition {
  partitionIndex: number;
  lastStableOffset: bigint;
  abortedTransactions: { producerId: bigint; firstOffset: bigint }[];
  records?: FetchedBatch[] | null;
}
interface ConsumerLike {
  metadata(options: { topics: string[]; forceUpdate?: boolean }): Promise<{ topics: Map<string, { id: string; partitions: { leader: number; leaderEpoch: number }[] }> }>;
  fetch(options: Record<string, unknown>): Promise<{ responses: { topicId: string; partitions: FetchedPartition[] }[] }>;
  /** Read with the consumer's isolation level, read_committed by default (the library's schema refuses an explicit one). */
  listOffsets(options: { topics: string[]; timestamp: bigint }): Promise<Map<string, bigint[]>>;
  clearMetadata?(): void;
  close(force?: boolean): Promise<void>;
}

/** The committed records of one partition read past the pipeline's last offset and not taken yet: [start, end). */
interface Buffered {
  start: number;
  /** The offset the next Fetch starts at: every record before it is buffered, taken, aborted or a marker. */
  end: number;
  messages: SourceMessage[];
}

/** What one Fetch read: the committed records from `from` on, where the next Fetch starts, and the last stable offset. */
interface Read {
  messages: SourceMessage[];
  next: number;
  stable: number;
}

export class PlatformaticSource implements KafkaMessageSource {
  readonly name: string;
  readonly #o: ResolvedSourceOptions;
  readonly #connection: PlatformaticKafkaOptions;
  readonly #loader: PlatformaticKafka;
  #consumer: Promise<ConsumerLike> | undefined;
  #wanted: ReadonlySet<number> | undefined;
  #closed = false;
  readonly #buffers = new Map<number, Buffered>();
  readonly #closing = new AbortController();

  constructor(options: ResolvedSourceOptions, connection: PlatformaticKafkaOptions) {
    this.#o = options;
    this.#connection = connection;
    this.#loader = new PlatformaticKafka(connection);
    this.name = options.topic;
  }

  async partitions(): Promise<number[]> {
    this.#check('partitions', 0, 0);
    await this.#start();
    return [...(this.#wanted as ReadonlySet<number>)].sort((a, b) => a - b);
  }

  async fetch(partition: number, offset: number, max: number): Promise<SourceMessage[]> {
    this.#check('fetch', partition, offset);
    if (!Number.isInteger(max) || max < 1) throw new ConfigError(`kafkaSource.fetch needs max >= 1, got ${String(max)}`, { backend: 'kafka' });
    await this.#start();
    this.#check('fetch', partition, offset);
    const deadline = Date.now() + this.#o.catchUpTimeoutMs;
    // Bounded by the deadline: each round reads once more from where the last one ended.
    for (let round = 0; ; round++) {
      const buffered = this.#take(partition, offset, max);
      if (buffered.length > 0) return buffered;
      const from = this.#resumeAt(partition, offset);
      // Empty means caught up (runUntilIdle() relies on it): return it only once nothing committed is left to read.
      const read = await this.#read(partition, from, round === 0 ? 0 : Math.min(LONG_POLL_MS, Math.max(0, deadline - Date.now())));
      this.#append(partition, from, read);
      if (read.messages.length === 0 && (read.next >= read.stable || Date.now() >= deadline || this.#closed)) return [];
    }
  }

  async waitFor(partition: number, offset: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    this.#check('waitFor', partition, offset);
    await this.#start();
    const deadline = Date.now() + timeoutMs;
    // Bounded by the deadline: each Fetch waits at most LONG_POLL_MS at the broker.
    while (!this.#closed && signal?.aborted !== true) {
      if (this.#take(partition, offset, 1).length > 0) return;
      const left = deadline - Date.now();
      if (left <= 0) return;
      const from = this.#resumeAt(partition, offset);
      this.#append(partition, from, await this.#read(partition, from, Math.min(LONG_POLL_MS, left)));
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    const consumer = this.#consumer;
    this.#consumer = undefined;
    this.#buffers.clear();
    await (await consumer?.catch(() => undefined))?.close(true).catch(() => undefined);
    await this.#loader.close();
  }

  #check(method: string, partition: number, offset: number): void {
    checkSourceCall(this.name, { method, partition, offset, closed: this.#closed, wanted: this.#wanted });
  }

  /** The library's consumer (never joins a group: it only fetches and lists offsets) and the partitions served. */
  #start(): Promise<ConsumerLike> {
    // After close() nothing opens a client again (each public call checks for it first).
    if (this.#closed) checkSourceCall(this.name, { method: 'fetch', partition: 0, offset: 0, closed: true, wanted: undefined });
    this.#consumer ??= (async () => {
      const { Consumer } = (await this.#loader.load()) as unknown as { Consumer: new (options: Record<string, unknown>) => ConsumerLike };
      const consumer = new Consumer({ ...this.#connection, ...this.#o.consumer, groupId: this.#o.groupId, autocommit: false });
      readCommittedAsJava(consumer as unknown as FetchingClientLike);
      try {
        const metadata = await consumer.metadata({ topics: [this.#o.topic] });
        const count = metadata.topics.get(this.#o.topic)?.partitions.length ?? 0;
        if (count === 0) throw new ConfigError(`kafkaSource: topic '${this.#o.topic}' has no partitions; create it first`, { backend: 'kafka' });
        const wanted = this.#o.partitions ?? Array.from({ length: count }, (_, p) => p);
        const missing = wanted.filter((p) => p >= count);
        if (missing.length > 0) {
          throw new ConfigError(`kafkaSource: topic '${this.#o.topic}' has no partition ${missing.join(', ')} (it has ${count})`, { backend: 'kafka' });
        }
        this.#wanted = new Set(wanted);
        return consumer;
      } catch (err) {
        await consumer.close(true).catch(() => undefined);
        throw err;
      }
    })();
    // A start that failed is forgotten, so the next call tries again.
    const starting = this.#consumer;
    starting.catch(() => {
      if (this.#consumer === starting) this.#consumer = undefined;
    });
    return starting;
  }

  /** Up to `max` buffered records from `offset` on; records before it were consumed and are released. */
  #take(partition: number, offset: number, max: number): SourceMessage[] {
    const buffer = this.#buffers.get(partition);
    if (buffer === undefined || offset < buffer.start || offset > buffer.end) return [];
    let drop = 0;
    while (drop < buffer.messages.length && (buffer.messages[drop] as SourceMessage).offset < offset) drop++;
    if (drop > 0) buffer.messages.splice(0, drop);
    buffer.start = offset;
    return buffer.messages.slice(0, max);
  }

  /** Where the next Fetch for `offset` starts: after the buffer when the buffer reaches it, else at `offset`. */
  #resumeAt(partition: number, offset: number): number {
    const buffer = this.#buffers.get(partition);
    return buffer !== undefined && offset >= buffer.start && offset <= buffer.end ? buffer.end : offset;
  }

  #append(partition: number, from: number, read: Read): void {
    let buffer = this.#buffers.get(partition);
    if (buffer === undefined || from !== buffer.end) this.#buffers.set(partition, (buffer = { start: from, end: from, messages: [] }));
    buffer.messages.push(...read.messages);
    buffer.end = Math.max(buffer.end, read.next);
  }

  /** One Fetch of `partition` from `from` at its leader, waiting up to `maxWaitMs` for records; nothing once closed. */
  async #read(partition: number, from: number, maxWaitMs: number): Promise<Read> {
    // A call that was waiting when close() ran ends empty, without opening a client again.
    if (this.#closed) return { messages: [], next: from, stable: from };
    const consumer = await this.#start();
    const { topic } = this.#o;
    for (let attempt = 0; ; attempt++) {
      const metadata = await consumer.metadata({ topics: [topic], forceUpdate: attempt > 0 });
      const meta = metadata.topics.get(topic);
      const leader = meta?.partitions[partition];
      if (meta === undefined || leader === undefined) throw new ConfigError(`kafkaSource: topic '${topic}' has no partition ${partition}`, { backend: 'kafka' });
      try {
        const response = await consumer.fetch({
          node: leader.leader,
          maxWaitTime: maxWaitMs,
          minBytes: 1,
          isolationLevel: READ_COMMITTED,
          topics: [{ topicId: meta.id, partitions: [{ partition, fetchOffset: BigInt(from), partitionMaxBytes: this.#maxBytes(), currentLeaderEpoch: -1, lastFetchedEpoch: -1 }] }],
        });
        const fetched = response.responses[0]?.partitions.find((p) => p.partitionIndex === partition);
        return this.#records(partition, from, fetched);
      } catch (err) {
        // close() ended the request: the call ends empty, as it does when close() comes between requests.
        if (this.#closed) return { messages: [], next: from, stable: from };
        if (hasPlatformaticError(err, 'OFFSET_OUT_OF_RANGE')) throw await this.#outOfRange(consumer, partition, from);
        if (attempt < LEADER_RETRIES && (hasPlatformaticError(err, 'NOT_LEADER_OR_FOLLOWER') || hasPlatformaticError(err, 'FENCED_LEADER_EPOCH') || hasPlatformaticError(err, 'UNKNOWN_LEADER_EPOCH'))) {
          await wait(50 * (attempt + 1), this.#closing.signal);
          continue;
        }
        throw err;
      }
    }
  }

  #maxBytes(): number {
    const configured = this.#o.consumer['maxBytesPerPartition'] ?? this.#o.consumer['maxBytes'];
    return typeof configured === 'number' && configured > 0 ? configured : 1_048_576;
  }

  /** The committed data records of a fetched partition from `from` on, and where the next Fetch starts. */
  #records(partition: number, from: number, fetched: FetchedPartition | undefined): Read {
    const stable = fetched === undefined ? from : Number(fetched.lastStableOffset);
    const messages: SourceMessage[] = [];
    let next = from;
    for (const batch of fetched?.records ?? []) {
      next = Math.max(next, Number(batch.firstOffset) + batch.lastOffsetDelta + 1);
      if ((batch.attributes & CONTROL_BATCH) !== 0) continue;
      for (const record of batch.records) {
        const offset = Number(batch.firstOffset) + record.offsetDelta;
        // A batch is returned whole: its records before the asked offset were read before.
        if (offset < from) continue;
        messages.push({ source: this.#o.topic, partition, offset, key: record.key == null ? null : record.key.toString(), value: record.value ?? null, headers: recordHeaders(record.headers) });
      }
    }
    return { messages, next, stable };
  }

  async #outOfRange(consumer: ConsumerLike, partition: number, offset: number): Promise<TxkitError> {
    const [low, high] = await Promise.all(
      [EARLIEST, LATEST].map(async (timestamp) => Number((await consumer.listOffsets({ topics: [this.#o.topic], timestamp })).get(this.#o.topic)?.[partition] ?? 0n)),
    );
    return offsetOutOfRange(this.name, partition, offset, low as number, high as number);
  }
}

function recordHeaders(headers: FetchedRecord['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of headers ?? []) if (k !== null && v !== null) out[k.toString()] = v.toString();
  return out;
}
