// `npm run bench -- core`: what the core (state machine, ambient context, hooks,
// retry loop) adds per transaction over the memory backend's own begin/commit.
// The built package, as users run it (the sources run through tsx carry its helpers on
// every closure); `npm run bench` builds it first. Typed from the sources it is built from.
import { AsyncLocalStorage } from 'node:async_hooks';
import { benchGoal, differenceInterval, fmt, fmtInterval, interleaved, loadEntry, ratioInterval, verdict } from './harness.js';
import type { BenchResult } from './harness.js';
type MemoryModule = typeof import('../src/adapters/memory/index.js');
const { MemoryDriver, MemoryStore, memoryTransactions } = await loadEntry<MemoryModule>('memory');

/** The goal: what withTransaction adds per transaction over the driver's own begin/commit, in µs. */
const GOAL_US = 1;
const ROUNDS = 41;
const OPS_PER_ROUND = 5_000;

export default async function coreBench(): Promise<BenchResult> {
  const store = new MemoryStore();
  const driver = new MemoryDriver(store);
  const ctx = memoryTransactions({ store });
  let i = 0;
  // The least any helper that gives an ambient transaction does: begin, run the callback with the
  // transaction in AsyncLocalStorage, commit or roll back. No retry, no state checks, no hooks.
  const ambient = new AsyncLocalStorage<unknown>();
  const handWritten = async <T>(fn: (tx: Awaited<ReturnType<typeof driver.begin>>) => Promise<T>): Promise<T> => {
    const tx = await driver.begin();
    let result: T;
    try {
      result = await ambient.run(tx, fn, tx);
    } catch (err) {
      await tx.rollback();
      throw err;
    }
    await tx.commit();
    return result;
  };

  const results = await interleaved(
    [
      {
        label: 'memory driver begin/set/commit (no core)',
        run: async () => {
          const tx = await driver.begin();
          await tx.handle.set(`k${i++ % 1000}`, i);
          await tx.commit();
        },
      },
      {
        label: 'hand-written helper: AsyncLocalStorage + commit/rollback, no retry',
        run: () => handWritten((tx) => tx.handle.set(`k${i++ % 1000}`, i)),
      },
      {
        label: 'txkit ctx.begin() + commit()',
        run: async () => {
          const tx = await ctx.begin();
          await tx.handle.set(`k${i++ % 1000}`, i);
          await tx.commit();
        },
      },
      {
        label: 'txkit withTransaction',
        run: () => ctx.withTransaction((tx) => tx.handle.set(`k${i++ % 1000}`, i)),
      },
    ],
    { rounds: ROUNDS, opsPerRound: OPS_PER_ROUND, warmupOps: 20_000 },
  );
  await ctx.close();
  const [raw, floor, manual, wrapped] = results as [(typeof results)[0], (typeof results)[0], (typeof results)[0], (typeof results)[0]];
  const us = (ns: number[]): number[] => ns.map((n) => n / 1000);
  const overhead = differenceInterval(us(wrapped.roundsNs), us(raw.roundsNs));
  const cpuOverhead = differenceInterval(us(wrapped.roundsCpuNs), us(raw.roundsCpuNs));
  const floorOverhead = differenceInterval(us(floor.roundsNs), us(raw.roundsNs));
  const overFloor = differenceInterval(us(wrapped.roundsNs), us(floor.roundsNs));
  const judged = verdict(overhead, { atMost: GOAL_US });
  return {
    name: 'core',
    title: 'Core overhead per transaction (memory backend)',
    command: 'npm run bench -- core',
    summary:
      `withTransaction adds **${fmtInterval(overhead, 2)} µs** per transaction over the memory driver's own begin/set/commit ` +
      `(95% bootstrap interval over paired rounds; CPU time ${fmtInterval(cpuOverhead, 2)} µs); goal: under ${GOAL_US} µs, ` +
      `**${judged}** (met only when the whole interval is under it). Medians of ${ROUNDS} interleaved rounds of ` +
      `${OPS_PER_ROUND.toLocaleString('en')} transactions, one key written each. The floor of any helper that gives an ambient ` +
      `transaction (a hand-written one: AsyncLocalStorage, commit or roll back, no retry, no checks) adds ` +
      `${fmtInterval(floorOverhead, 2)} µs; txkit's withTransaction adds ${fmtInterval(overFloor, 2)} µs over that helper ` +
      '(the retry loop, state machine, pending-work check, hooks, timeouts and propagation).',
    table: {
      headers: ['variant', 'µs per transaction (median)', 'CPU µs per transaction', 'ratio to driver [95% CI]', 'overhead µs [95% CI]'],
      rows: [raw, floor, manual, wrapped].map((r) => [
        r.label,
        fmt(r.medianNs / 1000),
        fmt(r.cpuNs / 1000),
        r === raw ? '1 (baseline)' : fmtInterval(ratioInterval(r.roundsNs, raw.roundsNs)),
        r === raw ? '' : fmtInterval(differenceInterval(us(r.roundsNs), us(raw.roundsNs)), 2),
      ]),
    },
    goals: [
      benchGoal(
        { measure: 'withTransaction over the memory driver, µs per transaction', figure: fmtInterval(overhead, 2), goal: `< ${GOAL_US}`, verdict: judged },
        () => `CPU ${fmtInterval(cpuOverhead, 2)} µs; a hand-written ambient-transaction helper alone adds ${fmtInterval(floorOverhead, 2)} µs`,
      ),
    ],
    chart: {
      title: 'Core: time per transaction relative to the memory driver (lower is better)',
      reference: { value: 1, label: 'memory driver begin/set/commit = 1' },
      groups: [{ label: 'µs per transaction / memory driver (native)', bars: [raw, floor, manual, wrapped].map((r) => ({ label: r.label, value: Number(fmt(r.medianNs / raw.medianNs)) })) }],
    },
  };
}
