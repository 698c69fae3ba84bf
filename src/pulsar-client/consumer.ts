/**
 * Consumers: SUBSCRIBE, FLOW (permits), MESSAGE, individual ACK with receipts, and
 * REDELIVER_UNACKNOWLEDGED_MESSAGES. A partitioned topic gets one partition consumer
 * per partition feeding one receive queue. On a lost connection a partition consumer
 * resubscribes with back-off; what it had prefetched but not handed out is dropped,
 * since the broker redelivers everything unacknowledged.
 */
import { inflateSync } from 'node:zlib';
import { PulsarConfigError } from './errors.js';
import {
  PulsarChecksumError,
  PulsarClosedError,
  PulsarConnectionError,
  PulsarProtocolError,
  PulsarTimeoutError,
  PulsarUnsupportedError,
} from './errors.js';
import { Backoff, delay, isPermanent, reconnectUntil } from './backoff.js';
import type { ClientServices } from './client-services.js';
import {
  CommandType,
  CompressionType,
  InitialPosition,
  SingleMessageMetadataCodec,
  SubType,
  fromBigInt,
  has,
  toBigInt,
  toNumber,
} from './wire/commands.js';
import type { KeyValue, LastMessageIdResponseBody, MessageBody, MessageMetadata, SingleMessageMetadata, U64 } from './wire/commands.js';
import type { ConsumerListener, PulsarConnection } from './wire/connection.js';
import { encodeCommand, encodeFlow } from './wire/frames.js';
import type { Frame } from './wire/frames.js';
import { PulsarMessageId } from './message-id.js';
import { fullTopicName, partitionTopicName } from './topic-name.js';
import type { TxnId } from './transaction-coordinator.js';

/** Pulsar's subscription types: one consumer, round robin, one active consumer with failover, or by key. */
export type SubscriptionType = 'Exclusive' | 'Shared' | 'Failover' | 'Key_Shared';

/** Options of {@link PulsarClient.subscribe}. */
export interface ConsumerOptions {
  /** Topic name (`name`, `tenant/ns/name` or `persistent://tenant/ns/name`); partitioned or not. */
  topic: string;
  /** Subscription name; created on first use. */
  subscription: string;
  /** How the subscription shares messages among its consumers. @default 'Exclusive' (as the Java client) */
  subscriptionType?: SubscriptionType;
  /** Where a new subscription starts reading. @default 'latest' */
  initialPosition?: 'latest' | 'earliest';
  /** Messages prefetched per partition. @default 1_000 */
  receiverQueueSize?: number;
  /** Consumer name, shown in the broker's stats. @default a name the broker generates */
  consumerName?: string;
  /**
   * false: a non-durable subscription (a reader). The broker keeps no position for it,
   * acknowledgements are not needed, and it reads from `startMessageId` (or
   * `initialPosition`) each time it (re)subscribes, so after a reconnect it delivers
   * again from there: drop what was already seen by message id.
   * @default true
   */
  durable?: boolean;
  /**
   * Where a non-durable subscription starts reading: the entry of this id and what
   * follows (earlier messages of a batched entry included; filter by id). A
   * PulsarMessageId, or the ledger and entry of one. Only with `durable: false` and a
   * non-partitioned topic or one partition's topic.
   * @default initialPosition
   */
  startMessageId?: PulsarMessageId | { readonly ledgerId: bigint; readonly entryId: bigint };
}

/** A received message. */
export interface PulsarMessage {
  /** The topic it was read from (for a partitioned topic, the partition's topic). */
  readonly topic: string;
  readonly messageId: PulsarMessageId;
  /** The partition key: a string, or a Buffer for a binary key. */
  readonly key: string | Buffer | null;
  readonly value: Buffer | null;
  readonly properties: Readonly<Record<string, string>>;
  /** Epoch milliseconds when the broker received it. */
  readonly publishTime: number;
  /** Application event time (epoch milliseconds), when the producer set one. */
  readonly eventTime: number | undefined;
  readonly producerName: string;
  readonly sequenceId: bigint;
  /** How many times the broker delivered it before. */
  readonly redeliveryCount: number;
}

