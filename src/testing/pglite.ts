/**
 * Postgres in the test process for code written against `pgTransactions` or
 * `knexTransactions`: PGlite (Postgres compiled to WebAssembly) behind
 * `@electric-sql/pglite-socket`, so unmodified pg and knex code connects to
 * it over loopback TCP. PGlite, its socket server and pg are optional peer
 * dependencies, loaded only when {@link pgliteTransactions} runs.
 */
import { ConfigError } from '../core/index.js';
import type { TransactionContext } from '../core/index.js';
import { describeType } from '../core/options.js';
import { knexTransactions } from '../adapters/sql/knex-context.js';
import { pgTransactions } from '../adapters/sql/pg-context.js';
import { contextOptionsOf } from '../adapters/sql/sql-context.js';
import type { SqlContextOptions, SqlOptions } from '../adapters/sql/sql-context.js';
import type { KnexLike, KnexTransactionOf, PgPoolClientLike, PgPoolLike, PoolClientOf } from '../adapters/sql/sql-types.js';

/** What {@link pgliteTransactions} takes besides `pool` or `knex`: the context's own options, and the server's. */
export interface PgliteOptions extends SqlContextOptions {
  /**
   * Connections the embedded server accepts at once, and the size of the
   * pg Pool made when `pool` and `knex` are left out. PGlite still runs one
   * session: a second transaction waits until the first one ends.
   * @default 10
   */
  maxConnections?: number;
}

/** {@link pgliteTransactions} on a pg Pool of your own making, so the handle is typed as your `PoolClient`. */
export interface PglitePoolOptions<P extends PgPoolLike> extends PgliteOptions {
  /** Makes the pool from the embedded server's connection string, e.g. `(url) => new pg.Pool({ connectionString: url })`. */
  pool: (url: string) => P;
}

/** {@link pgliteTransactions} on a knex instance of your own making, so the handle is typed as your `Knex.Transaction`. */
export interface PgliteKnexOptions<K extends KnexLike> extends PgliteOptions {
  /** Makes the knex instance from the embedded server's connection string, e.g. `(url) => knex({ client: 'pg', connection: url })`. */
  knex: (url: string) => K;
}

/** One query result of the pg Pool {@link pgliteTransactions} makes when you pass none. */
export interface PgliteQueryResult<R> {
  /** The SQL command of the statement, e.g. `SELECT`. */
  readonly command: string;
  /** The rows returned. */
  readonly rows: R[];
  /** Rows the statement touched, or null when it does not say. */
  readonly rowCount: number | null;
}

/** The transaction handle when {@link pgliteTransactions} makes the pg Pool: the checked-out client. */
export interface PgliteClient extends PgPoolClientLike {
  /** Runs a statement on the transaction's connection. */
  query<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<PgliteQueryResult<R>>;
}

/** The pg Pool {@link pgliteTransactions} makes when you pass none. */
export interface PglitePool {
  /** Checks out a client. */
  connect(): Promise<PgliteClient>;
  /** Runs a statement on a pooled connection, outside any transaction. */
  query<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<PgliteQueryResult<R>>;
  /** Closes the pool's connections. */
  end(): Promise<void>;
}

/** The PGlite database itself: a query here runs in its one session without going through the socket server. */
export interface PgliteDatabase {
  /** Runs one statement with parameters. */
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
  /** Runs SQL text of one or more statements. */
  exec(sql: string): Promise<unknown>;
}

/** What {@link pgliteTransactions} started. `close()` stops all of it. */
export interface PgliteTransactions<H, D> {
  /** A context on the embedded database: `pgTransactions(db)` or `knexTransactions(db)`. */
  readonly context: TransactionContext<H, SqlOptions>;
  /** The pg Pool or knex instance the context runs on: for setup statements, reads, and `sqlOutboxStore(db)`. */
  readonly db: D;
  /** The embedded server's connection string, `postgres://postgres@127.0.0.1:<port>/postgres`, for more pools or knex instances. */
  readonly url: string;
  /**
   * The PGlite database. A query here runs in its one session at once, where
   * a query through `db` waits while a transaction is open; it also sees
   * that transaction's uncommitted writes.
   */
  readonly pglite: PgliteDatabase;
  /** Closes the context, ends `db` (`end()` or `destroy()`), stops the server and closes PGlite. Safe to call twice. */
  close(): Promise<void>;
}

