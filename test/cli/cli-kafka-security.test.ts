/**
 * `txkit relay` against a Kafka broker of its own with a TLS listener that
 * requires client certificates and a SASL/PLAIN listener (certificates made
 * here with openssl): the relay options for real clusters, each wrong
 * setting's message, hint and exit code.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKafka } from '../../scripts/services/kafka.mjs';
import type { KafkaHandle } from '../../scripts/services/kafka.mjs';
import { knexTransactions } from '../../src/adapters/sql/index.js';
import { main } from '../../src/cli/index.js';
import { parseCli } from '../../src/cli/cli-config.js';
import { Outbox, sqlOutboxStore } from '../../src/outbox/index.js';
import { readCommittedWithJava } from '../kafka/kafka-support.js';
import { makeCertificates } from '../support/certificates.js';
import type { TestCertificates } from '../support/certificates.js';
import { freePort } from '../support/ports.js';
import { service } from '../support/services.js';

// The shared broker being reachable means Java and the Kafka jars are here to start a private one.
const available = service('kafka') !== undefined;


/** The broker's PEM key store: its key, its certificate and the CA, in one file. */
function brokerKeyStore(dir: string, certs: TestCertificates): string {
  const file = join(dir, 'broker.pem');
  writeFileSync(file, [certs.serverKey, certs.serverCert, certs.ca].map((f) => readFileSync(f, 'utf8')).join(''));
  return file;
}

