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
// One line per failure, so a log read from its end names what failed.
for (const line of failureLines(r)) console.log(line);
console.log(`${r.numPassedTests} passed, ${failed} failed, ${skipped} skipped`);
process.exit(vitest.status ?? 1);

function brokenFiles(result) {
  return (result.testResults ?? []).filter(failedOnItsOwn).length;
}

/** A file that failed without any failed test: it did not load, or a hook threw. */
function failedOnItsOwn(file) {
  return file.status === 'failed' && !(file.assertionResults ?? []).some((a) => a.status === 'failed');
}

/** `FAILED: <file> > <test>: <first line of the error>` for each failed test and each file that failed on its own. */
function failureLines(result) {
  const lines = [];
  for (const file of result.testResults ?? []) {
    const name = file.name.startsWith(root) ? file.name.slice(root.length).replace(/^\//, '') : file.name;
    for (const a of file.assertionResults ?? []) {
      if (a.status === 'failed') lines.push(`FAILED: ${name} > ${a.fullName ?? a.title}: ${firstLine(a.failureMessages?.[0])}`);
    }
    if (failedOnItsOwn(file)) lines.push(`FAILED: ${name}: ${firstLine(file.message)}`);
  }
  return lines;
}

function firstLine(text) {
  return String(text ?? '').split('\n').find((l) => l.trim() !== '')?.trim().slice(0, 400) ?? '';
}