/** Options of {@link PulsarConsumer.receive}. */
export interface ReceiveOptions {
  /** Stops waiting (rejects with the signal's reason). @default none */
  signal?: AbortSignal;
  /** Rejects with PulsarTimeoutError when no message arrives in time. @default no limit */
  timeoutMs?: number;
}

type QueueItem = { message: PulsarMessage; from: PartitionConsumer } | { error: Error; from: PartitionConsumer };

interface Waiter {
  resolve(message: PulsarMessage): void;
  reject(err: unknown): void;
}

interface ResolvedConsumerOptions {
  subscription: string;
  subscriptionType: SubscriptionType;
  initialPosition: 'latest' | 'earliest';
  receiverQueueSize: number;
  consumerName: string | undefined;
  durable: boolean;
  startMessageId: { readonly ledgerId: bigint; readonly entryId: bigint; readonly batchIndex: number } | undefined;
}

/**
 * A consumer of one subscription (for a partitioned topic, one partition consumer
 * per partition feeding one queue), made by {@link PulsarClient.subscribe}. Read with
 * {@link PulsarConsumer.receive} or `for await`; acknowledge outside a transaction
 * with {@link PulsarConsumer.acknowledge}, inside one with the transaction handle's
 * `acknowledge(consumer, message)`.
 */
export class PulsarConsumer {
  /** The full topic name. */
  readonly topic: string;
  readonly subscription: string;
  readonly subscriptionType: SubscriptionType;
  readonly #partitions = new Map<string, PartitionConsumer>();
  #queue: QueueItem[] = [];
  #waiters: Waiter[] = [];
  readonly #closeListeners = new Set<() => void>();
  #closing: Promise<void> | undefined;

  private constructor(topic: string, options: ResolvedConsumerOptions) {
    this.topic = topic;
    this.subscription = options.subscription;
    this.subscriptionType = options.subscriptionType;
  }

