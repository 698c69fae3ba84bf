import type { MessageHandle, SendOffsetsRequest } from '../../core/index.js';

export interface MemoryStoreOptions {
  /** Partitions of every topic; messages go to one by key hash. @default 1 */
  partitions?: number;
}

/** A committed message as the memory broker keeps it. */
export interface CommittedMessage {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | Buffer | null;
  readonly value: string | Buffer | null;
  readonly headers: Readonly<Record<string, string | Buffer>>;
  readonly timestamp: number;
  readonly transactionId: string;
  /** Global commit order across partitions. */
  readonly sequence: number;
}

/** The handle of a memory transaction: a key-value store plus the shared message-handle shape. */
export interface MemoryTxHandle extends MessageHandle {
  /** This transaction's own write, else the latest committed value (read committed). */
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
  /** Commits consumer positions with the transaction, as Kafka's sendOffsets does. */
  sendOffsets(request: SendOffsetsRequest): Promise<void>;
}
