import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ConfigError } from '../../core/index.js';
import type { MongoSessionLike } from '../../adapters/mongo/mongo-types.js';
import { InboxFencedError } from '../outbox-errors.js';
import { wait } from '../../core/backoff.js';
import { cachedUntilFailure } from '../../core/cached.js';
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
import { checkGroup, checkHeartbeat, checkLeaseRelease, checkLeaseRequest, checkMember, leaseExpiry, sortLeases, sortMembers } from './leases.js';
import { checkRelayId, deleteRelayed, positionsOf, relayStatuses, relayedByAll } from './relay-positions.js';
import type { RelayPositions } from './relay-positions.js';
import type { MongoChangeStreamLike, MongoCollectionLike, MongoDbLike, MongoDocumentLike, MongoOutboxCollections, MongoOutboxStoreOptions, MongoOutboxWakeMode } from './mongo-outbox-types.js';
import { codeOf, fromPairs, hasServerCode, inboxId, leaseDocId, leaseMemberId, relayDocId, toBuffer, unwrapModifyResult } from './mongo-values.js';

export type {
  MongoChangeStreamLike,
  MongoCollectionLike,
  MongoDbLike,
  MongoDocumentLike,
  MongoOperationOptionsLike,
  MongoOutboxCollections,
  MongoOutboxStoreOptions,
  MongoOutboxWakeMode,
} from './mongo-outbox-types.js';

const DUPLICATE_KEY = 11000;
const NAMESPACE_EXISTS = 48;
const UPSERT_ATTEMPTS = 5;

/** Schema versions, applied in order; each step must be safe to run again and concurrently. */
const MIGRATIONS: readonly ((db: MongoDbLike, c: MongoOutboxCollections) => Promise<void>)[] = [
  async (db, c) => {
    // Collections exist before any transaction writes them: MongoDB before 4.4 cannot create one
    // inside a transaction, and two transactions creating the same one implicitly conflict.
    for (const name of Object.values(c)) {
      await db.createCollection(name).catch((err: unknown) => {
        if (codeOf(err) !== NAMESPACE_EXISTS) throw err;
      });
    }
    await db.collection(c.outbox).createIndex({ partition: 1, seq: 1 }, { name: 'txkit_partition_seq', unique: true });
    await db.collection(c.deadLetters).createIndex({ consumer: 1, createdAt: 1 }, { name: 'txkit_consumer_created' });
  },
  async (db, c) => {
    // Progress is kept per relay id now; the one mark per partition of version 1 (`{ _id: partition, seq }`)
    // did not say whose it was. A relay id reappears when it runs, and until then cleanup deletes nothing.
    await db.collection(c.relayed).deleteMany({ relayId: { $exists: false } });
  },
  async (db, c) => {
    // Partition leases and the members of lease groups, for workers that share partitions.
    for (const name of [c.leases, c.leaseMembers]) {
      await db.createCollection(name).catch((err: unknown) => {
        if (codeOf(err) !== NAMESPACE_EXISTS) throw err;
      });
    }
  },
];

/**
 * Outbox, inbox and dead letters in MongoDB collections, written through the
 * ClientSession of a `mongoTransactions` transaction (`tx.handle`), and the
 * partition leases of workers that share partitions (written outside any
 * transaction, one atomic document write each). Needs a replica set or
 * sharded cluster (transactions); change streams wake relays in other
 * processes when the deployment offers them.
 *
 * Sequence numbers follow commit order without gaps. Each partition has a
 * counter document that a publishing transaction increments ($inc) before it
 * inserts its records. MongoDB lets only one open transaction write a
 * document: a second publisher writing the counter while the first is open,
 * or writing it after the first committed but from a snapshot taken before
 * that commit, gets WriteConflict (TransientTransactionError), is aborted and
 * reruns from the start. So two publishers of a partition that both commit
 * never overlap: the later one's snapshot already holds the earlier one's
 * counter value, it takes the following numbers, and it commits after. An
 * aborted publisher's increment disappears with it, leaving no gap. The relay
 * can therefore read `seq > position` and never skip a record that commits
 * late (the trap of ObjectIds or timestamps, which become visible out of
 * order).
 */
