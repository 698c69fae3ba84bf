import { ConfigError, checkKnownOptions } from '../../core/index.js';
import type { BeginOptions, CommitOutcome, ContextOptions } from '../../core/index.js';
import { describeType } from '../../core/options.js';
import { labelOf } from './sql-errors.js';
import type { SqlBackend } from './sql-errors.js';

/** The SQL standard isolation levels, as accepted by {@link SqlOptions.isolationLevel}. */
export type IsolationLevel = 'read uncommitted' | 'read committed' | 'repeatable read' | 'serializable';

/** Options of one SQL transaction; as factory options they apply to every transaction of the context. */
export interface SqlOptions {
  /**
   * SQL isolation level. Postgres runs 'read uncommitted' as 'read committed';
   * SQLite only has 'serializable' (any other level is a ConfigError).
   * @default the server's default (Postgres: read committed, MySQL/MariaDB: repeatable read)
   */
  isolationLevel?: IsolationLevel;
  /**
   * Starts the transaction READ ONLY (Postgres, MySQL/MariaDB); SQLite has no
   * read-only transactions (ConfigError: open the database read-only instead).
   * @default false (the server's default, normally read write)
   */
  readOnly?: boolean;
  /**
   * Postgres only, and only with isolationLevel 'serializable' and readOnly:
   * waits for a snapshot that can never cause a serialization failure.
   * @default false
   */
  deferrable?: boolean;
  /**
   * Postgres only (pg and knex with the pg client): records the transaction
   * id at begin and, when the connection breaks during COMMIT, asks
   * pg_xact_status() on a fresh connection whether it committed, instead of
   * failing with UnknownCommitResultError. Needs Postgres 13 or later.
   * @default false
   */
  verifyCommit?: boolean;
}

/**
 * Factory options: the context's options, plus SqlOptions, `timeoutMs` and
 * `signal` that apply to every transaction, as if given in `defaults` (a
 * call's own options win; top-level ones win over `defaults`).
 */
export interface SqlContextOptions extends ContextOptions<SqlOptions>, SqlOptions, BeginOptions {}

/** The keys of SqlOptions: the drivers declare them, and the core refuses any other key in a call's options and in defaults. */
export const SQL_OPTION_KEYS: readonly string[] = Object.freeze(['isolationLevel', 'readOnly', 'deferrable', 'verifyCommit']);

const LEVELS: readonly IsolationLevel[] = ['read uncommitted', 'read committed', 'repeatable read', 'serializable'];

/** Validates SqlOptions for `backend` before any work (the core calls it for defaults and for every call). */
export function validateSqlOptions(backend: SqlBackend, options: SqlOptions): void {
  const { isolationLevel, readOnly, deferrable, verifyCommit } = options;
  const db = labelOf(backend);
  if (isolationLevel !== undefined && !LEVELS.includes(isolationLevel)) {
    throw new ConfigError(
      `isolationLevel must be one of ${LEVELS.map((l) => `'${l}'`).join(', ')}, got ${describeType(isolationLevel, 'quoted')}`,
      { backend },
    );
  }
  for (const [name, value] of [
    ['readOnly', readOnly],
    ['deferrable', deferrable],
    ['verifyCommit', verifyCommit],
  ] as const) {
    if (value !== undefined && typeof value !== 'boolean') {
      throw new ConfigError(`${name} must be a boolean, got ${describeType(value, 'quoted')}`, { backend });
    }
  }
  if (backend === 'sqlite' && isolationLevel !== undefined && isolationLevel !== 'serializable') {
    throw new ConfigError(
      `SQLite has no '${isolationLevel}' isolation level: every SQLite transaction is serializable; ` +
        "leave isolationLevel out or ask for 'serializable'",
      { backend },
    );
  }
  if (backend === 'sqlite' && readOnly === true) {
    throw new ConfigError(
      'SQLite has no read-only transactions; open the database read-only instead ' +
        '(better-sqlite3: new Database(file, { readonly: true }); knex: connection.options.readonly)',
      { backend },
    );
  }
  if (deferrable === true) {
    if (backend !== 'postgres') {
      throw new ConfigError(`deferrable is a Postgres option; ${db} has no deferrable transactions`, { backend });
    }
    if (isolationLevel !== 'serializable' || readOnly !== true) {
      throw new ConfigError(
        "deferrable only has an effect on serializable read-only transactions (Postgres ignores it otherwise); " +
          "set isolationLevel: 'serializable' and readOnly: true with it, or drop deferrable",
        { backend },
      );
    }
  }
  if (verifyCommit === true && backend !== 'postgres') {
    throw new ConfigError(
      `verifyCommit needs Postgres's pg_xact_status(), and ${db} has no way to look a finished transaction up; ` +
        'drop verifyCommit (an unknown commit then fails with UnknownCommitResultError and is never rerun blindly)',
      { backend },
    );
  }
}

/** `BEGIN` with the transaction modes of `options` (one round trip). */
export function postgresBeginSql(options: SqlOptions): string {
  let sql = 'BEGIN';
  if (options.isolationLevel !== undefined) sql += ` ISOLATION LEVEL ${options.isolationLevel.toUpperCase()}`;
  if (options.readOnly === true) sql += ' READ ONLY';
  if (options.deferrable === true) sql += ' DEFERRABLE';
  return sql;
}

/** Records what verifyCommit needs: the transaction id (forcing its assignment) and the backend's pid. */
export const CAPTURE_XID_SQL = 'SELECT pg_current_xact_id()::text AS xid, pg_backend_pid() AS pid';

