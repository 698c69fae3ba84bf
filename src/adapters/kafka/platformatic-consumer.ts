/**
 * Exactly-once consume-transform-produce on a @platformatic/kafka consumer
 * (see transactionalConsumer). Each batch's offsets are committed in its
 * transaction with the group generation its records were read in
 * (TxnOffsetCommit v3+, KIP-447), so a member that stalled past its session
 * timeout commits nothing for partitions that moved in a rebalance: one
 * transactional producer per instance is enough.
 *
 * What txkit settles that the library leaves to its caller:
 * - Records of aborted transactions are kept out as the Java consumer keeps
 *   them out. The library drops an aborted transaction's records only when
 *   its abort marker is in the same fetch, and only the last of several
 *   aborted transactions of one producer in a fetch: the others reached a
 *   read_committed reader. {@link withoutAbortedRecords} filters each fetch
 *   again with the broker's list of aborted transactions.
 * - The group's committed offsets are read with `require_stable` (the
 *   library asks without it), so an offset whose transaction is still being
 *   completed is waited for instead of read as the one before it.
 * - A batch runs once per group generation: after a rebalance, or after a
 *   batch whose transaction did not commit, the stream is opened again at
 *   the group's committed offsets, so nothing fetched before is processed
 *   twice or skipped.
 * - A partition whose newest records are aborted or transaction markers
 *   only gets its committed offset moved past them, so the group's lag
 *   reaches zero.
 * - A broker outage is ridden out. The library ends the stream on a failed
 *   fetch, and a heartbeat that fails without asking for a rejoin (the
 *   broker away) stops its heartbeats for good, so the broker expires the
 *   member and the consumer never learns it; a failed rejoin is emitted as
 *   an `error` event, which would crash a process without a listener. Each
 *   of these is caught: the stream is opened again and, where the
 *   membership is gone, a new consumer joins the group in place of the old.
 * @internal
 */
import { ConfigError, FencedError, TxkitError } from '../../core/index.js';
import { classifyKafkaError } from './kafka-errors.js';
import { assertStartable, consumerDone } from './consumer-lifecycle.js';
import { inCallbackOf, isInCallbackOf } from '../../core/callback-scope.js';
import type { ConsumerState } from './consumer-lifecycle.js';
import { backoff, wait } from '../../core/backoff.js';
import type { BackoffShape } from '../../core/backoff.js';
import type { RetryPolicy } from '../../core/index.js';
import { PlatformaticKafka } from './platformatic.js';
import type { PlatformaticKafkaOptions } from './platformatic.js';
import type { KafkaTransactionContext } from './kafka-context.js';
import type { KafkaIncomingMessage, TransactionalBatch, TransactionalConsumer } from './kafka-types.js';

/** Options of transactionalConsumer on @platformatic/kafka (connection options as `kafka`). */
export interface PlatformaticTransactionalConsumerOptions {
  /**
   * A context made by kafkaTransactions on @platformatic/kafka: its producer
   * writes the output and commits the input offsets with the consumer's
   * group generation. Required.
   */
  context: KafkaTransactionContext;
  /** The consumer group; its offsets are committed only through transactions. Required. */
  groupId: string;
  /** Input topics. Required, non-empty. */
  topics: string[];
  /** Where a group without committed offsets starts. @default false (only new messages) */
  fromBeginning?: boolean;
  /**
   * Further @platformatic/kafka consumer options (`sessionTimeout`,
   * `heartbeatInterval`, `maxWaitTime`, `maxBytes`, ...). The group, the
   * isolation level, autocommit and deserializers are txkit's. @default {}
   */
  consumer?: Record<string, unknown>;
  /** Turns one input batch into output, through `batch.tx.handle.send`/`sendBatch`. Required. */
  eachBatch(batch: TransactionalBatch): Promise<void>;
  /** Retry of each batch's transaction (transient failures rerun the batch). @default the context's policy */
  retry?: Partial<RetryPolicy> | false;
}

/** Consumer options txkit sets itself. */
const OWNED_CONSUMER_OPTIONS = ['groupId', 'autocommit', 'isolationLevel', 'deserializers', 'mode', 'fallbackMode', 'topics', 'offsets'];

