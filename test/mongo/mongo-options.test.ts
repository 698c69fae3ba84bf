/**
 * Options, sessions and misuse, with the real `mongodb` driver against the
 * scripted server: what the server received proves which option won.
 */
import { ClientSession, MongoClient } from 'mongodb';
import type { ClientSessionOptions } from 'mongodb';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import {
  MongoForeignSessionError,
  MongoParallelUseError,
  MongoTopologyError,
  mongoTransactions,
} from '../../src/adapters/mongo/index.js';
import type { MongoTransactionsOptions, MongoTxOptions } from '../../src/adapters/mongo/index.js';
import { ConfigError, TransactionAbortedError, TxkitError } from '../../src/core/index.js';
import type { Transaction, TransactionContext } from '../../src/core/index.js';
import { rejection } from '../../src/testing/index.js';
import { ScriptedMongoServer, scriptedClient, trackSessions, txnOf, uniqueName, writesTo } from './mongo-support.js';
import type { KeyValueDoc } from './mongo-support.js';

let server: ScriptedMongoServer;
/** Client-level defaults: read concern 'local', write concern w: 1. */
let client: MongoClient;

beforeAll(async () => {
  server = await new ScriptedMongoServer().start();
  client = scriptedClient(server, { readConcern: { level: 'local' }, writeConcern: { w: 1 } });
  await client.connect();
});

afterAll(async () => {
  await client?.close();
  await server?.stop();
});

/** Runs one write under `options` and returns what the server saw for it: first command and commit. */
async function observe(ctx: TransactionContext<ClientSession, MongoTxOptions>, options: MongoTxOptions = {}) {
  const name = uniqueName('options');
  const coll = client.db('txkit').collection<KeyValueDoc>(name);
  await ctx.withTransaction(async (tx) => {
    await coll.insertOne({ _id: 'k', value: 'v' }, { session: tx.handle });
  }, options);
  const first = writesTo(server, name)[0];
  const commit = server.commands('commitTransaction').find((c) => txnOf(c) === txnOf(first));
  return { first, commit };
}

