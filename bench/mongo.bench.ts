// `npm run bench -- mongo`: what the MongoDB adapter costs per transaction.
// - Always: txkit withTransaction vs the same writes with hand-written
//   startSession/startTransaction/commitTransaction/endSession, both with the
//   real driver against the scripted wire-protocol server of the tests (in this
//   process, on loopback). The difference is txkit's own overhead.
// - When MONGODB_URI names a replica set: txkit vs the driver's
//   session.withTransaction on the same writes (goal: ratio at most 1.03).
// Variants are interleaved in one run. The adapter is loaded from the build
// (dist/mongo.js) when the build has that entry, else from the sources.
import { MongoClient } from 'mongodb';
import type { ClientSession, Collection } from 'mongodb';
import { ScriptedMongoServer } from '../test/mongo/scripted-mongo-server.js';
import { benchGoal, controlledVerdict, differenceInterval, fmt, fmtControl, fmtInterval, interleaved } from './harness.js';
import type { BenchGoal, BenchResult, InterleavedResult } from './harness.js';

type MongoModule = typeof import('../src/adapters/mongo/index.js');

/** The goal for what the adapter and core add per transaction without I/O, in µs. */
const STUB_GOAL_US = 2;

async function loadAdapter(): Promise<{ mod: MongoModule; from: string }> {
  const built = '../dist/mongo.js';
  try {
    return { mod: (await import(built)) as MongoModule, from: 'dist/mongo.js (built)' };
  } catch {
    return { mod: await import('../src/adapters/mongo/index.js'), from: 'src/adapters/mongo (sources via tsx; the build has no mongo entry yet)' };
  }
}

interface Doc {
  _id: number;
  n?: number;
}

export default async function mongoBench(): Promise<BenchResult> {
  const { mod, from } = await loadAdapter();
  const rows: (string | number)[][] = [];
  const lines: string[] = [];
  const goals: BenchGoal[] = [];

  // --- scripted server: txkit vs hand-written core API ---
  const server = await new ScriptedMongoServer().start();
  const client = new MongoClient(server.uri, { minHeartbeatFrequencyMS: 10 });
  await client.connect();
  try {
    const coll = client.db('bench').collection<Doc>('scripted');
    const scripted = await compare(coll, client, mod, 'hand-written startTransaction/commitTransaction', handWritten);
    const overheadUs = (scripted.txkit.medianNs - scripted.native.medianNs) / 1000;
    lines.push(
      `Against the scripted server (real driver, loopback, same process), txkit adds **${fmt(overheadUs)} µs** per ` +
        `transaction over the hand-written core API (ratio ${fmt(scripted.txkit.medianNs / scripted.native.medianNs, 3)}).`,
    );
    rows.push(...toRows('scripted server', scripted.native, scripted.txkit));
  } finally {
    await client.close();
    await server.stop();
  }

  // --- no I/O: the same calls on a stub session, so txkit's CPU cost is not lost in loopback noise ---
  const cpu = await cpuOnly(mod);
  const us = (ns: number[]): number[] => ns.map((n) => n / 1000);
  const stubOverhead = differenceInterval(us(cpu.txkit.roundsNs), us(cpu.native.roundsNs));
  const stubControl = differenceInterval(us(cpu.control.roundsNs), us(cpu.native.roundsNs));
  const stubVerdict = controlledVerdict(stubOverhead, stubControl, { atMost: STUB_GOAL_US }, 0);
  goals.push(
    benchGoal(
      {
        measure: 'adapter and core over hand-written driver calls, stub session (no I/O), µs per transaction',
        figure: fmtInterval(stubOverhead, 2),
        goal: `< ${STUB_GOAL_US}`,
        verdict: stubVerdict,
      },
      () =>
        `the hand-written calls alone take ${fmt(cpu.native.medianNs / 1000, 2)} µs; the hand-written calls against ` +
        `themselves ${fmtInterval(stubControl, 2)} µs`,
    ),
  );
  lines.push(
    `Without I/O (a stub session that resolves at once), adapter and core cost ` +
      `**${fmtInterval(stubOverhead, 2)} µs** per transaction (95% bootstrap interval over paired rounds; goal: under ` +
      `${STUB_GOAL_US} µs, **${stubVerdict}**); the hand-written calls against themselves, run again as a control: ` +
      `${fmtControl(stubControl, 2, 0)} µs.`,
  );
  rows.push(...toRows('stub session (no I/O)', cpu.native, cpu.txkit));

  // --- real deployment: txkit vs session.withTransaction ---
  const uri = process.env.MONGODB_URI;
  if (uri === undefined || uri === '') {
    lines.push('No MONGODB_URI: the comparison with `session.withTransaction` on a real replica set was not run.');
  } else {
    const real = new MongoClient(uri);
    await real.connect();
    try {
      const coll = real.db('txkit_bench').collection<Doc>(`bench_${process.pid}`);
      const r = await compare(coll, real, mod, 'driver session.withTransaction', driverWithTransaction);
      const ratio = r.txkit.medianNs / r.native.medianNs;
      goals.push({
        measure: 'txkit / driver session.withTransaction on a replica set (MONGODB_URI), time per transaction',
        figure: fmt(ratio, 3),
        goal: '<= 1.03',
        verdict: ratio <= 1.03 ? 'met' : 'missed',
      });
      lines.push(
        `On the replica set from MONGODB_URI, txkit withTransaction / driver session.withTransaction = ` +
          `**${fmt(ratio, 3)}** (goal: at most 1.03).`,
      );
      rows.push(...toRows('replica set', r.native, r.txkit));
      await coll.drop().catch(() => undefined);
    } finally {
      await real.close();
    }
  }

  return {
    name: 'mongo',
    title: 'MongoDB adapter overhead per transaction',
    command: 'npm run bench -- mongo',
    summary:
      `${lines.join(' ')} Each transaction starts a session, updates one document and commits; medians of ` +
      `interleaved rounds. Adapter loaded from ${from}.`,
    table: { headers: ['deployment', 'variant', 'µs per transaction (median)', 'ratio to native'], rows },
    goals,
    chart: {
      title: 'MongoDB: time per transaction relative to hand-written driver calls (lower is better)',
      reference: { value: 1, label: 'hand-written startTransaction/commitTransaction = 1' },
      groups: [...new Set(rows.map((r) => String(r[0])))].map((deployment) => ({
        label: `${deployment}: µs per transaction / native`,
        bars: rows.filter((r) => r[0] === deployment).map((r) => ({ label: String(r[1]), value: Number(r[3]) })),
      })),
    },
  };
}

