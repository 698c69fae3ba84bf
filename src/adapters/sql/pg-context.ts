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
  postgresBeginSql,
  resolvePostgresCommit,
  validateSqlOptions,
} from './sql-context.js';
import type { CapturedTransaction, PostgresCommitProbe, SqlContextOptions, SqlOptions } from './sql-context.js';
import {
  classifySqlError,
  commitOutcomeUnknown,
  hasSqlState,
  isConnectionLoss,
  rolledBackInsteadOfCommit,
  wasNeverSent,
} from './sql-errors.js';
import type { HandleGuard } from '../../core/handle-guard.js';
import { ROLLBACK_GRACE_MS, beginLimit, endsTransaction, handleOwnsEndError, settlesWithin, sqlHandleGuard } from './sql-handle.js';
import type { PgPoolClientLike, PgPoolLike, PgQueryResultLike, PoolClientOf } from './sql-types.js';

/**
 * A transaction context on a pg Pool: each transaction checks out one
 * client (the handle: your `PoolClient`, typed as your pool's), runs BEGIN
 * on it and always gives it back, also after errors, timeouts and lost
 * connections (a broken connection is destroyed instead of pooled).
 * Savepoints (`propagation: 'nested'`) are supported. Top-level
 * {@link SqlOptions} in `options` apply to every transaction; a call's own
 * options win. `close()` leaves the pool open: it belongs to the caller.
 * @throws ConfigError when `pool` is not a pg Pool (a pg.Client is refused)
 *   or `options` are invalid.
 * @example
 * ```ts
 * import { pgTransactions } from 'txkit/sql';
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL }); // pg's Pool
 * const ctx = pgTransactions(pool, { verifyCommit: true });
 * const id = await ctx.withTransaction(async (tx) => {
 *   const { rows } = await tx.handle.query('INSERT INTO orders (total) VALUES ($1) RETURNING id', [10]);
 *   return rows[0].id;
 * });
 * ```
 */
export function pgTransactions<P extends PgPoolLike>(
  pool: P,
  options: SqlContextOptions = {},
): TransactionContext<PoolClientOf<P>, SqlOptions> {
  if (typeof pool !== 'object' || pool === null || typeof pool.connect !== 'function') {
    throw new ConfigError(`pgTransactions(pool) needs a pg Pool (new pg.Pool({...})), got ${pool === null ? 'null' : typeof pool}`, {
      backend: 'postgres',
    });
  }
  if (isPgClient(pool)) throw notAPool();
  const ctx = createTransactionContext<PgPoolClientLike, SqlOptions>(new PgDriver(pool), contextOptionsOf(options, 'postgres', 'pgTransactions'));
  return ctx as unknown as TransactionContext<PoolClientOf<P>, SqlOptions>;
}

/** A pg.Client (not a Pool): it has connection parameters of its own. */
export function isPgClient(pool: object): boolean {
  return typeof (pool as { connectionParameters?: unknown }).connectionParameters === 'object';
}

function notAPool(): ConfigError {
  return new ConfigError(
    'pgTransactions needs a pg Pool, whose connect() gives a PoolClient with release(); ' +
      'one pg.Client cannot carry concurrent transactions: pass a Pool',
    { backend: 'postgres' },
  );
}

class PgDriver implements TransactionDriver<PgPoolClientLike, SqlOptions> {
  readonly backend = 'postgres' as const;
  readonly optionKeys = SQL_OPTION_KEYS;
  readonly #pool: PgPoolLike;

  constructor(pool: PgPoolLike) {
    this.#pool = pool;
  }

  validateOptions(options: SqlOptions): void {
    validateSqlOptions('postgres', options);
  }

