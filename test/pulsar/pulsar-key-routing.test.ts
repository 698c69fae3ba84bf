// Key routing of partitioned topics against the official Java client: a Java producer
// with the default router (and one with HashingScheme.Murmur3_32Hash) sends keyed
// messages and reports each key's partition; txkit's producer, with the matching
// hashingScheme, must put every key on the same partition.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { ConfigError } from '../../src/index.js';
import { PulsarClient, pulsarTransactions } from '../../src/adapters/pulsar/index.js';
import { javaStringHash, partitionForKey } from '../../src/pulsar-client/routing.js';
import type { HashingScheme } from '../../src/pulsar-client/routing.js';
import { runJavaWitness } from '../support/java-witness.js';
import { service } from '../support/services.js';
import { createPartitionedTopic, makeClient, uniqueTopic } from './pulsar-support.js';

const PULSAR_CLIENT = ['org.apache.pulsar:pulsar-client:4.0.7'];
const PARTITIONS = 7;

/** String keys of many shapes (ASCII, accents, CJK, astral characters as surrogate pairs, empty) and binary keys. */
const KEYS: (string | Buffer)[] = [
  '',
  'a',
  'order-1',
  'Ünïcödé-ключ',
  '注文-42',
  'emoji-😀-🚀',
  'tab\tand space',
  ...Array.from({ length: 120 }, (_, i) => `customer-${i * 7919}`),
  ...Array.from({ length: 30 }, (_, i) => `é${String.fromCodePoint(0x1f600 + i)}${i}`),
  Buffer.from([0, 1, 2, 255]),
  Buffer.from('binary key'),
  Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00]),
];

function keyFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'txkit-keys-'));
  const file = path.join(dir, 'keys.txt');
  fs.writeFileSync(file, KEYS.map((k) => (typeof k === 'string' ? `s:${k}` : `b:${k.toString('hex')}`)).join('\n') + '\n', 'utf8');
  return file;
}

/** Each key's partition as the Java client's default router (or the given scheme) picks it. */
async function javaPartitions(serviceUrl: string, topic: string, scheme?: 'JavaStringHash' | 'Murmur3_32Hash'): Promise<number[]> {
  const file = keyFile();
  try {
    const out = await runJavaWitness({
      coords: PULSAR_CLIENT,
      source: 'PulsarKeyRouting.java',
      args: [serviceUrl, topic, file, ...(scheme === undefined ? [] : [scheme])],
    });
    const partitions: number[] = [];
    for (const line of out.split('\n')) {
      const m = /^ROUTE (\d+) (-?\d+)$/.exec(line.trim());
      if (m !== null) partitions[Number(m[1])] = Number(m[2]);
    }
    assert.equal(partitions.length, KEYS.length, `the Java program reported every key:\n${out.slice(-2000)}`);
    return partitions;
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
}

describe('key hashing', () => {
  it("javaStringHash is Java's String.hashCode() over UTF-16 code units", () => {
    // Values of String.hashCode() in Java.
    assert.equal(javaStringHash(''), 0);
    assert.equal(javaStringHash('a'), 97);
    assert.equal(javaStringHash('hello'), 99162322);
    assert.equal(javaStringHash('polygenelubricants'), -2147483648);
    assert.equal(javaStringHash('😀'), 0xd83d * 31 + 0xde00);
    assert.equal(partitionForKey('polygenelubricants', 7), 0);
    assert.equal(partitionForKey(Buffer.from('hi'), 5), javaStringHash('aGk=') % 5, 'a binary key hashes as its base64 text');
  });

  it('refuses an unknown hashingScheme with ConfigError, in the producer and in the context', async () => {
    const client = new PulsarClient({ serviceUrl: 'pulsar://127.0.0.1:1' });
    try {
      for (const bad of ['murmur3', 'JavaStringHash', 42, null]) {
        await assert.rejects(
          client.createProducer({ topic: 't', hashingScheme: bad as never }),
          (err: unknown) => err instanceof ConfigError && /hashingScheme must be one of 'javaStringHash', 'murmur3_32'/.test(err.message),
        );
        assert.throws(
          () => pulsarTransactions({ serviceUrl: 'pulsar://127.0.0.1:1', hashingScheme: bad as never }),
          (err: unknown) => err instanceof ConfigError && /hashingScheme/.test(err.message),
        );
      }
    } finally {
      await client.close();
    }
  });
});

const serviceUrl = service('pulsar');

describe.skipIf(serviceUrl === undefined)('key routing agrees with the Java client', () => {
  const url = serviceUrl as string;
  // Made in beforeAll: a skipped describe still runs its body, where there is no broker to name.
  let client!: ReturnType<typeof makeClient>;
  beforeAll(() => {
    client = makeClient(url);
  });
  afterAll(() => client?.close());

  const cases: [string, 'JavaStringHash' | 'Murmur3_32Hash' | undefined, HashingScheme | undefined][] = [
    ['the default router and the default scheme (JavaStringHash)', undefined, undefined],
    ['HashingScheme.Murmur3_32Hash and hashingScheme murmur3_32', 'Murmur3_32Hash', 'murmur3_32'],
  ];
  for (const [what, javaScheme, scheme] of cases) {
    it(`every key lands on the partition a Java producer picks: ${what}`, async () => {
      const topic = uniqueTopic('routing');
      await createPartitionedTopic(topic, PARTITIONS);
      const expected = await javaPartitions(url, topic, javaScheme);
      assert.ok(new Set(expected).size === PARTITIONS, 'the keys spread over every partition');

      const producer = await client.createProducer({ topic, ...(scheme === undefined ? {} : { hashingScheme: scheme }) });
      try {
        const ids = await producer.sendAll(KEYS.map((key, i) => ({ key, value: `txkit ${i}` })));
        const wrong = KEYS.map((key, i) => ({ key, java: expected[i], txkit: ids[i]?.partition })).filter((r) => r.java !== r.txkit);
        assert.deepEqual(wrong, [], `${wrong.length} of ${KEYS.length} keys landed elsewhere than with the Java client`);
      } finally {
        await producer.close();
      }

      // The transaction context routes the same way.
      const ctx = pulsarTransactions({ client, ...(scheme === undefined ? {} : { hashingScheme: scheme }) });
      try {
        const written = await ctx.withTransaction((tx) =>
          tx.handle.send({ topic, messages: KEYS.map((key, i) => ({ key, value: `tx ${i}` })) }),
        );
        assert.deepEqual(
          written.map((m) => m.partition),
          expected,
        );
      } finally {
        await ctx.close();
      }
    });
  }
});
