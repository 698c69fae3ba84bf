import {
  ConfigError,
  FencedError,
  TransactionPropagationError,
  TransactionAbortedError,
  TransactionStateError,
  createTransactionContext,
  validateSendBatchRequest,
  validateSendOffsetsRequest,
  validateSendRequest,
} from '../../core/index.js';
import type {
  ContextOptions,
  DriverBeginInfo,
  DriverTransaction,
  RecordMetadata,
  SendBatchRequest,
  SendOffsetsRequest,
  SendRequest,
  TransactionContext,
  TransactionDriver,
} from '../../core/index.js';
import { backoff, wait } from '../../core/backoff.js';
import { HandleGuard } from '../../core/handle-guard.js';
import type { HandleGuardSpec } from '../../core/handle-guard.js';
import { classifyKafkaError, translateKafkaError } from './kafka-errors.js';
import type { KafkaOperation } from './kafka-errors.js';
import type {
  KafkaLike,
  KafkaNativeTransaction,
  KafkaOutgoingMessage,
  KafkaProducerConfigLike,
  KafkaProducerExtraConfig,
  KafkaProducerLike,
  KafkaRecordMetadataLike,
  KafkaClientFlavor,
  KafkaRetryOptions,
  KafkaSendOffsetsRequest,
  KafkaTxHandle,
} from './kafka-types.js';

/**
 * Retry of the transactional producer's requests inside kafkajs. The first
 * retry comes after 20 ms, as the Java client retries AddPartitionsToTxn on
 * CONCURRENT_TRANSACTIONS (KAFKA-5477): kafkajs' default 300 ms would be paid
 * by nearly every back-to-back transaction (kafkajs issues 304 and 1315).
 * Bounded, so a broker that stays away fails the transaction and the core's
 * retry loop (not kafkajs) decides whether to run the unit again.
 */
export const DEFAULT_KAFKA_PRODUCER_RETRY: Readonly<Required<Omit<KafkaRetryOptions, 'factor'>>> = Object.freeze({
  initialRetryTime: 20,
  multiplier: 2,
  maxRetryTime: 1_000,
  retries: 10,
});

/** sendOffsets' AddOffsetsToTxn is not retried by kafkajs; these are the few quick re-sends txkit makes on CONCURRENT_TRANSACTIONS. */
const ADD_OFFSETS_RETRIES = 10;

/** Options of {@link kafkaTransactions}: the context options plus the producer settings. */
export interface KafkaTransactionsOptions<K extends KafkaLike = KafkaLike> extends ContextOptions {
  /**
   * The client behind `kafka`: kafkajs, or the KafkaJS layer of
   * @confluentinc/kafka-javascript (librdkafka), whose producer settings
   * live in a `kafkaJS` block and whose sendOffsets takes the consumer.
   * @default 'kafkajs'
   */
  client?: KafkaClientFlavor;
  /**
   * The producer's transactional.id: stable per logical producer (e.g. per
   * service instance), so a restarted instance fences its zombie. Required.
   */
  transactionalId: string;
  /**
   * Further kafkajs producer config (e.g. `transactionTimeout`, `retry`).
   * txkit always sets `transactionalId`, `idempotent: true` and
   * `maxInFlightRequests: 1`; `retry` is merged over DEFAULT_KAFKA_PRODUCER_RETRY.
   * @default {}
   */
  producer?: KafkaProducerExtraConfig<K>;
}

/** A Kafka transaction context: one transactional producer, transactions run one at a time. */
export type KafkaTransactionContext = TransactionContext<KafkaTxHandle> & { readonly transactionalId: string };

/** Where a context made by kafkaTransactions keeps its client flavour, for transactionalConsumer. */
const KAFKA_CLIENT: unique symbol = Symbol('txkit.kafka.client');
const ENDED_STATES: ReadonlySet<string> = new Set(['committed', 'aborted', 'failed']);

