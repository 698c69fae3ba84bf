// `npm run bench [-- name ...]`: runs bench/<name>.bench.ts (all when none is named),
// prints each result, records it in docs/benchmarks/<name>.json and rebuilds
// docs/benchmarks.md and the charts from every recorded result.
// `npm run bench -- --render` only rebuilds the page and charts.
// With TXKIT_BENCH_SMOKE=1 each bench runs at a tiny size and its page is
// rendered in a temporary directory: docs/ is left alone.
// Several benches run one after the other, each in a Node process of its own: what one
// leaves in the process (clients, timers, async hooks of its contexts) must not be
// measured by the next (the core bench measured 4.95 µs per transaction after the
// Kafka and outbox benches in one process, 0.84 alone).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SMOKE, renderDocs, writeResult } from './harness.js';
import type { BenchResult } from './harness.js';

const dir = fileURLToPath(new URL('.', import.meta.url));
const all = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();
const args = process.argv.slice(2);
if (args.includes('--render')) {
  const recorded = renderDocs();
  console.log(`rendered docs/benchmarks.md and ${recorded.length} chart(s) from docs/benchmarks/*.json`);
  process.exit(0);
}
const wanted = args;
for (const name of wanted) {
  if (!all.includes(name)) {
    console.error(`unknown benchmark '${name}'; available: ${all.join(', ')}`);
    process.exit(2);
  }
}
const names = wanted.length > 0 ? wanted : all;
if (names.length > 1) {
  for (const name of names) {
    // The same runtime flags (tsx's loader), this script, one bench.
    const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), name], { stdio: 'inherit' });
    if (child.status !== 0) {
      console.error(`bench '${name}' failed (${child.signal ?? `exit code ${child.status}`}); the benches after it were not run`);
      process.exit(1);
    }
  }
  process.exit(0);
}
for (const name of names) {
  const mod = (await import(`./${name}.bench.ts`)) as { default: () => Promise<BenchResult> };
  const result = await mod.default();
  console.log(`\n${result.title}\n${result.summary}`);
  console.table(result.table.rows.map((r) => Object.fromEntries(result.table.headers.map((h, i) => [h, r[i]]))));
  if (SMOKE) {
    const scratch = mkdtempSync(path.join(tmpdir(), 'txkit-bench-smoke-'));
    try {
      writeResult(result, scratch);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
    console.log(`smoke run of ${name}: ran and rendered; nothing recorded`);
  } else {
    writeResult(result);
    console.log(`recorded docs/benchmarks/${name}.json; rewrote docs/benchmarks.md and docs/benchmarks/${name}.svg`);
  }
}
