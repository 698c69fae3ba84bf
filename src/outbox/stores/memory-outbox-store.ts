import { randomUUID } from 'node:crypto';
import type { MemoryStore, MemoryTxHandle } from '../../adapters/memory/index.js';
import { InboxFencedError } from '../outbox-errors.js';
import { wait } from '../../core/backoff.js';
import type {
  DeadLetter,
  InboxMove,
  InboxPartition,
  LeaseMember,
  LeaseRequest,
  OutboxRecord,
  OutboxStatus,
  OutboxStore,
  PartitionLease,
  PendingRecord,
  RelayPosition,
} from '../outbox-types.js';
import { checkGroup, checkHeartbeat, checkLeaseRelease, checkLeaseRequest, checkMember, leaseExpiry, sortLeases, sortMembers, takeLease } from './leases.js';
import type { StoredLease } from './leases.js';
import { checkRelayId, deleteRelayed, positionsOf, relayStatuses, relayedByAll } from './relay-positions.js';
import type { RelayPositions } from './relay-positions.js';

/** The outbox id of each memory store, made on first use. */
const memoryOutboxIds = new WeakMap<MemoryStore, string>();

/**
 * The outbox, inbox, dead letters and partition leases kept in the memory
 * backend's store: for tests, demos and services whose state already lives
 * there. The partition counter is a key like any other, so concurrent
 * publishers conflict and one reruns, which keeps sequence order equal to
 * commit order; a lease is a key too, taken in a transaction of its own, so
 * of two workers asking at once one reruns and finds it taken.
 */
export class MemoryOutboxStore implements OutboxStore<MemoryTxHandle> {
  readonly partitions: number;
  readonly #store: MemoryStore;
  /** Wakes of the waits in progress, which close() ends. */
  readonly #waiting = new Set<() => void>();

