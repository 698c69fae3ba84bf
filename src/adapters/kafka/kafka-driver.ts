import {
  ConfigError,
  FencedError,
  TransactionPropagationError,
  TransactionAbortedError,
  TransactionStateError,
  TransientTransactionError,
  validateSendBatchRequest,
  validateSendOffsetsRequest,
  validateSendRequest,
} from '../../core/index.js';
import type {
  DriverBeginInfo,
  DriverTransaction,
  RecordMetadata,
  SendBatchRequest,
  SendRequest,
  TransactionDriver,
} from '../../core/index.js';
import { wait } from '../../core/backoff.js';
import { HandleGuard } from '../../core/handle-guard.js';
import type { HandleGuardSpec } from '../../core/handle-guard.js';
import { classifyKafkaError, translateKafkaError } from './kafka-errors.js';
import type { KafkaOperation } from './kafka-errors.js';
import { KafkaPartitionRouter } from './kafka-partition-router.js';
import type { KafkaRouterAdminLike, RoutedGroup } from './kafka-partition-router.js';
import { DEFAULT_KAFKA_PRODUCER_RETRY, retryWait } from './kafka-producer-config.js';
import type { KafkaRetryPolicy } from './kafka-producer-config.js';
import type {
  KafkaLike,
  KafkaNativeTransaction,
  KafkaOutgoingMessage,
  KafkaProducerConfigLike,
  KafkaProducerLike,
  KafkaRecordMetadataLike,
  KafkaRetryOptions,
  KafkaClientFlavor,
  KafkaSendOffsetsRequest,
  KafkaTxHandle,
} from './kafka-types.js';

const ENDED_STATES: ReadonlySet<string> = new Set(['committed', 'aborted', 'failed']);

/** One transactional.id of the context, with its producer and whether a transaction holds it. */
interface Lane {
  readonly transactionalId: string;
  readonly config: KafkaProducerConfigLike;
  slot: ProducerSlot | undefined;
  building: Promise<ProducerSlot> | undefined;
  /** A transaction runs on it (Kafka allows one open transaction per producer). */
  held: boolean;
  /** Its next transaction starts on a new producer, though nothing failed (see renewProducers). */
  renew: boolean;
}

/** One kafkajs producer; replaced ("rebuilt") after any of its requests failed. */
interface ProducerSlot {
  readonly lane: Lane;
  readonly producer: KafkaProducerLike;
  /** Its state may be off (stuck EndTxn, sequence numbers after a failed send): the next transaction uses a new producer. */
  broken: boolean;
  /** This context has put a new producer in its place (whose InitProducerId fences this one). */
  replaced?: boolean;
  /** kafkajs only: the Produce requests this producer got an answer to, counted from its instrumentation events; undefined without them. */
  produced: { count: number } | undefined;
}

interface Waiter {
  resolve(lane: Lane): void;
  reject(err: unknown): void;
}

/**
 * The Kafka TransactionDriver. It runs transactions on a fixed set of
 * transactional producers (one, or a pool of `prefix-0..prefix-N-1`), one
 * transaction per producer at a time, handing each new transaction the
 * first free producer and queueing it when all are busy; it rebuilds a
 * producer after a failed request (InitProducerId on the new producer bumps
 * the epoch and lets the coordinator finish or abort whatever the old one
 * left open, as Java's epoch bump of KIP-360 does), and turns kafkajs errors
 * into txkit errors.
 */
export class KafkaDriver implements TransactionDriver<KafkaTxHandle> {
  readonly backend = 'kafka' as const;
  /** Kafka transactions take only the core's options (timeoutMs, signal): any other key is a mistake. */
  readonly optionKeys: readonly string[] = [];
  /** The first (without a pool, the only) transactional.id. */
  readonly transactionalId: string;
  readonly transactionalIds: readonly string[];
  readonly client: KafkaClientFlavor;
  readonly #kafka: KafkaLike;
  readonly #lanes: readonly Lane[];
  /** Every producer connected once (InitProducerId fences predecessors of every id): the first begin waits for it. */
  #started: Promise<void> | undefined;
  readonly #waiters: Waiter[] = [];
  #fenced: FencedError | undefined;
  #closed = false;
  readonly #onClose: (() => void | Promise<void>) | undefined;
  /** @internal kafkajs only: routes a send's records to partitions and their leaders, for a call per leader or per partition (librdkafka retries per partition itself). */
  readonly router: KafkaPartitionRouter | undefined;

