/**
 * @platformatic/kafka behind the KafkaJS-shaped calls the Kafka driver makes.
 *
 * @platformatic/kafka has no `Kafka` factory: each client is built from the
 * same connection options (`clientId`, `bootstrapBrokers`, `sasl`, `tls`, ...).
 * kafkaTransactions takes those options with `client: 'platformatic'` and
 * wraps them in {@link PlatformaticKafka}, which loads the library at the
 * first connect (it is an optional peer dependency) and builds one
 * transactional `Producer` per producer of the context.
 *
 * What the wrapper settles that the library leaves to its caller:
 * - InitProducerId asks for "a new producer" (producer id and epoch -1), as
 *   the Java client does; the library's default (0, 0) is refused with
 *   PRODUCER_FENCED by a coordinator whose producer id for that
 *   transactional.id is not 0.
 * - A transaction's calls run one at a time: the library merges concurrent
 *   calls of the same kind (two offset commits, two partition additions)
 *   into the first one's request.
 * - A transaction that sent nothing ends without EndTxn (the coordinator
 *   answers INVALID_TXN_STATE to an empty one), as Java and kafkajs do.
 * - Keys route as Java's default partitioner routes them (murmur2 masked to
 *   31 bits); the library's default keeps all 32 bits, which picks another
 *   partition for half of the keys on a topic whose partition count is not
 *   a power of two.
 * - Retries are bounded and back off from 2 ms (the library retries an
 *   idempotent producer's requests forever by default, one second apart),
 *   from 1 ms after CONCURRENT_TRANSACTIONS (see retryDelayOf).
 * - A send to a missing topic asks the broker to create it (its
 *   `auto.create.topics.enable` decides), as kafkajs does; the library's
 *   default refuses it at once with "Unknown topic".
 * - The library's producer `timeout` is the transaction timeout it sends in
 *   InitProducerId (and the acks timeout of its produce requests), 5 s by
 *   default, so a transaction open longer was aborted by the coordinator:
 *   txkit sets it from `transactionTimeout` (default 60 s, kafkajs' default).
 *   How long a request may go unanswered is the connection option
 *   `requestTimeout` (the library's default, 30 s).
 */
import { ConfigError, TransientTransactionError } from '../../core/index.js';
import { DEFAULT_KAFKA_PRODUCER_RETRY, retryWait } from './kafka-producer-config.js';
import type { KafkaRetryPolicy } from './kafka-producer-config.js';
import { murmur2 } from './kafka-partition-router.js';
import type {
  KafkaLike,
  KafkaNativeTransaction,
  KafkaOutgoingMessage,
  KafkaProducerConfigLike,
  KafkaProducerLike,
  KafkaRecordMetadataLike,
  KafkaRetryOptions,
} from './kafka-types.js';

/** The connection options of @platformatic/kafka clients: `clientId` and `bootstrapBrokers` at least; the rest passes through. */
export interface PlatformaticKafkaOptions {
  /** The client id the brokers see. */
  clientId: string;
  /** `host:port` of one or more brokers. */
  bootstrapBrokers: string[];
  /** Any other base option of @platformatic/kafka (`sasl`, `tls`, `connectTimeout`, ...). */
  [option: string]: unknown;
}

/**
 * Producer settings of a context on @platformatic/kafka: `transactionTimeout`
 * and `retry` as for kafkajs, and any other @platformatic/kafka producer
 * option (`compression`, `serializers`, `partitioner`, ...) except the
 * transactional ones txkit sets.
 */
export interface PlatformaticProducerConfig {
  /** How long the coordinator lets a transaction stay open, in ms (the library's producer `timeout`). @default 60000 */
  transactionTimeout?: number;
  /** Retries of the producer's requests (bounded; the first after 2 ms). @default DEFAULT_KAFKA_PRODUCER_RETRY */
  retry?: KafkaRetryOptions;
  /** Any other @platformatic/kafka producer option. */
  [option: string]: unknown;
}

/** A @platformatic/kafka consumer, as far as sendOffsets reads its group membership. */
export interface PlatformaticConsumerLike {
  readonly groupId: string;
  readonly generationId: number;
  readonly memberId: string | null;
  readonly coordinatorId: number | null;
}