/** Looks the transaction up; `$1` is the xid8 as text. */
export const XACT_STATUS_SQL = 'SELECT pg_xact_status($1::xid8) AS status';

/**
 * Terminates the session `$1` only while it still holds transaction `$2`
 * (32-bit xid) and waits for a command: so a reused pid, the probing session
 * itself (PGlite has one backend for all connections) or a session busy
 * committing is never touched.
 */
export const TERMINATE_ORPHAN_SQL =
  'SELECT pg_terminate_backend(pid) FROM pg_stat_activity ' +
  "WHERE pid = $1 AND pid <> pg_backend_pid() AND backend_xid::text = $2 AND state LIKE 'idle in transaction%'";

/** A begin with verifyCommit failed because the server lacks pg_current_xact_id (Postgres before 13). */
export function missingXactFunctions(err: unknown, backend: SqlBackend): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== '42883') return err;
  return new ConfigError(
    'verifyCommit needs pg_current_xact_id() and pg_xact_status() (Postgres 13 or later), which this server lacks; ' +
      'upgrade the server or drop verifyCommit',
    { backend, cause: err },
  );
}

/** What a SQL factory accepts: the core's context options and the transaction options that become defaults. */
const FACTORY_OPTIONS: ReadonlySet<string> = new Set([
  'retry',
  'defaults',
  'onHookError',
  'telemetry',
  'logger',
  'isolationLevel',
  'readOnly',
  'deferrable',
  'verifyCommit',
  'timeoutMs',
  'signal',
]);

const HINTS: Readonly<Record<string, string>> = {
  isolation: "Use isolationLevel, e.g. { isolationLevel: 'serializable' }.",
  readonly: 'Use readOnly.',
  timeout: 'Use timeoutMs (milliseconds).',
  propagation: 'propagation is chosen per call: pass it to withTransaction.',
};

/**
 * Splits factory options into the core's ContextOptions, the top-level
 * transaction options (SqlOptions, timeoutMs, signal) becoming defaults.
 * @throws ConfigError on an unknown key (the core checks those of `defaults`).
 */
export function contextOptionsOf(options: SqlContextOptions, backend: SqlBackend, factory: string): ContextOptions<SqlOptions> {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError(
      `the options of a SQL transaction context must be an object such as { isolationLevel: 'serializable' }, got ${describeType(options, 'quoted')}; ` +
        'leave them out for the defaults',
      { backend },
    );
  }
  checkKnownOptions(options, FACTORY_OPTIONS, `${factory} options`, backend, HINTS);
  const { isolationLevel, readOnly, deferrable, verifyCommit, timeoutMs, signal, ...context } = options;
  const top: SqlOptions & BeginOptions = {};
  if (isolationLevel !== undefined) top.isolationLevel = isolationLevel;
  if (readOnly !== undefined) top.readOnly = readOnly;
  if (deferrable !== undefined) top.deferrable = deferrable;
  if (verifyCommit !== undefined) top.verifyCommit = verifyCommit;
  if (timeoutMs !== undefined) top.timeoutMs = timeoutMs;
  if (signal !== undefined) top.signal = signal;
  if (Object.keys(top).length === 0) return context;
  return { ...context, defaults: { ...context.defaults, ...top } };
}

/** What resolving a Postgres commit needs, each adapter running it on a fresh connection of its own pool. */
export interface PostgresCommitProbe {
  /** pg_xact_status(xid): 'committed', 'aborted', 'in progress', or null when the id is too old to know. */
  status(xid: string): Promise<string | null>;
  /** Terminates backend `pid` if it still holds transaction `xid32` idle in transaction (an orphaned session). */
  terminateOrphan(pid: number, xid32: string): Promise<void>;
}

export interface CapturedTransaction {
  /** pg_current_xact_id() as text: the 64-bit transaction id. */
  readonly xid: string;
  /** pg_backend_pid() of the session that ran it. */
  readonly pid: number;
}

/**
 * Resolves a commit whose reply was lost. If the server still shows the
 * transaction in progress while its session waits for a command (the COMMIT
 * never arrived, and the server has not noticed the dead connection yet,
 * which can take until TCP keepalive), that session is an orphan nobody can
 * use again: terminate it, so the outcome becomes definite (aborted). Errors
 * mean "unknown": the core asks again after a back-off, within the deadline.
 */
export async function resolvePostgresCommit(probe: PostgresCommitProbe, tx: CapturedTransaction): Promise<CommitOutcome> {
  try {
    let status = await probe.status(tx.xid);
    if (status === 'in progress') {
      await probe.terminateOrphan(tx.pid, (BigInt(tx.xid) & 0xffff_ffffn).toString());
      status = await probe.status(tx.xid);
    }
    return status === 'committed' ? 'committed' : status === 'aborted' ? 'aborted' : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The first row of a pg result, or of the last result of a multi-statement query. */
export function lastRow(result: unknown): Record<string, unknown> | undefined {
  const last = Array.isArray(result) ? (result[result.length - 1] as unknown) : result;
  const rows = (last as { rows?: unknown } | undefined)?.rows;
  return Array.isArray(rows) ? (rows[0] as Record<string, unknown> | undefined) : undefined;
}

export function captured(row: Record<string, unknown> | undefined, backend: SqlBackend): CapturedTransaction {
  const xid = row?.xid;
  const pid = Number(row?.pid);
  if (typeof xid !== 'string' || !/^\d+$/.test(xid) || !Number.isInteger(pid)) {
    throw new ConfigError(
      'verifyCommit could not read the transaction id (pg_current_xact_id(), Postgres 13 or later); ' +
        'upgrade the server or drop verifyCommit',
      { backend },
    );
  }
  return { xid, pid };
}