describe.skipIf(!available)('txkit relay to a broker with TLS (client certificates) and SASL/PLAIN listeners', () => {
  let dir: string;
  let broker: KafkaHandle;
  let certs: TestCertificates;
  let tlsAddress: string;
  let saslAddress: string;
  const lines: string[] = [];
  const io = { out: (l: string) => void lines.push(l), err: (t: string) => void lines.push(t), isTTY: false };
  const stamp = `${process.pid}-${Date.now().toString(36)}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'txkit-kafka-security-'));
    certs = makeCertificates(dir);
    const [tlsPort, saslPort] = [await freePort(), await freePort()];
    tlsAddress = `127.0.0.1:${tlsPort}`;
    saslAddress = `127.0.0.1:${saslPort}`;
    broker = await startKafka({
      stateDir: join(dir, 'state'),
      log: false,
      extraListeners: [
        { name: 'SSL', port: tlsPort, protocol: 'SSL' },
        { name: 'SASL_PLAINTEXT', port: saslPort, protocol: 'SASL_PLAINTEXT' },
      ],
      properties: {
        'listener.name.ssl.ssl.keystore.type': 'PEM',
        'listener.name.ssl.ssl.keystore.location': brokerKeyStore(dir, certs),
        'listener.name.ssl.ssl.truststore.type': 'PEM',
        'listener.name.ssl.ssl.truststore.location': certs.ca,
        'listener.name.ssl.ssl.client.auth': 'required',
        'sasl.enabled.mechanisms': 'PLAIN',
        'listener.name.sasl_plaintext.plain.sasl.jaas.config':
          'org.apache.kafka.common.security.plain.PlainLoginModule required user_relay="relay-secret";',
      },
    });
  }, 300_000);

  afterAll(async () => {
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A SQLite outbox holding `values` for `topic`. */
  async function outbox(name: string, topic: string, values: string[]): Promise<string> {
    const url = `sqlite://${join(dir, `${name}.db`)}`;
    expect(await main(['migrate', '--database-url', url], {}, io)).toBe(0);
    const db = knexFactory({ client: 'better-sqlite3', connection: { filename: join(dir, `${name}.db`) }, useNullAsDefault: true });
    const ctx = knexTransactions(db);
    await ctx.withTransaction((tx) => new Outbox(sqlOutboxStore(db)).publish(tx, values.map((value) => ({ topic, key: 'k', value }))));
    await ctx.close();
    await db.destroy();
    return url;
  }

  const relay = (url: string, name: string, args: string[], env: Record<string, string> = {}): Promise<number> => {
    lines.length = 0;
    return main(['relay', '--drain', '--database-url', url, '--relay-id', `${name}-${stamp}`, '--transactional-id-prefix', `${name}-${stamp}`, '--timeout-ms', '8000', ...args], env, io);
  };

  it('over TLS with the CA and a client certificate, the records reach the topic; the Java consumer reads them', async () => {
    const topic = `tls-${stamp}`;
    const url = await outbox('tls', topic, ['t1', 't2']);
    const code = await relay(url, 'tls', ['--kafka-brokers', tlsAddress, '--kafka-ca', certs.ca, '--kafka-cert', certs.clientCert, '--kafka-key', certs.clientKey]);
    expect(code, lines.join('\n')).toBe(0);
    expect((await readCommittedWithJava(broker.brokers, topic)).map((r) => r.value)).toEqual(['t1', 't2']);
  }, 120_000);

  it('a broker certificate signed by another CA fails with exit 1 and says to pass --kafka-ca', async () => {
    const url = await outbox('tls-bad-ca', `tls-bad-${stamp}`, ['x']);
    const code = await relay(url, 'tls-bad-ca', ['--kafka-brokers', tlsAddress, '--kafka-ca', certs.otherCa, '--kafka-cert', certs.clientCert, '--kafka-key', certs.clientKey]);
    expect(code).toBe(1);
    expect(lines.join('\n')).toMatch(/hint: the broker's TLS certificate is not trusted: pass --kafka-ca/);
  }, 120_000);

  it('over SASL/PLAIN the records reach the topic; a wrong password fails with exit 1 and a hint about the login', async () => {
    const topic = `sasl-${stamp}`;
    const url = await outbox('sasl', topic, ['s1']);
    const sasl = ['--kafka-brokers', saslAddress, '--kafka-sasl', 'plain', '--kafka-username', 'relay'];
    expect(await relay(url, 'sasl-bad', sasl, { KAFKA_SASL_PASSWORD: 'wrong' })).toBe(1);
    expect(lines.join('\n')).toMatch(/hint: the broker refused the SASL login: check --kafka-sasl/);

    const passwordFile = join(dir, 'password');
    writeFileSync(passwordFile, 'relay-secret\n');
    const code = await relay(url, 'sasl', [...sasl, '--kafka-password-file', passwordFile]);
    expect(code, lines.join('\n')).toBe(0);
    expect((await readCommittedWithJava(broker.brokers, topic)).map((r) => r.value)).toEqual(['s1']);
  }, 120_000);

  it('with --kafka-client platformatic the producers speak TLS (client certificate) and SASL/PLAIN too; the Java consumer reads the records', async () => {
    const tlsTopic = `tls-plt-${stamp}`;
    const tlsUrl = await outbox('tls-plt', tlsTopic, ['p1', 'p2']);
    const tls = ['--kafka-brokers', tlsAddress, '--kafka-ca', certs.ca, '--kafka-cert', certs.clientCert, '--kafka-key', certs.clientKey];
    let code = await relay(tlsUrl, 'tls-plt', [...tls, '--kafka-client', 'platformatic']);
    expect(code, lines.join('\n')).toBe(0);
    expect((await readCommittedWithJava(broker.brokers, tlsTopic)).map((r) => r.value)).toEqual(['p1', 'p2']);
    const saslTopic = `sasl-plt-${stamp}`;
    const saslUrl = await outbox('sasl-plt', saslTopic, ['q1']);
    code = await relay(saslUrl, 'sasl-plt', ['--kafka-brokers', saslAddress, '--kafka-sasl', 'plain', '--kafka-username', 'relay', '--kafka-client', 'platformatic'], {
      KAFKA_SASL_PASSWORD: 'relay-secret',
    });
    expect(code, lines.join('\n')).toBe(0);
    expect((await readCommittedWithJava(broker.brokers, saslTopic)).map((r) => r.value)).toEqual(['q1']);
  }, 120_000);

  it('plaintext to the TLS listener gets a hint that names TLS and SASL', async () => {
    const url = await outbox('mismatch', `mismatch-${stamp}`, ['m']);
    expect(await relay(url, 'mismatch', ['--kafka-brokers', tlsAddress])).toBe(1);
    expect(lines.join('\n')).toMatch(/hint: cannot reach broker at 127\.0\.0\.1:\d+: .*a listener that closes plaintext connections takes TLS or SASL: pass --kafka-tls or --kafka-ca, or --kafka-sasl/);
  }, 120_000);
});