  /**
   * @param ids the transactional.ids with their producer config, one per producer of the pool
   * @param onClose called once by close(), e.g. to free the ids for another context; close() resolves after its promise
   */
  constructor(
    kafka: KafkaLike,
    ids: readonly { transactionalId: string; config: KafkaProducerConfigLike }[],
    client: KafkaClientFlavor,
    onClose?: () => void | Promise<void>,
  ) {
    if (ids.length === 0) throw new ConfigError('a kafka transaction context needs at least one transactional.id', { backend: 'kafka' });
    this.#kafka = kafka;
    this.client = client;
    this.#lanes = ids.map(({ transactionalId, config }) => ({ transactionalId, config, slot: undefined, building: undefined, held: false, renew: false }));
    this.transactionalIds = Object.freeze(this.#lanes.map((l) => l.transactionalId));
    this.transactionalId = this.transactionalIds[0] as string;
    this.#onClose = onClose;
    const admin = (kafka as { admin?: () => KafkaRouterAdminLike }).admin;
    this.router =
      client === 'kafkajs'
        ? new KafkaPartitionRouter(() => (typeof admin === 'function' ? admin.call(kafka) : undefined), (ids[0] as { config: KafkaProducerConfigLike }).config['createPartitioner' as keyof KafkaProducerConfigLike])
        : undefined;
  }

  classify = classifyKafkaError;

  async begin(_options: object, signal: AbortSignal, info: DriverBeginInfo<KafkaTxHandle>): Promise<DriverTransaction<KafkaTxHandle>> {
    const { ambient } = info;
    if (ambient !== undefined && !ENDED_STATES.has(ambient.state)) {
      // Waiting for a producer could wait for the very transaction this flow is running in.
      throw new TransactionPropagationError(
        `a second kafka transaction cannot begin inside transaction ${ambient.id} of the same context (transactional.id ` +
          `'${ambient.handle.transactionalId}'): a transactional producer runs one transaction at a time. Use propagation 'required' ` +
          "to join it, or a second kafkaTransactions context with its own transactionalId for an independent one",
        { backend: 'kafka' },
      );
    }
    this.#assertUsable();
    const lane = await this.#acquire(signal);
    let slot: ProducerSlot | undefined;
    try {
      this.#assertUsable();
      await this.#start();
      slot = await this.#ready(lane);
      const native = await slot.producer.transaction();
      return new KafkaTransaction(this, slot, native);
    } catch (err) {
      this.release(lane);
      throw this.failed(err, 'begin', slot);
    }
  }

  async close(): Promise<void> {
    const onClose = this.#closed ? undefined : this.#onClose?.();
    this.#closed = true;
    const closed = new TransactionStateError('the kafka transaction context was closed while this begin waited for a producer', {
      backend: 'kafka',
      code: 'CONTEXT_CLOSED',
    });
    for (const w of this.#waiters.splice(0)) w.reject(closed);
    await this.router?.close();
    await Promise.all(
      this.#lanes.map(async (lane) => {
        const slot = lane.slot ?? (await lane.building?.catch(() => undefined));
        lane.slot = undefined;
        await slot?.producer.disconnect().catch(() => undefined);
      }),
    );
    await onClose;
  }

  /** @internal a failed request: mark the producer for rebuild (or the context fenced) and translate the error. */
  failed(err: unknown, operation: KafkaOperation, slot: ProducerSlot | undefined): unknown {
    const translated = translateKafkaError(err, operation, slot?.lane.transactionalId ?? this.transactionalId);
    // A producer this context replaced: a request of it still in flight (a send the callback did not
    // await) meets the new producer's epoch, which fences the old producer, not this context.
    if (translated instanceof FencedError) {
      if (slot?.replaced !== true) this.#fenced ??= translated;
    }
    // translateKafkaError returns a new error exactly for kafkajs errors: the producer failed a request.
    else if (slot !== undefined && translated !== err) slot.broken = true;
    return translated;
  }