/**
 * A transaction context on one kafkajs transactional producer. Transactions
 * of this context run one after another (Kafka allows one open transaction
 * per producer): concurrent `withTransaction` calls from separate async flows
 * queue and each gets its turn. The producer is created and connected at the
 * first transaction, and rebuilt after a failed request. There are no
 * savepoints, and a second transaction begun inside a running one of the same
 * context throws TransactionPropagationError. When another producer takes
 * over the transactional.id the context is fenced: FencedError, and it
 * refuses new transactions. `close()` disconnects the producer.
 * @throws ConfigError when `kafka` has no `producer()`, `transactionalId` is
 *   missing or empty, or the producer config contradicts a transactional
 *   producer (`idempotent: false`, `maxInFlightRequests` other than 1).
 * @example
 * ```ts
 * import { kafkaTransactions } from 'txkit/kafka';
 *
 * const kafka = new Kafka({ brokers: ['127.0.0.1:9092'], clientId: 'orders' }); // kafkajs' Kafka
 * const ctx = kafkaTransactions(kafka, { transactionalId: 'orders-service-1' });
 * await ctx.withTransaction(async (tx) => {
 *   await tx.handle.send({ topic: 'orders', messages: [{ key: 'o-1', value: 'created' }] });
 *   await tx.handle.send({ topic: 'audit', messages: [{ value: 'o-1 created' }] });
 * }); // both committed, or neither visible to read_committed consumers
 * await ctx.close();
 * ```
 */
export function kafkaTransactions<K extends KafkaLike>(kafka: K, options: KafkaTransactionsOptions<K>): KafkaTransactionContext {
  if (typeof kafka !== 'object' || kafka === null || typeof (kafka as Partial<KafkaLike>).producer !== 'function') {
    throw new ConfigError('kafkaTransactions(kafka, options) needs a kafkajs Kafka instance (an object with producer())', {
      backend: 'kafka',
    });
  }
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError("kafkaTransactions(kafka, options) needs options with a transactionalId, e.g. { transactionalId: 'orders-1' }", {
      backend: 'kafka',
    });
  }
  const { transactionalId, producer = {}, client = 'kafkajs', ...contextOptions } = options;
  if (client !== 'kafkajs' && client !== 'confluent') {
    throw new ConfigError(`kafkaTransactions: client must be 'kafkajs' or 'confluent', got ${JSON.stringify(client)}`, { backend: 'kafka' });
  }
  if (typeof transactionalId !== 'string' || transactionalId.trim() === '') {
    throw new ConfigError(
      `kafkaTransactions needs a non-empty transactionalId string, got ${JSON.stringify(transactionalId)}; ` +
        'use one stable id per producing instance so a restarted instance fences its predecessor',
      { backend: 'kafka' },
    );
  }
  const config =
    client === 'kafkajs'
      ? producerConfig(transactionalId, producer as KafkaProducerConfigLike)
      : confluentProducerConfig(transactionalId, producer as ConfluentProducerConfig);
  const driver = new KafkaDriver(kafka, transactionalId, config, client);
  return createTransactionContext(driver, contextOptions, { transactionalId, [KAFKA_CLIENT]: client });
}

/** The client flavour of a context made by kafkaTransactions, or undefined for any other value. */
export function kafkaClientOf(ctx: unknown): KafkaClientFlavor | undefined {
  if (typeof ctx !== 'object' || ctx === null || !(KAFKA_CLIENT in ctx)) return undefined;
  const client = ctx[KAFKA_CLIENT];
  return client === 'kafkajs' || client === 'confluent' ? client : undefined;
}

