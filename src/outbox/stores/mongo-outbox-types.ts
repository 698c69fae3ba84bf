/** A BSON document as txkit writes and reads it. */
export type MongoDocumentLike = Record<string, unknown>;

/**
 * Options txkit passes to the driver's collection methods: `session` (the
 * transaction's ClientSession), `upsert`, `returnDocument`,
 * `includeResultMetadata`, `sort`, `limit`, `readConcern`, `ordered`. Typed
 * `unknown` because each driver version types them its own way; txkit only
 * passes values every supported version takes.
 */
export interface MongoOperationOptionsLike {
  session?: unknown;
  upsert?: unknown;
  returnDocument?: unknown;
  includeResultMetadata?: unknown;
  sort?: unknown;
  limit?: unknown;
  readConcern?: unknown;
  ordered?: unknown;
}

/** The subset of the driver's `ChangeStream` the store uses (an EventEmitter). */
export interface MongoChangeStreamLike {
  /** Listens for inserts (`change`), failures (`error`), the server's confirmation (`resumeTokenChanged`) and the end (`close`). */
  on(event: 'change' | 'error' | 'resumeTokenChanged' | 'close', listener: (value: never) => void): unknown;
  /** Closes the stream. */
  close(): Promise<unknown>;
}

/** The subset of the driver's `Collection` the store uses. */
export interface MongoCollectionLike {
  /** Inserts a publishing transaction's records, in order. */
  insertMany(docs: MongoDocumentLike[], options?: MongoOperationOptionsLike): Promise<unknown>;
  /** Inserts a dead letter, or the first lease of a partition. */
  insertOne(doc: MongoDocumentLike, options?: MongoOperationOptionsLike): Promise<unknown>;
  /** Driver 6+ resolves to the document (or null); older drivers to `{ value }`. */
  findOneAndUpdate(filter: MongoDocumentLike, update: MongoDocumentLike, options: MongoOperationOptionsLike): Promise<unknown>;
  /** Moves an inbox position (compare-and-set), the relay's progress hint, a lease group member's expiry, releases a lease, and creates documents on migrate (upsert). */
  updateOne(filter: MongoDocumentLike, update: MongoDocumentLike, options?: MongoOperationOptionsLike): Promise<{ matchedCount: number; upsertedCount: number }>;
  /** Releases every lease of a worker leaving its group. */
  updateMany(filter: MongoDocumentLike, update: MongoDocumentLike, options?: MongoOperationOptionsLike): Promise<{ matchedCount: number }>;
  /** Reads an inbox position or the schema version. */
  findOne(filter: MongoDocumentLike, options?: MongoOperationOptionsLike): Promise<MongoDocumentLike | null>;
  /** Reads outbox records, counters, progress hints, dead letters, leases and lease group members. */
  find(filter: MongoDocumentLike, options?: MongoOperationOptionsLike): {
    /** All documents of the cursor. */
    toArray(): Promise<MongoDocumentLike[]>;
  };
  /** Deletes relayed records on cleanup, and lapsed or leaving members of a lease group. */
  deleteMany(filter: MongoDocumentLike): Promise<{ deletedCount: number }>;
  /** Counts the dead letters for status(). */
  countDocuments(filter: MongoDocumentLike): Promise<number>;
  /** Groups pending records by topic for status(). */
  aggregate(pipeline: MongoDocumentLike[]): {
    /** All documents of the cursor. */
    toArray(): Promise<MongoDocumentLike[]>;
  };
  /** Creates the store's indexes on migrate. */
  createIndex(key: Record<string, 1 | -1>, options: { name: string; unique?: boolean }): Promise<string>;
  /** Opens the change stream that wakes waiting relays. */
  watch(pipeline: MongoDocumentLike[]): MongoChangeStreamLike;
}

/** The subset of the driver's `Db` the store uses: `client.db('app')`. */
export interface MongoDbLike {
  /** A collection by name. */
  collection(name: string): MongoCollectionLike;
  /** Creates a collection on migrate (the store ignores the server's 'namespace exists' refusal). */
  createCollection(name: string): Promise<unknown>;
}

/** Options of {@link mongoOutboxStore}. */
export interface MongoOutboxStoreOptions {
  /** Prefix of the store's collections. @default 'txkit_' */
  collectionPrefix?: string;
  /**
   * Outbox partitions. Publishers of one partition serialize from publish to
   * commit (that is what makes sequence order commit order); records go to a
   * partition by key hash, so per-key order holds. @default 1
   */
  partitions?: number;
  /**
   * Wake waiting relays with a change stream on the outbox collection. When
   * the deployment refuses change streams (a standalone mongod), the store
   * polls instead and reports that once to `onError`. @default true
   */
  changeStreams?: boolean;
  /**
   * Read concern of the relay's reads of the outbox. 'majority' never lets a
   * relay send a record that a failover could still roll back; 'local' is for
   * the rare deployment without majority reads (MongoDB 4.x with an arbiter
   * and enableMajorityReadConcern: false).
   * @default 'majority'
   */
  readConcern?: 'majority' | 'local';
  /** Errors the store survives (a change stream that failed, so it polls) are reported here. @default a process warning */
  onError?: (err: unknown) => void;
}

/** How `waitForPublish` learns of commits in other processes. */
export type MongoOutboxWakeMode =
  /** No wait has run yet (or the last stream failed and will be reopened by the next wait). */
  | 'idle'
  /** A change stream was requested and is not confirmed by the server yet. */
  | 'opening'
  | 'change-stream'
  /** Change streams are off or refused by the deployment: waits end at their timeout (the relay's poll interval). */
  | 'polling'
  | 'closed';

/** Names of the store's collections, each the prefix plus a fixed suffix. */
export interface MongoOutboxCollections {
  /** Records: `{ _id: outbox id, partition, seq, topic, key, value, headers: [name, value][], createdAt }`. */
  outbox: string;
  /** One counter per partition: `{ _id: partition, nextSeq }`; publishers increment it in their transaction. */
  partitions: string;
  /**
   * Each relay id's progress hint per partition: `{ _id: { relayId, partition }, relayId, partition, seq }`,
   * apart from the counters so it never conflicts with publishers. Cleanup keeps what any relay id here has not sent.
   */
  relayed: string;
  /** Consumer positions: `{ _id: { consumer, source, partition }, nextOffset, updatedAt }`. */
  inbox: string;
  deadLetters: string;
  /**
   * Partition leases: `{ _id: { group, partition }, group, partition, owner, epoch, expiresAt }`;
   * a released lease has owner `''`.
   */
  leases: string;
  /** Live members of lease groups: `{ _id: { group, owner }, group, owner, expiresAt }`. */
  leaseMembers: string;
  /** `{ _id: 'outbox', version }`. */
  schema: string;
}
