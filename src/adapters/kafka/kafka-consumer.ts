import { ConfigError, FencedError } from '../../core/index.js';
import { assertStartable, consumerDone } from './consumer-lifecycle.js';
import { inCallbackOf, isInCallbackOf } from '../../core/callback-scope.js';
import type { ConsumerState } from './consumer-lifecycle.js';
import { cachedUntilFailure } from '../../core/cached.js';
import type { RetryPolicy } from '../../core/index.js';
import { kafkaClientOf, kafkaInstanceOf, kafkaTransactions, settleKafkaProducers } from './kafka-context.js';
import { isUnstableOffsets, StableOffsets } from './stable-offsets.js';
import { stoppableConsumer } from './stoppable-consumer.js';
import { isPlatformaticOptions } from './platformatic.js';
import type { PlatformaticKafkaOptions } from './platformatic.js';
import { checkPlatformaticConsumerOptions, PlatformaticTransactionalConsumer } from './platformatic-consumer.js';
import type { PlatformaticTransactionalConsumerOptions } from './platformatic-consumer.js';
import type { KafkaTransactionContext } from './kafka-context.js';
import type {
  KafkaLike,
  KafkaOffsetsAdminLike,
  KafkaProducerExtraConfig,
  KafkaConsumerExtraConfig,
  KafkaConsumerFactoryLike,
  KafkaConsumerLike,
  KafkaEachBatchPayloadLike,
  TransactionalBatch,
  TransactionalConsumer,
} from './kafka-types.js';

/** Options of {@link transactionalConsumer}. */
export interface TransactionalConsumerOptions<K extends KafkaConsumerFactoryLike = KafkaConsumerFactoryLike> {
  /**
   * The context from kafkaTransactions whose producer writes the output and
   * commits the input offsets of every partition this instance consumes.
   * Safe against crashes and restarts, not against an instance that stalls
   * past its session timeout (see `transactionalIdPrefix`). Give this or
   * `transactionalIdPrefix`.
   */
  context?: KafkaTransactionContext;
  /**
   * A transactional producer per input partition, with the id
   * `<prefix>-<topic>-<partition>`, the same on every instance of the group:
   * whichever instance is assigned a partition fences the producer of its
   * former owner before it processes a batch there, then reads the
   * committed offset again, so an instance that stalled (GC pause, network
   * partition) and lost its partitions in a rebalance can commit nothing
   * for them. For kafkajs (its TxnOffsetCommit carries no group generation);
   * needs `kafka` with producer() and admin(). Give this or `context`.
   */
  transactionalIdPrefix?: string;
  /** Config of the per-partition producers (with `transactionalIdPrefix`), as kafkaTransactions takes it. @default {} */
  producer?: KafkaProducerExtraConfig<KafkaLike>;
  /** The consumer group; its offsets are committed only through transactions. Required. */
  groupId: string;
  /** Input topics. Required, non-empty. */
  topics: string[];
  /** Where a group without committed offsets starts. @default false (only new messages) */
  fromBeginning?: boolean;
  /** Further kafkajs consumer config (sessionTimeout, maxBytesPerPartition...); groupId and the isolation level are txkit's. @default {} */
  consumer?: KafkaConsumerExtraConfig<K>;
  /** Turns one input batch into output, through `batch.tx.handle.send`/`sendBatch`. Required. */
  eachBatch(batch: TransactionalBatch): Promise<void>;
  /** Retry of each batch's transaction (transient failures rerun the batch). @default the context's policy */
  retry?: Partial<RetryPolicy> | false;
}

/** kafkajs consumer events transactionalConsumer follows besides crashes. */
interface KafkaConsumerEventsLike {
  /** The end of a fetched batch; `batchSize` 0 (with a `firstOffset`) is a batch of aborted and control records only. */
  on(
    event: 'consumer.end_batch_process',
    listener: (event: { payload: { topic: string; partition: number; batchSize: number; firstOffset: string | null; lastOffset: string } }) => void,
  ): unknown;
  /** A rebalance began: kafkajs reads the committed offsets again after it. */
  on(event: 'consumer.rebalancing', listener: () => void): unknown;
  /** The consumer (re)joined its group, with the partitions it was assigned. */
  on(event: 'consumer.group_join', listener: (event: { payload: { memberAssignment: Record<string, number[]> } }) => void): unknown;
}

