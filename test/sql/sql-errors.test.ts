/**
 * The classification table of docs/guides/sql.md, row by row, on the error
 * shapes the drivers produce (pg/PGlite: SQLSTATE `code`; mysql2: `errno`;
 * better-sqlite3/sqlite3: `SQLITE_*` code; Node: socket codes). The real
 * errors behind each row are provoked in the other test files.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { classifySqlError, sqlTransientReason } from '../../src/adapters/sql/index.js';
import { ConfigError, TransientTransactionError, TxkitError, UnknownCommitResultError } from '../../src/index.js';

function error(props: Record<string, unknown>, message = 'native error'): Error {
  return Object.assign(new Error(message), props);
}

describe('classifySqlError', () => {
  const transient: [string, Error, string][] = [
    ['Postgres serialization_failure', error({ code: '40001', severity: 'ERROR' }), 'serialization-failure'],
    ['Postgres deadlock_detected', error({ code: '40P01', severity: 'ERROR' }), 'deadlock'],
    ['Postgres admin_shutdown', error({ code: '57P01', severity: 'FATAL' }), 'connection-lost'],
    ['Postgres crash_shutdown', error({ code: '57P02', severity: 'FATAL' }), 'connection-lost'],
    ['Postgres cannot_connect_now', error({ code: '57P03', severity: 'FATAL' }), 'connection-lost'],
    ['Postgres connection_failure (class 08)', error({ code: '08006', severity: 'FATAL' }), 'connection-lost'],
    ['MySQL ER_LOCK_DEADLOCK', error({ errno: 1213, code: 'ER_LOCK_DEADLOCK', sqlState: '40001' }), 'deadlock'],
    ['MySQL ER_LOCK_WAIT_TIMEOUT', error({ errno: 1205, code: 'ER_LOCK_WAIT_TIMEOUT', sqlState: 'HY000' }), 'lock-wait-timeout'],
    ['MariaDB ER_CHECKREAD', error({ errno: 1020, code: 'ER_CHECKREAD' }), 'serialization-failure'],
    ['MariaDB ER_CONNECTION_KILLED', error({ errno: 1927, code: 'ER_CONNECTION_KILLED' }), 'connection-lost'],
    ['mysql2 PROTOCOL_CONNECTION_LOST', error({ code: 'PROTOCOL_CONNECTION_LOST', fatal: true }), 'connection-lost'],
    ['mysql2 closed connection', error({ fatal: true }, "Can't add new command when connection is in closed state"), 'connection-lost'],
    ['SQLite SQLITE_BUSY', error({ code: 'SQLITE_BUSY' }), 'database-busy'],
    ['SQLite SQLITE_BUSY_SNAPSHOT', error({ code: 'SQLITE_BUSY_SNAPSHOT' }), 'database-busy'],
    ['SQLite SQLITE_LOCKED', error({ code: 'SQLITE_LOCKED' }), 'database-busy'],
    ['socket reset', error({ code: 'ECONNRESET', errno: -104 }), 'connection-lost'],
    ['socket refused (server restarting)', error({ code: 'ECONNREFUSED', errno: -111 }), 'connection-lost'],
    ['pg lost connection', error({}, 'Connection terminated unexpectedly'), 'connection-lost'],
    ['pg dead client', error({}, 'Client has encountered a connection error and is not queryable'), 'connection-lost'],
    ['pg lost connection with knex SQL prefix', error({}, 'insert into "t" ("k") values ($1) - Connection terminated unexpectedly'), 'connection-lost'],
  ];
  for (const [name, err, reason] of transient) {
    it(`${name} is transient (${reason})`, () => {
      assert.equal(sqlTransientReason(err), reason);
      assert.equal(classifySqlError(err), 'transient');
    });
  }

  const fatal: [string, unknown][] = [
    ['Postgres unique_violation', error({ code: '23505', severity: 'ERROR' })],
    ['Postgres query_canceled (statement_timeout, a cancel)', error({ code: '57014', severity: 'ERROR' })],
    ['Postgres lock_not_available (NOWAIT, lock_timeout)', error({ code: '55P03', severity: 'ERROR' })],
    ['Postgres idle_in_transaction_session_timeout', error({ code: '25P03', severity: 'FATAL' })],
    ['Postgres in_failed_sql_transaction', error({ code: '25P02', severity: 'ERROR' })],
    ['Postgres invalid_password', error({ code: '28P01', severity: 'FATAL' })],
    ['MySQL ER_DUP_ENTRY', error({ errno: 1062, code: 'ER_DUP_ENTRY' })],
    ['MySQL ER_ACCESS_DENIED_ERROR (fatal: true, but a configuration problem)', error({ errno: 1045, fatal: true })],
    ['MySQL ER_QUERY_INTERRUPTED', error({ errno: 1317, code: 'ER_QUERY_INTERRUPTED' })],
    ['SQLite SQLITE_CONSTRAINT', error({ code: 'SQLITE_CONSTRAINT_PRIMARYKEY' })],
    ['DNS failure', error({ code: 'ENOTFOUND' })],
    ['knex pool exhausted', Object.assign(new Error('Knex: Timeout acquiring a connection. The pool is probably full.'), { name: 'KnexTimeoutError' })],
    ['a plain Error from user code', new Error('boom')],
    ['a string', 'boom'],
    ['undefined', undefined],
  ];
  for (const [name, err] of fatal) {
    it(`${name} is fatal`, () => {
      assert.equal(sqlTransientReason(err), undefined);
      assert.equal(classifySqlError(err), 'fatal');
    });
  }

  it("txkit's own errors are judged as the core judges them", () => {
    assert.equal(classifySqlError(new TransientTransactionError('again')), 'transient');
    assert.equal(classifySqlError(new UnknownCommitResultError('maybe')), 'commit-unknown');
    assert.equal(classifySqlError(new ConfigError('bad')), 'fatal');
    assert.equal(classifySqlError(new TxkitError('TRANSIENT', 'retriable', { retriable: true })), 'transient');
  });
});
