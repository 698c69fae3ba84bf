import { randomUUID } from 'node:crypto';
import { ConfigError, TransactionStateError, trackWork } from '../../core/index.js';
import type { Transaction } from '../../core/index.js';
import { describeType } from '../../core/options.js';
import type { OutboxMessage, OutboxRecordStore, PendingRecord } from '../outbox-types.js';

/** Header carrying each record's outbox id downstream, for consumers that dedupe. */
export const OUTBOX_ID_HEADER = 'txkit-outbox-id';

/** Options of {@link Outbox}. */
export interface OutboxOptions {
  /** Largest value accepted, in bytes; larger ones get ConfigError instead of failing in the broker later. @default 1_000_000 */
  maxValueBytes?: number;
}

/**
 * Writes messages into the business transaction. They reach the broker
 * through OutboxRelay only if, and after, that transaction commits.
 *
 * @example
 * ```ts
 * const store = sqlOutboxStore(db); // db: a knex instance
 * await store.migrate();
 * const orders = knexTransactions(db);
 * const outbox = new Outbox(store);
 * await orders.withTransaction(async (tx) => {
 *   await tx.handle('orders').insert({ id: 'o-1', total: 42 });
 *   await outbox.publish(tx, { topic: 'order-events', key: 'o-1', value: JSON.stringify({ type: 'created' }) });
 * });
 * ```
 */
export class Outbox<H> {
  /** The store the messages are appended to, in the database of the transactions passed to {@link Outbox.publish}. */
  readonly store: OutboxRecordStore<H>;
  readonly #maxValueBytes: number;
  /** Transactions whose records publish() collects until appendCollected(). */
  readonly #collecting = new WeakMap<Transaction<H>, Map<number, PendingRecord[]>>();

