/**
 * Consumers: SUBSCRIBE, FLOW (permits), MESSAGE, individual ACK with receipts, and
 * REDELIVER_UNACKNOWLEDGED_MESSAGES. A partitioned topic gets one partition consumer
 * per partition feeding one receive queue. On a lost connection a partition consumer
 * resubscribes with back-off; what it had prefetched but not handed out is dropped,
 * since the broker redelivers everything unacknowledged.
 */
import { PulsarClosedError, PulsarConfigError, PulsarTimeoutError } from './errors.js';
import type { ClientServices } from './client-services.js';
import { PulsarMessageId } from './message-id.js';
import { fullTopicName, partitionTopicName } from './topic-name.js';
import { resolveConsumerOptions } from './consumer-options.js';
import type { ConsumerOptions, PulsarMessage, ReceiveOptions, ResolvedConsumerOptions, SubscriptionType } from './consumer-options.js';
import { PartitionConsumer } from './partition-consumer.js';
import type { QueueItem } from './partition-consumer.js';

export type { ConsumerOptions, PulsarMessage, ReceiveOptions, SubscriptionType } from './consumer-options.js';

interface Waiter {
  resolve(message: PulsarMessage): void;
  reject(err: unknown): void;
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