/** A partition's position past a tail of aborted or control records, waiting to be committed. */
interface SkippedTail {
  topic: string;
  partition: number;
  /** The offset after the last skipped record. */
  offset: string;
  /** The group membership (count of joins and rebalances) the records were read in. */
  membership: number;
}

/** A partition's producer when each input partition has its own (transactionalIdPrefix). */
interface PartitionProducer {
  readonly context: KafkaTransactionContext;
  /** The group membership in which its former owner was fenced and the committed offset read again; -1 before. */
  checkedIn: number;
  /** The group's committed offset read then; undefined when there was none. */
  committed: bigint | undefined;
}

/** Group-membership errors from heartbeats: kafkajs rejoins the group itself; the batch's transaction was aborted. */
const REBALANCE_ERRORS: ReadonlySet<string> = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID']);

/**
 * Exactly-once consume-transform-produce from Kafka to Kafka. Each fetched
 * batch runs in one transaction of `context`: the handler's output and the
 * batch's next offset commit together (sendOffsets) or not at all, and the
 * consumer reads committed data only. A batch whose transaction aborts is not
 * marked consumed, so it is fetched again; one that fails for good stops the
 * consumer (see `done`), and a restarted consumer resumes from the offsets
 * committed with the last transaction; after every group join it reads the
 * committed offsets again once this instance's transactions are complete and
 * skips what the group already committed (kafkajs' own read can return the
 * offset before a commit whose markers are not written yet). Records kafkajs skips without calling
 * eachBatch (a fetch of aborted records and transaction markers only) are
 * committed past in a transaction of their own, so the group's committed
 * offset reaches the end of the log.
 * @throws ConfigError when `kafka` has no `consumer()`, neither or both of
 *   `context` (made by kafkaTransactions) and `transactionalIdPrefix` are
 *   given, neither `kafka` nor the context's Kafka instance has `admin()`
 *   (kafkajs: the committed offsets are read after each join), or
 *   `groupId`, `topics` or `eachBatch` is missing or invalid.
 *
 * With `transactionalIdPrefix`, each input partition has a transactional
 * producer of its own, fenced by whichever instance is assigned the
 * partition next, so an instance that stalled past its session timeout
 * commits nothing for partitions it lost.
 *
 * With @platformatic/kafka connection options as `kafka` (and a `context`
 * made on them), the consumer is a @platformatic/kafka one and each batch's
 * offsets carry the group generation its records were read in (KIP-447): a
 * member that stalled commits nothing for partitions that moved, with one
 * producer per instance. txkit keeps aborted input out and reads committed
 * offsets with require_stable, which that library does not do by itself.
 * @example
 * ```ts
 * const consumer = transactionalConsumer(kafka, {
 *   transactionalIdPrefix: 'enricher', // the same in every instance of the group
 *   groupId: 'enricher',
 *   topics: ['orders'],
 *   eachBatch: async ({ messages, tx }) => {
 *     await tx.handle.send({
 *       topic: 'orders-enriched',
 *       messages: messages.map((m) => ({ key: m.key, value: enrich(m.value) })),
 *     });
 *   },
 * });
 * await consumer.start();
 *
 * // On @platformatic/kafka: fenced by group generation, one producer per instance.
 * const connection = { clientId: 'enricher', bootstrapBrokers: ['127.0.0.1:9092'] };
 * const enricher = transactionalConsumer(connection, {
 *   context: kafkaTransactions(connection, { transactionalId: `enricher-${hostname()}` }),
 *   groupId: 'enricher',
 *   topics: ['orders'],
 *   eachBatch: async ({ messages, tx }) => {
 *     await tx.handle.send({ topic: 'orders-enriched', messages: messages.map((m) => ({ key: m.key, value: enrich(m.value) })) });
 *   },
 * });
 * ```
 */
export function transactionalConsumer(kafka: PlatformaticKafkaOptions, options: PlatformaticTransactionalConsumerOptions): TransactionalConsumer;
export function transactionalConsumer<K extends KafkaConsumerFactoryLike>(kafka: K, options: TransactionalConsumerOptions<K>): TransactionalConsumer;
export function transactionalConsumer<K extends KafkaConsumerFactoryLike>(
  kafka: K | PlatformaticKafkaOptions,
  options: TransactionalConsumerOptions<K> | PlatformaticTransactionalConsumerOptions,
): TransactionalConsumer {
  if (isPlatformaticOptions(kafka)) return platformaticConsumer(kafka, options as PlatformaticTransactionalConsumerOptions);
  return kafkajsConsumer(kafka, options as TransactionalConsumerOptions<K>);
}

