import { ConfigError, TransactionStateError, TxkitError, createTransactionContext } from '../../core/index.js';
import type {
  BeginOptions,
  CommitOutcome,
  DriverSavepoint,
  DriverTransaction,
  TransactionContext,
  TransactionDriver,
} from '../../core/index.js';
import { cancelRunningStatement } from './pg-cancel.js';
import type { PgCancelTarget } from './pg-cancel.js';
import {
  CAPTURE_XID_SQL,
  SQL_OPTION_KEYS,
  TERMINATE_ORPHAN_SQL,
  XACT_STATUS_SQL,
  captured,
  contextOptionsOf,
  lastRow,
  missingXactFunctions,
  resolvePostgresCommit,
  validateSqlOptions,
} from './sql-context.js';
import type { CapturedTransaction, PostgresCommitProbe, SqlContextOptions, SqlOptions } from './sql-context.js';
import {
  classifySqlError,
  commitOutcomeUnknown,
  isConnectionLoss,
  labelOf,
  rolledBackInsteadOfCommit,
  wasNeverSent,
} from './sql-errors.js';
import type { SqlBackend } from './sql-errors.js';
import type { HandleGuard } from '../../core/handle-guard.js';
import { ROLLBACK_GRACE_MS, beginLimit, endsTransaction, handleOwnsEndError, settlesWithin, sqlHandleGuard } from './sql-handle.js';
import type { KnexClientLike, KnexLike, KnexTransactionConfigLike, KnexTransactionLike, KnexTransactionOf } from './sql-types.js';

/**
 * A transaction context on a knex instance (pg, mysql/mysql2 or
 * sqlite3/better-sqlite3 client). The handle is knex's own transaction
 * object (your `Knex.Transaction`): build queries on it as usual, and let
 * txkit commit or roll back (do not call `trx.commit()` yourself).
 * Savepoints (`propagation: 'nested'`) are supported. Top-level
 * {@link SqlOptions} in `options` apply to every transaction; a call's own
 * options win. `close()` leaves the knex instance open: it belongs to the caller.
 * @throws ConfigError when `knex` is not a knex instance, its dialect is not
 *   pg, mysql or sqlite3, or `options` are invalid for that dialect.
 * @example
 * ```ts
 * import { knexTransactions } from 'txkit/sql';
 *
 * const db = knex({ client: 'pg', connection: process.env.DATABASE_URL }); // your knex instance
 * const ctx = knexTransactions(db, { isolationLevel: 'serializable' });
 * await ctx.withTransaction(async (tx) => {
 *   const [{ balance }] = await tx.handle('accounts').where({ id: 1 }).select('balance');
 *   await tx.handle('accounts').where({ id: 1 }).update({ balance: balance - 10 });
 * });
 * ```
 */
export function knexTransactions<K extends KnexLike>(
  knex: K,
  options: SqlContextOptions = {},
): TransactionContext<KnexTransactionOf<K>, SqlOptions> {
  const backend = knexBackendOf(knex);
  const ctx = createTransactionContext<KnexTransactionLike, SqlOptions>(
    new KnexDriver(knex, backend),
    contextOptionsOf(options, backend, 'knexTransactions'),
  );
  return ctx as unknown as TransactionContext<KnexTransactionOf<K>, SqlOptions>;
}

const DIALECTS: Readonly<Record<string, SqlBackend>> = { postgresql: 'postgres', mysql: 'mysql', sqlite3: 'sqlite' };

function knexBackendOf(knex: unknown): SqlBackend {
  const client = (knex as { client?: KnexClientLike } | null)?.client;
  if (
    (typeof knex !== 'function' && typeof knex !== 'object') ||
    knex === null ||
    typeof (knex as KnexLike).transaction !== 'function' ||
    typeof client !== 'object' ||
    client === null
  ) {
    throw new ConfigError(
      `knexTransactions(knex) needs a knex instance (what knex({ client, connection }) returns), got ${knex === null ? 'null' : typeof knex}`,
    );
  }
  const backend = typeof client.dialect === 'string' ? DIALECTS[client.dialect] : undefined;
  if (backend === undefined) {
    throw new ConfigError(
      `knexTransactions supports knex's pg, mysql/mysql2 and sqlite3/better-sqlite3 clients; this knex instance uses the ` +
        `'${String(client.dialect)}' dialect`,
    );
  }
  return backend;
}

