import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import type { PerformanceEntry } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderBarChart } from './chart.js';
import type { ChartSpec } from './chart.js';
import { renderPage } from './page.js';
import type { BenchGoal, RecordedResult } from './page.js';

export type { ChartSpec } from './chart.js';
export type { BenchGoal } from './page.js';

export interface BenchResult {
  /** The bench's file name without `.bench.ts`; also its section id in docs/benchmarks.md. */
  name: string;
  title: string;
  /** The command that produced these figures. */
  command: string;
  /** Markdown: what was measured and how to read it. */
  summary: string;
  table: { headers: string[]; rows: (string | number)[][] };
  /** Ratios against the native API or the anchors named, drawn as docs/benchmarks/<name>.svg. */
  chart: ChartSpec;
  /** The bench's goals with this run's verdicts, for the page's goal table. */
  goals?: BenchGoal[];
}

/**
 * A goal row for the page. The reason is asked for only when the goal is not met (it may read figures that only a
 * miss has), and kept only then.
 */
export function benchGoal(goal: Omit<BenchGoal, 'reason'>, reason?: () => string | undefined): BenchGoal {
  const why = goal.verdict === 'met' ? undefined : reason?.();
  return why === undefined ? goal : { ...goal, reason: why };
}

/** One way of doing the measured operation: run here, or timed by another process (`round`). */
export type Variant =
  | {
      label: string;
      /** One operation; awaited. */
      run: () => Promise<unknown>;
    }
  | {
      label: string;
      /** `ops` operations in another process (e.g. a Java client), which reports its own wall and CPU time for them. */
      round: (ops: number) => Promise<{ wallNs: number; cpuNs: number }>;
    };

export interface InterleavedResult {
  label: string;
  /** Median nanoseconds per operation over the rounds. */
  medianNs: number;
  /** Every round's nanoseconds per operation, for spread and confidence intervals (round i of every variant ran side by side). */
  roundsNs: number[];
  /** Median CPU nanoseconds (user + system, the whole process that ran it) per operation over the rounds. */
  cpuNs: number;
  /** Every round's CPU nanoseconds per operation. */
  roundsCpuNs: number[];
  /** How many operations of this variant were timed (the warm-up's are not). */
  timedOps: number;
  /** With `alternate`: every round's share of the garbage-collection pauses, in nanoseconds per operation (part of roundsNs). */
  roundsPauseNs?: number[];
  /** With `alternate`: every round's median bytes allocated per operation. */
  roundsAllocatedBytes?: number[];
}

/**
 * `TXKIT_BENCH_SMOKE=1`: every bench runs at a tiny size, only to prove it
 * still runs (the test suite does this); its figures mean nothing and are
 * not recorded.
 */
export const SMOKE = process.env.TXKIT_BENCH_SMOKE === '1';

/** Where each package entry the benches load lives in the sources. */
const SOURCES = {
  memory: '../src/adapters/memory/index.js',
  sql: '../src/adapters/sql/index.js',
  kafka: '../src/adapters/kafka/index.js',
  pulsar: '../src/adapters/pulsar/index.js',
  outbox: '../src/outbox/index.js',
} as const;

/**
 * A package entry as users load it: the build (`dist/<entry>.js`; `npm run
 * bench` builds first). A smoke run, whose figures are not used, loads the
 * sources, so it needs no build.
 */
export async function loadEntry<T>(entry: keyof typeof SOURCES): Promise<T> {
  return (await import(SMOKE ? SOURCES[entry] : `../dist/${entry}.js`)) as T;
}

/** `full`, or `smoke` in a smoke run. */
export function sized<T>(full: T, smoke: T): T {
  return SMOKE ? smoke : full;
}

/** How interleaved() runs the variants of a round. */
export interface InterleavedOptions {
  rounds?: number;
  opsPerRound?: number;
  warmupOps?: number;
  /**
   * Take turns operation by operation instead of round by round (see
   * alternatingRounds): for operations of a millisecond or so on a shared
   * server, where a block of one variant meets the machine's hiccups that
   * another block does not. Only for variants that run here (`run`).
   */
  alternate?: boolean;
}

/**
 * Runs the variants round after round in orders that take turns (see
 * roundOrder), so drift in the machine's speed hits all of them alike;
 * reports the median per variant, wall time and the process's CPU time.
 */