  /** @internal use PulsarClient.subscribe */
  static async subscribe(client: ClientServices, options: ConsumerOptions): Promise<PulsarConsumer> {
    if (typeof options !== 'object' || options === null) {
      throw new PulsarConfigError('subscribe() needs options with a topic and a subscription');
    }
    const topic = fullTopicName(options.topic);
    const resolved = resolveConsumerOptions(options);
    const consumer = new PulsarConsumer(topic, resolved);
    const count = await client.partitions(topic);
    if (count > 0 && resolved.startMessageId !== undefined) {
      throw new PulsarConfigError(`startMessageId needs one partition's topic: ${topic} has ${count} partitions (subscribe to ${partitionTopicName(topic, 0)}, ...)`);
    }
    const topics = count === 0 ? [topic] : Array.from({ length: count }, (_, i) => partitionTopicName(topic, i));
    topics.forEach((t, i) => {
      consumer.#partitions.set(t, new PartitionConsumer(client, consumer, t, count === 0 ? -1 : i, resolved));
    });
    const started = await Promise.allSettled([...consumer.#partitions.values()].map((p) => p.start()));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed !== undefined) {
      await consumer.close();
      throw failed.reason;
    }
    return consumer;
  }

  /** The next message; waits for one. Rejects with a typed error for a message that cannot be read. */
  receive(options: ReceiveOptions = {}): Promise<PulsarMessage> {
    if (this.#closing !== undefined) return Promise.reject(new PulsarClosedError(`consumer of ${this.topic}`));
    const item = this.#queue.shift();
    if (item !== undefined) return this.#handOut(item);
    const { signal, timeoutMs } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<PulsarMessage>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const cleanup = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
      };
      const waiter: Waiter = {
        resolve: (m) => {
          cleanup();
          resolve(m);
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
      };
      const onAbort = (): void => waiter.reject(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            waiter.reject(
              new PulsarTimeoutError(`receive on ${this.topic}`, timeoutMs, `no Pulsar message arrived on ${this.topic} within ${timeoutMs} ms`),
            ),
          timeoutMs,
        );
      }
      this.#waiters.push(waiter);
    });
  }

  /** Messages until the consumer closes. */
  async *[Symbol.asyncIterator](): AsyncGenerator<PulsarMessage, void, undefined> {
    // Ends when the consumer closes (receive rejects with PulsarClosedError).
    for (;;) {
      try {
        yield await this.receive();
      } catch (err) {
        if (err instanceof PulsarClosedError) return;
        throw err;
      }
    }
  }

  /**
   * Acknowledges messages outside any transaction; resolves once the broker confirmed.
   * (Inside a transaction use the transaction handle's acknowledge.)
   */
  async acknowledge(target: AckTarget): Promise<void> {
    const ids = messageIdsOf(target);
    const byPartition = new Map<PartitionConsumer, PulsarMessageId[]>();
    for (const id of ids) {
      const p = this.partitionOf(id);
      byPartition.set(p, [...(byPartition.get(p) ?? []), id]);
    }
    await Promise.all([...byPartition].map(([p, list]) => p.acknowledge(list, undefined)));
  }

  /**
   * The last message of each partition a consumer could be given now (GET_LAST_MESSAGE_ID:
   * committed, not aborted, no markers); partitions with none are left out. Reading up
   * to these ids reads everything visible at the time of the call.
   */
  async getLastMessageIds(): Promise<PulsarMessageId[]> {
    const ids = await Promise.all([...this.#partitions.values()].map((p) => p.lastMessageId()));
    return ids.filter((id): id is PulsarMessageId => id !== undefined);
  }

  /** Asks the broker to deliver again every message handed out and not acknowledged. */
  async redeliverUnacknowledged(): Promise<void> {
    for (const p of this.#partitions.values()) p.redeliverAll();
  }

  /** Calls `fn` once the consumer has closed (its client uses this to forget it). */
  onClose(fn: () => void): void {
    this.#closeListeners.add(fn);
  }

  /** Closes every partition consumer; waiting receives reject with PulsarClosedError. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const err = new PulsarClosedError(`consumer of ${this.topic}`);
      for (const w of [...this.#waiters]) w.reject(err);
      this.#queue = [];
      await Promise.allSettled([...this.#partitions.values()].map((p) => p.close()));
      for (const fn of this.#closeListeners) fn();
    })();
    return this.#closing;
  }

  /** The partition consumer a message id came from. @internal */
  partitionOf(id: PulsarMessageId): PartitionConsumer {
    if (!(id instanceof PulsarMessageId)) {
      throw new PulsarConfigError(`acknowledge() needs PulsarMessageId values (message.messageId), got ${String(id)}`);
    }
    const p = this.#partitions.get(id.topic);
    if (p === undefined) {
      throw new PulsarConfigError(`message ${id.toString()} of ${id.topic} was not received by this consumer of ${this.topic}`);
    }
    return p;
  }

  /** @internal */
  enqueue(items: QueueItem[]): void {
    for (const item of items) {
      const waiter = this.#waiters.shift();
      if (waiter === undefined) this.#queue.push(item);
      else if ('message' in item) {
        item.from.consumed(1);
        waiter.resolve(item.message);
      } else {
        item.from.consumed(1);
        waiter.reject(item.error);
      }
    }
  }

  /** Drops what `from` prefetched and nobody took (the broker sends it again); returns how many. @internal */
  dropQueued(from: PartitionConsumer): number {
    const before = this.#queue.length;
    this.#queue = this.#queue.filter((item) => item.from !== from);
    return before - this.#queue.length;
  }

  #handOut(item: QueueItem): Promise<PulsarMessage> {
    item.from.consumed(1);
    return 'message' in item ? Promise.resolve(item.message) : Promise.reject(item.error);
  }
}

/** What acknowledge() takes: a received message, its id, or a non-empty list of them. */
export type AckTarget = PulsarMessageId | PulsarMessage | readonly (PulsarMessageId | PulsarMessage)[];

/** The message ids of an acknowledge() argument. @internal */
export function messageIdsOf(target: AckTarget): PulsarMessageId[] {
  const list = Array.isArray(target) ? target : [target];
  if (list.length === 0) throw new PulsarConfigError('acknowledge() needs at least one message id');
  return list.map((t: PulsarMessageId | PulsarMessage) => (t instanceof PulsarMessageId ? t : (t as PulsarMessage | undefined)?.messageId) as PulsarMessageId);
}

function resolveConsumerOptions(options: ConsumerOptions): ResolvedConsumerOptions {
  const fail = (message: string): never => {
    throw new PulsarConfigError(message);
  };
  if (typeof options.subscription !== 'string' || options.subscription === '') fail('subscribe() needs a non-empty subscription name');
  const subscriptionType = options.subscriptionType ?? 'Exclusive';
  if (!(subscriptionType in SubType)) fail(`subscriptionType must be one of ${Object.keys(SubType).join(', ')}, got ${String(subscriptionType)}`);
  const initialPosition = options.initialPosition ?? 'latest';
  if (initialPosition !== 'latest' && initialPosition !== 'earliest') fail(`initialPosition must be 'latest' or 'earliest', got ${String(initialPosition)}`);
  const receiverQueueSize = options.receiverQueueSize ?? 1_000;
  if (!Number.isInteger(receiverQueueSize) || receiverQueueSize < 1) fail(`receiverQueueSize must be a positive integer, got ${String(receiverQueueSize)}`);
  if (options.consumerName !== undefined && (typeof options.consumerName !== 'string' || options.consumerName === '')) {
    fail('consumerName must be a non-empty string');
  }
  const durable = options.durable ?? true;
  if (typeof durable !== 'boolean') fail(`durable must be a boolean, got ${String(durable)}`);
  const given = options.startMessageId;
  let startMessageId: ResolvedConsumerOptions['startMessageId'];
  if (given !== undefined) {
    if (typeof given !== 'object' || given === null || typeof given.ledgerId !== 'bigint' || typeof given.entryId !== 'bigint' || given.ledgerId < 0n || given.entryId < 0n) {
      fail('startMessageId must be a PulsarMessageId (message.messageId or PulsarMessageId.parse) or { ledgerId, entryId } as non-negative bigints');
    }
    if (durable) fail('startMessageId needs durable: false: a durable subscription resumes from its own stored position');
    startMessageId = { ledgerId: given.ledgerId, entryId: given.entryId, batchIndex: given instanceof PulsarMessageId ? given.batchIndex : -1 };
  }
  return {
    subscription: options.subscription,
    subscriptionType,
    initialPosition,
    receiverQueueSize,
    consumerName: options.consumerName,
    durable,
    startMessageId,
  };
}

type ConsumerState = 'connecting' | 'ready' | 'closed';

/** The consumer of one (partition) topic. @internal */
export class PartitionConsumer implements ConsumerListener {
  readonly topic: string;
  readonly partition: number;
  readonly #client: ClientServices;
  readonly #parent: PulsarConsumer;
  readonly #options: ResolvedConsumerOptions;
  readonly #consumerId: number;
  #state: ConsumerState = 'connecting';
  #failure: Error | undefined;
  #connection: PulsarConnection | undefined;
  #connected = false;
  #reconnecting = false;
  /**
   * Raised by every redeliver-all on an Exclusive or Failover subscription; the broker
   * tags what it sends with it, so messages read before the redelivery can be dropped.
   */
  #epoch = 0;
  /**
   * Permits owed to the broker and not sent yet. The broker takes one permit per message
   * it sends (each message of a batch, but for those its ack set marks as acknowledged);
   * each comes back here once the message is handed out or dropped, so the broker's
   * permits, the messages on their way and in the queue, and these always add up to
   * receiverQueueSize.
   */
  #consumedSinceFlow = 0;
  /** Acknowledged indexes of batched entries, until the whole entry is acknowledged (outside transactions). */
  readonly #batchAcks = new Map<string, Set<number>>();

  constructor(client: ClientServices, parent: PulsarConsumer, topic: string, partition: number, options: ResolvedConsumerOptions) {
    this.#client = client;
    this.#parent = parent;
    this.topic = topic;
    this.partition = partition;
    this.#options = options;
    this.#consumerId = client.newConsumerId();
  }

  get subscription(): string {
    return this.#options.subscription;
  }

  get subscriptionType(): SubscriptionType {
    return this.#options.subscriptionType;
  }

  async start(): Promise<void> {
    const deadline = Date.now() + this.#client.options.operationTimeoutMs;
    const backoff = this.#backoff();
    // Bounded by the deadline and by client close.
    for (;;) {
      try {
        await this.#subscribe();
        return;
      } catch (err) {
        if (isPermanent(err) || Date.now() >= deadline || this.#client.closed || this.#state === 'closed') throw err;
      }
      const wait = Math.min(backoff.next(), Math.max(0, deadline - Date.now()));
      if (!(await delay(wait, this.#client.closeSignal))) throw new PulsarClosedError('client');
    }
  }

  /** Credits `n` handed-out messages; returns permits to the broker in chunks of half the queue. */
  consumed(n: number): void {
    this.#consumedSinceFlow += n;
    if (this.#consumedSinceFlow >= Math.max(1, this.#options.receiverQueueSize >> 1)) this.#flow();
  }

  /** Individual acknowledgement, in `txn` when given; resolves on the broker's ACK_RESPONSE. */
  async acknowledge(ids: readonly PulsarMessageId[], txn: TxnId | undefined): Promise<void> {
    const connection = this.#readyConnection('acknowledge');
    const entries: Record<string, unknown>[] = [];
    for (const id of ids) {
      if (id.batchIndex < 0 || id.batchSize <= 0) {
        entries.push(id.entryProto());
      } else if (txn !== undefined) {
        // Batch index acknowledgement: ack_set keeps the bits of the messages still unacknowledged.
        entries.push({ ...id.entryProto(), ackSet: ackSetWithout(id.batchSize, id.batchIndex), batchSize: id.batchSize });
      } else {
        // Outside a transaction the entry is acknowledged once all its messages are.
        const key = `${id.ledgerId}:${id.entryId}`;
        const acked = this.#batchAcks.get(key) ?? new Set<number>();
        acked.add(id.batchIndex);
        this.#batchAcks.set(key, acked);
        if (acked.size < id.batchSize) continue;
        this.#batchAcks.delete(key);
        entries.push(id.entryProto());
      }
    }
    if (entries.length === 0) return;
    const body: Record<string, unknown> = { consumerId: this.#consumerId, ackType: 0, messageId: entries };
    if (txn !== undefined) {
      body.txnidMostBits = fromBigInt(txn.most);
      body.txnidLeastBits = fromBigInt(txn.least);
    }
    await connection.request(CommandType.ACK, body);
  }

  async lastMessageId(): Promise<PulsarMessageId | undefined> {
    const connection = this.#readyConnection('get the last message id');
    const response = await connection.request<LastMessageIdResponseBody>(CommandType.GET_LAST_MESSAGE_ID, { consumerId: this.#consumerId });
    const id = response.lastMessageId;
    const entryId = BigInt.asIntN(64, toBigInt(id.entryId));
    const ledgerId = BigInt.asIntN(64, toBigInt(id.ledgerId));
    // (ledger, -1): nothing in the topic a consumer could be given.
    if (entryId < 0n || ledgerId < 0n) return undefined;
    return new PulsarMessageId(this.topic, ledgerId, entryId, this.partition);
  }

  /** Redelivery of everything handed out and unacknowledged; prefetched messages are dropped. */
  redeliverAll(): void {
    const connection = this.#connection;
    if (connection === undefined || this.#state !== 'ready') return; // Resubscribing redelivers anyway.
    if (this.#singleActive) this.#epoch += 1;
    const dropped = this.#parent.dropQueued(this);
    try {
      connection.write(
        encodeCommand(CommandType.REDELIVER_UNACKNOWLEDGED_MESSAGES, { consumerId: this.#consumerId, consumerEpoch: this.#epoch }),
      );
    } catch {
      return; // The connection ended: resubscribing redelivers and grants fresh permits.
    }
    // The broker keeps its permit count across a redelivery: only the dropped messages are
    // owed back now; those still on their way come back as they arrive (stale, dropped).
    this.consumed(dropped);
  }

  /** Exclusive and Failover: one consumer reads the subscription, and redelivery rewinds it. */
  get #singleActive(): boolean {
    return this.#options.subscriptionType === 'Exclusive' || this.#options.subscriptionType === 'Failover';
  }

  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection !== undefined && !connection.ended) {
      connection.unregisterConsumer(this.#consumerId, this);
      try {
        await connection.request(CommandType.CLOSE_CONSUMER, { consumerId: this.#consumerId }, { timeoutMs: 5_000 });
      } catch {
        // Best effort: the broker drops the consumer with the connection anyway.
      }
    }
  }

  // ConsumerListener ---------------------------------------------------------

  onMessage(body: MessageBody, frame: Frame): void {
    if (this.#state !== 'ready') return;
    // Sent before our last redeliver-all: the broker sends it again, in order. It took a
    // permit for each message of the entry it still owed, so that many come back.
    if (this.#singleActive && has(body, 'consumerEpoch') && toNumber(body.consumerEpoch) < this.#epoch) {
      this.consumed(permitsOf(body, frame.metadata));
      return;
    }
    const items = this.#decode(body, frame);
    if (items.length === 0) return;
    this.#parent.enqueue(items);
  }

  onDisconnect(_reason: Error): void {
    if (this.#state === 'closed') return;
    this.#state = 'connecting';
    this.#connection = undefined;
    this.#parent.dropQueued(this);
    this.#batchAcks.clear();
    if (this.#connected) void this.#reconnect();
  }

  // -------------------------------------------------------------------------

  async #subscribe(): Promise<void> {
    const { brokerUrl, proxyThroughServiceUrl } = await this.#client.lookup(this.topic);
    const connection = await this.#client.connection(brokerUrl, proxyThroughServiceUrl);
    connection.registerConsumer(this.#consumerId, this);
    const body: Record<string, unknown> = {
      topic: this.topic,
      subscription: this.#options.subscription,
      subType: SubType[this.#options.subscriptionType],
      consumerId: this.#consumerId,
      durable: this.#options.durable,
      initialPosition: this.#options.initialPosition === 'earliest' ? InitialPosition.Earliest : InitialPosition.Latest,
      forceTopicCreation: true,
      consumerEpoch: this.#epoch,
    };
    if (this.#options.consumerName !== undefined) body.consumerName = this.#options.consumerName;
    const start = this.#options.startMessageId;
    if (start !== undefined) {
      body.startMessageId = { ledgerId: fromBigInt(start.ledgerId), entryId: fromBigInt(start.entryId), partition: this.partition, batchIndex: start.batchIndex };
    }
    try {
      await connection.request(CommandType.SUBSCRIBE, body);
    } catch (err) {
      connection.unregisterConsumer(this.#consumerId, this);
      throw err;
    }
    if (this.#state === 'closed') {
      void connection.request(CommandType.CLOSE_CONSUMER, { consumerId: this.#consumerId }).catch(() => undefined);
      throw new PulsarClosedError(`consumer of ${this.topic}`);
    }
    if (connection.ended) throw new PulsarConnectionError(`the connection to ${connection.remote} closed while subscribing`);
    this.#connection = connection;
    this.#state = 'ready';
    this.#connected = true;
    this.#consumedSinceFlow = 0;
    connection.write(encodeFlow(this.#consumerId, this.#options.receiverQueueSize));
  }

  async #reconnect(): Promise<void> {
    if (this.#reconnecting) return;
    this.#reconnecting = true;
    try {
      await reconnectUntil({
        backoff: this.#backoff(),
        active: () => this.#state === 'connecting' && !this.#client.closed,
        signal: this.#client.closeSignal,
        attempt: () => this.#subscribe(),
        onPermanent: (err) => {
          this.#failure = err;
          this.#parent.enqueue([{ error: err, from: this }]);
        },
      });
    } finally {
      this.#reconnecting = false;
    }
  }

  #flow(): void {
    const permits = this.#consumedSinceFlow;
    if (permits <= 0 || this.#connection === undefined || this.#state !== 'ready') return;
    this.#consumedSinceFlow = 0;
    try {
      this.#connection.write(encodeFlow(this.#consumerId, permits));
    } catch {
      // The connection ended: resubscribing grants fresh permits.
    }
  }

  #readyConnection(what: string): PulsarConnection {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#state === 'closed') throw new PulsarClosedError(`consumer of ${this.topic}`);
    if (this.#connection === undefined || this.#state !== 'ready') {
      throw new PulsarConnectionError(`cannot ${what} on ${this.topic}: its consumer is reconnecting; the broker redelivers the message`);
    }
    return this.#connection;
  }

  /** One MESSAGE frame -> the messages (or typed errors) it holds. */
  #decode(body: MessageBody, frame: Frame): QueueItem[] {
    const idData = body.messageId;
    const ledgerId = toBigInt(idData.ledgerId);
    const entryId = toBigInt(idData.entryId);
    const entryId0 = new PulsarMessageId(this.topic, ledgerId, entryId, this.partition);
    const metadata = frame.metadata as MessageMetadata;
    // The permits the broker took for this entry: its messages less those already acknowledged.
    const permits = permitsOf(body, metadata);
    const fail = (error: Error): QueueItem[] => {
      // One queue slot (and permit) for the error; the others of a broken batch come back now.
      if (permits > 1) this.consumed(permits - 1);
      return [{ error, from: this }];
    };
    const batchSize = has(metadata, 'numMessagesInBatch') ? (metadata.numMessagesInBatch ?? 1) : 0;
    if (frame.checksumMismatch) {
      return fail(new PulsarChecksumError(`message ${entryId0.toString()} on ${this.topic} failed its CRC32C check`, entryId0.toString()));
    }
    if (has(metadata, 'markerType')) {
      this.consumed(permits); // Broker-internal marker, not an application message.
      return [];
    }
    if ((metadata.encryptionKeys?.length ?? 0) > 0) {
      return fail(new PulsarUnsupportedError(`message ${entryId0.toString()} on ${this.topic} is encrypted, which txkit cannot decrypt`, entryId0.toString()));
    }
    if ((metadata.numChunksFromMsg ?? 1) > 1) {
      return fail(new PulsarUnsupportedError(`message ${entryId0.toString()} on ${this.topic} is chunked, which txkit cannot reassemble`, entryId0.toString()));
    }
    let payload = frame.payload as Buffer;
    const compression = metadata.compression ?? CompressionType.NONE;
    if (compression === CompressionType.ZLIB) {
      try {
        payload = inflateSync(payload);
      } catch (err) {
        return fail(new PulsarProtocolError(`message ${entryId0.toString()} on ${this.topic} does not inflate: ${String(err)}`, { messageId: entryId0.toString(), cause: err }));
      }
    } else if (compression !== CompressionType.NONE) {
      const name = Object.keys(CompressionType).find((k) => CompressionType[k as keyof typeof CompressionType] === compression) ?? String(compression);
      return fail(
        new PulsarUnsupportedError(`message ${entryId0.toString()} on ${this.topic} is ${name}-compressed; txkit reads uncompressed and ZLIB entries only`, entryId0.toString()),
      );
    }
    const common = {
      topic: this.topic,
      publishTime: toNumber(metadata.publishTime),
      producerName: metadata.producerName,
      redeliveryCount: body.redeliveryCount ?? 0,
    };
    if (batchSize === 0) {
      return [
        {
          from: this,
          message: Object.freeze({
            ...common,
            messageId: entryId0,
            key: keyOf(metadata),
            value: metadata.nullValue === true ? null : payload,
            properties: propertiesOf(metadata.properties),
            eventTime: eventTimeOf(metadata.eventTime),
            sequenceId: toBigInt(metadata.sequenceId),
          }),
        },
      ];
    }
    return this.#decodeBatch(body, payload, batchSize, permits, metadata, common, ledgerId, entryId, entryId0);
  }

  #decodeBatch(
    body: MessageBody,
    payload: Buffer,
    batchSize: number,
    permits: number,
    metadata: MessageMetadata,
    common: Pick<PulsarMessage, 'topic' | 'publishTime' | 'producerName' | 'redeliveryCount'>,
    ledgerId: bigint,
    entryId: bigint,
    entryId0: PulsarMessageId,
  ): QueueItem[] {
    // Batch index acknowledgement: the broker marks in ack_set which messages are still to deliver.
    const stillOwed = (body.ackSet?.length ?? 0) > 0 ? bitsOf(body.ackSet as U64[]) : undefined;
    const items: QueueItem[] = [];
    let offset = 0;
    for (let i = 0; i < batchSize; i++) {
      if (payload.length - offset < 4) return this.#brokenBatch(entryId0, permits);
      const size = payload.readUInt32BE(offset);
      if (size > payload.length - offset - 4) return this.#brokenBatch(entryId0, permits);
      let single: SingleMessageMetadata;
      try {
        single = SingleMessageMetadataCodec.decode(payload.subarray(offset + 4, offset + 4 + size)) as unknown as SingleMessageMetadata;
      } catch {
        return this.#brokenBatch(entryId0, permits);
      }
      offset += 4 + size;
      if (single.payloadSize < 0 || single.payloadSize > payload.length - offset) return this.#brokenBatch(entryId0, permits);
      const value = payload.subarray(offset, offset + single.payloadSize);
      offset += single.payloadSize;
      // Already acknowledged: the broker took no permit for it.
      if (stillOwed !== undefined && !stillOwed.has(i)) continue;
      if (single.compactedOut === true) {
        this.consumed(1);
        continue;
      }
      items.push({
        from: this,
        message: Object.freeze({
          ...common,
          messageId: new PulsarMessageId(this.topic, ledgerId, entryId, this.partition, i, batchSize),
          key: keyOf(single),
          value: single.nullValue === true ? null : value,
          properties: propertiesOf(single.properties),
          eventTime: eventTimeOf(single.eventTime ?? metadata.eventTime),
          sequenceId: has(single, 'sequenceId') ? toBigInt(single.sequenceId) : toBigInt(metadata.sequenceId) + BigInt(i),
        }),
      });
    }
    return items;
  }

  #brokenBatch(entryId0: PulsarMessageId, permits: number): QueueItem[] {
    // Nothing of a malformed batch is delivered; its permits come back but for the error's slot.
    if (permits > 1) this.consumed(permits - 1);
    return [
      {
        error: new PulsarProtocolError(`batched message ${entryId0.toString()} on ${this.topic} is malformed`, { messageId: entryId0.toString() }),
        from: this,
      },
    ];
  }

  #backoff(): Backoff {
    return new Backoff(this.#client.options.initialReconnectDelayMs, this.#client.options.maxReconnectDelayMs);
  }
}

function keyOf(m: { partitionKey?: string; partitionKeyB64Encoded?: boolean; nullPartitionKey?: boolean }): string | Buffer | null {
  if (m.nullPartitionKey === true || !has(m, 'partitionKey') || m.partitionKey === undefined) return null;
  return m.partitionKeyB64Encoded === true ? Buffer.from(m.partitionKey, 'base64') : m.partitionKey;
}

function propertiesOf(list: KeyValue[] | undefined): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const { key, value } of list ?? []) out[key] = value;
  return Object.freeze(out);
}

function eventTimeOf(v: U64 | undefined): number | undefined {
  const n = toNumber(v);
  return n > 0 ? n : undefined;
}

/**
 * The permits the broker took for one MESSAGE frame (Consumer.sendMessages): one per
 * message of the entry, less those its ack set marks as acknowledged (batch index
 * acknowledgement, committed or pending in a transaction).
 */
function permitsOf(body: MessageBody, metadata: MessageMetadata | undefined): number {
  if ((body.ackSet?.length ?? 0) > 0) return bitsOf(body.ackSet as U64[]).size;
  if (metadata !== undefined && has(metadata, 'numMessagesInBatch')) return Math.max(0, metadata.numMessagesInBatch ?? 1);
  return 1;
}

/** java.util.BitSet.toLongArray() of `size` bits, all set but `index`. */
function ackSetWithout(size: number, index: number): object[] {
  const words: bigint[] = [];
  for (let bit = 0; bit < size; bit++) {
    const w = bit >> 6;
    words[w] ??= 0n;
    if (bit !== index) words[w] = (words[w] as bigint) | (1n << BigInt(bit & 63));
  }
  return words.map((w) => fromBigInt(w));
}

/** The set bits of a java.util.BitSet long[]. */
function bitsOf(words: readonly U64[]): Set<number> {
  const set = new Set<number>();
  words.forEach((word, w) => {
    const v = BigInt.asUintN(64, toBigInt(word));
    for (let bit = 0; bit < 64; bit++) if ((v >> BigInt(bit)) & 1n) set.add(w * 64 + bit);
  });
  return set;
}

