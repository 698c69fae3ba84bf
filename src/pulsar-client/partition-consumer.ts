/**
 * The consumer of one topic or one partition of a partitioned topic: SUBSCRIBE,
 * FLOW (permits), MESSAGE with its checksum, decompression and batches, ACK with
 * receipts, REDELIVER_UNACKNOWLEDGED_MESSAGES, and resubscribing with back-off on
 * a lost connection. It hands what it receives to the queue of its PulsarConsumer.
 */
import { inflateSync } from 'node:zlib';
import { PulsarChecksumError, PulsarClosedError, PulsarConnectionError, PulsarProtocolError, PulsarUnsupportedError } from './errors.js';
import { Backoff, connectBy, reconnectUntil } from './backoff.js';
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
import type { TxnId } from './transaction-coordinator.js';
import type { PulsarMessage, ResolvedConsumerOptions, SubscriptionType } from './consumer-options.js';

/** A received message or a message's failure, from the partition consumer that got it. @internal */
export type QueueItem = { message: PulsarMessage; from: PartitionConsumer } | { error: Error; from: PartitionConsumer };

/** The receive queue partition consumers feed: their PulsarConsumer. @internal */
export interface ConsumerQueue {
  /** Hands the items out to waiting receivers, or queues them. */
  enqueue(items: QueueItem[]): void;
  /** Drops what `from` prefetched and nobody took (the broker sends it again); returns how many. */
  dropQueued(from: PartitionConsumer): number;
}

type ConsumerState = 'connecting' | 'ready' | 'closed';

/** The consumer of one (partition) topic. @internal */
export class PartitionConsumer implements ConsumerListener {
  readonly topic: string;
  readonly partition: number;
  readonly #client: ClientServices;
  readonly #parent: ConsumerQueue;
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

  constructor(client: ClientServices, parent: ConsumerQueue, topic: string, partition: number, options: ResolvedConsumerOptions) {
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
    await connectBy(deadline, this.#backoff(), this.#client.closeSignal, () => this.#subscribe(), () => this.#client.closed || this.#state === 'closed');
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
        // Only a topic that is gone ends it (the Java client's TopicDoesNotExistException).
        terminal: ['TopicNotFound'],
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

