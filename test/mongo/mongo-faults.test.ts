/**
 * Spec-exact retry with the real `mongodb` driver under scripted faults. Each
 * case asserts on what the server actually received: how often the unit's
 * writes and commitTransaction were sent, under which lsid/txnNumber, and
 * with which write concern.
 */
import { ClientSession } from 'mongodb';
import type { MongoClient } from 'mongodb';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { MongoCommitTimeoutError, mongoTransactions } from '../../src/adapters/mongo/index.js';
import { TransactionTimeoutError, UnknownCommitResultError } from '../../src/core/index.js';
import type { Transaction } from '../../src/core/index.js';
import { rejection } from '../../src/testing/index.js';
import { ScriptedMongoServer, scriptedClient, trackSessions, txnOf, uniqueName, writesTo } from './mongo-support.js';
import type { KeyValueDoc } from './mongo-support.js';
import type { Fault } from './scripted-mongo-server.js';

const FAST = { initialDelayMs: 1, maxDelayMs: 2 } as const;
const TRANSIENT = ['TransientTransactionError'];

let server: ScriptedMongoServer;
let client: MongoClient;

beforeAll(async () => {
  server = await new ScriptedMongoServer().start();
  client = scriptedClient(server);
  await client.connect();
});

afterAll(async () => {
  await client?.close();
  await server?.stop();
});

afterEach(() => {
  expect(server.pendingFaults, 'every scripted fault struck').toBe(0);
});

/** One unit that increments a counter document, run under txkit with every session tracked. */
async function incrementUnit(options: { maxCommitTimeMS?: number; writeConcern?: { w: number | 'majority'; wtimeoutMS?: number } } = {}) {
  const name = uniqueName('faults');
  const coll = client.db('txkit').collection<KeyValueDoc>(name);
  const tracked = trackSessions(client);
  const ctx = mongoTransactions(tracked.client);
  const attempts: number[] = [];
  const seen: Transaction<ClientSession>[] = [];
  const hooks: string[] = [];
  const run = () =>
    ctx.withTransaction(
      async (tx) => {
        attempts.push(tx.attempt);
        seen.push(tx);
        tx.afterCommit(() => void hooks.push('commit'));
        tx.afterAbort(() => void hooks.push('abort'));
        await coll.updateOne({ _id: 'c' }, { $inc: { n: 1 } }, { upsert: true, session: tx.handle });
        return 'done';
      },
      { retry: FAST, ...options },
    );
  return {
    name,
    run,
    attempts,
    seen,
    hooks,
    sessions: tracked.sessions,
    ctx,
    committed: () => server.committed('txkit', name),
    commits: () => server.commands('commitTransaction').filter((c) => writesTo(server, name).some((w) => txnOf(w) === txnOf(c))),
    aborts: () => server.commands('abortTransaction').filter((c) => writesTo(server, name).some((w) => txnOf(w) === txnOf(c))),
    writes: () => writesTo(server, name),
  };
}

