/**
 * A small MongoDB wire-protocol server on loopback for testing the MongoDB
 * adapter with the real `mongodb` driver where no mongod can run.
 *
 * It answers the handshake as the primary of a one-member replica set (or as
 * a standalone), speaks OP_MSG (and OP_QUERY for the legacy handshake), and
 * keeps a tiny in-memory document store with MongoDB's transaction rules:
 *
 * - a transaction is keyed by lsid + txnNumber; its writes sit in a buffer
 *   that commitTransaction applies atomically and abortTransaction discards;
 * - reads outside a transaction see committed data only; reads inside see
 *   committed data plus the transaction's own writes;
 * - a write to a document another open transaction has written, or that was
 *   committed after this transaction started, fails with WriteConflict and the
 *   TransientTransactionError label, and aborts the transaction (as mongod does);
 * - a command of a transaction that is not in progress gets NoSuchTransaction
 *   (TransientTransactionError); a second startTransaction at the active
 *   txnNumber gets ConflictingOperationInProgress; a commit of a committed
 *   transaction succeeds again (commitTransaction is retryable).
 *
 * Faults are scripted per command, like mongod's failCommand fail point:
 * an error reply (with labels), a writeConcernError after applying, or a
 * dropped connection before or after applying. Every command received is
 * recorded so tests can assert on what the server actually saw.
 *
 * Beyond that it knows what the outbox store needs: findAndModify, sorted
 * and limited finds, comparison operators, unique indexes (createIndexes,
 * listIndexes), a small aggregation subset ($match, $group with $sum/$min/
 * $max, $sort, $skip, $limit, $count, $project) and change streams: an
 * aggregate starting with $changeStream opens a cursor whose getMore waits up
 * to maxAwaitTimeMS for events, which are reported when a write commits (so
 * never for a transaction that aborts). With `changeStreams: false` the
 * server refuses $changeStream the way a standalone mongod does.
 *
 * It is not a database: filters are field equality and the operators named
 * above, updates are $set/$setOnInsert/$inc/$min/$max/$unset or a
 * replacement, and anything else is refused with an error instead of being
 * silently misread.
 */
import net from 'node:net';
import { BSON, Long, ObjectId, Timestamp } from 'bson';
import type { Document } from 'bson';

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_MSG = 2013;
const MORE_TO_COME = 1 << 1;
const CHECKSUM_PRESENT = 1;

/** A command as the server received it. */
export interface ReceivedCommand {
  /** The command name: the first key of the command document ('insert', 'commitTransaction', ...). */
  readonly name: string;
  readonly db: string;
  /** lsid as hex, when the command carried a session. */
  readonly lsid: string | undefined;
  readonly txnNumber: number | undefined;
  readonly startTransaction: boolean;
  /** `false` inside a transaction; undefined elsewhere. */
  readonly autocommit: boolean | undefined;
  readonly writeConcern: Document | undefined;
  readonly readConcern: Document | undefined;
  readonly maxTimeMS: number | undefined;
  /** Which client connection carried it (1, 2, ...). */
  readonly connectionId: number;
  /** The whole command document, document sequences merged in. */
  readonly body: Document;
}

export type Fault =
  /** Reply ok:0 without running the command (inside a transaction, the transaction is aborted, as mongod does). */
  | { error: { code: number; codeName: string; errmsg?: string; errorLabels?: string[] } }
  /** Run the command, then reply ok:1 with this writeConcernError. */
  | { writeConcernError: { code: number; codeName: string; errmsg?: string; errInfo?: Document } }
  /** Drop the connection before running the command, or after running it (the reply is lost). */
  | { closeConnection: 'before' | 'after' };

export interface FaultRule {
  /** Command name to match. */
  command: string;
  /** How many matching commands it strikes. @default 1 */
  times?: number;
  /** Strike only commands this predicate accepts. */
  when?: (cmd: ReceivedCommand) => boolean;
  fault: Fault;
}

export interface ScriptedMongoServerOptions {
  /** `replicaSet`: a one-member replica set primary named rs0; `standalone`: a lone mongod. @default 'replicaSet' */
  topology?: 'replicaSet' | 'standalone';
  /** Whether aggregate accepts $changeStream (a standalone never does). @default true */
  changeStreams?: boolean;
}

interface IndexSpec {
  readonly name: string;
  readonly key: Document;
  readonly unique: boolean;
}

/** An open change stream: events of one namespace, queued until a getMore takes them. */
interface ChangeCursor {
  readonly id: number;
  readonly ns: string;
  /** The stages after $changeStream, applied to each event. */
  readonly stages: Document[];
  readonly queue: Document[];
  waiter: { resolve: (reply: Document) => void; timer: NodeJS.Timeout; batchSize: number } | undefined;
}

interface StoredDoc {
  doc: Document;
  /** Commit sequence of its last committed write. */
  seq: number;
}

interface ServerTxn {
  readonly key: string;
  readonly snapshotSeq: number;
  /** ns -> idKey -> the written document, or null for a delete. */
  readonly writes: Map<string, Map<string, Document | null>>;
}

interface ServerSessionState {
  txnNumber: number;
  state: 'none' | 'inProgress' | 'committed' | 'aborted';
  txn: ServerTxn | undefined;
  /** Replies of retryable writes by txnNumber, so a retried write is not applied twice. */
  readonly retryableWrites: Map<number, Document>;
}

class CommandError extends Error {
  constructor(
    readonly code: number,
    readonly codeName: string,
    message: string,
    readonly errorLabels: string[] = [],
  ) {
    super(message);
  }
}

const TRANSIENT = ['TransientTransactionError'];

/**
 * The server. `start()` listens on 127.0.0.1 on a free port; `uri` is the
 * connection string for the driver.
 */