function producerConfig(transactionalId: string, extra: KafkaProducerConfigLike): KafkaProducerConfigLike {
  if (typeof extra !== 'object' || extra === null) {
    throw new ConfigError('kafkaTransactions option `producer` must be an object of kafkajs producer config', { backend: 'kafka' });
  }
  const fixed = extra as KafkaProducerConfigLike & Record<string, unknown>;
  if (fixed.idempotent === false) {
    throw new ConfigError('kafkaTransactions: a transactional producer is idempotent; remove producer.idempotent: false', { backend: 'kafka' });
  }
  if (fixed.maxInFlightRequests !== undefined && fixed.maxInFlightRequests !== 1) {
    throw new ConfigError(
      `kafkaTransactions: kafkajs keeps ordering and sequence numbers of a transactional producer only with maxInFlightRequests: 1, got ${String(fixed.maxInFlightRequests)}`,
      { backend: 'kafka' },
    );
  }
  if (fixed.transactionalId !== undefined && fixed.transactionalId !== transactionalId) {
    throw new ConfigError('kafkaTransactions: set the transactionalId option, not producer.transactionalId', { backend: 'kafka' });
  }
  const { transactionTimeout } = fixed;
  if (transactionTimeout !== undefined && !(Number.isInteger(transactionTimeout) && transactionTimeout > 0)) {
    throw new ConfigError(`kafkaTransactions: producer.transactionTimeout must be a positive integer of ms, got ${String(transactionTimeout)}`, {
      backend: 'kafka',
    });
  }
  const retry: KafkaRetryOptions = { ...DEFAULT_KAFKA_PRODUCER_RETRY, ...(fixed.retry ?? {}) };
  for (const [k, v] of Object.entries(retry)) {
    if (typeof v === 'number' && v >= 0 && Number.isFinite(v)) continue;
    throw new ConfigError(`kafkaTransactions: producer.retry.${k} must be a finite non-negative number, got ${String(v)}`, {
      backend: 'kafka',
    });
  }
  return { ...fixed, transactionalId, idempotent: true, maxInFlightRequests: 1, retry };
}

interface ConfluentProducerConfig {
  kafkaJS?: KafkaProducerConfigLike & Record<string, unknown>;
  [librdkafkaProperty: string]: unknown;
}

/**
 * @confluentinc/kafka-javascript: the KafkaJS-style settings go in the
 * `kafkaJS` block; librdkafka retries the transactional requests itself
 * (including CONCURRENT_TRANSACTIONS), so no retry is set here.
 */
function confluentProducerConfig(transactionalId: string, extra: ConfluentProducerConfig): KafkaProducerConfigLike {
  if (typeof extra !== 'object' || extra === null) {
    throw new ConfigError('kafkaTransactions option `producer` must be an object of producer config', { backend: 'kafka' });
  }
  const block = extra.kafkaJS ?? {};
  if (block.idempotent === false || (block.maxInFlightRequests !== undefined && block.maxInFlightRequests !== 1)) {
    throw new ConfigError('kafkaTransactions: a transactional producer is idempotent with maxInFlightRequests: 1; remove the override', {
      backend: 'kafka',
    });
  }
  return { ...extra, kafkaJS: { ...block, transactionalId, idempotent: true, maxInFlightRequests: 1 } } as KafkaProducerConfigLike;
}

