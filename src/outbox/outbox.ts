import { randomUUID } from 'node:crypto';
import { ConfigError } from '../core/index.js';
import type { Transaction } from '../core/index.js';
import type { OutboxMessage, OutboxStore, PendingRecord } from './outbox-types.js';

/** Header carrying each record's outbox id downstream, for consumers that dedupe. */
export const OUTBOX_ID_HEADER = 'txkit-outbox-id';

export interface OutboxOptions {
  /** Largest value accepted, in bytes; larger ones get ConfigError instead of failing in the broker later. @default 1_000_000 */
  maxValueBytes?: number;
}

interface LocalNotifier {
  notifyLocal?(): void;
}

/**
 * Writes messages into the business transaction. They reach the broker
 * through OutboxRelay only if, and after, that transaction commits.
 */
export class Outbox<H> {
  readonly store: OutboxStore<H>;
  readonly #maxValueBytes: number;

  constructor(store: OutboxStore<H>, options: OutboxOptions = {}) {
    this.store = store;
    this.#maxValueBytes = options.maxValueBytes ?? 1_000_000;
  }

  /**
   * Appends messages inside `tx`. Returns their outbox ids. Messages with a
   * key go to the partition of the key, so one key keeps its order.
   */
  async publish(tx: Transaction<H>, messages: OutboxMessage | readonly OutboxMessage[]): Promise<string[]> {
    const list = Array.isArray(messages) ? (messages as readonly OutboxMessage[]) : [messages as OutboxMessage];
    const byPartition = new Map<number, PendingRecord[]>();
    const ids: string[] = [];
    const now = Date.now();
    list.forEach((m, i) => {
      const record = this.#toRecord(m, i, now);
      ids.push(record.id);
      const p = partitionOf(record.key, this.store.partitions);
      const bucket = byPartition.get(p);
      if (bucket === undefined) byPartition.set(p, [record]);
      else bucket.push(record);
    });
    // Ascending partition order: two publishers never wait on each other's counters in opposite orders.
    for (const p of [...byPartition.keys()].sort((a, b) => a - b)) {
      await this.store.append(tx.handle, p, byPartition.get(p) as PendingRecord[]);
    }
    const notifier = this.store as LocalNotifier;
    if (notifier.notifyLocal !== undefined) tx.afterCommit(() => notifier.notifyLocal?.());
    return ids;
  }

  #toRecord(m: OutboxMessage, index: number, now: number): PendingRecord {
    const where = `outbox.publish() message ${index}`;
    if (typeof m !== 'object' || m === null) throw new ConfigError(`${where} must be an object { topic, key?, value, headers? }`);
    if (typeof m.topic !== 'string' || m.topic.length === 0 || m.topic.length > 249) {
      throw new ConfigError(`${where} needs a topic name of 1 to 249 characters, got ${JSON.stringify(m.topic)}`);
    }
    if (m.key !== undefined && m.key !== null && typeof m.key !== 'string') {
      throw new ConfigError(`${where}.key must be a string or null, got ${typeof m.key}`);
    }
    if (m.value !== null && typeof m.value !== 'string' && !Buffer.isBuffer(m.value)) {
      throw new ConfigError(`${where}.value must be a string, a Buffer or null, got ${typeof m.value}; serialize objects first`);
    }
    const value = m.value === null ? null : Buffer.isBuffer(m.value) ? m.value : Buffer.from(m.value);
    if (value !== null && value.length > this.#maxValueBytes) {
      throw new ConfigError(`${where}.value is ${value.length} bytes, over maxValueBytes=${this.#maxValueBytes}; store large payloads elsewhere and publish a reference`);
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(m.headers ?? {})) {
      if (typeof v !== 'string') throw new ConfigError(`${where}.headers['${k}'] must be a string, got ${typeof v}`);
      headers[k] = v;
    }
    const id = randomUUID();
    headers[OUTBOX_ID_HEADER] = id;
    return { id, topic: m.topic, key: m.key ?? null, value, headers, createdAt: now };
  }
}

/** Keyed records go to a partition by key hash (FNV-1a); unkeyed ones to partition 0. */
export function partitionOf(key: string | null, partitions: number): number {
  if (key === null || partitions === 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}
