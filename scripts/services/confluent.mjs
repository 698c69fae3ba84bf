#!/usr/bin/env node
// @confluentinc/kafka-javascript for the confluent test suite, installed apart from the
// project: its install compiles the librdkafka it bundles (about two minutes on two
// cores), which the project's own `npm install` must not pay. The version is pinned by
// test/support/confluent/package-lock.json; the install is cached under the txkit cache
// directory, one per lockfile content, and reused by every later run.
//
//   node scripts/services/confluent.mjs [install]   installs (or finds) it; prints TXKIT_CONFLUENT_KAFKA_MODULE=<path>
//
// librdkafka links dynamically against the system's OpenSSL, SASL and zlib
// (CKJS_LINKING=dynamic): the prebuilt binaries are downloaded from GitHub, which
// machines of this kind cannot reach.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir, makeLogger, removeDir, runCommand, withLock } from './service-kit.mjs';

const SPEC_DIR = fileURLToPath(new URL('../../test/support/confluent/', import.meta.url));
const ENTRY = path.join('node_modules', '@confluentinc', 'kafka-javascript', 'lib', 'index.js');
const COMPLETE = '.txkit-install-complete';
const defaultLog = makeLogger('confluent');

/** Where the install for the current lockfile lives (it may not exist yet). */
export function confluentInstallDir() {
  const hash = createHash('sha256')
    .update(fs.readFileSync(path.join(SPEC_DIR, 'package.json')))
    .update(fs.readFileSync(path.join(SPEC_DIR, 'package-lock.json')))
    .digest('hex')
    .slice(0, 16);
  return path.join(cacheDir(), `confluent-kafka-javascript-${hash}`);
}

/**
 * Installs the pinned client once (`npm ci` in a scratch directory, renamed into place when
 * complete, so an interrupted install is never taken for a finished one) and resolves to the
 * path of its entry module. Concurrent callers wait for one install.
 *
 * @param {{ log?: ((line: string) => void) | false, timeoutMs?: number }} [options]
 * @returns {Promise<string>}
 */
export async function ensureConfluentClient({ log = defaultLog, timeoutMs = 15 * 60_000 } = {}) {
  const say = log || (() => {});
  const dir = confluentInstallDir();
  const entry = path.join(dir, ENTRY);
  if (fs.existsSync(path.join(dir, COMPLETE))) return entry;
  return withLock(`${dir}.lock`, async () => {
    if (fs.existsSync(path.join(dir, COMPLETE))) return entry;
    const scratch = `${dir}.installing-${process.pid}`;
    removeDir(scratch);
    fs.mkdirSync(scratch, { recursive: true });
    for (const f of ['package.json', 'package-lock.json']) fs.copyFileSync(path.join(SPEC_DIR, f), path.join(scratch, f));
    const t0 = Date.now();
    say(`installing @confluentinc/kafka-javascript (compiles librdkafka; a few minutes, once) in ${dir}`);
    try {
      await runCommand('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: scratch, env: { CKJS_LINKING: 'dynamic' }, timeoutMs, label: 'npm ci (@confluentinc/kafka-javascript)' });
      if (!fs.existsSync(path.join(scratch, ENTRY))) throw new Error(`npm ci finished but ${ENTRY} is missing`);
      fs.writeFileSync(path.join(scratch, COMPLETE), `${new Date().toISOString()}\n`);
      removeDir(dir);
      fs.renameSync(scratch, dir);
    } catch (err) {
      removeDir(scratch);
      throw err;
    }
    say(`installed in ${Math.round((Date.now() - t0) / 1000)} s`);
    return entry;
  }, { timeoutMs: timeoutMs + 60_000 });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const command = process.argv[2] ?? 'install';
  if (command !== 'install') {
    console.error('usage: node scripts/services/confluent.mjs [install]');
    process.exit(2);
  }
  ensureConfluentClient().then(
    (entry) => console.log(`TXKIT_CONFLUENT_KAFKA_MODULE=${entry}`),
    (err) => {
      console.error(err instanceof Error ? err.message : String(err));
      process.exit(1);
    },
  );
}
