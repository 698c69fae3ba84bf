/**
 * txkit's withTransaction against the driver's own `session.withTransaction`,
 * scenario by scenario, on the scripted server: the same callback, the same
 * scripted faults, and what each sent compared command by command (which
 * server transaction, startTransaction, read concern and its causal link,
 * write concern of commitTransaction/abortTransaction), plus what the caller got.
 */
import type { Document } from 'bson';
import type { ClientSession, Collection, MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mongoTransactions } from '../../src/adapters/mongo/index.js';
import type { Transaction } from '../../src/core/index.js';
import { ScriptedMongoServer, scriptedClient, trackSessions, uniqueName } from './mongo-support.js';
import type { KeyValueDoc } from './mongo-support.js';
import type { FaultRule, ReceivedCommand } from './scripted-mongo-server.js';

let server: ScriptedMongoServer;
let client: MongoClient;

beforeAll(async () => {
  server = await new ScriptedMongoServer().start();
  client = scriptedClient(server, { writeConcern: { w: 1 } });
  await client.connect();
});

afterAll(async () => {
  await client?.close();
  await server?.stop();
});

const FAST = { initialDelayMs: 1, maxDelayMs: 2, deadlineMs: 30_000 };
const TRANSIENT = { code: 112, codeName: 'WriteConflict', errorLabels: ['TransientTransactionError'] };

interface Scenario {
  name: string;
  /** The callback body; both runners call it with the session of the attempt. */
  body(session: ClientSession, coll: Collection<KeyValueDoc>, attempt: number): Promise<string>;
  /** Faults scripted before each run, for the collection of that run. */
  faults?(collection: string): FaultRule[];
  /**
   * What txkit's caller gets, when it differs from the driver's. On an error
   * that is not the driver's own, the driver calls abortTransaction before
   * anything else ("isn't spec", says its source), which throws locally after
   * the callback ended the transaction and replaces the callback's error; the
   * spec propagates the callback's error (step 7.4), and so does txkit.
   */
  txkitOutcome?: Observed['outcome'];
}

const scenarios: Scenario[] = [
  {
    name: 'the callback returns',
    body: async (s, coll) => {
      await coll.insertOne({ _id: 'k', value: 'v' }, { session: s });
      return 'done';
    },
  },
  {
    name: 'the callback commits the transaction itself',
    body: async (s, coll) => {
      await coll.insertOne({ _id: 'k', value: 'v' }, { session: s });
      await s.commitTransaction();
      return 'committed by the callback';
    },
  },
  {
    name: 'the callback aborts the transaction itself',
    body: async (s, coll) => {
      await coll.insertOne({ _id: 'k', value: 'v' }, { session: s });
      await s.abortTransaction();
      return 'aborted by the callback';
    },
  },
  {
    name: 'the callback commits, then throws',
    body: async (s, coll) => {
      await coll.insertOne({ _id: 'k', value: 'v' }, { session: s });
      await s.commitTransaction();
      throw new Error('failed after its commit');
    },
    txkitOutcome: { error: 'failed after its commit' },
  },
  {
    name: 'the callback aborts, then throws',
    body: async (s, coll) => {
      await coll.insertOne({ _id: 'k', value: 'v' }, { session: s });
      await s.abortTransaction();
      throw new Error('failed after its abort');
    },
    txkitOutcome: { error: 'failed after its abort' },
  },
  {
    name: 'a write conflict in the callback reruns it',
    faults: (c) => [{ command: 'update', when: (cmd) => cmd.body.update === c, fault: { error: TRANSIENT } }],
    body: async (s, coll) => {
      await coll.insertOne({ _id: 'k', value: 'v' }, { session: s });
      await coll.updateOne({ _id: 'k' }, { $set: { value: 'w' } }, { session: s });
      return 'done';
    },
  },
  {
    name: 'a transient commit failure reruns the callback',
    faults: () => [{ command: 'commitTransaction', fault: { error: { ...TRANSIENT, code: 251, codeName: 'NoSuchTransaction' } } }],
    body: async (s, coll) => {
      await coll.insertOne({ _id: 'k', value: 'v' }, { session: s });
      return 'done';
    },
  },
  {
    name: 'a commit whose reply is lost is sent again',
    faults: () => [{ command: 'commitTransaction', times: 2, fault: { closeConnection: 'after' } }],
    body: async (s, coll) => {
      await coll.insertOne({ _id: 'k', value: 'v' }, { session: s });
      return 'done';
    },
  },
];

/** What one run did, in terms that do not depend on session ids or the runner. */
interface Observed {
  outcome: { value: string } | { error: string };
  commands: {
    name: string;
    /** Which server session (first seen = 0) and which of its transactions (first seen = 0). */
    session: number;
    txn: number;
    startTransaction: boolean;
    readConcern: { level?: unknown; afterClusterTime: boolean } | undefined;
    writeConcern: unknown;
  }[];
  committed: Document[];
}

const DATA_COMMANDS = new Set(['insert', 'update', 'delete', 'find']);