class KnexDriver implements TransactionDriver<KnexTransactionLike, SqlOptions> {
  readonly optionKeys = SQL_OPTION_KEYS;
  readonly backend: SqlBackend;
  readonly #knex: KnexLike;

  constructor(knex: KnexLike, backend: SqlBackend) {
    this.#knex = knex;
    this.backend = backend;
  }

  validateOptions(options: SqlOptions): void {
    validateSqlOptions(this.backend, options);
  }

  async begin(options: SqlOptions & BeginOptions, signal: AbortSignal): Promise<DriverTransaction<KnexTransactionLike>> {
    // The core's timer starts once begin returns: the wait for a connection and BEGIN are bounded here.
    const limit = beginLimit(this.backend, options.timeoutMs, signal);
    const client = this.#knex.client;
    try {
      // txkit takes the connection itself (knex leaves a given one alone), so it can bound the wait and destroy it.
      const raw = await limit.race(acquire(client), (late) => void client.releaseConnection?.(late));
      const conn = new KnexConnection(client, raw);
      const config = knexConfigOf(this.backend, options, raw);
      const verify = options.verifyCommit === true;
      let scope: KnexScope | undefined;
      let capture: CapturedTransaction | undefined;
      // A scope that opens after the limit fired is rolled back and its connection given back.
      const late = (opened: KnexScope): void => void endScope(opened, opened.trx.rollback()).then(conn.release, conn.release);
      try {
        // BEGIN failed, in time or late: knex leaves a connection it was given to the caller.
        const opening = openScope(this.backend, (container) => this.#knex.transaction(container, config), conn.release);
        scope = await limit.race(opening, late);
        // knex cannot say DEFERRABLE; Postgres takes it as a transaction mode before the first query.
        if (options.deferrable === true) await limit.race(scope.trx.raw('SET TRANSACTION DEFERRABLE'), () => undefined);
        if (verify) capture = captured(lastRow(await limit.race(scope.trx.raw(CAPTURE_XID_SQL), () => undefined)), this.backend);
      } catch (err) {
        if (err === limit.reason && this.backend !== 'sqlite') {
          // The server did not answer in time: destroy the connection rather than pool it with a statement in flight.
          conn.destroy(err);
        } else if (scope !== undefined) {
          await endScope(scope, scope.trx.rollback()).catch(() => undefined);
          conn.release();
        }
        throw verify ? missingXactFunctions(err, this.backend) : err;
      }
      return new KnexTransaction(this.#knex, this.backend, scope, conn, capture);
    } finally {
      limit.dispose();
    }
  }

  classify = classifySqlError;

  async close(): Promise<void> {
    // The knex instance belongs to the caller; the core has already aborted open transactions.
  }
}

/** knex's own transaction modes (one `BEGIN TRANSACTION ...` on Postgres, `SET TRANSACTION ...; BEGIN` on MySQL), on `connection`. */
function knexConfigOf(backend: SqlBackend, options: SqlOptions, connection: unknown): KnexTransactionConfigLike {
  const config: KnexTransactionConfigLike = { connection };
  // SQLite is serializable already, and knex would send SET TRANSACTION, which SQLite does not know.
  if (backend === 'sqlite') return config;
  if (options.isolationLevel !== undefined) config.isolationLevel = options.isolationLevel;
  if (options.readOnly === true) config.readOnly = true;
  return config;
}

/** knex's pooled connection (throws ConfigError at once, within begin, when the client cannot give one). */
function acquire(client: KnexClientLike): Promise<unknown> {
  if (typeof client.acquireConnection !== 'function' || typeof client.releaseConnection !== 'function') {
    throw new ConfigError('knexTransactions needs a knex instance whose client acquires and releases pooled connections');
  }
  return Promise.resolve(client.acquireConnection());
}

/**
 * The pooled connection of one transaction, which txkit acquired and gives
 * back once knex has ended the transaction on it: released, or destroyed
 * when it stopped answering.
 */
class KnexConnection {
  readonly raw: unknown;
  readonly #client: KnexClientLike;
  #released = false;

  constructor(client: KnexClientLike, raw: unknown) {
    this.#client = client;
    this.raw = raw;
  }

  readonly release = (): void => {
    if (this.#released) return;
    this.#released = true;
    void Promise.resolve(this.#client.releaseConnection?.(this.raw)).catch(() => undefined);
  };

  /**
   * Closes the socket now (a statement may still wait for its answer) and
   * gives the connection back marked disposed, knex's own mark for a broken
   * connection, so its pool discards it instead of handing it out.
   */
  destroy(reason: unknown): void {
    if (this.#released) return;
    const raw = this.raw as { destroy?: () => void; __knex__disposed?: unknown } | null;
    if (raw !== null && typeof raw === 'object') {
      raw.__knex__disposed ??= reason instanceof Error ? reason.message : String(reason);
      // mysql/mysql2 close the socket at once with destroy(); pg's end() does so when a query is waiting.
      if (typeof raw.destroy === 'function') raw.destroy();
      else void Promise.resolve(this.#client.destroyRawConnection?.(raw)).catch(() => undefined);
    }
    this.release();
  }
}

type Ending = { readonly failed: false } | { readonly failed: true; readonly error: unknown };
const SUCCEEDED: Ending = Object.freeze({ failed: false });

/** A knex transaction or savepoint, and the promise knex settles once it has ended and released its connection. */
interface KnexScope {
  readonly trx: KnexTransactionLike;
  readonly ended: Promise<Ending>;
}

/**
 * Opens a knex transaction (or savepoint) whose callback returns nothing, so
 * knex neither commits nor rolls back on its own. The promise knex returns
 * settles after the end and the release of the connection, with the error
 * of a failed COMMIT or ROLLBACK: knex's `trx.commit()` itself never rejects.
 * `unopened` runs, once, when the scope fails to open (before the rejection).
 */
function openScope(
  backend: SqlBackend,
  start: (container: (trx: KnexTransactionLike) => void) => PromiseLike<unknown>,
  unopened?: () => void,
): Promise<KnexScope> {
  // One promise settled by whichever comes first, the callback or the end (four promises in all, where an async
  // race of the two would make eight): every promise costs a program with an AsyncLocalStorage its hooks, and
  // knex makes about 80 a transaction already.
  return new Promise<KnexScope>((resolve, reject) => {
    // knex calls the callback once BEGIN (or SAVEPOINT) is answered, never within start(); when it failed, with
    // a transaction already completed and its end already rejected: then the end below says why.
    let opened = false;
    let started: PromiseLike<unknown>;
    try {
      started = start((trx) => {
        if (trx.isCompleted()) return;
        opened = true;
        resolve({ trx, ended });
      });
    } catch (err) {
      unopened?.();
      reject(err);
      return;
    }
    const ended: Promise<Ending> = Promise.resolve(started).then(
      (): Ending => SUCCEEDED,
      (error: unknown): Ending => ({ failed: true, error: error ?? knexGaveUp(backend) }),
    );
    // The end of a scope that was never handed out is why it could not open (after that, the end is commit()'s).
    void ended.then((ending) => {
      if (opened) return;
      unopened?.();
      reject(
        ending.failed
          ? ending.error
          : new TxkitError('KNEX_ENDED', `knex ended the ${labelOf(backend)} transaction before it began`, { backend }),
      );
    });
  });
}

/** Ends a scope with `end` (a commit or rollback call) and rethrows what knex reported; returns the statement's result. */
async function endScope(scope: KnexScope, end: PromiseLike<unknown>): Promise<unknown> {
  const result = await end;
  const ending = await scope.ended;
  if (ending.failed) throw ending.error;
  return result;
}

/** knex rejects with no reason when its own 5-second ROLLBACK timeout passes. */
function knexGaveUp(backend: SqlBackend): TxkitError {
  return new TxkitError(
    'ROLLBACK_TIMEOUT',
    `knex gave up waiting for the ${labelOf(backend)} ROLLBACK after 5 s and released the connection; ` +
      'a statement was still running on it (set timeoutMs so txkit cancels long statements first)',
    { backend },
  );
}

class KnexTransaction implements DriverTransaction<KnexTransactionLike> {
  readonly handle: KnexTransactionLike;
  readonly id?: string;
  readonly resolveCommit?: () => Promise<CommitOutcome>;
  readonly #cancel: (() => Promise<unknown>) | undefined;
  readonly #backend: SqlBackend;
  readonly #scope: KnexScope;
  readonly #conn: KnexConnection;
  readonly #guard: KnexHandleGuard;
  /** Set by interrupt(): the cancel and the ROLLBACK after it must be done by then (Date.now() time). */
  #graceEnds: number | undefined;
  /** commit() or rollback() has run. */
  #ended = false;

  constructor(knex: KnexLike, backend: SqlBackend, scope: KnexScope, conn: KnexConnection, capture: CapturedTransaction | undefined) {
    this.handle = scope.trx;
    this.#backend = backend;
    this.#scope = scope;
    this.#conn = conn;
    this.#guard = guardHandle(scope.trx, backend);
    if (capture !== undefined) {
      this.id = capture.xid;
      const probe = knexProbe(knex);
      this.resolveCommit = () => resolvePostgresCommit(probe, capture);
    }
    // Cancels the running statement so the rollback after a timeout is not queued behind it.
    if (backend === 'postgres') {
      this.#cancel = () => cancelRunningStatement(conn.raw as PgCancelTarget, this.#graceEnds);
    } else if (backend === 'mysql') {
      // knex runs KILL QUERY <thread id> on a raw connection of its own, outside the pool.
      this.#cancel = async () => knex.client.cancelQuery?.(conn.raw);
    }
    // SQLite (better-sqlite3) runs statements synchronously: nothing can be running while a timer fires.
  }

  async commit(): Promise<void> {
    this.#ended = true;
    this.#guard.state.ended ??= 'committing';
    const { ended } = this.#scope;
    const result = await this.#guard.end('commit');
    const ending = await ended;
    if (ending.failed) {
      const err = ending.error;
      if (this.#backend === 'sqlite') rollBackLeftOpen(this.#conn.raw);
      this.#conn.release();
      if (isConnectionLoss(err) && !wasNeverSent(err)) {
        throw commitOutcomeUnknown(this.#backend, err, this.resolveCommit !== undefined);
      }
      throw err;
    }
    this.#conn.release();
    if (this.#backend === 'postgres' && commandOf(result) === 'ROLLBACK') throw rolledBackInsteadOfCommit();
  }

  /**
   * Rolls back within ROLLBACK_GRACE_MS (counted from the interrupt, if
   * there was one); a connection that does not answer by then is destroyed,
   * which rolls the transaction back on the server as well.
   */
  async rollback(): Promise<void> {
    // After a refused COMMIT knex has ended the transaction, and commit() gave the connection back.
    if (this.#ended) return;
    this.#ended = true;
    this.#guard.state.ended ??= 'rolled back';
    const { trx, ended } = this.#scope;
    const rolledBack = trx.isCompleted() ? ended : Promise.resolve(this.#guard.end('rollback')).then(() => ended);
    const grace = this.#graceEnds === undefined ? ROLLBACK_GRACE_MS : this.#graceEnds - Date.now();
    // better-sqlite3 answers synchronously; a network connection that does not answer is destroyed.
    if (this.#backend !== 'sqlite' && !(await settlesWithin(rolledBack, grace).catch(() => true))) {
      this.#conn.destroy(`the ${labelOf(this.#backend)} connection did not answer ROLLBACK within ${ROLLBACK_GRACE_MS} ms`);
      return;
    }
    const ending = await ended;
    this.#conn.release();
    // The server rolls back a transaction whose connection is gone.
    if (ending.failed && !isConnectionLoss(ending.error)) throw ending.error;
  }

  async interrupt(): Promise<void> {
    // From here on the callback, which may still be running, cannot queue more work on the connection.
    this.#guard.state.ended ??= 'cancelled';
    this.#graceEnds ??= Date.now() + ROLLBACK_GRACE_MS;
    if (this.#cancel !== undefined) await settlesWithin(this.#cancel(), this.#graceEnds - Date.now());
  }

  savepoint(): Promise<DriverSavepoint<KnexTransactionLike>> {
    return openSavepoint(this.#backend, this.#scope.trx);
  }
}

async function openSavepoint(backend: SqlBackend, parent: KnexTransactionLike): Promise<DriverSavepoint<KnexTransactionLike>> {
  // A knex transaction opened on a transaction is a SAVEPOINT; its commit releases it, its rollback rolls back to it.
  const scope = await openScope(backend, (container) => parent.transaction(container));
  const guard = guardHandle(scope.trx, backend);
  return {
    handle: scope.trx,
    release: async () => {
      guard.state.ended ??= 'savepoint released';
      await endScope(scope, guard.end('commit'));
    },
    rollback: async () => {
      guard.state.ended ??= 'rolled back to its savepoint';
      await endScope(scope, guard.end('rollback'));
    },
    savepoint: () => openSavepoint(backend, scope.trx),
  };
}

/** The guard of a knex handle: why it ended (once it is ending), and txkit's own way to end it. */
interface KnexHandleGuard {
  readonly state: HandleGuard<string>;
  /** Runs knex's own commit or rollback of the handle, which the callback may not call. */
  end(how: 'commit' | 'rollback'): PromiseLike<unknown>;
}

/**
 * Guards knex's transaction object in place (knex makes it, and the client
 * object its queries run through, for this one transaction): once the
 * transaction is ending every query on it fails with HANDLE_ENDED, and
 * `trx.commit()`, `trx.rollback()` or COMMIT/ROLLBACK text from the callback
 * fail with HANDLE_OWNS_END. One check per query, no allocation.
 */
function guardHandle(trx: KnexTransactionLike, backend: SqlBackend): KnexHandleGuard {
  const { commit, rollback } = trx;
  const client = trx.client as KnexClientLike & { query?: QueryFn; stream?: QueryFn };
  let internal = false;
  const guard: KnexHandleGuard = {
    state: sqlHandleGuard(backend),
    end(how) {
      // knex sends COMMIT/ROLLBACK through the guarded client synchronously within this call.
      internal = true;
      try {
        return how === 'commit' ? commit() : rollback();
      } finally {
        internal = false;
      }
    },
  };
  const refusal = (obj: unknown): TransactionStateError | undefined => {
    if (internal) return undefined;
    const ended = guard.state.refusal('query');
    if (ended !== undefined) return ended;
    return endsTransaction(obj) ? handleOwnsEndError(backend, `raw('${String((obj as { sql?: unknown }).sql ?? obj).trim()}')`) : undefined;
  };
  for (const method of ['query', 'stream'] as const) {
    const original = client[method];
    if (typeof original !== 'function') continue;
    // query(connection, obj) and stream(connection, obj, stream, options): fixed arity, nothing allocated per query.
    client[method] = function (this: unknown, connection: unknown, obj: unknown, a: unknown, b: unknown): unknown {
      const refused = refusal(obj);
      return refused === undefined ? original.call(this, connection, obj, a, b) : Promise.reject(refused);
    };
  }
  trx.commit = () => {
    throw handleOwnsEndError(backend, 'trx.commit()');
  };
  trx.rollback = () => {
    throw handleOwnsEndError(backend, 'trx.rollback()');
  };
  return guard;
}

type QueryFn = (this: unknown, connection: unknown, obj: unknown, a: unknown, b: unknown) => unknown;

/**
 * SQLite keeps the transaction open when COMMIT fails with SQLITE_BUSY: roll
 * it back before the connection goes back to the pool, or the next BEGIN on it fails with "cannot start a transaction within a
 * transaction". better-sqlite3 is synchronous, so nothing runs in between.
 */
function rollBackLeftOpen(connection: unknown): void {
  const db = connection as { inTransaction?: unknown; exec?: (sql: string) => unknown } | null;
  if (db?.inTransaction === true && typeof db.exec === 'function') {
    try {
      db.exec('ROLLBACK');
    } catch {
      // Nothing more to do: the connection reports the problem on its next use.
    }
  }
}

/** pg's command tag of a knex query result (knex returns `{ response }` for its own statements). */
function commandOf(result: unknown): unknown {
  return (result as { response?: { command?: unknown } } | null | undefined)?.response?.command;
}

/** pg_xact_status and the orphan check through the knex pool (knex binds `?`). */
function knexProbe(knex: KnexLike): PostgresCommitProbe {
  const sql = (text: string): string => text.replace(/\$\d+/g, '?');
  return {
    status: async (xid) => {
      const status = lastRow(await knex.raw(sql(XACT_STATUS_SQL), [xid]))?.status;
      return typeof status === 'string' ? status : null;
    },
    terminateOrphan: async (pid, xid32) => void (await knex.raw(sql(TERMINATE_ORPHAN_SQL), [pid, xid32])),
  };
}
