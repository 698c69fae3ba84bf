// `npm run bench -- core`: what the core (state machine, ambient context, hooks,
// retry loop) adds per transaction over the memory backend's own begin/commit.
// The built package, as users run it (the sources run through tsx carry its helpers on
// every closure); `npm run bench` builds it first. Typed from the sources it is built from.
type MemoryModule = typeof import('../src/adapters/memory/index.js');
const built = '../dist/memory.js';
const { MemoryDriver, MemoryStore, memoryTransactions } = (await import(built)) as MemoryModule;
import { fmt, interleaved } from './harness.js';
import type { BenchResult } from './harness.js';

export default async function coreBench(): Promise<BenchResult> {
  const store = new MemoryStore();
  const driver = new MemoryDriver(store);
  const ctx = memoryTransactions({ store });
  let i = 0;

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
    { rounds: 21, opsPerRound: 5_000, warmupOps: 20_000 },
  );
  await ctx.close();
  const [raw, manual, wrapped] = results as [(typeof results)[0], (typeof results)[0], (typeof results)[0]];
  const overheadUs = (wrapped.medianNs - raw.medianNs) / 1000;
  return {
    name: 'core',
    title: 'Core overhead per transaction (memory backend)',
    command: 'npm run bench -- core',
    summary:
      `withTransaction adds **${fmt(overheadUs)} µs** per transaction over the memory driver's own begin/set/commit ` +
      `(ratio ${fmt(wrapped.medianNs / raw.medianNs)}; goal: under 2 µs). Medians of 21 interleaved rounds of 5,000 transactions, one key written each.`,
    table: {
      headers: ['variant', 'µs per transaction (median)', 'ratio to driver', 'overhead µs'],
      rows: [raw, manual, wrapped].map((r) => [
        r.label,
        fmt(r.medianNs / 1000),
        fmt(r.medianNs / raw.medianNs),
        fmt((r.medianNs - raw.medianNs) / 1000),
      ]),
    },
    chart: {
      title: 'Core: time per transaction relative to the memory driver (lower is better)',
      reference: { value: 1, label: 'memory driver begin/set/commit = 1' },
      groups: [{ label: 'µs per transaction / memory driver (native)', bars: [raw, manual, wrapped].map((r) => ({ label: r.label, value: Number(fmt(r.medianNs / raw.medianNs)) })) }],
    },
  };
}