interface PlatformaticMessage {
  topic: string;
  key?: Buffer;
  value?: Buffer;
  partition?: number;
  headers?: Map<Buffer, Buffer>;
}

interface PlatformaticTransaction {
  send(options: { messages: PlatformaticMessage[] }): Promise<{ offsets?: { topic: string; partition: number; offset: bigint | string | number }[] }>;
  addConsumer(consumer: { groupId: string }): Promise<void>;
  addOffset(message: {
    topic: string;
    partition: number;
    offset: bigint;
    metadata: { consumer: { groupId: string; generationId: number; memberId: string; coordinatorId: number } };
  }): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
  cancel(): Promise<void>;
}

interface PlatformaticProducer {
  beginTransaction(): Promise<PlatformaticTransaction>;
  /** The cluster as the producer knows it (cached for `metadataMaxAge`, 5 s by default). */
  metadata(options: { topics: string[] }): Promise<{ brokers: Map<number, unknown> }>;
  close(force?: boolean): Promise<void>;
}

interface PlatformaticAdmin {
  findCoordinator(options: { keyType: number; keys: string[] }): Promise<{ key: string; nodeId: number }[]>;
  close(): Promise<void>;
}

/** The exports of @platformatic/kafka txkit uses. */
export interface PlatformaticModuleLike {
  Producer: new (options: Record<string, unknown>) => PlatformaticProducer;
  Admin: new (options: Record<string, unknown>) => PlatformaticAdmin;
}

/** FindCoordinator key type of a consumer group. */
const GROUP_KEY_TYPE = 0;

/** Producer options of @platformatic/kafka that txkit owns. */
const OWNED = ['transactionalId', 'idempotent', 'producerId', 'producerEpoch', 'retries', 'retryDelay', 'timeout'];

/**
 * True for a value that is @platformatic/kafka connection options rather
 * than a KafkaJS-API `Kafka` instance: `bootstrapBrokers`, and no `producer()`.
 */
export function isPlatformaticOptions(value: unknown): value is PlatformaticKafkaOptions {
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray((value as { bootstrapBrokers?: unknown }).bootstrapBrokers) &&
    typeof (value as { producer?: unknown }).producer !== 'function'
  );
}

/**
 * The Kafka "instance" of a context on @platformatic/kafka: it makes
 * KafkaJS-shaped producers whose transactions run on @platformatic/kafka
 * `Producer`s built from the connection options.
 */
export class PlatformaticKafka implements KafkaLike {
  readonly options: PlatformaticKafkaOptions;
  #module: Promise<PlatformaticModuleLike> | undefined;
  readonly #coordinators = new Map<string, Promise<number>>();
  #admin: PlatformaticAdmin | undefined;

  /** @param module the library itself, when the caller loaded it (tests, bundlers); loaded on first use otherwise */
  constructor(options: PlatformaticKafkaOptions, module?: PlatformaticModuleLike) {
    if (typeof options.clientId !== 'string' || options.clientId === '' || options.bootstrapBrokers.length === 0) {
      throw new ConfigError(
        "kafkaTransactions with client 'platformatic' takes @platformatic/kafka connection options with a clientId and bootstrapBrokers, " +
          "e.g. { clientId: 'orders', bootstrapBrokers: ['127.0.0.1:9092'] }",
        { backend: 'kafka' },
      );
    }
    this.options = options;
    if (module !== undefined) this.#module = Promise.resolve(module);
  }

  producer(config: KafkaProducerConfigLike = {}): KafkaProducerLike {
    return new PlatformaticProducerAdapter(this, config);
  }