function normalise(received: readonly ReceivedCommand[], collection: string): Observed['commands'] {
  const sessions = new Map<string, number>();
  const txns = new Map<string, number>();
  return received
    .filter((c) => (DATA_COMMANDS.has(c.name) && c.body[c.name] === collection) || c.name === 'commitTransaction' || c.name === 'abortTransaction')
    .map((c) => {
      const lsid = c.lsid ?? '-';
      if (!sessions.has(lsid)) sessions.set(lsid, sessions.size);
      const key = `${lsid}#${String(c.txnNumber)}`;
      if (!txns.has(key)) txns.set(key, txns.size);
      const rc = c.readConcern as { level?: unknown; afterClusterTime?: unknown } | undefined;
      return {
        name: c.name,
        session: sessions.get(lsid) ?? -1,
        txn: txns.get(key) ?? -1,
        startTransaction: c.startTransaction,
        readConcern: rc === undefined ? undefined : { level: rc.level, afterClusterTime: rc.afterClusterTime !== undefined },
        writeConcern: c.writeConcern,
      };
    });
}

async function observe(scenario: Scenario, run: (body: (s: ClientSession, attempt: number) => Promise<string>) => Promise<string>): Promise<Observed> {
  const name = uniqueName('diff');
  const coll = client.db('txkit').collection<KeyValueDoc>(name);
  server.script(...(scenario.faults?.(name) ?? []));
  const from = server.received.length;
  let attempt = 0;
  let outcome: Observed['outcome'];
  try {
    outcome = { value: await run((s) => scenario.body(s, coll, ++attempt)) };
  } catch (err) {
    outcome = { error: (err as Error).message };
  }
  expect(server.pendingFaults, 'every scripted fault struck').toBe(0);
  return { outcome, commands: normalise(server.received.slice(from), name), committed: server.committed('txkit', name) };
}

const viaDriver = async (body: (s: ClientSession, attempt: number) => Promise<string>): Promise<string> => {
  const session = client.startSession();
  try {
    let attempt = 0;
    return await session.withTransaction((s) => body(s, ++attempt));
  } finally {
    await session.endSession();
  }
};

/** A BSON Timestamp as one comparable number (seconds, then increment), or undefined when `v` is none. */
function clusterTime(v: unknown): bigint | undefined {
  const t = v as { _bsontype?: string; t?: number; i?: number } | undefined;
  if (t?._bsontype !== 'Timestamp' || t.t === undefined || t.i === undefined) return undefined;
  return (BigInt(t.t) << 32n) | BigInt(t.i);
}

