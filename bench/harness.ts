import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface BenchResult {
  /** The bench's file name without `.bench.ts`; also its section id in docs/benchmarks.md. */
  name: string;
  title: string;
  /** The command that produced these figures. */
  command: string;
  /** Markdown: what was measured and how to read it. */
  summary: string;
  table: { headers: string[]; rows: (string | number)[][] };
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

const DOC = fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url));
const HEADER = `# Benchmarks

Each section is rewritten by \`npm run bench -- <name>\`. Figures are ratios
against the native API measured in the same run, with the variants interleaved,
because absolute times on shared 2-core machines are not stable.
`;

/** Replaces this bench's section of docs/benchmarks.md (or appends it). */
export function writeResult(result: BenchResult): void {
  const start = `<!-- bench:${result.name}:start -->`;
  const end = `<!-- bench:${result.name}:end -->`;
  const table = [
    `| ${result.table.headers.join(' | ')} |`,
    `| ${result.table.headers.map(() => '---').join(' | ')} |`,
    ...result.table.rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
  const section = [
    start,
    `## ${result.title}`,
    '',
    `Command: \`${result.command}\` (run ${new Date().toISOString().slice(0, 10)}, Node ${process.version})`,
    '',
    result.summary,
    '',
    table,
    end,
  ].join('\n');
  let doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : HEADER;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  doc = i >= 0 && j > i ? doc.slice(0, i) + section + doc.slice(j + end.length) : `${doc.trimEnd()}\n\n${section}\n`;
  writeFileSync(DOC, doc);
}
