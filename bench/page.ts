// Renders docs/benchmarks.md from the recorded results (docs/benchmarks/<name>.json):
// pure functions of the records, so the page can be rebuilt without rerunning anything.
import type { ChartSpec } from './chart.js';

export interface BenchTable {
  headers: string[];
  rows: (string | number)[][];
}

/** A bench's result as recorded in docs/benchmarks/<name>.json. */
export interface RecordedResult {
  /** The bench's file name without `.bench.ts`; its section id, and the name of its JSON and SVG. */
  name: string;
  title: string;
  /** The command that produced these figures. */
  command: string;
  /** Markdown: what was measured and how to read it. */
  summary: string;
  table: BenchTable;
  /** Ratios against the native API or the anchors named, drawn as docs/benchmarks/<name>.svg. */
  chart: ChartSpec;
  /** Day of the run, YYYY-MM-DD. */
  date: string;
  /** Node version of the run, e.g. v20.20.2. */
  node: string;
}

export const PAGE_HEADER = `# Benchmarks

Each section is rewritten by \`npm run bench -- <name>\` (\`npm run bench\` runs them all). Figures are ratios
against the native API or a named anchor measured in the same run, with the variants interleaved where they
can be, because absolute times on shared 2-core machines are not stable. Each run records its figures in
\`docs/benchmarks/<name>.json\`; \`npm run bench -- --render\` rebuilds this page and the charts from them.

Where a section gives a ratio with an interval (\`1.024 [1.011, 1.037]\`), the interval is a 95% bootstrap over
the paired rounds (round i of every variant ran side by side), and a goal counts as **met** only when the whole
interval is inside it (**undecided** when the noise is larger than the margin). CPU figures are the process's
user + system time per operation. The test suite runs every bench at a tiny size (\`TXKIT_BENCH_SMOKE=1\`,
\`test/bench/bench-smoke.test.ts\`) so none stops working between full runs; those runs record nothing.

Where the core's time goes: \`npm run bench:profile\` runs the memory backend's own begin/set/commit and
\`withTransaction\` under \`node --cpu-prof\` and prints each function's self time per transaction side by side
(profiles go to a temp dir and are removed). A run of 500,000 transactions on a quiet machine (2026-12-06, Node
20.20.2): 2.23 µs per transaction with \`withTransaction\`, 0.86 µs for the driver alone. Of the 1.37 µs between
them, about 0.29 µs is AsyncLocalStorage's promise hooks, which Node 20 runs for every promise once any
AsyncLocalStorage is enabled (the core bench runs its baseline with them on too, so they are not in its figure;
txkit enables one for the whole package, however many contexts); the retry loop's async frame 0.22 µs; commit
0.11 µs; reading the clock for the retry deadline 0.09 µs; making the root transaction 0.05 µs; the state table
and the set of open transactions 0.06 µs; and the driver's own functions ran 0.2 µs slower inside the core's
frames than alone (memory \`commit\`, \`begin\`, \`versionOf\`), with 0.06 µs more garbage collection. Before the
changes of that day the same profile put 0.6 µs in opening the transaction (an async frame of its own, a clock
read, a pending-work counter and a signal listener made for every transaction), 0.2 µs in a random UUID per
transaction that nobody read, and an AsyncLocalStorage per context (a MongoDB context had two): each enabled one
adds its work to every promise of the process.
`;

/** Sections in this order first (the order they were added), then any other by name. */
export const SECTION_ORDER = ['core', 'memory', 'mongo', 'kafka', 'sql', 'pulsar', 'outbox', 'scale'];

/** A table cell: pipes would end the cell early, newlines the row. */
function cell(v: string | number): string {
  return String(v).replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

export function renderTable(table: BenchTable): string {
  for (const [i, row] of table.rows.entries()) {
    if (row.length > table.headers.length) {
      throw new RangeError(`table row ${i} has ${row.length} cells, more than the ${table.headers.length} headers`);
    }
  }
  return [
    `| ${table.headers.map(cell).join(' | ')} |`,
    `| ${table.headers.map(() => '---').join(' | ')} |`,
    ...table.rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

/** One section, between the markers `npm run bench` replaces; the chart is linked relative to docs/. */
export function renderSection(r: RecordedResult): string {
  return [
    `<!-- bench:${r.name}:start -->`,
    `## ${r.title}`,
    '',
    `Command: \`${r.command}\` (run ${r.date}, Node ${r.node})`,
    '',
    r.summary,
    '',
    renderTable(r.table),
    '',
    `![${r.chart.title.replace(/[[\]]/g, '')}](benchmarks/${r.name}.svg)`,
    `<!-- bench:${r.name}:end -->`,
  ].join('\n');
}

export function orderResults(results: readonly RecordedResult[]): RecordedResult[] {
  const rank = (name: string): number => {
    const i = SECTION_ORDER.indexOf(name);
    return i < 0 ? SECTION_ORDER.length : i;
  };
  return [...results].sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name));
}

/** The whole page: header, then every section in order. Throws on two results with one name. */
export function renderPage(results: readonly RecordedResult[]): string {
  const seen = new Set<string>();
  for (const r of results) {
    if (seen.has(r.name)) throw new RangeError(`two recorded results are named '${r.name}'`);
    seen.add(r.name);
  }
  return `${PAGE_HEADER}\n${orderResults(results).map(renderSection).join('\n\n')}\n`;
}