  /** @internal the library, loaded once. */
  load(): Promise<PlatformaticModuleLike> {
    this.#module ??= (import('@platformatic/kafka' as string) as Promise<PlatformaticModuleLike>).catch((err: unknown) => {
      this.#module = undefined;
      throw new ConfigError(
        "kafkaTransactions with client 'platformatic' needs the @platformatic/kafka package: npm install @platformatic/kafka@1",
        { backend: 'kafka', cause: err },
      );
    });
    return this.#module;
  }

  /** @internal the broker that coordinates `groupId` (its TxnOffsetCommit goes there), looked up once per group. */
  groupCoordinator(groupId: string): Promise<number> {
    let known = this.#coordinators.get(groupId);
    if (known === undefined) {
      known = (async () => {
        const { Admin } = await this.load();
        this.#admin ??= new Admin({ ...this.options, clientId: `${this.options.clientId}-txkit-coordinators` });
        const found = await this.#admin.findCoordinator({ keyType: GROUP_KEY_TYPE, keys: [groupId] });
        const node = found.find((c) => c.key === groupId)?.nodeId;
        // The group's coordinator is being elected or loaded (a broker restarted): asked again on the next attempt.
        if (typeof node !== 'number' || node < 0) {
          throw new TransientTransactionError(`kafka: no coordinator is available for consumer group '${groupId}' yet (the broker is electing or loading it); the transaction is retried`, { backend: 'kafka' });
        }
        return node;
      })();
      this.#coordinators.set(groupId, known);
      // A failed lookup, or a coordinator that moved (the caller forgets it), is looked up again.
      known.catch(() => this.forgetCoordinator(groupId, known));
    }
    return known;
  }

  /** @internal after a failed offset commit: the group's coordinator may have moved. */
  forgetCoordinator(groupId: string, which?: Promise<number>): void {
    if (which === undefined || this.#coordinators.get(groupId) === which) this.#coordinators.delete(groupId);
  }

  /** Closes the admin client used for coordinator lookups, if one was opened. */
  async close(): Promise<void> {
    const admin = this.#admin;
    this.#admin = undefined;
    this.#coordinators.clear();
    await admin?.close().catch(() => undefined);
  }
}

/** A transactional @platformatic/kafka Producer behind kafkajs' connect / transaction / disconnect. */
class PlatformaticProducerAdapter implements KafkaProducerLike {
  readonly #kafka: PlatformaticKafka;
  readonly #config: KafkaProducerConfigLike;
  #producer: PlatformaticProducer | undefined;

  constructor(kafka: PlatformaticKafka, config: KafkaProducerConfigLike) {
    this.#kafka = kafka;
    this.#config = config;
  }

  async connect(): Promise<void> {
    const { Producer } = await this.#kafka.load();
    this.#producer ??= new Producer(producerOptions(this.#kafka.options, this.#config));
  }

  async disconnect(): Promise<void> {
    const producer = this.#producer;
    this.#producer = undefined;
    await producer?.close(true);
  }