export class ScriptedMongoServer {
  readonly topology: 'replicaSet' | 'standalone';
  /** Every command received, in arrival order (handshakes and heartbeats included). */
  readonly received: ReceivedCommand[] = [];
  readonly #server = net.createServer((socket) => this.#accept(socket));
  readonly #sockets = new Set<net.Socket>();
  readonly #collections = new Map<string, Map<string, StoredDoc>>();
  /** ns + idKey -> key of the open transaction that has written that document. */
  readonly #intents = new Map<string, string>();
  readonly #sessions = new Map<string, ServerSessionState>();
  readonly #rules: { rule: FaultRule; left: number }[] = [];
  readonly #holds: { command: string; count: number; waiting: (() => void)[] }[] = [];
  readonly #listeners = new Set<(cmd: ReceivedCommand) => void>();
  readonly #indexes = new Map<string, Map<string, IndexSpec>>();
  readonly #changeCursors = new Map<number, ChangeCursor>();
  readonly #changeStreams: boolean;
  #cursorIds = 0;
  #events = 0;
  #seq = 0;
  #replies = 0;
  #connections = 0;
  #port = 0;

  constructor(options: ScriptedMongoServerOptions = {}) {
    this.topology = options.topology ?? 'replicaSet';
    this.#changeStreams = (options.changeStreams ?? true) && this.topology === 'replicaSet';
  }

  get host(): string {
    return `127.0.0.1:${this.#port}`;
  }

  /** Connection string: replica-set discovery for a replica set, a direct connection for a standalone. */
  get uri(): string {
    return this.topology === 'replicaSet'
      ? `mongodb://${this.host}/?replicaSet=rs0`
      : `mongodb://${this.host}/?directConnection=true`;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('scripted mongo server: no TCP address');
    this.#port = address.port;
    return this;
  }