export async function interleaved(variants: Variant[], options: InterleavedOptions = {}): Promise<InterleavedResult[]> {
  const { rounds = 15, opsPerRound = 2_000, warmupOps = 2_000 } = SMOKE ? { rounds: 2, opsPerRound: 2, warmupOps: 1 } : options;
  const timedElsewhere = variants.find((v) => 'round' in v);
  if (options.alternate === true && timedElsewhere !== undefined) {
    throw new RangeError(`interleaved({ alternate: true }) times each operation here; '${timedElsewhere.label}' is timed in another process`);
  }
  for (const v of variants) {
    if ('round' in v) await v.round(warmupOps);
    else for (let i = 0; i < warmupOps; i++) await v.run();
  }
  if (options.alternate === true) return alternatingRounds(variants, rounds, opsPerRound);
  const samples = variants.map(() => [] as number[]);
  const cpuSamples = variants.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    for (const i of roundOrder(r, variants.length)) {
      const v = variants[i] as Variant;
      if ('round' in v) {
        const { wallNs, cpuNs } = await v.round(opsPerRound);
        (samples[i] as number[]).push(wallNs / opsPerRound);
        (cpuSamples[i] as number[]).push(cpuNs / opsPerRound);
        continue;
      }
      const cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      for (let k = 0; k < opsPerRound; k++) await v.run();
      const ns = Number(process.hrtime.bigint() - t0) / opsPerRound;
      const cpu = process.cpuUsage(cpu0);
      (samples[i] as number[]).push(ns);
      (cpuSamples[i] as number[]).push(((cpu.user + cpu.system) * 1_000) / opsPerRound);
    }
  }
  return variants.map((v, i) => resultOf(v.label, samples[i] as number[], cpuSamples[i] as number[], rounds * opsPerRound));
}

function resultOf(label: string, roundsNs: number[], roundsCpuNs: number[], timedOps: number): InterleavedResult {
  return { label, medianNs: median(roundsNs), roundsNs, cpuNs: median(roundsCpuNs), roundsCpuNs, timedOps };
}

/** The share of a round's operations of one variant that its figure keeps: the slowest tenth is left out (see alternatingRounds). */
export const KEPT_SHARE = 0.9;

/** How many of a round's `ops` operations of one variant its figure keeps (at least one). */
export function keptOf(ops: number): number {
  return Math.max(1, Math.round(ops * KEPT_SHARE));
}

/**
 * Rounds in which the variants take turns operation by operation, in an
 * order where each variant follows every variant equally often (pairOrder:
 * what one leaves behind, a cache it filled or garbage, lands on all of them
 * alike), each operation timed on its own until what it left to run after it
 * resolved has run. A round is opsPerRound operations per variant (made a
 * multiple of the number of variants); its figure per variant has two parts:
 *
 * - its operations' mean time without garbage-collection pauses, the slowest
 *   tenth left out (a hiccup of the server or the machine lands on one
 *   operation of one variant);
 * - its share of the pauses: the bytes its operations allocate (the heap's
 *   growth over an operation with no pause in it; their median in the round)
 *   times the whole run's pause per allocated byte. Which operation a pause
 *   falls in is chance (V8 collects when some allocation finds the young
 *   generation full, a few times a second), so pauses counted where they fell
 *   would add that chance to every round; what each variant allocates does
 *   not vary.
 *
 * Pauses are read from the `gc` performance entries and given to the
 * operation during which they started, or after which (in the harness's own
 * readings) they started: that operation's heap growth is then left out.
 */