function kafkajsConsumer<K extends KafkaConsumerFactoryLike>(kafka: K, options: TransactionalConsumerOptions<K>): TransactionalConsumer {
  if (typeof kafka !== 'object' || kafka === null || typeof (kafka as Partial<KafkaConsumerFactoryLike>).consumer !== 'function') {
    throw new ConfigError('transactionalConsumer(kafka, options) needs a kafkajs Kafka instance (an object with consumer())', {
      backend: 'kafka',
    });
  }
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('transactionalConsumer(kafka, options) needs { context, groupId, topics, eachBatch }', { backend: 'kafka' });
  }
  const { context, transactionalIdPrefix } = options;
  if (context !== undefined && transactionalIdPrefix !== undefined) {
    throw new ConfigError('transactionalConsumer takes context (one producer) or transactionalIdPrefix (one per input partition), not both', {
      backend: 'kafka',
    });
  }
  if (transactionalIdPrefix !== undefined) {
    if (typeof transactionalIdPrefix !== 'string' || transactionalIdPrefix.trim() === '') {
      throw new ConfigError(`transactionalConsumer transactionalIdPrefix must be a non-empty string, got ${JSON.stringify(transactionalIdPrefix)}`, {
        backend: 'kafka',
      });
    }
    const k = kafka as unknown as Partial<KafkaLike> & { admin?: unknown };
    if (typeof k.producer !== 'function' || typeof k.admin !== 'function') {
      throw new ConfigError('transactionalConsumer with transactionalIdPrefix needs the kafkajs Kafka instance (with producer() and admin())', {
        backend: 'kafka',
      });
    }
  } else if (kafkaClientOf(context) === undefined) {
    throw new ConfigError(
      'transactionalConsumer needs `transactionalIdPrefix` (a producer per input partition) or `context` made by kafkaTransactions(kafka, { transactionalId })',
      { backend: 'kafka' },
    );
  } else if (kafkaClientOf(context) === 'kafkajs' && offsetsAdminSource(kafka, context) === undefined) {
    throw new ConfigError(
      "transactionalConsumer reads the group's committed offsets after each join with an admin client: give it the kafkajs Kafka instance (with admin())",
      { backend: 'kafka' },
    );
  }
  checkCommonOptions(options);
  return new KafkaTransactionalConsumer(kafka, options);
}

function platformaticConsumer(kafka: PlatformaticKafkaOptions, options: PlatformaticTransactionalConsumerOptions): TransactionalConsumer {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('transactionalConsumer(kafka, options) needs { context, groupId, topics, eachBatch }', { backend: 'kafka' });
  }
  checkPlatformaticConsumerOptions(kafka, options as unknown as Record<string, unknown>);
  if (kafkaClientOf(options.context) !== 'platformatic') {
    throw new ConfigError(
      "transactionalConsumer on @platformatic/kafka needs `context` made by kafkaTransactions on @platformatic/kafka (the same connection options, with { transactionalId })",
      { backend: 'kafka' },
    );
  }
  checkCommonOptions(options);
  return new PlatformaticTransactionalConsumer(kafka, options);
}

/** The options every client's consumer checks alike. */
function checkCommonOptions(options: { groupId?: unknown; topics?: unknown; eachBatch?: unknown }): void {
  if (typeof options.groupId !== 'string' || options.groupId === '') {
    throw new ConfigError('transactionalConsumer needs a non-empty groupId', { backend: 'kafka' });
  }
  if (!Array.isArray(options.topics) || options.topics.length === 0 || options.topics.some((t) => typeof t !== 'string' || t === '')) {
    throw new ConfigError('transactionalConsumer needs topics: a non-empty array of topic names', { backend: 'kafka' });
  }
  if (typeof options.eachBatch !== 'function') {
    throw new ConfigError('transactionalConsumer needs an eachBatch(batch) function', { backend: 'kafka' });
  }
}

