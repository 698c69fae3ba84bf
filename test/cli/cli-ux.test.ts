/**
 * How `txkit` explains itself: usage errors and their exit code, --version,
 * each command's --help, the cause chain and hints of a failure (database
 * out of reach, tables not migrated, a driver not installed, a broker out of
 * reach), and the progress of `relay --drain` when standard error is not a
 * terminal.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import knexFactory from 'knex';
import { describe, expect, it } from 'vitest';
import { knexTransactions } from '../../src/adapters/sql/index.js';
import { COMMANDS, ExitCode, OPTIONS, USAGE, helpOf, parseCli } from '../../src/cli/cli-config.js';
import { describeFailure, hintFor } from '../../src/cli/explain.js';
import { DrainProgress } from '../../src/cli/progress.js';
import { AttemptLog, kafkaClientRetry, reportingSink } from '../../src/cli/relay.js';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import { TransientTransactionError } from '../../src/core/index.js';
import { MemoryOutboxStore, Outbox, OutboxRelay, memorySink, sqlOutboxStore } from '../../src/outbox/index.js';
import { service } from '../support/services.js';
import { run } from './cli-support.js';

const root = new URL('../..', import.meta.url).pathname;
const pg = service('postgres');
/** A port nothing listens on. */
const NOWHERE = '127.0.0.1:1';
const freshPrefix = (): string => `ux_${randomBytes(4).toString('hex')}_`;
const context = { databaseUrl: 'postgres://app@db.internal/shop', tablePrefix: 'txkit_', kafkaBrokers: ['kafka-1:9092'] };

/** Drops the outbox tables of `prefix` that a test made. */
async function dropTables(prefix: string): Promise<void> {
  const knex = knexFactory({ client: 'pg', connection: pg as string, pool: { min: 0, max: 1 } });
  try {
    for (const table of Object.values(sqlOutboxStore(knex, { tablePrefix: prefix }).tables)) await knex.schema.dropTableIfExists(table);
  } finally {
    await knex.destroy();
  }
}

/** `txkit <args>` as a child process from the sources: its exit code and what it wrote to standard output and standard error. */
function spawnCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/outbox/relay-process.ts', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('txkit usage errors', () => {
  it('an unknown command exits with the usage code, naming the commands', async () => {
    const { code, out, err } = await run(['bogus']);
    expect(code).toBe(ExitCode.USAGE);
    expect(out).toEqual([]);
    expect(err).toMatch(/^txkit: unknown command 'bogus': the commands are migrate, outbox status, outbox add-relay, outbox remove-relay, relay\n/);
    expect(err).toContain('txkit relay ');
    const outbox = await run(['outbox']);
    expect(outbox.code).toBe(ExitCode.USAGE);
    expect(outbox.err).toMatch(/^txkit: 'outbox' needs a subcommand: status, add-relay, remove-relay/);
  });

  it('an extra argument is refused, not ignored', async () => {
    const { code, out, err } = await run(['migrate', 'extra', '--database-url', 'sqlite:///nowhere/never.db']);
    expect(code).toBe(ExitCode.USAGE);
    expect(out).toEqual([]);
    expect(err).toMatch(/^txkit: unexpected argument 'extra': txkit migrate takes options only\n\nUsage:\n {2}txkit migrate \[--database-url URL\]/);
    expect((await run(['outbox', 'status', 'now', 'please'])).err).toMatch(/unexpected arguments 'now' 'please'/);
  });

  it('an unknown option, or one the command does not take, is refused', async () => {
    const unknown = await run(['migrate', '--bogus']);
    expect(unknown.code).toBe(ExitCode.USAGE);
    expect(unknown.err).toMatch(/^txkit: unknown option '--bogus'\n\nUsage:\n {2}txkit migrate /);
    const other = await run(['migrate', '--drain']);
    expect(other.code).toBe(ExitCode.USAGE);
    expect(other.err).toMatch(/^txkit: txkit migrate does not take --drain: see txkit migrate --help/);
    const missing = await run(['relay', '--timeout-ms']);
    expect(missing.code).toBe(ExitCode.USAGE);
    expect(missing.err).toMatch(/^txkit: option '--timeout-ms' needs a value/);
    const bad = await run(['relay', '--timeout-ms', '0', '--kafka-brokers', NOWHERE]);
    expect(bad.code).toBe(ExitCode.USAGE);
    expect(bad.err).toMatch(/--timeout-ms must be a positive integer, got '0'/);
  });

  it('a database URL that does not parse is a usage error naming the shape it needs, the password masked', async () => {
    const { code, err } = await run(['migrate', '--database-url', 'postgres://app:secret@db:notaport/shop']);
    expect(code).toBe(ExitCode.USAGE);
    expect(err).toMatch(/^txkit migrate failed \[CONFIG\]: invalid database URL 'postgres:\/\/\*\*\*@db:notaport\/shop': use postgres:\/\/user:password@host:5432\/database/);
    expect(err).not.toContain('secret');
  });

  it('a missing broker is a usage error too, reported before anything is opened', async () => {
    const { code, err } = await run(['relay', '--database-url', 'sqlite:///nowhere/never.db']);
    expect(code).toBe(ExitCode.USAGE);
    expect(err).toBe('txkit relay failed [CONFIG]: relay needs a broker: pass --kafka-brokers host:port or set KAFKA_BROKERS\n');
  });

  it('no command prints the usage on standard error with the usage code; help prints it on standard output', async () => {
    const none = await run([]);
    expect(none.code).toBe(ExitCode.USAGE);
    expect(none.out).toEqual([]);
    expect(none.err).toBe(`${USAGE}\n`);
    for (const args of [['--help'], ['-h'], ['help']]) {
      const help = await run(args);
      expect(help.code).toBe(ExitCode.OK);
      expect(help.out).toEqual([USAGE]);
    }
  });
});