interface PgliteModule {
  PGlite: { create(): Promise<PgliteDatabase & { close(): Promise<void> }> };
}

interface PgliteSocketModule {
  PGLiteSocketServer: new (options: { db: unknown; host: string; port: number; maxConnections: number }) => {
    start(): Promise<void>;
    stop(): Promise<void>;
    getServerConn(): string;
  };
}

type PgModule = { Pool?: PgPoolConstructor; default?: { Pool?: PgPoolConstructor } };
type PgPoolConstructor = new (config: { connectionString: string; max: number }) => PglitePool;

/**
 * Starts Postgres in the test process (PGlite behind its socket server on a
 * free loopback port) and returns a transaction context on it, for tests of
 * code written against `pgTransactions` or `knexTransactions`: the same SQL,
 * real commits and rollbacks, no server to run.
 *
 * Pass `pool` or `knex` to make the pg Pool or knex instance yourself: the
 * context is then typed with your library's handle (`pg.PoolClient`,
 * `Knex.Transaction`), so it fits a service typed
 * `TransactionContext<pg.PoolClient, SqlOptions>`. With neither, txkit loads
 * `pg` and makes a Pool. The other options are those of `pgTransactions` and
 * `knexTransactions` (`retry`, `isolationLevel`, ...).
 *
 * PGlite runs one session: a second transaction waits until the first one
 * ends, so `requires_new` inside a running transaction cannot complete, and
 * locks and deadlocks are not Postgres's. Test those on a real server.
 * @throws ConfigError when `@electric-sql/pglite`, `@electric-sql/pglite-socket`
 *   or (without `pool` and `knex`) `pg` is not installed, naming what to
 *   install; or when the options are invalid.
 * @example
 * ```ts
 * import pg from 'pg';
 * import { pgliteTransactions } from 'txkit/testing';
 *
 * const pglite = await pgliteTransactions({ pool: (url) => new pg.Pool({ connectionString: url }) });
 * await pglite.db.query('CREATE TABLE orders (id text PRIMARY KEY)');
 * await placeOrder(pglite.context, 'o-1'); // your service, typed TransactionContext<pg.PoolClient, SqlOptions>
 * await pglite.close();
 * ```
 */
