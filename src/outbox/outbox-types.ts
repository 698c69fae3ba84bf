import type { MessageHandle, Transaction, TransactionContext } from '../core/index.js';

/** What a caller publishes through the outbox. */
export interface OutboxMessage {
  topic: string;
  key?: string | null;
  value: string | Buffer | null;
  headers?: Record<string, string>;
}

/** A committed outbox row as the relay reads it. */
export interface OutboxRecord {
  /** Carried downstream as the `txkit-outbox-id` header, for consumers that dedupe. */
  readonly id: string;
  readonly partition: number;
  /** Position in the partition, in commit order, without gaps. */
  readonly seq: number;
  readonly topic: string;
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
  readonly createdAt: number;
}

/** A message a pipeline consumed, with where it came from. */
export interface SourceMessage {
  readonly source: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
}

export interface DeadLetter {
  readonly consumer: string;
  readonly source: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
  readonly error: string;
  readonly attempts: number;
  readonly createdAt: number;
}

export interface OutboxPartitionStatus {
  readonly partition: number;
  /** Rows published (the partition's sequence). */
  readonly published: number;
  /** Highest sequence a relay reported as sent (a hint; the authority is the broker). */
  readonly relayed: number;
  readonly pending: number;
  /** Age of the oldest row not yet reported relayed, in ms. */
  readonly oldestPendingAgeMs: number | undefined;
}

export interface OutboxStatus {
  readonly partitions: readonly OutboxPartitionStatus[];
  readonly pendingByTopic: Readonly<Record<string, number>>;
  readonly deadLetters: number;
}

/**
 * Where the outbox, inbox and dead letters live: a SQL database or the
 * memory store. `H` is the handle of the database's transactions.
 */
export interface OutboxStore<H> {
  readonly partitions: number;
  /** Creates or upgrades the schema; safe to run twice and concurrently. */
  migrate(): Promise<void>;
  /** Appends records inside the caller's transaction, taking the next sequence numbers of their partition. */
  append(handle: H, partition: number, records: readonly PendingRecord[]): Promise<void>;
  /** Committed records of a partition after `afterSeq`, in sequence order. */
  read(partition: number, afterSeq: number, limit: number): Promise<OutboxRecord[]>;
  /** Records the relay's progress (a hint for status and cleanup). */
  markRelayed(partition: number, seq: number): Promise<void>;
  /** Deletes relayed records older than `olderThanMs`; returns how many. */
  cleanup(olderThanMs: number): Promise<number>;
  status(): Promise<OutboxStatus>;
  /** The next offset this consumer reads in a source partition, as committed with its effects. */
  inboxPosition(handle: H | undefined, consumer: string, source: string, partition: number): Promise<number | undefined>;
  /** Moves the consumer's position from `expected` to `next` inside the caller's transaction, or throws if another worker moved it. */
  advanceInbox(handle: H, consumer: string, source: string, partition: number, expected: number | undefined, next: number): Promise<void>;
  addDeadLetter(handle: H, letter: Omit<DeadLetter, 'createdAt'>): Promise<void>;
  deadLetters(consumer?: string): Promise<DeadLetter[]>;
  /** Resolves early when something may have been published (LISTEN/NOTIFY, in-process commits); else after `timeoutMs`. */
  waitForPublish(timeoutMs: number, signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** A record before it has a sequence number. */
export interface PendingRecord {
  readonly id: string;
  readonly topic: string;
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
  readonly createdAt: number;
}

/** The relay's position in one outbox partition, committed in the same broker transaction as the messages. */
export interface RelayPosition {
  readonly partition: number;
  readonly seq: number;
}

/**
 * A broker the relay publishes to: its transaction context plus where the
 * relay keeps its position inside the broker's own transactions.
 */
export interface RelaySink<H extends MessageHandle = MessageHandle> {
  readonly context: TransactionContext<H>;
  /** The position committed by the last relay transaction for this partition, as seen from inside `tx`. */
  readPosition(tx: Transaction<H>, relayId: string, partition: number): Promise<number | undefined>;
  /** Writes the new position inside `tx`, so it commits with the messages or not at all. */
  writePosition(tx: Transaction<H>, relayId: string, partition: number, seq: number): Promise<void>;
}

/** A source a pipeline reads by explicit offset, so it can resume from positions stored in the database. */
export interface MessageSource {
  readonly name: string;
  /** Partitions this worker consumes. */
  partitions(): Promise<number[]>;
  /** Up to `max` messages of a partition from `offset` on; empty when there are none yet. */
  fetch(partition: number, offset: number, max: number): Promise<SourceMessage[]>;
  /** Resolves when the partition may have messages from `offset` on, or after `timeoutMs`. */
  waitFor(partition: number, offset: number, timeoutMs: number, signal?: AbortSignal): Promise<void>;
  close?(): Promise<void>;
}
