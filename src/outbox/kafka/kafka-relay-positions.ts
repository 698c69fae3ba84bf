import { ConfigError, TransactionStateError, TxkitError } from '../../core/index.js';
import type { OutgoingMessage, Transaction } from '../../core/index.js';
import type { KafkaTxHandle } from '../../adapters/kafka/index.js';
import { POSITION_OUTBOX_HEADER, checkPositionOwner } from '../outbox-errors.js';
import type { RelayPartition, RelayPosition, SourceMessage } from '../outbox-types.js';
import type { PositionsClient } from './kafka-positions-client.js';

/** A Kafka topic name: letters, digits, '.', '_' and '-', at most 249. */
export const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

/**
 * The relay positions of a {@link kafkaSink}: records of a compacted
 * positions topic, read back with a read_committed consumer and cached.
 * A position is trusted once read from the broker or committed by this
 * instance; a transaction whose outcome is not known makes the next read
 * go to the broker again.
 */
export class KafkaRelayPositions {
  readonly #client: PositionsClient;
  readonly #positionsTopic: string | undefined;
  readonly #positionsPartitions: number;
  readonly #readTimeoutMs: number;
  /** Positions this instance can trust, by `<relayId>/<partition>`: read from the broker or committed by itself. */
  readonly #known = new Map<string, number | undefined>();
  /** Per positions topic and partition: the next offset to read, and the last position seen there with the outbox it was written for. */
  readonly #read = new Map<string, { next: number } & StoredPosition>();
  /** Relay ids whose positions were read at least once (the first read takes every partition at once). */
  readonly #started = new Set<string>();
  /** Positions whose message was handed to the relay, per transaction: write() checks it. */
  readonly #sent = new WeakMap<object, Set<string>>();

  constructor(client: PositionsClient, positionsTopic: string | undefined, positionsPartitions: number, readTimeoutMs: number) {
    this.#client = client;
    this.#positionsTopic = positionsTopic;
    this.#positionsPartitions = positionsPartitions;
    this.#readTimeoutMs = readTimeoutMs;
  }

  /** The position committed for a relay id's outbox partition, read from the broker unless this instance can vouch for it. */
  async read(at: RelayPartition): Promise<number | undefined> {
    const { relayId, partition } = at;
    if (!Number.isInteger(partition) || partition < 0 || partition >= this.#positionsPartitions) {
      throw new ConfigError(`outbox partition ${partition} needs positionsPartitions > ${partition} in kafkaSink`);
    }
    const key = keyOf(relayId, partition);
    if (!this.#known.has(key)) {
      // A relay's first read takes every partition at once (one consumer, not one per partition), so the
      // other partitions' first reads start near the end; later reads only the partition concerned. Only
      // this partition's position is trusted from it: another partition's may have moved since (its own
      // transaction committed meanwhile), and only that partition's own read or commit may say where it is.
      const { seq, owner } = await this.#readStored(relayId, partition, !this.#started.has(relayId));
      this.#started.add(relayId);
      checkPositionOwner('kafkaSink', at, owner);
      this.#known.set(key, seq);
    }
    return this.#known.get(key);
  }

  /** Trusts nothing cached for a relay id's outbox partition: the next read goes to the broker. */
  forget(relayId: string, partition: number): void {
    this.#known.delete(keyOf(relayId, partition));
  }

