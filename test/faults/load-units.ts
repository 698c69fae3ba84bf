/**
 * The load scenario shared by the SQL and memory load tests: UNITS
 * concurrent withTransaction units, each adding a known amount to 2 or 3 of
 * ROWS hot rows (read, then write the new total) and recording itself in a
 * committed-units table in the same transaction. Every unit must either
 * commit exactly once or fail with a typed error; the final totals must be
 * the sum of the committed units' amounts.
 */
import assert from 'node:assert/strict';
import { TransactionTimeoutError, TxkitError } from '../../src/core/index.js';
import type { RunOptions, Transaction, TransactionContext } from '../../src/core/index.js';

export const UNITS = 200;
export const ROWS = 5;
/** Every tenth unit gets a 1 ms retry deadline: it commits on its first run or fails typed, so both outcomes occur. */
export const SHORT_DEADLINE_EVERY = 10;
export const LONG_DEADLINE_MS = 90_000;

/** The hot rows unit `i` updates: 2 or 3 distinct rows, in ascending order. */
export function rowsOf(i: number): number[] {
  const rows = [i % ROWS, (i + 1) % ROWS, (i + 3) % ROWS].slice(0, 2 + (i % 2));
  return [...new Set(rows)].sort((a, b) => a - b);
}

/** What unit `i` adds to each of its rows. */
export function amountOf(i: number): number {
  return i + 1;
}

/** How one backend reads and writes the hot rows and the committed-units table inside a unit. */
export interface UnitStatements<H> {
  read(tx: Transaction<H>, row: number): Promise<number>;
  write(tx: Transaction<H>, row: number, total: number): Promise<void>;
  /** Appends a row for `unit` to the committed-units table (no uniqueness: a second commit would show as a second row). */
  record(tx: Transaction<H>, unit: number): Promise<void>;
}

/** What the database holds after the run. */
export interface Committed {
  /** Row id -> total. */
  totals: ReadonlyMap<number, number>;
  /** Unit -> rows in the committed-units table. */
  units: ReadonlyMap<number, number>;
}

export interface LoadFigures {
  backend: string;
  units: number;
  committed: number;
  failedTyped: number;
  failedByDeadline: number;
  /** Runs of all units together (reruns after conflicts included). */
  runs: number;
  sumCheck: 'ok';
  connectionsLeft: number;
}

export interface LoadResult {
  committed: Set<number>;
  failures: Map<number, unknown>;
  hookCommits: number[];
  runs: number;
}

/** Starts all UNITS at once and waits until every one has settled. */
export async function runUnits<H, O extends object>(
  ctx: TransactionContext<H, O>,
  sql: UnitStatements<H>,
  options: O,
): Promise<LoadResult> {
  const hookCommits = Array.from({ length: UNITS }, () => 0);
  const lastAttempt = Array.from({ length: UNITS }, () => 0);
  const outcomes = await Promise.allSettled(
    Array.from({ length: UNITS }, (_, i) =>
      ctx.withTransaction(
        async (tx) => {
          lastAttempt[i] = tx.attempt;
          for (const row of rowsOf(i)) await sql.write(tx, row, (await sql.read(tx, row)) + amountOf(i));
          await sql.record(tx, i);
          tx.afterCommit(() => void (hookCommits[i] = (hookCommits[i] ?? 0) + 1));
          return i;
        },
        {
          ...options,
          retry: {
            deadlineMs: i % SHORT_DEADLINE_EVERY === 0 ? 1 : LONG_DEADLINE_MS,
            initialDelayMs: 1,
            maxDelayMs: 50,
          },
        } as O & RunOptions,
      ),
    ),
  );
  const committed = new Set<number>();
  const failures = new Map<number, unknown>();
  outcomes.forEach((o, i) => {
    if (o.status === 'fulfilled') {
      assert.equal(o.value, i);
      committed.add(i);
    } else {
      failures.set(i, o.reason);
    }
  });
  return { committed, failures, hookCommits, runs: lastAttempt.reduce((a, b) => a + b, 0) };
}

/**
 * Checks the run against the database: typed failures only, each committed
 * unit recorded exactly once (by its hook and in the table), no failed unit
 * recorded, and totals equal to the committed units' sums.
 */
export function checkRun(backend: string, result: LoadResult, db: Committed, connectionsLeft: number): LoadFigures {
  const { committed, failures, hookCommits } = result;
  assert.equal(committed.size + failures.size, UNITS, 'every unit settled');
  let byDeadline = 0;
  for (const [i, err] of failures) {
    assert.ok(err instanceof TxkitError, `unit ${i} failed with an untyped error: ${String(err)}`);
    if (err instanceof TransactionTimeoutError && err.code === 'RETRY_DEADLINE') byDeadline += 1;
    // Only a unit with the short deadline may run out of time here; the others have 90 s.
    assert.equal(i % SHORT_DEADLINE_EVERY, 0, `unit ${i} (long deadline) failed: ${String(err)}`);
  }
  for (let i = 0; i < UNITS; i++) {
    const expected = committed.has(i) ? 1 : 0;
    assert.equal(hookCommits[i], expected, `unit ${i}: afterCommit ran ${hookCommits[i]} times`);
    assert.equal(db.units.get(i) ?? 0, expected, `unit ${i}: ${db.units.get(i) ?? 0} rows in the committed-units table`);
  }
  const expectedTotals = new Map<number, number>(Array.from({ length: ROWS }, (_, r) => [r, 0]));
  for (const i of committed) for (const r of rowsOf(i)) expectedTotals.set(r, (expectedTotals.get(r) ?? 0) + amountOf(i));
  assert.deepEqual(new Map(db.totals), expectedTotals, 'final totals are the sums of the committed units');
  assert.equal(connectionsLeft, 0, 'no connection left checked out');
  const figures: LoadFigures = {
    backend,
    units: UNITS,
    committed: committed.size,
    failedTyped: failures.size,
    failedByDeadline: byDeadline,
    runs: result.runs,
    sumCheck: 'ok',
    connectionsLeft,
  };
  console.log(`[txkit load] ${JSON.stringify(figures)}`);
  return figures;
}
