// No broker needed: option validation, classification, names and ids, input checks
// against a scripted broker, and that only txkit/pulsar loads the protocol dependencies.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, it } from 'vitest';
import { ConfigError, TxkitError, UnknownCommitResultError } from '../../src/index.js';
import {
  PULSAR_SERVER_ERROR_NAMES,
  PulsarClient,
  PulsarConnectionError,
  PulsarMessageId,
  PulsarServerError,
  PulsarTimeoutError,
  classifyPulsarError,
  pulsarTransactions,
} from '../../src/adapters/pulsar/index.js';
import { CommandType } from '../../src/pulsar-client/wire/commands.js';
import { fullTopicName, murmur3_32, partitionForKey, splitPartition } from '../../src/pulsar-client/topic-name.js';
import { rejection } from '../../src/testing/index.js';
import { ScriptedBroker } from './scripted-broker.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('pulsarTransactions options', () => {
  const bad: [string, () => unknown, RegExp][] = [
    ['no options', () => pulsarTransactions(undefined as never), /needs options/],
    ['neither serviceUrl nor client', () => pulsarTransactions({}), /exactly one of serviceUrl/],
    [
      'both serviceUrl and client',
      () => pulsarTransactions({ serviceUrl: 'pulsar://127.0.0.1:6650', client: new PulsarClient({ serviceUrl: 'pulsar://127.0.0.1:6650' }) }),
      /exactly one/,
    ],
    ['an http URL', () => pulsarTransactions({ serviceUrl: 'http://127.0.0.1:8080' }), /not a Pulsar service URL/],
    ['TLS options without pulsar+ssl://', () => pulsarTransactions({ serviceUrl: 'pulsar://127.0.0.1:6650', tls: { ca: 'x' } }), /tls options need a pulsar\+ssl:\/\/ serviceUrl/],
    ['a TLS client certificate without its key', () => pulsarTransactions({ serviceUrl: 'pulsar+ssl://127.0.0.1:6651', tls: { cert: 'x' } }), /needs both tls\.cert and tls\.key/],
    ['an unknown TLS option', () => pulsarTransactions({ serviceUrl: 'pulsar+ssl://127.0.0.1:6651', tls: { verifyHostname: false } as never }), /unknown tls option 'verifyHostname'/],
    ['authentication that is not one', () => pulsarTransactions({ serviceUrl: 'pulsar://127.0.0.1:6650', authentication: 'token' as never }), /authentication must come from tokenAuthentication/],
    ['a zero transaction timeout', () => pulsarTransactions({ serviceUrl: 'pulsar://127.0.0.1:6650', transactionTimeoutMs: 0 }), /transactionTimeoutMs/],
    ['a negative operation timeout', () => pulsarTransactions({ serviceUrl: 'pulsar://127.0.0.1:6650', operationTimeoutMs: -5 }), /operationTimeoutMs/],
    [
      'client options next to a shared client',
      () => pulsarTransactions({ client: new PulsarClient({ serviceUrl: 'pulsar://127.0.0.1:6650' }), operationTimeoutMs: 5 }),
      /set them on the PulsarClient/,
    ],
    ['a client that is not a PulsarClient', () => pulsarTransactions({ client: {} as never }), /needs a PulsarClient/],
  ];
  for (const [what, make, message] of bad) {
    it(`refuses ${what} with ConfigError`, () => {
      assert.throws(make, (err: unknown) => err instanceof ConfigError && message.test(err.message) && err.backend === 'pulsar');
    });
  }

  it('a bad per-call transactionTimeoutMs fails before any connection is attempted', async () => {
    // Nothing listens on port 1: a connection attempt would fail with PulsarConnectionError instead.
    const ctx = pulsarTransactions({ serviceUrl: 'pulsar://127.0.0.1:1' });
    let runs = 0;
    const err = await rejection(ctx.withTransaction(async () => void (runs += 1), { transactionTimeoutMs: -1 }));
    assert.ok(err instanceof ConfigError && /transactionTimeoutMs/.test(err.message), `got ${String(err)}`);
    assert.equal(runs, 0);
    await ctx.close();
  });

  it('an unreachable broker is a transient PulsarConnectionError', async () => {
    const ctx = pulsarTransactions({ serviceUrl: 'pulsar://127.0.0.1:1', connectionTimeoutMs: 2_000 });
    const err = await rejection(ctx.begin());
    assert.ok(err instanceof PulsarConnectionError, `got ${String(err)}`);
    assert.equal(classifyPulsarError(err), 'transient');
    await ctx.close();
  });
});

