#!/usr/bin/env node
/**
 * Proves that one backend needs one backend library: packs the built package
 * (run `npm run build` first), installs the tarball and `pg` alone into a fresh
 * temporary project, and runs examples/sql-only/main.mjs (a transaction) and
 * examples/sql-only/outbox.mjs (a publish through the outbox on a pg Pool,
 * relayed) there against DATABASE_URL (default
 * postgres://postgres@127.0.0.1:5432/test).
 *
 * The temporary project has no lockfile (--no-package-lock), so nothing of
 * this repository's package-lock.json applies. Set KEEP_TMP=1 to keep it.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function step(title, command, args, cwd) {
  console.log(`== ${title}: ${command} ${args.join(' ')}`);
  const started = Date.now();
  const result = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: databaseUrl },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error !== undefined || result.status !== 0) {
    console.error(result.stdout ?? '');
    console.error(result.stderr ?? '');
    const why = result.error !== undefined ? result.error.message : `exit code ${result.status}`;
    throw new Error(`${title} failed (${why})`);
  }
  console.log(`   done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return result.stdout;
}

if (!existsSync(join(root, 'dist', 'sql.js'))) {
  console.error('dist/sql.js is missing: run `npm run build` before scripts/check-single-backend.mjs');
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), 'txkit-single-backend-'));
let failed = false;
try {
  const packOut = step('pack', 'npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], root);
  const tarball = join(work, JSON.parse(packOut.slice(packOut.indexOf('[')))[0].filename);

  const app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), `${JSON.stringify({ name: 'txkit-sql-only', private: true, type: 'module' }, null, 2)}\n`);
  step(
    'install txkit and pg only',
    'npm',
    ['install', '--no-audit', '--no-fund', '--no-package-lock', '--ignore-scripts', tarball, 'pg'],
    app,
  );
  for (const example of ['main.mjs', 'outbox.mjs']) {
    copyFileSync(join(root, 'examples', 'sql-only', example), join(app, example));
    const out = step(`run examples/sql-only/${example}`, process.execPath, [example], app);
    process.stdout.write(out);
  }
  console.log('single-backend check passed: txkit/sql and txkit/outbox ran with pg as the only backend library');
} catch (err) {
  failed = true;
  console.error(`single-backend check failed: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  if (process.env.KEEP_TMP === '1') console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
