/**
 * The producer of one topic or one partition of a partitioned topic: PRODUCER, SEND
 * of single messages and batched entries with per-producer sequence ids, receipts,
 * send timeouts, and reconnecting with back-off, resending what is unacknowledged
 * under the original sequence ids (but never a transaction's messages).
 */
import { PulsarClosedError, PulsarConfigError, PulsarConnectionError, PulsarServerError, PulsarTimeoutError } from './errors.js';
import { Backoff, connectBy, reconnectUntil } from './backoff.js';
import type { ClientServices } from './client-services.js';
import { CommandType, SingleMessageMetadataCodec, fromBigInt, has, toBigInt, toNumber } from './wire/commands.js';
import type { ProducerSuccessBody, SendErrorBody, SendReceiptBody } from './wire/commands.js';
import type { ProducerListener, PulsarConnection } from './wire/connection.js';
import { encodePayloadCommand } from './wire/frames.js';
import { PulsarMessageId } from './message-id.js';
import type { TxnId } from './transaction-coordinator.js';
import type { ProducerMessage, ResolvedProducerOptions } from './producer-options.js';

/** One SEND: a single message, or a batch of them in one entry. */
interface OpSend {
  /** The first message's sequence id; a batch's messages have consecutive ones. */
  readonly sequenceId: number;
  readonly messages: readonly ProducerMessage[];
  readonly payloads: readonly Buffer[];
  /** Sent as a batched entry (even of one message, when it came in a batch). */
  readonly batched: boolean;
  readonly txn: TxnId | undefined;
  readonly deadline: number;
  frame: Buffer | undefined;
  resolve(ids: PulsarMessageId[]): void;
  reject(err: Error): void;
}

type ProducerState = 'connecting' | 'ready' | 'closed';

/** The producer of one (partition) topic. @internal */
export class PartitionProducer implements ProducerListener {
  readonly topic: string;
  /** Partition index, -1 for a non-partitioned topic. */
  readonly partition: number;
  readonly #client: ClientServices;
  readonly #options: ResolvedProducerOptions;
  readonly #producerId: number;
  readonly #userProvidedName: boolean;
  #name: string | undefined;
  #state: ProducerState = 'connecting';
  /** A refusal that reconnecting cannot fix (topic terminated, not authorized...). */
  #failure: Error | undefined;
  #connection: PulsarConnection | undefined;
  #epoch = 0;
  #connected = false;
  #nextSequenceId = 0;
  readonly #pending = new Map<number, OpSend>();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #roomWaiters: (() => void)[] = [];
  #reconnecting = false;

  constructor(client: ClientServices, topic: string, partition: number, options: ResolvedProducerOptions) {
    this.#client = client;
    this.topic = topic;
    this.partition = partition;
    this.#options = options;
    this.#producerId = client.newProducerId();
    this.#name = options.producerName;
    this.#userProvidedName = options.producerName !== undefined;
  }

  /** The name the broker knows this producer by (set once connected). */
  get producerName(): string | undefined {
    return this.#name;
  }