describe('txkit --version and --help', () => {
  it('--version prints the version of package.json', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(await run(['--version'])).toEqual({ code: ExitCode.OK, out: [version], err: '' });
  });

  it('each command has a --help listing every option it takes, and takes every option its help lists', async () => {
    for (const command of COMMANDS) {
      const words = command.name.split(' ');
      for (const args of [
        [...words, '--help'],
        ['help', ...words],
      ]) {
        const { code, out, err } = await run(args);
        expect(code, args.join(' ')).toBe(ExitCode.OK);
        expect(err).toBe('');
        expect(out).toEqual([helpOf(command)]);
      }
      const help = helpOf(command);
      for (const name of Object.keys(OPTIONS)) {
        const value = 'arg' in OPTIONS[name as keyof typeof OPTIONS] ? ['1'] : [];
        const listed = new RegExp(`^ +(-\\w, )?--${name}\\b`, 'm').test(help);
        const taken = (): unknown => parseCli([...words, `--${name}`, ...value], {});
        if (listed) expect(taken, `${command.name} --${name}`).not.toThrow(/does not take/);
        else expect(taken, `${command.name} --${name}`).toThrow(`txkit ${command.name} does not take --${name}`);
      }
    }
    const relay = helpOf(COMMANDS.find((c) => c.name === 'relay') as (typeof COMMANDS)[number]);
    for (const option of ['--table-prefix P', '--partitions N', '--timeout-ms N', '--kafka-brokers H:P,...', '--drain']) expect(relay).toContain(option);
  });

  it('the usage names every option the command parses', () => {
    for (const name of Object.keys(OPTIONS)) expect(USAGE, `--${name}`).toMatch(new RegExp(`--${name}\\b`));
    expect(USAGE).toMatch(/Exit codes: 0 done, 1 the command failed, 2 wrong command line or configuration/);
  });
});