describe('mongodb adapter options (real driver, scripted server)', () => {
  it("the handle is the driver's ClientSession, typed from the client (types checked by tsc)", async () => {
    const ctx = mongoTransactions(client);
    expectTypeOf(ctx).toEqualTypeOf<TransactionContext<ClientSession, MongoTxOptions>>();
    expectTypeOf<Parameters<Parameters<typeof ctx.withTransaction>[0]>[0]>().toEqualTypeOf<Transaction<ClientSession>>();
    expect(await ctx.withTransaction(async (tx) => tx.handle)).toBeInstanceOf(ClientSession);
    await ctx.close();
  });

  it('transaction options come from the call, else the context defaults, else the client', async () => {
    const plain = mongoTransactions(client);
    const withDefaults = mongoTransactions(client, {
      defaults: { readConcern: 'majority', writeConcern: { w: 'majority' }, maxCommitTimeMS: 1000 },
    });

    const fromClient = await observe(plain);
    expect(fromClient.first?.startTransaction).toBe(true);
    expect(fromClient.first?.readConcern).toEqual({ level: 'local' });
    // The driver adds wtimeout 10000 to a commit's write concern when none is set.
    expect(fromClient.commit?.writeConcern).toEqual({ w: 1, wtimeout: 10_000 });
    expect(fromClient.commit?.maxTimeMS).toBeUndefined();

    const fromContext = await observe(withDefaults);
    expect(fromContext.first?.readConcern).toEqual({ level: 'majority' });
    expect(fromContext.commit?.writeConcern).toEqual({ w: 'majority', wtimeout: 10_000 });
    expect(fromContext.commit?.maxTimeMS).toBe(1000);

    const fromCall = await observe(withDefaults, {
      readConcern: { level: 'snapshot' },
      writeConcern: { w: 1, wtimeoutMS: 300 },
      maxCommitTimeMS: 2000,
    });
    expect(fromCall.first?.readConcern).toEqual({ level: 'snapshot' });
    expect(fromCall.commit?.writeConcern).toEqual({ w: 1, wtimeout: 300 });
    expect(fromCall.commit?.maxTimeMS).toBe(2000);
    await plain.close();
    await withDefaults.close();
  });

  it('readPreference reaches the transaction: the driver refuses a non-primary read in it', async () => {
    const ctx = mongoTransactions(client, { defaults: { readPreference: 'primary' } });
    const coll = client.db('txkit').collection<KeyValueDoc>(uniqueName('readpref'));
    let runs = 0;
    const read = (options: MongoTxOptions) =>
      ctx.withTransaction(async (tx) => {
        runs += 1;
        return coll.findOne({ _id: 'x' }, { session: tx.handle });
      }, options);
    expect(await read({})).toBeNull();
    const err = await rejection(read({ readPreference: 'nearest' }));
    expect((err as Error).message).toMatch(/read preference in a transaction must be primary/i);
    expect(runs, 'a fatal error is not retried').toBe(2);
    await ctx.close();
  });

  it('each unit gets its own causally consistent session, unless causalConsistency is false', async () => {
    const tracked = trackSessions(client);
    const ctx = mongoTransactions(tracked.client);
    const handles = await Promise.all([0, 1].map(() => ctx.withTransaction(async (tx) => tx.handle)));
    expect(handles[0]).not.toBe(handles[1]);
    expect(handles.map((s) => s.supports.causalConsistency)).toEqual([true, true]);
    expect(tracked.sessions).toEqual(handles);
    expect(tracked.sessions.every((s) => s.hasEnded)).toBe(true);

    const loose = mongoTransactions(client, { causalConsistency: false });
    expect(await loose.withTransaction(async (tx) => tx.handle.supports.causalConsistency)).toBe(false);
    await ctx.close();
    await loose.close();
  });

  it('a transaction begun by hand inside a unit is no attempt of it: it gets a session of its own, and both are ended', async () => {
    const tracked = trackSessions(client);
    const ctx = mongoTransactions(tracked.client);
    const [unitSession, manualSession] = await ctx.withTransaction(async (tx) => {
      const manual = await ctx.begin();
      await manual.abort();
      // Not kept for a rerun of the unit, as an attempt's session would be.
      expect(manual.handle.hasEnded).toBe(true);
      return [tx.handle, manual.handle] as const;
    });
    expect(manualSession).not.toBe(unitSession);
    expect(tracked.sessions).toEqual([unitSession, manualSession]);
    expect(tracked.sessions.every((s) => s.hasEnded)).toBe(true);
    await ctx.close();
  });

  it('an empty transaction commits without sending anything, and its session is ended', async () => {
    const tracked = trackSessions(client);
    const ctx = mongoTransactions(tracked.client);
    const before = server.received.length;
    const tx = await ctx.begin();
    await tx.commit();
    expect(tx.state).toBe('committed');
    expect(server.received.slice(before).map((c) => c.name)).not.toContain('commitTransaction');
    expect(tracked.sessions.map((s) => s.hasEnded)).toEqual([true]);
    await ctx.close();
  });

  it('invalid options give ConfigError before any work', async () => {
    const ctx = mongoTransactions(client);
    let runs = 0;
    const bad: object[] = [
      { readConcern: 'linearizable' },
      { readConcern: { level: 'nope' } },
      { writeConcern: { w: 0 } },
      { writeConcern: 'majority' },
      { readPreference: 'sometimes' },
      { maxCommitTimeMS: -5 },
      { maxCommitTimeMS: 1.5 },
    ];
    for (const options of bad) {
      const err = await rejection(ctx.withTransaction(async () => void (runs += 1), options as MongoTxOptions));
      expect(err, JSON.stringify(options)).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).backend).toBe('mongodb');
    }
    expect(runs).toBe(0);
    expect(() => mongoTransactions(client, { defaults: { writeConcern: { w: 0 } } })).toThrow(ConfigError);
    expect(() => mongoTransactions({} as MongoClient)).toThrow(/needs a MongoClient/);
    expect(() => mongoTransactions(client, { causalConsistency: 'yes' as unknown as boolean })).toThrow(ConfigError);
    await ctx.close();
  });

  it('an unknown factory option is refused with ConfigError naming it (a misspelt causalConsistency, a transaction option)', async () => {
    const make = (options: object) => () => mongoTransactions(client, options as MongoTransactionsOptions);
    expect(make({ causalConsistancy: false })).toThrow(ConfigError);
    expect(make({ causalConsistancy: false })).toThrow(
      /unknown option 'causalConsistancy' in the options of mongoTransactions\(client, options\) \(check the spelling\); the accepted options are causalConsistency, /,
    );
    expect(make({ writeConcern: { w: 'majority' } })).toThrow(/unknown option 'writeConcern'.*Transaction options .* go in 'defaults'/);
  });

  it("begin honours the caller's signal: already aborted, or fired while the session starts", async () => {
    const tracked = trackSessions(client);
    const ctx = mongoTransactions(tracked.client);
    const before = server.received.length;
    const reason = new Error('caller gave up');
    const err = await rejection(ctx.begin({ signal: AbortSignal.abort(reason) }));
    expect(err).toBeInstanceOf(TransactionAbortedError);
    expect((err as Error).cause).toBe(reason);
    expect(tracked.sessions, 'no session started').toHaveLength(0);

    const controller = new AbortController();
    const firing = mongoTransactions({
      startSession: (options?: ClientSessionOptions) => {
        const s = tracked.client.startSession(options);
        controller.abort(reason);
        return s;
      },
    });
    const fired = await rejection(firing.begin({ signal: controller.signal }));
    expect(fired).toBeInstanceOf(TransactionAbortedError);
    expect((fired as Error).cause).toBe(reason);
    expect(tracked.sessions.map((s) => s.hasEnded), 'the session it started is ended').toEqual([true]);
    expect(server.received.slice(before).filter((c) => c.lsid !== undefined), 'nothing sent on it').toEqual([]);
    await ctx.close();
    await firing.close();
  });
});

