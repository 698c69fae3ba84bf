import { CheckedOutClient, isPgClient } from '../../adapters/sql/pg-context.js';
import { hasSqlState, isConnectionLoss } from '../../adapters/sql/sql-errors.js';
import type { KnexLike, PgPoolClientLike, PgPoolLike } from '../../adapters/sql/sql-types.js';
import { ConfigError } from '../../core/index.js';
import { describeType } from '../../core/options.js';
import { affected, dialectOf } from './sql-schema.js';
import type { Dialect } from './sql-schema.js';

/** The part of knex (an instance or a transaction) the store queries with. */
export interface KnexRawLike {
  /** Runs one SQL statement with positional `?` bindings. */
  raw(sql: string, bindings?: readonly unknown[]): PromiseLike<unknown>;
}

/** The part of a pg client (a `pgTransactions` handle: the transaction's `PoolClient`) the store queries with. */
export interface PgQueryableLike {
  /** Runs one SQL statement with `$1`, `$2`... values. */
  query(text: string, values?: readonly unknown[]): PromiseLike<unknown>;
}

/**
 * A transaction handle the SQL store writes through: `tx.handle` of
 * `knexTransactions` (a knex transaction) or of `pgTransactions` (a pg
 * `PoolClient`, Postgres only).
 */
export type SqlOutboxHandle = KnexRawLike | PgQueryableLike;

/** What one statement gave back, whichever driver ran it. */
export interface SqlResult {
  /** The rows of a query; empty for a write. */
  readonly rows: readonly unknown[];
  /** Rows a write changed. */
  readonly affected: number;
}

/** Runs one statement with positional `?` bindings. */
export type SqlRun = (sql: string, bindings?: readonly unknown[]) => Promise<SqlResult>;

/** A connection the store holds on to: the session lock of a migration, the LISTEN of relays' wake-ups. */
export interface SqlSession {
  /** Runs one statement on this connection. */
  readonly run: SqlRun;
  /** Calls `fn` with the channel and payload of each notification the connection receives (Postgres). */
  onNotification(fn: (channel: string, payload: string | undefined) => void): void;
  /** Calls `fn` with the driver's error once when the connection breaks while held. */
  onLost(fn: (reason: unknown) => void): void;
  /** Gives the connection back; with a reason (or once lost) it is discarded instead. Idempotent. */
  release(destroyBecause?: unknown): Promise<void>;
}

/**
 * How the store reaches its database, so its SQL is written once for every
 * client library: knex (Postgres, MySQL/MariaDB, SQLite) or a pg Pool.
 * Statements use knex's positional `?` placeholders everywhere.
 */
export interface SqlExecutor {
  readonly dialect: Dialect;
  /** Runs a statement on a pooled connection, outside any transaction of the caller. */
  readonly run: SqlRun;
  /** A connection of its own until released; undefined where there is no pool to take one from (SQLite). */
  session(): Promise<SqlSession | undefined>;
  /** Runs a statement inside the caller's transaction, through its handle (a knex transaction or, on Postgres, a pg client). */
  runIn(handle: SqlOutboxHandle, sql: string, bindings?: readonly unknown[]): Promise<SqlResult>;
}

/**
 * The executor of what `sqlOutboxStore` was given: a knex instance or a pg
 * Pool, told apart at run time.
 * @throws ConfigError for a pg.Client (which cannot hold the store's
 *   concurrent queries and its LISTEN connection) and for anything else.
 */
export function sqlExecutorOf(db: unknown): SqlExecutor {
  const candidate = db as { raw?: unknown; client?: unknown; connect?: unknown } | null | undefined;
  if ((typeof db === 'function' || typeof db === 'object') && candidate !== null && candidate !== undefined) {
    if (typeof candidate.raw === 'function' && typeof candidate.client === 'object' && candidate.client !== null) {
      return new KnexExecutor(db as KnexLike);
    }
    if (typeof candidate.connect === 'function') {
      if (isPgClient(candidate)) {
        throw new ConfigError(
          'sqlOutboxStore(db) needs a pg Pool, not a pg.Client: the store runs queries on pooled connections while ' +
            'one more stays checked out for LISTEN; pass new pg.Pool({ connectionString }) (or a knex instance)',
          { backend: 'postgres' },
        );
      }
      return new PgExecutor(db as PgPoolLike);
    }
  }
  throw new ConfigError(
    `sqlOutboxStore(db) needs a knex instance (knex({ client, connection })) or a pg Pool (new pg.Pool({ connectionString })), got ${describeType(db, 'json')}`,
  );
}

/** A statement's result as knex's raw() returns it for each dialect, normalized. */
function knexResult(dialect: Dialect, result: unknown): SqlResult {
  let rows: unknown;
  if (dialect === 'postgres') rows = (result as { rows?: unknown } | null)?.rows;
  else if (dialect === 'mysql') rows = Array.isArray(result) ? result[0] : undefined;
  else rows = result;
  return { rows: Array.isArray(rows) ? rows : [], affected: affected(result) };
}

/** A statement's result as pg's query() returns it, normalized. */
function pgResult(result: unknown): SqlResult {
  const r = result as { rows?: unknown; rowCount?: number | null };
  return { rows: Array.isArray(r.rows) ? r.rows : [], affected: Number(r.rowCount ?? 0) };
}

/** knex's positional `?` placeholders as pg's `$1, $2, ...`; a `?` inside a quoted literal stays as it is. */
export function pgPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/'(?:[^']|'')*'|\?/g, (m) => (m === '?' ? `$${++n}` : m));
}

