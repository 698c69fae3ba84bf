import type { MessageHandle, OutgoingMessage, Transaction, TransactionContext } from '../core/index.js';

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

/**
 * A message a pipeline set aside instead of processing: the message as it was
 * consumed, why it failed and how often it ran. Stored in the same database
 * transaction that moves the consumer's position past it.
 */
export interface DeadLetter {
  /** The pipeline's `consumer` name. */
  readonly consumer: string;
  /** Name of the source it was read from (`MessageSource.name`). */
  readonly source: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
  /** Why it was set aside: the last error (`Name: message`), or the reason of a check, e.g. `decode: ...`. */
  readonly error: string;
  /** Runs of the handler it had; 0 when a check or `decode` rejected it before any run. */
  readonly attempts: number;
  /** When it was stored, epoch milliseconds. */
  readonly createdAt: number;
}

/** Progress of one outbox partition, as {@link OutboxRecordStore.status} reports it. */
export interface OutboxPartitionStatus {
  readonly partition: number;
  /** Rows published (the partition's sequence). */
  readonly published: number;
  /**
   * Highest sequence every known relay id reported as sent: the lowest of
   * their positions (0 while no relay id is known). Rows up to here are what
   * cleanup may delete once past retention. A hint; the authority is each
   * relay's position in its broker.
   */
  readonly relayed: number;
  /** `published - relayed`: records some known relay id has not reported relayed yet. */
  readonly pending: number;
  /** Age of the oldest of those records, in ms. */
  readonly oldestPendingAgeMs: number | undefined;
}

/** Progress of one relay id, as {@link OutboxRecordStore.status} reports it. */
export interface OutboxRelayStatus {
  readonly relayId: string;
  /** Records of every partition this relay id has not reported relayed yet. */
  readonly pending: number;
  /** Its position per partition: `relayed` is the highest sequence it reported as sent (0 before its first). */
  readonly partitions: readonly { readonly partition: number; readonly relayed: number; readonly pending: number }[];
}

/** A snapshot of an outbox store: per-partition and per-relay progress, backlog per topic, the dead-letter count and the partition leases. */
export interface OutboxStatus {
  readonly partitions: readonly OutboxPartitionStatus[];
  /** Every relay id known to the store, by name. */
  readonly relays: readonly OutboxRelayStatus[];
  /** Records some known relay id has not reported relayed yet, per destination topic. */
  readonly pendingByTopic: Readonly<Record<string, number>>;
  /** Messages in the dead-letter store, of every consumer. */
  readonly deadLetters: number;
  /** Every partition lease the store holds (relays and pipeline workers sharing partitions), by group then partition. */
  readonly leases: readonly PartitionLease[];
}

/**
 * The outbox role of a store: appends records in the caller's transactions,
 * gives the relay the committed ones, keeps each relay id's progress for
 * status and cleanup, and wakes waiting relays. What {@link Outbox} and
 * {@link OutboxRelay} need. `H` is the handle of the database's transactions.
 */
