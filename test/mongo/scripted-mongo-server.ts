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
 * It is not a database: filters are top-level equality (and $in), updates are
 * $set/$inc/$unset or a replacement, and anything else is refused with an
 * error instead of being silently misread.
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
  #seq = 0;
  #replies = 0;
  #connections = 0;
  #port = 0;

  constructor(options: ScriptedMongoServerOptions = {}) {
    this.topology = options.topology ?? 'replicaSet';
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
          if (doc === null) coll.delete(idKey);
          else coll.set(idKey, { doc, seq });
          this.#intents.delete(`${ns}\u0000${idKey}`);
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
      const coll = this.#collection(ns);
      const seq = ++this.#seq;
      if (doc === null) coll.delete(idKey);
      else coll.set(idKey, { doc, seq });
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
    this.#intents.set(intentKey, txn.key);
    let writes = txn.writes.get(ns);
    if (writes === undefined) {
      writes = new Map();
      txn.writes.set(ns, writes);
    }
    writes.set(idKey, doc);
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
          this.#write(ns, idKey, withId, txn);
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
            this.#write(ns, idKey, applyUpdate(doc, spec.u), txn);
            n++;
            nModified++;
          }
          if (targets.length === 0 && spec.upsert === true) {
            const seed: Document = {};
            for (const [k, v] of Object.entries((spec.q ?? {}) as Document)) if (!isOperatorDoc(v)) seed[k] = v;
            const doc = applyUpdate(seed, spec.u);
            if (doc._id === undefined) doc._id = new ObjectId();
            this.#write(ns, keyOf(doc._id), doc, txn);
            upserted.push({ index, _id: doc._id });
            n++;
          }
        }
        return upserted.length > 0 ? { n, nModified, upserted } : { n, nModified };
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
        let docs = this.#select(ns, txn, body.filter ?? {}).map(([, d]) => d);
        const limit = Math.abs(Number(body.limit ?? 0));
        if (limit > 0) docs = docs.slice(0, limit);
        return { cursor: { id: Long.ZERO, ns, firstBatch: docs.map(clone) } };
      }
      case 'create':
        if (txn !== undefined) throw new CommandError(263, 'OperationNotSupportedInTransaction', 'Cannot run create in a multi-document transaction (scripted mongo server).');
        if (this.#collections.has(ns)) throw new CommandError(48, 'NamespaceExists', `Collection ${ns} already exists.`);
        this.#collection(ns);
        return {};
      case 'drop':
        if (txn !== undefined) throw new CommandError(263, 'OperationNotSupportedInTransaction', 'Cannot run drop in a multi-document transaction.');
        this.#collections.delete(ns);
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

function matchesFilter(doc: Document, filter: Document): boolean {
  for (const [field, cond] of Object.entries(filter)) {
    if (field.startsWith('$')) throw new CommandError(2, 'BadValue', `scripted mongo server: unsupported query operator ${field}`);
    if (isOperatorDoc(cond)) {
      for (const [op, arg] of Object.entries(cond as Document)) {
        if (op === '$eq' && !sameValue(doc[field], arg)) return false;
        else if (op === '$in' && !(arg as unknown[]).some((v) => sameValue(doc[field], v))) return false;
        else if (op !== '$eq' && op !== '$in') {
          throw new CommandError(2, 'BadValue', `scripted mongo server: unsupported query operator ${op}`);
        }
      }
    } else if (!sameValue(doc[field], cond)) {
      return false;
    }
  }
  return true;
}

function applyUpdate(doc: Document, update: unknown): Document {
  if (Array.isArray(update)) throw new CommandError(2, 'BadValue', 'scripted mongo server: pipeline updates are not supported');
  const u = (update ?? {}) as Document;
  if (!isOperatorDoc(u)) return { _id: doc._id, ...u };
  const out = clone(doc);
  for (const [op, fields] of Object.entries(u)) {
    for (const [k, v] of Object.entries(fields as Document)) {
      if (op === '$set') out[k] = v;
      else if (op === '$unset') delete out[k];
      else if (op === '$inc') out[k] = Number(out[k] ?? 0) + Number(v);
      else throw new CommandError(2, 'BadValue', `scripted mongo server: unsupported update operator ${op}`);
    }
  }
  return out;
}
