/**
 * The published shape: build the package into a scratch node_modules/txkit,
 * then load it by name from ESM and CJS as a user would.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, string | { import: { types: string; default: string }; require: { types: string; default: string } }>;
  sideEffects: boolean;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional: boolean }>;
};
const subpaths = Object.keys(pkg.exports).filter((k) => k !== './package.json');
const BACKEND_LIBS = ['knex', 'pg', 'mysql2', 'better-sqlite3', 'mongodb', 'kafkajs', 'protobufjs'];
/** Loaded only by `txkit/otel`, which a user imports to opt in to OpenTelemetry. */
const OTEL_API = '@opentelemetry/api';

let scratch: string;
let pkgDir: string;

function node(code: string, type: 'module' | 'commonjs'): string {
  const file = join(scratch, type === 'module' ? 'probe.mjs' : 'probe.cjs');
  writeFileSync(file, code);
  return execFileSync(process.execPath, [file], { cwd: scratch, encoding: 'utf8' });
}

beforeAll(() => {
  // Inside the repo, so the package's own dependencies resolve from the repo's node_modules.
  mkdirSync(join(root, '.test-results'), { recursive: true });
  scratch = mkdtempSync(join(root, '.test-results', 'pack-'));
  // Its own package scope, so 'txkit' resolves to the scratch build, not to the repo itself.
  writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'txkit-pack-probe', private: true }));
  pkgDir = join(scratch, 'node_modules', 'txkit');
  mkdirSync(pkgDir, { recursive: true });
  cpSync(join(root, 'package.json'), join(pkgDir, 'package.json'));
  execFileSync(process.execPath, [join(root, 'node_modules/tsup/dist/cli-default.js'), '--out-dir', join(pkgDir, 'dist'), '--silent'], {
    cwd: root,
    stdio: 'pipe',
  });
}, 180_000);

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('package', () => {
  it('is side-effect free and keeps every backend library an optional peer', () => {
    expect(pkg.sideEffects).toBe(false);
    for (const lib of ['knex', 'pg', 'mysql2', 'better-sqlite3', 'mongodb', 'kafkajs', OTEL_API]) {
      expect(pkg.peerDependencies[lib], lib).toBeDefined();
      expect(pkg.peerDependenciesMeta[lib]?.optional, lib).toBe(true);
    }
  });

  it('every export resolves from ESM and CJS, with declaration files for both', () => {
    for (const sub of subpaths) {
      const target = pkg.exports[sub];
      if (target === undefined || typeof target === 'string') continue;
      for (const f of [target.import.types, target.import.default, target.require.types, target.require.default]) {
        expect(readdirSync(join(pkgDir, 'dist')), `${sub}: ${f}`).toContain(f.replace('./dist/', ''));
      }
      const name = sub === '.' ? 'txkit' : `txkit/${sub.slice(2)}`;
      expect(node(`const m = await import('${name}'); console.log(Object.keys(m).length)`, 'module').trim()).not.toBe('0');
      expect(node(`console.log(Object.keys(require('${name}')).length)`, 'commonjs').trim()).not.toBe('0');
    }
  });

  it('one copy of the core serves every entry, so instanceof holds across subpaths (ESM and CJS)', () => {
    const check = (load: (n: string) => string): string => `
      const core = ${load('txkit')}; const memory = ${load('txkit/memory')};
      const ctx = memory.memoryTransactions();
      ctx.withTransaction(async (tx) => tx.handle.set('', 1)).catch((e) => console.log(e instanceof core.ConfigError && e instanceof core.TxkitError));`;
    expect(node(check((n) => `await import('${n}')`), 'module').trim()).toBe('true');
    expect(node(check((n) => `require('${n}')`), 'commonjs').trim()).toBe('true');
  });

  it('two copies of txkit (the CommonJS and the ESM build in one process) recognise each other\'s errors: a transient error of one is retried by the other', () => {
    const out = node(
      `
      import { createRequire } from 'node:module';
      const cjs = createRequire(import.meta.url)('txkit');
      const esm = await import('txkit');
      const { memoryTransactions } = await import('txkit/memory');
      const ctx = memoryTransactions();
      let runs = 0;
      await ctx.withTransaction(async (tx) => {
        runs += 1;
        await tx.handle.set('k', runs);
        if (runs === 1) throw new cjs.TransientTransactionError('conflict reported by the other copy');
      }, { retry: { initialDelayMs: 0, maxDelayMs: 0 } });
      const fatal = await ctx.withTransaction(async () => { throw new cjs.ConfigError('bad'); }).catch((e) => e);
      console.log(JSON.stringify({
        copies: cjs.TxkitError !== esm.TxkitError,
        runs,
        stored: ctx.store.get('k'),
        crossInstanceof: new cjs.TransientTransactionError('x') instanceof esm.TransientTransactionError && new esm.UnknownCommitResultError('x') instanceof cjs.TxkitError,
        notOther: new cjs.ConfigError('x') instanceof esm.TransientTransactionError,
        plainError: new Error('x') instanceof esm.TxkitError,
        fatalNotRetried: fatal instanceof esm.ConfigError && fatal.code,
      }));`,
      'module',
    );
    expect(JSON.parse(out)).toEqual({
      copies: true,
      runs: 2,
      stored: 2,
      crossInstanceof: true,
      notOther: false,
      plainError: false,
      fatalNotRetried: 'CONFIG',
    });
  });

  it('loading txkit, txkit/memory and txkit/testing loads no backend library and no OpenTelemetry', () => {
    const out = node(
      `require('txkit'); require('txkit/memory'); require('txkit/testing');
       console.log(JSON.stringify(Object.keys(require.cache)))`,
      'commonjs',
    );
    const loaded = JSON.parse(out) as string[];
    for (const lib of [...BACKEND_LIBS, OTEL_API]) expect(loaded.filter((f) => f.includes(`/node_modules/${lib}/`)), lib).toEqual([]);
  });

  it('only txkit/pulsar and txkit/pulsar-client load protobufjs', () => {
    for (const sub of subpaths) {
      const name = sub === '.' ? 'txkit' : `txkit/${sub.slice(2)}`;
      const out = node(`require('${name}'); console.log(JSON.stringify(Object.keys(require.cache)))`, 'commonjs');
      const protobuf = (JSON.parse(out) as string[]).some((f) => f.includes('/node_modules/protobufjs/'));
      expect(protobuf, name).toBe(name === 'txkit/pulsar' || name === 'txkit/pulsar-client');
    }
  });

  it('txkit/pulsar-client serves the classes txkit/pulsar re-exports, and its errors are txkit errors in either build', () => {
    const out = node(
      `
      import { createRequire } from 'node:module';
      const require = createRequire(import.meta.url);
      const client = await import('txkit/pulsar-client');
      const pulsar = await import('txkit/pulsar');
      const core = await import('txkit');
      const cjsClient = require('txkit/pulsar-client');
      const cjsCore = require('txkit');
      console.log(JSON.stringify({
        same: client.PulsarClient === pulsar.PulsarClient && client.PulsarServerError === pulsar.PulsarServerError,
        copies: cjsClient.PulsarServerError !== client.PulsarServerError,
        txkitError: new client.PulsarTimeoutError('SEND', 1) instanceof cjsCore.TxkitError && new cjsClient.PulsarTimeoutError('SEND', 1) instanceof core.TxkitError,
        configError: new cjsClient.PulsarConfigError('x') instanceof core.ConfigError && new client.PulsarConfigError('x') instanceof cjsCore.ConfigError,
        crossInstanceof: new cjsClient.PulsarServerError(23, 'm', 'ACK') instanceof client.PulsarServerError && new client.PulsarChecksumError('m', '1:1') instanceof cjsClient.PulsarProtocolError,
        notOther: new cjsClient.PulsarServerError(23, 'm', 'ACK') instanceof client.PulsarTimeoutError,
      }));`,
      'module',
    );
    expect(JSON.parse(out)).toEqual({ same: true, copies: true, txkitError: true, configError: true, crossInstanceof: true, notOther: false });
  });

  it('txkit/otel loads @opentelemetry/api and traces a memory transaction through the global API (ESM and CJS)', () => {
    const check = (load: (n: string) => string): string => `
      const { openTelemetry } = ${load('txkit/otel')}; const { memoryTransactions } = ${load('txkit/memory')};
      const ctx = memoryTransactions({ telemetry: openTelemetry() });
      ctx.withTransaction(async (tx) => { tx.handle.set('k', 1); return 'ok'; }).then((r) => console.log(r));`;
    expect(node(check((n) => `await import('${n}')`), 'module').trim()).toBe('ok');
    expect(node(check((n) => `require('${n}')`), 'commonjs').trim()).toBe('ok');
    const out = node(`require('txkit/otel'); console.log(JSON.stringify(Object.keys(require.cache)))`, 'commonjs');
    expect((JSON.parse(out) as string[]).some((f) => f.includes(`/node_modules/${OTEL_API}/`))).toBe(true);
  });

  it('declaration files import no backend library types, and only those of txkit/otel import OpenTelemetry types', () => {
    const dts = readdirSync(join(pkgDir, 'dist')).filter((f) => f.endsWith('.d.ts') || f.endsWith('.d.cts'));
    expect(dts.length).toBeGreaterThan(0);
    for (const f of dts) {
      // Doc comments may show an import in an example (`import pg from 'pg'`): only the code counts.
      const code = readFileSync(join(pkgDir, 'dist', f), 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/^\s*\/\/.*$/gm, '');
      const forbidden = f.startsWith('otel.') ? BACKEND_LIBS : [...BACKEND_LIBS, OTEL_API];
      for (const lib of forbidden) expect(code, `${f} imports ${lib}`).not.toMatch(new RegExp(`from ['"]${lib}['"]|import\\(['"]${lib}['"]\\)`));
    }
  });
});