  /**
   * @param store - the memory backend's store the records, positions, dead letters and leases are kept in.
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
    const counter = counterKey(partition);
    const last = ((await handle.get(counter)) as number | undefined) ?? 0;
    await handle.set(counter, last + records.length);
    for (const [i, r] of records.entries()) {
      await handle.set(`outbox/${partition}/seq/${last + 1 + i}`, { ...r, value: r.value === null ? null : r.value.toString('base64') });
    }
  }

  /** The outbox's id: one per MemoryStore, shared by every MemoryOutboxStore over it. */
  async outboxId(): Promise<string> {
    let id = memoryOutboxIds.get(this.#store);
    if (id === undefined) memoryOutboxIds.set(this.#store, (id = `memory:${randomUUID()}`));
    return id;
  }

  async read(partition: number, afterSeq: number, limit: number): Promise<OutboxRecord[]> {
    const out: OutboxRecord[] = [];
    // Cleanup deletes from the front: a reader from before the first row left (a relay id that is behind) starts at it.
    const first = this.#store.get(`outbox/${partition}/seq/${afterSeq + 1}`) !== undefined ? afterSeq + 1 : this.#firstAfter(partition, afterSeq);
    if (first === undefined) return out;
    for (let seq = first; out.length < limit; seq++) {
      const r = this.#store.get(`outbox/${partition}/seq/${seq}`) as (Omit<PendingRecord, 'value'> & { value: string | null }) | undefined;
      if (r === undefined) break;
      out.push({ ...r, partition, seq, value: r.value === null ? null : Buffer.from(r.value, 'base64') });
    }
    return out;
  }

  #firstAfter(partition: number, afterSeq: number): number | undefined {
    const prefix = `outbox/${partition}/seq/`;
    let first: number | undefined;
    for (const key of this.#store.keys(prefix)) {
      const seq = Number(key.slice(prefix.length));
      if (seq > afterSeq && (first === undefined || seq < first)) first = seq;
    }
    return first;
  }

  async markRelayed({ relayId, partition, seq }: RelayPosition): Promise<void> {
    const key = relayKey(checkRelayId(relayId, 'markRelayed'), partition);
    if (((this.#store.get(key) as number | undefined) ?? -1) >= seq) return;
    // Outside any business transaction: a hint for status and cleanup only.
    await this.#write(key, seq);
  }

  async registerRelay(relayId: string): Promise<void> {
    checkRelayId(relayId, 'registerRelay');
    for (let p = 0; p < this.partitions; p++) {
      if (this.#store.get(relayKey(relayId, p)) === undefined) await this.#write(relayKey(relayId, p), 0);
    }
  }

  async removeRelay(relayId: string): Promise<boolean> {
    const keys = this.#store.keys(`${RELAYS}${encodeURIComponent(checkRelayId(relayId, 'removeRelay'))}/`);
    for (const key of keys) await this.#write(key, undefined);
    return keys.length > 0;
  }

  async cleanup(olderThanMs: number): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    return deleteRelayed(this.#positions(), this.partitions, async (p, relayed) => {
      let deleted = 0;
      for (const key of this.#store.keys(`outbox/${p}/seq/`)) {
        const seq = Number(key.slice(`outbox/${p}/seq/`.length));
        const r = this.#store.get(key) as PendingRecord;
        if (seq <= relayed && r.createdAt < cutoff) {
          await this.#write(key, undefined);
          deleted += 1;
        }
      }
      return deleted;
    });
  }

  async status(): Promise<OutboxStatus> {
    const now = Date.now();
    const positions = this.#positions();
    const pendingByTopic: Record<string, number> = {};
    const partitions = [];
    const published = new Map<number, number>();
    for (let p = 0; p < this.partitions; p++) {
      const count = (this.#store.get(counterKey(p)) as number | undefined) ?? 0;
      published.set(p, count);
      const relayed = relayedByAll(positions, p) ?? 0;
      let oldest: number | undefined;
      for (let seq = relayed + 1; seq <= count; seq++) {
        const r = this.#store.get(`outbox/${p}/seq/${seq}`) as PendingRecord | undefined;
        if (r === undefined) continue;
        oldest ??= r.createdAt;
        pendingByTopic[r.topic] = (pendingByTopic[r.topic] ?? 0) + 1;
      }
      partitions.push({ partition: p, published: count, relayed, pending: count - relayed, oldestPendingAgeMs: oldest === undefined ? undefined : now - oldest });
    }
    return {
      partitions,
      relays: relayStatuses(positions, published),
      pendingByTopic,
      deadLetters: this.#store.keys('dead/').length,
      leases: await this.leases(),
    };
  }

  #positions(): RelayPositions {
    return positionsOf(
      this.#store.keys(RELAYS).map((key) => {
        const [relayId, partition] = key.slice(RELAYS.length).split('/') as [string, string];
        return { relayId: decodeURIComponent(relayId), partition: Number(partition), seq: this.#store.get(key) as number };
      }),
    );
  }

  async inboxPosition(handle: MemoryTxHandle | undefined, { consumer, source, partition }: InboxPartition): Promise<number | undefined> {
    const key = inboxKey(consumer, source, partition);
    return (handle !== undefined ? await handle.get(key) : this.#store.get(key)) as number | undefined;
  }

  async advanceInbox(handle: MemoryTxHandle, { consumer, source, partition, expected, next }: InboxMove): Promise<void> {
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

  async heartbeat(member: { readonly group: string; readonly owner: string; readonly ttlMs: number }): Promise<LeaseMember[]> {
    const { group, owner, ttlMs } = checkHeartbeat(member, 'heartbeat');
    return this.#transact(async (handle) => {
      const now = Date.now();
      const own = memberKey(group, owner);
      const expiresAt = leaseExpiry(now, ttlMs);
      await handle.set(own, expiresAt);
      const members: LeaseMember[] = [{ owner, expiresAt }];
      for (const key of this.#store.keys(membersOf(group))) {
        if (key === own) continue;
        const until = (await handle.get(key)) as number | undefined;
        if (until === undefined) continue;
        if (until <= now) await handle.delete(key);
        else members.push({ owner: decodeURIComponent(key.slice(membersOf(group).length)), expiresAt: until });
      }
      return sortMembers(members);
    });
  }

  async acquireLease(request: LeaseRequest): Promise<PartitionLease | undefined> {
    const checked = checkLeaseRequest(request, 'acquireLease');
    const key = leaseKey(checked.group, checked.partition);
    // The lease key is read and written in one transaction: of two workers asking at once, the
    // one committing second conflicts, reruns, and sees the first one's lease.
    return this.#transact(async (handle) => {
      const lease = takeLease((await handle.get(key)) as StoredLease | undefined, checked, Date.now());
      if (lease !== undefined) await handle.set(key, { owner: lease.owner, epoch: lease.epoch, expiresAt: lease.expiresAt } satisfies StoredLease);
      return lease;
    });
  }

