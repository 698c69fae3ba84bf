/**
 * Random careless programs against real contexts (memory, SQLite through
 * knex), checked with fast-check. Each unit of a program runs a random list
 * of steps: writes, its own commit or abort, transient and fatal throws, a
 * nested withTransaction it forgets to await, a timer that opens a
 * transaction after the unit ended, an afterCommit hook that opens one.
 * Whatever the program, a unit's effects appear once if it committed and not
 * at all if it did not, a unit never commits twice, late work gets a
 * transaction of its own, nothing hangs past its deadline and no connection
 * stays checked out.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import type { MemoryTxHandle } from '../../src/adapters/memory/index.js';
import { knexTransactions } from '../../src/adapters/sql/index.js';
import { TransientTransactionError } from '../../src/core/index.js';
import type { Transaction, TransactionContext } from '../../src/core/index.js';

type Step =
  | 'write'
  | 'commit'
  | 'abort'
  | 'throw-transient-once'
  | 'throw-transient'
  | 'throw-fatal'
  | 'forget-await'
  | 'late-timer'
  | 'after-commit-hook';

const STEPS: readonly Step[] = [
  'write',
  'write',
  'commit',
  'abort',
  'throw-transient-once',
  'throw-transient',
  'throw-fatal',
  'forget-await',
  'late-timer',
  'after-commit-hook',
];

interface Subject {
  readonly ctx: TransactionContext<unknown, object>;
  increment(tx: Transaction<unknown>, key: string): Promise<void>;
  read(key: string): Promise<number>;
  checkedOut(): number;
}

/** What the harness saw one unit do, to check its effects against. */
interface UnitLog {
  /** Explicit commits that returned. */
  commits: number;
  /** Attempts that ran. */
  attempts: number;
  outcome: 'resolved' | 'rejected' | undefined;
  error: unknown;
  /** Hooks registered in an attempt, with the promise of the transaction each opened. */
  hooks: Promise<unknown>[];
  /** Late calls fired after the unit ended. */
  late: Promise<unknown>[];
  fireLate: (() => void)[];
  floating: Promise<unknown>[];
  /** Forgotten calls made after the unit's transaction had ended: each is a transaction of its own. */
  independent: number;
}

const nextMacrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function runUnit(s: Subject, id: string, steps: readonly Step[]): Promise<UnitLog> {
  const log: UnitLog = { commits: 0, attempts: 0, outcome: undefined, error: undefined, hooks: [], late: [], fireLate: [], floating: [], independent: 0 };
  try {
    await s.ctx.withTransaction(
      async (tx) => {
        log.attempts += 1;
        for (const step of steps) {
          switch (step) {
            case 'write':
              await s.increment(tx, `effect:${id}`);
              break;
            case 'commit':
              await tx.commit();
              log.commits += 1;
              break;
            case 'abort':
              await tx.abort();
              break;
            case 'throw-transient-once':
              if (log.attempts === 1) throw new TransientTransactionError('transient, first attempt only');
              break;
            case 'throw-transient':
              throw new TransientTransactionError('transient on every attempt');
            case 'throw-fatal':
              throw new Error('fatal');
            case 'forget-await': {
              // Joins the unit's transaction while it runs; once that has ended, it is a transaction of its own.
              if (tx.state !== 'active') log.independent += 1;
              const floating = s.ctx.withTransaction(async (inner) => {
                await nextMacrotask();
                await s.increment(inner, `floating:${id}`);
              });
              floating.catch(() => undefined);
              log.floating.push(floating);
              break;
            }
            case 'late-timer': {
              let fire: () => void = () => undefined;
              const gate = new Promise<void>((resolve) => (fire = resolve));
              const late = gate.then(() => s.ctx.withTransaction((t) => s.increment(t, `late:${id}`)));
              late.catch(() => undefined);
              log.late.push(late);
              log.fireLate.push(fire);
              break;
            }
            case 'after-commit-hook':
              tx.afterCommit(() => {
                const hook = s.ctx.withTransaction((t) => s.increment(t, `hook:${id}`));
                log.hooks.push(hook);
                return hook;
              });
              break;
          }
        }
      },
      { retry: { maxAttempts: 3, initialDelayMs: 0, maxDelayMs: 1, deadlineMs: 10_000 }, timeoutMs: 5_000 },
    );
    log.outcome = 'resolved';
  } catch (err) {
    log.outcome = 'rejected';
    log.error = err;
  }
  return log;
}

