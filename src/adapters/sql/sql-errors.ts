import { TxkitError, UnknownCommitResultError, classifyKnown } from '../../core/index.js';
import type { Classification } from '../../core/index.js';

/** Why a native SQL error is safe to answer by rerunning the whole unit. */
export type SqlTransientReason =
  | 'serialization-failure'
  | 'deadlock'
  | 'lock-wait-timeout'
  | 'database-busy'
  | 'connection-lost';

// Postgres SQLSTATEs (Appendix A of the Postgres manual).
const PG_REASONS: ReadonlyMap<string, SqlTransientReason> = new Map([
  ['40001', 'serialization-failure'], // serialization_failure
  ['40P01', 'deadlock'], // deadlock_detected
  ['57P01', 'connection-lost'], // admin_shutdown: the server is going down (fast shutdown, failover)
  ['57P02', 'connection-lost'], // crash_shutdown
  ['57P03', 'connection-lost'], // cannot_connect_now: the server is starting up or recovering
]);

// MySQL/MariaDB error numbers (server error reference).
const MYSQL_REASONS: ReadonlyMap<number, SqlTransientReason> = new Map([
  [1213, 'deadlock'], // ER_LOCK_DEADLOCK: the server rolled the transaction back
  [1205, 'lock-wait-timeout'], // ER_LOCK_WAIT_TIMEOUT
  [1020, 'serialization-failure'], // ER_CHECKREAD: MariaDB innodb_snapshot_isolation write conflict
  [1053, 'connection-lost'], // ER_SERVER_SHUTDOWN
  [1927, 'connection-lost'], // ER_CONNECTION_KILLED (MariaDB)
  [2006, 'connection-lost'], // CR_SERVER_GONE_ERROR
  [2013, 'connection-lost'], // CR_SERVER_LOST
]);

// Socket-level failures Node reports with these codes, whatever the driver.
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'PROTOCOL_CONNECTION_LOST', // mysql2: the server closed the connection
]);

// pg reports a lost connection as a plain Error with no code, so its fixed
// messages are the only signal there is (pg/lib/client.js).
const PG_LOST_MESSAGES: readonly string[] = [
  'Connection terminated unexpectedly',
  'Connection terminated due to connection timeout',
  'Connection terminated',
];

// Drivers that refuse to send anything on a connection they know is dead:
// a COMMIT that fails this way was never sent, so its outcome is known.
const NOT_SENT_MESSAGES: readonly string[] = [
  'Client has encountered a connection error and is not queryable', // pg
  'Client was closed and is not queryable', // pg
  "Can't add new command when connection is in closed state", // mysql2
];

interface NativeErrorShape {
  code?: unknown;
  errno?: unknown;
  message?: unknown;
}

function shapeOf(err: unknown): NativeErrorShape | undefined {
  return typeof err === 'object' && err !== null ? (err as NativeErrorShape) : undefined;
}

function messageOf(e: NativeErrorShape): string {
  return typeof e.message === 'string' ? e.message : '';
}

/**
 * Why `err` (an error of pg, mysql2, better-sqlite3, sqlite3 or PGlite,
 * possibly with knex's SQL prefix on its message) can be retried, or
 * undefined when it cannot.
 */
export function sqlTransientReason(err: unknown): SqlTransientReason | undefined {
  const e = shapeOf(err);
  if (e === undefined) return undefined;
  const { code, errno } = e;
  if (typeof code === 'string') {
    // Postgres and PGlite: a five-character SQLSTATE. Class 08 is connection_exception.
    if (code.length === 5) {
      const reason = PG_REASONS.get(code);
      if (reason !== undefined) return reason;
      if (code.startsWith('08') && /^08[0-9A-Z]{3}$/.test(code)) return 'connection-lost';
    }
    // better-sqlite3 and sqlite3: SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED, ...
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return 'database-busy';
    if (NETWORK_CODES.has(code)) return 'connection-lost';
  }
  // mysql2: errno is the server's error number (Node's own errno values are negative).
  if (typeof errno === 'number' && errno > 0) {
    const reason = MYSQL_REASONS.get(errno);
    if (reason !== undefined) return reason;
  }
  if (isConnectionLossMessage(messageOf(e))) return 'connection-lost';
  return undefined;
}