type Native = (client: MongoClient, coll: Collection<Doc>, key: number) => Promise<unknown>;

const handWritten: Native = async (client, coll, key) => {
  const session = client.startSession();
  try {
    session.startTransaction();
    await coll.updateOne({ _id: key }, { $inc: { n: 1 } }, { upsert: true, session });
    await session.commitTransaction();
  } catch (err) {
    if (session.inTransaction()) await session.abortTransaction();
    throw err;
  } finally {
    await session.endSession();
  }
};

const driverWithTransaction: Native = async (client, coll, key) => {
  const session = client.startSession();
  try {
    await session.withTransaction((s: ClientSession) => coll.updateOne({ _id: key }, { $inc: { n: 1 } }, { upsert: true, session: s }));
  } finally {
    await session.endSession();
  }
};

async function compare(
  coll: Collection<Doc>,
  client: MongoClient,
  mod: MongoModule,
  nativeLabel: string,
  native: Native,
): Promise<{ native: InterleavedResult; txkit: InterleavedResult }> {
  const ctx = mod.mongoTransactions(client);
  let i = 0;
  const results = await interleaved(
    [
      { label: nativeLabel, run: () => native(client, coll, i++ % 100) },
      {
        label: 'txkit withTransaction',
        run: () =>
          ctx.withTransaction((tx) => coll.updateOne({ _id: i++ % 100 }, { $inc: { n: 1 } }, { upsert: true, session: tx.handle })),
      },
    ],
    { rounds: 41, opsPerRound: 200, warmupOps: 500 },
  );
  await ctx.close();
  const [n, t] = results as [InterleavedResult, InterleavedResult];
  return { native: n, txkit: t };
}

/** The driver calls of one transaction, resolved at once: what is left is txkit's own work. */
class StubSession {
  hasEnded = false;
  #active = false;
  startTransaction(): void {
    this.#active = true;
  }
  async commitTransaction(): Promise<void> {
    this.#active = false;
  }
  async abortTransaction(): Promise<void> {
    this.#active = false;
  }
  async endSession(): Promise<void> {
    this.hasEnded = true;
  }
  inTransaction(): boolean {
    return this.#active;
  }
}

async function cpuOnly(mod: MongoModule): Promise<{ native: InterleavedResult; txkit: InterleavedResult; control: InterleavedResult }> {
  const stub = { startSession: () => new StubSession() };
  const ctx = mod.mongoTransactions(stub);
  const write = async (session: StubSession): Promise<void> => void (await Promise.resolve(session));
  const handWritten = async (): Promise<void> => {
    const s = stub.startSession();
    s.startTransaction();
    await write(s);
    await s.commitTransaction();
    await s.endSession();
  };
  const results = await interleaved(
    [
      { label: 'hand-written startTransaction/commitTransaction', run: handWritten },
      { label: 'txkit withTransaction', run: () => ctx.withTransaction((tx) => write(tx.handle)) },
      // The hand-written calls again: the run's control (see controlledVerdict).
      { label: 'hand-written, again (control)', run: handWritten },
    ],
    { rounds: 24, opsPerRound: 5_000, warmupOps: 20_000 },
  );
  await ctx.close();
  const [n, t, c] = results as [InterleavedResult, InterleavedResult, InterleavedResult];
  return { native: n, txkit: t, control: c };
}

function toRows(deployment: string, native: InterleavedResult, txkit: InterleavedResult): (string | number)[][] {
  return [native, txkit].map((r) => [deployment, r.label, fmt(r.medianNs / 1000), fmt(r.medianNs / native.medianNs, 3)]);
}
