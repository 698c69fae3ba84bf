/**
 * A new user's first hour, from the packed tarball: the package is built and
 * packed as `npm publish` would, installed with npm into a fresh app with
 * the backend libraries the README names, and used the way the README and
 * the guides show:
 * - ESM TypeScript (strict, NodeNext, compiled by tsc): a pg-only transaction
 *   with an outbox publish, relayed to Kafka; the official Java consumer reads
 *   the topic back;
 * - CommonJS: the same context and errors through require();
 * - a vitest test of the app's SQL code on PGlite (`txkit/testing`);
 * - the `txkit` command: migrate, outbox status, and relay with a readable
 *   failure when the broker is down, then a drain that succeeds;
 * - a NestJS service with `@Transactional()`, compiled by tsc with decorator
 *   metadata (injection by type).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCommittedWithJava } from '../kafka/kafka-support.js';
import { freePort } from '../support/ports.js';
import { service } from '../support/services.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pgUrl = service('postgres');
const brokers = service('kafka');
const available = pgUrl !== undefined && brokers !== undefined;

/** The versions this repository is tested with, so the app installs from npm's cache what the lockfile pinned. */
function installed(name: string): string {
  return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], cwd: string, env: Record<string, string> = {}, timeoutMs = 240_000): Run {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env, NODE_OPTIONS: '' }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  if (r.error !== undefined) throw new Error(`${command} ${args.join(' ')}: ${r.error.message}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(r: Run, what: string): string {
  if (r.status !== 0) throw new Error(`${what} exited with ${r.status}\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`);
  return r.stdout;
}


const suffix = `${process.pid}_${Date.now().toString(36)}`;
const prefix = `walk_${suffix}_`;
const topic = `walk-orders-${suffix}`;
let work: string;
let app: string;

describe.skipIf(!available)('a new app built from the packed tarball', () => {
  beforeAll(() => {
    // Outside the repository, as a user's app is: nothing of this repository's config or node_modules applies.
    work = mkdtempSync(join(tmpdir(), 'txkit-walkthrough-'));
    // Build into a staging copy of the package, so the repository's dist/ is neither needed nor touched.
    const stage = join(work, 'stage');
    mkdirSync(stage);
    for (const f of ['package.json', 'README.md', 'LICENSE', 'bin', 'docs', 'examples']) cpSync(join(root, f), join(stage, f), { recursive: true });
    ok(run(process.execPath, [join(root, 'node_modules/tsup/dist/cli-default.js'), '--out-dir', join(stage, 'dist'), '--silent'], root), 'tsup');
    const packed = ok(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], stage), 'npm pack');
    const tarball = join(work, (JSON.parse(packed.slice(packed.indexOf('['))) as { filename: string }[])[0]?.filename as string);

    app = join(work, 'app');
    mkdirSync(join(app, 'src'), { recursive: true });
    writeFileSync(join(app, 'package.json'), `${JSON.stringify({ name: 'my-service', private: true, type: 'module' }, null, 2)}\n`);
    const libs = ['pg', 'knex', 'kafkajs', '@types/pg', '@types/node', 'typescript', 'vitest', '@electric-sql/pglite', '@electric-sql/pglite-socket'];
    const nest = ['@nestjs/common', '@nestjs/core', 'reflect-metadata', 'rxjs'];
    ok(
      run(
        'npm',
        ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball, ...[...libs, ...nest].map((l) => `${l}@${installed(l)}`)],
        app,
      ),
      'npm install',
    );
    // The compiler settings of a strict NodeNext app that also uses NestJS decorators.
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
          experimentalDecorators: true,
          emitDecoratorMetadata: true,
          skipLibCheck: false,
          outDir: 'dist',
          rootDir: 'src',
          types: ['node'],
        },
        include: ['src'],
      }),
    );
  }, 600_000);

  afterAll(async () => {
    if (pgUrl !== undefined && app !== undefined) {
      const pg = (await import('pg')).default;
      const pool = new pg.Pool({ connectionString: pgUrl });
      const { rows } = await pool.query<{ tablename: string }>('SELECT tablename FROM pg_tables WHERE tablename LIKE $1', [`${prefix}%`]);
      for (const { tablename } of rows) await pool.query(`DROP TABLE IF EXISTS "${tablename}" CASCADE`);
      await pool.end();
    }
    if (work !== undefined && process.env.KEEP_TMP !== '1') rmSync(work, { recursive: true, force: true });
  });

  it('ESM TypeScript (strict, NodeNext): a pg-only transaction with an outbox publish, relayed to Kafka; the Java consumer reads it once', async () => {
    writeFileSync(
      join(app, 'src', 'outbox.ts'),
      `import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { Outbox, OutboxRelay, kafkaSink, sqlOutboxStore } from 'txkit/outbox';
import { pgTransactions } from 'txkit/sql';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
const store = sqlOutboxStore(pool, { tablePrefix: '${prefix}txkit_' });
await store.migrate();
await pool.query('CREATE TABLE ${prefix}orders (id text PRIMARY KEY, total integer NOT NULL)');

const ctx = pgTransactions(pool);
const outbox = new Outbox(store);
await ctx.withTransaction(async (tx) => {
  await tx.handle.query('INSERT INTO ${prefix}orders (id, total) VALUES ($1, $2)', ['o-1', 42]);
  await outbox.publish(tx, { topic: '${topic}', key: 'o-1', value: JSON.stringify({ type: 'created', total: 42 }) });
});
// A unit that throws leaves neither the row nor the event.
await ctx
  .withTransaction(async (tx) => {
    await tx.handle.query('INSERT INTO ${prefix}orders (id, total) VALUES ($1, $2)', ['o-2', 7]);
    await outbox.publish(tx, { topic: '${topic}', key: 'o-2', value: 'never' });
    throw new Error('refused');
  })
  .catch((err: unknown) => console.log('rolled back:', (err as Error).message));

const kafka = new Kafka({ clientId: 'my-service', brokers: (process.env.KAFKA_BROKERS ?? '').split(','), logLevel: logLevel.NOTHING });
const relay = new OutboxRelay({ store, sink: kafkaSink({ kafka, transactionalIdPrefix: '${prefix}relay' }), relayId: '${prefix}orders' });
const sent = await relay.drain();
console.log('relayed', sent);
await relay.stop();
await store.close();
await ctx.close();
await pool.end();
`,
    );
    ok(run(join(app, 'node_modules/.bin/tsc'), ['-p', '.'], app), 'tsc');
    const out = ok(run(process.execPath, ['dist/outbox.js'], app, { DATABASE_URL: pgUrl as string, KAFKA_BROKERS: brokers as string }), 'node dist/outbox.js');
    expect(out).toContain('rolled back: refused');
    expect(out).toContain('relayed 1');
    const records = await readCommittedWithJava(brokers as string, topic);
    expect(records.map((r) => [r.key, r.value])).toEqual([['o-1', JSON.stringify({ type: 'created', total: 42 })]]);
  });

  it('CommonJS: require() gives the same contexts, and errors carry their types and codes', () => {
    writeFileSync(
      join(app, 'main.cjs'),
      `const pg = require('pg');
const { pgTransactions } = require('txkit/sql');
const { ConfigError, TxkitError } = require('txkit');
(async () => {
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
  const ctx = pgTransactions(pool);
  const n = await ctx.withTransaction(async (tx) => (await tx.handle.query('SELECT 1 + 1 AS n')).rows[0].n);
  console.log('n =', n);
  try {
    await ctx.withTransaction(async () => 1, { isolation: 'serializable' });
  } catch (err) {
    console.log('typed:', err instanceof ConfigError, err instanceof TxkitError, err.code);
  }
  await ctx.close();
  await pool.end();
})();
`,
    );
    const out = ok(run(process.execPath, ['main.cjs'], app, { DATABASE_URL: pgUrl as string }), 'node main.cjs');
    expect(out).toContain('n = 2');
    expect(out).toContain('typed: true true CONFIG');
  });

  it('vitest: the app\'s SQL code runs in a test on PGlite from txkit/testing, with no server', () => {
    mkdirSync(join(app, 'test'), { recursive: true });
    writeFileSync(
      join(app, 'test', 'orders.test.ts'),
      `import pg from 'pg';
import { expect, it } from 'vitest';
import type { TransactionContext } from 'txkit';
import type { SqlOptions } from 'txkit/sql';
import { pgliteTransactions } from 'txkit/testing';

async function placeOrder(ctx: TransactionContext<pg.PoolClient, SqlOptions>, id: string, total: number): Promise<void> {
  await ctx.withTransaction(async (tx) => {
    await tx.handle.query('INSERT INTO orders (id, total) VALUES ($1, $2)', [id, total]);
    if (total < 0) throw new Error('negative total');
  });
}

// PGlite starts in a second or more: above vitest's 5 s default on a busy machine, hence the timeout.
it('places an order, and a refused one leaves no row', { timeout: 60_000 }, async () => {
  const pglite = await pgliteTransactions({ pool: (url) => new pg.Pool({ connectionString: url }) });
  try {
    await pglite.db.query('CREATE TABLE orders (id text PRIMARY KEY, total integer NOT NULL)');
    await placeOrder(pglite.context, 'o-1', 42);
    await expect(placeOrder(pglite.context, 'o-2', -1)).rejects.toThrow('negative total');
    const { rows } = await pglite.db.query<{ id: string }>('SELECT id FROM orders');
    expect(rows.map((r) => r.id)).toEqual(['o-1']);
  } finally {
    await pglite.close();
  }
});
`,
    );
    const r = run(join(app, 'node_modules/.bin/vitest'), ['run', '--root', app], app, { CI: 'true' });
    ok(r, 'vitest run');
    expect(r.stdout).toMatch(/1 passed/);
  });

  it('the txkit command: migrate, outbox status --json, a relay --drain that explains a broker that is down, then one that sends', async () => {
    const txkit = join(app, 'node_modules/.bin/txkit');
    const db = ['--database-url', pgUrl as string, '--table-prefix', `${prefix}cli_`];
    expect(ok(run(txkit, ['migrate', ...db], app), 'txkit migrate')).toMatch(/migrat/i);

    // Something to relay, published by the app's own code path.
    writeFileSync(
      join(app, 'publish.mjs'),
      `import pg from 'pg';
import { Outbox, sqlOutboxStore } from 'txkit/outbox';
import { pgTransactions } from 'txkit/sql';
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
const store = sqlOutboxStore(pool, { tablePrefix: '${prefix}cli_' });
const ctx = pgTransactions(pool);
await ctx.withTransaction((tx) => new Outbox(store).publish(tx, { topic: '${topic}-cli', key: 'k', value: 'v' }));
await store.close(); await ctx.close(); await pool.end();
`,
    );
    ok(run(process.execPath, ['publish.mjs'], app, { DATABASE_URL: pgUrl as string }), 'publish.mjs');

    const status = run(txkit, ['outbox', 'status', '--json', ...db], app);
    ok(status, 'txkit outbox status --json');
    const parsed = JSON.parse(status.stdout) as { partitions: { pending: number }[] };
    expect(parsed.partitions[0]?.pending).toBe(1);

    const down = `127.0.0.1:${await freePort()}`;
    const relayId = ['--relay-id', `${prefix}cli`, '--transactional-id-prefix', `${prefix}cli`];
    const failed = run(txkit, ['relay', '--drain', '--kafka-brokers', down, '--timeout-ms', '3000', ...relayId, ...db], app, {}, 120_000);
    expect(failed.status).toBe(1);
    expect(failed.stderr).toContain(`cannot reach`);
    expect(failed.stderr).toContain(down);
    expect(failed.stdout).not.toMatch(/at .*\(.*:\d+:\d+\)/); // no stack trace on stdout

    const drained = run(txkit, ['relay', '--drain', '--kafka-brokers', brokers as string, ...relayId, ...db], app, {}, 180_000);
    ok(drained, 'txkit relay --drain');
    const after = JSON.parse(ok(run(txkit, ['outbox', 'status', '--json', ...db], app), 'status after drain')) as { partitions: { pending: number }[] };
    expect(after.partitions[0]?.pending).toBe(0);
    expect((await readCommittedWithJava(brokers as string, `${topic}-cli`)).map((r) => r.value)).toEqual(['v']);

    const usage = run(txkit, ['migrate', 'extra'], app);
    expect(usage.status).toBe(2);
  });

  it('NestJS: a service with @Transactional() and TransactionHost injected by type (tsc with decorator metadata)', () => {
    writeFileSync(
      join(app, 'src', 'nest.ts'),
      `import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import pg from 'pg';
import { TransactionHost, Transactional, TxkitModule } from 'txkit/nestjs';
import { pgTransactions } from 'txkit/sql';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
await pool.query('CREATE TABLE IF NOT EXISTS ${prefix}accounts (id text PRIMARY KEY, balance integer NOT NULL)');

@Injectable()
class Accounts {
  constructor(private readonly txHost: TransactionHost<pg.PoolClient>) {}

  @Transactional()
  async open(id: string, balance: number): Promise<void> {
    await this.txHost.handle.query('INSERT INTO ${prefix}accounts VALUES ($1, $2)', [id, balance]);
    if (balance < 0) throw new Error('negative balance');
  }

  @Transactional()
  async openBoth(a: string, b: string, balance: number): Promise<void> {
    await this.open(a, 0);
    await this.open(b, balance);
  }
}

@Module({ imports: [TxkitModule.forRoot({ context: pgTransactions(pool) })], providers: [Accounts] })
class AppModule {}

const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
const accounts = app.get(Accounts);
await accounts.open('a-1', 10);
await accounts.openBoth('a-2', 'a-3', -1).catch((err: unknown) => console.log('rolled back:', (err as Error).message));
const { rows } = await pool.query<{ id: string }>('SELECT id FROM ${prefix}accounts ORDER BY id');
console.log('accounts:', rows.map((r) => r.id).join(','));
await app.close();
await pool.end();
`,
    );
    ok(run(join(app, 'node_modules/.bin/tsc'), ['-p', '.'], app), 'tsc');
    const out = ok(run(process.execPath, ['dist/nest.js'], app, { DATABASE_URL: pgUrl as string }), 'node dist/nest.js');
    expect(out).toContain('rolled back: negative balance');
    expect(out).toContain('accounts: a-1\n');
  });
});
