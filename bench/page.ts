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
enabled one adds its work to every promise of the process. On 2026-12-07 (evening) the retry loop began to
await a plain first commit's native promise itself instead of through \`commit()\`'s own (a promise and a turn of
the microtask queue fewer per unit), and what only a failure needs moved out of the loop's function: the core
bench's figure went from 0.94 [0.90, 1.00] to 0.36 [0.30, 0.40] and 0.38 [0.33, 0.66] µs in two runs, the
MongoDB stub row from 1.60 to 1.15 µs. Part of that is the machine: the hand-written helper's figure went from 0.13
to 0.07 and -0.04 µs in the same runs; the change alone, measured against the build before it in alternating
units, took 0.26 [0.24, 0.32] µs and 512 bytes off a unit.

Where the SQL figures stand and why (2026-12-07, later): a mode's variants share one connection (two connections
are not alike on this machine: the same native pg code on two pools of one connection each ran at 0.81 [0.77,
0.84] with \`synchronous_commit=on\` and 0.56 [0.52, 0.58] with \`off\` of each other), and the native code runs a
second time as a control. Until this run the variants took turns in blocks of 50 transactions, and 300 rounds left
intervals 3-7% wide: every row undecided in three runs. They now take turns transaction by transaction, in an order
where each follows every one equally often (in the rotating turns the control followed txkit twice as often as the
native variant did, and came out 1-3% off it in scripts), each transaction timed until what it left to run has
run, garbage-collection pauses shared out by the bytes each variant allocates. Five runs so made, the section
below being the last (after the core's change of the evening, below): knex \`on\` 1.038 [1.029, 1.046], 1.037 [1.029,
1.041], 1.050 [1.045, 1.058], 1.040 [1.035, 1.048] and 1.043 [1.039, 1.048], \`off\` 1.040 [1.035, 1.054], 1.057
[1.041, 1.064], 1.055 [1.042, 1.060], 1.040 [1.034, 1.047] and 1.059 [1.054, 1.063]; pg \`on\` 1.043 [1.027, 1.056],
1.025 [1.017, 1.034], 1.038 [1.031, 1.047], 1.029 [1.022, 1.040] and 1.017 [1.013, 1.033], \`off\` 1.031 [1.022,
1.042], 1.022 [1.016, 1.031], 1.041 [1.031, 1.048], 1.024 [1.016, 1.036] and 1.018 [1.015, 1.022]; the controls
between 0.993 and 1.005, each holding 1. The knex rows were missed in eight runs of ten, never met; the pg rows
missed in two of ten, met once (the fifth run's \`off\`), undecided in the rest. An interval is one run's: from run
to run the ratios moved by more (pg \`off\` 1.018 to 1.041), and they rose with the native times (pg \`off\`'s native
transaction took 509 µs in the second run, 638 in the third, 512 in the fourth and 360 in the fifth, where txkit
added 6.3 [5.2, 7.9] µs): txkit's cost grows when the machine is slower. The client CPU column of the knex rows
is the whole process's, V8's compiler and garbage-collection threads included, and its intervals are tens of µs
wide (the fifth run: 68.1 [18.3, 99.7] and 101.0 [54.7, 114.9] µs more); the time per transaction is the figure. Where its time goes, from the
phases of the second run: knex \`off\` +24.9 µs before the callback, +5.9 in it, +11.3 after it; pg \`off\` +5.9,
+3.3 and +3.2. A script that time-stamped txkit's own steps in knex transactions on this Postgres (\`off\`, medians
of 6,300 each) put the begin's +15.5 µs in four places: 5.4 µs from \`withTransaction\` to the driver's begin
(options, propagation, the retry loop's start), 3.2 µs more than knex from the begun transaction to the callback's
first line (3.9 against 0.7: the root transaction and its scope), 2.9 µs in the knex adapter after BEGIN (its scope
and handle guard), and 3.2 µs more than \`knex.transaction\` takes to get its connection and send BEGIN. The core's
part runs in under 1 µs a transaction in the core bench above, where nothing else runs between transactions; here
the server runs on the same two cores between every two of txkit's steps, which start on cold caches after each
round trip. That is what misses the knex rows and puts the pg rows on the line: txkit's own code per
transaction, not a floor set by the driver or the server. What a transaction allocates is mostly promises:
with AsyncLocalStorage enabled, each promise or \`await\` costs about 430 bytes on Node 20 (250 without; a script of
20,000 calls), and a knex transaction through txkit allocates 5.4 kB more than \`knex.transaction\`'s 92 kB, a pg one
3 kB more than the native 18.6 kB.

What the knex rows are made of (2026-12-07, evening; scripts outside the repository on the same Postgres,
\`synchronous_commit=off\`, one connection, the variants taking turns as in the section, 300 rounds of 52
transactions): the same knex calls made by hand as txkit makes them (its own pooled connection, knex's callback
returning nothing, an explicit \`trx.commit()\`, an AsyncLocalStorage around the callback) took 2.8 [1.0, 4.9] and
4.1 [2.5, 6.2] µs more than \`knex.transaction\` in two runs; with the begin and the commit each one async step,
as a driver's are, 8.0 [6.2, 9.9]; txkit's knex adapter without the core 13.8 [12.2, 16.0]; txkit 23.1 [21.6, 25.2],
these three in one run. So about 4 µs of the row are the driver contract's two async steps, 6 the adapter's own work
(the connection it keeps to bound the wait, the handle guard) and 9 the core, each uncertain by a few µs (below). Fewer steps were not faster on this
Postgres: a knex begin that hands the transaction over where knex calls back and a commit that settles with the
scope's end, each a turn of the microtask queue fewer, changed a transaction by -1.0 [-1.2, -0.8] µs on in-memory
SQLite and -1.8 [-6.5, 1.9] on MariaDB, but by +3.7 [2.7, 5.9] (the begin) and +1.7 [0.5, 2.9] µs (the commit) on
Postgres, and by +3.0 [0.8, 5.7] and +5.3 [2.9, 7.6] µs both together in two runs; they were not kept. At this
scale the Postgres figures answer to more than the work: a build that differed from the page's only by one check
of a global flag per transaction, in the knex adapter, was 3.2 to 5.8 µs slower in five runs (each interval
leaving out 0, whichever copy the process loaded first), where two copies of the same build had differed by -0.4
[-2.6, 1.8]. With that flag set to leave the handle guard out, it was 1.8 [-1.3, 3.9] and 3.3 [1.3, 5.1] µs slower
than the page's build: the guard costs about 2 µs of the row, and a change of a few µs to the knex path cannot be
told from where its code lands. The core's change of the evening (the retry loop awaits a plain first commit's native promise itself, a promise and a turn fewer than
through \`commit()\`, and what only a failed callback or commit needs went to functions of their own) took 0.26
[0.24, 0.32] µs and 512 bytes off a unit on the memory backend in a script of alternating units, and moved the
Postgres figures by +0.7 [-1.0, 2.0] µs (knex) and -0.1 [-1.0, 0.8] µs (pg), which noise cannot tell from none.

Where the MongoDB figure stands (2026-12-07): a unit on the stub session made 21 promises where the hand-written
calls make 10; each costs a program with an AsyncLocalStorage its hooks. The adapter's unit, commit and session
end now chain the driver's promises instead of wrapping each in an async function, and a unit's loop translates
its own error instead of a \`.catch\` on every call: 16 promises. Bench runs of the day: 2.33 and 2.11 µs
before, 1.96, 1.70 and 1.93 after, the hand-written calls taking 1.33-1.47 µs. The figure moves with what the
process has loaded: in a script of 21 rounds of 5,000 (before the change), importing the \`mongodb\` package
raised the hand-written calls from 0.81 to 1.01 µs and txkit's overhead from 1.60 to 1.92 µs, which importing
knex, kafkajs, bson or mongodb-connection-string-url did not (1.60-1.67 µs); the bench measures it in the process
of its scripted-server comparison, with the driver loaded, as a MongoDB user runs it. Later the same day, a
transaction's first commit, when nothing stands in its way (no retry, no end through the handle, no rollback-only,
abort, pending work or planned fault), stopped running in an async function of its own: 15 promises. The builds
before and after, alternating five times in a script of 10 rounds of 20,000: txkit's overhead 1.47-1.85 µs
before, 1.28-1.47 µs after. The bench run after it (the section below): 1.60 [1.55, 1.63] µs, met.

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

Where the exactly-once pipeline figure stands (2026-12-07): one pipeline worker runs its database transactions
one after another, each a chain of round trips to Postgres, so its pace is how soon each reply is handled. A relay
started in the same process reads the outbox and encodes and sends its broker transactions on the same event loop,
and a reply that arrives meanwhile waits. Timed in scripts of the bench's work (20,000 messages, 100 per
transaction, kafkajs): at-least-once 4.7-5.8 s over three rounds; the pipeline with the relay in its process
5.9-7.6 s (six rounds); the pipeline alone, its relay started only after it, 5.2-5.4 s; the pipeline with the relay
as its own process 4.6-6.2 s (seven rounds, the first of each run the slowest). So (c) now runs both placements,
and the operations guide says to run the relay as its own process (\`txkit relay\`) where throughput matters.

Where the commit-to-consumer figure stands (2026-12-07, later): (b) was judged on two point p99s of 500 samples
each, which move by milliseconds from run to run: in three runs of the day the raw one-record transaction's p99 was
10.5, 12.7 and 13.4 ms and the kafkajs relay path's 15.8, 20.1 and 17.0 ms; the @platformatic/kafka relay's came
out at exactly 1.20x, met, in one of them. The goal is now judged on the ratio's 95% bootstrap interval, each side
resampled on its own (the two are measured apart, not in paired rounds): in the run below 1.27 [0.98, 1.50] on
kafkajs and 1.29 [0.96, 1.70] on @platformatic/kafka, undecided. (b2) now also times the relay's own broker
transaction, the record and its position record in one produce request, until the consumer has the record: the
floor of an exactly-once path before the database and the relay add anything. Its p99 was 13.4 and 17.6 ms in the
last two runs (1.06x and 1.32x the raw transaction), and the relay path's p99 1.50x and 0.96x of it. The medians
agree better: that floor's p50 was 6.6 and 8.1 ms, the relay path's 10.1 and 9.8 ms, so the NOTIFY, the outbox
read and txkit's transaction around the broker's add 1.7-3.5 ms. Since the first of those runs a relay that has
just sent fewer records than a batch waits for the next NOTIFY instead of reading the outbox once more to find
nothing; one query fewer per broker transaction does not show above the noise of these figures.
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
