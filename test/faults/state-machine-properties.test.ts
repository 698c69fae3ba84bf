/**
 * Properties of the transaction state machine, checked with fast-check.
 * test/core/state-machine.test.ts enumerates the transition table and
 * test/core/retry-properties.test.ts drives the retry loop; here random
 * call sequences go through the public Transaction API of real contexts
 * (memory, SQLite) and are compared with a model: every call the state
 * allows succeeds, every other call fails with TransactionStateError naming
 * the method and the state, hooks run exactly once on the matching end, and
 * only committed writes are visible.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import { knexTransactions } from '../../src/adapters/sql/index.js';
import { TransactionStateError, TxState, canTransition, isTerminal, transition } from '../../src/core/index.js';
import type { Transaction, TransactionContext } from '../../src/core/index.js';

const STATES = Object.values(TxState);

describe('transition(): random move sequences', () => {
  it('a move succeeds exactly when the table allows it; a refused move names method and state and changes nothing', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...STATES), fc.constantFrom('begin', 'commit', 'abort', 'resolve')), { maxLength: 30 }), (moves) => {
        let state: TxState = TxState.idle;
        for (const [to, method] of moves) {
          if (canTransition(state, to)) {
            state = transition(state, to, method, 'memory');
            expect(state).toBe(to);
            continue;
          }
          let refused: unknown;
          try {
            transition(state, to, method, 'memory');
          } catch (err) {
            refused = err;
          }
          expect(refused).toBeInstanceOf(TransactionStateError);
          expect((refused as TransactionStateError).state).toBe(state);
          expect((refused as TransactionStateError).method).toBe(method);
          expect((refused as Error).message).toContain(`${method}() is not allowed`);
          if (isTerminal(state)) expect((refused as Error).message).toContain('start a new transaction');
        }
        // Once terminal, always terminal: no sequence leaves committed, aborted or failed.
        if (isTerminal(state)) expect(STATES.some((s) => canTransition(state, s))).toBe(false);
      }),
      { numRuns: 500 },
    );
  });
});

/** One backend under test: a context, and how to write and read a key through a transaction's handle. */
interface Subject<H> {
  ctx: TransactionContext<H>;
  write(tx: Transaction<H>, key: string, value: number): Promise<void>;
  /** The committed value, read outside any transaction. */
  committed(key: string): Promise<number | undefined>;
}

/** What the model expects of one transaction. */
interface Model {
  state: 'active' | 'committed' | 'aborted';
  commitHooks: number;
  abortHooks: number;
  writes: Map<string, number>;
}

/** The real side: the transaction and what its hooks have done. */
interface Real<H> {
  subject: Subject<H>;
  tx: Transaction<H>;
  commitHooksRun: number;
  abortHooksRun: number;
}

type Cmd<H> = fc.AsyncCommand<Model, Real<H>>;

async function refusal(p: () => unknown): Promise<unknown> {
  try {
    await p();
  } catch (err) {
    return err;
  }
  return undefined;
}

function expectRefused(err: unknown, method: string, state: string): void {
  expect(err, `${method}() in state ${state}`).toBeInstanceOf(TransactionStateError);
  expect((err as Error).message).toContain(`${method}() is not allowed`);
  expect((err as Error).message).toContain(state);
}

class Commit<H> implements Cmd<H> {
  check = (): boolean => true;
  async run(m: Model, r: Real<H>): Promise<void> {
    if (m.state !== 'active') return expectRefused(await refusal(() => r.tx.commit()), 'commit', m.state);
    await r.tx.commit();
    m.state = 'committed';
    expect(r.commitHooksRun).toBe(m.commitHooks);
    expect(r.abortHooksRun).toBe(0);
    for (const [k, v] of m.writes) expect(await r.subject.committed(k)).toBe(v);
  }
  toString = (): string => 'commit';
}

class Abort<H> implements Cmd<H> {
  check = (): boolean => true;
  async run(m: Model, r: Real<H>): Promise<void> {
    if (m.state !== 'active') return expectRefused(await refusal(() => r.tx.abort('model')), 'abort', m.state);
    await r.tx.abort('model');
    m.state = 'aborted';
    expect(r.abortHooksRun).toBe(m.abortHooks);
    expect(r.commitHooksRun).toBe(0);
    for (const k of m.writes.keys()) expect(await r.subject.committed(k)).toBeUndefined();
  }
  toString = (): string => 'abort';
}

class AfterCommit<H> implements Cmd<H> {
  check = (): boolean => true;
  async run(m: Model, r: Real<H>): Promise<void> {
    const register = (): void => r.tx.afterCommit(() => void (r.commitHooksRun += 1));
    if (m.state !== 'active') return expectRefused(await refusal(register), 'afterCommit', m.state);
    register();
    m.commitHooks += 1;
  }
  toString = (): string => 'afterCommit';
}