describe('mongodb adapter misuse gives typed errors that say what to do', () => {
  it('a session used with another MongoClient: MongoForeignSessionError, not retried, nothing sent', async () => {
    const other = scriptedClient(server);
    const ctx = mongoTransactions(client);
    const name = uniqueName('foreign');
    let runs = 0;
    try {
      const err = await rejection(
        ctx.withTransaction(async (tx) => {
          runs += 1;
          await other.db('txkit').collection<KeyValueDoc>(name).insertOne({ _id: 'k' }, { session: tx.handle });
        }),
      );
      expect(err).toBeInstanceOf(MongoForeignSessionError);
      expect((err as TxkitError).code).toBe('FOREIGN_SESSION');
      expect((err as Error).message).toMatch(/different MongoClient.*take collections from that same client/);
      expect((err as Error).cause).toMatchObject({ name: 'MongoInvalidArgumentError' });
      expect(runs).toBe(1);
      expect(writesTo(server, name)).toEqual([]);
    } finally {
      await ctx.close();
      await other.close();
    }
  });

  it('a transaction on a standalone server: MongoTopologyError, not retried', async () => {
    const standalone = await new ScriptedMongoServer({ topology: 'standalone' }).start();
    const lone = scriptedClient(standalone);
    const ctx = mongoTransactions(lone);
    const name = uniqueName('standalone');
    let runs = 0;
    try {
      const err = await rejection(
        ctx.withTransaction(async (tx) => {
          runs += 1;
          await lone.db('txkit').collection<KeyValueDoc>(name).insertOne({ _id: 'k' }, { session: tx.handle });
        }),
      );
      expect(err).toBeInstanceOf(MongoTopologyError);
      expect((err as Error).message).toMatch(/replica set.*rs\.initiate\(\)/);
      // The driver wraps mongod's refusal of a write in its own "retryable writes" error.
      const cause = (err as Error).cause as { originalError?: unknown };
      expect(cause.originalError ?? cause).toMatchObject({ code: 20, codeName: 'IllegalOperation' });
      expect(runs).toBe(1);
      const writes = writesTo(standalone, name);
      expect(writes).toHaveLength(1);
      expect(writes[0]?.startTransaction).toBe(true);
      expect(standalone.committed('txkit', name)).toEqual([]);
    } finally {
      await ctx.close();
      await lone.close();
      await standalone.stop();
    }
  });

  it('parallel operations in one transaction: MongoParallelUseError, not retried, nothing committed', async () => {
    const ctx = mongoTransactions(client);
    const name = uniqueName('parallel');
    const coll = client.db('txkit').collection<KeyValueDoc>(name);
    let runs = 0;
    // Replies to the two inserts wait until both have arrived: they surely overlapped.
    server.holdUntil('insert', 2);
    const err = await rejection(
      ctx.withTransaction(async (tx) => {
        runs += 1;
        await Promise.all([
          coll.insertOne({ _id: 'a' }, { session: tx.handle }),
          coll.insertOne({ _id: 'b' }, { session: tx.handle }),
        ]);
      }),
    );
    expect(err).toBeInstanceOf(MongoParallelUseError);
    expect((err as Error).message).toMatch(/await each instead of Promise\.all/);
    expect((err as Error).cause).toMatchObject({ codeName: 'ConflictingOperationInProgress' });
    expect(runs).toBe(1);
    const writes = writesTo(server, name);
    expect(writes.map((w) => w.startTransaction)).toEqual([true, true]);
    expect(new Set(writes.map(txnOf)).size, 'both in the same transaction').toBe(1);
    expect(server.commands('abortTransaction').map(txnOf)).toContain(txnOf(writes[0]));
    expect(server.committed('txkit', name)).toEqual([]);
    expect(server.openTransactions).toBe(0);
    await ctx.close();
  });

  it("an error of the unit's own code is not translated, even with a misuse's words: the same error comes back", async () => {
    const ctx = mongoTransactions(client);
    for (const message of [
      'Transaction numbers are only allowed on a replica set member or mongos',
      'Cannot pin multiple connections to the same session',
      'ClientSession must be from the same MongoClient',
    ]) {
      const own = new Error(message);
      expect(await rejection(ctx.withTransaction(async () => Promise.reject(own)))).toBe(own);
    }
    await ctx.close();
  });
});

