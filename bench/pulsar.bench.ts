// `npm run bench -- pulsar`: what a Pulsar transaction costs a producer. The same client
// sends N messages per operation either with a plain producer (awaiting the N receipts)
// or in one transaction (NEW_TXN, ADD_PARTITION_TO_TXN, the N sends, END_TXN commit), on
// the local standalone broker that scripts/services/pulsar.mjs runs (started here if none runs).
import { startPulsar } from '../scripts/services/pulsar.mjs';
import type { PulsarProducer, PulsarTransactionContext } from '../src/adapters/pulsar/index.js';
import { benchGoal, fmt, fmtInterval, loadEntry, median, ratioInterval, sized, verdict } from './harness.js';
import type { BenchResult, Interval } from './harness.js';
import { startJavaRounds } from './java-rounds.js';
import type { JavaRounds } from './java-rounds.js';
type PulsarModule = typeof import('../src/adapters/pulsar/index.js');
// The built package, as users run it (the sources run through tsx carry its helpers on every closure).
const { PulsarClient, pulsarTransactions } = await loadEntry<PulsarModule>('pulsar');

const SIZES = [1, 10, 50] as const;
/** Operations in flight: one at a time (the latency chain), and 8 (what a busy service does). */
const CONCURRENCY = [1, 8] as const;
const ROUNDS = sized(25, 2);
/** Messages per variant per round: enough ops for stable percentiles, short enough for a 2-core box. */
const MESSAGES_PER_ROUND = sized(1_000, 4);
const PAYLOAD = 'x'.repeat(100);
/** The official Java client, the anchor. */
const PULSAR_JAVA_CLIENT = ['org.apache.pulsar:pulsar-client:4.0.7'];

interface Sample {
  /** Milliseconds per operation (N messages, durable; for transactions: committed). */
  latencies: number[];
  /** Messages per second, one figure per round. */
  throughput: number[];
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** `ops` operations, `concurrency` at a time; records each one's latency and the round's throughput. */
async function round(op: () => Promise<unknown>, ops: number, n: number, concurrency: number, into: Sample): Promise<void> {
  let started = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      // Bounded: the lanes together run exactly `ops` operations.
      while (started < ops) {
        started += 1;
        const s = performance.now();
        await op();
        into.latencies.push(performance.now() - s);
      }
    }),
  );
  into.throughput.push((ops * n) / ((performance.now() - t0) / 1000));
}

/** A round of the Java client: `ops` operations run in its JVM, which reports the wall time and each operation's latency. */
async function javaRound(java: JavaRounds, ops: number, n: number, into: Sample): Promise<void> {
  const [wall, ...latencies] = (await java.command(String(ops))).split(' ').map(Number);
  if (!Number.isFinite(wall) || latencies.length !== ops) throw new Error(`PulsarBenchProducer answered a round of ${ops} with ${latencies.length} latencies`);
  into.latencies.push(...latencies);
  into.throughput.push((ops * n) / ((wall as number) / 1e9));
}

/** The figures of one shape (messages per operation, operations in flight). */
interface Shape {
  n: number;
  concurrency: number;
  plain: Sample;
  transactional: Sample;
  javaPlain: Sample;
  javaTransactional: Sample;
}