function isConnectionLossMessage(message: string): boolean {
  // knex prefixes the SQL to the driver's message: "COMMIT; - Connection terminated unexpectedly".
  return [...PG_LOST_MESSAGES, ...NOT_SENT_MESSAGES].some((m) => message === m || message.endsWith(` - ${m}`));
}

/**
 * How the SQL adapters judge an error: txkit's own errors as the core does,
 * the native transient failures above as `transient`, anything else `fatal`.
 */
export function classifySqlError(err: unknown): Classification {
  return classifyKnown(err) ?? (sqlTransientReason(err) !== undefined ? 'transient' : 'fatal');
}

/**
 * An error the Postgres server reported (it has a SQLSTATE and a severity):
 * the connection is in a known state, so it can go back to the pool.
 */
export function hasSqlState(err: unknown): boolean {
  const e = shapeOf(err) as (NativeErrorShape & { severity?: unknown }) | undefined;
  return typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && typeof e.severity === 'string';
}

/** The connection is gone (or unusable): nothing more can be sent on it. */
export function isConnectionLoss(err: unknown): boolean {
  return sqlTransientReason(err) === 'connection-lost';
}

/** The driver refused to send because the connection was already dead: the statement never reached the server. */
export function wasNeverSent(err: unknown): boolean {
  const e = shapeOf(err);
  if (e === undefined) return false;
  const message = messageOf(e);
  return NOT_SENT_MESSAGES.some((m) => message === m || message.endsWith(` - ${m}`));
}

const BACKEND_LABEL: Record<'postgres' | 'mysql' | 'sqlite', string> = {
  postgres: 'Postgres',
  mysql: 'MySQL/MariaDB',
  sqlite: 'SQLite',
};

export type SqlBackend = keyof typeof BACKEND_LABEL;

export function labelOf(backend: SqlBackend): string {
  return BACKEND_LABEL[backend];
}

/**
 * The connection broke while COMMIT was in flight: the server may have
 * committed or not (docs/architecture.md, rule 3). The unit is never rerun on this error.
 */
export function commitOutcomeUnknown(backend: SqlBackend, cause: unknown, verifying: boolean): UnknownCommitResultError {
  const what = `the ${labelOf(backend)} connection was lost while COMMIT was in flight, so the commit may or may not have been applied`;
  const next = verifying
    ? 'txkit looks the transaction up with pg_xact_status() on a fresh connection until it knows, within retry.deadlineMs'
    : backend === 'postgres'
      ? 'txkit does not rerun the unit blindly: check whether its effects are present before running it again, ' +
        'or pass verifyCommit: true so txkit resolves the outcome with pg_xact_status()'
      : `txkit does not rerun the unit blindly and ${labelOf(backend)} cannot look a finished transaction up: ` +
        'check whether its effects are present (e.g. by a unique request id) before running it again';
  return new UnknownCommitResultError(`${what}; ${next}`, { backend, cause });
}

/**
 * Postgres answers COMMIT with ROLLBACK, and no error, when a statement of
 * the transaction failed: somebody caught that statement's error.
 */
export function rolledBackInsteadOfCommit(): TxkitError {
  return new TxkitError(
    'ROLLED_BACK_ON_COMMIT',
    'Postgres rolled this transaction back instead of committing it: a statement inside it failed ' +
      '(SQLSTATE 25P02, in failed transaction) and its error was caught without being rethrown; ' +
      "rethrow it, or run the statement with propagation 'nested' so a savepoint contains the failure",
    { backend: 'postgres' },
  );
}