class AfterAbort<H> implements Cmd<H> {
  check = (): boolean => true;
  async run(m: Model, r: Real<H>): Promise<void> {
    const register = (): void => r.tx.afterAbort(() => void (r.abortHooksRun += 1));
    if (m.state !== 'active') return expectRefused(await refusal(register), 'afterAbort', m.state);
    register();
    m.abortHooks += 1;
  }
  toString = (): string => 'afterAbort';
}

class Write<H> implements Cmd<H> {
  constructor(
    readonly key: string,
    readonly value: number,
  ) {}
  check = (m: Readonly<Model>): boolean => m.state === 'active';
  async run(m: Model, r: Real<H>): Promise<void> {
    await r.subject.write(r.tx, this.key, this.value);
    m.writes.set(this.key, this.value);
    // Not visible outside before the commit.
    expect(await r.subject.committed(this.key)).toBeUndefined();
  }
  toString = (): string => `write(${this.key}=${this.value})`;
}

/** After the run: the state the transaction reports is the model's, and an active one is ended so nothing leaks. */
async function settle<H>(m: Model, r: Real<H>): Promise<void> {
  expect(r.tx.state).toBe(m.state);
  if (m.state === 'active') await r.tx.abort('end of run');
}

function commandsFor<H>(): fc.Arbitrary<Iterable<Cmd<H>>> {
  return fc.commands(
    [
      fc.constant(new Commit<H>()),
      fc.constant(new Abort<H>()),
      fc.constant(new AfterCommit<H>()),
      fc.constant(new AfterAbort<H>()),
      fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 1000 })).map(([k, v]) => new Write<H>(`k${k}`, v)),
    ],
    { maxCommands: 12 },
  );
}

async function checkModel<H>(makeSubject: () => Promise<Subject<H> & { dispose(): Promise<void> }>, numRuns: number): Promise<void> {
  await fc.assert(
    fc.asyncProperty(commandsFor<H>(), async (cmds) => {
      const subject = await makeSubject();
      try {
        const tx = await subject.ctx.begin();
        const model: Model = { state: 'active', commitHooks: 0, abortHooks: 0, writes: new Map() };
        const real: Real<H> = { subject, tx, commitHooksRun: 0, abortHooksRun: 0 };
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        await settle(model, real);
        // Every end ran each hook of its kind exactly once, and none of the other kind.
        if (model.state === 'committed') expect([real.commitHooksRun, real.abortHooksRun]).toEqual([model.commitHooks, 0]);
        if (model.state === 'aborted') expect([real.commitHooksRun, real.abortHooksRun]).toEqual([0, model.abortHooks]);
      } finally {
        await subject.dispose();
      }
    }),
    { numRuns },
  );
}

describe('Transaction API against a model: random call sequences on real contexts', () => {
  it('memory backend', async () => {
    await checkModel(async () => {
      const store = new MemoryStore();
      const ctx = memoryTransactions({ store });
      return {
        ctx,
        write: (tx, key, value) => tx.handle.set(key, value),
        committed: async (key) => store.get(key) as number | undefined,
        dispose: () => ctx.close(),
      };
    }, 300);
  });

  describe('SQLite (knex, better-sqlite3)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'txkit-sm-'));
    const db: Knex = knexFactory({ client: 'better-sqlite3', connection: { filename: join(dir, 'sm.db') }, useNullAsDefault: true });
    let created = false;
    // knex holds SQLite's single connection for the open transaction: committed values are read on a connection of their own.
    const reader: Knex = knexFactory({
      client: 'better-sqlite3',
      connection: { filename: join(dir, 'sm.db'), options: { readonly: true } },
      useNullAsDefault: true,
    });
    afterAll(async () => {
      await reader.destroy();
      await db.destroy();
      rmSync(dir, { recursive: true, force: true });
    });

    it('knexTransactions', async () => {
      if (!created) {
        await db.schema.createTable('kv', (t) => {
          t.string('k').primary();
          t.integer('v').notNullable();
        });
        created = true;
      }
      await checkModel(async () => {
        await db('kv').delete();
        const ctx = knexTransactions(db);
        return {
          ctx,
          write: async (tx, key, value) => void (await tx.handle('kv').insert({ k: key, v: value }).onConflict('k').merge()),
          committed: async (key) => ((await reader('kv').where({ k: key }).first('v')) as { v: number } | undefined)?.v,
          dispose: () => ctx.close(),
        };
      }, 150);
    }, 120_000);
  });
});
