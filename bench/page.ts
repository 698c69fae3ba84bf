// Renders docs/benchmarks.md from the recorded results (docs/benchmarks/<name>.json):
// pure functions of the records, so the page can be rebuilt without rerunning anything.
import type { ChartSpec } from './chart.js';

export interface BenchTable {
  headers: string[];
  rows: (string | number)[][];
}

/** One goal of a bench, as the page's goal table shows it. */
export interface BenchGoal {
  /** What is measured, e.g. 'knex: txkit / knex.transaction, synchronous_commit=on'. */
  measure: string;
  /** The figure of this run, e.g. '1.038 [1.014, 1.063]'. */
  figure: string;
  /** The goal, e.g. '<= 1.03'. */
  goal: string;
  verdict: 'met' | 'missed' | 'undecided';
  /** Where a goal is not met: why, in the run's own numbers (what sets the floor, what txkit adds). */
  reason?: string;
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
  /** Its goals with the verdict of this run (absent in records of benches without goals). */
  goals?: BenchGoal[];
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

Where txkit's time goes: \`npm run bench:profile [-- memory|knex|knex-pg|pg]\` runs the same transactions
natively and through \`withTransaction\` under \`node --cpu-prof\` (both with txkit's AsyncLocalStorage enabled, as
in the benches) and prints each function's self time per transaction side by side, largest difference first
(profiles go to a temp dir and are removed). The memory target, 300,000 transactions on a quiet machine
(2026-12-06, Node 20.20.2): 1.95 µs per transaction with \`withTransaction\`, 1.23 µs for the driver alone. Of
the 0.72 µs between them, the retry loop's async frame is 0.15 µs; the clock read for the retry deadline 0.09;
garbage collection 0.09; commit 0.07; the hooks of the extra promises 0.06; propagation 0.04; the root
transaction 0.03; the state table 0.02. The same day's changes took 0.34 µs off the core bench's figure (1.11
to 0.77 µs): a context kept its open transactions in a Set, and adding a new object to a Set gives it an
identity hash (about 0.07 µs a transaction; now a linked list whose nodes the transactions keep); the scoped
callback, the back-off and, for the MongoDB driver, every unit's copy of the loop's host were closures made per
transaction. Earlier, the same profile had put 0.6 µs in opening the transaction (an async frame of its own, a
clock read, a pending-work counter and a signal listener made for every transaction), 0.2 µs in a random UUID
per transaction that nobody read, and an AsyncLocalStorage per context (a MongoDB context had two): each
enabled one adds its work to every promise of the process.

Where the SQL figures stand and why (2026-12-06): no row meets the goal of at most 1.03 in every run. Since
the last change to the bench each API runs in a Node process of its own (pg, then knex). Until then both ran
interleaved in one process, and that process was not one an application has: txkit's core is shared by its SQL
adapters, so with both in use every call site of the core sees two drivers, and knex's garbage is collected in
pg's rounds too. Measured with a script (12 rounds of 1,000 transactions, BEGIN, two SELECTs, COMMIT), pg
alone: txkit costs 8.8-10.4 µs more client CPU per transaction than raw pg; after 20,000 knex
transactions in the same process, 15.8-16.5 µs; with knex's variants interleaved in the rounds, 27.4-35.6 µs.
In the bench, pg's CPU overhead went from 37.9 / 20.4 µs (\`on\` / \`off\`, both APIs in one process, the run
just before) to 15.4 and 18.3 / 12.4 and 14.8 µs (a process per API, two runs), and the time ratios from pg 1.138 / 1.061 and knex 0.976 / 1.072 (\`on\` / \`off\`,
one process) to pg 1.019 and 1.078 / 1.022 and 1.037, knex 1.043 and 1.038 / 1.028 and 1.045 (a process per API,
two runs): the section below is the second run. The \`on\` rows move by several percent between runs (the WAL
flush); the \`off\` rows are at 1.022-1.045. At this machine's pace the goal's 3% is 13-16 µs of a pg transaction
(440-526 µs), about what txkit's client CPU adds to it (12.4-18.3 µs); txkit's own frames in the profiles below
come to 3-6 µs of that, the rest is the same drivers' functions taking longer. Earlier, the order of rounds (each commit mode now has rounds of
its own) and loading the sources through tsx instead of the built package were ruled out or fixed. CPU profiles
(\`npm run bench:profile -- pg\`, \`-- knex-pg\`: 10,000 transactions each; \`-- knex\`: 20,000), their non-idle
time: pg 71.3 µs native, 85.7 µs through txkit (+14.4; the retry loop 1.2, begin 0.7, the extra promises' hooks
0.9, the socket writes of the same statements taking longer in that run); knex on Postgres 233.5 µs and 250.9 µs
(+17.4; knex making its transaction object, \`redefineProperties\`, 6.1 more, txkit's \`openScope\` 2.1 and retry
loop 1.1, knex's id per query 1.4, pg's query config 1.1); knex on in-memory SQLite, no network, 107.3 and 112.9
µs in all (+5.6, 5%). A pg profile taken again later gave 121.6 and 129.6 µs (+8.0). Two profiles of one target
taken in a row on this machine differ by several µs in the drivers' own functions, so the per-function figures
beyond txkit's own frames are indications, not measurements; the interleaved bench is the measurement.
The run of 2026-12-07 (the section below) measured txkit's client CPU over raw pg at 43.8 [33.0, 56.1] µs with
\`synchronous_commit=on\` and 18.7 [8.5, 28.2] µs with \`off\`, in one process running the same code: the commit
mode changes nothing txkit does, so that gap is this machine's noise in the client's CPU, wider than the goal's margin.

Where the Pulsar figures stand (2026-12-06): with 25 rounds instead of 15 the one-message, one-in-flight
non-transactional row is decided, and missed: 0.912 [0.852, 0.957] of the Java client (p50 0.30 ms against
0.25 ms). Each operation there is one round trip to the broker, so the client's own time per send is what
differs: 20,000 single sends of txkit's client, measured alone against the same local broker, took 62-79 µs
of process CPU each (three runs), of which a CPU profile puts 15 µs in the socket write and 10-15 µs in
txkit's JavaScript (encoding the frame, the receipt, the promise); the rest is outside the JavaScript
profile (the socket's reads and the runtime). Not reduced this far. Rows with more messages or more operations in flight, where that cost
is shared, are met or undecided (the 8-in-flight rows moved more between rounds in this run than in the 15-round
one). In the run of 2026-12-07 (the section below) the same row was undecided, 0.953 [0.865, 1.112], its per-round
ratios spread from 0.47 to 3.31.
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
  const ordered = orderResults(results);
  return `${PAGE_HEADER}\n${renderGoals(ordered)}${ordered.map(renderSection).join('\n\n')}\n`;
}

/**
 * Every goal of every recorded section in one table, each with its section's run date and, where it is not
 * met, the reason in that run's numbers; empty when no record has goals.
 */
export function renderGoals(results: readonly RecordedResult[]): string {
  const rows = results.flatMap((r) => (r.goals ?? []).map((g) => [`[${r.name}](#${anchorOf(r.title)}) (${r.date})`, g.measure, g.figure, g.goal, `**${g.verdict}**`, g.reason ?? '']));
  if (rows.length === 0) return '';
  const count = (v: BenchGoal['verdict']): number => results.reduce((n, r) => n + (r.goals ?? []).filter((g) => g.verdict === v).length, 0);
  return [
    '## Goals at a glance',
    '',
    `Every goal of the sections below, as their last runs judged it: ${count('met')} met, ${count('undecided')} undecided, ` +
      `${count('missed')} missed of ${rows.length}. Where one is not met, the last column says why, in that run's numbers.`,
    '',
    renderTable({ headers: ['section (run)', 'measure', 'figure', 'goal', 'verdict', 'why, where not met'], rows }),
    '',
    '',
  ].join('\n');
}

/** The id GitHub and npm give a heading: lower case, punctuation dropped, spaces as dashes. */
function anchorOf(title: string): string {
  return title
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}
