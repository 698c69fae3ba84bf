/**
 * timeoutMs and the caller's signal bound everything a call waits for: the
 * wait for a pooled connection, BEGIN, the callback, and the cancel and
 * ROLLBACK after a timeout. A connection that stops answering (a loopback
 * proxy that stops forwarding, cancel requests included) is destroyed,
 * never given back to the pool.
 */
import assert from 'node:assert/strict';
import knex from 'knex';
import type { Knex } from 'knex';
import pg from 'pg';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { knexTransactions, pgTransactions } from '../../src/adapters/sql/index.js';
import { TransactionAbortedError, TransactionTimeoutError } from '../../src/index.js';
import type { TransactionContext } from '../../src/index.js';
import { FaultProxy } from '../faults/support/fault-proxy.js';
import type { FaultRule } from '../faults/support/fault-proxy.js';
import { service } from '../support/services.js';
import { waitUntil } from '../support/wait-until.js';
import { sqliteDir, uniqueName } from './support/sql-fixtures.js';

/** Bound on waiting for a call to settle: generous, it only turns a hang into a failure. */
const SETTLES_WITHIN_MS = 20_000;
const TIMEOUT_MS = 500;

interface Settled {
  done: boolean;
  error: unknown;
}

/** Records how `promise` settles, so a test waits for that condition with a bound. */
function watch(promise: Promise<unknown>): Settled {
  const state: Settled = { done: false, error: undefined };
  promise.then(
    () => (state.done = true),
    (err: unknown) => {
      state.error = err;
      state.done = true;
    },
  );
  return state;
}

async function settled(call: Promise<unknown>, what: string): Promise<unknown> {
  const state = watch(call);
  await waitUntil(() => state.done, SETTLES_WITHIN_MS, what);
  return state.error;
}

const isTimeout = (err: unknown): boolean => err instanceof TransactionTimeoutError && err.code === 'TX_TIMEOUT';

/** Every later client frame, on every connection (cancel requests included), is held. */
function stopForwarding(proxy: FaultProxy): FaultRule {
  return proxy.addRule({ direction: 'to-server', match: () => true, action: { kind: 'stall' }, times: 1_000_000 });
}

const pgUrl = service('postgres');

