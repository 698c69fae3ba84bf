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
    contextOptionsOf(options, backend),
  );
  // A handle kept from an ended transaction fails in the user's own query, where no adapter code runs;
  // knex refuses it (nothing reaches the server) with a plain Error, which gets its typed form here.
  const run = ctx.withTransaction.bind(ctx) as (fn: unknown, o?: unknown) => Promise<unknown>;
  Object.defineProperty(ctx, 'withTransaction', {
    value: (fn: unknown, o?: unknown) => run(fn, o).catch((err: unknown) => Promise.reject(endedHandleError(err, backend) ?? err)),
    configurable: true,
    writable: true,
  });
  return ctx as unknown as TransactionContext<KnexTransactionOf<K>, SqlOptions>;
}

/** knex's refusal of a query on a completed transaction (knex lib/execution/transaction.js), as a TransactionStateError. */
function endedHandleError(err: unknown, backend: SqlBackend): TransactionStateError | undefined {
  if (err instanceof TxkitError || !(err instanceof Error) || !err.message.startsWith('Transaction query already complete')) return undefined;
  return new TransactionStateError(
    `a knex transaction handle was used after its ${labelOf(backend)} transaction ended, and knex refused the query; ` +
      'use tx.handle of the transaction you are in, not one kept from an earlier unit',
    { backend, cause: err, code: 'HANDLE_ENDED', method: 'query' },
  );
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
  readonly capabilities = { savepoints: true };
  readonly backend: SqlBackend;
  readonly #knex: KnexLike;

  constructor(knex: KnexLike, backend: SqlBackend) {
    this.#knex = knex;
    this.backend = backend;
  }

  validateOptions(options: SqlOptions): void {
    validateSqlOptions(this.backend, options);
  }

  async begin(options: SqlOptions & BeginOptions): Promise<DriverTransaction<KnexTransactionLike>> {
    const config = knexConfigOf(this.backend, options);
    const scope = await openScope(this.backend, (container) => this.#knex.transaction(container, config));
    const verify = options.verifyCommit === true;
    let capture: CapturedTransaction | undefined;
    try {
      // knex cannot say DEFERRABLE; Postgres takes it as a transaction mode before the first query.
      if (options.deferrable === true) await scope.trx.raw('SET TRANSACTION DEFERRABLE');
      if (verify) capture = captured(lastRow(await scope.trx.raw(CAPTURE_XID_SQL)), this.backend);
    } catch (err) {
      await endScope(scope, scope.trx.rollback()).catch(() => undefined);
      throw verify ? missingXactFunctions(err, this.backend) : err;
    }
    return new KnexTransaction(this.#knex, this.backend, scope, capture);
  }

  classify = classifySqlError;

  async close(): Promise<void> {
    // The knex instance belongs to the caller; the core has already aborted open transactions.
  }
}

/** knex's own transaction modes: one `BEGIN TRANSACTION ...` on Postgres, `SET TRANSACTION ...; BEGIN` on MySQL. */
function knexConfigOf(backend: SqlBackend, options: SqlOptions): KnexTransactionConfigLike {
  const config: KnexTransactionConfigLike = {};
  // SQLite is serializable already, and knex would send SET TRANSACTION, which SQLite does not know.
  if (backend === 'sqlite') return config;
  if (options.isolationLevel !== undefined) config.isolationLevel = options.isolationLevel;
  if (options.readOnly === true) config.readOnly = true;
  return config;
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
 */
async function openScope(
  backend: SqlBackend,
  start: (container: (trx: KnexTransactionLike) => void) => PromiseLike<unknown>,
): Promise<KnexScope> {
  let opened!: (trx: KnexTransactionLike) => void;
  const ready = new Promise<KnexTransactionLike>((resolve) => (opened = resolve));
  const ended = Promise.resolve(start((trx) => opened(trx))).then(
    (): Ending => SUCCEEDED,
    (error: unknown): Ending => ({ failed: true, error: error ?? knexGaveUp(backend) }),
  );
  const first = await Promise.race([ready.then((trx) => ({ trx })), ended.then((ending) => ({ ending }))]);
  // knex still calls the callback when BEGIN (or SAVEPOINT) failed, with a transaction already completed.
  if ('trx' in first && !first.trx.isCompleted()) return { trx: first.trx, ended };
  const ending = 'ending' in first ? first.ending : await ended;
  throw ending.failed
    ? ending.error
    : new TxkitError('KNEX_ENDED', `knex ended the ${labelOf(backend)} transaction before it began`, { backend });
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
  readonly interrupt?: () => Promise<void>;
  readonly #backend: SqlBackend;
  readonly #scope: KnexScope;
  #ending = false;

  constructor(knex: KnexLike, backend: SqlBackend, scope: KnexScope, capture: CapturedTransaction | undefined) {
    this.handle = scope.trx;
    this.#backend = backend;
    this.#scope = scope;
    if (capture !== undefined) {
      this.id = capture.xid;
      const probe = knexProbe(knex);
      this.resolveCommit = () => resolvePostgresCommit(probe, capture);
    }
    // Cancels the running statement so the rollback after a timeout is not queued behind it.
    if (backend === 'postgres') {
      this.interrupt = async () => cancelRunningStatement(((await connectionOf(scope.trx)) ?? {}) as PgCancelTarget);
    } else if (backend === 'mysql') {
      // knex runs KILL QUERY <thread id> on a raw connection of its own, outside the pool.
      this.interrupt = async () => void (await knex.client.cancelQuery?.(await connectionOf(scope.trx)));
    }
    // SQLite (better-sqlite3) runs statements synchronously: nothing can be running while a timer fires.
  }

  async commit(): Promise<void> {
    this.#ending = true;
    const { trx, ended } = this.#scope;
    const connection = this.#backend === 'sqlite' ? await connectionOf(trx) : undefined;
    const result = await trx.commit();
    const ending = await ended;
    if (ending.failed) {
      const err = ending.error;
      if (connection !== undefined) rollBackLeftOpen(connection);
      if (isConnectionLoss(err) && !wasNeverSent(err)) {
        throw commitOutcomeUnknown(this.#backend, err, this.resolveCommit !== undefined);
      }
      throw err;
    }
    if (this.#backend === 'postgres' && commandOf(result) === 'ROLLBACK') throw rolledBackInsteadOfCommit();
  }

  async rollback(): Promise<void> {
    if (this.#ending) return;
    this.#ending = true;
    const { trx, ended } = this.#scope;
    if (!trx.isCompleted()) await trx.rollback();
    const ending = await ended;
    // The server rolls back a transaction whose connection is gone.
    if (ending.failed && !isConnectionLoss(ending.error)) throw ending.error;
  }

  savepoint(): Promise<DriverSavepoint<KnexTransactionLike>> {
    return openSavepoint(this.#backend, this.#scope.trx);
  }
}

async function openSavepoint(backend: SqlBackend, parent: KnexTransactionLike): Promise<DriverSavepoint<KnexTransactionLike>> {
  // A knex transaction opened on a transaction is a SAVEPOINT; its commit releases it, its rollback rolls back to it.
  const scope = await openScope(backend, (container) => parent.transaction(container));
  return {
    handle: scope.trx,
    release: async () => void (await endScope(scope, scope.trx.commit())),
    rollback: async () => void (await endScope(scope, scope.trx.rollback())),
    savepoint: () => openSavepoint(backend, scope.trx),
  };
}

/** The native connection of a knex transaction (a pg.Client, a mysql2 connection, a better-sqlite3 Database). */
async function connectionOf(trx: KnexTransactionLike): Promise<unknown> {
  return trx.client.acquireConnection?.();
}

/**
 * SQLite keeps the transaction open when COMMIT fails with SQLITE_BUSY, and
 * knex has already put the connection back in its pool: roll it back there,
 * or the next BEGIN on it fails with "cannot start a transaction within a
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
