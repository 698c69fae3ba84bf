#!/usr/bin/env node
// The npm registry mirror of this project's machines serves only the platform
// packages of the machine itself (linux x64), so `npm install` leaves the
// other platforms' optional packages (rollup, esbuild builds per OS/CPU) out of
// package-lock.json, and `npm ci` then refuses the lockfile as out of sync.
// This adds the missing entries as optional, the way a lockfile made against
// the full registry has them; npm skips those that do not fit the platform.
// Run it after every dependency change: `node scripts/fix-lockfile.mjs`.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const file = process.argv[2] ?? fileURLToPath(new URL('../package-lock.json', import.meta.url));
const lock = JSON.parse(readFileSync(file, 'utf8'));
let added = 0;
for (const [path, entry] of Object.entries(lock.packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const nested = `${path === '' ? '' : `${path}/`}node_modules/${name}`;
    if (lock.packages[nested] || lock.packages[`node_modules/${name}`]) continue;
    lock.packages[`node_modules/${name}`] = { version, ...(entry.dev ? { dev: true } : {}), optional: true };
    added += 1;
  }
}
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`fix-lockfile: added ${added} optional platform entries`);