  async releaseLease(lease: Pick<PartitionLease, 'group' | 'partition' | 'owner' | 'epoch'>): Promise<boolean> {
    const { group, partition, owner, epoch } = checkLeaseRelease(lease, 'releaseLease');
    const key = leaseKey(group, partition);
    return this.#transact(async (handle) => {
      const current = (await handle.get(key)) as StoredLease | undefined;
      if (current === undefined || current.owner !== owner || current.epoch !== epoch) return false;
      await handle.set(key, { owner: '', epoch, expiresAt: 0 } satisfies StoredLease);
      return true;
    });
  }

  async leaveGroup(member: { readonly group: string; readonly owner: string }): Promise<void> {
    const { group, owner } = checkMember(member, 'leaveGroup');
    await this.#transact(async (handle) => {
      await handle.delete(memberKey(group, owner));
      for (const key of this.#store.keys(leasesOf(group))) {
        const current = (await handle.get(key)) as StoredLease | undefined;
        if (current?.owner === owner) await handle.set(key, { owner: '', epoch: current.epoch, expiresAt: 0 } satisfies StoredLease);
      }
    });
  }

  async leases(group?: string): Promise<PartitionLease[]> {
    const prefix = group === undefined ? LEASES : leasesOf(checkGroup(group, 'leases'));
    return sortLeases(
      this.#store.keys(prefix).map((key) => {
        const [encodedGroup, partition] = key.slice(LEASES.length).split('/') as [string, string];
        const { owner, epoch, expiresAt } = this.#store.get(key) as StoredLease;
        return { group: decodeURIComponent(encodedGroup), partition: Number(partition), owner, epoch, expiresAt };
      }),
    );
  }

  async waitForPublish(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    // Woken by a commit that appended records (it moved a partition's counter), as a NOTIFY is; not by the
    // relay's own marks, leases or anything else written to the same memory store.
    const counters = Array.from({ length: this.partitions }, (_, p) => counterKey(p));
    const seen = counters.map((key) => this.#store.versionOf(key));
    await wait(timeoutMs, signal, (wake) => {
      const off = this.#store.onCommit(() => {
        if (counters.some((key, i) => this.#store.versionOf(key) !== seen[i])) wake();
      });
      this.#waiting.add(wake);
      return () => {
        off();
        this.#waiting.delete(wake);
      };
    });
  }

  /** Every commit that appends records to the memory store, through any store object on it, ends the waits in progress. */
  hearsEveryCommit(): boolean {
    return true;
  }

  /** Ends the waits in progress; the memory store stays as it is. */
  async close(): Promise<void> {
    for (const wake of [...this.#waiting]) wake();
  }

  /** A one-key write in its own memory transaction. */
  async #write(key: string, value: unknown): Promise<void> {
    await this.#transact((handle) => (value === undefined ? handle.delete(key) : handle.set(key, value)));
  }

  /** Runs `fn` in a memory transaction of its own, rerun on a write conflict. */
  async #transact<T>(fn: (handle: MemoryTxHandle) => Promise<T>): Promise<T> {
    const { memoryTransactions } = await import('../../adapters/memory/index.js');
    const ctx = memoryTransactions({ store: this.#store, retry: CONFLICT_RETRY });
    try {
      return await ctx.withTransaction((tx) => fn(tx.handle));
    } finally {
      await ctx.close();
    }
  }
}

/** Reruns of a store's own transaction after a write conflict: at once, then briefly spaced. */
const CONFLICT_RETRY = { initialDelayMs: 1, maxDelayMs: 20 } as const;

/** The key of a partition's next sequence number, which every append moves. */
const counterKey = (partition: number): string => `outbox/${partition}/next`;
/** Where relay positions live: `outbox/relays/<relay id, URI-encoded>/<partition>` -> sequence. */
const RELAYS = 'outbox/relays/';

function relayKey(relayId: string, partition: number): string {
  return `${RELAYS}${encodeURIComponent(relayId)}/${partition}`;
}

/** Where leases live: `leases/<group, URI-encoded>/<partition>` -> {@link StoredLease}. */
const LEASES = 'leases/';

/** Where lease group members live: `lease-members/<group, URI-encoded>/<owner, URI-encoded>` -> when it lapses. */
const MEMBERS = 'lease-members/';

function leasesOf(group: string): string {
  return `${LEASES}${encodeURIComponent(group)}/`;
}

function leaseKey(group: string, partition: number): string {
  return `${leasesOf(group)}${partition}`;
}

function membersOf(group: string): string {
  return `${MEMBERS}${encodeURIComponent(group)}/`;
}

function memberKey(group: string, owner: string): string {
  return `${membersOf(group)}${encodeURIComponent(owner)}`;
}

function inboxKey(consumer: string, source: string, partition: number): string {
  return `inbox/${consumer}/${source}/${partition}`;
}