export interface OutboxRecordStore<H> {
  readonly partitions: number;
  /** Creates or upgrades the schema; safe to run twice and concurrently. */
  migrate(): Promise<void>;
  /** Appends records inside the caller's transaction, taking the next sequence numbers of their partition. */
  append(handle: H, partition: number, records: readonly PendingRecord[]): Promise<void>;
  /** Committed records of a partition after `afterSeq`, in sequence order. */
  read(partition: number, afterSeq: number, limit: number): Promise<OutboxRecord[]>;
  /**
   * A stable id of this outbox (its tables or collections), made once and
   * kept with them, the same for every store object over them. Sinks keep it
   * beside each relay position, so a relay that reads a position written for
   * another outbox (two outboxes relaying to one broker under one relay id)
   * stops with a ConfigError instead of skipping this outbox's records.
   * Stores without it are not checked.
   */
  outboxId?(): Promise<string>;
  /**
   * Records that relay `relayId` sent a partition up to `seq` (a hint for
   * status and cleanup; it never moves back). Makes `relayId` known to the
   * store if it was not.
   */
  markRelayed(position: RelayPosition): Promise<void>;
  /**
   * Makes `relayId` known to the store at position 0 in the partitions where
   * it has none: from then on cleanup keeps every row it has not reported
   * relayed. The relay calls it before its first transaction.
   */
  registerRelay(relayId: string): Promise<void>;
  /** Forgets `relayId` and its positions, so cleanup stops waiting for it; true when it was known. Stop its relays first. */
  removeRelay(relayId: string): Promise<boolean>;
  /** Deletes records older than `olderThanMs` that every known relay id has reported relayed; returns how many. */
  cleanup(olderThanMs: number): Promise<number>;
  /** Reads the current progress of every partition and relay id, the backlog per topic and the dead-letter count (what `observeOutbox` exports), and the partition leases it holds (none for a store without the lease role). */
  status(): Promise<OutboxStatus>;
  /** Resolves early when something may have been published (LISTEN/NOTIFY, in-process commits); else after `timeoutMs`. */
  waitForPublish(timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /**
   * True when a `waitForPublish` called now ends on every commit of a
   * record made after the call, whatever process or store object commits
   * it (Postgres while its LISTEN connection is up and has not stayed quiet
   * for a whole wait since its last notification, the memory store). A
   * relay that read fewer records than it asked for then waits for the next
   * commit instead of reading once more to find nothing. Left out, or false
   * (MySQL, SQLite: only this store object's own commits wake a wait), the
   * relay reads again after every transaction that sent records.
   */
  hearsEveryCommit?(): boolean;
  /**
   * Wakes relays in this process after a commit: {@link Outbox} calls it once
   * a transaction that appended records has committed, so `waitForPublish`
   * waits in this process end at once. Stores that have their own
   * notification (LISTEN/NOTIFY, change streams) may still implement it, for
   * the relays of the publishing process; a store whose waits already hear
   * every commit (the memory store) leaves it out.
   */
  notifyLocal?(): void;
  /** Releases what the store opened itself (Postgres's LISTEN connection, MongoDB's change stream) and wakes waits in progress; the database client stays open. */
  close(): Promise<void>;
}

/**
 * One partition's lease in a group of workers that share partitions (the
 * relays of one relay id, the workers of one pipeline consumer): who owns
 * the partition now, until when, and under which epoch.
 */
export interface PartitionLease {
  /** The group of workers, e.g. `relay/<relayId>` or `pipeline/<consumer>`. */
  readonly group: string;
  readonly partition: number;
  /** The worker instance holding it; `''` once released. */
  readonly owner: string;
  /**
   * Grows by one each time the partition goes to an owner that did not hold
   * it (a new one, or any after a release): work done under an older epoch
   * belongs to a former owner.
   */
  readonly epoch: number;
  /** When it lapses unless renewed, epoch milliseconds of the clock of the worker that took or renewed it. */
  readonly expiresAt: number;
}

/** A live worker of a lease group, as {@link PartitionLeaseStore.heartbeat} reports it. */
export interface LeaseMember {
  readonly owner: string;
  /** When it counts as gone unless it beats again, epoch milliseconds. */
  readonly expiresAt: number;
}

/** A worker asking for, or renewing, a partition's lease for `ttlMs` from now. */
export interface LeaseRequest {
  readonly group: string;
  readonly partition: number;
  readonly owner: string;
  readonly ttlMs: number;
}

/**
 * The lease role of a store: the workers of a group (relays sharing a relay
 * id, pipeline workers sharing a consumer name) split the partitions between
 * them through leases in the database, so each partition has one owner at a
 * time and moves when its owner dies or another joins. Clocks of the workers
 * must agree far better than the leases' time to live.
 */
export interface PartitionLeaseStore {
  /**
   * Records `owner` as a live member of `group` until `ttlMs` from now,
   * forgets members whose time has passed, and returns the live members
   * (this one included), sorted by owner.
   */
  heartbeat(member: { readonly group: string; readonly owner: string; readonly ttlMs: number }): Promise<LeaseMember[]>;
  /**
   * Takes or renews a partition's lease for `ttlMs` from now: it succeeds
   * when the partition has no lease, its lease lapsed or was released, or
   * `owner` holds it already. Returns the lease (its epoch unchanged on a
   * renewal by the same owner, one higher when the owner changes), or
   * undefined while another owner holds it. Atomic: two workers asking at
   * once never both succeed.
   */
  acquireLease(request: LeaseRequest): Promise<PartitionLease | undefined>;
  /** Gives a lease up at once if `owner` still holds it under `epoch`; true when it did. */
  releaseLease(lease: Pick<PartitionLease, 'group' | 'partition' | 'owner' | 'epoch'>): Promise<boolean>;
  /** Removes `owner` from `group`'s members and releases every lease it holds (a clean shutdown). */
  leaveGroup(member: { readonly group: string; readonly owner: string }): Promise<void>;
  /** The leases of one group, or of every group, sorted by group then partition; released and lapsed ones included. */
  leases(group?: string): Promise<PartitionLease[]>;
}

/**
 * The inbox role of a store: each consumer's next offset per source
 * partition, moved in the transaction that commits the effects of the
 * messages before it. What {@link pipeline} reads and moves.
 */
export interface InboxStore<H> {
  /** The next offset this consumer reads in a source partition, as committed with its effects. */
  inboxPosition(handle: H | undefined, at: InboxPartition): Promise<number | undefined>;
  /** Moves the consumer's position from `expected` to `next` inside the caller's transaction, or throws if another worker moved it. */
  advanceInbox(handle: H, move: InboxMove): Promise<void>;
}

/** The dead-letter role of a store: messages a {@link pipeline} set aside, stored in the transaction that moves past them. */
export interface DeadLetterStore<H> {
  /** Stores a dead letter inside the caller's transaction, stamped with the current time. */
  addDeadLetter(handle: H, letter: Omit<DeadLetter, 'createdAt'>): Promise<void>;
  /** The stored dead letters, of one consumer or (without `consumer`) of all. */
  deadLetters(consumer?: string): Promise<DeadLetter[]>;
}

/**
 * Where the outbox, inbox, dead letters and partition leases live: a SQL
 * database, MongoDB or the memory store, in all four roles. `H` is the handle
 * of the database's transactions. A {@link pipeline} takes a whole
 * OutboxStore (it publishes through the outbox too, and its workers of one
 * consumer can split the source partitions through the leases); Outbox and
 * OutboxRelay take only the outbox role (a relay uses the lease role too when
 * the store has it, to share the partitions with the other relays of its
 * relay id).
 */
export interface OutboxStore<H> extends OutboxRecordStore<H>, InboxStore<H>, DeadLetterStore<H>, PartitionLeaseStore {}

/** A record before it has a sequence number. */
export interface PendingRecord {
  readonly id: string;
  readonly topic: string;
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
  readonly createdAt: number;
}

/** One relay id's place in one outbox partition: where its position is kept. */
export interface RelayPartition {
  /** The relay's `relayId`. */
  readonly relayId: string;
  /** The outbox partition. */
  readonly partition: number;
  /**
   * The store's `outboxId()`, when it has one: a sink writes it beside the
   * position and refuses a position written for another outbox (see
   * {@link checkPositionOwner}).
   */
  readonly outboxId?: string | undefined;
}

/** A relay id's position in one outbox partition: the highest sequence it sent there. */
export interface RelayPosition extends RelayPartition {
  readonly seq: number;
}

/** One consumer's place in one source partition: where its inbox position is kept. */
export interface InboxPartition {
  /** The pipeline's `consumer` name. */
  readonly consumer: string;
  /** Name of the source (`MessageSource.name`). */
  readonly source: string;
  /** The source partition. */
  readonly partition: number;
}

/** A compare-and-set of a consumer's inbox position: from `expected` (undefined: none stored yet) to `next`. */
export interface InboxMove extends InboxPartition {
  /** The position this worker believes is stored; another one means another worker moved it. */
  readonly expected: number | undefined;
  /** The next offset to read, stored in the caller's transaction. */
  readonly next: number;
}

/**
 * A broker the relay publishes to: its transaction context plus where the
 * relay keeps its position inside the broker's own transactions.
 */
export interface RelaySink<H extends MessageHandle = MessageHandle> {
  /** The broker's transactions, one context for every outbox partition. A sink with `contextFor` may leave it out. */
  readonly context?: TransactionContext<H>;
  /**
   * The context of one outbox partition's transactions, for a sink that
   * gives each partition its own (Kafka: a transactional.id per partition,
   * so the broker fences a partition's former owner). Used before `context`.
   */
  contextFor?(at: RelayPartition): TransactionContext<H>;
  /**
   * True when one identity carries every partition's transactions and fences
   * any other relay using it (a Kafka context with one transactional.id):
   * relays of one relay id cannot split the partitions, so a relay takes no
   * leases and a second one stands by.
   */
  readonly singleProducer?: boolean;
  /**
   * Forgets what the sink keeps about one relay partition between
   * transactions (a cached position, the partition's own producer): the
   * relay calls it when it starts and when it stops relaying a partition
   * under a lease, since another relay may move the partition in between.
   */
  resetPartition?(at: RelayPartition): Promise<void>;
  /** The position committed by the last relay transaction for this partition, as seen from inside `tx`. */
  readPosition(tx: Transaction<H>, at: RelayPartition): Promise<number | undefined>;
  /**
   * For a sink that keeps positions as messages: the message recording
   * `seq`, which the relay sends in the same `sendBatch` as the records (one
   * produce request, no extra round trip). Called before the batch is sent.
   */
  positionMessage?(tx: Transaction<H>, position: RelayPosition): { topic: string; messages: OutgoingMessage[] };
  /**
   * Writes the new position inside `tx`, so it commits with the messages or
   * not at all; called after the batch is sent. A sink with
   * `positionMessage` has already written it there and only does its
   * bookkeeping here.
   */
  writePosition(tx: Transaction<H>, position: RelayPosition): Promise<void>;
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
  /** Releases the source's readers; optional (the memory source has nothing to release). */
  close?(): Promise<void>;
}