describe('relay security options on the command line', () => {
  const parse = (args: string[], env: NodeJS.ProcessEnv = {}): ReturnType<typeof parseCli> => parseCli(['relay', '--kafka-brokers', 'b:9092', ...args], env);

  it('read TLS files and SASL settings from options or the environment', () => {
    expect(parse(['--kafka-tls']).kafkaTls).toEqual({});
    expect(parse(['--kafka-ca', 'ca.pem']).kafkaTls).toEqual({ ca: 'ca.pem' });
    expect(parse([], { KAFKA_CERT_FILE: 'c.pem', KAFKA_KEY_FILE: 'k.pem' }).kafkaTls).toEqual({ cert: 'c.pem', key: 'k.pem' });
    expect(parse([]).kafkaTls).toBeUndefined();
    expect(parse(['--kafka-sasl', 'SCRAM-SHA-512', '--kafka-username', 'u'], { KAFKA_SASL_PASSWORD: 'p' }).kafkaSasl).toEqual({ mechanism: 'scram-sha-512', username: 'u', password: 'p' });
    expect(parse([], { KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD_FILE: '/run/secret' }).kafkaSasl).toEqual({
      mechanism: 'plain',
      username: 'u',
      passwordFile: '/run/secret',
    });
  });

  it.each([
    [['--kafka-cert', 'c.pem'], {}, /needs both --kafka-cert and --kafka-key; got only --kafka-cert/],
    [['--kafka-sasl', 'gssapi', '--kafka-username', 'u'], { KAFKA_SASL_PASSWORD: 'p' }, /--kafka-sasl must be one of plain, scram-sha-256, scram-sha-512, got 'gssapi'/],
    [['--kafka-sasl', 'plain'], { KAFKA_SASL_PASSWORD: 'p' }, /--kafka-sasl plain needs --kafka-username/],
    [['--kafka-sasl', 'plain', '--kafka-username', 'u'], {}, /needs a password: set KAFKA_SASL_PASSWORD, or pass --kafka-password-file FILE/],
    [['--kafka-username', 'u'], {}, /need --kafka-sasl MECHANISM/],
    [['--kafka-client', 'rdkafka'], {}, /--kafka-client must be one of kafkajs, platformatic, got 'rdkafka'/],
  ] as const)('refuses %j with a usage error', async (args, env, message) => {
    const lines: string[] = [];
    const io = { out: (l: string) => void lines.push(l), err: (t: string) => void lines.push(t), isTTY: false };
    expect(await main(['relay', '--database-url', 'sqlite:///nowhere.db', '--kafka-brokers', 'b:9092', ...args], env, io)).toBe(2);
    expect(lines.join('\n')).toMatch(message);
  });

  it('a file that cannot be read is named', async () => {
    const lines: string[] = [];
    const io = { out: (l: string) => void lines.push(l), err: (t: string) => void lines.push(t), isTTY: false };
    const dir = mkdtempSync(join(tmpdir(), 'txkit-cli-tls-'));
    try {
      const url = `sqlite://${join(dir, 'o.db')}`;
      expect(await main(['migrate', '--database-url', url], {}, io)).toBe(0);
      expect(await main(['relay', '--drain', '--database-url', url, '--kafka-brokers', 'b:9092', '--kafka-ca', join(dir, 'missing.pem')], {}, io)).toBe(2);
      expect(lines.join('\n')).toMatch(/cannot read --kafka-ca .*missing\.pem: ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
