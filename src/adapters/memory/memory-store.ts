import { ConfigError } from '../../core/index.js';
import { wait } from '../../core/backoff.js';
import type { OutgoingMessage, SendRequest } from '../../core/index.js';
import { MemoryWriteConflictError } from './memory-errors.js';
import type { CommittedMessage, MemoryStoreOptions } from './memory-types.js';

interface Versioned {
  value: unknown;
  version: number;
  /** A deleted key stays as a tombstone so its version keeps counting and a concurrent reader still conflicts. */
  deleted: boolean;
}

/** The writes of one transaction, applied atomically by MemoryStore.commit(). */
export interface PendingCommit {
  readonly transactionId: string;
  /** Version of each key as this transaction first saw it; the commit fails if any changed since. */
  readonly seen: ReadonlyMap<string, number>;
  readonly writes: ReadonlyMap<string, { value: unknown; deleted: boolean }>;
  readonly sends: readonly SendRequest[];
}

const OFFSET_PREFIX = '\u0000offset\u0000';

/**
 * A transactional in-memory key-value store and broker. Reads see committed
 * data (read committed). A key another transaction has written but not ended
 * cannot be written (like MongoDB's write conflict), and a commit fails if a
 * key it read or wrote changed after it first saw it, so lost updates are
 * impossible: both raise MemoryWriteConflictError, a transient error.
 */
export class MemoryStore {
  readonly partitions: number;
  readonly #data = new Map<string, Versioned>();
  readonly #topics = new Map<string, CommittedMessage[][]>();
  readonly #intents = new Map<string, string>();
  readonly #listeners = new Set<() => void>();
  #sequence = 0;
  #roundRobin = 0;

  constructor(options: MemoryStoreOptions = {}) {
    const partitions = options.partitions ?? 1;
    if (!Number.isInteger(partitions) || partitions < 1) {
      throw new ConfigError(`MemoryStore partitions must be a positive integer, got ${String(partitions)}`, {
        backend: 'memory',
      });
    }
    this.partitions = partitions;
  }

  /** The committed value of `key`, or undefined. */
  get(key: string): unknown {
    const entry = this.#data.get(key);
    return entry === undefined || entry.deleted ? undefined : copy(entry.value);
  }

  /** Committed keys, optionally only those starting with `prefix`. */
  keys(prefix = ''): string[] {
    const out: string[] = [];
    for (const [k, entry] of this.#data) {
      if (!entry.deleted && k.startsWith(prefix) && !k.startsWith(OFFSET_PREFIX)) out.push(k);
    }
    return out.sort();
  }

  /** Committed messages of `topic` (one partition, or all in commit order). */
  messages(topic: string, partition?: number): CommittedMessage[] {
    const parts = this.#topics.get(topic);
    if (parts === undefined) return [];
    if (partition !== undefined) return [...(parts[partition] ?? [])];
    return parts.flat().sort((a, b) => a.sequence - b.sequence);
  }

  /** The next offset `groupId` will read in a partition, as committed with sendOffsets. */
  committedOffset(groupId: string, topic: string, partition: number): number | undefined {
    const v = this.#data.get(offsetKey(groupId, topic, partition))?.value;
    return typeof v === 'number' ? v : undefined;
  }

  /** Calls `listener` after every commit; returns the unsubscribe function. */
  onCommit(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves when `predicate()` holds after a commit, or rejects after `timeoutMs`. */
  async waitFor(predicate: () => boolean, timeoutMs: number): Promise<void> {
    if (predicate()) return;
    const end = await wait(timeoutMs, undefined, (wake) => this.onCommit(() => predicate() && wake()));
    if (end === 'elapsed') throw new Error(`MemoryStore.waitFor: condition not met within ${timeoutMs} ms`);
  }

  /** @internal the committed version of `key` (0 when absent). */
  versionOf(key: string): number {
    return this.#data.get(key)?.version ?? 0;
  }

  /** @internal takes the write intent on `key` for `transactionId`, or throws a write conflict. */
  claim(key: string, transactionId: string): void {
    const holder = this.#intents.get(key);
    if (holder !== undefined && holder !== transactionId) {
      throw new MemoryWriteConflictError(key, `transaction ${holder} has written it and not yet ended`);
    }
    this.#intents.set(key, transactionId);
  }

  /** @internal drops the intents of a transaction that ended (or of keys a savepoint rolled back). */
  release(keys: Iterable<string>, transactionId: string): void {
    for (const key of keys) if (this.#intents.get(key) === transactionId) this.#intents.delete(key);
  }

  /** @internal validates and applies a transaction atomically (no await inside). */
  commit(pending: PendingCommit): void {
    for (const [key, version] of pending.seen) {
      if (this.versionOf(key) !== version) {
        this.release(pending.writes.keys(), pending.transactionId);
        throw new MemoryWriteConflictError(key, 'another transaction committed a change to it first');
      }
    }
    for (const [key, w] of pending.writes) {
      this.#data.set(key, { value: w.deleted ? undefined : w.value, version: this.versionOf(key) + 1, deleted: w.deleted });
    }
    const timestamp = Date.now();
    for (const send of pending.sends) {
      for (const m of send.messages) this.#append(send.topic, m, pending.transactionId, timestamp);
    }
    this.release(pending.writes.keys(), pending.transactionId);
    for (const listener of [...this.#listeners]) listener();
  }

  /** @internal chooses a partition the way a keyed producer does: by key hash, else round robin. */
  partitionFor(m: OutgoingMessage): number {
    if (m.partition !== undefined) {
      if (m.partition >= this.partitions) {
        throw new ConfigError(`partition ${m.partition} does not exist: this MemoryStore has ${this.partitions}`, {
          backend: 'memory',
        });
      }
      return m.partition;
    }
    if (m.key === undefined || m.key === null) return this.#roundRobin++ % this.partitions;
    return fnv1a(typeof m.key === 'string' ? Buffer.from(m.key) : m.key) % this.partitions;
  }

  #append(topic: string, m: OutgoingMessage, transactionId: string, timestamp: number): void {
    let parts = this.#topics.get(topic);
    if (parts === undefined) {
      parts = Array.from({ length: this.partitions }, () => []);
      this.#topics.set(topic, parts);
    }
    const partition = this.partitionFor(m);
    const log = parts[partition] as CommittedMessage[];
    log.push(
      Object.freeze({
        topic,
        partition,
        offset: log.length,
        key: m.key ?? null,
        value: m.value,
        headers: Object.freeze({ ...(m.headers ?? {}) }),
        timestamp,
        transactionId,
        sequence: this.#sequence++,
      }),
    );
  }
}

export function offsetKey(groupId: string, topic: string, partition: number): string {
  return `${OFFSET_PREFIX}${groupId}\u0000${topic}\u0000${partition}`;
}

/** Values are copied in and out so nobody can change committed data outside a transaction. */
export function copy<T>(value: T): T {
  return typeof value === 'object' && value !== null ? structuredClone(value) : value;
}

function fnv1a(bytes: Buffer): number {
  let h = 0x811c9dc5;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