/**
 * A session-like object of the test's own (the adapter takes any client with startSession): methods that
 * throw synchronously, as no driver session does, must fail the unit the way a rejected promise would.
 */
describe('mongodb adapter with sessions that fail in their own ways (no server)', () => {
  class FakeSession {
    static made: FakeSession[] = [];
    hasEnded = false;
    ended = 0;
    #active = false;
    constructor(readonly fail: { commitThrows?: Error; endThrows?: Error } = {}) {
      FakeSession.made.push(this);
    }
    startTransaction(): void {
      this.#active = true;
    }
    commitTransaction(): Promise<void> {
      if (this.fail.commitThrows !== undefined) throw this.fail.commitThrows;
      this.#active = false;
      return Promise.resolve();
    }
    async abortTransaction(): Promise<void> {
      this.#active = false;
    }
    endSession(): Promise<void> {
      this.ended += 1;
      this.hasEnded = true;
      if (this.fail.endThrows !== undefined) throw this.fail.endThrows;
      return Promise.resolve();
    }
    inTransaction(): boolean {
      return this.#active;
    }
  }
  const contextOf = (fail: { commitThrows?: Error; endThrows?: Error }) => {
    FakeSession.made = [];
    return mongoTransactions({ startSession: () => new FakeSession(fail) }, { retry: { initialDelayMs: 1, maxDelayMs: 1 } });
  };

  it('a commitTransaction that throws synchronously fails the unit with its error, once, and the session is ended', async () => {
    const broken = new TypeError('commitTransaction exploded');
    const ctx = contextOf({ commitThrows: broken });
    expect(await rejection(ctx.withTransaction(async () => 'done'))).toBe(broken);
    expect(FakeSession.made).toHaveLength(1);
    expect(FakeSession.made[0]?.ended).toBe(1);
    await ctx.close();
  });

  it('a rerun unit keeps its session between attempts and ends it once, also when endSession throws synchronously', async () => {
    const transient = Object.assign(new Error('write conflict'), { errorLabels: ['TransientTransactionError'] });
    const ctx = contextOf({});
    let attempts = 0;
    const sessions: unknown[] = [];
    const value = await ctx.withTransaction(async (tx) => {
      sessions.push(tx.handle);
      if (++attempts < 3) throw transient;
      return 'third time';
    });
    expect(value).toBe('third time');
    expect(new Set(sessions).size).toBe(1);
    expect(FakeSession.made.map((s) => s.ended)).toEqual([1]);

    // A fatal error after a rerun: the kept session is ended with the unit; its synchronous throw is the unit's error.
    const endFailed = new Error('endSession exploded');
    const failing = contextOf({ endThrows: endFailed });
    let tries = 0;
    const fatal = new Error('fatal on the second attempt');
    const outcome = await rejection(
      failing.withTransaction(async () => {
        throw ++tries === 1 ? transient : fatal;
      }),
    );
    expect(outcome).toBe(endFailed);
    expect(tries).toBe(2);
    expect(FakeSession.made.map((s) => s.ended)).toEqual([1]);
    await ctx.close();
    await failing.close();
  });
});