describe.skipIf(pgUrl === undefined)('postgres: a connection that stops answering', () => {
  const url = new URL(pgUrl as string); // the suite is skipped without it
  const app = uniqueName('stall');
  let direct: pg.Pool;
  let proxy: FaultProxy;
  let via: string;

  beforeAll(async () => {
    direct = new pg.Pool({ connectionString: url.href, max: 1 });
    proxy = new FaultProxy({ target: { host: url.hostname, port: Number(url.port || 5432) }, framing: { toServer: 'postgres', toClient: 'raw' } });
    const address = await proxy.start();
    via = `postgres://${url.username || 'postgres'}@${address.host}:${address.port}${url.pathname}`;
  });

  afterAll(async () => {
    await proxy.close();
    await direct.end();
  });

  const serverSessions = async (): Promise<number> =>
    Number((await direct.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1', [app])).rows[0]?.n);

  async function pgCase(stallAt: 'callback' | 'begin'): Promise<void> {
    const pool = new pg.Pool({ connectionString: via, max: 2, application_name: app });
    pool.on('error', () => undefined); // the destroyed client reports its end
    let stall: FaultRule | undefined;
    try {
      const ctx = pgTransactions(pool);
      await pool.query('SELECT 1'); // one idle connection through the proxy
      if (stallAt === 'begin') stall = stopForwarding(proxy);
      const err = await settled(
        ctx.withTransaction(
          async (tx) => {
            await tx.handle.query('SELECT 1');
            stall = stopForwarding(proxy);
            await tx.handle.query('SELECT 2');
          },
          { timeoutMs: TIMEOUT_MS },
        ),
        `the stalled pg call (${stallAt}) to settle`,
      );
      assert.ok(isTimeout(err), `got ${String(err)}`);
      assert.equal(pool.waitingCount, 0);
      assert.equal(pool.totalCount, 0, 'the stalled client was destroyed, not given back to the pool');
      await waitUntil(async () => (await serverSessions()) === 0, SETTLES_WITHIN_MS, 'the server to see the connection close');
    } finally {
      stall?.release();
      await pool.end();
    }
  }

  it('pg: the callback stalls; the cancel is swallowed too: TX_TIMEOUT, the client is destroyed', () => pgCase('callback'));

  it('pg: BEGIN stalls: TX_TIMEOUT, the client is destroyed', () => pgCase('begin'));

  it('knex pg: the callback stalls: TX_TIMEOUT, the connection is destroyed and the next unit gets a fresh one', async () => {
    const db: Knex = knex({
      client: 'pg',
      connection: { connectionString: via, application_name: app },
      pool: { min: 0, max: 2 },
      log: { warn: () => undefined },
    });
    let stall: FaultRule | undefined;
    try {
      const ctx = knexTransactions(db);
      const err = await settled(
        ctx.withTransaction(
          async (tx) => {
            await tx.handle.raw('SELECT 1');
            stall = stopForwarding(proxy);
            await tx.handle.raw('SELECT 2');
          },
          { timeoutMs: TIMEOUT_MS },
        ),
        'the stalled knex call to settle',
      );
      assert.ok(isTimeout(err), `got ${String(err)}`);
      const tarn = db.client.pool as { numUsed(): number; numPendingAcquires(): number };
      assert.equal(tarn.numUsed(), 0, 'knex has no connection checked out');
      await waitUntil(async () => (await serverSessions()) === 0, SETTLES_WITHIN_MS, 'the server to see the connection close');
      stall?.release();
      assert.deepEqual(await ctx.withTransaction(async (tx) => (await tx.handle.raw('SELECT 1 AS one')).rows), [{ one: 1 }]);
    } finally {
      stall?.release();
      await db.destroy();
    }
  });
});

/** One backend whose pool a holder can exhaust, and whose waiting acquirers can be counted. */
interface Exhaustible {
  readonly name: string;
  readonly ctx: TransactionContext<unknown, object>;
  /** Takes the pool's only connection; the returned function gives it back. */
  hold(): Promise<() => void>;
  waiting(): number;
  checkedOut(): number;
  end(): Promise<void>;
}

function pgExhaustible(url: string): Exhaustible {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  return {
    name: 'pg',
    ctx: pgTransactions(pool) as unknown as TransactionContext<unknown, object>,
    hold: async () => {
      const client = await pool.connect();
      return () => client.release();
    },
    waiting: () => pool.waitingCount,
    checkedOut: () => pool.totalCount - pool.idleCount,
    end: () => pool.end(),
  };
}

function knexExhaustible(name: string, config: Knex.Config): Exhaustible {
  const db = knex({ ...config, pool: { min: 0, max: 1 } });
  const tarn = (): { numUsed(): number; numPendingAcquires(): number } => db.client.pool;
  return {
    name,
    ctx: knexTransactions(db) as unknown as TransactionContext<unknown, object>,
    hold: async () => {
      const connection: unknown = await db.client.acquireConnection();
      return () => void db.client.releaseConnection(connection);
    },
    waiting: () => tarn().numPendingAcquires(),
    checkedOut: () => tarn().numUsed(),
    end: () => db.destroy(),
  };
}

const mysqlUrl = service('mysql');
const files = sqliteDir();
afterAll(() => files.remove());

const backends: [string, () => Exhaustible][] = [
  ['knex sqlite', () => knexExhaustible('knex sqlite', { client: 'better-sqlite3', connection: { filename: files.file('wait.db') }, useNullAsDefault: true })],
];
if (pgUrl !== undefined) {
  backends.push(['pg', () => pgExhaustible(pgUrl)], ['knex pg', () => knexExhaustible('knex pg', { client: 'pg', connection: pgUrl })]);
}
if (mysqlUrl !== undefined) backends.push(['knex mysql', () => knexExhaustible('knex mysql', { client: 'mysql2', connection: mysqlUrl })]);

describe.each(backends)('%s: the wait for a pooled connection', (_, make) => {
  it('timeoutMs bounds it: TX_TIMEOUT while another holder keeps the only connection; nothing is left checked out', async () => {
    const b = make();
    try {
      const giveBack = await b.hold();
      const err = await settled(b.ctx.withTransaction(async () => 'ran', { timeoutMs: TIMEOUT_MS }), `${b.name}: the call to settle`);
      assert.ok(isTimeout(err), `${b.name}: got ${String(err)}`);
      giveBack();
      // A connection that reached the waiter after it gave up goes straight back.
      await waitUntil(() => b.waiting() === 0 && b.checkedOut() === 0, SETTLES_WITHIN_MS, `${b.name}: the pool to be free`);
      assert.equal(await b.ctx.withTransaction(async () => 'ran'), 'ran');
    } finally {
      await b.end();
    }
  });

  it("the caller's signal ends it: aborted before begin, and fired while waiting; rejects with the abort reason", async () => {
    const b = make();
    try {
      const gone = new Error('caller gave up');
      const before = await settled(b.ctx.withTransaction(async () => 'ran', { signal: AbortSignal.abort(gone) }), 'the aborted call');
      assert.ok(before instanceof TransactionAbortedError && before.cause === gone, `${b.name}: got ${String(before)}`);

      const giveBack = await b.hold();
      const controller = new AbortController();
      const call = watch(b.ctx.withTransaction(async () => 'ran', { signal: controller.signal }));
      await waitUntil(() => b.waiting() === 1, SETTLES_WITHIN_MS, `${b.name}: the call to wait for a connection`);
      controller.abort(gone);
      await waitUntil(() => call.done, SETTLES_WITHIN_MS, `${b.name}: the cancelled call to settle`);
      assert.ok(call.error instanceof TransactionAbortedError && call.error.cause === gone, `${b.name}: got ${String(call.error)}`);
      giveBack();
      await waitUntil(() => b.waiting() === 0 && b.checkedOut() === 0, SETTLES_WITHIN_MS, `${b.name}: the pool to be free`);
    } finally {
      await b.end();
    }
  });
});