/** The handle's own driver runs the statement: knex's raw() on a knex transaction, query() on a pg client. */
async function runInHandle(dialect: Dialect, handle: SqlOutboxHandle, sql: string, bindings: readonly unknown[] = []): Promise<SqlResult> {
  const h = handle as Partial<KnexRawLike & PgQueryableLike> | null | undefined;
  if (typeof h?.raw === 'function') return knexResult(dialect, await h.raw(sql, bindings));
  if (typeof h?.query === 'function' && dialect === 'postgres') return pgResult(await h.query(pgPlaceholders(sql), bindings));
  throw new ConfigError(
    `the SQL outbox store writes through the transaction's handle: tx.handle of knexTransactions(knex)${dialect === 'postgres' ? ' or pgTransactions(pool)' : ''} ` +
      `on the store's database, got ${describeType(handle, 'json')}${typeof h?.query === 'function' ? ` with query() on a ${dialect} store` : ''}; ` +
      'pass the transaction of the context that opens transactions on that database',
  );
}

class KnexExecutor implements SqlExecutor {
  readonly dialect: Dialect;
  readonly #db: KnexLike;

  constructor(db: KnexLike) {
    this.#db = db;
    this.dialect = dialectOf(db.client.dialect);
  }

  readonly run: SqlRun = async (sql, bindings) => knexResult(this.dialect, await this.#db.raw(sql, bindings));

  runIn(handle: SqlOutboxHandle, sql: string, bindings?: readonly unknown[]): Promise<SqlResult> {
    return runInHandle(this.dialect, handle, sql, bindings);
  }

  async session(): Promise<SqlSession | undefined> {
    const client = this.#db.client;
    if (this.dialect === 'sqlite' || client.acquireConnection === undefined) return undefined;
    const connection = (await client.acquireConnection()) as KnexRawConnection;
    const listeners: [string, (...args: never[]) => void][] = [];
    const listen = (event: string, fn: (...args: never[]) => void): void => {
      listeners.push([event, fn]);
      connection.on?.(event, fn);
    };
    let lost: unknown;
    let released = false;
    listen('error', (err: unknown) => void (lost ??= err));
    return {
      run: async (sql, bindings) => knexResult(this.dialect, await (this.#db.raw(sql, bindings) as unknown as KnexRawOnConnection).connection(connection)),
      onNotification: (fn) => listen('notification', (msg: { channel: string; payload?: string }) => fn(msg.channel, msg.payload)),
      onLost: (fn) => listen('error', (err: unknown) => fn(err)),
      release: async (destroyBecause) => {
        if (released) return;
        released = true;
        for (const [event, fn] of listeners) connection.removeListener?.(event, fn);
        const reason = destroyBecause ?? lost;
        // knex's own mark of a broken connection: its pool discards the connection instead of handing it out.
        if (reason !== undefined) connection.__knex__disposed ??= reason instanceof Error ? reason.message : String(reason);
        await client.releaseConnection?.(connection);
      },
    };
  }
}

/** A raw driver connection from knex's pool (a pg.Client on Postgres). */
interface KnexRawConnection {
  on?(event: string, fn: (...args: never[]) => void): unknown;
  removeListener?(event: string, fn: (...args: never[]) => void): unknown;
  __knex__disposed?: unknown;
}

/** knex's raw() query builder, which runs on a connection given to it. */
interface KnexRawOnConnection {
  connection(connection: unknown): PromiseLike<unknown>;
}

/** pg's PoolClient as the LISTEN connection uses it. */
interface PgNotifyingClient extends PgPoolClientLike {
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'notification', listener: (msg: { channel: string }) => void): unknown;
  removeListener(event: 'error' | 'notification', listener: (...args: never[]) => void): unknown;
}

class PgExecutor implements SqlExecutor {
  readonly dialect = 'postgres' as const;
  readonly #pool: PgPoolLike;

  constructor(pool: PgPoolLike) {
    this.#pool = pool;
  }

  /** One statement on a client of its own, given back at once (destroyed if it broke), as pg's pool.query() does. */
  readonly run: SqlRun = async (sql, bindings = []) => {
    const conn = new CheckedOutClient(await this.#pool.connect());
    try {
      const result = await conn.client.query(pgPlaceholders(sql), bindings);
      conn.release();
      return pgResult(result);
    } catch (err) {
      // An error the server answered with leaves the connection usable; anything else discards it.
      conn.release(isConnectionLoss(err) || !hasSqlState(err) ? err : undefined);
      throw err;
    }
  };

  runIn(handle: SqlOutboxHandle, sql: string, bindings?: readonly unknown[]): Promise<SqlResult> {
    return runInHandle(this.dialect, handle, sql, bindings);
  }

  async session(): Promise<SqlSession> {
    const conn = new CheckedOutClient(await this.#pool.connect());
    const client = conn.client as PgNotifyingClient;
    const listeners: ['error' | 'notification', (...args: never[]) => void][] = [];
    return {
      run: async (sql, bindings = []) => pgResult(await client.query(pgPlaceholders(sql), bindings)),
      onNotification: (fn) => {
        const listener = (msg: { channel: string; payload?: string }): void => fn(msg.channel, msg.payload);
        listeners.push(['notification', listener]);
        client.on('notification', listener);
      },
      onLost: (fn) => {
        const listener = (err: unknown): void => fn(err);
        listeners.push(['error', listener]);
        client.on('error', listener);
      },
      release: async (destroyBecause) => {
        if (conn.released) return;
        for (const [event, fn] of listeners) client.removeListener(event, fn);
        conn.release(destroyBecause);
      },
    };
  }
}