export default async function pulsarBench(): Promise<BenchResult> {
  const broker = await startPulsar({ log: (line: string) => console.error(`[pulsar] ${line}`) });
  const client = new PulsarClient({ serviceUrl: broker.serviceUrl });
  const ctx: PulsarTransactionContext = pulsarTransactions({ client });
  const shapes: Shape[] = [];
  const javas: JavaRounds[] = [];
  try {
    for (const concurrency of CONCURRENCY) {
      for (const n of SIZES) {
        const topic = `persistent://public/default/txkit-bench-${n}-${concurrency}-${Date.now().toString(36)}`;
        const producer: PulsarProducer = await client.createProducer({ topic });
        const messages = Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: PAYLOAD }));
        const plain = (): Promise<unknown> => producer.sendAll(messages);
        const transactional = (): Promise<unknown> => ctx.withTransaction((tx) => tx.handle.send({ topic, messages }));
        const java = async (mode: 'plain' | 'transactional'): Promise<JavaRounds> => {
          const started = await startJavaRounds({ coords: PULSAR_JAVA_CLIENT, source: 'PulsarBenchProducer.java', args: [broker.serviceUrl, topic, mode, String(n), String(concurrency)] });
          javas.push(started);
          return started;
        };
        const javaPlain = await java('plain');
        const javaTransactional = await java('transactional');
        const ops = Math.max(sized(40, 2), Math.round(MESSAGES_PER_ROUND / n));
        // Warm-up: JIT on both sides, the topic's transaction buffer, the coordinator connection.
        const warm: Sample = { latencies: [], throughput: [] };
        const warmOps = Math.min(ops, 200);
        await round(plain, warmOps, n, concurrency, warm);
        await round(transactional, warmOps, n, concurrency, warm);
        await javaRound(javaPlain, warmOps, n, warm);
        await javaRound(javaTransactional, warmOps, n, warm);
        const shape: Shape = {
          n,
          concurrency,
          plain: { latencies: [], throughput: [] },
          transactional: { latencies: [], throughput: [] },
          javaPlain: { latencies: [], throughput: [] },
          javaTransactional: { latencies: [], throughput: [] },
        };
        const turns = [
          () => round(plain, ops, n, concurrency, shape.plain),
          () => round(transactional, ops, n, concurrency, shape.transactional),
          () => javaRound(javaPlain, ops, n, shape.javaPlain),
          () => javaRound(javaTransactional, ops, n, shape.javaTransactional),
        ];
        for (let r = 0; r < ROUNDS; r++) {
          // Alternating order, so drift in the machine's speed hits every variant alike.
          for (const turn of r % 2 === 0 ? turns : [...turns].reverse()) await turn();
        }
        await producer.close();
        for (const j of javas.splice(0)) await j.close();
        shapes.push(shape);
      }
    }
  } finally {
    for (const j of javas) await j.close().catch(() => undefined);
    await ctx.close();
    await client.close();
    await broker.stop();
  }
  return report(shapes);
}