/** One kafkajs producer; replaced ("rebuilt") after any of its requests failed. */
interface ProducerSlot {
  readonly producer: KafkaProducerLike;
  /** Its state may be off (stuck EndTxn, sequence numbers after a failed send): the next transaction uses a new producer. */
  broken: boolean;
  /** This context has put a new producer in its place (whose InitProducerId fences this one). */
  replaced?: boolean;
}

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * The Kafka TransactionDriver. It serializes transactions on its one
 * producer, rebuilds the producer after a failed request (InitProducerId on
 * the new producer bumps the epoch and lets the coordinator finish or abort
 * whatever the old one left open, as Java's epoch bump of KIP-360 does), and
 * turns kafkajs errors into txkit errors.
 */
export class KafkaDriver implements TransactionDriver<KafkaTxHandle> {
  readonly backend = 'kafka' as const;
  /** Kafka transactions take only the core's options (timeoutMs, signal): any other key is a mistake. */
  readonly optionKeys: readonly string[] = [];
  readonly transactionalId: string;
  readonly client: KafkaClientFlavor;
  readonly #kafka: KafkaLike;
  readonly #config: KafkaProducerConfigLike;
  #slot: ProducerSlot | undefined;
  #building: Promise<ProducerSlot> | undefined;
  #held = false;
  readonly #waiters: Waiter[] = [];
  #fenced: FencedError | undefined;
  #closed = false;

  constructor(kafka: KafkaLike, transactionalId: string, config: KafkaProducerConfigLike, client: KafkaClientFlavor) {
    this.#kafka = kafka;
    this.client = client;
    this.transactionalId = transactionalId;
    this.#config = config;
  }

  classify = classifyKafkaError;

  async begin(_options: object, signal: AbortSignal, info: DriverBeginInfo<KafkaTxHandle>): Promise<DriverTransaction<KafkaTxHandle>> {
    const { ambient } = info;
    if (ambient !== undefined && !ENDED_STATES.has(ambient.state)) {
      // Waiting for the producer would wait for the very transaction this flow is running in.
      throw new TransactionPropagationError(
        `a second kafka transaction cannot begin inside transaction ${ambient.id}: one transactional producer ` +
          `(transactional.id '${this.transactionalId}') runs one transaction at a time. Use propagation 'required' ` +
          "to join it, or a second kafkaTransactions context with its own transactionalId for an independent one",
        { backend: 'kafka' },
      );
    }
    this.#assertUsable();
    await this.#acquire(signal);
    let slot: ProducerSlot | undefined;
    try {
      this.#assertUsable();
      slot = await this.#ready();
      const native = await slot.producer.transaction();
      return new KafkaTransaction(this, slot, native);
    } catch (err) {
      this.release();
      throw this.failed(err, 'begin', slot);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const closed = new TransactionStateError('the kafka transaction context was closed while this begin waited for the producer', {
      backend: 'kafka',
      code: 'CONTEXT_CLOSED',
    });
    for (const w of this.#waiters.splice(0)) w.reject(closed);
    const slot = this.#slot ?? (await this.#building?.catch(() => undefined));
    this.#slot = undefined;
    await slot?.producer.disconnect().catch(() => undefined);
  }

  /** @internal a failed request: mark the producer for rebuild (or the context fenced) and translate the error. */
  failed(err: unknown, operation: KafkaOperation, slot: ProducerSlot | undefined): unknown {
    const translated = translateKafkaError(err, operation, this.transactionalId);
    // A producer this context replaced: a request of it still in flight (a send the callback did not
    // await) meets the new producer's epoch, which fences the old producer, not this context.
    if (translated instanceof FencedError) {
      if (slot?.replaced !== true) this.#fenced ??= translated;
    }
    // translateKafkaError returns a new error exactly for kafkajs errors: the producer failed a request.
    else if (slot !== undefined && translated !== err) slot.broken = true;
    return translated;
  }

  get fenced(): boolean {
    return this.#fenced !== undefined;
  }

  /** @internal ends the turn of the transaction holding the producer. */
  release(): void {
    const next = this.#waiters.shift();
    if (next !== undefined) next.resolve();
    else this.#held = false;
  }

  /**
   * @internal replaces a broken producer now: InitProducerId on the new one
   * makes the coordinator abort (or finish committing) what the old one left
   * open, so read_committed consumers are not held up until transactionTimeout.
   */
  async rebuildNow(): Promise<void> {
    const slot = await this.#ready();
    const tx = await slot.producer.transaction();
    await tx.abort();
  }

  #assertUsable(): void {
    if (this.#fenced !== undefined) {
      throw new FencedError(
        `this kafka context (transactional.id '${this.transactionalId}') was fenced and refuses new transactions: ` +
          `${this.#fenced.message}`,
        { backend: 'kafka', cause: this.#fenced.cause },
      );
    }
    if (this.#closed) {
      throw new TransactionStateError('the kafka transaction context is closed', { backend: 'kafka', code: 'CONTEXT_CLOSED' });
    }
  }

  /** First in, first served; a caller's signal takes it out of the queue. */
  #acquire(signal: AbortSignal): Promise<void> {
    if (!this.#held) {
      this.#held = true;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
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
          new TransactionAbortedError("the kafka transaction was cancelled by the caller's AbortSignal while begin waited for the producer", {
            backend: 'kafka',
            cause: signal.reason,
          }),
        );
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** The current producer, or a new connected one in place of a broken one. */
  async #ready(): Promise<ProducerSlot> {
    const current = this.#slot;
    if (current !== undefined && !current.broken) return current;
    this.#building ??= (async () => {
      this.#slot = undefined;
      if (current !== undefined) {
        current.replaced = true;
        await current.producer.disconnect().catch(() => undefined);
      }
      let producer: KafkaProducerLike;
      try {
        producer = this.#kafka.producer({ ...this.#config });
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
      const slot: ProducerSlot = { producer, broken: false };
      if (this.#closed) {
        await producer.disconnect().catch(() => undefined);
        throw new TransactionStateError('the kafka transaction context was closed', { backend: 'kafka', code: 'CONTEXT_CLOSED' });
      }
      this.#slot = slot;
      return slot;
    })().finally(() => {
      this.#building = undefined;
    });
    return this.#building;
  }
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

  constructor(driver: KafkaDriver, slot: ProducerSlot, native: KafkaNativeTransaction) {
    this.#driver = driver;
    this.#slot = slot;
    this.#native = native;
    this.handle = Object.freeze({
      transactionalId: driver.transactionalId,
      send: async (request: SendRequest): Promise<RecordMetadata[]> => {
        this.#assertOpen('send');
        validateSendRequest(request, 'kafka');
        const sent = await this.#call('send', () => native.send({ topic: request.topic, messages: request.messages.map(toKafkaMessage) }));
        return sent.map(toMetadata);
      },
      sendBatch: async (request: SendBatchRequest): Promise<RecordMetadata[]> => {
        this.#assertOpen('sendBatch');
        validateSendBatchRequest(request, 'kafka');
        const topicMessages = request.topicMessages.map((r) => ({ topic: r.topic, messages: r.messages.map(toKafkaMessage) }));
        const sent = await this.#call('sendBatch', () => native.sendBatch({ topicMessages }));
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
        // With a consumer, the group comes from it; the shared checks still apply to the offsets.
        validateSendOffsetsRequest(confluent ? { ...request, consumerGroupId: request.consumerGroupId || 'from-consumer' } : request, 'kafka');
        const topics = request.topics.map((t) => ({
          topic: t.topic,
          partitions: t.partitions.map((p) => ({ partition: p.partition, offset: String(p.offset) })),
        }));
        if (confluent) {
          await this.#call('sendOffsets', () => native.sendOffsets({ consumer: request.consumer as object, topics }));
        } else {
          await this.#call('sendOffsets', () => sendOffsetsQuickly(native, { consumerGroupId: request.consumerGroupId, topics }));
        }
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
        await this.#driver.rebuildNow();
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
    this.#driver.release();
  }

  #assertOpen(method: string): void {
    this.#guard.assertOpen(method);
    if (this.#driver.fenced) {
      throw new FencedError(
        `${method}() is not allowed: the kafka producer (transactional.id '${this.#driver.transactionalId}') was fenced by a newer one`,
        { backend: 'kafka' },
      );
    }
  }
}

/**
 * kafkajs sends AddOffsetsToTxn once: right after the previous commit the
 * coordinator may still answer CONCURRENT_TRANSACTIONS, which the Java client
 * retries. Re-sending that one request is a protocol detail, not a rerun of
 * the unit: nothing of it was applied (kafkajs records the offsets only after
 * the request succeeds).
 */
async function sendOffsetsQuickly(native: KafkaNativeTransaction, offsets: SendOffsetsRequest): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await native.sendOffsets(offsets);
      return;
    } catch (err) {
      if (attempt >= ADD_OFFSETS_RETRIES || (err as { type?: unknown }).type !== 'CONCURRENT_TRANSACTIONS') throw err;
      const { initialRetryTime, multiplier, maxRetryTime } = DEFAULT_KAFKA_PRODUCER_RETRY;
      await wait(backoff({ initialMs: initialRetryTime, maxMs: maxRetryTime, multiplier, jitter: 'none' }, attempt + 1));
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

