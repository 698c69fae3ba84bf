/**
 * Producers: PRODUCER + SEND with per-producer sequence ids, which the broker's
 * deduplication uses to drop a message it already stored (brokerDeduplicationEnabled).
 * A partitioned topic gets one partition producer per partition; a message goes to the
 * partition of its key (hashed as the Java client does, see routing.ts), else round robin.
 *
 * The messages of one sendAll() (or one transactional send) that go to the same partition
 * travel as batched entries, as the Java client batches: one broker write and one
 * receipt per batch instead of per message. That matters most in transactions, whose
 * broker-side buffer appends one entry at a time per partition. A lone message is sent
 * unbatched. No timers: a batch is exactly what one call gave.
 *
 * On a lost connection a partition producer reconnects with back-off under the same
 * producer name and resends its unacknowledged messages with their original sequence
 * ids, so the broker stores each once. Messages sent in a transaction are not resent:
 * they fail with PulsarConnectionError and the transaction is aborted and rerun instead.
 */
import { PulsarConfigError } from './errors.js';
import type { ClientServices } from './client-services.js';
import { PulsarMessageId } from './message-id.js';
import { partitionForKey } from './routing.js';
import type { HashingScheme } from './routing.js';
import { fullTopicName, partitionTopicName } from './topic-name.js';
import type { TxnId } from './transaction-coordinator.js';
import { resolveProducerOptions } from './producer-options.js';
import type { ProducerMessage, ProducerOptions } from './producer-options.js';
import { PartitionProducer } from './partition-producer.js';

export type { ProducerMessage, ProducerOptions } from './producer-options.js';

/**
 * A producer of one topic (for a partitioned topic, one partition producer per
 * partition), made by {@link PulsarClient.createProducer}. Sends outside any
 * transaction; transactional sends go through a transaction's `tx.handle`.
 */
export class PulsarProducer {
  /** The full topic name. */
  readonly topic: string;
  /** Partitions of the topic; 0 for a non-partitioned topic. */
  readonly partitionCount: number;
  /** How keys pick a partition. */
  readonly hashingScheme: HashingScheme;
  readonly #partitions: PartitionProducer[];
  readonly #closeListeners = new Set<() => void>();
  #roundRobin = Math.floor(Math.random() * 1024);
  #closing: Promise<void> | undefined;

  private constructor(topic: string, partitionCount: number, partitions: PartitionProducer[], scheme: HashingScheme) {
    this.topic = topic;
    this.partitionCount = partitionCount;
    this.hashingScheme = scheme;
    this.#partitions = partitions;
  }

  /** @internal use PulsarClient.createProducer */
  static async create(client: ClientServices, options: ProducerOptions): Promise<PulsarProducer> {
    if (typeof options !== 'object' || options === null) {
      throw new PulsarConfigError('createProducer() needs options with a topic');
    }
    const topic = fullTopicName(options.topic);
    const resolved = resolveProducerOptions(options);
    const count = await client.partitions(topic);
    const partitions =
      count === 0
        ? [new PartitionProducer(client, topic, -1, resolved)]
        : Array.from(
            { length: count },
            (_, i) =>
              new PartitionProducer(client, partitionTopicName(topic, i), i, {
                ...resolved,
                producerName: resolved.producerName === undefined ? undefined : `${resolved.producerName}-${i}`,
              }),
          );
    const started = await Promise.allSettled(partitions.map((p) => p.start()));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed !== undefined) {
      await Promise.allSettled(partitions.map((p) => p.close()));
      throw failed.reason;
    }
    return new PulsarProducer(topic, count, partitions, resolved.hashingScheme);
  }

  /** The partition producer `message` goes to. @internal */
  route(message: ProducerMessage): PartitionProducer {
    if (this.partitionCount === 0) {
      if (message.partition !== undefined && message.partition !== 0) {
        throw new PulsarConfigError(`partition ${message.partition} does not exist: topic ${this.topic} is not partitioned`);
      }
      return this.#partitions[0] as PartitionProducer;
    }
    let index: number;
    if (message.partition !== undefined) {
      if (!(message.partition < this.partitionCount)) {
        throw new PulsarConfigError(`partition ${message.partition} does not exist: topic ${this.topic} has ${this.partitionCount}`);
      }
      index = message.partition;
    } else if (message.key !== undefined && message.key !== null) {
      index = partitionForKey(message.key, this.partitionCount, this.hashingScheme);
    } else {
      index = this.#roundRobin++ % this.partitionCount;
    }
    return this.#partitions[index] as PartitionProducer;
  }

  /** Produces one message (outside any transaction); resolves with its id once the broker stored it. */
  send(message: ProducerMessage): Promise<PulsarMessageId> {
    try {
      return this.route(message).send(message, undefined);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Produces messages (outside any transaction), in order per partition, batched per
   * partition; resolves with their ids, in the given order, once the broker stored them all.
   */
  sendAll(messages: readonly ProducerMessage[]): Promise<PulsarMessageId[]> {
    return this.sendRouted(messages, undefined);
  }

  /** Routes, groups per partition, sends in `txn` when given. @internal */
  async sendRouted(messages: readonly ProducerMessage[], txn: TxnId | undefined): Promise<PulsarMessageId[]> {
    const groups = new Map<PartitionProducer, number[]>();
    messages.forEach((m, i) => {
      const p = this.route(m);
      const list = groups.get(p);
      if (list === undefined) groups.set(p, [i]);
      else list.push(i);
    });
    const ids: PulsarMessageId[] = new Array<PulsarMessageId>(messages.length);
    await Promise.all(
      [...groups].map(async ([p, indexes]) => {
        const got = await p.sendMany(
          indexes.map((i) => messages[i] as ProducerMessage),
          txn,
        );
        indexes.forEach((at, k) => (ids[at] = got[k] as PulsarMessageId));
      }),
    );
    return ids;
  }

  /** Calls `fn` once the producer has closed (its client uses this to forget it). */
  onClose(fn: () => void): void {
    this.#closeListeners.add(fn);
  }

  /** Closes every partition producer; unacknowledged sends fail with PulsarClosedError. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled(this.#partitions.map((p) => p.close()));
      for (const fn of this.#closeListeners) fn();
    })();
    return this.#closing;
  }
}