  async begin(options: SqlOptions & BeginOptions, signal: AbortSignal): Promise<DriverTransaction<PgPoolClientLike>> {
    // The core's timer starts once begin returns: the wait for a client and BEGIN are bounded here.
    const limit = beginLimit('postgres', options.timeoutMs, signal);
    try {
      // A client that arrives after the limit fired goes straight back (pg-pool cannot withdraw a waiting connect).
      const client = await limit.race(this.#pool.connect(), (late) => late.release());
      if (typeof client?.release !== 'function' || typeof client.query !== 'function') throw notAPool();
      const conn = new CheckedOutClient(client);
      const verify = options.verifyCommit === true;
      let capture: CapturedTransaction | undefined;
      try {
        const begin = postgresBeginSql(options);
        const result = await limit.race(client.query(verify ? `${begin}; ${CAPTURE_XID_SQL}` : begin), () => undefined);
        if (verify) capture = captured(lastRow(result), 'postgres');
      } catch (err) {
        // BEGIN unanswered within the limit: the connection is destroyed, never pooled with BEGIN in flight.
        conn.release(err === limit.reason || isConnectionLoss(err) || !hasSqlState(err) ? err : undefined);
        throw verify ? missingXactFunctions(err, 'postgres') : err;
      }
      return new PgTransaction(this.#pool, conn, capture);
    } finally {
      limit.dispose();
    }
  }

  classify = classifySqlError;

  async close(): Promise<void> {
    // The pool belongs to the caller; the core has already aborted open transactions.
  }
}

/**
 * A client checked out for one transaction. While checked out, pg-pool does
 * not listen for its 'error' event, and an unhandled 'error' would crash the
 * process; this listens, remembers the loss, and releases exactly once.
 */
export class CheckedOutClient {
  readonly client: PgPoolClientLike;
  lost: Error | undefined;
  #released = false;
  readonly #onError = (err: Error): void => {
    this.lost ??= err;
  };

  constructor(client: PgPoolClientLike) {
    this.client = client;
    client.on('error', this.#onError);
  }

  get released(): boolean {
    return this.#released;
  }

  /**
   * Back to the pool; with a reason (or after a loss) the connection is
   * destroyed instead (pg closes the socket at once when a query is still
   * waiting for an answer).
   */
  release(destroyBecause?: unknown): void {
    if (this.#released) return;
    this.#released = true;
    this.client.removeListener('error', this.#onError);
    const reason = destroyBecause ?? this.lost;
    if (reason === undefined) this.client.release();
    else this.client.release(reason instanceof Error ? reason : true);
  }
}

class PgTransaction implements DriverTransaction<PgPoolClientLike> {
  readonly handle: PgPoolClientLike;
  readonly id?: string;
  readonly resolveCommit?: () => Promise<CommitOutcome>;
  readonly #conn: CheckedOutClient;
  #savepoints = 0;
  /** Told once the transaction starts to end: the handle then refuses queries. */
  readonly #guard: HandleGuard<string> = sqlHandleGuard('postgres');
  /** Set by interrupt(): the cancel and the ROLLBACK after it must be done by then (Date.now() time). */
  #graceEnds: number | undefined;

  constructor(pool: PgPoolLike, conn: CheckedOutClient, capture: CapturedTransaction | undefined) {
    this.#conn = conn;
    this.handle = guardedClient(conn.client, this.#guard);
    if (capture !== undefined) {
      this.id = capture.xid;
      const probe = poolProbe(pool);
      this.resolveCommit = () => resolvePostgresCommit(probe, capture);
    }
  }

  async commit(): Promise<void> {
    this.#guard.ended ??= 'committing';
    const conn = this.#conn;
    // Lost before COMMIT: nothing was committed, and the loss itself is transient.
    if (conn.lost !== undefined) {
      conn.release();
      throw conn.lost;
    }
    let result: PgQueryResultLike | PgQueryResultLike[];
    try {
      result = await conn.client.query('COMMIT');
    } catch (err) {
      const lost = isConnectionLoss(err);
      conn.release(lost || !hasSqlState(err) ? err : undefined);
      if (lost && !wasNeverSent(err)) throw commitOutcomeUnknown('postgres', err, this.resolveCommit !== undefined);
      // A refused COMMIT (serialization failure, deferred constraint...) ended the transaction: rethrow for classify.
      throw err;
    }
    conn.release();
    if (!Array.isArray(result) && result.command === 'ROLLBACK') throw rolledBackInsteadOfCommit();
  }

  /**
   * Rolls back within ROLLBACK_GRACE_MS (counted from the interrupt, if
   * there was one); a connection that does not answer by then is destroyed,
   * which rolls the transaction back on the server as well.
   */
  async rollback(): Promise<void> {
    this.#guard.ended ??= 'rolled back';
    const conn = this.#conn;
    if (conn.released) return;
    // The server rolls back a transaction whose connection is gone; there is nothing to send.
    if (conn.lost !== undefined) return conn.release();
    const grace = this.#graceEnds === undefined ? ROLLBACK_GRACE_MS : this.#graceEnds - Date.now();
    try {
      if (!(await settlesWithin(conn.client.query('ROLLBACK'), grace))) return conn.release(rollbackUnanswered());
    } catch (err) {
      conn.release(err);
      if (isConnectionLoss(err)) return;
      throw err;
    }
    conn.release();
  }

  async interrupt(): Promise<void> {
    // From here on the callback, which may still be running, cannot queue more work on the client.
    this.#guard.ended ??= 'cancelled';
    this.#graceEnds ??= Date.now() + ROLLBACK_GRACE_MS;
    // A pg.Client underneath: its backend key data, address and query state (read only when present).
    if (!this.#conn.released) await cancelRunningStatement(this.#conn.client as unknown as PgCancelTarget, this.#graceEnds);
  }

  async savepoint(): Promise<DriverSavepoint<PgPoolClientLike>> {
    const name = `txkit_sp_${++this.#savepoints}`;
    const client = this.#conn.client;
    await client.query(`SAVEPOINT ${name}`);
    return {
      handle: this.handle,
      release: async () => void (await client.query(`RELEASE SAVEPOINT ${name}`)),
      rollback: async () => void (await client.query(`ROLLBACK TO SAVEPOINT ${name}`)),
      savepoint: () => this.savepoint(),
    };
  }
}

/** Why a connection was destroyed: its ROLLBACK got no answer within ROLLBACK_GRACE_MS. */
function rollbackUnanswered(): TxkitError {
  return new TxkitError(
    'ROLLBACK_UNANSWERED',
    `the Postgres connection did not answer ROLLBACK within ${ROLLBACK_GRACE_MS} ms and was destroyed (the server rolls back when it sees it close)`,
    { backend: 'postgres' },
  );
}

/**
 * The handle a callback gets: its own PoolClient (same object behind a
 * Proxy, same type), except that query() refuses once the transaction is
 * ending, refuses COMMIT/ROLLBACK text (txkit ends the transaction), and
 * release() is txkit's job. Without this, a callback still running after a
 * timeout could queue statements on a client that is back in the pool and
 * serving someone else's transaction.
 */
function guardedClient(client: PgPoolClientLike, guard: HandleGuard<string>): PgPoolClientLike {
  const query = (...args: unknown[]): unknown => {
    const refused =
      guard.refusal('query') ??
      (endsTransaction(args[0]) ? handleOwnsEndError('postgres', `query('${String((args[0] as { text?: unknown }).text ?? args[0]).trim()}')`) : undefined);
    if (refused !== undefined) {
      // Fail the way pg fails a query: through the callback if there is one, else a rejected promise.
      const callback = args[args.length - 1];
      if (typeof callback !== 'function') return Promise.reject(refused);
      process.nextTick(callback, refused);
      return undefined;
    }
    return Reflect.apply(client.query, client, args) as unknown;
  };
  const release = (): never => {
    throw new TransactionStateError(
      'release() is not allowed on a transaction handle: txkit releases the client when the transaction ends',
      { backend: 'postgres', method: 'release', code: 'HANDLE_RELEASE' },
    );
  };
  return new Proxy(client, {
    get(target, property, receiver) {
      if (property === 'query') return query;
      if (property === 'release') return release;
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
}

/** pg_xact_status and the orphan check, each on a client of its own from the pool. */
function poolProbe(pool: PgPoolLike): PostgresCommitProbe {
  const run = async (sql: string, values: readonly unknown[]): Promise<unknown> => {
    const conn = new CheckedOutClient(await pool.connect());
    try {
      const result = await conn.client.query(sql, values);
      conn.release();
      return result;
    } catch (err) {
      conn.release(err);
      throw err;
    }
  };
  return {
    status: async (xid) => {
      const status = lastRow(await run(XACT_STATUS_SQL, [xid]))?.status;
      return typeof status === 'string' ? status : null;
    },
    terminateOrphan: async (pid, xid32) => void (await run(TERMINATE_ORPHAN_SQL, [pid, xid32])),
  };
}