export class MongoOutboxStore implements OutboxStore<MongoSessionLike> {
  readonly partitions: number;
  /** Names of the store's collections. */
  readonly collections: Readonly<MongoOutboxCollections>;
  readonly #db: MongoDbLike;
  readonly #local = new EventEmitter();
  readonly #useChangeStreams: boolean;
  readonly #readConcern: 'majority' | 'local';
  readonly #onError: (err: unknown) => void;
  #stream: MongoChangeStreamLike | undefined;
  #mode: MongoOutboxWakeMode = 'idle';
  /** A wake arrived while nobody waited: the next wait returns at once instead of missing it. */
  #missed = false;
  #migrating: Promise<void> = Promise.resolve();

  constructor(db: MongoDbLike, options: MongoOutboxStoreOptions = {}) {
    if (typeof (db as Partial<MongoDbLike> | null | undefined)?.collection !== 'function' || typeof db.createCollection !== 'function') {
      throw new ConfigError("mongoOutboxStore(db) needs a Db of the 'mongodb' driver, such as client.db('app')", { backend: 'mongodb' });
    }
    const { collectionPrefix = 'txkit_', partitions = 1, changeStreams = true, readConcern = 'majority', onError } = options;
    if (typeof collectionPrefix !== 'string' || !/^[a-z_][a-z0-9_]{0,40}$/i.test(collectionPrefix)) {
      throw new ConfigError(`collectionPrefix must be letters, digits and underscores (at most 41), got '${String(collectionPrefix)}'`, { backend: 'mongodb' });
    }
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > 1024) {
      throw new ConfigError(`partitions must be an integer from 1 to 1024, got ${String(partitions)}`, { backend: 'mongodb' });
    }
    if (typeof changeStreams !== 'boolean') {
      throw new ConfigError(`changeStreams must be a boolean, got ${typeof changeStreams}`, { backend: 'mongodb' });
    }
    if (readConcern !== 'majority' && readConcern !== 'local') {
      throw new ConfigError(`readConcern must be 'majority' or 'local', got ${JSON.stringify(readConcern)}`, { backend: 'mongodb' });
    }
    this.#db = db;
    this.#readConcern = readConcern;
    this.partitions = partitions;
    this.collections = Object.freeze({
      outbox: `${collectionPrefix}outbox`,
      partitions: `${collectionPrefix}outbox_partitions`,
      relayed: `${collectionPrefix}outbox_relayed`,
      inbox: `${collectionPrefix}inbox`,
      deadLetters: `${collectionPrefix}dead_letters`,
      leases: `${collectionPrefix}leases`,
      leaseMembers: `${collectionPrefix}lease_members`,
      schema: `${collectionPrefix}schema`,
    });
    this.#useChangeStreams = changeStreams;
    if (!changeStreams) this.#mode = 'polling';
    this.#onError = onError ?? ((err) => process.emitWarning(`txkit outbox: ${err instanceof Error ? err.message : String(err)}`, { code: 'TXKIT_OUTBOX' }));
    this.#local.setMaxListeners(0);
  }

  /** How waits learn of commits made by other processes; see MongoOutboxWakeMode. */
  get wakeMode(): MongoOutboxWakeMode {
    return this.#mode;
  }

  migrate(): Promise<void> {
    // One migration at a time per store in this process; other processes only ever repeat idempotent steps.
    this.#migrating = this.#migrating.catch(() => undefined).then(() => this.#migrate());
    return this.#migrating;
  }

  async #migrate(): Promise<void> {
    const c = this.collections;
    const schema = this.#coll('schema');
    const current = await schema.findOne({ _id: 'outbox' });
    for (let version = Number(current?.version ?? 0); version < MIGRATIONS.length; version++) {
      await (MIGRATIONS[version] as (db: MongoDbLike, c: MongoOutboxCollections) => Promise<void>)(this.#db, c);
      // $max: a slower concurrent migration never moves the version back.
      await this.#upsert('schema', { _id: 'outbox' }, { $max: { version: version + 1 } });
    }
    for (let p = 0; p < this.partitions; p++) {
      await this.#upsert('partitions', { _id: p }, { $setOnInsert: { nextSeq: 0 } });
    }
  }

  async append(handle: MongoSessionLike, partition: number, records: readonly PendingRecord[]): Promise<void> {
    if (records.length === 0) return;
    // Writing the counter makes concurrent publishers of this partition conflict: see the class comment.
    const result = await this.#coll('partitions').findOneAndUpdate(
      { _id: partition },
      { $inc: { nextSeq: records.length } },
      { session: handle, returnDocument: 'after', includeResultMetadata: false },
    );
    const counter = unwrapModifyResult(result);
    if (counter === null) {
      throw new ConfigError(
        `outbox partition ${partition} does not exist in ${this.collections.partitions}: run migrate() (txkit migrate) with partitions >= ${partition + 1}`,
        { backend: 'mongodb' },
      );
    }
    const first = Number(counter.nextSeq) - records.length + 1;
    const docs = records.map((r, i) => ({
      _id: r.id,
      partition,
      seq: first + i,
      topic: r.topic,
      key: r.key,
      value: r.value,
      headers: Object.entries(r.headers),
      createdAt: r.createdAt,
    }));
    await this.#coll('outbox').insertMany(docs, { session: handle, ordered: true });
  }

  /**
   * The outbox's id, kept in its schema collection (`{ _id: 'outbox-id', id }`),
   * chosen by the first store that asked; schemas of earlier versions get it
   * on first use.
   */
  outboxId(): Promise<string> {
    return this.#outboxId();
  }

  readonly #outboxId = cachedUntilFailure(() => this.#readOutboxId());

  async #readOutboxId(): Promise<string> {
    await this.#upsert('schema', { _id: 'outbox-id' }, { $setOnInsert: { id: randomUUID() } });
    const doc = await this.#coll('schema').findOne({ _id: 'outbox-id' });
    if (typeof doc?.id !== 'string') throw new ConfigError(`the outbox id document is missing from ${this.collections.schema}: run migrate() (txkit migrate)`, { backend: 'mongodb' });
    return `mongodb:${doc.id}`;
  }

  async read(partition: number, afterSeq: number, limit: number): Promise<OutboxRecord[]> {
    // Majority reads (the default): a record the relay sends can never be rolled back by a failover afterwards.
    const docs = await this.#coll('outbox')
      .find({ partition, seq: { $gt: afterSeq } }, { sort: { seq: 1 }, limit, readConcern: { level: this.#readConcern } })
      .toArray();
    return docs.map((d) => ({
      id: String(d._id),
      partition: Number(d.partition),
      seq: Number(d.seq),
      topic: String(d.topic),
      key: d.key === null || d.key === undefined ? null : String(d.key),
      value: toBuffer(d.value),
      headers: fromPairs(d.headers),
      createdAt: Number(d.createdAt),
    }));
  }

  async markRelayed({ relayId, partition, seq }: RelayPosition): Promise<void> {
    checkRelayId(relayId, 'markRelayed');
    // A document apart from the counter, so this write never conflicts with a publishing transaction; $max never moves it back.
    await this.#upsert('relayed', { _id: relayDocId(relayId, partition) }, { $max: { seq }, $setOnInsert: { relayId, partition } });
  }

  async registerRelay(relayId: string): Promise<void> {
    checkRelayId(relayId, 'registerRelay');
    for (let p = 0; p < this.partitions; p++) {
      await this.#upsert('relayed', { _id: relayDocId(relayId, p) }, { $setOnInsert: { relayId, partition: p, seq: 0 } });
    }
  }

  async removeRelay(relayId: string): Promise<boolean> {
    const result = await this.#coll('relayed').deleteMany({ relayId: checkRelayId(relayId, 'removeRelay') });
    return result.deletedCount > 0;
  }

  async cleanup(olderThanMs: number): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    return deleteRelayed(
      await this.#positions(),
      this.partitions,
      async (p, upTo) => (await this.#coll('outbox').deleteMany({ partition: p, seq: { $lte: upTo }, createdAt: { $lt: cutoff } })).deletedCount,
    );
  }

  async status(): Promise<OutboxStatus> {
    const counters = await this.#coll('partitions').find({}, { sort: { _id: 1 } }).toArray();
    const positions = await this.#positions();
    const pendingByTopic: Record<string, number> = {};
    const now = Date.now();
    const partitions = [];
    const published = new Map<number, number>();
    for (const counter of counters) {
      const partition = Number(counter._id);
      const count = Number(counter.nextSeq);
      published.set(partition, count);
      const relayed = relayedByAll(positions, partition) ?? 0;
      const groups = await this.#coll('outbox')
        .aggregate([
          { $match: { partition, seq: { $gt: relayed } } },
          { $group: { _id: '$topic', n: { $sum: 1 }, oldest: { $min: '$createdAt' } } },
        ])
        .toArray();
      let oldest: number | undefined;
      for (const g of groups) {
        const topic = String(g._id);
        pendingByTopic[topic] = (pendingByTopic[topic] ?? 0) + Number(g.n);
        const o = Number(g.oldest);
        if (oldest === undefined || o < oldest) oldest = o;
      }
      partitions.push({ partition, published: count, relayed, pending: count - relayed, oldestPendingAgeMs: oldest === undefined ? undefined : now - oldest });
    }
    const deadLetters = await this.#coll('deadLetters').countDocuments({});
    return { partitions, relays: relayStatuses(positions, published), pendingByTopic, deadLetters, leases: await this.leases() };
  }

  async inboxPosition(handle: MongoSessionLike | undefined, { consumer, source, partition }: InboxPartition): Promise<number | undefined> {
    const doc = await this.#coll('inbox').findOne({ _id: inboxId(consumer, source, partition) }, handle === undefined ? {} : { session: handle });
    return doc === null ? undefined : Number(doc.nextOffset);
  }

  async advanceInbox(handle: MongoSessionLike, { consumer, source, partition, expected, next }: InboxMove): Promise<void> {
    const _id = inboxId(consumer, source, partition);
    const now = Date.now();
    let moved: boolean;
    if (expected === undefined) {
      // No position yet: create it, unless another worker already has (then this one is fenced).
      const result = await this.#coll('inbox').updateOne({ _id }, { $setOnInsert: { nextOffset: next, updatedAt: now } }, { upsert: true, session: handle });
      moved = result.upsertedCount === 1;
    } else {
      // Compare-and-set: the stored position is this worker's fencing token.
      const result = await this.#coll('inbox').updateOne({ _id, nextOffset: expected }, { $set: { nextOffset: next, updatedAt: now } }, { session: handle });
      moved = result.matchedCount === 1;
    }
    if (!moved) throw new InboxFencedError(consumer, source, partition, expected);
  }

  async addDeadLetter(handle: MongoSessionLike, letter: Omit<DeadLetter, 'createdAt'>): Promise<void> {
    await this.#coll('deadLetters').insertOne(
      {
        consumer: letter.consumer,
        source: letter.source,
        partition: letter.partition,
        offset: letter.offset,
        key: letter.key,
        value: letter.value,
        headers: Object.entries(letter.headers),
        error: letter.error,
        attempts: letter.attempts,
        createdAt: Date.now(),
      },
      { session: handle },
    );
  }

  async deadLetters(consumer?: string): Promise<DeadLetter[]> {
    const docs = await this.#coll('deadLetters')
      .find(consumer === undefined ? {} : { consumer }, { sort: { createdAt: 1, _id: 1 } })
      .toArray();
    return docs.map((d) => ({
      consumer: String(d.consumer),
      source: String(d.source),
      partition: Number(d.partition),
      offset: Number(d.offset),
      key: d.key === null || d.key === undefined ? null : String(d.key),
      value: toBuffer(d.value),
      headers: fromPairs(d.headers),
      error: String(d.error),
      attempts: Number(d.attempts),
      createdAt: Number(d.createdAt),
    }));
  }

  async heartbeat(member: { readonly group: string; readonly owner: string; readonly ttlMs: number }): Promise<LeaseMember[]> {
    const { group, owner, ttlMs } = checkHeartbeat(member, 'heartbeat');
    const members = this.#coll('leaseMembers');
    const now = Date.now();
    await this.#upsert('leaseMembers', { _id: leaseMemberId(group, owner) }, { $set: { expiresAt: leaseExpiry(now, ttlMs) }, $setOnInsert: { group, owner } });
    await members.deleteMany({ group, expiresAt: { $lte: now } });
    const docs = await members.find({ group, expiresAt: { $gt: now } }).toArray();
    return sortMembers(docs.map((d) => ({ owner: String(d.owner), expiresAt: Number(d.expiresAt) })));
  }

  async acquireLease(request: LeaseRequest): Promise<PartitionLease | undefined> {
    const { group, partition, owner, ttlMs } = checkLeaseRequest(request, 'acquireLease');
    // Each step is one atomic single-document write, without an update pipeline: a renewal by the
    // owner (same epoch), else a takeover of a released or lapsed lease (one epoch higher), else the
    // partition's first lease (epoch 1). Of two workers inserting the first lease at once, one gets
    // a duplicate key and looks once more.
    const leases = this.#coll('leases');
    const _id = leaseDocId(group, partition);
    const after = { returnDocument: 'after', includeResultMetadata: false };
    for (let attempt = 1; ; attempt++) {
      const now = Date.now();
      const expiresAt = leaseExpiry(now, ttlMs);
      const doc =
        unwrapModifyResult(await leases.findOneAndUpdate({ _id, owner }, { $set: { expiresAt } }, after)) ??
        unwrapModifyResult(
          await leases.findOneAndUpdate({ _id, $or: [{ owner: '' }, { expiresAt: { $lte: now } }] }, { $set: { owner, expiresAt }, $inc: { epoch: 1 } }, after),
        );
      if (doc !== null) return String(doc.owner) === owner ? { group, partition, owner, epoch: Number(doc.epoch), expiresAt: Number(doc.expiresAt) } : undefined;
      // Neither matched: another owner holds a live lease, or the partition has none yet.
      if (attempt > 1) return undefined;
      try {
        await leases.insertOne({ _id, group, partition, owner, epoch: 1, expiresAt });
        return { group, partition, owner, epoch: 1, expiresAt };
      } catch (err) {
        if (codeOf(err) !== DUPLICATE_KEY) throw err;
      }
    }
  }

  async releaseLease(lease: Pick<PartitionLease, 'group' | 'partition' | 'owner' | 'epoch'>): Promise<boolean> {
    const { group, partition, owner, epoch } = checkLeaseRelease(lease, 'releaseLease');
    const result = await this.#coll('leases').updateOne({ _id: leaseDocId(group, partition), owner, epoch }, { $set: { owner: '', expiresAt: 0 } });
    return result.matchedCount > 0;
  }

  async leaveGroup(member: { readonly group: string; readonly owner: string }): Promise<void> {
    const { group, owner } = checkMember(member, 'leaveGroup');
    await this.#coll('leaseMembers').deleteMany({ _id: leaseMemberId(group, owner) });
    await this.#coll('leases').updateMany({ group, owner }, { $set: { owner: '', expiresAt: 0 } });
  }

  async leases(group?: string): Promise<PartitionLease[]> {
    const docs = await this.#coll('leases')
      .find(group === undefined ? {} : { group: checkGroup(group, 'leases') })
      .toArray();
    return sortLeases(
      docs.map((d) => ({ group: String(d.group), partition: Number(d.partition), owner: String(d.owner), epoch: Number(d.epoch), expiresAt: Number(d.expiresAt) })),
    );
  }

  /** Wakes this store's waits (the relays in this process) at once; Outbox calls it after a publishing transaction commits. */
  notifyLocal(): void {
    this.#wake();
  }

  async waitForPublish(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    this.#watch();
    if (this.#missed) {
      this.#missed = false;
      return;
    }
    await wait(timeoutMs, signal, (wake) => {
      this.#local.on('published', wake);
      return () => this.#local.off('published', wake);
    });
  }

  /** Closes the change stream and ends the waits in progress; the Db and its client stay open. */
  async close(): Promise<void> {
    this.#mode = 'closed';
    const stream = this.#stream;
    this.#stream = undefined;
    this.#local.emit('published');
    await stream?.close();
  }

  #wake(): void {
    if (this.#local.listenerCount('published') === 0) this.#missed = true;
    else this.#local.emit('published');
  }

  /**
   * Opens the change stream on the outbox collection once. Only inserts are
   * reported, reduced to their resume token. A deployment that refuses the
   * stream (a server error before the first batch: standalone mongod, no
   * $changeStream) puts the store in polling for good; a stream lost later
   * (a non-resumable error) is reopened by the next wait.
   */
  #watch(): void {
    if (!this.#useChangeStreams || this.#stream !== undefined || this.#mode === 'polling' || this.#mode === 'closed') return;
    let confirmed = false;
    let stream: MongoChangeStreamLike;
    try {
      stream = this.#coll('outbox').watch([{ $match: { operationType: 'insert' } }, { $project: { operationType: 1 } }]);
    } catch (err) {
      this.#refused(err);
      return;
    }
    this.#stream = stream;
    this.#mode = 'opening';
    stream.on('resumeTokenChanged', () => {
      if (confirmed || this.#stream !== stream) return;
      confirmed = true;
      this.#mode = 'change-stream';
      // Records committed between the caller's last read and the stream's start are not reported
      // by the stream: one wake makes the caller read again, after which the stream covers it.
      this.#wake();
    });
    stream.on('change', () => this.#wake());
    // The driver emits 'close' and 'error' for one failure in either order; whichever comes first
    // retires the stream, and a later stream opened meanwhile is left alone.
    const retire = (): boolean => {
      if (this.#stream !== stream) return false;
      this.#stream = undefined;
      return true;
    };
    stream.on('error', (err: unknown) => {
      if (this.#mode === 'closed') return;
      const current = retire();
      void stream.close().catch(() => undefined);
      if (!confirmed && hasServerCode(err)) {
        if (this.#stream === undefined) this.#refused(err);
        return;
      }
      if (current) this.#mode = 'idle';
      this.#onError(err);
      if (current) this.#lost(confirmed);
    });
    // Also the end of a stream the driver closed on its own (after an invalidate event: the collection was dropped or renamed).
    stream.on('close', () => {
      if (this.#mode === 'closed' || !retire()) return;
      this.#mode = 'idle';
      this.#lost(confirmed);
    });
  }

  /**
   * A working stream is gone: waiters wake, read, and their next wait opens
   * a new stream. A stream that never started wakes nobody, so a deployment
   * failing at once cannot spin the relay; its waits end at their timeout.
   */
  #lost(confirmed: boolean): void {
    if (confirmed) this.#wake();
  }

  #refused(err: unknown): void {
    this.#mode = 'polling';
    this.#onError(
      new ConfigError(
        `the MongoDB deployment refused a change stream on '${this.collections.outbox}' (${err instanceof Error ? err.message : String(err)}); ` +
          "relays of this store now poll at their pollIntervalMs; use a replica set for commit wake-ups, or pass changeStreams: false to poll without this warning",
        { backend: 'mongodb', cause: err },
      ),
    );
  }

  async #positions(): Promise<RelayPositions> {
    const docs = await this.#coll('relayed').find({}).toArray();
    return positionsOf(
      docs
        .filter((d) => typeof d.relayId === 'string')
        .map((d) => ({ relayId: d.relayId as string, partition: Number(d.partition), seq: Number(d.seq) })),
    );
  }

  /** An upsert that tolerates a concurrent migrate() inserting the same document first. */
  async #upsert(name: keyof MongoOutboxCollections, filter: MongoDocumentLike, update: MongoDocumentLike): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#coll(name).updateOne(filter, update, { upsert: true });
        return;
      } catch (err) {
        // The other insert won: the document exists now, so the next attempt updates it.
        if (codeOf(err) !== DUPLICATE_KEY || attempt >= UPSERT_ATTEMPTS) throw err;
      }
    }
  }

  #coll(name: keyof MongoOutboxCollections): MongoCollectionLike {
    return this.#db.collection(this.collections[name]);
  }
}

/**
 * Creates the MongoDB store on `client.db(name)`; call `migrate()` once before use.
 * Publishers and pipelines write it through `mongoTransactions(client)` (`tx.handle` is the session).
 *
 * @throws {@link txkit!ConfigError | ConfigError} when `db` is not a Db of the MongoDB driver or an option is out of range
 *   (`collectionPrefix` of letters, digits and `_` up to 41 characters, `partitions` from 1 to 1024).
 *
 * @example
 * ```ts
 * const store = mongoOutboxStore(client.db('shop'), { partitions: 4 });
 * await store.migrate();
 * const db = mongoTransactions(client);
 * const outbox = new Outbox(store);
 * await db.withTransaction(async (tx) => {
 *   await client.db('shop').collection('orders').insertOne({ _id: 'o-1', total: 42 }, { session: tx.handle });
 *   await outbox.publish(tx, { topic: 'order-events', key: 'o-1', value: JSON.stringify({ type: 'created' }) });
 * });
 * ```
 */
export function mongoOutboxStore(db: MongoDbLike, options?: MongoOutboxStoreOptions): MongoOutboxStore {
  return new MongoOutboxStore(db, options);
}
