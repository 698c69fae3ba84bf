import type { MessageHandle, SendOffsetsRequest } from '../../core/index.js';

/** Options of a {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** Partitions of every topic; messages go to one by key hash. @default 1 */
  partitions?: number;
}

/** A committed message as the memory broker keeps it. */
export interface CommittedMessage {
  /** Topic the message was sent to. */
  readonly topic: string;
  /** Partition it went to. */
  readonly partition: number;
  /** Position in the partition, from 0. */
  readonly offset: number;
  /** Message key, or null. */
  readonly key: string | Buffer | null;
  /** Message payload, or null. */
  readonly value: string | Buffer | null;
  /** Message headers; empty when none were sent. */
  readonly headers: Readonly<Record<string, string | Buffer>>;
  /** Commit time, in milliseconds since the epoch. */
  readonly timestamp: number;
  /** Id of the transaction that committed it. */
  readonly transactionId: string;
  /** Global commit order across partitions. */
  readonly sequence: number;
}

/** The handle of a memory transaction: a key-value store plus the shared message-handle shape. */
export interface MemoryTxHandle extends MessageHandle {
  /** This transaction's own write, else the latest committed value (read committed). */
  get(key: string): Promise<unknown>;
  /**
   * Writes `value` under `key`, visible to others once the transaction commits.
   * @throws MemoryWriteConflictError when another open transaction has written `key`.
   * @throws ConfigError when `key` is empty or `value` is undefined.
   */
  set(key: string, value: unknown): Promise<void>;
  /**
   * Deletes `key` when the transaction commits.
   * @throws MemoryWriteConflictError when another open transaction has written `key`.
   */
  delete(key: string): Promise<void>;
  /** Commits consumer positions with the transaction, as Kafka's sendOffsets does. */
  sendOffsets(request: SendOffsetsRequest): Promise<void>;
}
