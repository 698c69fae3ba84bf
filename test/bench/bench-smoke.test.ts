/**
 * Every benchmark still runs: each bench/<name>.bench.ts at a tiny size
 * (TXKIT_BENCH_SMOKE=1), through `bench/run.ts` as `npm run bench -- <name>`
 * runs it, on the services the suite has, its page rendered in a temporary
 * directory. Nothing here measures anything (full runs are `npm run bench`);
 * a bench that no longer runs against the current API fails here instead of
 * on the next full run.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';
import { service } from '../support/services.js';
import type { ServiceName } from '../support/services.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const benches = readdirSync(new URL('../../bench/', import.meta.url))
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();

/** The real services each bench runs against (the MongoDB bench uses the scripted server unless MONGODB_URI is set). */
const NEEDS: Record<string, ServiceName[]> = {
  core: [],
  memory: [],
  mongo: [],
  sql: ['postgres'],
  kafka: ['kafka'],
  pulsar: ['pulsar'],
  outbox: ['kafka', 'postgres'],
  scale: ['kafka', 'postgres'],
};

function runBench(name: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', name], {
      cwd: root,
      env: { ...process.env, ...env, TXKIT_BENCH_SMOKE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
  });
}

describe('benchmarks at smoke size', () => {
  for (const target of ['memory', 'knex'] as const) {
    it(`npm run bench:profile -- ${target} prints txkit's and the native API's self time per transaction (2,000 transactions, from the sources)`, { timeout: 120_000 }, async () => {
      const child = spawn(process.execPath, ['bench/profile.mjs', target], {
        cwd: root,
        env: { ...process.env, PROFILE_TRANSACTIONS: '2000', PROFILE_FROM_SOURCES: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const code = await new Promise<number | null>((resolve, reject) => {
        child.once('error', reject);
        child.once('exit', resolve);
      });
      assert.equal(code, 0, output);
      assert.match(output, /^total: native [\d.]+, txkit [\d.]+/m);
      assert.match(output, /^\| function \| txkit \| native \| difference \|$/m);
    });
  }

  it('every bench file is listed here with the services it needs', () => {
    assert.deepEqual(benches, Object.keys(NEEDS).sort());
  });

  for (const name of benches) {
    const needs = NEEDS[name] ?? [];
    const urls = new Map(needs.map((s) => [s, service(s)]));
    const missing = [...urls].filter(([, url]) => url === undefined).map(([s]) => s);
    it.skipIf(missing.length > 0)(`npm run bench -- ${name} runs and renders its section (tiny sizes)`, { timeout: 180_000 }, async () => {
      const pg = urls.get('postgres');
      const { code, output } = await runBench(name, pg === undefined ? {} : { TXKIT_PG_URL: pg });
      assert.equal(code, 0, `bench ${name} exited with ${String(code)}:\n${output.slice(-4_000)}`);
      assert.match(output, new RegExp(`smoke run of ${name}: ran and rendered; nothing recorded`));
    });
  }
});
