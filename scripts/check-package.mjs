#!/usr/bin/env node
/**
 * Checks the package as npm would publish it. Run `npm run build` first.
 *
 *   1. publint --strict: package.json fields and exports point at files that exist, in the right format.
 *   2. attw --pack (profile node16, as engines.node is >=20): every subpath's types resolve for
 *      ESM and CJS consumers and match the JavaScript they describe.
 *   3. npm pack --dry-run --json: the tarball holds only dist/, bin/, docs/ (the guides the README
 *      links to, without the generated docs/api/), examples/ (without their test files),
 *      README.md, LICENSE and package.json; no test files; every export and bin target is inside
 *      it; every source map's sources resolve, inside the tarball or through embedded
 *      sourcesContent.
 *
 * Exits 1 with a list of every failed check, 0 when all pass.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = (name) => join(root, 'node_modules', '.bin', name);
const failures = [];
const fail = (check, message) => failures.push(`${check}: ${message}`);

function run(command, args, check) {
  console.log(`== ${check}: ${[command.replace(`${root}/`, ''), ...args].join(' ')}`);
  const result = spawnSync(command, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.error !== undefined) {
    fail(check, `could not run ${command}: ${result.error.message}`);
    return undefined;
  }
  return result;
}

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
if (!existsSync(join(root, 'dist', 'index.js'))) {
  console.error('dist/index.js is missing: run `npm run build` before scripts/check-package.mjs');
  process.exit(1);
}

// 1. publint
const publint = run(bin('publint'), ['--strict'], 'publint');
if (publint !== undefined) {
  process.stdout.write(publint.stdout);
  process.stderr.write(publint.stderr);
  if (publint.status !== 0) fail('publint', 'reported problems (see above)');
}

// 2. attw. node10 resolution ignores "exports", and engines.node is >=20, so the node16 profile applies.
const attw = run(bin('attw'), ['--pack', '.', '--profile', 'node16', '--format', 'table-flipped', '--no-color'], 'attw');
if (attw !== undefined) {
  process.stdout.write(attw.stdout);
  process.stderr.write(attw.stderr);
  if (attw.status !== 0) fail('attw', 'reported type resolution problems (see above)');
}

// 3. the tarball's contents
const pack = run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], 'npm pack');
let files = [];
if (pack !== undefined) {
  if (pack.status !== 0) {
    fail('npm pack', `exited with ${pack.status}: ${pack.stderr.trim()}`);
  } else {
    try {
      const start = pack.stdout.indexOf('[');
      files = JSON.parse(pack.stdout.slice(start))[0].files.map((f) => f.path);
    } catch (err) {
      fail('npm pack', `could not read its --json output: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

if (files.length > 0) {
  const packed = new Set(files);
  console.log(`   ${files.length} file(s) in the tarball`);
  const allowedTop = new Set(['README.md', 'LICENSE', 'package.json']);
  const allowedDirs = ['dist/', 'bin/', 'docs/', 'examples/'];
  for (const f of files) {
    if (!(allowedDirs.some((d) => f.startsWith(d)) || allowedTop.has(f)) || f.startsWith('docs/api/')) {
      fail('contents', `${f} is packed, but only dist/, bin/, docs/ (not docs/api/), examples/, README.md, LICENSE and package.json belong in the package (check "files" in package.json)`);
    }
    if (/(^|\/)(test|tests|__tests__|fixtures)\/|\.(test|spec)\.[cm]?[jt]sx?$/.test(f)) {
      fail('contents', `${f} is a test file and must not be published`);
    }
  }
  for (const required of ['package.json', 'README.md', 'LICENSE', 'docs/README.md']) {
    if (!packed.has(required)) fail('contents', `${required} is not in the tarball`);
  }

  // Every file the exports map and bin point at ships.
  const targets = [];
  const collect = (value) => {
    if (typeof value === 'string') targets.push(value);
    else if (value !== null && typeof value === 'object') Object.values(value).forEach(collect);
  };
  collect(pkg.exports);
  collect(pkg.bin);
  for (const field of ['main', 'module', 'types']) if (typeof pkg[field] === 'string') targets.push(pkg[field]);
  for (const t of targets) {
    const path = posix.normalize(t.replace(/^\.\//, ''));
    if (!packed.has(path)) fail('contents', `package.json points at ${t}, which is not in the tarball (did the build run?)`);
  }
  // bin scripts import the build: their relative imports must ship too.
  for (const f of files.filter((p) => p.startsWith('bin/'))) {
    const text = readFileSync(join(root, f), 'utf8');
    for (const m of text.matchAll(/from\s+['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const target = posix.normalize(posix.join(posix.dirname(f), m[1]));
      if (!packed.has(target)) fail('contents', `${f} imports ${m[1]}, which is not in the tarball`);
    }
  }

  // Source maps: each source must be in the tarball, or its content embedded.
  for (const f of files.filter((p) => p.endsWith('.map'))) {
    let map;
    try {
      map = JSON.parse(readFileSync(join(root, f), 'utf8'));
    } catch (err) {
      fail('source maps', `${f} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
      continue;
    }
    const sources = Array.isArray(map.sources) ? map.sources : [];
    sources.forEach((source, i) => {
      const embedded = Array.isArray(map.sourcesContent) && typeof map.sourcesContent[i] === 'string';
      const resolved = posix.normalize(posix.join(posix.dirname(f), map.sourceRoot ?? '', source));
      if (!embedded && !packed.has(resolved)) {
        fail('source maps', `${f} names source ${source} (${resolved}), which is neither in the tarball nor embedded as sourcesContent`);
      }
    });
  }
}

if (failures.length > 0) {
  console.error(`\npackage check failed (${failures.length} problem(s)):`);
  for (const f of failures) console.error(`  - ${f}`);
  process.exit(1);
}
console.log(`\npackage check passed: publint, attw (node16) and ${files.length} packed file(s) in order`);