class KafkaTransactionalConsumer<K extends KafkaConsumerFactoryLike> implements TransactionalConsumer {
  committedBatches = 0;
  fencedBatches = 0;
  readonly done: Promise<void>;
  readonly #kafka: K;
  readonly #options: TransactionalConsumerOptions<K>;
  #consumer: KafkaConsumerLike | undefined;
  #state: ConsumerState = 'new';
  #failure: { error: unknown } | undefined;
  #stopping: Promise<void> | undefined;
  /** start()'s work: stop() waits for it before it disconnects what start() connected. */
  #startup: Promise<void> | undefined;
  readonly #settle: { resolve(): void; reject(err: unknown): void };

  readonly #confluent: boolean;
  /** Batch transactions and commits of skipped tails, one at a time and in the order kafkajs read them. */
  #serial: Promise<void> = Promise.resolve();
  /** Counts joins and rebalances: a skipped tail read before the latest one is not committed. */
  #membership = 0;
  readonly #skipped = new Map<string, SkippedTail>();
  /** With transactionalIdPrefix: the producer of each input partition, by `<partition>:<topic>`. */
  readonly #producers = new Map<string, PartitionProducer>();
  /** With context: the group's committed offsets (by `<partition>:<topic>`) read once per membership, after the context's producers settled. */
  #groupOffsets: { membership: number; offsets: Promise<Map<string, bigint>> } | undefined;
  /** The admin client that reads committed offsets, connected at its first use (and then kept in #adminClient). */
  readonly #admin = cachedUntilFailure(async () => {
    const admin = (offsetsAdminSource(this.#kafka, this.#options.context) as { admin(): KafkaOffsetsAdminLike }).admin();
    await admin.connect();
    this.#adminClient = admin;
    return admin;
  });
  #adminClient: KafkaOffsetsAdminLike | undefined;
  /** Reads committed offsets with require_stable through the kafkajs client's own connections (kafkajs only). */
  readonly #stable: StableOffsets | undefined;

  constructor(kafka: K, options: TransactionalConsumerOptions<K>) {
    this.#confluent = options.context !== undefined && kafkaClientOf(options.context) === 'confluent';
    this.#kafka = kafka;
    this.#options = options;
    this.#stable = this.#confluent ? undefined : StableOffsets.of(offsetsAdminSource(kafka, options.context));
    const { done, settle } = consumerDone();
    this.done = done;
    this.#settle = settle;
  }