  async stop(): Promise<void> {
    for (const cursor of this.#changeCursors.values()) if (cursor.waiter !== undefined) clearTimeout(cursor.waiter.timer);
    this.#changeCursors.clear();
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Adds fault rules; each strikes the next `times` matching commands. */
  script(...rules: FaultRule[]): void {
    for (const rule of rules) this.#rules.push({ rule, left: rule.times ?? 1 });
  }

  /** Drops every fault rule not yet used up. */
  clearFaults(): void {
    this.#rules.length = 0;
  }

  /** Calls `listener` with each command as it is received, before it runs; returns the unsubscribe function. */
  onCommand(listener: (cmd: ReceivedCommand) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Fault strikes still pending. */
  get pendingFaults(): number {
    return this.#rules.reduce((n, r) => n + r.left, 0);
  }

  /**
   * Holds the replies to the next `count` commands named `command` until all
   * `count` have arrived: a barrier that makes "these ran in parallel" certain.
   */
  holdUntil(command: string, count: number): void {
    this.#holds.push({ command, count, waiting: [] });
  }

  /** Commands named `name` (optionally only those of one collection), in arrival order. */
  commands(name: string, collection?: string): ReceivedCommand[] {
    return this.received.filter((c) => c.name === name && (collection === undefined || c.body[name] === collection));
  }

  /** The committed documents of `db.collection`, as the server stores them. */
  committed(db: string, collection: string): Document[] {
    return [...(this.#collections.get(`${db}.${collection}`)?.values() ?? [])].map((s) => clone(s.doc));
  }

  /** Change stream cursors the server holds open (opened by an aggregate, not yet killed), optionally only those on `db.collection`. */
  openChangeStreams(db?: string, collection?: string): number {
    let n = 0;
    for (const c of this.#changeCursors.values()) if (db === undefined || c.ns === `${db}.${collection ?? ''}`) n++;
    return n;
  }

  /** Transactions still open on the server (started, neither committed nor aborted). */
  get openTransactions(): number {
    let n = 0;
    for (const s of this.#sessions.values()) if (s.state === 'inProgress') n++;
    return n;
  }

  // ---- wire protocol ----

  #accept(socket: net.Socket): void {
    const connectionId = ++this.#connections;
    this.#sockets.add(socket);
    socket.setNoDelay(true);
    let pending: Buffer = Buffer.alloc(0);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      // Bounded: each pass consumes one whole message or stops.
      while (pending.length >= 4) {
        const length = pending.readInt32LE(0);
        if (pending.length < length) break;
        const message = pending.subarray(0, length);
        pending = pending.subarray(length);
        this.#onMessage(socket, connectionId, message);
        if (socket.destroyed) return;
      }
    });
  }

  #onMessage(socket: net.Socket, connectionId: number, message: Buffer): void {
    const requestId = message.readInt32LE(4);
    const opCode = message.readInt32LE(12);
    if (opCode === OP_QUERY) {
      // Legacy handshake: flags, fullCollectionName, skip, return, query.
      let offset = 20;
      const nsEnd = message.indexOf(0, offset);
      const ns = message.toString('utf8', offset, nsEnd);
      offset = nsEnd + 1 + 8;
      const query = BSON.deserialize(message.subarray(offset));
      const reply = this.#run(socket, connectionId, ns.split('.')[0] ?? 'admin', query);
      if (reply !== undefined) void reply.then((doc) => doc !== undefined && this.#send(socket, requestId, doc, OP_REPLY));
      return;
    }
    if (opCode !== OP_MSG) {
      socket.destroy();
      return;
    }
    const flags = message.readUInt32LE(16);
    const end = message.length - (flags & CHECKSUM_PRESENT ? 4 : 0);
    let offset = 20;
    let body: Document = {};
    const sequences: [string, Document[]][] = [];
    while (offset < end) {
      const kind = message[offset];
      offset += 1;
      const size = message.readInt32LE(offset);
      if (kind === 0) {
        body = BSON.deserialize(message.subarray(offset, offset + size));
      } else {
        const idEnd = message.indexOf(0, offset + 4);
        const identifier = message.toString('utf8', offset + 4, idEnd);
        const docs: Document[] = [];
        for (let p = idEnd + 1; p < offset + size; ) {
          const docSize = message.readInt32LE(p);
          docs.push(BSON.deserialize(message.subarray(p, p + docSize)));
          p += docSize;
        }
        sequences.push([identifier, docs]);
      }
      offset += size;
    }
    for (const [identifier, docs] of sequences) body[identifier] = docs;
    const db = typeof body.$db === 'string' ? body.$db : 'admin';
    const reply = this.#run(socket, connectionId, db, body);
    if (reply === undefined || flags & MORE_TO_COME) return;
    void reply.then((doc) => doc !== undefined && this.#send(socket, requestId, doc, OP_MSG));
  }

  #send(socket: net.Socket, responseTo: number, doc: Document, opCode: number): void {
    if (socket.destroyed) return;
    const bson = BSON.serialize(doc);
    const header = Buffer.alloc(16);
    let prefix: Buffer;
    if (opCode === OP_MSG) {
      prefix = Buffer.alloc(5); // flagBits 0, section kind 0
    } else {
      prefix = Buffer.alloc(20); // responseFlags, cursorID, startingFrom, numberReturned
      prefix.writeInt32LE(1, 16);
    }
    header.writeInt32LE(16 + prefix.length + bson.length, 0);
    header.writeInt32LE(++this.#replies, 4);
    header.writeInt32LE(responseTo, 8);
    header.writeInt32LE(opCode, 12);
    socket.write(Buffer.concat([header, prefix, bson]));
  }

  /** Records the command, applies any fault, runs it; the promise gives the reply (undefined: none). */
  #run(socket: net.Socket, connectionId: number, db: string, body: Document): Promise<Document | undefined> | undefined {
    const name = Object.keys(body)[0] ?? '';
    const cmd: ReceivedCommand = {
      name,
      db,
      lsid: body.lsid?.id?.buffer ? Buffer.from(body.lsid.id.buffer).toString('hex') : undefined,
      txnNumber: body.txnNumber === undefined ? undefined : Number(body.txnNumber),
      startTransaction: body.startTransaction === true,
      autocommit: typeof body.autocommit === 'boolean' ? body.autocommit : undefined,
      writeConcern: body.writeConcern,
      readConcern: body.readConcern,
      maxTimeMS: typeof body.maxTimeMS === 'number' ? body.maxTimeMS : undefined,
      connectionId,
      body,
    };
    this.received.push(cmd);
    for (const listener of [...this.#listeners]) listener(cmd);
    const fault = this.#takeFault(cmd);
    if (fault !== undefined && 'closeConnection' in fault && fault.closeConnection === 'before') {
      socket.destroy();
      return undefined;
    }
    if (fault === undefined && name === 'getMore') {
      // A change stream's getMore may wait for events: the only command whose reply comes later.
      return this.#getMore(cmd).then((doc) => ({ ...doc, operationTime: new Timestamp({ t: 1, i: this.#seq + 1 }) }));
    }
    let reply: Document;
    if (fault !== undefined && 'error' in fault) {
      this.#abortOnError(cmd);
      const { errorLabels, ...error } = fault.error;
      reply = { ok: 0, errmsg: `${fault.error.codeName} (scripted fault)`, ...error };
      if (errorLabels !== undefined) reply.errorLabels = errorLabels;
    } else {
      reply = this.#execute(cmd);
      if (fault !== undefined && 'writeConcernError' in fault && reply.ok === 1) {
        reply.writeConcernError = { errmsg: `${fault.writeConcernError.codeName} (scripted fault)`, ...fault.writeConcernError };
      }
    }
    if (fault !== undefined && 'closeConnection' in fault) {
      socket.destroy();
      return undefined;
    }
    reply.operationTime = new Timestamp({ t: 1, i: this.#seq + 1 });
    const hold = this.#holds.find((h) => h.command === name);
    if (hold === undefined) return Promise.resolve(reply);
    return new Promise((resolve) => {
      hold.waiting.push(() => resolve(reply));
      if (hold.waiting.length < hold.count) return;
      this.#holds.splice(this.#holds.indexOf(hold), 1);
      for (const release of hold.waiting) release();
    });
  }

  #takeFault(cmd: ReceivedCommand): Fault | undefined {
    const entry = this.#rules.find((r) => r.left > 0 && r.rule.command === cmd.name && (r.rule.when?.(cmd) ?? true));
    if (entry === undefined) return undefined;
    entry.left -= 1;
    if (entry.left === 0) this.#rules.splice(this.#rules.indexOf(entry), 1);
    return entry.rule.fault;
  }

  // ---- commands ----

  #execute(cmd: ReceivedCommand): Document {
    try {
      return { ...this.#dispatch(cmd), ok: 1 };
    } catch (err) {
      if (!(err instanceof CommandError)) throw err;
      const reply: Document = { ok: 0, errmsg: err.message, code: err.code, codeName: err.codeName };
      if (err.errorLabels.length > 0) reply.errorLabels = err.errorLabels;
      return reply;
    }
  }

  #dispatch(cmd: ReceivedCommand): Document {
    switch (cmd.name) {
      case 'hello':
      case 'isMaster':
      case 'ismaster':
        return this.#hello();
      case 'ping':
      case 'endSessions':
        if (cmd.name === 'endSessions') this.#endSessions(cmd.body.endSessions as Document[]);
        return {};
      case 'buildInfo':
      case 'buildinfo':
        return { version: '7.0.0', versionArray: [7, 0, 0, 0] };
    }
    if (cmd.name === 'dropDatabase') {
      for (const ns of [...this.#collections.keys()]) if (ns.startsWith(`${cmd.db}.`)) this.#collections.delete(ns);
      return {};
    }
    const inTxn = cmd.autocommit === false;
    if (cmd.txnNumber !== undefined && this.topology === 'standalone') {
      throw new CommandError(20, 'IllegalOperation', 'Transaction numbers are only allowed on a replica set member or mongos');
    }
    const txn = inTxn ? this.#transactionFor(cmd) : undefined;
    if (cmd.name === 'commitTransaction') return this.#commit(cmd);
    if (cmd.name === 'abortTransaction') return this.#abort(cmd);
    try {
      if (!inTxn && cmd.txnNumber !== undefined && cmd.lsid !== undefined) {
        // A retryable write: the same txnNumber again gets the first reply without running twice.
        const session = this.#session(cmd.lsid);
        const earlier = session.retryableWrites.get(cmd.txnNumber);
        if (earlier !== undefined) return earlier;
        const reply = this.#crud(cmd, undefined);
        session.retryableWrites.set(cmd.txnNumber, reply);
        return reply;
      }
      return this.#crud(cmd, txn);
    } catch (err) {
      if (txn !== undefined && err instanceof CommandError) this.#abortTxn(this.#session(cmd.lsid ?? ''));
      throw err;
    }
  }

  #hello(): Document {
    const base: Document = {
      helloOk: true,
      ismaster: true,
      isWritablePrimary: true,
      maxBsonObjectSize: 16 * 1024 * 1024,
      maxMessageSizeBytes: 48_000_000,
      maxWriteBatchSize: 100_000,
      localTime: new Date(),
      logicalSessionTimeoutMinutes: 30,
      connectionId: this.#connections,
      minWireVersion: 0,
      maxWireVersion: 21,
      readOnly: false,
    };
    if (this.topology === 'standalone') return base;
    return {
      ...base,
      setName: 'rs0',
      setVersion: 1,
      hosts: [this.host],
      primary: this.host,
      me: this.host,
      electionId: new ObjectId('7fffffff0000000000000001'),
    };
  }

  #session(lsid: string): ServerSessionState {
    let s = this.#sessions.get(lsid);
    if (s === undefined) {
      s = { txnNumber: -1, state: 'none', txn: undefined, retryableWrites: new Map() };
      this.#sessions.set(lsid, s);
    }
    return s;
  }

  /** Starts or continues the transaction a command belongs to, with mongod's checks. */
  #transactionFor(cmd: ReceivedCommand): ServerTxn | undefined {
    if (cmd.lsid === undefined || cmd.txnNumber === undefined) {
      throw new CommandError(50768, 'InvalidOptions', 'txnNumber and lsid are required with autocommit: false');
    }
    const s = this.#session(cmd.lsid);
    const n = cmd.txnNumber;
    if (cmd.startTransaction) {
      if (n < s.txnNumber) {
        throw new CommandError(225, 'TransactionTooOld', `Cannot start transaction ${n} on session ${cmd.lsid} because a newer transaction ${s.txnNumber} has already started.`);
      }
      if (n === s.txnNumber) {
        throw new CommandError(117, 'ConflictingOperationInProgress', 'Only servers in a sharded cluster can start a new transaction at the active transaction number');
      }
      this.#abortTxn(s);
      s.txnNumber = n;
      s.state = 'inProgress';
      s.txn = { key: `${cmd.lsid}:${n}`, snapshotSeq: this.#seq, writes: new Map() };
      return s.txn;
    }
    if (n === s.txnNumber && s.state === 'committed') {
      if (cmd.name === 'commitTransaction') return undefined;
      throw new CommandError(256, 'TransactionCommitted', `Transaction ${n} has been committed.`);
    }
    if (n !== s.txnNumber || s.state === 'none') {
      throw new CommandError(251, 'NoSuchTransaction', `Given transaction number ${n} does not match any in-progress transactions. The active transaction number is ${s.txnNumber}`, TRANSIENT);
    }
    if (s.state === 'aborted') {
      throw new CommandError(251, 'NoSuchTransaction', `Transaction with { txnNumber: ${n} } has been aborted.`, TRANSIENT);
    }
    return s.txn;
  }

  #commit(cmd: ReceivedCommand): Document {
    const s = this.#session(cmd.lsid ?? '');
    // #transactionFor already refused anything but an in-progress or committed transaction.
    if (s.state === 'inProgress' && s.txn !== undefined) {
      const seq = ++this.#seq;
      for (const [ns, writes] of s.txn.writes) {
        const coll = this.#collection(ns);
        for (const [idKey, doc] of writes) {
          const before = coll.get(idKey)?.doc;
          if (doc === null) coll.delete(idKey);
          else coll.set(idKey, { doc, seq });
          this.#intents.delete(`${ns}\u0000${idKey}`);
          this.#changed(ns, before, doc);
        }
      }
      s.state = 'committed';
      s.txn = undefined;
    }
    return {};
  }

  #abort(cmd: ReceivedCommand): Document {
    this.#abortTxn(this.#session(cmd.lsid ?? ''));
    return {};
  }

  #abortOnError(cmd: ReceivedCommand): void {
    if (cmd.autocommit !== false || cmd.lsid === undefined || cmd.name === 'commitTransaction') return;
    const s = this.#sessions.get(cmd.lsid);
    if (s !== undefined && s.txnNumber === cmd.txnNumber) this.#abortTxn(s);
  }

  #abortTxn(s: ServerSessionState): void {
    if (s.state !== 'inProgress' || s.txn === undefined) return;
    for (const [ns, writes] of s.txn.writes) {
      for (const idKey of writes.keys()) this.#intents.delete(`${ns}\u0000${idKey}`);
    }
    s.state = 'aborted';
    s.txn = undefined;
  }

  #endSessions(ids: Document[] | undefined): void {
    for (const id of ids ?? []) {
      const hex = id?.id?.buffer ? Buffer.from(id.id.buffer).toString('hex') : undefined;
      const s = hex === undefined ? undefined : this.#sessions.get(hex);
      if (s !== undefined) this.#abortTxn(s);
    }
  }

  #collection(ns: string): Map<string, StoredDoc> {
    let c = this.#collections.get(ns);
    if (c === undefined) {
      c = new Map();
      this.#collections.set(ns, c);
    }
    return c;
  }