  /** The record holding `seq`, sent with the batch of `tx`. */
  message(tx: Transaction<KafkaTxHandle>, { relayId, partition, seq, outboxId }: RelayPosition): { topic: string; messages: OutgoingMessage[] } {
    const key = keyOf(relayId, partition);
    const pending = this.#sent.get(tx) ?? new Set<string>();
    this.#sent.set(tx, pending.add(key));
    const message: OutgoingMessage = { key, value: String(seq), partition };
    if (outboxId !== undefined) message.headers = { [POSITION_OUTBOX_HEADER]: outboxId };
    return { topic: this.#topicOf(relayId), messages: [message] };
  }

  /** Caches `seq` once `tx`, which sent its record, commits. */
  write(tx: Transaction<KafkaTxHandle>, relayId: string, partition: number, seq: number): void {
    const key = keyOf(relayId, partition);
    if (this.#sent.get(tx)?.has(key) !== true) {
      throw new TransactionStateError(
        `kafkaSink.writePosition(${relayId}, ${partition}) without positionMessage in the same transaction: the position travels as a message sent with the batch; use OutboxRelay, which sends it`,
        { backend: 'kafka', method: 'writePosition', state: 'active' },
      );
    }
    // Until this transaction is known to have committed, the broker, not this cache, holds the truth
    // (an aborted or unknown outcome makes the next transaction read it again).
    this.#known.delete(key);
    tx.afterCommit(() => void this.#known.set(key, seq));
  }

  #topicOf(relayId: string): string {
    if (this.#positionsTopic !== undefined) return this.#positionsTopic;
    const topic = `txkit-relay-positions-${relayId}`;
    if (!TOPIC_NAME.test(topic)) {
      throw new ConfigError(`kafkaSink: relayId ${JSON.stringify(relayId)} cannot name a topic; give kafkaSink a positionsTopic, or use a relayId of letters, digits, '.', '_' and '-'`);
    }
    return topic;
  }

  /**
   * Reads committed positions from where the last read stopped to the last stable offset: of `wanted`,
   * or of every partition of the topic when `all`. Returns the position of `wanted`.
   */
  async #readStored(relayId: string, wanted: number, all: boolean): Promise<StoredPosition> {
    const readTimeoutMs = this.#readTimeoutMs;
    const topic = this.#topicOf(relayId);
    const ends = await this.#client.offsets(topic, this.#positionsPartitions);
    if (!ends.has(wanted)) {
      throw new ConfigError(`kafkaSink: positions topic '${topic}' has ${ends.size} partition(s), outbox partition ${wanted} needs one of its own; add partitions to the topic`);
    }
    const partitions = all ? [...ends.keys()].filter((p) => p < this.#positionsPartitions) : [wanted];
    const reads = partitions.map((partition) => {
      const state = this.#read.get(`${topic}/${partition}`) ?? { next: 0, seq: undefined, owner: undefined };
      this.#read.set(`${topic}/${partition}`, state);
      const { low, high } = ends.get(partition) as { low: number; high: number };
      state.next = Math.max(state.next, low);
      return { partition, state, end: high };
    });
    const todo = reads.filter((r) => r.state.next < r.end);
    if (todo.length > 0) {
      const source = this.#client.reader(
        topic,
        todo.map((t) => t.partition),
        readTimeoutMs,
      );
      try {
        for (const { partition, state, end } of todo) {
          // Bounded: every round moves `next` forward or ends the read.
          while (state.next < end) {
            const asked = Date.now();
            const records = await source.fetch(partition, state.next, 1000);
            if (records.length === 0) {
              if (Date.now() - asked < readTimeoutMs) break; // caught up: what is left below the end are control or aborted records
              throw new TxkitError(
                'POSITIONS_READ_TIMEOUT',
                `kafkaSink: reading relay positions from '${topic}' partition ${partition} got nothing past offset ${state.next} in ${readTimeoutMs} ms, though the broker reports records up to ${end}`,
                { backend: 'kafka', retriable: true },
              );
            }
            for (const r of records) {
              // Reads of one partition can overlap (the first reads of several partition loops each read
              // every partition): the state only moves forward, so none returns an older position than
              // another has read.
              if (r.offset < state.next) continue;
              Object.assign(state, positionOf(topic, relayId, partition, r));
              state.next = r.offset + 1;
            }
          }
        }
      } finally {
        await source.close();
      }
    }
    const state = reads.find((r) => r.partition === wanted)?.state;
    return { seq: state?.seq, owner: state?.owner };
  }
}

function keyOf(relayId: string, partition: number): string {
  return `${relayId}/${partition}`;
}

/** A position as stored: the sequence, and the outbox it was written for (unset by earlier versions). */
interface StoredPosition {
  seq: number | undefined;
  owner: string | undefined;
}

/** The position a record of the positions topic holds; a record of another relay or partition means the topic is shared. */
function positionOf(topic: string, relayId: string, partition: number, record: SourceMessage): StoredPosition {
  if (record.key !== `${relayId}/${partition}`) {
    throw new ConfigError(
      `kafkaSink: positions topic '${topic}' partition ${partition} holds a record keyed ${JSON.stringify(record.key)} at offset ${record.offset}, ` +
        `not '${relayId}/${partition}': the topic is shared with another relay, whose open transactions could hide this relay's positions; ` +
        'give each relayId its own positionsTopic (the default does)',
      { backend: 'kafka' },
    );
  }
  const text = record.value === null ? '' : record.value.toString();
  const seq = Number(text);
  if (text === '' || !Number.isSafeInteger(seq) || seq < 0) {
    throw new TxkitError('POSITIONS_CORRUPT', `kafkaSink: positions topic '${topic}' partition ${partition} offset ${record.offset} holds ${JSON.stringify(text.slice(0, 40))}, not a position`, {
      backend: 'kafka',
    });
  }
  return { seq, owner: record.headers[POSITION_OUTBOX_HEADER] };
}