  /** True once another producer took over one of this context's transactional.ids: it refuses new transactions. */
  get fenced(): boolean {
    return this.#fenced !== undefined;
  }

  /** @internal ends the turn of the transaction holding `lane`'s producer. */
  release(lane: Lane): void {
    const next = this.#waiters.shift();
    if (next !== undefined) next.resolve(lane);
    else lane.held = false;
  }

  /**
   * @internal replaces a broken producer now: InitProducerId on the new one
   * makes the coordinator abort (or finish committing) what the old one left
   * open, so read_committed consumers are not held up until transactionTimeout.
   */
  async rebuildNow(lane: Lane): Promise<void> {
    await this.#ready(lane);
  }

  /**
   * @internal The next transaction of each producer starts on a new one,
   * whose InitProducerId the coordinator answers only once the transaction
   * the old one ended is complete (its markers written): what it committed,
   * group offsets included, is then visible to every reader.
   */
  renewProducers(): void {
    for (const lane of this.#lanes) if (lane.slot !== undefined) lane.renew = true;
  }

  #assertUsable(): void {
    if (this.#fenced !== undefined) {
      throw new FencedError(
        `this kafka context (transactional.id${this.#lanes.length > 1 ? 's' : ''} ${describeIds(this.transactionalIds)}) was fenced and refuses new transactions: ` +
          `${this.#fenced.message}`,
        { backend: 'kafka', cause: this.#fenced.cause },
      );
    }
    if (this.#closed) {
      throw new TransactionStateError('the kafka transaction context is closed', { backend: 'kafka', code: 'CONTEXT_CLOSED' });
    }
  }

  /**
   * Connects every producer of the pool once, before the first transaction:
   * each InitProducerId fences a predecessor of its id (a zombie of an
   * earlier run of this process), whichever ids this run goes on to use.
   */
  #start(): Promise<void> {
    this.#started ??= Promise.all(this.#lanes.map((lane) => this.#ready(lane))).then(
      () => undefined,
      (err: unknown) => {
        // Tried again by the next begin; the producers that connected stay.
        this.#started = undefined;
        throw err;
      },
    );
    return this.#started;
  }

  /** The first free producer, or the next one to end its turn (first in, first served); a caller's signal takes it out of the queue. */
  #acquire(signal: AbortSignal): Promise<Lane> {
    const free = this.#lanes.find((lane) => !lane.held);
    if (free !== undefined) {
      free.held = true;
      return Promise.resolve(free);
    }
    return new Promise<Lane>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (lane) => {
          signal.removeEventListener('abort', onAbort);
          resolve(lane);
        },
        reject: (err) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = (): void => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(
          new TransactionAbortedError("the kafka transaction was cancelled by the caller's AbortSignal while begin waited for a producer", {
            backend: 'kafka',
            cause: signal.reason,
          }),
        );
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** The lane's current producer, or a new connected one in place of a broken one. */
  async #ready(lane: Lane): Promise<ProducerSlot> {
    const current = lane.slot;
    if (current !== undefined && !current.broken && !lane.renew) return current;
    lane.building ??= (async () => {
      lane.slot = undefined;
      lane.renew = false;
      if (current !== undefined) {
        current.replaced = true;
        await current.producer.disconnect().catch(() => undefined);
      }
      let producer: KafkaProducerLike;
      try {
        producer = this.#kafka.producer({ ...lane.config });
      } catch (err) {
        if (this.client === 'kafkajs' && /kafkaJS block/.test(String((err as Error)?.message))) {
          throw new ConfigError(
            "this looks like @confluentinc/kafka-javascript's Kafka: pass kafkaTransactions(kafka, { client: 'confluent', ... })",
            { backend: 'kafka', cause: err },
          );
        }
        throw err;
      }
      await producer.connect();
      // kafkajs' connect() asks for a producer id without the transactional.id. The first transaction
      // asks with it (InitProducerId): that fences this id's predecessor and makes the coordinator settle
      // its open transaction. Done now, so every producer of the context fences when it is made, not when
      // a transaction first happens to use it; a transaction that sent nothing ends without a request.
      const fence = await producer.transaction();
      await fence.abort();
      const slot: ProducerSlot = { lane, producer, broken: false, produced: this.router === undefined ? undefined : countProduceRequests(producer) };
      if (this.#closed) {
        await producer.disconnect().catch(() => undefined);
        throw new TransactionStateError('the kafka transaction context was closed', { backend: 'kafka', code: 'CONTEXT_CLOSED' });
      }
      lane.slot = slot;
      return slot;
    })().finally(() => {
      lane.building = undefined;
    });
    return lane.building;
  }
}