describe('mongodb adapter under scripted faults (real driver)', () => {
  const transientWriteFaults: [string, Fault][] = [
    ['WriteConflict', { error: { code: 112, codeName: 'WriteConflict', errorLabels: TRANSIENT } }],
    ['NoSuchTransaction', { error: { code: 251, codeName: 'NoSuchTransaction', errorLabels: TRANSIENT } }],
    ['a dropped connection (the driver labels it TransientTransactionError)', { closeConnection: 'before' }],
  ];
  for (const [what, fault] of transientWriteFaults) {
    it(`a write failing with ${what} reruns the whole unit in a new transaction`, async () => {
      const u = await incrementUnit();
      server.script({ command: 'update', when: (c) => c.body.update === u.name, fault });
      expect(await u.run()).toBe('done');

      expect(u.attempts).toEqual([1, 2]);
      const writes = u.writes();
      expect(writes).toHaveLength(2);
      expect(writes.map((w) => w.startTransaction)).toEqual([true, true]);
      expect(txnOf(writes[0]), 'the rerun is a new server transaction').not.toBe(txnOf(writes[1]));
      // Only the second transaction was committed, once; the first was aborted or died with its connection.
      expect(u.commits().map(txnOf)).toEqual([txnOf(writes[1])]);
      expect(u.committed()).toEqual([{ _id: 'c', n: 1 }]);
      expect(u.hooks).toEqual(['abort', 'commit']);
      expect(u.sessions.every((s) => s.hasEnded), 'every session txkit started was ended').toBe(true);
      expect(server.openTransactions).toBe(0);
      await u.ctx.close();
    });
  }

  it("UnknownTransactionCommitResult (write concern timeout) retries only the commit, with w: 'majority' and wtimeout 10000", async () => {
    const u = await incrementUnit();
    server.script({
      command: 'commitTransaction',
      fault: { writeConcernError: { code: 64, codeName: 'WriteConcernFailed', errInfo: { wtimeout: true } } },
    });
    await u.run();

    expect(u.attempts).toEqual([1]);
    expect(u.writes()).toHaveLength(1);
    const commits = u.commits();
    expect(commits).toHaveLength(2);
    expect(commits.map(txnOf)).toEqual([txnOf(u.writes()[0]), txnOf(u.writes()[0])]);
    expect(commits[0]?.writeConcern).toBeUndefined();
    expect(commits[1]?.writeConcern).toEqual({ w: 'majority', wtimeout: 10_000 });
    expect(u.committed()).toEqual([{ _id: 'c', n: 1 }]);
    expect(u.seen[0]?.state).toBe('committed');
    expect(u.hooks).toEqual(['commit']);
    expect(u.sessions.every((s) => s.hasEnded)).toBe(true);
    await u.ctx.close();
  });

  it("a retried commit keeps the transaction's other write concern options and sets only w: 'majority'", async () => {
    const u = await incrementUnit({ writeConcern: { w: 1, wtimeoutMS: 2500 } });
    server.script({
      command: 'commitTransaction',
      times: 2,
      fault: { writeConcernError: { code: 64, codeName: 'WriteConcernFailed', errInfo: { wtimeout: true } } },
    });
    await u.run();

    const commits = u.commits();
    expect(commits.map((c) => c.writeConcern)).toEqual([
      { w: 1, wtimeout: 2500 },
      { w: 'majority', wtimeout: 2500 },
      { w: 'majority', wtimeout: 2500 },
    ]);
    expect(new Set(commits.map(txnOf)).size).toBe(1);
    expect(u.writes()).toHaveLength(1);
    expect(u.committed()).toEqual([{ _id: 'c', n: 1 }]);
    await u.ctx.close();
  });

  it('a connection dropped on commit twice: the driver retries once itself, txkit once more, the unit runs once', async () => {
    const u = await incrementUnit();
    server.script({ command: 'commitTransaction', times: 2, fault: { closeConnection: 'before' } });
    await u.run();

    expect(u.attempts).toEqual([1]);
    expect(u.writes()).toHaveLength(1);
    const commits = u.commits();
    // 1: the first commit; 2: the driver's own retry (transactions spec: retry once on a retryable error);
    // 3: txkit's commit-only retry after the driver reported UnknownTransactionCommitResult.
    expect(commits).toHaveLength(3);
    expect(new Set(commits.map(txnOf)).size).toBe(1);
    expect(commits.map((c) => c.writeConcern)).toEqual([
      undefined,
      { w: 'majority', wtimeout: 10_000 },
      { w: 'majority', wtimeout: 10_000 },
    ]);
    expect(new Set(commits.map((c) => c.connectionId)).size, 'each retry went out on a new connection').toBe(3);
    expect(u.committed()).toEqual([{ _id: 'c', n: 1 }]);
    expect(u.sessions.every((s) => s.hasEnded)).toBe(true);
    await u.ctx.close();
  });

  it('a commit applied whose reply was lost is retried and not applied twice', async () => {
    const u = await incrementUnit();
    server.script({ command: 'commitTransaction', fault: { closeConnection: 'after' } });
    await u.run();

    const commits = u.commits();
    expect(commits).toHaveLength(2);
    expect(commits[1]?.writeConcern).toEqual({ w: 'majority', wtimeout: 10_000 });
    expect(u.committed(), 'the $inc landed once').toEqual([{ _id: 'c', n: 1 }]);
    expect(u.attempts).toEqual([1]);
    await u.ctx.close();
  });

  it('NoSuchTransaction (TransientTransactionError) on commit reruns the whole unit', async () => {
    const u = await incrementUnit();
    server.script({
      command: 'commitTransaction',
      fault: { error: { code: 251, codeName: 'NoSuchTransaction', errorLabels: TRANSIENT } },
    });
    await u.run();

    expect(u.attempts).toEqual([1, 2]);
    const writes = u.writes();
    expect(writes).toHaveLength(2);
    const commits = u.commits();
    expect(commits.map(txnOf)).toEqual([txnOf(writes[0]), txnOf(writes[1])]);
    expect(txnOf(writes[0])).not.toBe(txnOf(writes[1]));
    expect(commits[1]?.writeConcern, 'a new transaction commits with its own write concern').toBeUndefined();
    expect(u.committed()).toEqual([{ _id: 'c', n: 1 }]);
    expect(u.hooks).toEqual(['abort', 'commit']);
    expect(u.sessions.every((s) => s.hasEnded)).toBe(true);
    await u.ctx.close();
  });

  it('MaxTimeMSExpired on commit is not retried: one commit sent, MongoCommitTimeoutError, state failed, no hooks', async () => {
    const u = await incrementUnit({ maxCommitTimeMS: 750 });
    server.script({
      command: 'commitTransaction',
      fault: { error: { code: 50, codeName: 'MaxTimeMSExpired', errmsg: 'operation exceeded time limit' } },
    });
    const err = await rejection(u.run());

    expect(err).toBeInstanceOf(MongoCommitTimeoutError);
    expect(err).toBeInstanceOf(UnknownCommitResultError);
    expect((err as MongoCommitTimeoutError).cause).toMatchObject({ code: 50, codeName: 'MaxTimeMSExpired' });
    expect(((err as MongoCommitTimeoutError).cause as { errorLabels: string[] }).errorLabels).toContain(
      'UnknownTransactionCommitResult',
    );
    expect(u.attempts).toEqual([1]);
    const commits = u.commits();
    expect(commits).toHaveLength(1);
    expect(commits[0]?.maxTimeMS).toBe(750);
    expect(u.seen[0]?.state).toBe('failed');
    expect(u.hooks, 'the outcome is unknown: neither afterCommit nor afterAbort').toEqual([]);
    expect(u.sessions.every((s) => s.hasEnded)).toBe(true);
    await u.ctx.close();
  });

  it('MaxTimeMSExpired inside a writeConcernError is not retried either', async () => {
    const u = await incrementUnit({ maxCommitTimeMS: 750 });
    server.script({ command: 'commitTransaction', fault: { writeConcernError: { code: 50, codeName: 'MaxTimeMSExpired' } } });
    const err = await rejection(u.run());

    expect(err).toBeInstanceOf(MongoCommitTimeoutError);
    expect(u.commits()).toHaveLength(1);
    expect(u.seen[0]?.state).toBe('failed');
    await u.ctx.close();
  });

  it('an unknown commit result that never clears retries only the commit until stopped; close() ends its session', async () => {
    const u = await incrementUnit();
    server.script({
      command: 'commitTransaction',
      times: 3,
      fault: { writeConcernError: { code: 64, codeName: 'WriteConcernFailed', errInfo: { wtimeout: true } } },
    });
    const coll = client.db('txkit').collection<KeyValueDoc>(u.name);
    let commitTries = 0;
    const err = await rejection(
      u.ctx.withTransaction(
        async (tx) => {
          await coll.updateOne({ _id: 'c' }, { $inc: { n: 1 } }, { upsert: true, session: tx.handle });
        },
        // Only the deadline or the caller's signal stops commit retries; here the
        // signal fires once the server has received the third commitTransaction.
        { retry: { ...FAST, deadlineMs: 60_000 }, signal: abortAfter(() => (commitTries = u.commits().length) >= 3) },
      ),
    );
    expect(commitTries).toBe(3);
    expect((err as Error).name).toBe('TransactionAbortedError');
    expect(u.writes()).toHaveLength(1);
    expect(u.sessions.every((s) => s.hasEnded), 'close() ends the session held for the unknown commit').toBe(false);
    await u.ctx.close();
    expect(u.sessions.every((s) => s.hasEnded)).toBe(true);
  });

  it("txkit never calls the driver's own withTransaction", async () => {
    const spy = vi.spyOn(ClientSession.prototype, 'withTransaction');
    try {
      const u = await incrementUnit();
      server.script(
        { command: 'update', when: (c) => c.body.update === u.name, fault: { error: { code: 112, codeName: 'WriteConflict', errorLabels: TRANSIENT } } },
        { command: 'commitTransaction', fault: { closeConnection: 'before' } },
      );
      await u.run();
      expect(u.attempts).toEqual([1, 2]);
      expect(spy).not.toHaveBeenCalled();
      await u.ctx.close();
    } finally {
      spy.mockRestore();
    }
  });

  it('maxAttempts bounds reruns of a unit whose writes keep conflicting; the driver error comes back as it is', async () => {
    const u = await incrementUnit();
    server.script({
      command: 'update',
      when: (c) => c.body.update === u.name,
      times: 4,
      fault: { error: { code: 112, codeName: 'WriteConflict', errorLabels: TRANSIENT } },
    });
    const coll = client.db('txkit').collection<KeyValueDoc>(u.name);
    const err = await rejection(
      u.ctx.withTransaction(
        async (tx) => {
          await coll.updateOne({ _id: 'c' }, { $inc: { n: 1 } }, { upsert: true, session: tx.handle });
        },
        { retry: { ...FAST, maxAttempts: 4 } },
      ),
    );
    expect(err).toMatchObject({ name: 'MongoServerError', codeName: 'WriteConflict' });
    expect(err).not.toBeInstanceOf(TransactionTimeoutError);
    expect(u.writes()).toHaveLength(4);
    expect(new Set(u.writes().map(txnOf)).size, 'four server transactions').toBe(4);
    expect(u.commits()).toHaveLength(0);
    expect(u.committed()).toEqual([]);
    expect(u.sessions.every((s) => s.hasEnded)).toBe(true);
    await u.ctx.close();
  });
});

/** A signal that fires once `predicate` holds, checked as the server records commands. */
function abortAfter(predicate: () => boolean): AbortSignal {
  const controller = new AbortController();
  const stop = server.onCommand(() => {
    if (!predicate()) return;
    stop();
    controller.abort(new Error('enough unknown commit results seen'));
  });
  return controller.signal;
}
