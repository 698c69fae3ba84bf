#!/usr/bin/env node
// `npm test`: runs the whole vitest suite (the global setup starts the services
// it needs) and ends with the plain summary line taken from vitest's JSON report.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const report = `${root}/.test-results/report.json`;
rmSync(report, { force: true });

const vitest = spawnSync(process.execPath, [`${root}/node_modules/vitest/vitest.mjs`, 'run', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: process.env,
});

if (!existsSync(report)) {
  console.error('vitest wrote no report: the run did not complete');
  console.log('0 passed, 1 failed');
  process.exit(vitest.status || 1);
}
const r = JSON.parse(readFileSync(report, 'utf8'));
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
// A file that failed without any failed test (it did not load, or a hook threw) counts as a failure too.
const failed = r.numFailedTests + brokenFiles(r);
console.log(`${r.numPassedTests} passed, ${failed} failed, ${skipped} skipped`);
process.exit(vitest.status ?? 1);

function brokenFiles(result) {
  return (result.testResults ?? []).filter((f) => f.status === 'failed' && !f.assertionResults.some((a) => a.status === 'failed')).length;
}
