import { ConfigError, TxkitError } from '../../core/index.js';
import type { SourceMessage } from '../outbox-types.js';
import { wait } from '../../core/backoff.js';
import type { KafkaMessageSource, KafkaSourceAdminLike, KafkaSourceBatchPayloadLike, KafkaSourceConsumerLike, KafkaSourceOptions } from './kafka-types.js';
import { checkSourceCall, headersOf, offsetOutOfRange, resolveSourceOptions } from './kafka-source-shared.js';
import type { ResolvedSourceOptions } from './kafka-source-shared.js';
import { PlatformaticSource } from './kafka-source-platformatic.js';
import { stoppableConsumer } from '../../adapters/kafka/stoppable-consumer.js';

/** The buffered, contiguous committed records [start, end) of one partition. */
interface PartitionBuffer {
  readonly partition: number;
  start: number;
  /** The next offset the consumer reads: every committed record before it is buffered or was consumed. */
  end: number;
  messages: SourceMessage[];
  paused: boolean;
  error: TxkitError | undefined;
}

/**
 * A Kafka topic as a pipeline source, read with read_committed isolation at
 * the offsets the pipeline asks for, which it stores in its database: the
 * source never commits offsets to Kafka, so the database inbox alone decides
 * where a restarted worker goes on. Records of aborted transactions and
 * control records are never returned.
 *
 * kafkajs has no manual partition assignment, so the source's consumer joins
 * a group of its own (one member, assigned every partition), pauses the
 * partitions it is not asked for, and seeks each partition to the offset of
 * the pipeline's first fetch. Fetched records wait in a bounded buffer per
 * partition until the pipeline takes them.
 *
 * Given @platformatic/kafka connection options as `kafka` (`{ clientId,
 * bootstrapBrokers }`), the source fetches each partition at the offsets the
 * pipeline asks for with Fetch requests of its own: no group, no seek.
 * @example
 * ```ts
 * const source = kafkaSource({ kafka: new Kafka({ brokers }), topic: 'payments' });
 * const onPlatformatic = kafkaSource({ kafka: { clientId: 'balances', bootstrapBrokers: brokers }, topic: 'payments' });
 * ```
 */
export function kafkaSource(options: KafkaSourceOptions): KafkaMessageSource {
  const resolved = resolveSourceOptions(options);
  return resolved.platformatic === undefined ? new KafkaSource(resolved) : new PlatformaticSource(resolved, resolved.platformatic);
}

class KafkaSource implements KafkaMessageSource {
  readonly name: string;
  readonly #o: ResolvedSourceOptions;
  /** Partitions this source serves; set once the topic's metadata is known. */
  #wanted: ReadonlySet<number> | undefined;
  #admin: KafkaSourceAdminLike | undefined;
  #consumer: KafkaSourceConsumerLike | undefined;
  #starting: Promise<void> | undefined;
  /** The consumer stopped for good (a crash kafkajs does not restart): the next call builds a new one. */
  #crashed: Error | undefined;
  /**
   * The consumer is in its group. False from a crash kafkajs restarts until the group is joined again:
   * in between kafkajs refuses seek(), pause() and resume().
   */
  #inGroup = false;
  readonly #joinWakers = new Set<() => void>();
  #closed = false;
  /** Positioned partitions; a partition missing here is sought to the offset of the next fetch. */
  readonly #buffers = new Map<number, PartitionBuffer>();
  readonly #wakers = new Map<number, Set<() => void>>();

  constructor(options: ResolvedSourceOptions) {
    this.#o = options;
    this.name = options.topic;
  }