  async start(): Promise<void> {
    assertStartable(this.#state);
    this.#state = 'starting';
    this.#startup = this.#startConsumer();
    await this.#startup;
  }

  async #startConsumer(): Promise<void> {
    const { context, groupId, topics, fromBeginning = false } = this.#options;
    try {
      // InitProducerId first: it fences a predecessor with the same transactional.id and lets the
      // coordinator finish its open transaction, so the offsets read on joining the group are final.
      // (Per-partition producers do this for each partition before its first batch instead.)
      await context?.withTransaction(async () => undefined);
      const extra = (this.#options.consumer ?? {}) as Record<string, unknown> & { kafkaJS?: Record<string, unknown> };
      const eachBatch = (payload: KafkaEachBatchPayloadLike): Promise<void> => this.#onBatch(payload);
      if (this.#confluent) {
        // @confluentinc/kafka-javascript: KafkaJS-style settings in the kafkaJS block; librdkafka reads committed data.
        const kafkaJS = { ...(extra.kafkaJS ?? {}), groupId, autoCommit: false, fromBeginning };
        const consumer = this.#kafka.consumer({ ...extra, 'isolation.level': 'read_committed', kafkaJS } as never);
        this.#consumer = consumer;
        await consumer.connect();
        await consumer.subscribe({ topics });
        await consumer.run({ eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch } as never);
      } else {
        const consumer = stoppableConsumer(this.#kafka, { ...extra, groupId, readUncommitted: false });
        this.#consumer = consumer;
        consumer.on('consumer.crash', (event) => {
          this.#membership += 1;
          if (!event.payload.restart) this.#fail(event.payload.error);
        });
        const events = consumer as unknown as KafkaConsumerEventsLike;
        events.on('consumer.rebalancing', () => void (this.#membership += 1));
        events.on('consumer.group_join', (event) => {
          this.#membership += 1;
          this.#onAssignment(event.payload.memberAssignment);
        });
        events.on('consumer.end_batch_process', (event) => this.#onBatchEnd(event.payload));
        await consumer.connect();
        await consumer.subscribe({ topics, fromBeginning });
        await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch });
      }
      if (this.#state === 'starting') this.#state = 'running';
    } catch (err) {
      this.#fail(err);
      throw err;
    }
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#state = 'stopping';
      try {
        // A start still under way finishes first, so what it connects is disconnected here, not left running.
        await this.#startup?.catch(() => undefined);
        // A skipped tail read before stop() is committed while the consumer is still in its group.
        await this.#serial;
        await this.#consumer?.disconnect();
        await this.#closeProducers(() => true);
        await this.#adminClient?.disconnect().catch(() => undefined);
        await this.#stable?.disconnect();
      } finally {
        this.#state = 'stopped';
        if (this.#failure !== undefined) this.#settle.reject(this.#failure.error);
        else this.#settle.resolve();
      }
    })();
    // Called from eachBatch (or from work it started): the stop waits for that batch, so the call cannot; it
    // resolves at once and the consumer stops once the batch has ended (`done` settles then).
    return isInCallbackOf(this) ? Promise.resolve() : this.#stopping;
  }

  /** Runs `work` after the batch transactions and tail commits queued before it. */
  #serialize(work: () => Promise<void>): Promise<void> {
    const run = this.#serial.then(work);
    this.#serial = run.catch(() => undefined);
    return run;
  }

  #onBatch(payload: KafkaEachBatchPayloadLike): Promise<void> {
    return this.#serialize(() => this.#runBatch(payload));
  }

  /**
   * A batch kafkajs moved past without calling eachBatch: every record was of an aborted transaction or
   * a control record (kafkajs resolves its last offset, but with autocommit off nobody commits it).
   * When such records are a partition's newest, no later batch commits past them and the group's lag
   * would stay above zero. Committing the position past them adds no output, so it is exactly-once safe;
   * it runs in a transaction of its own, queued behind the batch in progress.
   */
  #onBatchEnd(payload: { topic: string; partition: number; batchSize: number; firstOffset: string | null; lastOffset: string }): void {
    // firstOffset is null when every record came before the fetched offset: kafkajs then resolves that offset itself, not a skipped record.
    if (payload.batchSize !== 0 || payload.firstOffset === null) return;
    if ((this.#state !== 'running' && this.#state !== 'starting') || this.#failure !== undefined) return;
    const { topic, partition } = payload;
    const offset = (BigInt(payload.lastOffset) + 1n).toString();
    this.#skipped.set(`${partition}:${topic}`, { topic, partition, offset, membership: this.#membership });
    void this.#serialize(() => this.#commitSkipped());
  }

  /**
   * Commits the positions past skipped tails read in the current group membership (one transaction, or one per
   * partition's producer), leaving out any the group has already committed past (kafkajs read from an offset
   * whose transaction was not complete yet): a commit never moves a partition back.
   */
  async #commitSkipped(): Promise<void> {
    const due = [...this.#skipped.values()].filter((s) => s.membership === this.#membership);
    this.#skipped.clear();
    if (due.length === 0 || this.#failure !== undefined) return;
    const { context, groupId, retry } = this.#options;
    const options = retry === undefined ? {} : { retry };
    try {
      const ahead: SkippedTail[] = [];
      for (const tail of due) {
        const committed = await this.#committedPosition(tail.topic, tail.partition);
        if (committed === undefined || BigInt(tail.offset) > committed) ahead.push(tail);
      }
      if (context !== undefined) {
        if (ahead.length > 0) await context.withTransaction((tx) => tx.handle.sendOffsets({ consumerGroupId: groupId, topics: byTopic(ahead) }), options);
      } else {
        // Each partition's position through its own producer, whose fencing guards it.
        for (const tail of ahead) {
          const producer = this.#producerOf(tail.topic, tail.partition);
          await producer.context.withTransaction((tx) => tx.handle.sendOffsets({ consumerGroupId: groupId, topics: byTopic([tail]) }), options);
        }
      }
    } catch (err) {
      // A partition moved to another instance, which fenced its producer: the new owner commits past the tail.
      if (err instanceof FencedError && context === undefined) return;
      // The group is rebalancing: whoever owns the partition next reads the skipped records again and commits past them.
      if (isRebalance(err)) return;
      // The offsets are still being committed (the read waited its whole timeout): the tails wait too, and are tried again.
      if (isUnstableOffsets(err)) {
        for (const tail of due) {
          const key = `${tail.partition}:${tail.topic}`;
          if (!this.#skipped.has(key)) this.#skipped.set(key, tail);
        }
        if (this.#state === 'running') void this.#serialize(() => this.#commitSkipped());
        return;
      }
      this.#fail(err);
    }
  }

  async #runBatch(payload: KafkaEachBatchPayloadLike): Promise<void> {
    const { batch } = payload;
    if (this.#failure !== undefined || this.#state === 'stopping' || !payload.isRunning() || payload.isStale()) return;
    if (batch.messages.length === 0) return;
    const { topic, partition } = batch;
    const last = batch.lastOffset();
    // The next offset to read; lastOffset() counts the control record that ends a transaction in the input.
    const next = (BigInt(last) + 1n).toString();
    const { groupId, eachBatch, retry } = this.#options;
    let context = this.#options.context;
    try {
      if (context === undefined) context = this.#producerOf(topic, partition).context;
      const committed = await this.#committedPosition(topic, partition, () => payload.heartbeat());
      const first = batch.messages[0]?.offset;
      if (committed !== undefined && first !== undefined && committed > BigInt(first)) {
        // The group committed past what kafkajs fetched (a former owner did, or this instance in a transaction
        // that was not complete when kafkajs read the offsets): go on from there.
        (this.#consumer as KafkaConsumerLike).seek?.({ topic, partition, offset: committed.toString() });
        return;
      }
      await context.withTransaction(
        async (tx) => {
          await inCallbackOf(this, () => eachBatch({ topic, partition, messages: batch.messages, tx, heartbeat: () => payload.heartbeat() }));
          const topics = [{ topic, partitions: [{ partition, offset: next }] }];
          await tx.handle.sendOffsets(
            this.#confluent ? { consumerGroupId: groupId, consumer: this.#consumer as object, topics } : { consumerGroupId: groupId, topics },
          );
        },
        retry === undefined ? {} : { retry },
      );
    } catch (err) {
      // The group is rebalancing: kafkajs rejoins and fetches the committed offsets again. Offsets a transaction is still
      // committing: kafkajs runs the batch again later, which reads them again (as the Java consumer keeps asking).
      if (isRebalance(err) || isUnstableOffsets(err)) throw err;
      if (err instanceof FencedError && this.#options.context === undefined) {
        this.fencedBatches += 1;
        this.#producers.delete(`${partition}:${topic}`);
        await context?.close();
        return this.#movedAway(payload);
      }
      this.#fail(err);
      return;
    }
    payload.resolveOffset(last);
    this.committedBatches += 1;
  }

  /** The producer of an input partition (transactionalIdPrefix), made at its first batch since it was assigned. */
  #producerOf(topic: string, partition: number): PartitionProducer {
    const key = `${partition}:${topic}`;
    let producer = this.#producers.get(key);
    if (producer === undefined) {
      const { transactionalIdPrefix, producer: config } = this.#options;
      const context = kafkaTransactions(this.#kafka as unknown as KafkaLike, {
        transactionalId: `${transactionalIdPrefix as string}-${topic}-${partition}`,
        ...(config === undefined ? {} : { producer: config }),
      });
      this.#producers.set(key, (producer = { context, checkedIn: -1, committed: undefined }));
    }
    return producer;
  }

  /**
   * The group's committed offset of a partition as it stands once every transaction that could have moved it is
   * complete, read once per group membership (kafkajs reads it again at each join, but without KIP-447's
   * require_stable, so an offset whose transaction is not complete yet reads as the one before it; a batch
   * kafkajs fetched from there would be copied twice). With transactionalIdPrefix, the partition's producer is
   * renewed first: its InitProducerId fences the former owner's and waits for the transactions of both to
   * complete. With context, the context's producers are renewed once per membership, which waits for this
   * instance's own transactions. librdkafka reads offsets with require_stable: nothing to do with it.
   */
  async #committedPosition(topic: string, partition: number, heartbeat?: () => Promise<void>): Promise<bigint | undefined> {
    if (this.#confluent) return undefined;
    const key = `${partition}:${topic}`;
    const membership = this.#membership;
    const { context, retry } = this.#options;
    const options = retry === undefined ? {} : { retry };
    if (context === undefined) {
      const producer = this.#producerOf(topic, partition);
      if (producer.checkedIn !== membership) {
        await settleKafkaProducers(producer.context, options);
        producer.committed = (await this.#readCommitted([topic], heartbeat)).get(key);
        producer.checkedIn = membership;
      }
      return producer.committed;
    }
    if (this.#groupOffsets?.membership !== membership) {
      const offsets = settleKafkaProducers(context, options).then(() => this.#readCommitted(this.#options.topics, heartbeat));
      this.#groupOffsets = { membership, offsets };
      offsets.catch(() => {
        if (this.#groupOffsets?.offsets === offsets) this.#groupOffsets = undefined;
      });
    }
    return (await this.#groupOffsets.offsets).get(key);
  }

  /**
   * The group's committed offsets of `topics`, by `<partition>:<topic>`; partitions without one are left out.
   * Read with require_stable where the client is kafkajs and the broker has it (OffsetFetch v7, Kafka 2.5+): the
   * coordinator then answers only once no transaction is still committing them. Otherwise through admin().
   */
  async #readCommitted(topics: string[], heartbeat?: () => Promise<void>): Promise<Map<string, bigint>> {
    if (this.#stable !== undefined) {
      // While it waits, heartbeats keep the membership (kafkajs heartbeats only between batches).
      const read = await this.#stable.read(this.#options.groupId, topics, heartbeat === undefined ? {} : { onWait: heartbeat });
      if ('offsets' in read) return read.offsets;
    }
    const admin = await this.#admin();
    const committed = new Map<string, bigint>();
    for (const { topic, partitions } of await admin.fetchOffsets({ groupId: this.#options.groupId, topics })) {
      for (const { partition, offset } of partitions) if (BigInt(offset) >= 0n) committed.set(`${partition}:${topic}`, BigInt(offset));
    }
    return committed;
  }

  /**
   * Another instance fenced a partition's producer: it was assigned the
   * partition. This batch is not marked consumed (its producer is closed, so
   * taking the partition again fences anew); a heartbeat lets kafkajs learn
   * of the rebalance at once (its error goes to kafkajs, which rejoins).
   */
  async #movedAway(payload: KafkaEachBatchPayloadLike): Promise<void> {
    await payload.heartbeat();
  }

  /** A new assignment: the producers of partitions this instance no longer has are closed, so taking one back fences again. */
  #onAssignment(assignment: Record<string, number[]> | undefined): void {
    if (this.#options.context !== undefined) return;
    const kept = new Set(Object.entries(assignment ?? {}).flatMap(([topic, partitions]) => partitions.map((p) => `${p}:${topic}`)));
    void this.#serialize(() => this.#closeProducers((key) => !kept.has(key)));
  }

  async #closeProducers(which: (key: string) => boolean): Promise<void> {
    const closing = [...this.#producers].filter(([key]) => which(key));
    for (const [key] of closing) this.#producers.delete(key);
    await Promise.all(closing.map(([, p]) => p.context.close().catch(() => undefined)));
  }

  /** Stops for good, without resolving the failed batch's offset: nothing is lost, a restart reads it again. */
  #fail(error: unknown): void {
    if (this.#failure !== undefined) return;
    this.#failure = { error };
    // Not awaited: consumer.stop() waits for the batch in progress, which may be the caller.
    void this.stop().catch(() => undefined);
  }
}

/** What reads the group's committed offsets: the consumer's client, or (a consumer factory without admin()) the one the context was made with. */
function offsetsAdminSource(kafka: unknown, context: unknown): { admin(): KafkaOffsetsAdminLike } | undefined {
  for (const source of [kafka, kafkaInstanceOf(context)]) {
    if (typeof (source as { admin?: unknown } | undefined)?.admin === 'function') return source as { admin(): KafkaOffsetsAdminLike };
  }
  return undefined;
}

/** Positions grouped by topic, as sendOffsets takes them. */
function byTopic(positions: readonly { topic: string; partition: number; offset: string }[]): { topic: string; partitions: { partition: number; offset: string }[] }[] {
  const topics = new Map<string, { partition: number; offset: string }[]>();
  for (const { topic, partition, offset } of positions) {
    let partitions = topics.get(topic);
    if (partitions === undefined) topics.set(topic, (partitions = []));
    partitions.push({ partition, offset });
  }
  return [...topics].map(([topic, partitions]) => ({ topic, partitions }));
}

function isRebalance(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 8 && typeof e === 'object' && e !== null; depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string' && REBALANCE_ERRORS.has(type)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