  /** First connection: transient failures are retried with back-off until operationTimeoutMs. */
  async start(): Promise<void> {
    const deadline = Date.now() + this.#client.options.operationTimeoutMs;
    await connectBy(deadline, this.#backoff(), this.#client.closeSignal, () => this.#connect(), () => this.#client.closed);
  }

  /** Sends one message, unbatched, in `txn` when given; resolves with its id once stored. */
  async send(message: ProducerMessage, txn: TxnId | undefined): Promise<PulsarMessageId> {
    const [id] = await this.#enqueue([message], false, txn);
    return id as PulsarMessageId;
  }

  /** Sends messages in order as batched entries (a lone message unbatched); resolves with their ids. */
  async sendMany(messages: readonly ProducerMessage[], txn: TxnId | undefined): Promise<PulsarMessageId[]> {
    if (messages.length === 1 || this.#options.batchingMaxMessages === 1) {
      return Promise.all(messages.map((m) => this.send(m, txn)));
    }
    const batches: ProducerMessage[][] = [];
    let current: ProducerMessage[] = [];
    let bytes = 0;
    for (const m of messages) {
      const size = byteLength(m.value);
      if (current.length > 0 && (current.length >= this.#options.batchingMaxMessages || bytes + size > this.#options.batchingMaxBytes)) {
        batches.push(current);
        current = [];
        bytes = 0;
      }
      current.push(m);
      bytes += size;
    }
    batches.push(current);
    const ids = await Promise.all(batches.map((b) => this.#enqueue(b, b.length > 1, txn)));
    return ids.flat();
  }

  async #enqueue(messages: readonly ProducerMessage[], batched: boolean, txn: TxnId | undefined): Promise<PulsarMessageId[]> {
    this.#assertUsable();
    // Bounded by close(): every waiter is woken then, and the loop re-checks the state.
    while (this.#pending.size >= this.#options.maxPendingMessages) {
      await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
      this.#assertUsable();
    }
    const payloads = messages.map((m) => toBuffer(m.value));
    const total = payloads.reduce((n, p) => n + p.length, 0);
    const maxSize = this.#connection?.maxMessageSize ?? 5 * 1024 * 1024;
    if (total > maxSize) {
      throw new PulsarConfigError(`${messages.length > 1 ? 'a batch' : 'a message'} of ${total} bytes exceeds the broker's maxMessageSize of ${maxSize}`);
    }
    return new Promise<PulsarMessageId[]>((resolve, reject) => {
      const op: OpSend = {
        sequenceId: this.#nextSequenceId,
        messages,
        payloads,
        batched,
        txn,
        deadline: Date.now() + this.#options.sendTimeoutMs,
        frame: undefined,
        resolve,
        reject,
      };
      this.#nextSequenceId += messages.length;
      this.#pending.set(op.sequenceId, op);
      this.#armSweeper();
      if (this.#state === 'ready') this.#write([op]);
    });
  }

  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    const connection = this.#connection;
    this.#connection = undefined;
    this.#failPending(new PulsarClosedError(`producer of ${this.topic}`), () => true);
    this.#wakeRoomWaiters();
    if (connection !== undefined && !connection.ended) {
      connection.unregisterProducer(this.#producerId, this);
      try {
        await connection.request(CommandType.CLOSE_PRODUCER, { producerId: this.#producerId }, { timeoutMs: 5_000 });
      } catch {
        // Best effort: the broker drops the producer with the connection anyway.
      }
    }
  }

  // ProducerListener ---------------------------------------------------------

  onReceipt(body: SendReceiptBody): void {
    const op = this.#pending.get(toNumber(body.sequenceId));
    if (op === undefined) return; // A receipt for a send that already timed out or was resent.
    this.#settle(op);
    const ledgerId = toBigInt(body.messageId?.ledgerId);
    const entryId = toBigInt(body.messageId?.entryId);
    const count = op.messages.length;
    op.resolve(
      op.batched
        ? op.messages.map((_, i) => new PulsarMessageId(this.topic, ledgerId, entryId, this.partition, i, count))
        : [new PulsarMessageId(this.topic, ledgerId, entryId, this.partition)],
    );
  }

  onSendError(body: SendErrorBody): void {
    const op = this.#pending.get(toNumber(body.sequenceId));
    if (op === undefined) return;
    this.#settle(op);
    op.reject(new PulsarServerError(body.error, body.message, `SEND to ${this.topic}`));
  }

  onDisconnect(reason: Error): void {
    if (this.#state === 'closed') return;
    this.#connection = undefined;
    this.#state = 'connecting';
    // A transaction's messages are not resent: the transaction fails and is rerun whole.
    this.#failPending(
      new PulsarConnectionError(`the connection of the producer of ${this.topic} broke while a transaction was sending: ${reason.message}`, {
        cause: reason,
      }),
      (op) => op.txn !== undefined,
    );
    if (this.#connected) void this.#reconnect();
  }

  // -------------------------------------------------------------------------

  async #connect(): Promise<void> {
    const { brokerUrl, proxyThroughServiceUrl } = await this.#client.lookup(this.topic);
    const connection = await this.#client.connection(brokerUrl, proxyThroughServiceUrl);
    const body: Record<string, unknown> = {
      topic: this.topic,
      producerId: this.#producerId,
      epoch: this.#epoch++,
      txnEnabled: true,
      userProvidedProducerName: this.#userProvidedName,
    };
    if (this.#name !== undefined) body.producerName = this.#name;
    const response = await connection.request<ProducerSuccessBody>(CommandType.PRODUCER, body);
    if (this.#state === 'closed') {
      void connection.request(CommandType.CLOSE_PRODUCER, { producerId: this.#producerId }).catch(() => undefined);
      throw new PulsarClosedError(`producer of ${this.topic}`);
    }
    if (connection.ended) throw new PulsarConnectionError(`the connection to ${connection.remote} closed while the producer was created`);
    this.#name = response.producerName;
    // Deduplication state of a named producer: continue after the last sequence id the broker stored.
    const last = has(response, 'lastSequenceId') ? toNumber(response.lastSequenceId) : -1;
    if (!this.#connected && last >= this.#nextSequenceId) this.#nextSequenceId = last + 1;
    connection.registerProducer(this.#producerId, this);
    this.#connection = connection;
    this.#state = 'ready';
    this.#connected = true;
    // Resend, in order, what the broker has not confirmed; it drops any it already stored.
    this.#write([...this.#pending.values()]);
  }

  async #reconnect(): Promise<void> {
    if (this.#reconnecting) return;
    this.#reconnecting = true;
    try {
      await reconnectUntil({
        backoff: this.#backoff(),
        active: () => this.#state === 'connecting' && !this.#client.closed,
        signal: this.#client.closeSignal,
        attempt: () => this.#connect(),
        // As the Java producer: a topic gone or terminated, or this producer fenced, ends it.
        terminal: ['TopicNotFound', 'TopicTerminatedError', 'ProducerFenced'],
        onPermanent: (err) => {
          this.#failure = err;
          this.#failPending(err, () => true);
          this.#wakeRoomWaiters();
        },
      });
    } finally {
      this.#reconnecting = false;
    }
  }

  #write(ops: OpSend[]): void {
    const connection = this.#connection;
    if (connection === undefined || ops.length === 0) return;
    const frames = ops.map((op) => (op.frame ??= this.#encode(op)));
    try {
      if (frames.length === 1) connection.write(frames[0] as Buffer);
      else connection.writeMany(frames);
    } catch {
      // The connection ended under us: onDisconnect resends or fails these ops.
    }
  }

  #encode(op: OpSend): Buffer {
    const { txn, sequenceId, payloads } = op;
    const count = op.messages.length;
    const last = sequenceId + count - 1;
    let payload: Buffer;
    let metadata: Record<string, unknown>;
    if (op.batched) {
      // [size u32][SingleMessageMetadata][payload] per message (PulsarApi.proto, batch format).
      const parts: Buffer[] = [];
      op.messages.forEach((m, i) => {
        const single: Record<string, unknown> = { payloadSize: (payloads[i] as Buffer).length, sequenceId: sequenceId + i };
        describeMessage(m, single);
        const bytes = SingleMessageMetadataCodec.encode(single).finish();
        const size = Buffer.allocUnsafe(4);
        size.writeUInt32BE(bytes.length, 0);
        parts.push(size, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), payloads[i] as Buffer);
      });
      payload = Buffer.concat(parts);
      metadata = { numMessagesInBatch: count, highestSequenceId: last };
    } else {
      payload = payloads[0] as Buffer;
      metadata = {};
      describeMessage(op.messages[0] as ProducerMessage, metadata);
    }
    Object.assign(metadata, { producerName: this.#name, sequenceId, publishTime: Date.now(), uncompressedSize: payload.length });
    const send: Record<string, unknown> = { producerId: this.#producerId, sequenceId, numMessages: count };
    if (op.batched) send.highestSequenceId = last;
    if (txn !== undefined) {
      // Both places: CommandSend for the broker, MessageMetadata for the transaction buffer.
      send.txnidMostBits = metadata.txnidMostBits = fromBigInt(txn.most);
      send.txnidLeastBits = metadata.txnidLeastBits = fromBigInt(txn.least);
    }
    return encodePayloadCommand(CommandType.SEND, send, metadata, payload);
  }

  #settle(op: OpSend): void {
    this.#pending.delete(op.sequenceId);
    if (this.#pending.size === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
    this.#roomWaiters.shift()?.();
  }

  #failPending(err: Error, which: (op: OpSend) => boolean): void {
    for (const op of [...this.#pending.values()]) {
      if (!which(op)) continue;
      this.#settle(op);
      op.reject(err);
    }
  }

  /** One timer per partition producer, only while sends wait: fails those past sendTimeoutMs. */
  #armSweeper(): void {
    if (this.#sweeper !== undefined) return;
    const every = Math.max(25, Math.min(1_000, this.#options.sendTimeoutMs / 10));
    this.#sweeper = setInterval(() => {
      const now = Date.now();
      // Oldest first (Map keeps insertion order); stop at the first one still in time.
      for (const op of this.#pending.values()) {
        if (op.deadline > now) break;
        this.#settle(op);
        op.reject(new PulsarTimeoutError(`SEND to ${this.topic}`, this.#options.sendTimeoutMs));
      }
    }, every);
    this.#sweeper.unref();
  }

  #wakeRoomWaiters(): void {
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const wake of waiters) wake();
  }

  #assertUsable(): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#state === 'closed') throw new PulsarClosedError(`producer of ${this.topic}`);
  }

  #backoff(): Backoff {
    return new Backoff(this.#client.options.initialReconnectDelayMs, this.#client.options.maxReconnectDelayMs);
  }
}

/** The per-message fields, shared by MessageMetadata and SingleMessageMetadata (same names). */
function describeMessage(message: ProducerMessage, into: Record<string, unknown>): void {
  if (message.properties !== undefined) {
    into.properties = Object.entries(message.properties).map(([key, value]) => ({ key, value }));
  }
  if (message.key !== undefined && message.key !== null) {
    if (typeof message.key === 'string') into.partitionKey = message.key;
    else {
      into.partitionKey = message.key.toString('base64');
      into.partitionKeyB64Encoded = true;
    }
  }
  if (message.value === null) into.nullValue = true;
  if (message.eventTime !== undefined) into.eventTime = message.eventTime;
}

function byteLength(value: string | Buffer | null): number {
  if (value === null) return 0;
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

function toBuffer(value: string | Buffer | null): Buffer {
  if (value === null) return Buffer.alloc(0);
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}
