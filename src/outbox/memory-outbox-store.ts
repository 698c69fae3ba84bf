import type { MemoryStore, MemoryTxHandle } from '../adapters/memory/index.js';
import { InboxFencedError } from './outbox-errors.js';
import { waitForWake } from './wait.js';
import type { DeadLetter, OutboxRecord, OutboxStatus, OutboxStore, PendingRecord } from './outbox-types.js';

/**
 * The outbox, inbox and dead letters kept in the memory backend's store:
 * for tests, demos and services whose state already lives there. The
 * partition counter is a key like any other, so concurrent publishers
 * conflict and one reruns, which keeps sequence order equal to commit order.
 */
export class MemoryOutboxStore implements OutboxStore<MemoryTxHandle> {
  readonly partitions: number;
  readonly #store: MemoryStore;

  /**
   * @param store - the memory backend's store the records, positions and dead letters are kept in.
   * @param options - `partitions`: outbox partitions, records going to one by key hash (default 1).
   */
  constructor(store: MemoryStore, options: { partitions?: number } = {}) {
    this.#store = store;
    this.partitions = options.partitions ?? 1;
  }

  async migrate(): Promise<void> {
    // Nothing to create: keys appear on first write.
  }

  async append(handle: MemoryTxHandle, partition: number, records: readonly PendingRecord[]): Promise<void> {
    const counter = `outbox/${partition}/next`;
    const last = ((await handle.get(counter)) as number | undefined) ?? 0;
    await handle.set(counter, last + records.length);
    for (const [i, r] of records.entries()) {
      await handle.set(`outbox/${partition}/seq/${last + 1 + i}`, { ...r, value: r.value === null ? null : r.value.toString('base64') });
    }
  }

  async read(partition: number, afterSeq: number, limit: number): Promise<OutboxRecord[]> {
    const out: OutboxRecord[] = [];
    for (let seq = afterSeq + 1; out.length < limit; seq++) {
      const r = this.#store.get(`outbox/${partition}/seq/${seq}`) as (Omit<PendingRecord, 'value'> & { value: string | null }) | undefined;
      if (r === undefined) break;
      out.push({ ...r, partition, seq, value: r.value === null ? null : Buffer.from(r.value, 'base64') });
    }
    return out;
  }

  async markRelayed(partition: number, seq: number): Promise<void> {
    const key = `outbox/${partition}/relayed`;
    if (((this.#store.get(key) as number | undefined) ?? 0) >= seq) return;
    // Outside any business transaction: a hint for status and cleanup only.
    await this.#write(key, seq);
  }

  async cleanup(olderThanMs: number): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    let deleted = 0;
    for (let p = 0; p < this.partitions; p++) {
      const relayed = (this.#store.get(`outbox/${p}/relayed`) as number | undefined) ?? 0;
      for (const key of this.#store.keys(`outbox/${p}/seq/`)) {
        const seq = Number(key.slice(`outbox/${p}/seq/`.length));
        const r = this.#store.get(key) as PendingRecord;
        if (seq <= relayed && r.createdAt < cutoff) {
          await this.#write(key, undefined);
          deleted += 1;
        }
      }
    }
    return deleted;
  }

  async status(): Promise<OutboxStatus> {
    const now = Date.now();
    const pendingByTopic: Record<string, number> = {};
    const partitions = [];
    for (let p = 0; p < this.partitions; p++) {
      const published = (this.#store.get(`outbox/${p}/next`) as number | undefined) ?? 0;
      const relayed = (this.#store.get(`outbox/${p}/relayed`) as number | undefined) ?? 0;
      let oldest: number | undefined;
      for (let seq = relayed + 1; seq <= published; seq++) {
        const r = this.#store.get(`outbox/${p}/seq/${seq}`) as PendingRecord | undefined;
        if (r === undefined) continue;
        oldest ??= r.createdAt;
        pendingByTopic[r.topic] = (pendingByTopic[r.topic] ?? 0) + 1;
      }
      partitions.push({ partition: p, published, relayed, pending: published - relayed, oldestPendingAgeMs: oldest === undefined ? undefined : now - oldest });
    }
    return { partitions, pendingByTopic, deadLetters: this.#store.keys('dead/').length };
  }

  async inboxPosition(handle: MemoryTxHandle | undefined, consumer: string, source: string, partition: number): Promise<number | undefined> {
    const key = inboxKey(consumer, source, partition);
    return (handle !== undefined ? await handle.get(key) : this.#store.get(key)) as number | undefined;
  }

  async advanceInbox(handle: MemoryTxHandle, consumer: string, source: string, partition: number, expected: number | undefined, next: number): Promise<void> {
    const key = inboxKey(consumer, source, partition);
    if ((await handle.get(key)) !== expected) throw new InboxFencedError(consumer, source, partition, expected);
    await handle.set(key, next);
  }

  async addDeadLetter(handle: MemoryTxHandle, letter: Omit<DeadLetter, 'createdAt'>): Promise<void> {
    const createdAt = Date.now();
    const id = `${String(createdAt).padStart(15, '0')}-${letter.source}-${letter.partition}-${letter.offset}`;
    await handle.set(`dead/${id}`, { ...letter, value: letter.value?.toString('base64') ?? null, createdAt });
  }

  async deadLetters(consumer?: string): Promise<DeadLetter[]> {
    return this.#store
      .keys('dead/')
      .map((k) => this.#store.get(k) as Omit<DeadLetter, 'value'> & { value: string | null })
      .filter((d) => consumer === undefined || d.consumer === consumer)
      .map((d) => ({ ...d, value: d.value === null ? null : Buffer.from(d.value, 'base64') }));
  }

  waitForPublish(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return waitForWake(timeoutMs, signal, (wake) => this.#store.onCommit(wake));
  }

  async close(): Promise<void> {}

  /** A one-key write in its own memory transaction. */
  async #write(key: string, value: unknown): Promise<void> {
    const { memoryTransactions } = await import('../adapters/memory/index.js');
    const ctx = memoryTransactions({ store: this.#store });
    try {
      await ctx.withTransaction((tx) => (value === undefined ? tx.handle.delete(key) : tx.handle.set(key, value)));
    } finally {
      await ctx.close();
    }
  }
}

function inboxKey(consumer: string, source: string, partition: number): string {
  return `inbox/${consumer}/${source}/${partition}`;
}