/** Bounds a promise: a program that hangs fails the property instead of the whole run. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} hung past ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

let program = 0;

async function checkProgram(s: Subject, units: readonly (readonly Step[])[]): Promise<void> {
  const ids = units.map((_, i) => `p${program}-u${i}`);
  program += 1;
  const logs = await within(Promise.all(units.map((steps, i) => runUnit(s, ids[i] as string, steps))), 20_000, 'the program');
  for (const log of logs) {
    for (const fire of log.fireLate) fire();
    await within(Promise.allSettled([...log.floating, ...log.late, ...log.hooks]), 20_000, 'late work');
  }
  for (const [i, log] of logs.entries()) {
    const id = ids[i] as string;
    const steps = units[i] as readonly Step[];
    const effects = await s.read(`effect:${id}`);
    const writesPerAttempt = steps.filter((st) => st === 'write').length;
    const what = `unit ${JSON.stringify(steps)}: ${log.outcome} after ${log.attempts} attempt(s), ${log.commits} explicit commit(s), ${String(log.error)}`;
    // A unit never commits twice: one explicit commit at most, and never a rerun after it.
    expect(log.commits, what).toBeLessThanOrEqual(1);
    const committed = log.commits === 1 || log.outcome === 'resolved';
    // Effects of exactly one attempt when it committed (the writes before its commit), none otherwise.
    if (!committed) expect(effects, what).toBe(0);
    else expect(effects, what).toBeLessThanOrEqual(writesPerAttempt);
    if (log.outcome === 'resolved' && log.commits === 0 && !steps.includes('abort')) expect(effects, what).toBe(writesPerAttempt);
    // A forgotten await on a unit that would commit stops it: PENDING_WORK, with no effect.
    if (log.outcome === 'rejected' && (log.error as { code?: string }).code === 'PENDING_WORK') expect(effects, what).toBe(0);
    if (steps.includes('forget-await') && log.outcome === 'resolved') {
      // Only a unit that ended its transaction itself before returning can resolve with work pending.
      expect(steps.includes('abort') || log.commits === 1, what).toBe(true);
    }
    // Forgotten work never commits inside the unit: joined, it stops the commit or fails on the ended transaction.
    expect(await s.read(`floating:${id}`), what).toBe(log.independent);
    // Late work gets a transaction of its own: each late call that was set up commits once.
    expect(await s.read(`late:${id}`), what).toBe(log.late.length);
    // afterCommit hooks run only for the commit that happened, each opening a new transaction.
    expect(await s.read(`hook:${id}`), what).toBe(log.hooks.length);
    if (!committed) expect(log.hooks.length, what).toBe(0);
  }
  expect(s.checkedOut(), 'connections checked out after the program').toBe(0);
}

const programs = fc.array(fc.array(fc.constantFrom(...STEPS), { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 3 });

describe('random careless programs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'txkit-misuse-props-'));
  const knexes: Knex[] = [];
  afterAll(async () => {
    for (const k of knexes) await k.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('memory: effects once when committed, none otherwise; late work in new transactions; nothing hangs', async () => {
    const store = new MemoryStore();
    const ctx = memoryTransactions({ store });
    const s: Subject = {
      ctx: ctx as unknown as TransactionContext<unknown, object>,
      increment: async (tx, key) => {
        const h = tx.handle as MemoryTxHandle;
        await h.set(key, (((await h.get(key)) as number | undefined) ?? 0) + 1);
      },
      read: async (key) => (store.get(key) as number | undefined) ?? 0,
      checkedOut: () => 0,
    };
    await fc.assert(fc.asyncProperty(programs, (units) => checkProgram(s, units)), { numRuns: 150 });
    await ctx.close();
  }, 120_000);

  it('SQLite (knex): effects once when committed, none otherwise; late work in new transactions; no connection left checked out', async () => {
    const db = knexFactory({ client: 'better-sqlite3', connection: { filename: join(dir, 'props.db') }, useNullAsDefault: true });
    knexes.push(db);
    await db.schema.createTable('counters', (t) => {
      t.string('k').primary();
      t.integer('n').notNullable();
    });
    const ctx = knexTransactions(db);
    const s: Subject = {
      ctx: ctx as unknown as TransactionContext<unknown, object>,
      increment: async (tx, key) => {
        await (tx.handle as Knex.Transaction).raw('insert into counters (k, n) values (?, 1) on conflict (k) do update set n = n + 1', [key]);
      },
      read: async (key) => Number((await db('counters').where({ k: key }).first())?.n ?? 0),
      checkedOut: () => (db.client as { pool?: { numUsed(): number } }).pool?.numUsed() ?? 0,
    };
    await fc.assert(fc.asyncProperty(programs, (units) => checkProgram(s, units)), { numRuns: 60 });
    await ctx.close();
  }, 240_000);
});