  async transaction(): Promise<KafkaNativeTransaction> {
    const producer = this.#producer;
    if (producer === undefined) throw new Error('the @platformatic/kafka producer is not connected');
    return new PlatformaticTransactionAdapter(this.#kafka, await producer.beginTransaction(), async (topic) => (await producer.metadata({ topics: [topic] })).brokers);
  }
}

/** The library's producer options: the caller's connection and producer options, with the transactional settings txkit owns. */
function producerOptions(connection: PlatformaticKafkaOptions, config: KafkaProducerConfigLike): Record<string, unknown> {
  const { transactionalId, transactionTimeout, retry, idempotent: _idempotent, maxInFlightRequests: _inflight, ...extra } = config as KafkaProducerConfigLike &
    Record<string, unknown>;
  for (const key of OWNED) {
    if (key in extra) {
      throw new ConfigError(
        `kafkaTransactions with client 'platformatic': producer.${key} is set by txkit; ` +
          'use transactionalId, producer.transactionTimeout and producer.retry instead',
        { backend: 'kafka' },
      );
    }
  }
  const policy: KafkaRetryPolicy = { ...DEFAULT_KAFKA_PRODUCER_RETRY, ...(retry ?? {}) };
  const roundRobin = new Map<string, number>();
  return {
    partitioner: javaPartitioner(roundRobin),
    // As kafkajs: a send to a topic that does not exist lets the broker create it, if its config allows.
    autocreateTopics: true,
    ...connection,
    ...extra,
    transactionalId,
    idempotent: true,
    // "A new producer": the coordinator then bumps the epoch of whatever producer held the id before.
    producerId: -1n,
    producerEpoch: -1,
    timeout: transactionTimeout ?? 60_000,
    // At least 2: the library turns 0 or 1 retries of an idempotent producer into retrying forever.
    retries: Math.max(2, policy.retries),
    retryDelay: retryDelayOf(policy),
  };
}

/**
 * The library's `retryDelay`: the policy's back-off, except that a request
 * refused with CONCURRENT_TRANSACTIONS (the previous commit's markers are
 * still being written, which takes a millisecond or a few) is first retried
 * after 1 ms, the shortest timer, doubling from there: back-to-back
 * transactions meet it before a third to a half of their first sends, and the
 * markers are often written within the first millisecond. Against a first
 * retry after 2 ms, back-to-back transactions of 1 and 10 messages took
 * about 1 ms (a quarter) less each on a local broker.
 */
export function retryDelayOf(policy: KafkaRetryPolicy): (client: unknown, operation: string, attempt: number, retries: number, error: unknown) => number {
  return (_client, _operation, attempt, _retries, error) =>
    retryWait(policy, attempt, isConcurrentTransactions(error) ? Math.min(CONCURRENT_TRANSACTIONS_FIRST_RETRY_MS, policy.initialRetryTime) : policy.initialRetryTime);
}

/** First retry after CONCURRENT_TRANSACTIONS, in ms (doubling from there). */
const CONCURRENT_TRANSACTIONS_FIRST_RETRY_MS = 1;

/** True when a @platformatic/kafka error (or one of the errors it carries) is the broker error `apiId` (e.g. 'TOPIC_ALREADY_EXISTS'). */
export function hasPlatformaticError(err: unknown, apiId: string): boolean {
  const e = err as { apiId?: unknown; findBy?: (key: string, value: unknown) => unknown } | null;
  return e?.apiId === apiId || (typeof e?.findBy === 'function' && e.findBy('apiId', apiId) != null);
}

/** The library's error for CONCURRENT_TRANSACTIONS (51), alone or among the errors of a response. */
function isConcurrentTransactions(error: unknown): boolean {
  const find = (error as { findBy?: (property: string, value: unknown) => unknown } | null)?.findBy;
  return typeof find === 'function' && Boolean(find.call(error, 'apiCode', 51));
}

/**
 * Java's default partitioner for keyed records (murmur2 of the key, masked
 * to 31 bits; the library takes it modulo the partition count); records
 * without a key go round robin per topic.
 */
function javaPartitioner(counters: Map<string, number>): (message: { topic: string }, key: unknown) => number {
  return (message, key) => {
    if (Buffer.isBuffer(key)) return murmur2(key) & 0x7fffffff;
    const next = ((counters.get(message.topic) ?? Math.floor(Math.random() * 0x7fffffff)) + 1) & 0x7fffffff;
    counters.set(message.topic, next);
    return next;
  };
}

/** One @platformatic/kafka transaction behind kafkajs' Transaction; its calls run one at a time. */
class PlatformaticTransactionAdapter implements KafkaNativeTransaction {
  readonly #kafka: PlatformaticKafka;
  readonly #native: PlatformaticTransaction;
  /** The brokers in the producer's metadata for a topic (the library's next lookup for that topic reads the same cache). */
  readonly #brokers: (topic: string) => Promise<Map<number, unknown>>;
  #queue: Promise<unknown> = Promise.resolve();
  /** A request that may have added a partition or a group was sent: the transaction ends with EndTxn. */
  #touched = false;

  constructor(kafka: PlatformaticKafka, native: PlatformaticTransaction, brokers: (topic: string) => Promise<Map<number, unknown>>) {
    this.#kafka = kafka;
    this.#native = native;
    this.#brokers = brokers;
  }

  send(record: { topic: string; messages: KafkaOutgoingMessage[] }): Promise<KafkaRecordMetadataLike[]> {
    return this.sendBatch({ topicMessages: [record] });
  }