function report(shapes: Shape[]): BenchResult {
  const p50p99 = (s: Sample): string => {
    const sorted = [...s.latencies].sort((x, y) => x - y);
    return `${fmt(percentile(sorted, 50))} / ${fmt(percentile(sorted, 99))}`;
  };
  // Throughput per round: txkit / Java (higher is better for txkit), and transactional / plain, with intervals.
  const vsJava = (s: Shape, mode: 'plain' | 'transactional'): Interval =>
    mode === 'plain' ? ratioInterval(s.plain.throughput, s.javaPlain.throughput) : ratioInterval(s.transactional.throughput, s.javaTransactional.throughput);
  const rows = shapes.map((s) => {
    const plainVsJava = vsJava(s, 'plain');
    const txVsJava = vsJava(s, 'transactional');
    return [
      s.n,
      s.concurrency,
      fmt(median(s.plain.throughput), 0),
      fmt(median(s.javaPlain.throughput), 0),
      `${fmtInterval(plainVsJava)} ${verdict(plainVsJava, { atLeast: 1 })}`,
      fmt(median(s.transactional.throughput), 0),
      fmt(median(s.javaTransactional.throughput), 0),
      `${fmtInterval(txVsJava)} ${verdict(txVsJava, { atLeast: 1 })}`,
      fmt(median(s.transactional.throughput) / median(s.plain.throughput)),
      fmt(median(s.javaTransactional.throughput) / median(s.javaPlain.throughput)),
      p50p99(s.plain),
      p50p99(s.javaPlain),
      p50p99(s.transactional),
      p50p99(s.javaTransactional),
    ];
  });
  const txVerdicts = shapes.map((s) => verdict(vsJava(s, 'transactional'), { atLeast: 1 }));
  const plainVerdicts = shapes.map((s) => verdict(vsJava(s, 'plain'), { atLeast: 1 }));
  const count = (vs: string[], v: string): number => vs.filter((x) => x === v).length;
  return {
    name: 'pulsar',
    title: 'Pulsar: txkit against the official Java client, transactional and not',
    command: 'npm run bench -- pulsar',
    summary:
      `txkit's Pulsar client and the official Java client (pulsar-client 4.0.7, a JVM driven round by round from this process so ` +
      `its rounds interleave with txkit's) send the same operations to the same broker: N messages of 100 bytes per operation, ` +
      `awaited until stored; transactional: in one transaction, until its commit returned (NEW_TXN, ADD_PARTITION_TO_TXN, ` +
      `the sends, END_TXN). Goal: txkit at least the Java client's throughput in every row, judged by the 95% bootstrap ` +
      `interval of the per-round ratio: transactional ${count(txVerdicts, 'met')} met, ${count(txVerdicts, 'undecided')} undecided, ` +
      `${count(txVerdicts, 'missed')} missed of ${shapes.length}; non-transactional ${count(plainVerdicts, 'met')} met, ` +
      `${count(plainVerdicts, 'undecided')} undecided, ${count(plainVerdicts, 'missed')} missed. The transactional / ` +
      `non-transactional ratio of each client is beside it (the Java client's is the floor the broker sets, not a goal). ` +
      `Throughput is the median of ${ROUNDS} interleaved rounds of ~${MESSAGES_PER_ROUND} messages per variant; latencies are ` +
      `per operation over all rounds. Local standalone broker (Pulsar 4.0.7 from Maven Central, one in-process bookie, journal ` +
      'without fsync, 640 MB heap) on the same 2-core machine as the clients.',
    table: {
      headers: [
        'messages per op',
        'ops in flight',
        'txkit msg/s',
        'Java msg/s',
        'txkit / Java [95% CI] (goal >= 1)',
        'txkit txn msg/s',
        'Java txn msg/s',
        'txkit / Java, txn [95% CI] (goal >= 1)',
        'txkit txn / non-txn',
        'Java txn / non-txn',
        'txkit p50 / p99 ms',
        'Java p50 / p99 ms',
        'txkit txn p50 / p99 ms',
        'Java txn p50 / p99 ms',
      ],
      rows,
    },
    goals: shapes.flatMap((s) =>
      (['plain', 'transactional'] as const).map((mode) => {
        const ratio = vsJava(s, mode);
        const judged = verdict(ratio, { atLeast: 1 });
        const [mine, java] = mode === 'plain' ? [s.plain, s.javaPlain] : [s.transactional, s.javaTransactional];
        const perRound = mine.throughput.map((t, i) => t / (java.throughput[i] as number));
        return benchGoal(
          {
            measure: `${mode === 'plain' ? 'non-transactional' : 'transactional'} throughput / Java, ${s.n} message(s) per op, ${s.concurrency} in flight`,
            figure: fmtInterval(ratio),
            goal: '>= 1',
            verdict: judged,
          },
          () =>
            `per op p50 / p99 ${p50p99(mine)} ms, Java ${p50p99(java)} ms; per-round ratios ` +
            `${fmt(Math.min(...perRound))}–${fmt(Math.max(...perRound))}` +
            (judged === 'missed' ? '' : ' (the noise is wider than the margin)'),
        );
      }),
    ),
    chart: {
      title: 'Pulsar: txkit throughput / the Java client (higher is better)',
      reference: { value: 1, label: 'official Java client = 1' },
      groups: [
        { label: 'non-transactional msg/s, txkit / Java (goal >= 1)', bars: shapes.map((s) => ({ label: `${s.n} per op, ${s.concurrency} in flight`, value: Number(fmt(vsJava(s, 'plain').value, 3)) })) },
        { label: 'transactional msg/s, txkit / Java (goal >= 1)', bars: shapes.map((s) => ({ label: `${s.n} per transaction, ${s.concurrency} in flight`, value: Number(fmt(vsJava(s, 'transactional').value, 3)) })) },
      ],
    },
  };
}
