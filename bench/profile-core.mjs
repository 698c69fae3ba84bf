#!/usr/bin/env node
// `npm run bench:profile`: where the core's time per transaction goes. Runs N transactions on the
// memory backend twice under `node --cpu-prof` (the driver's own begin/set/commit, then withTransaction),
// and prints each function's self time in µs per transaction, the core's run beside the driver's. The
// profiles are written to a temp dir and removed; nothing is kept in the repository. Uses the built package
// (`npm run build` first). Proportions hold on a busy machine; absolute times do not.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const N = Number(process.env.PROFILE_TRANSACTIONS ?? 300_000);
const TOP = Number(process.env.PROFILE_TOP ?? 25);
// PROFILE_FROM_SOURCES=1 (the test suite's smoke run): the TypeScript sources through tsx, no build needed.
const fromSources = process.env.PROFILE_FROM_SOURCES === '1';
const entry = fileURLToPath(new URL(fromSources ? '../src/adapters/memory/index.ts' : '../dist/memory.js', import.meta.url));
if (!fs.existsSync(entry)) {
  console.error('bench:profile needs the built package: run `npm run build` first');
  process.exit(2);
}

const variants = {
  driver: `const { MemoryDriver, MemoryStore } = await import(${JSON.stringify(entry)});
const driver = new MemoryDriver(new MemoryStore());
let i = 0;
for (let n = 0; n < ${N}; n++) { const tx = await driver.begin(); await tx.handle.set(\`k\${i++ % 1000}\`, i); await tx.commit(); }`,
  core: `const { memoryTransactions, MemoryStore } = await import(${JSON.stringify(entry)});
const ctx = memoryTransactions({ store: new MemoryStore() });
let i = 0;
for (let n = 0; n < ${N}; n++) await ctx.withTransaction((tx) => tx.handle.set(\`k\${i++ % 1000}\`, i));
await ctx.close();`,
};

/** Self time per function (µs per transaction) of one variant's run. */
function profile(name, source, dir) {
  const script = path.join(dir, `${name}.mjs`);
  const out = path.join(dir, name);
  fs.writeFileSync(script, source);
  const run = spawnSync(process.execPath, [...(fromSources ? ['--import', 'tsx'] : []), '--cpu-prof', `--cpu-prof-dir=${out}`, script], {
    stdio: 'inherit',
    cwd: fileURLToPath(new URL('..', import.meta.url)),
  });
  if (run.status !== 0) throw new Error(`the ${name} run failed (exit ${run.status})`);
  const file = path.join(out, fs.readdirSync(out)[0]);
  const p = JSON.parse(fs.readFileSync(file, 'utf8'));
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  p.samples.forEach((id, i) => {
    const { functionName, url, lineNumber } = nodes.get(id).callFrame;
    const where = url === '' ? '' : ` (${url.split('/').at(-1)}:${lineNumber + 1})`;
    const key = `${functionName || '(anonymous)'}${where}`;
    const us = p.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + us);
    total += us;
  });
  return { total: total / N, self: new Map([...self].map(([k, v]) => [k, v / N])) };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'txkit-profile-'));
try {
  const driver = profile('driver', variants.driver, dir);
  const core = profile('core', variants.core, dir);
  console.log(`${N} transactions each; self time in µs per transaction (Node ${process.version})`);
  console.log(`total: driver ${driver.total.toFixed(2)}, withTransaction ${core.total.toFixed(2)} (+${(core.total - driver.total).toFixed(2)})`);
  console.log('| function | withTransaction | driver alone |\n| --- | --- | --- |');
  for (const [key, us] of [...core.self].sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
    console.log(`| ${key} | ${us.toFixed(3)} | ${(driver.self.get(key) ?? 0).toFixed(3)} |`);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