/** `'a'`, or `'a-0'..'a-7'` for a pool. */
function describeIds(ids: readonly string[]): string {
  return ids.length === 1 ? `'${ids[0]}'` : `'${ids[0]}'..'${ids.at(-1)}'`;
}

type Ending = 'committed' | 'rolled back' | 'ended with an unknown outcome';

const HANDLE: HandleGuardSpec<Ending> = {
  backend: 'kafka',
  label: 'kafka',
  describe: (ended) => ({ how: ended, state: ended === 'committed' ? 'committed' : 'aborted' }),
};

/** One Kafka transaction: the handle the callback uses, and commit/rollback for the core. */
class KafkaTransaction implements DriverTransaction<KafkaTxHandle> {
  readonly handle: KafkaTxHandle;
  readonly #driver: KafkaDriver;
  readonly #slot: ProducerSlot;
  readonly #native: KafkaNativeTransaction;
  readonly #guard = new HandleGuard(HANDLE);
  /** Requests of this transaction in flight; a rollback during one rebuilds instead of racing it with EndTxn. */
  #inflight = 0;
  /** Sends of this transaction between their routing and their answer (kafkajs). */
  #sending = 0;
  /** A send by leader in flight: sends that come meanwhile wait for it, so the Produce requests it counts are its own. */
  #byLeader: Promise<unknown> | undefined;
  /** Why a send by leader spoiled the transaction (see #sendByLeader): it can only roll back, and its sends and commit throw this. */
  #spoiled: unknown;

  constructor(driver: KafkaDriver, slot: ProducerSlot, native: KafkaNativeTransaction) {
    this.#driver = driver;
    this.#slot = slot;
    this.#native = native;
    this.handle = Object.freeze({
      transactionalId: slot.lane.transactionalId,
      send: async (request: SendRequest): Promise<RecordMetadata[]> => {
        this.#assertOpen('send');
        validateSendRequest(request, 'kafka');
        const sent = await this.#call('send', () => this.#send([{ topic: request.topic, messages: request.messages.map(toKafkaMessage) }]));
        return sent.map(toMetadata);
      },
      sendBatch: async (request: SendBatchRequest): Promise<RecordMetadata[]> => {
        this.#assertOpen('sendBatch');
        validateSendBatchRequest(request, 'kafka');
        const topicMessages = request.topicMessages.map((r) => ({ topic: r.topic, messages: r.messages.map(toKafkaMessage) }));
        const sent = await this.#call('sendBatch', () => this.#send(topicMessages));
        return sent.map(toMetadata);
      },
      sendOffsets: async (request: KafkaSendOffsetsRequest): Promise<void> => {
        this.#assertOpen('sendOffsets');
        const confluent = driver.client === 'confluent';
        if (confluent && (typeof request?.consumer !== 'object' || request.consumer === null)) {
          throw new ConfigError(
            'sendOffsets() with @confluentinc/kafka-javascript needs { consumer, topics }: librdkafka takes the group ' +
              'and its generation from the consumer whose positions these are',
            { backend: 'kafka' },
          );
        }
        const withConsumer = driver.client !== 'kafkajs' && typeof request?.consumer === 'object' && request.consumer !== null;
        // With a consumer, the group comes from it; the shared checks still apply to the offsets.
        validateSendOffsetsRequest(withConsumer ? { ...request, consumerGroupId: request.consumerGroupId || 'from-consumer' } : request, 'kafka');
        const topics = request.topics.map((t) => ({
          topic: t.topic,
          partitions: t.partitions.map((p) => ({ partition: p.partition, offset: String(p.offset) })),
        }));
        const offsets = withConsumer ? { consumer: request.consumer as object, topics } : { consumerGroupId: request.consumerGroupId, topics };
        // kafkajs does not retry AddOffsetsToTxn on CONCURRENT_TRANSACTIONS; the other clients do.
        await this.#call('sendOffsets', () => (driver.client === 'kafkajs' ? sendOffsetsQuickly(native, offsets, slot.lane.config.retry) : native.sendOffsets(offsets)));
      },
    });
  }