/** Error codes of an offset commit whose group membership is stale: the consumer rejoins and the stream reopens. */
const MEMBERSHIP_CODES: ReadonlySet<string> = new Set(['ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'REBALANCE_IN_PROGRESS', 'FENCED_INSTANCE_ID']);

/**
 * Reopening the stream after it failed: 100 ms doubling to 5 s. While the failures are the broker's absence
 * (no answer, a retriable error) this goes on until the broker is back, as the Java and kafkajs consumers do;
 * other errors stop the consumer after this many in a row with no fetch answered between them.
 */
const REOPEN: BackoffShape = { initialMs: 100, maxMs: 5_000, multiplier: 2, jitter: 'full' };
const MAX_FAILURES = 8;
/** How long a refused generation waits for the consumer to rejoin before the stream reopens anyway. */
const REJOIN_WAIT_MS = 60_000;
/** An idle loop looks at the stream at least this often (every wake-up is also an event). */
const IDLE_WAKE_MS = 1_000;

/** How long a read of the committed offsets waits for a transaction to complete them. */
const STABLE_READ_TIMEOUT_MS = 60_000;
const STABLE_READ: BackoffShape = { initialMs: 20, maxMs: 500, multiplier: 2, jitter: 'none' };

/** Attribute bit of a control batch, and the control record type of an abort marker. */
export const CONTROL_BATCH = 0x20;
const ABORT_MARKER = 0;

/** A record batch of a fetch response, as far as the filter reads it. */
interface FetchedBatch {
  firstOffset: bigint;
  producerId: bigint;
  attributes: number;
  records: { key?: Buffer | null }[];
}
/** A fetch response of @platformatic/kafka (FetchResponse v12+), as far as the filter reads it. */
export interface FetchResponseLike {
  responses: { partitions: { abortedTransactions?: { producerId: bigint; firstOffset: bigint }[] | null; records?: FetchedBatch[] | null }[] }[];
}

/**
 * Empties the records of every batch that belongs to an aborted
 * transaction, by the rule of the Java consumer: from the first offset the
 * broker lists for an aborted transaction of a producer, that producer's
 * data batches are skipped until its abort marker. The batches stay (with no
 * records) so the stream's position still moves past them.
 */
export function withoutAbortedRecords(response: FetchResponseLike): void {
  for (const topic of response.responses) {
    for (const partition of topic.partitions) {
      const aborted = [...(partition.abortedTransactions ?? [])].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0));
      if (aborted.length === 0 || !partition.records) continue;
      const open = new Set<bigint>();
      let next = 0;
      for (const batch of partition.records) {
        while (next < aborted.length && (aborted[next] as { firstOffset: bigint }).firstOffset <= batch.firstOffset) {
          open.add((aborted[next] as { producerId: bigint }).producerId);
          next++;
        }
        if ((batch.attributes & CONTROL_BATCH) !== 0) {
          if (controlType(batch) === ABORT_MARKER) open.delete(batch.producerId);
          continue;
        }
        if (open.has(batch.producerId)) batch.records = [];
      }
    }
  }
}

/** A @platformatic/kafka client whose `fetch` txkit filters (the consumer of transactionalConsumer, kafkaSource's reader). */
export interface FetchingClientLike {
  fetch(options: unknown, callback?: Callback<FetchResponseLike>): unknown;
}

/** The description of the library's (1.x) internal symbol under which a client looks up the protocol function of an API. */
const GET_API = 'plt.kafka.base.getApi';
/** The broker's aborted-transaction lists, kept from the library's own filter until txkit's runs. */
const brokerAborted = new WeakMap<object, NonNullable<FetchResponseLike['responses'][number]['partitions'][number]['abortedTransactions']>>();