describe('pulsar error classification', () => {
  it("classifies the coordinator's errors: not found/not ready transient, conflict and ended transactions fatal", () => {
    const of = (name: string): PulsarServerError => new PulsarServerError(PULSAR_SERVER_ERROR_NAMES.indexOf(name as never), 'm', 'END_TXN');
    assert.equal(classifyPulsarError(of('TransactionCoordinatorNotFound')), 'transient');
    assert.equal(classifyPulsarError(of('ServiceNotReady')), 'transient');
    assert.equal(classifyPulsarError(of('TransactionConflict')), 'fatal');
    assert.equal(classifyPulsarError(of('InvalidTxnStatus')), 'fatal');
    assert.equal(classifyPulsarError(of('TransactionNotFound')), 'fatal');
    assert.equal(classifyPulsarError(of('NotAllowedError')), 'fatal');
    assert.equal(classifyPulsarError(new PulsarServerError(77, 'future code', 'SEND')), 'fatal');
    assert.equal(classifyPulsarError(new PulsarTimeoutError('SEND', 10)), 'transient');
    assert.equal(classifyPulsarError(new UnknownCommitResultError('?')), 'commit-unknown');
    assert.equal(classifyPulsarError(new Error('from user code')), 'fatal');
    assert.equal(classifyPulsarError('a string'), 'fatal');
  });

  it('server errors name the backend, the command and what to do', () => {
    const err = new PulsarServerError(23, 'already acked', 'ACK');
    assert.ok(err instanceof TxkitError);
    assert.equal(err.code, 'PULSAR_TRANSACTION_CONFLICT');
    assert.match(err.message, /^Pulsar broker refused ACK with TransactionConflict: already acked; /);
    assert.match(err.message, /acknowledge each message in one transaction only/);
  });
});

describe('pulsar guide', () => {
  it('docs/guides/pulsar.md lists every server error with the classification the code applies', () => {
    const guide = readFileSync(fileURLToPath(new URL('../../docs/guides/pulsar.md', import.meta.url)), 'utf8');
    PULSAR_SERVER_ERROR_NAMES.forEach((name, code) => {
      const row = new RegExp(`^\\| ${name} \\(${code}\\) \\| (transient|fatal) \\|`, 'm').exec(guide);
      assert.ok(row, `the guide has no row for ${name} (${code})`);
      const retriable = new PulsarServerError(code, '', 'X').retriable;
      assert.equal(row[1], retriable ? 'transient' : 'fatal', `${name} is ${retriable ? 'transient' : 'fatal'} in the code`);
    });
  });
});

describe('pulsar names, routing and ids', () => {
  it('expands short topic names the way the Java client does and refuses malformed ones', () => {
    assert.equal(fullTopicName('orders'), 'persistent://public/default/orders');
    assert.equal(fullTopicName('t1/ns/orders'), 'persistent://t1/ns/orders');
    assert.equal(fullTopicName('non-persistent://t1/ns/o'), 'non-persistent://t1/ns/o');
    for (const bad of ['', 'a/b', 'persistent://a/b', 'a//b/c']) assert.throws(() => fullTopicName(bad), ConfigError, bad);
    assert.deepEqual(splitPartition('persistent://p/d/t-partition-12'), { base: 'persistent://p/d/t', partition: 12 });
  });

  it('hashes keys with Murmur3 x86_32 (seed 0), as the Java client routes them', () => {
    // Reference values of MurmurHash3_x86_32 with seed 0.
    assert.equal(murmur3_32(Buffer.from('')) >>> 0, 0);
    assert.equal(murmur3_32(Buffer.from('hello')) >>> 0, 0x248bfa47);
    assert.equal(murmur3_32(Buffer.from('The quick brown fox jumps over the lazy dog')) >>> 0, 0x2e4ff723);
    assert.equal(partitionForKey('hello', 7), (0x248bfa47 & 0x7fffffff) % 7);
  });

  it('message ids round-trip through text', () => {
    const id = new PulsarMessageId('persistent://p/d/t-partition-1', 12n, 34n, 1, 5, 10);
    const back = PulsarMessageId.parse(id.topic, id.toString());
    assert.equal(id.toString(), '12:34:1:5');
    assert.ok(back.equals(id));
    assert.throws(() => PulsarMessageId.parse(id.topic, 'twelve'), ConfigError);
  });
});

