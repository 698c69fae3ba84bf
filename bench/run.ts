// `npm run bench [-- name ...]`: runs bench/<name>.bench.ts (all when none is named),
// prints each result and rewrites its section of docs/benchmarks.md.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { writeResult } from './harness.js';
import type { BenchResult } from './harness.js';

const dir = fileURLToPath(new URL('.', import.meta.url));
const all = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();
const wanted = process.argv.slice(2);
for (const name of wanted) {
  if (!all.includes(name)) {
    console.error(`unknown benchmark '${name}'; available: ${all.join(', ')}`);
    process.exit(2);
  }
}
for (const name of wanted.length > 0 ? wanted : all) {
  const mod = (await import(`./${name}.bench.ts`)) as { default: () => Promise<BenchResult> };
  const result = await mod.default();
  console.log(`\n${result.title}\n${result.summary}`);
  console.table(result.table.rows.map((r) => Object.fromEntries(result.table.headers.map((h, i) => [h, r[i]]))));
  writeResult(result);
  console.log(`wrote section '${name}' of docs/benchmarks.md`);
}