/**
 * Makes `client.fetch` filter read_committed responses by the Java
 * consumer's rule ({@link withoutAbortedRecords}) and by nothing else.
 *
 * The library's Consumer.fetch (1.x) filters read_committed responses
 * itself, and loses committed records doing it: per producer it drops every
 * batch from the last aborted transaction the broker lists up to that
 * producer's last abort marker in the response. When that marker ends a
 * transaction that wrote nothing to the partition (the partition was added
 * to it, then it aborted: a send the broker refused, a process killed
 * between AddPartitionsToTxn and Produce), the producer's committed
 * transactions in between are dropped as well; and an abort marker of a
 * producer for which the broker lists nothing throws inside its callback.
 * Here each Fetch response's aborted-transaction lists are taken away
 * before the library's filter sees them (it then filters nothing) and given
 * back to txkit's filter, which runs before the caller gets the response.
 */
export function readCommittedAsJava(client: FetchingClientLike, onAnswer?: () => void): void {
  const getApi = librarySymbol(client, GET_API);
  const target = client as unknown as Record<symbol, (name: string, callback: Callback<unknown>) => void>;
  const lookUp = (target[getApi] as (name: string, callback: Callback<unknown>) => void).bind(client);
  target[getApi] = (name, callback) =>
    lookUp(name, (error, api) => {
      if (error !== null || name !== 'Fetch' || typeof api !== 'function') {
        callback(error, api);
        return;
      }
      const send = api as (...args: unknown[]) => unknown;
      callback(null, (...args: unknown[]) => {
        const answered = args.pop() as Callback<FetchResponseLike>;
        return send(...args, (err: Error | null, response?: FetchResponseLike) => {
          if (response !== undefined) hideAborted(response);
          answered(err, response);
        });
      });
    });
  const fetch = client.fetch.bind(client);
  const filter = (response: FetchResponseLike): FetchResponseLike => {
    restoreAborted(response);
    withoutAbortedRecords(response);
    onAnswer?.();
    return response;
  };
  client.fetch = (options, callback) => {
    if (callback === undefined) return (fetch(options) as Promise<FetchResponseLike>).then(filter);
    return fetch(options, (error, response) => {
      callback(error, error === null && response !== undefined ? filter(response) : response);
    });
  };
}

function hideAborted(response: FetchResponseLike): void {
  for (const topic of response.responses ?? []) {
    for (const partition of topic.partitions) {
      if (partition.abortedTransactions == null || partition.abortedTransactions.length === 0) continue;
      brokerAborted.set(partition, partition.abortedTransactions);
      partition.abortedTransactions = [];
    }
  }
}

function restoreAborted(response: FetchResponseLike): void {
  for (const topic of response.responses) {
    for (const partition of topic.partitions) {
      const list = brokerAborted.get(partition);
      if (list !== undefined) partition.abortedTransactions = list;
    }
  }
}

/** One of the library's internal symbols, found by its description on the client's prototype chain. */
function librarySymbol(client: object, description: string): symbol {
  for (let o: object | null = client; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    const found = Object.getOwnPropertySymbols(o).find((s) => s.description === description);
    if (found !== undefined) return found;
  }
  throw new ConfigError(
    `this @platformatic/kafka has no '${description}', which txkit's read_committed filter replaces the library's with ` +
      '(the library\'s drops committed records in some cases); install @platformatic/kafka 1.x (tested with 1.35)',
    { backend: 'kafka' },
  );
}

function controlType(batch: FetchedBatch): number | undefined {
  const key = batch.records[0]?.key;
  return key instanceof Buffer && key.length >= 4 ? key.readInt16BE(2) : undefined;
}

/** A @platformatic/kafka message, as the stream delivers it with the default (Buffer) deserializers. */
interface StreamMessage {
  topic: string;
  partition: number;
  offset: bigint;
  timestamp: bigint;
  key?: Buffer;
  value?: Buffer;
  headers: Map<Buffer | string, Buffer | string | undefined>;
  metadata: { consumer: { groupId: string; generationId: number; memberId: string; coordinatorId: number } };
}

interface MessagesStreamLike {
  readonly offsetsToFetch: Map<string, bigint>;
  readonly offsetsCommitted: Map<string, bigint>;
  readonly readableLength: number;
  readonly destroyed: boolean;
  readonly errored: Error | null;
  read(): StreamMessage | null;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  removeListener(event: string, listener: (...args: unknown[]) => void): unknown;
  close(): Promise<void>;
}

