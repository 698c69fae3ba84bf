/**
 * A commit whose reply is lost: a loopback proxy cuts the connection right
 * around COMMIT. With verifyCommit the Postgres adapters look the
 * transaction up on a fresh connection and act on what really happened
 * (committed: done; aborted: rerun), so no row is doubled or lost; without
 * it the caller gets UnknownCommitResultError and the unit is never rerun.
 */
import assert from 'node:assert/strict';
import knex from 'knex';
import type { Knex } from 'knex';
import pg from 'pg';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { knexTransactions, pgTransactions } from '../../src/adapters/sql/index.js';
import { UnknownCommitResultError } from '../../src/index.js';
import type { Transaction, TransactionContext } from '../../src/index.js';
import { rejection } from '../../src/testing/index.js';
import { service } from '../support/services.js';
import { CommitCutProxy } from './support/commit-cut-proxy.js';
import type { CutMode } from './support/commit-cut-proxy.js';
import { uniqueName, waitFor } from './support/sql-fixtures.js';

const pgUrl = service('postgres');
const ROUNDS = 200;
const FAST = { initialDelayMs: 1, maxDelayMs: 10 } as const;
// knex warns about every connection the proxy cuts; those are this test's point.
const QUIET = { warn: () => undefined };

describe.skipIf(pgUrl === undefined)('postgres: the connection breaks during COMMIT', () => {
  const url = pgUrl as string; // the suite is skipped without it
  const table = uniqueName('commit_cut');
  const appName = table;
  let direct: pg.Pool;
  let proxy: CommitCutProxy;
  let proxiedUrl: string;

  beforeAll(async () => {
    direct = new pg.Pool({ connectionString: url, max: 2 });
    await direct.query(`CREATE TABLE ${table} (adapter text NOT NULL, round int NOT NULL, attempt int NOT NULL)`);
    const target = new URL(url);
    proxy = new CommitCutProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const { host, port } = await proxy.start();
    const proxied = new URL(url);
    proxied.hostname = host;
    proxied.port = String(port);
    proxied.searchParams.set('application_name', appName);
    proxiedUrl = proxied.toString();
  });

  afterAll(async () => {
    await proxy.close();
    await direct.query(`DROP TABLE IF EXISTS ${table}`);
    await direct.end();
  });

  const modeOf = (round: number): CutMode => (round % 2 === 0 ? 'after-forward' : 'before-forward');

  /** Runs ROUNDS units, each inserting one row for its round, with the COMMIT of each round cut. */
  async function cutRounds<H>(
    adapter: string,
    ctx: TransactionContext<H, object>,
    insert: (tx: Transaction<H>, round: number) => Promise<void>,
  ): Promise<Map<number, number>> {
    const attempts = new Map<number, number>();
    const cutsBefore = proxy.cuts;
    for (let round = 0; round < ROUNDS; round++) {
      proxy.arm(modeOf(round));
      const attempt = await ctx.withTransaction(async (tx) => {
        await insert(tx, round);
        return tx.attempt;
      });
      assert.equal(proxy.armed, undefined, `round ${round}: the COMMIT went through the proxy and was cut`);
      attempts.set(round, attempt);
    }
    assert.equal(proxy.cuts - cutsBefore, ROUNDS);
    const { rows } = await direct.query<{ round: number; n: string }>(
      `SELECT round, count(*) AS n FROM ${table} WHERE adapter = $1 GROUP BY round ORDER BY round`,
      [adapter],
    );
    assert.deepEqual(
      rows.map((r) => [r.round, Number(r.n)]),
      Array.from({ length: ROUNDS }, (_, round) => [round, 1]),
      'every round committed exactly once: none doubled, none lost',
    );
    return attempts;
  }

  /** What resolving each outcome did: a COMMIT the server never saw is rolled back, so that unit ran again. */
  function assertResolutions(attempts: Map<number, number>): void {
    const dropped = [...attempts].filter(([round]) => modeOf(round) === 'before-forward');
    const delivered = [...attempts].filter(([round]) => modeOf(round) === 'after-forward');
    for (const [round, attempt] of dropped) {
      assert.equal(attempt, 2, `round ${round}: the dropped COMMIT resolved as aborted and the unit ran again`);
    }
    // A delivered COMMIT resolves as committed (attempt 1), unless the orphan check terminated the
    // session in the instant before it read the COMMIT: then it resolves, truthfully, as aborted.
    for (const [round, attempt] of delivered) assert.ok(attempt === 1 || attempt === 2, `round ${round}: ${attempt}`);
    assert.ok(
      delivered.some(([, attempt]) => attempt === 1),
      'delivered COMMITs resolve as committed without rerunning the unit',
    );
  }

  async function assertNoSessionLeftInTransaction(): Promise<void> {
    await waitFor('the cut sessions to end on the server', async () => {
      const { rows } = await direct.query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1 AND state LIKE 'idle in transaction%'`,
        [appName],
      );
      return Number(rows[0]?.n) === 0;
    });
  }

  it(`pg Pool with verifyCommit: ${ROUNDS} cut COMMITs, every row exactly once`, async () => {
    const pool = new pg.Pool({ connectionString: proxiedUrl, max: 2 });
    try {
      const ctx = pgTransactions(pool, { verifyCommit: true, retry: FAST });
      const attempts = await cutRounds('pg', ctx, async (tx, round) => {
        await tx.handle.query(`INSERT INTO ${table} (adapter, round, attempt) VALUES ('pg', $1, $2)`, [round, tx.attempt]);
      });
      assertResolutions(attempts);
      assert.equal(pool.totalCount - pool.idleCount, 0, 'no client left checked out');
      await ctx.close();
      await assertNoSessionLeftInTransaction();
    } finally {
      await pool.end();
    }
  });

  it(`knex pg with verifyCommit: ${ROUNDS} cut COMMITs, every row exactly once`, async () => {
    const db: Knex = knex({ client: 'pg', connection: proxiedUrl, pool: { min: 0, max: 2 }, log: QUIET });
    try {
      const ctx = knexTransactions(db, { verifyCommit: true, retry: FAST });
      const attempts = await cutRounds('knex', ctx, async (tx, round) => {
        await tx.handle(table).insert({ adapter: 'knex', round, attempt: tx.attempt });
      });
      assertResolutions(attempts);
      await ctx.close();
      await assertNoSessionLeftInTransaction();
    } finally {
      await db.destroy();
    }
  });

  it('a COMMIT lost in a partition (the server still holds the session): verifyCommit ends the orphan and reruns', async () => {
    const pool = new pg.Pool({ connectionString: proxiedUrl, max: 2 });
    try {
      // A short deadline: if the orphaned session were left alone, the outcome would stay unknown.
      const ctx = pgTransactions(pool, { verifyCommit: true, retry: { ...FAST, deadlineMs: 10_000 } });
      for (let round = 0; round < 5; round++) {
        proxy.arm('partition');
        const attempt = await ctx.withTransaction(async (tx) => {
          await tx.handle.query(`INSERT INTO ${table} (adapter, round, attempt) VALUES ('partition', $1, $2)`, [round, tx.attempt]);
          return tx.attempt;
        });
        assert.equal(proxy.armed, undefined, 'the COMMIT was cut');
        assert.equal(attempt, 2, 'resolved as aborted (the session was terminated), then run again');
      }
      const { rows } = await direct.query<{ round: number; attempt: number }>(
        `SELECT round, attempt FROM ${table} WHERE adapter = 'partition' ORDER BY round`,
      );
      assert.deepEqual(rows, Array.from({ length: 5 }, (_, round) => ({ round, attempt: 2 })));
      await ctx.close();
      await assertNoSessionLeftInTransaction();
    } finally {
      await pool.end();
    }
  });

  it('without verifyCommit the caller gets UnknownCommitResultError and the unit never runs again', async () => {
    const pool = new pg.Pool({ connectionString: proxiedUrl, max: 2 });
    const db: Knex = knex({ client: 'pg', connection: proxiedUrl, pool: { min: 0, max: 2 }, log: QUIET });
    const pgCtx = pgTransactions(pool, { retry: FAST });
    const knexCtx = knexTransactions(db, { retry: FAST });
    const insertRow = (adapter: string) => `INSERT INTO ${table} (adapter, round, attempt) VALUES ('${adapter}', 0, 1)`;
    const cases = [
      { adapter: 'pg-plain', run: (fn: () => void) => pgCtx.withTransaction(async (tx) => (fn(), void (await tx.handle.query(insertRow('pg-plain'))))) },
      { adapter: 'knex-plain', run: (fn: () => void) => knexCtx.withTransaction(async (tx) => (fn(), void (await tx.handle.raw(insertRow('knex-plain'))))) },
    ];
    const count = async (adapter: string): Promise<number> => {
      const { rows } = await direct.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE adapter = $1`, [adapter]);
      return Number(rows[0]?.n);
    };
    try {
      for (const { adapter, run } of cases) {
        for (const mode of ['after-forward', 'before-forward'] as const) {
          const before = await count(adapter);
          let runs = 0;
          proxy.arm(mode);
          const err = await rejection(run(() => void (runs += 1)));
          assert.equal(proxy.armed, undefined, 'the COMMIT was cut');
          assert.ok(err instanceof UnknownCommitResultError, `${adapter} ${mode}: got ${String(err)}`);
          assert.equal(err.backend, 'postgres');
          assert.match(err.message, /verifyCommit: true/, 'the message says what to do');
          assert.equal(runs, 1, 'never rerun blindly');
          // What really happened, which the caller could not tell: a delivered COMMIT applied, a dropped one did not.
          await waitFor('the cut session to end', async () => (await count(adapter)) === before + (mode === 'after-forward' ? 1 : 0));
        }
      }
      assert.equal(pool.totalCount - pool.idleCount, 0, 'no client left checked out');
      await assertNoSessionLeftInTransaction();
    } finally {
      await pgCtx.close();
      await knexCtx.close();
      await pool.end();
      await db.destroy();
    }
  });
});
