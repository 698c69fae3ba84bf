import { PulsarConfigError } from './errors.js';
import { fromBigInt } from './wire/commands.js';

/**
 * Where a message is stored: ledger and entry in its topic (partition), plus its index
 * when the entry is a batch. Immutable; `toString()` gives `ledger:entry:partition:batchIndex`,
 * which `PulsarMessageId.parse` reads back, so a pipeline can store positions as text.
 */
export class PulsarMessageId {
  /** The topic (for a partitioned topic: the partition's topic) the message was read from or written to. */
  readonly topic: string;
  readonly ledgerId: bigint;
  readonly entryId: bigint;
  /** Partition index, -1 for a non-partitioned topic. */
  readonly partition: number;
  /** Index in a batched entry, -1 when the entry holds one message. */
  readonly batchIndex: number;
  /** Messages in the batched entry, 0 when the entry holds one message. */
  readonly batchSize: number;

  constructor(topic: string, ledgerId: bigint, entryId: bigint, partition = -1, batchIndex = -1, batchSize = 0) {
    this.topic = topic;
    this.ledgerId = ledgerId;
    this.entryId = entryId;
    this.partition = partition;
    this.batchIndex = batchIndex;
    this.batchSize = batchSize;
    Object.freeze(this);
  }

  /** Reads `ledger:entry:partition:batchIndex` (as written by toString) for `topic`. */
  static parse(topic: string, text: string): PulsarMessageId {
    const match = /^(\d+):(\d+):(-?\d+):(-?\d+)$/.exec(text);
    if (match === null) {
      throw new PulsarConfigError(`'${text}' is not a Pulsar message id (want ledger:entry:partition:batchIndex)`);
    }
    return new PulsarMessageId(topic, BigInt(match[1] as string), BigInt(match[2] as string), Number(match[3]), Number(match[4]));
  }

  /**
   * Order of two ids of the same topic (partition), as the broker stores them: by ledger,
   * entry, then index in the batch (a whole entry, index -1, sorts before its messages).
   */
  static compare(a: PulsarMessageId, b: PulsarMessageId): number {
    if (a.ledgerId !== b.ledgerId) return a.ledgerId < b.ledgerId ? -1 : 1;
    if (a.entryId !== b.entryId) return a.entryId < b.entryId ? -1 : 1;
    return a.batchIndex === b.batchIndex ? 0 : a.batchIndex < b.batchIndex ? -1 : 1;
  }

  /** `ledger:entry:partition:batchIndex`, which {@link PulsarMessageId.parse} reads back (the topic is not included). */
  toString(): string {
    return `${this.ledgerId}:${this.entryId}:${this.partition}:${this.batchIndex}`;
  }

  /** Whether both ids name the same message: same topic, ledger, entry and batch index. */
  equals(other: PulsarMessageId): boolean {
    return (
      this.topic === other.topic &&
      this.ledgerId === other.ledgerId &&
      this.entryId === other.entryId &&
      this.batchIndex === other.batchIndex
    );
  }

  /** @internal the MessageIdData of the entry, for ACK and REDELIVER commands. */
  entryProto(): { ledgerId: object; entryId: object } {
    return { ledgerId: fromBigInt(this.ledgerId), entryId: fromBigInt(this.entryId) };
  }
}