describe.skipIf(pg === undefined)('txkit failures on PostgreSQL: the cause and what to do', () => {
  it('a database nothing listens on: standard output stays clean, standard error has the error and the hint', async () => {
    const url = `postgres://postgres@${NOWHERE}/test`;
    const child = await spawnCli(['outbox', 'status', '--json', '--database-url', url]);
    expect(child.code).toBe(ExitCode.FAILURE);
    expect(child.stdout).toBe('');
    expect(child.stderr).toMatch(/^txkit outbox status failed: connect ECONNREFUSED 127\.0\.0\.1:1$/m);
    expect(child.stderr).toMatch(/^hint: cannot reach the database at 127\.0\.0\.1:1: check --database-url/m);
    expect(child.stderr).not.toMatch(/^\s+at /m);

    const inProcess = await run(['migrate', '--database-url', url]);
    expect(inProcess.code).toBe(ExitCode.FAILURE);
    expect(inProcess.out).toEqual([]);
    // knex's own log goes to standard error, without its stack trace.
    expect(inProcess.err).toMatch(/^knex: Acquire connection error: Error: connect ECONNREFUSED 127\.0\.0\.1:1$/m);
    expect(inProcess.err).toMatch(/^hint: cannot reach the database at 127\.0\.0\.1:1/m);
  });

  it('tables not migrated: the SQL error and the hint to run migrate with the same prefix', async () => {
    const prefix = freshPrefix();
    for (const args of [
      ['outbox', 'status'],
      ['relay', '--drain', '--kafka-brokers', NOWHERE],
    ]) {
      const { code, out, err } = await run([...args, '--database-url', pg as string, '--table-prefix', prefix]);
      expect(code, args.join(' ')).toBe(ExitCode.FAILURE);
      expect(out).toEqual([]);
      expect(err).toMatch(new RegExp(`relation "${prefix}outbox_partitions" does not exist`));
      expect(err).toContain(`hint: the outbox tables with prefix '${prefix}' are not there: run \`txkit migrate\` first (with the same --table-prefix ${prefix} and database)`);
    }
  });

  it('relay --drain to a broker nothing listens on: each attempt on a line, then the causes and the hint, within --timeout-ms', async () => {
    const prefix = freshPrefix();
    expect((await run(['migrate', '--database-url', pg as string, '--table-prefix', prefix])).code).toBe(ExitCode.OK);
    const knex = knexFactory({ client: 'pg', connection: pg as string, pool: { min: 0, max: 2 } });
    const store = sqlOutboxStore(knex, { tablePrefix: prefix });
    try {
      await knexTransactions(knex).withTransaction((tx) => new Outbox(store).publish(tx, { topic: 'ux', key: 'k', value: 'v' }));
    } finally {
      await store.close();
      await knex.destroy();
    }
    const started = Date.now();
    let ran: Awaited<ReturnType<typeof run>>;
    try {
      ran = await run(['relay', '--drain', '--database-url', pg as string, '--table-prefix', prefix, '--kafka-brokers', NOWHERE, '--timeout-ms', '1000']);
    } finally {
      await dropTables(prefix);
    }
    const { code, out, err } = ran;
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(code).toBe(ExitCode.FAILURE);
    expect(out).toEqual([]);
    // Not a terminal: plain lines, no bar redrawn in place, no line twice in a row.
    expect(err).not.toContain('\r');
    expect(err).not.toMatch(/\[[#.]+\]/);
    const lines = err.trimEnd().split('\n');
    expect(lines.filter((l, i) => l === lines[i - 1])).toEqual([]);
    expect(lines[0]).toBe('relaying 1 pending record(s)');
    expect(lines[1]).toBe('relay: partition 0, attempt 1 failed: Connection error: connect ECONNREFUSED 127.0.0.1:1');
    expect(err).toMatch(/^txkit relay failed \[RETRY_DEADLINE\]: gave up retrying the kafka transaction after \d+ attempt\(s\) .*retry\.deadlineMs=1000/m);
    expect(err).toMatch(/^ {2}caused by: Connection error: connect ECONNREFUSED 127\.0\.0\.1:1$/m);
    expect(lines.at(-1)).toBe('hint: cannot reach broker at 127.0.0.1:1: check --kafka-brokers (or KAFKA_BROKERS) and that the broker runs and listens there');
  }, 30_000);
});

describe('txkit hints', () => {
  it('a driver that is not installed: install it, named as a package (ESM import, require, and knex wrapping it)', async () => {
    const esm = await import('txkit-no-such-driver' as string).catch((e: unknown) => e);
    expect(hintFor(esm, context)).toBe('install txkit-no-such-driver: npm install txkit-no-such-driver (txkit loads it only for the commands that need it)');
    let required: unknown;
    try {
      createRequire(import.meta.url)('@txkit-no-such/driver/sub');
    } catch (e) {
      required = e;
    }
    expect(hintFor(required, context)).toMatch(/^install @txkit-no-such\/driver: npm install @txkit-no-such\/driver /);
    // knex's own words when the client's driver is missing: the require stack stays out of the report.
    const knex = new Error(`Knex: run\n$ npm install pg --save\n${(required as Error).message.replace('@txkit-no-such/driver/sub', 'pg')}`);
    const report = describeFailure(['migrate'], knex, context);
    expect(report).toMatch(/^txkit migrate failed: Knex: run \$ npm install pg --save Cannot find module 'pg'\nhint: install pg: npm install pg /);
    expect(report).not.toContain('Require stack');
    // A file of an installed package is not a package to install.
    expect(hintFor(Object.assign(new Error("Cannot find module '/srv/app/dist/x.js'"), { code: 'MODULE_NOT_FOUND' }), context)).toBeUndefined();
  });

  it('each cause on a line of its own, once; the database and broker hints name the address', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:5432'), { code: 'ECONNREFUSED' });
    const wrapped = new Error('select 1 - connect ECONNREFUSED 10.0.0.5:5432', { cause: new Error('pool', { cause: refused }) });
    expect(describeFailure(['outbox', 'status'], wrapped, context)).toBe(
      'txkit outbox status failed: select 1 - connect ECONNREFUSED 10.0.0.5:5432\n' +
        '  caused by: pool\n' +
        '  caused by: connect ECONNREFUSED 10.0.0.5:5432\n' +
        'hint: cannot reach the database at db.internal:5432: check --database-url (or DATABASE_URL) and that the database runs and accepts connections there\n',
    );
    const connection = Object.assign(new Error('Connection timeout'), { name: 'KafkaJSConnectionError', broker: 'kafka-2:9092' });
    expect(hintFor(new Error('begin failed', { cause: connection }), context)).toMatch(/^cannot reach broker at kafka-2:9092: /);
    expect(hintFor(new Error('unrelated'), context)).toBeUndefined();
  });

  it('@platformatic/kafka errors (the relay with --kafka-client platformatic) get the broker hints too', async () => {
    const { MultipleErrors, NetworkError } = await import('@platformatic/kafka');
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED', address: '127.0.0.1', port: 9 });
    const lookup = new MultipleErrors('findCoordinator failed 3 times.', [
      new MultipleErrors('Cannot connect to any broker.', [new NetworkError('Connection to 127.0.0.1:9 failed.', { cause: refused })]),
    ]);
    expect(hintFor(new Error('begin failed', { cause: lookup }), context)).toMatch(/^cannot reach broker at /);
  });
});

describe('relay --drain progress', () => {
  it('not on a terminal: a line when the count moved, at most one per interval, never the same twice', () => {
    let text = '';
    let now = 0;
    const progress = new DrainProgress({ err: (t) => void (text += t), isTTY: false }, 10, { lineEveryMs: 5000, now: () => now });
    for (let i = 0; i < 40; i++) {
      now += 250;
      progress.update(0);
    }
    progress.update(3);
    now += 1000;
    progress.update(4);
    now += 5000;
    progress.update(4);
    progress.update(4);
    progress.note('relay: partition 0, attempt 1 failed: boom');
    progress.finish(10);
    expect(text).toBe('relaying 10 pending record(s)\n3/10 relayed (30%)\n4/10 relayed (40%)\nrelay: partition 0, attempt 1 failed: boom\n10/10 relayed (100%)\n');
  });

  it('on a terminal: a bar redrawn in place, with notes above it', () => {
    let text = '';
    let now = 0;
    const progress = new DrainProgress({ err: (t) => void (text += t), isTTY: true }, 4, { now: () => now });
    now = 2500;
    progress.update(1);
    progress.note('relay: partition 0, attempt 1 failed: boom');
    progress.finish(4);
    expect(text).toBe(
      '\r[..............................] 0/4 relayed (0%), 0 s' +
        '\r[########......................] 1/4 relayed (25%), 2 s' +
        '\r\x1b[Krelay: partition 0, attempt 1 failed: boom\n' +
        '\r[########......................] 1/4 relayed (25%), 2 s' +
        '\r[##############################] 4/4 relayed (100%), 2 s\n',
    );
  });

  it('each failed attempt of a relay transaction is a line with the partition, the attempt and the error', async () => {
    const data = new MemoryStore();
    const store = new MemoryOutboxStore(data);
    await memoryTransactions({ store: data }).withTransaction((tx) => new Outbox(store).publish(tx, { topic: 't', key: 'k', value: 'v' }));
    let failures = 2;
    const read = store.read.bind(store);
    store.read = (...args) => (failures-- > 0 ? Promise.reject(new TransientTransactionError('the read hit a deadlock')) : read(...args));
    const broker = memoryTransactions({ store: new MemoryStore() });
    const lines: string[] = [];
    const sink = reportingSink({ ...memorySink(broker), contextFor: () => broker }, new AttemptLog((line) => void lines.push(line)));
    expect(await new OutboxRelay({ store, sink }).drain()).toBe(1);
    expect(lines).toEqual(['relay: partition 0, attempt 1 failed: the read hit a deadlock', 'relay: partition 0, attempt 2 failed: the read hit a deadlock']);
  });

  it("kafkajs' own connection retries fit in the timeout (its defaults at the default timeout)", () => {
    expect(kafkaClientRetry(120_000)).toEqual({ initialRetryTime: 300, retries: 5 });
    expect(kafkaClientRetry(1000)).toEqual({ initialRetryTime: 300, retries: 1 });
    expect(kafkaClientRetry(100)).toEqual({ initialRetryTime: 300, retries: 0 });
  });
});