  /** Sends and offset commits of the handle still in flight: the core will not commit past them. */
  pendingWork(): number {
    return this.#inflight;
  }

  async commit(): Promise<void> {
    this.#assertOpen('commit');
    try {
      await this.#native.commit();
    } catch (err) {
      const translated = this.#driver.failed(err, 'commit', this.#slot);
      this.#slot.broken = true;
      // A commit of unknown outcome is never called again by the core: the turn ends here,
      // and the next begin rebuilds the producer, which settles the transaction on the coordinator.
      if (classifyKafkaError(translated) === 'commit-unknown') this.#end('ended with an unknown outcome');
      throw translated;
    }
    this.#end('committed');
  }

  async rollback(): Promise<void> {
    if (this.#guard.ended !== undefined) return;
    try {
      if (this.#driver.fenced) return; // The producer that fenced us aborts this transaction.
      if (this.#inflight > 0) this.#slot.broken = true;
      if (this.#slot.broken) {
        await this.#driver.rebuildNow(this.#slot.lane);
      } else {
        await this.#native.abort();
      }
    } catch (err) {
      const translated = this.#driver.failed(err, 'abort', this.#slot);
      // Fenced while aborting: the producer that fenced us has aborted this transaction.
      if (!(translated instanceof FencedError)) throw translated;
    } finally {
      this.#end('rolled back');
    }
  }

  /**
   * With kafkajs, one call per partition (see KafkaPartitionRouter: a call spanning several leader
   * brokers can lose or repeat a partition's records when leadership moves during its retries), or,
   * when it can be checked, one call per leader broker (see #sendByLeader).
   */
  async #send(topicMessages: { topic: string; messages: KafkaOutgoingMessage[] }[]): Promise<KafkaRecordMetadataLike[]> {
    const router = this.#driver.router;
    if (router === undefined) return this.#native.sendBatch({ topicMessages });
    // Bounded: each turn waits for the answer of one send by leader.
    while (this.#byLeader !== undefined) await this.#byLeader.catch(() => undefined);
    this.#assertOpen('send');
    this.#sending += 1;
    try {
      const groups = await router.route(topicMessages);
      const calls = this.#sending === 1 && this.#slot.produced !== undefined ? callsByLeader(groups) : undefined;
      if (calls === undefined) return await this.#sendGroups(groups);
      const sending = this.#sendByLeader(calls, this.#slot.produced as { count: number });
      this.#byLeader = sending;
      try {
        return await sending;
      } finally {
        this.#byLeader = undefined;
      }
    } catch (err) {
      // Partitions may have been added or moved: the next send reads the metadata again.
      for (const { topic } of topicMessages) router.forget(topic);
      throw err;
    } finally {
      this.#sending -= 1;
    }
  }

  /**
   * One kafkajs call per leader broker (of the metadata the router read), each holding the records of
   * that broker's partitions: a transactional kafkajs producer has one request in flight per broker, so
   * this is one produce request where a call per partition makes one after another. Such a call is safe
   * only if kafkajs sent it once, to one broker: a retry of a call that reached several brokers (its
   * metadata newer than the router's) can lose or repeat records (see KafkaPartitionRouter). So the
   * Produce requests answered while the calls ran are counted (no other send of this transaction runs
   * meanwhile) and must be exactly one per call, and each answer must name each partition of its call
   * once. Otherwise, and when a call fails, the transaction is spoiled: its producer is rebuilt (which
   * aborts it on the coordinator), a commit refuses, and the unit reruns (unless the call failed with an
   * error that would fail again, such as a record too large: then that error ends the unit).
   */
  async #sendByLeader(calls: LeaderCall[], produced: { count: number }): Promise<KafkaRecordMetadataLike[]> {
    const before = produced.count;
    const settled = await settleAll(calls.map((call) => this.#native.sendBatch({ topicMessages: call.topicMessages })));
    const answered = produced.count - before;
    if ('failure' in settled) {
      const { failure } = settled;
      const translated = this.#driver.failed(failure, 'sendBatch', this.#slot);
      // A failure that would fail again (a record too large, no authorization) ends the unit with itself; any
      // other may have left a call retried over several brokers: rerun.
      this.#spoil(`a call failed (${String((failure as Error)?.message ?? failure)})`, failure, classifyKafkaError(translated) === 'fatal' ? translated : undefined);
      throw translated;
    }
    const results = settled.values;
    let problem = answered === calls.length ? undefined : `${answered} produce requests were answered for ${calls.length} calls, one per leader broker`;
    for (let i = 0; problem === undefined && i < calls.length; i++) {
      problem = unexpectedAnswer((calls[i] as LeaderCall).partitions, results[i] as KafkaRecordMetadataLike[]);
    }
    if (problem !== undefined) throw this.#spoil(problem, undefined);
    return results.flat();
  }

  /** Marks the transaction spoiled (see #sendByLeader) and returns the error its sends and commit now throw: `fatal`, or KAFKA_SEND_UNVERIFIED. */
  #spoil(problem: string, cause: unknown, fatal?: unknown): unknown {
    this.#slot.broken = true;
    this.#spoiled ??= fatal ?? new TransientTransactionError(
      `a kafka send of transactional.id '${this.#slot.lane.transactionalId}' made one call per leader broker and cannot be ` +
        `proven to have written each record once: ${problem}. The transaction is rolled back (its producer replaced) and the unit reruns`,
      { backend: 'kafka', code: 'KAFKA_SEND_UNVERIFIED', cause },
    );
    return this.#spoiled;
  }

  async #sendGroups(groups: RoutedGroup[]): Promise<KafkaRecordMetadataLike[]> {
    if (groups.length === 1) {
      const { topic, messages } = groups[0] as RoutedGroup;
      return this.#native.send({ topic, messages });
    }
    const settled = await settleAll(groups.map(({ topic, messages }) => this.#native.send({ topic, messages })));
    if ('failure' in settled) throw settled.failure;
    return settled.values.flat();
  }

  async #call<T>(operation: KafkaOperation, fn: () => Promise<T>): Promise<T> {
    this.#inflight += 1;
    try {
      return await fn();
    } catch (err) {
      throw this.#driver.failed(err, operation, this.#slot);
    } finally {
      this.#inflight -= 1;
    }
  }

  #end(how: Ending): void {
    if (this.#guard.ended !== undefined) return;
    this.#guard.ended = how;
    this.#driver.release(this.#slot.lane);
  }

  #assertOpen(method: string): void {
    this.#guard.assertOpen(method);
    if (this.#spoiled !== undefined) throw this.#spoiled;
    if (this.#driver.fenced) {
      throw new FencedError(
        `${method}() is not allowed: the kafka producer (transactional.id '${this.#slot.lane.transactionalId}') was fenced by a newer one`,
        { backend: 'kafka' },
      );
    }
  }
}

/**
 * Waits for every call, failed or not (a rollback must not race a send still in flight): their answers
 * in order, or the first failure.
 */
async function settleAll<T>(calls: readonly Promise<T>[]): Promise<{ values: T[] } | { failure: unknown }> {
  const settled = await Promise.allSettled(calls);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  return failed === undefined ? { values: settled.map((s) => (s as PromiseFulfilledResult<T>).value) } : { failure: failed.reason };
}

/** One kafkajs call of a send by leader: the records of one broker's partitions, and those partitions (`topic\0partition`). */
interface LeaderCall {
  topicMessages: { topic: string; messages: KafkaOutgoingMessage[] }[];
  partitions: Set<string>;
}

/**
 * The calls of a send by leader, or undefined when it makes no sense or cannot be checked: a single
 * partition (already one call), a partition whose leader is unknown, or each partition on its own leader.
 */
function callsByLeader(groups: readonly RoutedGroup[]): LeaderCall[] | undefined {
  if (groups.length < 2) return undefined;
  const calls = new Map<number, LeaderCall>();
  for (const { topic, messages, leader } of groups) {
    if (leader === undefined) return undefined;
    let call = calls.get(leader);
    if (call === undefined) calls.set(leader, (call = { topicMessages: [], partitions: new Set() }));
    call.topicMessages.push({ topic, messages });
    call.partitions.add(`${topic}\0${messages[0]?.partition as number}`);
  }
  return calls.size < groups.length ? [...calls.values()] : undefined;
}

/** Why an answer to a call does not name each of its partitions exactly once; undefined when it does. */
function unexpectedAnswer(partitions: ReadonlySet<string>, answer: readonly KafkaRecordMetadataLike[]): string | undefined {
  const named = new Set<string>();
  for (const { topicName, partition } of answer) {
    const key = `${topicName}\0${partition}`;
    if (!partitions.has(key)) return `the answer names ${topicName}[${partition}], which the call did not send to`;
    if (named.has(key)) return `the answer names ${topicName}[${partition}] twice`;
    named.add(key);
  }
  if (named.size === partitions.size) return undefined;
  const missing = [...partitions].filter((p) => !named.has(p)).map((p) => p.replace('\0', '[') + ']');
  return `the answer does not name ${missing.join(', ')}`;
}

/** A kafkajs producer's answered Produce requests, counted from its `producer.network.request` events; undefined for a producer without them. */
function countProduceRequests(producer: KafkaProducerLike): { count: number } | undefined {
  const { on, events } = producer as { on?: unknown; events?: { REQUEST?: unknown } };
  if (typeof on !== 'function' || typeof events?.REQUEST !== 'string') return undefined;
  const produced = { count: 0 };
  (on as (event: string, listener: (e: { payload?: { apiName?: unknown } }) => void) => unknown).call(producer, events.REQUEST, (e) => {
    if (e.payload?.apiName === 'Produce') produced.count += 1;
  });
  return produced;
}

/**
 * kafkajs sends AddOffsetsToTxn once: right after the previous commit the
 * coordinator may still answer CONCURRENT_TRANSACTIONS, which the Java client
 * retries. Re-sending that one request is a protocol detail, not a rerun of
 * the unit: nothing of it was applied (kafkajs records the offsets only after
 * the request succeeds). It is re-sent as often, and after the same waits, as
 * the producer's `retry` (DEFAULT_KAFKA_PRODUCER_RETRY unless the caller set
 * its own) lets kafkajs retry a send.
 * @internal exported for its tests
 */
export async function sendOffsetsQuickly(
  native: Pick<KafkaNativeTransaction, 'sendOffsets'>,
  offsets: Parameters<KafkaNativeTransaction['sendOffsets']>[0],
  retry: KafkaRetryOptions | undefined,
): Promise<void> {
  const policy: KafkaRetryPolicy = { ...DEFAULT_KAFKA_PRODUCER_RETRY, ...retry };
  for (let attempt = 0; ; attempt++) {
    try {
      await native.sendOffsets(offsets);
      return;
    } catch (err) {
      if (attempt >= policy.retries || (err as { type?: unknown }).type !== 'CONCURRENT_TRANSACTIONS') throw err;
      await wait(retryWait(policy, attempt + 1));
    }
  }
}

function toKafkaMessage(m: SendRequest['messages'][number]): KafkaOutgoingMessage {
  const out: KafkaOutgoingMessage = { value: m.value };
  if (m.key !== undefined) out.key = m.key;
  if (m.headers !== undefined) out.headers = m.headers;
  if (m.partition !== undefined) out.partition = m.partition;
  return out;
}

function toMetadata(r: KafkaRecordMetadataLike): RecordMetadata {
  const out: RecordMetadata = { topicName: r.topicName, partition: r.partition };
  if (r.baseOffset !== undefined) out.baseOffset = r.baseOffset;
  return out;
}