  async partitions(): Promise<number[]> {
    this.#checkArgs('partitions', 0, 0);
    await this.#start();
    return [...(this.#wanted as ReadonlySet<number>)].sort((a, b) => a - b);
  }

  async fetch(partition: number, offset: number, max: number): Promise<SourceMessage[]> {
    this.#checkArgs('fetch', partition, offset);
    if (!Number.isInteger(max) || max < 1) throw new ConfigError(`kafkaSource.fetch needs max >= 1, got ${String(max)}`, { backend: 'kafka' });
    let buffer = await this.#positioned(partition, offset, 'fetch');
    let out = this.#take(buffer, offset, max);
    if (out.length > 0) return out;
    // Nothing buffered: return empty only when nothing committed is left to read, so an empty
    // fetch means "caught up" (runUntilIdle() relies on it), not "not received yet".
    const stable = await this.#stableEnd(partition);
    const deadline = Date.now() + this.#o.catchUpTimeoutMs;
    // Bounded by the deadline: each round either returns or waits for new data until it.
    for (;;) {
      // Records may have arrived while the last stable offset was being read: look again first.
      buffer = await this.#positioned(partition, offset, 'fetch');
      out = this.#take(buffer, offset, max);
      if (out.length > 0 || buffer.end >= stable || Date.now() >= deadline || this.#closed) return out;
      await wait(deadline - Date.now(), undefined, (wake) => this.#onData(partition, wake));
    }
  }

  async waitFor(partition: number, offset: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    this.#checkArgs('waitFor', partition, offset);
    let buffer: PartitionBuffer;
    try {
      buffer = await this.#positioned(partition, offset, 'waitFor');
    } catch (err) {
      // close() came while the call was positioning the partition: the wait ends, as it does when close() wakes it.
      if (this.#closed) return;
      throw err;
    }
    if (buffer.error !== undefined || buffer.messages.some((m) => m.offset >= offset)) return;
    await wait(timeoutMs, signal, (wake) => this.#onData(partition, wake));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const wakers of this.#wakers.values()) for (const wake of wakers) wake();
    await this.#starting?.catch(() => undefined);
    const consumer = this.#consumer;
    const admin = this.#admin;
    this.#consumer = undefined;
    this.#admin = undefined;
    this.#buffers.clear();
    await Promise.all([consumer?.disconnect(), admin?.disconnect()]);
  }

  #checkArgs(method: string, partition: number, offset: number): void {
    checkSourceCall(this.name, { method, partition, offset, closed: this.#closed, wanted: this.#wanted });
  }

  /** Connects once; after a consumer crash kafkajs gave up on, connects a new consumer. */
  #start(): Promise<void> {
    if (this.#crashed !== undefined) {
      const old = this.#consumer;
      this.#crashed = undefined;
      this.#consumer = undefined;
      this.#buffers.clear();
      this.#starting = this.#retryable(
        (async () => {
          await old?.disconnect().catch(() => undefined);
          await this.#connectConsumer();
        })(),
      );
    }
    this.#starting ??= this.#retryable(
      (async () => {
        const admin = this.#o.kafka.admin();
        this.#admin = admin;
        await admin.connect();
        const metadata = await admin.fetchTopicMetadata({ topics: [this.#o.topic] });
        const existing = new Set(metadata.topics.find((t) => t.name === this.#o.topic)?.partitions.map((p) => p.partitionId) ?? []);
        if (existing.size === 0) throw new ConfigError(`kafkaSource: topic '${this.#o.topic}' has no partitions; create it first`, { backend: 'kafka' });
        const wanted = this.#o.partitions ?? [...existing];
        const missing = wanted.filter((p) => !existing.has(p));
        if (missing.length > 0) {
          throw new ConfigError(`kafkaSource: topic '${this.#o.topic}' has no partition ${missing.join(', ')} (it has ${existing.size})`, { backend: 'kafka' });
        }
        this.#wanted = new Set(wanted);
        await this.#connectConsumer();
      })(),
    );
    return this.#starting;
  }

  /** A start that failed is forgotten, so the next call tries again instead of failing forever. */
  #retryable(starting: Promise<void>): Promise<void> {
    starting.catch(() => {
      if (this.#starting === starting) this.#starting = undefined;
    });
    return starting;
  }

  async #connectConsumer(): Promise<void> {
    const { kafka, topic, groupId } = this.#o;
    const consumer = stoppableConsumer(kafka, { maxWaitTimeInMs: 250, ...this.#o.consumer, groupId, readUncommitted: false });
    consumer.on('consumer.crash', ({ payload }) => {
      // kafkajs restarts with a fresh position (not ours) or gives up: either way every partition is sought again.
      this.#inGroup = false;
      this.#unpositionAll();
      if (!payload.restart) this.#crashed = payload.error;
      for (const wake of this.#joinWakers) wake();
    });
    // A (re)join resets kafkajs' positions to the group's, which this source never commits.
    consumer.on('consumer.group_join', () => {
      this.#inGroup = true;
      this.#unpositionAll();
      for (const wake of this.#joinWakers) wake();
    });
    consumer.on('consumer.end_batch_process', ({ payload }) => {
      // Batches of aborted or control records only are not handed to eachBatch; kafkajs moves past them.
      const buffer = this.#buffers.get(payload.partition);
      if (payload.topic !== topic || payload.batchSize !== 0 || buffer === undefined || payload.firstOffset === null) return;
      if (Number(payload.firstOffset) <= buffer.end) {
        buffer.end = Math.max(buffer.end, Number(payload.lastOffset) + 1);
        this.#wake(payload.partition);
      }
    });
    this.#consumer = consumer;
    this.#inGroup = false;
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: false });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: true, partitionsConsumedConcurrently: 1, eachBatch: (payload) => this.#onBatch(payload) });
  }

  /** The partition's buffer, sought to `offset` first unless the buffer already covers it. */
  async #positioned(partition: number, offset: number, method: string): Promise<PartitionBuffer> {
    await this.#start();
    this.#checkArgs(method, partition, offset);
    // Bounded: a seek refused by a consumer kafkajs is restarting waits in #joined(), which ends by its deadline.
    for (;;) {
      await this.#joined(method);
      const buffer = await this.#seek(partition, offset);
      if (buffer !== undefined) return buffer;
    }
  }

  /** #positioned() once the consumer is in its group; undefined when kafkajs refused the seek (a restart began). */
  async #seek(partition: number, offset: number): Promise<PartitionBuffer | undefined> {
    const current = this.#buffers.get(partition);
    if (current?.error !== undefined) {
      this.#buffers.delete(partition);
      throw current.error;
    }
    if (current !== undefined && offset >= current.start && offset <= current.end) return current;
    const { low, high } = await this.#bounds(partition);
    if (offset < low || offset > high) throw offsetOutOfRange(this.name, partition, offset, low, high);
    const buffer: PartitionBuffer = { partition, start: offset, end: offset, messages: [], paused: false, error: undefined };
    this.#buffers.set(partition, buffer);
    const sought = this.#whileInGroup((consumer) => {
      consumer.seek({ topic: this.#o.topic, partition, offset: String(offset) });
      consumer.resume([{ topic: this.#o.topic, partitions: [partition] }]);
    });
    if (sought) return buffer;
    this.#buffers.delete(partition);
    return undefined;
  }

  /**
   * Runs a seek/pause/resume, which kafkajs refuses from a crash until the restarted consumer is in
   * its group again (it emits the crash event only after that); false then, and the partition is
   * sought again after the rejoin.
   */
  #whileInGroup(call: (consumer: KafkaSourceConsumerLike) => void): boolean {
    try {
      call(this.#consumer as KafkaSourceConsumerLike);
      return true;
    } catch (err) {
      if (!/consumer group was not initialized/i.test((err as Error).message)) throw err;
      this.#inGroup = false;
      this.#unpositionAll();
      return false;
    }
  }

  /**
   * Waits, up to catchUpTimeoutMs, while kafkajs restarts a crashed consumer; a consumer that gave up is
   * replaced by #start(). Throws a retriable error when the group is not joined in time.
   */
  async #joined(method: string): Promise<void> {
    const deadline = Date.now() + this.#o.catchUpTimeoutMs;
    // Bounded by the deadline: each round waits for a join or a crash, or ends.
    while (!this.#inGroup && !this.#closed) {
      if (this.#crashed !== undefined) await this.#start();
      if (this.#inGroup) return;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new TxkitError(
          'SOURCE_NOT_IN_GROUP',
          `kafkaSource('${this.name}').${method}(): the consumer did not rejoin its group within ${this.#o.catchUpTimeoutMs} ms after a crash; try again`,
          { backend: 'kafka', retriable: true },
        );
      }
      await wait(left, undefined, (wake) => {
        this.#joinWakers.add(wake);
        return () => void this.#joinWakers.delete(wake);
      });
    }
  }

  /** Up to `max` buffered records from `offset` on; records before it were consumed and are released. */
  #take(buffer: PartitionBuffer, offset: number, max: number): SourceMessage[] {
    let drop = 0;
    while (drop < buffer.messages.length && (buffer.messages[drop] as SourceMessage).offset < offset) drop++;
    if (drop > 0) buffer.messages.splice(0, drop);
    buffer.start = offset;
    if (buffer.paused && buffer.messages.length <= this.#o.maxBufferedMessages / 2) {
      buffer.paused = false;
      this.#whileInGroup((consumer) => consumer.resume([{ topic: this.#o.topic, partitions: [buffer.partition] }]));
    }
    return buffer.messages.slice(0, max);
  }

  async #onBatch({ batch, isRunning, isStale }: KafkaSourceBatchPayloadLike): Promise<void> {
    const { topic } = this.#o;
    const partition = batch.partition;
    // A batch fetched before a seek: kafkajs marks it stale and fetches again from the sought offset.
    if (batch.topic !== topic || !isRunning() || isStale()) return;
    const buffer = this.#buffers.get(partition);
    if (buffer === undefined || buffer.error !== undefined) {
      // Not asked for (yet): stop fetching it until a fetch seeks it.
      (this.#consumer as KafkaSourceConsumerLike).pause([{ topic, partitions: [partition] }]);
      return;
    }
    const fetched = batch.fetchedOffset === undefined ? buffer.end : Number(batch.fetchedOffset);
    if (fetched > buffer.end) {
      // kafkajs moved past records this source never saw: fine if they were aborted or control records,
      // a loss if retention deleted them under a lagging reader (kafkajs then resets the position).
      const { low } = await this.#bounds(partition);
      if (this.#buffers.get(partition) !== buffer || isStale()) return;
      if (buffer.end < low) {
        buffer.error = new TxkitError(
          'SOURCE_OFFSET_OUT_OF_RANGE',
          `kafkaSource: records ${buffer.end}..${low - 1} of '${this.name}' partition ${partition} were deleted (retention) before they were processed; ` +
            `move the consumer's stored inbox position to ${low} or later to go on`,
          { backend: 'kafka' },
        );
        (this.#consumer as KafkaSourceConsumerLike).pause([{ topic, partitions: [partition] }]);
        this.#wake(partition);
        return;
      }
    }
    for (const m of batch.messages) {
      const offset = Number(m.offset);
      if (offset < buffer.end) continue;
      buffer.messages.push({
        source: topic,
        partition,
        offset,
        key: m.key === null ? null : m.key.toString(),
        value: m.value,
        headers: headersOf(m.headers),
      });
    }
    buffer.end = Math.max(buffer.end, Number(batch.lastOffset()) + 1);
    if (!buffer.paused && buffer.messages.length >= this.#o.maxBufferedMessages) {
      buffer.paused = true;
      (this.#consumer as KafkaSourceConsumerLike).pause([{ topic, partitions: [partition] }]);
    }
    this.#wake(partition);
  }

  async #bounds(partition: number): Promise<{ low: number; high: number }> {
    const offsets = await (this.#admin as KafkaSourceAdminLike).fetchTopicOffsets(this.#o.topic);
    const p = offsets.find((o) => o.partition === partition);
    if (p === undefined) throw new ConfigError(`kafkaSource: topic '${this.#o.topic}' has no partition ${partition}`, { backend: 'kafka' });
    return { low: Number(p.low), high: Number(p.high) };
  }

  /** The last stable offset: every record before it is committed, aborted or a control record. */
  async #stableEnd(partition: number): Promise<number> {
    return (await this.#bounds(partition)).high;
  }

  #onData(partition: number, wake: () => void): () => void {
    let wakers = this.#wakers.get(partition);
    if (wakers === undefined) this.#wakers.set(partition, (wakers = new Set()));
    wakers.add(wake);
    return () => void wakers.delete(wake);
  }

  #wake(partition: number): void {
    for (const wake of this.#wakers.get(partition) ?? []) wake();
  }

  #unpositionAll(): void {
    this.#buffers.clear();
    for (const partition of this.#wakers.keys()) this.#wake(partition);
  }
}