describe('pulsar handle input checks (scripted broker)', () => {
  it('bad input is refused with ConfigError before anything is sent, and the transaction still commits', async () => {
    const broker = await ScriptedBroker.start();
    cleanups.push(() => broker.close());
    const ctx = pulsarTransactions({ serviceUrl: broker.url });
    cleanups.push(() => ctx.close());
    const topic = 'checked';
    await ctx.withTransaction(async (tx) => {
      const bad: unknown[] = [
        { topic, messages: [] },
        { topic: '', messages: [{ value: 'v' }] },
        { topic: 'a/b', messages: [{ value: 'v' }] },
        { topic, messages: [{ value: { not: 'bytes' } }] },
        { topic, messages: [{ value: 'v', headers: { bin: Buffer.from([0xff, 0xfe]) } }] },
      ];
      for (const request of bad) {
        const err = await rejection(tx.handle.send(request as never));
        assert.ok(err instanceof ConfigError, `expected ConfigError for ${JSON.stringify(request)}, got ${String(err)}`);
      }
      const notAConsumer = await rejection(tx.handle.acknowledge({} as never, new PulsarMessageId('t', 1n, 1n)));
      assert.ok(notAConsumer instanceof ConfigError);
      await tx.handle.send({ topic, messages: [{ key: 'k', value: 'ok', headers: { text: Buffer.from('utf-8 é') } }] });
    });
    assert.equal(broker.bodies(CommandType.SEND).length, 1, 'only the valid message was sent');
    assert.deepEqual(
      broker.bodies<{ txnAction: number }>(CommandType.END_TXN).map((e) => e.txnAction),
      [0],
      'and the transaction committed',
    );
  });
});

describe('pulsar dependency isolation', () => {
  it('protobufjs is reachable only from the pulsar subpath, not from txkit or txkit/memory', () => {
    const root = fileURLToPath(new URL('../../src/', import.meta.url));
    const reached = new Set<string>();
    const packages = new Set<string>();
    const visit = (file: string): void => {
      if (reached.has(file)) return;
      reached.add(file);
      const source = readFileSync(file, 'utf8');
      for (const match of source.matchAll(/(?:import|export)[^'"]*?from\s+'([^']+)'/g)) {
        const spec = match[1] as string;
        if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
        else packages.add(spec);
      }
    };
    visit(path.join(root, 'index.ts'));
    visit(path.join(root, 'adapters/memory/index.ts'));
    assert.ok(reached.size > 5, 'the walk followed the imports');
    assert.deepEqual(
      [...reached].map((f) => path.relative(root, f)).filter((f) => /^(adapters[/\\]pulsar|pulsar-client)[/\\]/.test(f)),
      [],
      'no pulsar module is imported by txkit or txkit/memory',
    );
    assert.ok(![...packages].some((p) => p.startsWith('protobufjs')), [...packages].join(', '));

    // And the pulsar entry does reach them (the walk would notice).
    const pulsarOnly = new Set<string>();
    reached.clear();
    packages.clear();
    visit(path.join(root, 'adapters/pulsar/index.ts'));
    for (const p of packages) pulsarOnly.add(p);
    assert.ok(pulsarOnly.has('protobufjs/light.js'));
  });
});