async function alternatingRounds(variants: Variant[], rounds: number, asked: number): Promise<InterleavedResult[]> {
  const runs = variants.map((v) => ('run' in v ? () => v.run() : () => Promise.resolve()));
  const n = runs.length;
  // Whole repeats of the order in every round, so each variant runs as often as the others in it.
  const opsPerRound = Math.ceil(asked / n) * n;
  const total = rounds * opsPerRound * n;
  const starts = new Float64Array(total);
  const ends = new Float64Array(total);
  const cpus = new Float64Array(total);
  const grown = new Float64Array(total);
  const pauses = new Float64Array(total);
  /** A pause started during the operation or in the harness's own work after it, before the next one started. */
  const disturbed = new Uint8Array(total);
  const order = pairOrder(n);
  const gcs: { startTime: number; duration: number }[] = [];
  const note = (entries: readonly PerformanceEntry[]): void => {
    for (const e of entries) gcs.push({ startTime: e.startTime, duration: e.duration });
  };
  const observer = new PerformanceObserver((list) => note(list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  try {
    for (let op = 0; op < total; op++) {
      const i = order[op % order.length] as number;
      const heap0 = v8.getHeapStatistics().used_heap_size;
      const cpu0 = process.cpuUsage();
      starts[op] = performance.now();
      await (runs[i] as () => Promise<unknown>)();
      // What the operation left to run after it resolved (promise callbacks, immediates) is its own cost too.
      await new Promise(setImmediate);
      ends[op] = performance.now();
      const cpu = process.cpuUsage(cpu0);
      grown[op] = v8.getHeapStatistics().used_heap_size - heap0;
      cpus[op] = (cpu.user + cpu.system) * 1_000;
    }
    // The observer is told of the last pauses on a later turn of the event loop.
    await new Promise(setImmediate);
    note(observer.takeRecords());
  } finally {
    observer.disconnect();
  }
  let pausedMs = 0;
  for (const gc of gcs) {
    const op = lastAtOrBefore(starts, gc.startTime);
    if (op < 0) continue;
    // Every pause of the run counts toward the pause per byte; one inside an operation's window is taken out of its time.
    pausedMs += gc.duration;
    disturbed[op] = 1;
    if (gc.startTime < (ends[op] as number)) pauses[op] = (pauses[op] as number) + gc.duration;
  }
  const perRound = opsPerRound * n;
  const mutatorMs: number[][] = [];
  const allocated: number[][] = [];
  const cpuNs: number[][] = [];
  for (let r = 0; r < rounds; r++) {
    const times = runs.map(() => [] as number[]);
    const bytes = runs.map(() => [] as number[]);
    const cpu = new Float64Array(n);
    for (let at = r * perRound; at < (r + 1) * perRound; at++) {
      const i = order[at % order.length] as number;
      (times[i] as number[]).push((ends[at] as number) - (starts[at] as number) - (pauses[at] as number));
      // A pause in an operation's heap readings freed memory: its heap growth says nothing of what it allocated.
      if (disturbed[at] === 0) (bytes[i] as number[]).push(grown[at] as number);
      cpu[i] = (cpu[i] as number) + (cpus[at] as number);
    }
    // Leaves out the slowest tenth of each variant's operations in the round.
    mutatorMs.push(times.map((t) => mean(t.sort((x, y) => x - y).slice(0, keptOf(t.length)))));
    allocated.push(bytes.map((b) => (b.length === 0 ? 0 : Math.max(0, median(b)))));
    cpuNs.push(Array.from(cpu, (c, i) => c / Math.max(1, (times[i] as number[]).length)));
  }
  let allocatedBytes = 0;
  for (const round of allocated) for (const b of round) allocatedBytes += b * opsPerRound;
  const pauseMsPerByte = allocatedBytes > 0 ? pausedMs / allocatedBytes : 0;
  return variants.map((v, i) => {
    const pauseNs = allocated.map((round) => (round[i] as number) * pauseMsPerByte * 1e6);
    // performance.now() is in milliseconds.
    const roundsNs = mutatorMs.map((round, r) => (round[i] as number) * 1e6 + (pauseNs[r] as number));
    return {
      ...resultOf(v.label, roundsNs, cpuNs.map((round) => round[i] as number), rounds * opsPerRound),
      roundsPauseNs: pauseNs,
      roundsAllocatedBytes: allocated.map((round) => round[i] as number),
    };
  });
}

function mean(xs: readonly number[]): number {
  let sum = 0;
  for (const x of xs) sum += x;
  return xs.length === 0 ? 0 : sum / xs.length;
}

/**
 * An order of `n` variants, repeated over a run, in which each variant runs
 * n times and follows every variant (itself included) exactly once: a de
 * Bruijn sequence of order 2 (for 3 variants, 0 0 1 0 2 1 1 2 2, read round
 * the end back to the start). Taking turns in a fixed rotation does not do
 * this: in roundOrder's turns, one variant follows a given other twice as
 * often as the third does.
 */
export function pairOrder(n: number): number[] {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`pairOrder needs a whole number of variants, got ${n}`);
  const order: number[] = [];
  const a = new Array<number>(3).fill(0);
  const visit = (t: number, p: number): void => {
    if (t > 2) {
      if (2 % p === 0) for (let j = 1; j <= p; j++) order.push(a[j] as number);
      return;
    }
    a[t] = a[t - p] as number;
    visit(t + 1, p);
    for (let j = (a[t - p] as number) + 1; j < n; j++) {
      a[t] = j;
      visit(t + 1, t);
    }
  };
  visit(1, 1);
  return order;
}

/** The index of the last of the ascending `xs` at or before `x`, or -1. */
function lastAtOrBefore(xs: Float64Array, x: number): number {
  let lo = 0;
  let hi = xs.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if ((xs[mid] as number) <= x) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/**
 * The order of round `r` of `n` variants: a rotation by ⌊r/2⌋, reversed in
 * odd rounds: over 2n rounds each variant runs twice in each place, and after
 * each other variant as often as before it (for 3 variants, all 6 orders).
 * (With only a reversal, a third variant would always run in the middle: a
 * place of its own, with a cost of its own on a busy machine.)
 */
export function roundOrder(r: number, n: number): number[] {
  const shift = Math.floor(r / 2) % n;
  const order = Array.from({ length: n }, (_, i) => (i + shift) % n);
  return r % 2 === 0 ? order : order.reverse();
}

/** A statistic of two variants' rounds (a ratio or a difference of medians) with its bootstrap confidence interval. */
export interface Interval {
  /** The statistic over all rounds, e.g. median(mine) / median(base). */
  value: number;
  low: number;
  high: number;
  /** E.g. 0.95. */
  confidence: number;
}

export interface IntervalOptions {
  /** @default 0.95 */
  confidence?: number;
  /** @default 4000 */
  resamples?: number;
  /** @default 1 */
  seed?: number;
}

/**
 * `stat(mine, base)` over the rounds, with a percentile bootstrap confidence
 * interval: the rounds are resampled with replacement as pairs (round i of
 * both ran side by side, so drift between rounds stays out of the
 * statistic), `resamples` times, with a fixed seed so a rerun on the same
 * figures gives the same interval.
 */
export function pairedInterval(
  mine: readonly number[],
  base: readonly number[],
  stat: (mine: number[], base: number[]) => number,
  options: IntervalOptions = {},
): Interval {
  if (mine.length === 0 || mine.length !== base.length) {
    throw new RangeError(`a paired interval needs the same non-zero number of rounds on both sides, got ${mine.length} and ${base.length}`);
  }
  const n = mine.length;
  const a: number[] = new Array<number>(n);
  const b: number[] = new Array<number>(n);
  return bootstrap(stat([...mine], [...base]), options, (random) => {
    for (let k = 0; k < n; k++) {
      const pick = Math.floor(random() * n);
      a[k] = mine[pick] as number;
      b[k] = base[pick] as number;
    }
    return stat(a, b);
  });
}

/**
 * `stat(mine) / stat(base)` for two samples measured apart rather than in
 * paired rounds (the latencies of two phases of a run), with a percentile
 * bootstrap confidence interval: each side is resampled with replacement on
 * its own, `resamples` times, with a fixed seed.
 */
export function unpairedRatioInterval(
  mine: readonly number[],
  base: readonly number[],
  stat: (sample: number[]) => number,
  options: IntervalOptions = {},
): Interval {
  if (mine.length === 0 || base.length === 0) throw new RangeError(`an interval needs samples on both sides, got ${mine.length} and ${base.length}`);
  const resample = (xs: readonly number[], random: () => number): number[] => xs.map(() => xs[Math.floor(random() * xs.length)] as number);
  return bootstrap(stat([...mine]) / stat([...base]), options, (random) => stat(resample(mine, random)) / stat(resample(base, random)));
}

/** The percentile bootstrap interval around `value` of the statistic `resampled` computes from one resample. */
function bootstrap(value: number, { confidence = 0.95, resamples = 4_000, seed = 1 }: IntervalOptions, resampled: (random: () => number) => number): Interval {
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`confidence must be between 0 and 1, got ${confidence}`);
  const random = mulberry32(seed);
  const stats: number[] = [];
  for (let r = 0; r < resamples; r++) stats.push(resampled(random));
  stats.sort((x, y) => x - y);
  const tail = (1 - confidence) / 2;
  const at = (q: number): number => stats[Math.min(stats.length - 1, Math.max(0, Math.floor(q * stats.length)))] as number;
  return { value, low: at(tail), high: at(1 - tail), confidence };
}

/** median(mine) / median(base), per operation, with its confidence interval (see pairedInterval). */
export function ratioInterval(mine: readonly number[], base: readonly number[], options?: IntervalOptions): Interval {
  return pairedInterval(mine, base, (a, b) => median(a) / median(b), options);
}

/** median(mine) - median(base), per operation, with its confidence interval (see pairedInterval). */
export function differenceInterval(mine: readonly number[], base: readonly number[], options?: IntervalOptions): Interval {
  return pairedInterval(mine, base, (a, b) => median(a) - median(b), options);
}

/**
 * Whether a statistic meets a goal, judged by its interval: `met` only when the
 * whole interval is on the goal's side, `missed` when the whole interval is
 * past it, else `undecided` (the noise is larger than the margin).
 */
export function verdict(interval: Interval, goal: { atMost: number } | { atLeast: number }): 'met' | 'missed' | 'undecided' {
  if ('atMost' in goal) return interval.high <= goal.atMost ? 'met' : interval.low > goal.atMost ? 'missed' : 'undecided';
  return interval.low >= goal.atLeast ? 'met' : interval.high < goal.atLeast ? 'missed' : 'undecided';
}

/**
 * The verdict of `interval` when the same run also measured a control: the
 * baseline against itself (a second variant running the same code). A
 * control whose interval leaves out `none` (no difference: 1 for a ratio, 0
 * for a difference) shows that this run tells apart two identical variants,
 * so it can tell nothing at its scale: the verdict is then `undecided`
 * whatever `interval` says.
 */
export function controlledVerdict(
  interval: Interval,
  control: Interval,
  goal: { atMost: number } | { atLeast: number },
  none = 1,
): 'met' | 'missed' | 'undecided' {
  return controlHolds(control, none) ? verdict(interval, goal) : 'undecided';
}

/** The control's interval holds `none` (1 for a ratio, 0 for a difference): the run did not tell the baseline from itself. */
function controlHolds(control: Interval, none: number): boolean {
  return control.low <= none && control.high >= none;
}

/** A control's interval for the page, saying so when it takes the verdict away (see controlledVerdict). */
export function fmtControl(control: Interval, digits = 3, none = 1): string {
  return `${fmtInterval(control, digits)}${controlHolds(control, none) ? '' : ' (the run tells apart two identical variants: no verdict)'}`;
}

/** `1.024 [1.011, 1.037]`. */
export function fmtInterval(i: Interval, digits = 3): string {
  return `${fmt(i.value, digits)} [${fmt(i.low, digits)}, ${fmt(i.high, digits)}]`;
}

/** A small seeded PRNG (mulberry32): resampling that is the same on every run. */
function mulberry32(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let x = Math.imul(t ^ (t >>> 15), 1 | t);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** One reading of the process's memory, taken while `progress` had some value (e.g. records relayed so far). */
export interface MemorySample {
  progress: number;
  heapUsed: number;
  rss: number;
}

/**
 * Reads process.memoryUsage() every `everyMs` while work runs; `stop()` ends
 * it and returns the readings. Bounded by the work it watches: one reading
 * per interval.
 */
export function sampleMemory(progress: () => number, everyMs = 100): { stop(): MemorySample[] } {
  const samples: MemorySample[] = [];
  const read = (): void => {
    const { heapUsed, rss } = process.memoryUsage();
    samples.push({ progress: progress(), heapUsed, rss });
  };
  read();
  const timer = setInterval(read, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      read();
      return samples;
    },
  };
}

/** Forces a full garbage collection (V8's gc exposed at run time), so heap figures are live objects only. */
export function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  gc();
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function fmt(n: number, digits = 2): string {
  return n.toFixed(digits);
}

const DOCS = fileURLToPath(new URL('../docs/', import.meta.url));

/**
 * Records this run's figures in docs/benchmarks/<name>.json, then rebuilds
 * the page and the charts. A smoke run passes a directory of its own.
 */
export function writeResult(result: BenchResult, dir: string = DOCS): void {
  const recorded: RecordedResult = { ...result, date: new Date().toISOString().slice(0, 10), node: process.version };
  const results = path.join(dir, 'benchmarks');
  mkdirSync(results, { recursive: true });
  writeFileSync(path.join(results, `${result.name}.json`), `${JSON.stringify(recorded, null, 2)}\n`);
  renderDocs(dir);
}

/** Reads every docs/benchmarks/*.json and writes docs/benchmarks/<name>.svg and docs/benchmarks.md from them. */
export function renderDocs(dir: string = DOCS): RecordedResult[] {
  const results = path.join(dir, 'benchmarks');
  const recorded = readdirSync(results)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const r = JSON.parse(readFileSync(path.join(results, f), 'utf8')) as RecordedResult;
      if (`${r.name}.json` !== f) throw new RangeError(`${path.join(results, f)} records '${r.name}': the file must be named after it`);
      return r;
    });
  for (const r of recorded) writeFileSync(path.join(results, `${r.name}.svg`), renderBarChart(r.chart));
  writeFileSync(path.join(dir, 'benchmarks.md'), renderPage(recorded));
  return recorded;
}
