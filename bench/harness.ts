import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderBarChart } from './chart.js';
import type { ChartSpec } from './chart.js';
import { renderPage } from './page.js';
import type { RecordedResult } from './page.js';

export type { ChartSpec } from './chart.js';

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
}

export interface Variant {
  label: string;
  /** One operation; awaited. */
  run: () => Promise<unknown>;
}

export interface InterleavedResult {
  label: string;
  /** Median nanoseconds per operation over the rounds. */
  medianNs: number;
  /** Every round's nanoseconds per operation, for spread. */
  roundsNs: number[];
}

/**
 * Runs the variants in alternating order, round after round, so drift in the
 * machine's speed hits all of them alike; reports the median per variant.
 */
export async function interleaved(
  variants: Variant[],
  { rounds = 15, opsPerRound = 2_000, warmupOps = 2_000 }: { rounds?: number; opsPerRound?: number; warmupOps?: number } = {},
): Promise<InterleavedResult[]> {
  for (const v of variants) for (let i = 0; i < warmupOps; i++) await v.run();
  const samples = variants.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? variants.map((_, i) => i) : variants.map((_, i) => variants.length - 1 - i);
    for (const i of order) {
      const v = variants[i] as Variant;
      const t0 = process.hrtime.bigint();
      for (let k = 0; k < opsPerRound; k++) await v.run();
      const ns = Number(process.hrtime.bigint() - t0) / opsPerRound;
      (samples[i] as number[]).push(ns);
    }
  }
  return variants.map((v, i) => ({ label: v.label, medianNs: median(samples[i] as number[]), roundsNs: samples[i] as number[] }));
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

/** Records this run's figures in docs/benchmarks/<name>.json, then rebuilds the page and the charts. */
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