  /**
   * @param store - where the records go: `sqlOutboxStore(knex)` or `sqlOutboxStore(pgPool)`, `mongoOutboxStore(db)` or a {@link MemoryOutboxStore}.
   * @throws {@link txkit!ConfigError | ConfigError} when `store` is not an OutboxStore or `maxValueBytes` is not a positive integer.
   */
  constructor(store: OutboxRecordStore<H>, options: OutboxOptions = {}) {
    if (typeof store !== 'object' || store === null || typeof store.append !== 'function' || !Number.isInteger(store.partitions)) {
      throw new ConfigError(
        `new Outbox(store) needs an OutboxStore, got ${describeType(store, 'json')}; pass sqlOutboxStore(knex), mongoOutboxStore(client.db(name)) or new MemoryOutboxStore(memoryStore) (sqlOutboxStore also takes a pg Pool)`,
      );
    }
    if (typeof options !== 'object' || options === null) {
      throw new ConfigError(`new Outbox(store, options) needs an options object such as { maxValueBytes: 1_000_000 }, got ${describeType(options, 'json')}`);
    }
    const max = options.maxValueBytes ?? 1_000_000;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) {
      throw new ConfigError(
        `Outbox option 'maxValueBytes' must be a positive integer number of bytes, got ${typeof max === 'number' ? String(max) : describeType(max, 'json')}; ` +
          "match the broker's message size limit (Kafka's message.max.bytes) or leave it out for 1_000_000",
      );
    }
    this.store = store;
    this.#maxValueBytes = max;
  }

  /**
   * From now on, `publish()` inside `tx` collects its records instead of
   * appending them; `appendCollected(tx)` appends them all, partition by
   * partition in ascending order. The pipeline does this per batch: one
   * append per partition instead of one per message, and every transaction
   * takes the partitions' counters in the same order, so two workers never
   * wait on each other's counters in opposite orders (a deadlock the
   * database would break only after its timeout). Records collected but not
   * yet appended are not visible to queries inside `tx`.
   */
  collect(tx: Transaction<H>): void {
    checkTransaction(tx);
    if (!this.#collecting.has(tx)) this.#collecting.set(tx, new Map());
  }

  /** Appends what `publish()` collected in `tx` since `collect(tx)` and stops collecting. */
  async appendCollected(tx: Transaction<H>): Promise<void> {
    const collected = this.#collecting.get(tx);
    if (collected === undefined) return;
    this.#collecting.delete(tx);
    if (collected.size > 0) await this.#append(tx, collected);
  }

  async #append(tx: Transaction<H>, byPartition: ReadonlyMap<number, PendingRecord[]>): Promise<void> {
    // Ascending partition order: two publishers never wait on each other's counters in opposite orders.
    for (const p of [...byPartition.keys()].sort((a, b) => a - b)) {
      await this.store.append(tx.handle, p, byPartition.get(p) as PendingRecord[]);
    }
    // Relays waiting in this process wake once the records are committed, not at their next poll.
    const store = this.store;
    if (store.notifyLocal !== undefined) tx.afterCommit(() => store.notifyLocal?.());
  }

  /**
   * Appends messages inside `tx`. Returns their outbox ids. Messages with a
   * key go to the partition of the key, so one key keeps its order.
   *
   * @throws {@link txkit!ConfigError | ConfigError} for a malformed message (no topic, a non-string key or header,
   *   a value over `maxValueBytes`, a `txkit-outbox-id` header set by the caller); nothing is appended then.
   * @throws {@link txkit!TransactionStateError | TransactionStateError} when `tx` is no longer active.
   *   The publish is tracked in `tx`: if the caller does not await it, the
   *   commit is refused (code PENDING_WORK) and the unit rolled back, so the
   *   business rows never commit without their messages.
   */
  publish(tx: Transaction<H>, messages: OutboxMessage | readonly OutboxMessage[]): Promise<string[]> {
    // Tracked in `tx`: a publish the caller forgot to await stops the commit instead of missing from it.
    return trackWork(tx, this.#publish(tx, messages));
  }

  async #publish(tx: Transaction<H>, messages: OutboxMessage | readonly OutboxMessage[]): Promise<string[]> {
    checkTransaction(tx);
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
    const collected = this.#collecting.get(tx);
    if (collected !== undefined) {
      for (const [p, records] of byPartition) {
        const bucket = collected.get(p);
        if (bucket === undefined) collected.set(p, records);
        else bucket.push(...records);
      }
      return ids;
    }
    await this.#append(tx, byPartition);
    return ids;
  }

  #toRecord(m: OutboxMessage, index: number, now: number): PendingRecord {
    const where = `outbox.publish() message ${index}`;
    if (typeof m !== 'object' || m === null) throw new ConfigError(`${where} must be an object { topic, key?, value, headers? }`);
    if (typeof m.topic !== 'string' || m.topic.length === 0 || m.topic.length > 249) {
      throw new ConfigError(`${where} needs a topic name of 1 to 249 characters, got ${JSON.stringify(m.topic)}`);
    }
    if (m.key !== undefined && m.key !== null && typeof m.key !== 'string') {
      throw new ConfigError(`${where}.key must be a string or null, got ${describeType(m.key, 'json')}; convert it first (e.g. String(id))`);
    }
    if (m.value !== null && typeof m.value !== 'string' && !Buffer.isBuffer(m.value)) {
      throw new ConfigError(`${where}.value must be a string, a Buffer or null, got ${typeof m.value}; serialize objects first`);
    }
    const value = m.value === null ? null : Buffer.isBuffer(m.value) ? m.value : Buffer.from(m.value);
    if (value !== null && value.length > this.#maxValueBytes) {
      throw new ConfigError(`${where}.value is ${value.length} bytes, over maxValueBytes=${this.#maxValueBytes}; store large payloads elsewhere and publish a reference`);
    }
    if (m.headers !== undefined && (typeof m.headers !== 'object' || m.headers === null || Array.isArray(m.headers))) {
      throw new ConfigError(`${where}.headers must be an object of string values such as { 'trace-id': 'abc' }, got ${describeType(m.headers, 'json')}`);
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(m.headers ?? {})) {
      if (typeof v !== 'string') {
        throw new ConfigError(`${where}.headers['${k}'] must be a string, got ${describeType(v, 'json')}; convert header values to strings (e.g. String(n))`);
      }
      if (k === OUTBOX_ID_HEADER) {
        throw new ConfigError(`${where}.headers['${OUTBOX_ID_HEADER}'] is set by the outbox to each record's id; remove it from the message`);
      }
      headers[k] = v;
    }
    const id = randomUUID();
    headers[OUTBOX_ID_HEADER] = id;
    return { id, topic: m.topic, key: m.key ?? null, value, headers, createdAt: now };
  }
}

/** publish() writes through the transaction's handle: it must be a transaction that is still running. */
function checkTransaction(tx: unknown): void {
  if (typeof tx !== 'object' || tx === null || !('handle' in tx) || !('state' in tx)) {
    throw new ConfigError(
      `outbox.publish(tx, messages) needs the running transaction as its first argument, got ${describeType(tx, 'json')}; ` +
        'call it inside db.withTransaction(async (tx) => outbox.publish(tx, ...))',
    );
  }
  const { state } = tx as { state: unknown };
  if (state !== 'active') {
    throw new TransactionStateError(
      `outbox.publish() is not allowed: the transaction is ${String(state)}, so the messages could not commit with it; ` +
        'publish inside the withTransaction callback, before it returns',
      { state: String(state), method: 'publish' },
    );
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