  sendBatch({ topicMessages }: { topicMessages: { topic: string; messages: KafkaOutgoingMessage[] }[] }): Promise<KafkaRecordMetadataLike[]> {
    const messages = topicMessages.flatMap(({ topic, messages: ms }) => ms.map((m) => toPlatformaticMessage(topic, m)));
    return this.#serial(async () => {
      if (messages.length === 0) return [];
      this.#touched = true;
      const result = await this.#native.send({ messages });
      return (result.offsets ?? []).map((o) => ({ topicName: o.topic, partition: o.partition, baseOffset: String(o.offset) }));
    });
  }

  sendOffsets(request: {
    consumerGroupId?: string;
    consumer?: object;
    topics: { topic: string; partitions: { partition: number; offset: string }[] }[];
  }): Promise<void> {
    return this.#serial(async () => {
      const member = await this.#memberOf(request);
      this.#touched = true;
      await this.#native.addConsumer({ groupId: member.groupId });
      try {
        for (const { topic, partitions } of request.topics) {
          const consumer = await this.#routable(member, topic);
          for (const { partition, offset } of partitions) {
            // The library commits `offset + 1` (the next record after the one given).
            await this.#native.addOffset({ topic, partition, offset: BigInt(offset) - 1n, metadata: { consumer } });
          }
        }
      } catch (err) {
        if (request.consumer === undefined) this.#kafka.forgetCoordinator(member.groupId);
        throw err;
      }
    });
  }

  commit(): Promise<void> {
    return this.#serial(() => (this.#touched ? this.#native.commit() : this.#native.cancel()));
  }

  abort(): Promise<void> {
    return this.#serial(() => (this.#touched ? this.#native.abort() : this.#native.cancel()));
  }

  /**
   * The membership with a coordinator the library can reach. The library sends TxnOffsetCommit to the broker it
   * finds under `coordinatorId` in its metadata, unchecked: a node that is not there (down, or the coordinator
   * moved while the consumer kept the old id) throws a TypeError in its network callback, out of every caller's
   * reach, and ends the process. A coordinator missing from the metadata is looked up again; the generation and
   * member id, which fence, stay the consumer's.
   */
  async #routable<M extends { groupId: string; coordinatorId: number }>(member: M, topic: string): Promise<M> {
    const brokers = await this.#brokers(topic);
    if (brokers.has(member.coordinatorId)) return member;
    this.#kafka.forgetCoordinator(member.groupId);
    const coordinatorId = await this.#kafka.groupCoordinator(member.groupId);
    if (brokers.has(coordinatorId)) return { ...member, coordinatorId };
    throw new TransientTransactionError(
      `kafka: the coordinator of consumer group '${member.groupId}' (broker ${coordinatorId}) is not in the cluster metadata yet; the transaction is retried`,
      { backend: 'kafka' },
    );
  }

  /** The group membership the offsets are committed with: the consumer's (generation-fenced), or the group alone. */
  async #memberOf(request: { consumerGroupId?: string; consumer?: object }): Promise<{ groupId: string; generationId: number; memberId: string; coordinatorId: number }> {
    if (request.consumer !== undefined) {
      const c = request.consumer as Partial<PlatformaticConsumerLike>;
      if (typeof c.groupId !== 'string' || typeof c.generationId !== 'number' || typeof c.coordinatorId !== 'number') {
        throw new ConfigError(
          'sendOffsets({ consumer }) with @platformatic/kafka needs a consumer that has joined its group (it has no generation or coordinator yet)',
          { backend: 'kafka' },
        );
      }
      if (request.consumerGroupId && request.consumerGroupId !== c.groupId) {
        throw new ConfigError(
          `sendOffsets names group '${request.consumerGroupId}' but its consumer is a member of '${c.groupId}'; leave consumerGroupId empty or make them agree`,
          { backend: 'kafka' },
        );
      }
      return { groupId: c.groupId, generationId: c.generationId, memberId: c.memberId ?? '', coordinatorId: c.coordinatorId };
    }
    const groupId = request.consumerGroupId as string;
    // No member: the broker skips the generation check, as for kafkajs' TxnOffsetCommit.
    return { groupId, generationId: -1, memberId: '', coordinatorId: await this.#kafka.groupCoordinator(groupId) };
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

function toPlatformaticMessage(topic: string, m: KafkaOutgoingMessage): PlatformaticMessage {
  const out: PlatformaticMessage = { topic };
  if (m.key !== undefined && m.key !== null) out.key = toBuffer(m.key);
  if (m.value !== null) out.value = toBuffer(m.value);
  if (m.partition !== undefined) out.partition = m.partition;
  if (m.headers !== undefined) {
    out.headers = new Map(Object.entries(m.headers).map(([k, v]) => [Buffer.from(k), toBuffer(v)]));
  }
  return out;
}

function toBuffer(v: string | Buffer): Buffer {
  return typeof v === 'string' ? Buffer.from(v) : v;
}
