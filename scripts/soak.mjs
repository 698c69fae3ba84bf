#!/usr/bin/env node
// Runs the given vitest files N times in a row (default 20), one run at a time, and
// stops at the first failing run, naming it. Flaky tests show up here rather than in CI.
//
//   node scripts/soak.mjs [--runs N] <test files...> [-- <extra vitest args>]
//   SOAK_RUNS=N works too. Exit code 0 when every run passed, 1 otherwise.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

function parse(argv) {
  let runs = Number(process.env.SOAK_RUNS ?? 20);
  const files = [];
  const extra = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      extra.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '--runs') runs = Number(argv[++i]);
    else if (arg.startsWith('--runs=')) runs = Number(arg.slice('--runs='.length));
    else files.push(arg);
  }
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive whole number, got ${runs}`);
  if (files.length === 0) throw new Error('usage: node scripts/soak.mjs [--runs N] <test files...> [-- <vitest args>]');
  return { runs, files, extra };
}

let options;
try {
  options = parse(process.argv.slice(2));
} catch (err) {
  console.error(`[soak] ${err.message}`);
  process.exit(2);
}
const { runs, files, extra } = options;
const vitest = path.join(path.dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
const durations = [];
let failed;
for (let run = 1; run <= runs; run++) {
  console.error(`[soak] run ${run}/${runs}: ${files.join(' ')}`);
  const started = Date.now();
  const result = spawnSync(process.execPath, [vitest, 'run', ...files, ...extra], { stdio: 'inherit' });
  durations.push((Date.now() - started) / 1000);
  if (result.status !== 0) {
    failed = { run, status: result.status, signal: result.signal };
    break;
  }
}
const total = durations.reduce((a, b) => a + b, 0);
const passed = failed === undefined ? runs : failed.run - 1;
console.log(
  `[soak] ${files.join(' ')}: ${passed} of ${runs} runs passed` +
    (failed === undefined ? '' : `; run ${failed.run} failed (${failed.signal ? `signal ${failed.signal}` : `exit code ${failed.status}`}), stopped there`) +
    `; ${durations.length} run(s) in ${total.toFixed(0)} s (min ${Math.min(...durations).toFixed(0)} s, max ${Math.max(...durations).toFixed(0)} s)`,
);
process.exit(failed === undefined ? 0 : 1);