type Callback<T> = (error: Error | null, value?: T) => void;

interface ConsumerLike {
  readonly generationId: number;
  memberId: string | null;
  readonly coordinatorId: number | null;
  readonly groupId: string;
  fetch(options: unknown, callback: Callback<FetchResponseLike>): unknown;
  listCommittedOffsets(options: { topics: { topic: string; partitions: number[] }[] }, callback?: Callback<Map<string, bigint[]>>): unknown;
  consume(options: Record<string, unknown>): Promise<MessagesStreamLike>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  /** False once closed, and (classic group protocol) while the member has no heartbeat scheduled. */
  isActive(): boolean;
  close(force?: boolean): Promise<void>;
}

/** The stream or the group membership was lost in a way the broker's absence explains: reconnecting is the cure. */
class ConsumerInterrupted extends Error {
  override readonly name = 'ConsumerInterrupted';
}

interface AdminLike {
  listConsumerGroupOffsets(options: {
    groups: { groupId: string; topics: { name: string; partitionIndexes: number[] }[] }[];
    requireStable: boolean;
  }): Promise<{ groupId: string; topics: { name: string; partitions: { partitionIndex: number; committedOffset: bigint }[] }[] }[]>;
  close(): Promise<void>;
}

interface ConsumerModuleLike {
  Consumer: new (options: Record<string, unknown>) => ConsumerLike;
  Admin: new (options: Record<string, unknown>) => AdminLike;
}