export function pgliteTransactions<K extends KnexLike>(options: PgliteKnexOptions<K>): Promise<PgliteTransactions<KnexTransactionOf<K>, K>>;
export function pgliteTransactions<P extends PgPoolLike>(options: PglitePoolOptions<P>): Promise<PgliteTransactions<PoolClientOf<P>, P>>;
export function pgliteTransactions(options?: PgliteOptions): Promise<PgliteTransactions<PgliteClient, PglitePool>>;
export async function pgliteTransactions(options: PgliteOptions & { pool?: unknown; knex?: unknown } = {}): Promise<PgliteTransactions<unknown, unknown>> {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError(
      `pgliteTransactions(options) takes an options object such as { pool: (url) => new pg.Pool({ connectionString: url }) }, got ${describeType(options)}; ` +
        'leave it out for the defaults',
      { backend: 'postgres' },
    );
  }
  const { pool, knex, maxConnections = 10, ...contextOptions } = options;
  checkOwnOptions(pool, knex, maxConnections);
  // The context's options are checked again by its factory; unknown keys are refused here, before anything starts.
  contextOptionsOf(contextOptions, 'postgres', 'pgliteTransactions');

  const { PGlite } = await load<PgliteModule>('@electric-sql/pglite', () => import('@electric-sql/pglite'));
  const { PGLiteSocketServer } = await load<PgliteSocketModule>('@electric-sql/pglite-socket', () => import('@electric-sql/pglite-socket'));
  const makePool = pool === undefined && knex === undefined ? await defaultPool() : undefined;

  const pglite = await PGlite.create();
  // Port 0: the OS picks a free loopback port.
  const server = new PGLiteSocketServer({ db: pglite, host: '127.0.0.1', port: 0, maxConnections });
  let db: unknown;
  let context: TransactionContext<unknown, SqlOptions> | undefined;
  const stop = async (): Promise<void> => {
    await context?.close();
    if (db !== undefined) await endDb(db);
    await server.stop();
    await pglite.close();
  };
  try {
    await server.start();
    const url = `postgres://postgres@${server.getServerConn()}/postgres`;
    if (typeof knex === 'function') {
      db = (knex as (url: string) => KnexLike)(url);
      context = knexTransactions(db as KnexLike, contextOptions);
    } else {
      db = typeof pool === 'function' ? (pool as (url: string) => PgPoolLike)(url) : makePool?.(url, maxConnections);
      context = pgTransactions(db as PgPoolLike, contextOptions);
    }
    let closing: Promise<void> | undefined;
    return { context, db, url, pglite, close: () => (closing ??= stop()) };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

function checkOwnOptions(pool: unknown, knex: unknown, maxConnections: unknown): void {
  if (pool !== undefined && knex !== undefined) {
    throw new ConfigError('pgliteTransactions takes `pool` or `knex`, not both: the context runs on one of them', { backend: 'postgres' });
  }
  for (const [name, value, example] of [
    ['pool', pool, '(url) => new pg.Pool({ connectionString: url })'],
    ['knex', knex, "(url) => knex({ client: 'pg', connection: url })"],
  ] as const) {
    if (value !== undefined && typeof value !== 'function') {
      throw new ConfigError(`pgliteTransactions option ${name} must be a function of the connection string, such as ${example}; got ${describeType(value)}`, {
        backend: 'postgres',
      });
    }
  }
  if (typeof maxConnections !== 'number' || !Number.isInteger(maxConnections) || maxConnections < 1) {
    throw new ConfigError(`pgliteTransactions option maxConnections must be a positive integer, got ${describeType(maxConnections, 'quoted')}`, {
      backend: 'postgres',
    });
  }
}

/** The pg Pool made when the caller passes neither `pool` nor `knex`. */
async function defaultPool(): Promise<(url: string, max: number) => PglitePool> {
  const pg = await load<PgModule>('pg', () => import('pg'), 'or pass `pool` or `knex` to make the connection yourself');
  const Pool = pg.Pool ?? pg.default?.Pool;
  if (typeof Pool !== 'function') throw new ConfigError("the installed 'pg' has no Pool class: install pg 8.11 or later", { backend: 'postgres' });
  return (url, max) => new Pool({ connectionString: url, max });
}

/** Ends what `pool` or `knex` made: a pg Pool's `end()`, knex's `destroy()`. */
async function endDb(db: unknown): Promise<void> {
  const closable = db as { end?: () => Promise<unknown>; destroy?: () => Promise<unknown> };
  if (typeof closable.destroy === 'function') await closable.destroy();
  else if (typeof closable.end === 'function') await closable.end();
}

/** Loads an optional peer dependency; when it is not installed, a ConfigError says what to install. */
async function load<T>(name: string, importer: () => Promise<unknown>, alternative?: string): Promise<T> {
  try {
    return (await importer()) as T;
  } catch (err) {
    if (!isMissing(err, name)) throw err;
    throw new ConfigError(
      `pgliteTransactions needs the optional peer dependency ${name}, which is not installed: ` +
        `install ${name} (npm install --save-dev ${name})${alternative === undefined ? '' : `, ${alternative}`}`,
      { backend: 'postgres', cause: err },
    );
  }
}

/**
 * Whether `err` (or an error it wraps, as module loaders and test runners do)
 * says that `name` itself, not something it imports, cannot be found.
 */
function isMissing(err: unknown, name: string): boolean {
  const named = new RegExp(`Cannot find (?:package|module) '${name}(?:/[^']*)?'`);
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth += 1) {
    const code = (e as { code?: unknown }).code;
    if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && named.test(e.message)) return true;
  }
  return false;
}