describe("mongodb withTransaction: txkit against the driver's session.withTransaction (scripted server)", () => {
  it.each(scenarios)('$name: the same commands and the same outcome', async (scenario) => {
    const expected = await observe(scenario, viaDriver);
    const ctx = mongoTransactions(client, { retry: FAST });
    try {
      const actual = await observe(scenario, (body) => ctx.withTransaction((tx: Transaction<ClientSession>) => body(tx.handle, tx.attempt)));
      expect(actual).toEqual({ ...expected, outcome: scenario.txkitOutcome ?? expected.outcome });
      if (scenario.txkitOutcome !== undefined) expect(expected.outcome).not.toEqual(scenario.txkitOutcome);
    } finally {
      await ctx.close();
    }
  });

  it('a callback that committed is not committed again: one commitTransaction, with the transaction write concern', async () => {
    const ctx = mongoTransactions(client, { retry: FAST });
    const from = server.received.length;
    const name = uniqueName('selfcommit');
    const coll = client.db('txkit').collection<KeyValueDoc>(name);
    const afterCommit: string[] = [];
    const value = await ctx.withTransaction(async (tx) => {
      tx.afterCommit(() => void afterCommit.push('ran'));
      await coll.insertOne({ _id: 'k' }, { session: tx.handle });
      await tx.handle.commitTransaction();
      return 7;
    });
    expect(value).toBe(7);
    const commits = server.received.slice(from).filter((c) => c.name === 'commitTransaction');
    expect(commits.map((c) => c.writeConcern)).toEqual([{ w: 1, wtimeout: 10_000 }]);
    expect(afterCommit, 'afterCommit hooks run: the transaction committed').toEqual(['ran']);
    expect(server.committed('txkit', name)).toEqual([{ _id: 'k' }]);
    await ctx.close();
  });

  it('a callback that committed and then threw a transient error is not run again: the commit stands, the error reaches the caller', async () => {
    const ctx = mongoTransactions(client, { retry: FAST });
    const from = server.received.length;
    const name = uniqueName('committhrow');
    const coll = client.db('txkit').collection<KeyValueDoc>(name);
    const transient = Object.assign(new Error('a later step failed'), { errorLabels: ['TransientTransactionError'] });
    let runs = 0;
    const err = await ctx
      .withTransaction(async (tx) => {
        runs += 1;
        await coll.insertOne({ _id: `k${runs}` }, { session: tx.handle });
        await tx.handle.commitTransaction();
        throw transient;
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBe(transient);
    expect(runs).toBe(1);
    expect(server.received.slice(from).filter((c) => c.name === 'commitTransaction')).toHaveLength(1);
    expect(server.received.slice(from).filter((c) => c.name === 'abortTransaction')).toHaveLength(0);
    expect(server.committed('txkit', name)).toEqual([{ _id: 'k1' }]);
    await ctx.close();
  });

  it('a commit of the callback whose reply was lost, and which the callback swallowed, is sent again and settled before afterCommit runs', async () => {
    const ctx = mongoTransactions(client, { retry: FAST });
    const from = server.received.length;
    const name = uniqueName('swallowed');
    const coll = client.db('txkit').collection<KeyValueDoc>(name);
    // The driver sends a commit a second time itself on a retryable error: both replies are lost.
    server.script({ command: 'commitTransaction', times: 2, fault: { closeConnection: 'after' } });
    const hooks: string[] = [];
    const value = await ctx.withTransaction(async (tx) => {
      tx.afterCommit(() => void hooks.push('afterCommit'));
      await coll.insertOne({ _id: 'k' }, { session: tx.handle });
      const lost = await tx.handle.commitTransaction().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((lost as { hasErrorLabel(l: string): boolean }).hasErrorLabel('UnknownTransactionCommitResult')).toBe(true);
      return 'swallowed';
    });
    expect(value).toBe('swallowed');
    const commits = server.received.slice(from).filter((c) => c.name === 'commitTransaction');
    expect(commits.map((c) => c.writeConcern?.w)).toEqual([1, 'majority', 'majority']);
    expect(hooks).toEqual(['afterCommit']);
    expect(server.committed('txkit', name)).toEqual([{ _id: 'k' }]);
    await ctx.close();
  });

  it("a callback that aborted gets its value back, afterAbort hooks run, afterCommit hooks do not; with begin(), commit() says it was aborted", async () => {
    const ctx = mongoTransactions(client, { retry: FAST });
    const name = uniqueName('selfabort');
    const coll = client.db('txkit').collection<KeyValueDoc>(name);
    const hooks: string[] = [];
    let kept: Transaction<ClientSession> | undefined;
    const value = await ctx.withTransaction(async (tx) => {
      kept = tx;
      tx.afterCommit(() => void hooks.push('afterCommit'));
      tx.afterAbort(() => void hooks.push('afterAbort'));
      await coll.insertOne({ _id: 'k' }, { session: tx.handle });
      await tx.handle.abortTransaction();
      return 'kept';
    });
    expect(value).toBe('kept');
    expect(kept?.state).toBe('aborted');
    expect(hooks).toEqual(['afterAbort']);
    expect(server.committed('txkit', name)).toEqual([]);

    const manual = await ctx.begin();
    await coll.insertOne({ _id: 'm' }, { session: manual.handle });
    await manual.handle.abortTransaction();
    const err = await manual.commit().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ name: 'TransactionStateError', code: 'ABORTED_BY_HANDLE' });
    expect((err as Error).message).toMatch(/abortTransaction\(\).*nothing was committed/);
    expect(manual.state).toBe('aborted');
    await ctx.close();
  });

  it('the rerun keeps the causal link: its first command reads after the first attempt\'s operationTime, on the same session', async () => {
    const tracked = trackSessions(client);
    const ctx = mongoTransactions(tracked.client, { retry: FAST });
    const name = uniqueName('causal');
    const coll = client.db('txkit').collection<KeyValueDoc>(name);
    server.script({ command: 'update', when: (c) => c.body.update === name, fault: { error: TRANSIENT } });
    const seen: unknown[] = [];
    const from = server.received.length;
    await ctx.withTransaction(async (tx) => {
      await coll.insertOne({ _id: `k${tx.attempt}` }, { session: tx.handle });
      seen.push(tx.handle.operationTime);
      await coll.updateOne({ _id: `k${tx.attempt}` }, { $set: { value: 'w' } }, { session: tx.handle });
    });
    const firsts = server.received.slice(from).filter((c) => c.name === 'insert' && c.body.insert === name);
    expect(firsts.map((c) => c.startTransaction)).toEqual([true, true]);
    expect(firsts[0]?.readConcern?.afterClusterTime, 'a new session has nothing to read after').toBeUndefined();
    const firstAttemptTime = clusterTime(seen[0]);
    const rerunAfter = clusterTime(firsts[1]?.readConcern?.afterClusterTime);
    expect(firstAttemptTime, "the first attempt's operationTime").toBeGreaterThan(0n);
    expect(rerunAfter, "the rerun's first command carries afterClusterTime").toBeDefined();
    expect(rerunAfter! >= firstAttemptTime!).toBe(true);
    expect(tracked.sessions, 'both attempts ran on one session, as the driver does').toHaveLength(1);
    expect(tracked.sessions.every((s) => s.hasEnded), 'and it was ended with the unit').toBe(true);
    await ctx.close();
  });
});