/** Checks the options of transactionalConsumer on @platformatic/kafka; throws ConfigError. */
export function checkPlatformaticConsumerOptions(kafka: PlatformaticKafkaOptions, options: Record<string, unknown>): void {
  if (typeof kafka.clientId !== 'string' || kafka.clientId === '' || kafka.bootstrapBrokers.length === 0) {
    throw new ConfigError(
      "transactionalConsumer takes @platformatic/kafka connection options with a clientId and bootstrapBrokers, e.g. { clientId: 'copier', bootstrapBrokers: ['127.0.0.1:9092'] }",
      { backend: 'kafka' },
    );
  }
  if (options.transactionalIdPrefix !== undefined) {
    throw new ConfigError(
      'transactionalConsumer on @platformatic/kafka takes `context`, not `transactionalIdPrefix`: its offsets are committed with the ' +
        "consumer's group generation, which fences a stalled member without a producer per partition",
      { backend: 'kafka' },
    );
  }
  if (options.producer !== undefined) {
    throw new ConfigError('transactionalConsumer on @platformatic/kafka takes no `producer`: configure it in kafkaTransactions', { backend: 'kafka' });
  }
  const consumer = options.consumer;
  if (consumer !== undefined) {
    if (typeof consumer !== 'object' || consumer === null || Array.isArray(consumer)) {
      throw new ConfigError('transactionalConsumer option `consumer` must be an object of @platformatic/kafka consumer options', { backend: 'kafka' });
    }
    const owned = Object.keys(consumer).filter((k) => OWNED_CONSUMER_OPTIONS.includes(k));
    if (owned.length > 0) {
      throw new ConfigError(
        `transactionalConsumer sets ${owned.map((k) => `\`${k}\``).join(', ')} of the @platformatic/kafka consumer itself` +
          ' (groupId and topics are options of transactionalConsumer); remove them from `consumer`',
        { backend: 'kafka' },
      );
    }
  }
}

/** transactionalConsumer on a @platformatic/kafka consumer. */
export class PlatformaticTransactionalConsumer implements TransactionalConsumer {
  committedBatches = 0;
  fencedBatches = 0;
  readonly done: Promise<void>;
  readonly #connection: PlatformaticKafkaOptions;
  readonly #options: PlatformaticTransactionalConsumerOptions;
  readonly #loader: PlatformaticKafka;
  #module: ConsumerModuleLike | undefined;
  #consumer: ConsumerLike | undefined;
  /** Why the current consumer's group membership is gone (its heartbeats stopped, a rejoin failed): it is replaced. */
  #lost: Error | undefined;
  /** Fetches answered without error, by every consumer so far: a failure after one starts a new count. */
  #fetchesAnswered = 0;
  #admin: AdminLike | undefined;
  #state: ConsumerState = 'new';
  #failure: { error: unknown } | undefined;
  #stopping: Promise<void> | undefined;
  /** start()'s work: stop() waits for it before it closes what start() opened. */
  #startup: Promise<void> | undefined;
  readonly #settle: { resolve(): void; reject(err: unknown): void };
  #loop: Promise<void> | undefined;
  /** Wakes the loop while it waits: new records, a fetch, a rejoin, stop(). */
  #wake: (() => void) | undefined;
  /** The generation the open stream was opened in; a join moves the group past it. */
  #generation = -1;
  /** A generation an offset commit was refused in: the stream reopens once the consumer has rejoined. */
  #refusedGeneration: number | undefined;
  /** Per `<topic>:<partition>` of the open stream: the offset this consumer's transactions committed up to. */
  readonly #committed = new Map<string, bigint>();

  constructor(connection: PlatformaticKafkaOptions, options: PlatformaticTransactionalConsumerOptions) {
    this.#connection = connection;
    this.#options = options;
    this.#loader = new PlatformaticKafka(connection);
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
    try {
      // InitProducerId first: it fences a predecessor with the same transactional.id and lets the
      // coordinator finish its open transaction before the group's offsets are read.
      await this.#options.context.withTransaction(async () => undefined);
      this.#module = (await this.#loader.load()) as unknown as ConsumerModuleLike;
      this.#admin = new this.#module.Admin({ ...this.#connection, clientId: `${this.#connection.clientId}-txkit-offsets` });
      const stream = await this.#open();
      if (this.#state === 'starting') {
        this.#state = 'running';
        this.#loop = this.#run(stream);
      } else {
        // stop() was called meanwhile: it closes the consumer once this start has ended.
        await stream.close().catch(() => undefined);
      }
    } catch (err) {
      this.#fail(err);
      throw err;
    }
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#state = 'stopping';
      this.#wake?.();
      try {
        // A start still under way finishes first, so what it opens is closed here, not left in the group.
        await this.#startup?.catch(() => undefined);
        await this.#loop;
        await this.#consumer?.close().catch(() => undefined);
        await this.#admin?.close().catch(() => undefined);
        await this.#loader.close();
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

  /** A group member with txkit's guards and the listeners that tell the loop its membership is gone. */
  #newConsumer(): ConsumerLike {
    const { groupId } = this.#options;
    const consumer = new (this.#module as ConsumerModuleLike).Consumer({ ...this.#connection, ...(this.#options.consumer ?? {}), groupId, autocommit: false });
    this.#guard(consumer);
    consumer.on('consumer:group:join', () => this.#wake?.());
    // A rejoin that failed for good: emitted as `error`, which would crash the process with no listener.
    consumer.on('error', (err) => this.#lose(consumer, err instanceof Error ? err : new ConsumerInterrupted(String(err))));
    // A heartbeat that failed without asking for a rejoin stops the library's heartbeats (1.x): the member is then
    // expired by the broker and the consumer never learns it. Looked at once the library's handler has run.
    consumer.on('consumer:heartbeat:error', (payload) => {
      const error = (payload as { error?: { findBy?: (key: string, value: unknown) => unknown } } | undefined)?.error;
      if (error?.findBy?.('needsRejoin', true) != null) return;
      setImmediate(() => {
        if (!consumer.isActive()) this.#lose(consumer, new ConsumerInterrupted('the consumer\'s heartbeats stopped after one failed (the broker did not answer); it joins the group again'));
      });
    });
    return consumer;
  }

  /** Marks the current consumer's membership lost and wakes the loop, which replaces it. */
  #lose(consumer: ConsumerLike, error: Error): void {
    if (this.#consumer !== consumer || this.#lost !== undefined) return;
    this.#lost = error;
    this.#wake?.();
  }

  /**
   * Closes a consumer whose membership is gone or in doubt, without LeaveGroup: the broker may be away, and a
   * member it still knows expires after its session timeout. The next stream opens on a new consumer.
   */
  async #dropConsumer(): Promise<void> {
    const consumer = this.#consumer;
    this.#consumer = undefined;
    this.#lost = undefined;
    if (consumer === undefined) return;
    consumer.memberId = null;
    await consumer.close(true).catch(() => undefined);
  }

  /** Installs the read_committed filter and the require_stable read of committed offsets on the consumer. */
  #guard(consumer: ConsumerLike): void {
    readCommittedAsJava(consumer, () => {
      this.#fetchesAnswered += 1;
    });
    consumer.listCommittedOffsets = (options, callback) => {
      const read = this.#readStable(options.topics);
      if (callback === undefined) return read;
      read.then(
        (offsets) => callback(null, offsets),
        (err: unknown) => callback(err as Error),
      );
      return undefined;
    };
  }

  /** The group's committed offsets of the assigned partitions once no transaction is still completing them (-1 where none). */
  async #readStable(topics: { topic: string; partitions: number[] }[]): Promise<Map<string, bigint[]>> {
    const deadline = Date.now() + STABLE_READ_TIMEOUT_MS;
    const request = { groupId: this.#options.groupId, topics: topics.map((t) => ({ name: t.topic, partitionIndexes: t.partitions })) };
    for (let attempt = 0; ; attempt++) {
      try {
        const [group] = await (this.#admin as AdminLike).listConsumerGroupOffsets({ groups: [request], requireStable: true });
        const offsets = new Map<string, bigint[]>();
        for (const { topic, partitions } of topics) {
          const found = group?.topics.find((t) => t.name === topic)?.partitions ?? [];
          const byPartition: bigint[] = [];
          for (const p of partitions) byPartition[p] = found.find((f) => f.partitionIndex === p)?.committedOffset ?? -1n;
          offsets.set(topic, byPartition);
        }
        return offsets;
      } catch (err) {
        if (!isUnstableOffsetCommit(err) || Date.now() >= deadline) throw err;
        await wait(backoff(STABLE_READ, attempt + 1));
      }
    }
  }

  /** A stream at the group's committed offsets of the current assignment, in the current generation. */
  async #open(): Promise<MessagesStreamLike> {
    const consumer = (this.#consumer ??= this.#newConsumer());
    const { topics, fromBeginning = false } = this.#options;
    const stream = await consumer.consume({ topics, mode: 'committed', fallbackMode: fromBeginning ? 'earliest' : 'latest', autocommit: false });
    // An error while no loop reads the stream (between two streams) must not crash the process: it stays in
    // `stream.errored`, which the loop reads.
    stream.on('error', () => undefined);
    this.#generation = consumer.generationId;
    this.#committed.clear();
    return stream;
  }

  /** Waits up to `ms` for the loop to be woken (records, a fetch, a rejoin, stop()). */
  #sleep(ms: number): Promise<unknown> {
    return wait(ms, undefined, (wake) => {
      this.#wake = wake;
      return () => {
        if (this.#wake === wake) this.#wake = undefined;
      };
    });
  }

  /**
   * After an offset commit refused for a stale generation: waits for the consumer to rejoin (its heartbeat learns
   * of the rebalance), so the records are not read again and refused again in the generation the group left.
   */
  async #awaitRejoin(): Promise<void> {
    const refused = this.#refusedGeneration;
    this.#refusedGeneration = undefined;
    if (refused === undefined) return;
    const consumer = this.#consumer as ConsumerLike;
    const deadline = Date.now() + REJOIN_WAIT_MS;
    while (consumer.generationId === refused && this.#lost === undefined && this.#state === 'running' && Date.now() < deadline) await this.#sleep(deadline - Date.now());
    if (this.#lost !== undefined) throw this.#lost;
    if (consumer.generationId === refused && this.#state === 'running') {
      throw new ConsumerInterrupted(`the consumer did not rejoin the group within ${REJOIN_WAIT_MS} ms of an offset commit refused for its generation`);
    }
  }

  async #run(first: MessagesStreamLike): Promise<void> {
    let stream: MessagesStreamLike | undefined = first;
    let failures = 0;
    while (this.#state === 'running' && this.#failure === undefined) {
      const answeredBefore = this.#fetchesAnswered;
      try {
        stream ??= await this.#open();
        await this.#consume(stream);
        failures = 0;
        await this.#awaitRejoin();
        if (this.#state !== 'running' || this.#failure !== undefined) break;
        // The next stream opens before the last one closes. Closing first would untrack the topics, and the consumer
        // would join the group again to track them anew: a rebalance of every member when it is the group's leader.
        const next = await this.#open();
        await stream.close().catch(() => undefined);
        stream = next;
      } catch (err) {
        // The stream failed (the library ends it on a fetch or metadata error), could not be opened, or the group
        // membership is gone: a new stream, on a new consumer where the membership is gone or in doubt, once the
        // broker answers again. Nothing was committed for what the failed stream had delivered.
        await stream?.close().catch(() => undefined);
        stream = undefined;
        if (this.#lost !== undefined || this.#consumer?.isActive() !== true) await this.#dropConsumer();
        failures = this.#fetchesAnswered === answeredBefore ? failures + 1 : 1;
        if (!(err instanceof ConsumerInterrupted) && classifyKafkaError(err) !== 'transient' && failures > MAX_FAILURES) {
          this.#fail(err);
          break;
        }
        await this.#sleep(backoff(REOPEN, Math.min(failures, 10)));
      }
    }
    await stream?.close().catch(() => undefined);
  }

  /**
   * Runs the stream's records as batches until it must be reopened (a rejoin, a batch that did not commit) or the
   * consumer stops. Throws the stream's own error, or why the membership is gone.
   */
  async #consume(stream: MessagesStreamLike): Promise<void> {
    let failed: Error | undefined;
    let fetched = false;
    const wake = (): void => this.#wake?.();
    const onError = (err: unknown): void => {
      failed = err as Error;
      wake();
    };
    const onFetch = (): void => {
      fetched = true;
      wake();
    };
    stream.on('readable', wake);
    stream.on('fetch', onFetch);
    stream.on('error', onError);
    stream.on('close', wake);
    try {
      for (;;) {
        if (this.#state !== 'running' || this.#failure !== undefined) return;
        if (failed !== undefined) throw failed;
        if (stream.destroyed) throw stream.errored ?? new ConsumerInterrupted('the @platformatic/kafka message stream ended');
        if (this.#lost !== undefined) throw this.#lost;
        if ((this.#consumer as ConsumerLike).generationId !== this.#generation) return;
        const messages: StreamMessage[] = [];
        for (let m = stream.read(); m !== null; m = stream.read()) messages.push(m);
        if (messages.length > 0) {
          // Read in the same tick as the last record: every record before these positions is in `messages` or was skipped.
          const positions = new Map(stream.offsetsToFetch);
          if ((await this.#runBatches(messages, positions)) === 'reopen') return;
          continue;
        }
        if (fetched) {
          fetched = false;
          if ((await this.#commitSkipped(stream)) === 'reopen') return;
          continue;
        }
        await this.#sleep(IDLE_WAKE_MS);
      }
    } finally {
      stream.removeListener('readable', wake);
      stream.removeListener('fetch', onFetch);
      stream.removeListener('error', onError);
      stream.removeListener('close', wake);
    }
  }

  /** One transaction per partition's records, in the order they were read. */
  async #runBatches(messages: StreamMessage[], positions: Map<string, bigint>): Promise<'ok' | 'reopen'> {
    const byPartition = new Map<string, StreamMessage[]>();
    for (const m of messages) {
      const key = `${m.topic}:${m.partition}`;
      let list = byPartition.get(key);
      if (list === undefined) byPartition.set(key, (list = []));
      list.push(m);
    }
    for (const [key, records] of byPartition) {
      const head = records[0] as StreamMessage;
      const last = records[records.length - 1] as StreamMessage;
      if (head.metadata.consumer.generationId !== this.#generation) return 'reopen';
      // Past the batch's last record and past any aborted records or markers fetched after it.
      const fetchedTo = positions.get(key);
      const next = fetchedTo !== undefined && fetchedTo > last.offset ? fetchedTo : last.offset + 1n;
      const outcome = await this.#transaction(head.topic, head.partition, next, head.metadata.consumer, records.map(toIncoming));
      if (outcome !== 'ok') return 'reopen';
      this.committedBatches += 1;
    }
    return 'ok';
  }

  /** Moves the committed offset past records the stream skipped (aborted, markers) when no batch did. */
  async #commitSkipped(stream: MessagesStreamLike): Promise<'ok' | 'reopen'> {
    const consumer = this.#consumer as ConsumerLike;
    if (consumer.generationId !== this.#generation || consumer.memberId === null || consumer.coordinatorId === null) return 'ok';
    const member = { groupId: consumer.groupId, generationId: this.#generation, memberId: consumer.memberId, coordinatorId: consumer.coordinatorId };
    // offsetsToFetch names every partition of the topics; offsetsCommitted only the assigned ones (where the stream started).
    for (const [key, next] of new Map(stream.offsetsToFetch)) {
      const committed = this.#committed.get(key) ?? stream.offsetsCommitted.get(key);
      if (committed === undefined || next <= committed) continue;
      const split = key.lastIndexOf(':');
      const outcome = await this.#transaction(key.slice(0, split), Number(key.slice(split + 1)), next, member, undefined);
      if (outcome !== 'ok') return 'reopen';
    }
    return 'ok';
  }

  /**
   * The batch's output and its next offset in one transaction (offsets only for skipped records). 'reopen' when it
   * did not commit because the group moved on (the records are read again by whoever owns the partition now);
   * any other failure stops the consumer.
   */
  async #transaction(
    topic: string,
    partition: number,
    next: bigint,
    member: StreamMessage['metadata']['consumer'],
    messages: KafkaIncomingMessage[] | undefined,
  ): Promise<'ok' | 'reopen'> {
    const { context, groupId, eachBatch, retry } = this.#options;
    try {
      await context.withTransaction(
        async (tx) => {
          if (messages !== undefined) await inCallbackOf(this, () => eachBatch({ topic, partition, messages, tx, heartbeat: async () => undefined }));
          await tx.handle.sendOffsets({ consumerGroupId: groupId, consumer: member, topics: [{ topic, partitions: [{ partition, offset: String(next) }] }] });
        },
        retry === undefined ? {} : { retry },
      );
    } catch (err) {
      if (isMembershipError(err)) {
        if (messages !== undefined) this.fencedBatches += 1;
        this.#refusedGeneration = member.generationId;
        return 'reopen';
      }
      this.#fail(err);
      return 'reopen';
    }
    this.#committed.set(`${topic}:${partition}`, next);
    return 'ok';
  }

  /** Stops for good, without committing the failed batch: nothing is lost, a restart reads it again. */
  #fail(error: unknown): void {
    if (this.#failure !== undefined) return;
    this.#failure = { error };
    this.#wake?.();
    // Not awaited: the loop may be the caller; stop() waits for it.
    void this.stop().catch(() => undefined);
  }
}

function toIncoming(m: StreamMessage): KafkaIncomingMessage {
  const headers: Record<string, Buffer | string | (Buffer | string)[] | undefined> = {};
  for (const [k, v] of m.headers) headers[k.toString()] = v;
  return { key: m.key ?? null, value: m.value ?? null, offset: m.offset.toString(), timestamp: m.timestamp.toString(), headers };
}

function isMembershipError(err: unknown): boolean {
  if (err instanceof FencedError) return false;
  return err instanceof TxkitError && MEMBERSHIP_CODES.has(err.code);
}

function isUnstableOffsetCommit(err: unknown): boolean {
  const e = err as { findBy?: (key: string, value: unknown) => unknown; apiId?: unknown };
  return e?.apiId === 'UNSTABLE_OFFSET_COMMIT' || (typeof e?.findBy === 'function' && e.findBy('apiId', 'UNSTABLE_OFFSET_COMMIT') != null);
}