  /** The documents of `ns` as `txn` sees them: committed data with the transaction's own writes over it. */
  #visible(ns: string, txn: ServerTxn | undefined): Map<string, Document> {
    const out = new Map<string, Document>();
    for (const [k, s] of this.#collection(ns)) out.set(k, s.doc);
    for (const [k, doc] of txn?.writes.get(ns) ?? []) {
      if (doc === null) out.delete(k);
      else out.set(k, doc);
    }
    return out;
  }

  /** The documents of `ns` that `txn` sees and `filter` matches; an _id equality is a direct lookup. */
  #select(ns: string, txn: ServerTxn | undefined, filter: Document): [string, Document][] {
    const keys = Object.keys(filter);
    if (keys.length === 1 && keys[0] === '_id' && !isOperatorDoc(filter._id)) {
      const idKey = keyOf(filter._id);
      const own = txn?.writes.get(ns)?.get(idKey);
      const doc = own !== undefined ? own : this.#collection(ns).get(idKey)?.doc;
      return doc === undefined || doc === null ? [] : [[idKey, doc]];
    }
    return [...this.#visible(ns, txn)].filter(([, d]) => matchesFilter(d, filter));
  }

  #write(ns: string, idKey: string, doc: Document | null, txn: ServerTxn | undefined): void {
    const intentKey = `${ns}\u0000${idKey}`;
    const holder = this.#intents.get(intentKey);
    if (txn === undefined) {
      if (holder !== undefined) {
        throw new CommandError(2, 'BadValue', 'scripted mongo server: a write outside a transaction to a document an open transaction has written is not modelled');
      }
      this.#checkUnique(ns, idKey, doc, undefined);
      const coll = this.#collection(ns);
      const seq = ++this.#seq;
      const before = coll.get(idKey)?.doc;
      if (doc === null) coll.delete(idKey);
      else coll.set(idKey, { doc, seq });
      this.#changed(ns, before, doc);
      return;
    }
    const committedSeq = this.#collection(ns).get(idKey)?.seq ?? 0;
    if ((holder !== undefined && holder !== txn.key) || committedSeq > txn.snapshotSeq) {
      throw new CommandError(
        112,
        'WriteConflict',
        'Write conflict during plan execution and yielding is disabled. :: Please retry your operation or multi-document transaction.',
        TRANSIENT,
      );
    }
    this.#checkUnique(ns, idKey, doc, txn);
    this.#intents.set(intentKey, txn.key);
    let writes = txn.writes.get(ns);
    if (writes === undefined) {
      writes = new Map();
      txn.writes.set(ns, writes);
    }
    writes.set(idKey, doc);
  }

  #indexesOf(ns: string): Map<string, IndexSpec> {
    let i = this.#indexes.get(ns);
    if (i === undefined) {
      i = new Map();
      this.#indexes.set(ns, i);
    }
    return i;
  }

  /** A new unique index must hold for the documents already there. */
  #checkIndexable(ns: string, spec: IndexSpec): void {
    if (!spec.unique) return;
    const seen = new Set<string>();
    for (const s of this.#collection(ns).values()) {
      const k = indexKeyOf(s.doc, spec.key);
      if (seen.has(k)) throw new CommandError(11000, 'DuplicateKey', `E11000 duplicate key error collection: ${ns} index: ${spec.name}`);
      seen.add(k);
    }
  }

  /** Unique indexes, checked against what the writer sees (committed data and its own writes). */
  #checkUnique(ns: string, idKey: string, doc: Document | null, txn: ServerTxn | undefined): void {
    if (doc === null) return;
    for (const spec of this.#indexes.get(ns)?.values() ?? []) {
      if (!spec.unique) continue;
      const k = indexKeyOf(doc, spec.key);
      for (const [otherKey, other] of this.#visible(ns, txn)) {
        if (otherKey !== idKey && indexKeyOf(other, spec.key) === k) {
          throw new CommandError(11000, 'DuplicateKey', `E11000 duplicate key error collection: ${ns} index: ${spec.name} dup key: ${k}`);
        }
      }
    }
  }

  #resumeToken(): Document {
    return { _data: this.#events.toString(16).padStart(16, '0') };
  }

  /** Reports a committed write to the change streams on its namespace. */
  #changed(ns: string, before: Document | undefined, after: Document | null): void {
    if (this.#changeCursors.size === 0) return;
    const eventSeq = ++this.#events;
    const [db = '', ...rest] = ns.split('.');
    const id = (after ?? before)?._id;
    const operationType = after === null ? 'delete' : before === undefined ? 'insert' : 'update';
    const event: Document = {
      _id: this.#resumeToken(),
      operationType,
      clusterTime: new Timestamp({ t: 1, i: eventSeq }),
      wallTime: new Date(),
      ns: { db, coll: rest.join('.') },
      documentKey: { _id: id },
    };
    if (operationType === 'insert' && after !== null) event.fullDocument = clone(after);
    if (operationType === 'update' && after !== null) {
      const { _id, ...fields } = after;
      event.updateDescription = { updatedFields: clone(fields), removedFields: [], truncatedArrays: [] };
    }
    for (const cursor of this.#changeCursors.values()) {
      if (cursor.ns !== ns) continue;
      const [shown] = runPipeline([event], cursor.stages);
      if (shown === undefined) continue;
      cursor.queue.push(shown);
      if (cursor.waiter !== undefined) {
        const { resolve, timer, batchSize } = cursor.waiter;
        clearTimeout(timer);
        cursor.waiter = undefined;
        resolve(this.#nextBatch(cursor, batchSize));
      }
    }
  }

  #nextBatch(cursor: ChangeCursor, batchSize: number): Document {
    const batch = cursor.queue.splice(0, batchSize > 0 ? batchSize : cursor.queue.length);
    const token = batch.at(-1)?._id ?? this.#resumeToken();
    return { cursor: { id: Long.fromNumber(cursor.id), ns: cursor.ns, nextBatch: batch, postBatchResumeToken: token }, ok: 1 };
  }

  /** getMore of a change stream: its queued events now, or the first ones to arrive within maxAwaitTimeMS. */
  #getMore(cmd: ReceivedCommand): Promise<Document> {
    const cursor = this.#changeCursors.get(toNumber(cmd.body.getMore));
    if (cursor === undefined) {
      return Promise.resolve({ ok: 0, errmsg: `cursor id ${String(cmd.body.getMore)} not found`, code: 43, codeName: 'CursorNotFound' });
    }
    const batchSize = Number(cmd.body.batchSize ?? 0);
    if (cursor.queue.length > 0 || cursor.waiter !== undefined) return Promise.resolve(this.#nextBatch(cursor, batchSize));
    const waitMs = Number(cmd.body.maxTimeMS ?? 1000);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        cursor.waiter = undefined;
        resolve(this.#nextBatch(cursor, batchSize));
      }, waitMs);
      cursor.waiter = { resolve, timer, batchSize };
    });
  }

  #crud(cmd: ReceivedCommand, txn: ServerTxn | undefined): Document {
    const { body, db } = cmd;
    const collName = body[cmd.name];
    if (typeof collName !== 'string') {
      throw new CommandError(59, 'CommandNotFound', `no such command: '${cmd.name}' (scripted mongo server)`);
    }
    const ns = `${db}.${collName}`;
    switch (cmd.name) {
      case 'insert': {
        const docs = (body.documents ?? []) as Document[];
        let n = 0;
        const writeErrors: Document[] = [];
        for (const [index, doc] of docs.entries()) {
          const withId = doc._id === undefined ? { _id: new ObjectId(), ...doc } : doc;
          const idKey = keyOf(withId._id);
          if (this.#select(ns, txn, { _id: withId._id }).length > 0) {
            writeErrors.push({ index, code: 11000, errmsg: `E11000 duplicate key error collection: ${ns} index: _id_` });
            break;
          }
          try {
            this.#write(ns, idKey, withId, txn);
          } catch (err) {
            if (!(err instanceof CommandError) || err.code !== 11000) throw err;
            writeErrors.push({ index, code: 11000, errmsg: err.message });
            break;
          }
          n++;
        }
        if (writeErrors.length > 0 && txn !== undefined) this.#abortTxn(this.#session(cmd.lsid ?? ''));
        return writeErrors.length > 0 ? { n, writeErrors } : { n };
      }
      case 'update': {
        let n = 0;
        let nModified = 0;
        const upserted: Document[] = [];
        for (const [index, spec] of ((body.updates ?? []) as Document[]).entries()) {
          const matches = this.#select(ns, txn, spec.q ?? {});
          const targets = spec.multi === true ? matches : matches.slice(0, 1);
          for (const [idKey, doc] of targets) {
            n++;
            const next = applyUpdate(doc, spec.u, false);
            // mongod writes nothing for an update that changes nothing (nModified 0, no write conflict).
            if (sameValue(next, doc)) continue;
            this.#write(ns, idKey, next, txn);
            nModified++;
          }
          if (targets.length === 0 && spec.upsert === true) {
            const doc = applyUpdate(upsertSeed(spec.q ?? {}), spec.u, true);
            if (doc._id === undefined) doc._id = new ObjectId();
            this.#write(ns, keyOf(doc._id), doc, txn);
            upserted.push({ index, _id: doc._id });
            n++;
          }
        }
        return upserted.length > 0 ? { n, nModified, upserted } : { n, nModified };
      }
      case 'findAndModify': {
        if (body.remove === true || body.fields !== undefined || Array.isArray(body.update)) {
          throw new CommandError(2, 'BadValue', 'scripted mongo server: findAndModify supports update (not remove, fields or pipelines)');
        }
        const [match] = sortDocs(this.#select(ns, txn, body.query ?? {}), body.sort);
        if (match !== undefined) {
          const [idKey, doc] = match;
          const next = applyUpdate(doc, body.update, false);
          if (!sameValue(next, doc)) this.#write(ns, idKey, next, txn);
          return { lastErrorObject: { n: 1, updatedExisting: true }, value: clone(body.new === true ? next : doc) };
        }
        if (body.upsert !== true) return { lastErrorObject: { n: 0, updatedExisting: false }, value: null };
        const doc = applyUpdate(upsertSeed(body.query ?? {}), body.update, true);
        if (doc._id === undefined) doc._id = new ObjectId();
        this.#write(ns, keyOf(doc._id), doc, txn);
        return { lastErrorObject: { n: 1, updatedExisting: false, upserted: doc._id }, value: body.new === true ? clone(doc) : null };
      }
      case 'delete': {
        let n = 0;
        for (const spec of (body.deletes ?? []) as Document[]) {
          const matches = this.#select(ns, txn, spec.q ?? {});
          for (const [idKey] of spec.limit === 1 ? matches.slice(0, 1) : matches) {
            this.#write(ns, idKey, null, txn);
            n++;
          }
        }
        return { n };
      }
      case 'find': {
        if (body.projection !== undefined) throw new CommandError(2, 'BadValue', 'scripted mongo server: find projections are not supported');
        let docs = sortDocs(this.#select(ns, txn, body.filter ?? {}), body.sort).map(([, d]) => d);
        const skip = Number(body.skip ?? 0);
        if (skip > 0) docs = docs.slice(skip);
        const limit = Math.abs(Number(body.limit ?? 0));
        if (limit > 0) docs = docs.slice(0, limit);
        return { cursor: { id: Long.ZERO, ns, firstBatch: docs.map(clone) } };
      }
      case 'aggregate': {
        const stages = (body.pipeline ?? []) as Document[];
        if (stages[0]?.$changeStream !== undefined) {
          if (txn !== undefined) throw new CommandError(263, 'OperationNotSupportedInTransaction', 'Cannot run aggregate with $changeStream in a multi-document transaction.');
          if (!this.#changeStreams) throw new CommandError(40573, 'Location40573', 'The $changeStream stage is only supported on replica sets');
          const id = ++this.#cursorIds;
          this.#changeCursors.set(id, { id, ns, stages: stages.slice(1), queue: [], waiter: undefined });
          return { cursor: { id: Long.fromNumber(id), ns, firstBatch: [], postBatchResumeToken: this.#resumeToken() } };
        }
        const docs = runPipeline([...this.#visible(ns, txn).values()], stages);
        return { cursor: { id: Long.ZERO, ns, firstBatch: docs.map(clone) } };
      }
      case 'killCursors': {
        const killed: unknown[] = [];
        for (const raw of (body.cursors ?? []) as unknown[]) {
          const cursor = this.#changeCursors.get(toNumber(raw));
          if (cursor === undefined) continue;
          this.#changeCursors.delete(cursor.id);
          if (cursor.waiter !== undefined) {
            clearTimeout(cursor.waiter.timer);
            cursor.waiter.resolve({ ok: 0, errmsg: `cursor id ${cursor.id} was killed`, code: 237, codeName: 'CursorKilled' });
          }
          killed.push(raw);
        }
        return { cursorsKilled: killed, cursorsNotFound: [], cursorsAlive: [], cursorsUnknown: [] };
      }
      case 'createIndexes': {
        if (txn !== undefined) throw new CommandError(263, 'OperationNotSupportedInTransaction', 'Cannot run createIndexes in a multi-document transaction (scripted mongo server).');
        const indexes = this.#indexesOf(ns);
        const before = indexes.size + 1;
        for (const raw of (body.indexes ?? []) as Document[]) {
          const spec: IndexSpec = { name: String(raw.name), key: raw.key as Document, unique: raw.unique === true };
          const existing = indexes.get(spec.name);
          if (existing !== undefined) {
            if (!sameValue(existing.key, spec.key)) {
              throw new CommandError(86, 'IndexKeySpecsConflict', `An existing index has the same name as the requested index but different keys: ${spec.name}`);
            }
            if (existing.unique !== spec.unique) {
              throw new CommandError(85, 'IndexOptionsConflict', `An existing index has the same name as the requested index but different options: ${spec.name}`);
            }
            continue;
          }
          this.#checkIndexable(ns, spec);
          indexes.set(spec.name, spec);
        }
        this.#collection(ns);
        return { numIndexesBefore: before, numIndexesAfter: indexes.size + 1, createdCollectionAutomatically: false };
      }
      case 'listIndexes': {
        if (!this.#collections.has(ns)) throw new CommandError(26, 'NamespaceNotFound', `ns does not exist: ${ns}`);
        const specs: Document[] = [{ v: 2, key: { _id: 1 }, name: '_id_' }];
        for (const i of this.#indexesOf(ns).values()) specs.push(i.unique ? { v: 2, key: i.key, name: i.name, unique: true } : { v: 2, key: i.key, name: i.name });
        return { cursor: { id: Long.ZERO, ns, firstBatch: specs } };
      }
      case 'create':
        if (txn !== undefined) throw new CommandError(263, 'OperationNotSupportedInTransaction', 'Cannot run create in a multi-document transaction (scripted mongo server).');
        if (this.#collections.has(ns)) throw new CommandError(48, 'NamespaceExists', `Collection ${ns} already exists.`);
        this.#collection(ns);
        return {};
      case 'drop':
        if (txn !== undefined) throw new CommandError(263, 'OperationNotSupportedInTransaction', 'Cannot run drop in a multi-document transaction.');
        this.#collections.delete(ns);
        this.#indexes.delete(ns);
        return { ns };
      default:
        throw new CommandError(59, 'CommandNotFound', `no such command: '${cmd.name}' (scripted mongo server)`);
    }
  }
}

/** A deep copy that keeps BSON types (structuredClone would turn an ObjectId into a plain object). */
function clone(doc: Document): Document {
  return BSON.deserialize(BSON.serialize(doc));
}

/** A stable key for an _id of any BSON type. */
function keyOf(id: unknown): string {
  return BSON.EJSON.stringify({ id }, { relaxed: false });
}

function sameValue(a: unknown, b: unknown): boolean {
  return keyOf(a) === keyOf(b);
}

function isOperatorDoc(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).some((k) => k.startsWith('$'));
}

function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Long) return v.toNumber();
  return Number(v);
}

/** A field by dotted path. */
function getPath(doc: Document, path: string): unknown {
  let v: unknown = doc;
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Document)[part];
  }
  return v;
}

/** MongoDB's cross-type sort order, for the types the tests use. */
function typeRank(v: unknown): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number' || typeof v === 'bigint' || v instanceof Long) return 1;
  if (typeof v === 'string') return 2;
  if (v instanceof ObjectId) return 7;
  if (typeof v === 'boolean') return 8;
  if (v instanceof Date) return 9;
  if (v instanceof Timestamp) return 10;
  if (Array.isArray(v)) return 4;
  return 3;
}

function compareValues(a: unknown, b: unknown): number {
  const ra = typeRank(a);
  const rb = typeRank(b);
  if (ra !== rb) return ra - rb;
  if (ra === 0) return 0;
  if (ra === 1) return toNumber(a) - toNumber(b);
  if (ra === 2) return a === b ? 0 : (a as string) < (b as string) ? -1 : 1;
  if (ra === 7) return (a as ObjectId).toHexString().localeCompare((b as ObjectId).toHexString());
  if (ra === 8) return Number(a) - Number(b);
  if (ra === 9) return (a as Date).getTime() - (b as Date).getTime();
  const ka = keyOf(a);
  const kb = keyOf(b);
  return ka === kb ? 0 : ka < kb ? -1 : 1;
}

function sortDocs<T extends [string, Document] | Document>(docs: T[], sort: unknown): T[] {
  if (sort === undefined || sort === null) return docs;
  const spec = Object.entries(sort as Document);
  const doc = (x: T): Document => (Array.isArray(x) ? (x[1] as Document) : (x as Document));
  return [...docs].sort((x, y) => {
    for (const [field, dir] of spec) {
      const c = compareValues(getPath(doc(x), field), getPath(doc(y), field));
      if (c !== 0) return Number(dir) < 0 ? -c : c;
    }
    return 0;
  });
}

/** The fields of an upsert's query that seed the new document (equalities only). */
function upsertSeed(query: Document): Document {
  const seed: Document = {};
  for (const [k, v] of Object.entries(query)) {
    if (isOperatorDoc(v)) {
      if ('$eq' in (v as Document)) seed[k] = (v as Document).$eq;
    } else if (!k.startsWith('$')) {
      seed[k] = v;
    }
  }
  return seed;
}

/** The values of an index's fields in a document, as one comparable key. */
function indexKeyOf(doc: Document, key: Document): string {
  return keyOf(Object.keys(key).map((f) => getPath(doc, f) ?? null));
}

function matchesFilter(doc: Document, filter: Document): boolean {
  for (const [field, cond] of Object.entries(filter)) {
    if (field === '$and' || field === '$or') {
      const parts = cond as Document[];
      const ok = field === '$and' ? parts.every((f) => matchesFilter(doc, f)) : parts.some((f) => matchesFilter(doc, f));
      if (!ok) return false;
      continue;
    }
    if (field.startsWith('$')) throw new CommandError(2, 'BadValue', `scripted mongo server: unsupported query operator ${field}`);
    const value = getPath(doc, field);
    if (isOperatorDoc(cond)) {
      for (const [op, arg] of Object.entries(cond as Document)) {
        if (!matchesOperator(value, op, arg)) return false;
      }
    } else if (!sameValue(value, cond)) {
      return false;
    }
  }
  return true;
}

function matchesOperator(value: unknown, op: string, arg: unknown): boolean {
  switch (op) {
    case '$eq':
      return sameValue(value, arg);
    case '$ne':
      return !sameValue(value, arg);
    case '$in':
      return (arg as unknown[]).some((v) => sameValue(value, v));
    case '$exists':
      return (value !== undefined) === Boolean(arg);
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte': {
      // Type bracketing: a comparison only matches values of the same type.
      if (typeRank(value) !== typeRank(arg)) return false;
      const c = compareValues(value, arg);
      return op === '$gt' ? c > 0 : op === '$gte' ? c >= 0 : op === '$lt' ? c < 0 : c <= 0;
    }
    default:
      throw new CommandError(2, 'BadValue', `scripted mongo server: unsupported query operator ${op}`);
  }
}

/** A field path ('$field') or a constant, as $group and its accumulators read them. */
function evaluate(doc: Document, expr: unknown): unknown {
  if (typeof expr === 'string' && expr.startsWith('$')) return getPath(doc, expr.slice(1));
  if (isOperatorDoc(expr)) throw new CommandError(2, 'BadValue', `scripted mongo server: unsupported expression ${JSON.stringify(expr)}`);
  return expr;
}

/** The aggregation stages the store uses: $match, $group ($sum, $min, $max), $sort, $skip, $limit, $count, $project (inclusion). */
function runPipeline(input: Document[], stages: readonly Document[]): Document[] {
  let docs = input;
  for (const stage of stages) {
    const [name, spec] = Object.entries(stage)[0] ?? [];
    switch (name) {
      case '$match':
        docs = docs.filter((d) => matchesFilter(d, spec as Document));
        break;
      case '$sort':
        docs = sortDocs(docs, spec);
        break;
      case '$skip':
        docs = docs.slice(Number(spec));
        break;
      case '$limit':
        docs = docs.slice(0, Number(spec));
        break;
      case '$count':
        docs = docs.length === 0 ? [] : [{ [String(spec)]: docs.length }];
        break;
      case '$project': {
        const fields = Object.entries(spec as Document);
        if (fields.some(([k, v]) => k !== '_id' && v !== 1 && v !== true)) {
          throw new CommandError(2, 'BadValue', 'scripted mongo server: only inclusion projections are supported');
        }
        docs = docs.map((d) => {
          const out: Document = { _id: d._id };
          for (const [k, v] of fields) if (k !== '_id' && v && d[k] !== undefined) out[k] = d[k];
          if ((spec as Document)._id === 0 || (spec as Document)._id === false) delete out._id;
          return out;
        });
        break;
      }
      case '$group': {
        const { _id: idExpr, ...accumulators } = spec as Document;
        const groups = new Map<string, Document>();
        for (const d of docs) {
          const id = evaluate(d, idExpr) ?? null;
          const k = keyOf(id);
          let g = groups.get(k);
          if (g === undefined) {
            g = { _id: id };
            groups.set(k, g);
          }
          for (const [field, acc] of Object.entries(accumulators as Record<string, Document>)) {
            const [op, arg] = Object.entries(acc)[0] ?? [];
            const v = evaluate(d, arg);
            if (op === '$sum') g[field] = toNumber(g[field] ?? 0) + (typeof v === 'number' ? v : 0);
            else if (op === '$min') g[field] = g[field] === undefined || compareValues(v, g[field]) < 0 ? v : g[field];
            else if (op === '$max') g[field] = g[field] === undefined || compareValues(v, g[field]) > 0 ? v : g[field];
            else throw new CommandError(2, 'BadValue', `scripted mongo server: unsupported accumulator ${String(op)}`);
          }
        }
        docs = [...groups.values()];
        break;
      }
      default:
        throw new CommandError(2, 'BadValue', `scripted mongo server: unsupported aggregation stage ${String(name)}`);
    }
  }
  return docs;
}

function applyUpdate(doc: Document, update: unknown, inserting: boolean): Document {
  if (Array.isArray(update)) throw new CommandError(2, 'BadValue', 'scripted mongo server: pipeline updates are not supported');
  const u = (update ?? {}) as Document;
  if (!isOperatorDoc(u)) return { _id: doc._id, ...u };
  const out = clone(doc);
  for (const [op, fields] of Object.entries(u)) {
    for (const [k, v] of Object.entries(fields as Document)) {
      if (op === '$set') out[k] = v;
      else if (op === '$setOnInsert') {
        if (inserting) out[k] = v;
      } else if (op === '$unset') delete out[k];
      else if (op === '$inc') out[k] = toNumber(out[k] ?? 0) + toNumber(v);
      else if (op === '$max') {
        if (out[k] === undefined || compareValues(v, out[k]) > 0) out[k] = v;
      } else if (op === '$min') {
        if (out[k] === undefined || compareValues(v, out[k]) < 0) out[k] = v;
      } else throw new CommandError(2, 'BadValue', `scripted mongo server: unsupported update operator ${op}`);
    }
  }
  return out;
}
