// Non-durable readers positioned by message id, on the real broker.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { ConfigError } from '../../src/index.js';
import { PulsarMessageId } from '../../src/adapters/pulsar/index.js';
import type { PulsarClient } from '../../src/adapters/pulsar/index.js';
import { rejection } from '../../src/testing/index.js';
import { service } from '../support/services.js';
import { createPartitionedTopic, makeClient, uniqueName, uniqueTopic } from './pulsar-support.js';

const url = service('pulsar');

describe('PulsarMessageId.compare', () => {
  it('orders by ledger, entry, then batch index, a whole entry before its messages', () => {
    const id = (l: bigint, e: bigint, b = -1): PulsarMessageId => new PulsarMessageId('t', l, e, -1, b, b < 0 ? 0 : 10);
    const sorted = [id(3n, 9n), id(4n, 0n), id(4n, 0n, 0), id(4n, 0n, 7), id(4n, 1n), id(12n, 0n)];
    const shuffled = [sorted[3], sorted[0], sorted[5], sorted[2], sorted[4], sorted[1]] as PulsarMessageId[];
    assert.deepEqual(shuffled.sort(PulsarMessageId.compare).map(String), sorted.map(String));
    assert.equal(PulsarMessageId.compare(id(4n, 1n), id(4n, 1n)), 0);
  });
});

describe.skipIf(url === undefined)('pulsar non-durable readers', () => {
  let client: PulsarClient;
  beforeAll(() => {
    client = makeClient(url as string);
  });
  afterAll(async () => {
    await client.close();
  });

  it('a reader from a message id delivers that message and what follows, in order', async () => {
    const topic = uniqueTopic('reader');
    const producer = await client.createProducer({ topic });
    const ids: PulsarMessageId[] = [];
    for (let i = 0; i < 5; i++) ids.push(await producer.send({ value: `m${i}` }));
    await producer.close();
    const reader = await client.subscribe({ topic, subscription: uniqueName('r'), durable: false, startMessageId: ids[2] as PulsarMessageId });
    const got: string[] = [];
    for (let i = 0; i < 3; i++) got.push(String((await reader.receive({ timeoutMs: 10_000 })).value));
    assert.deepEqual(got, ['m2', 'm3', 'm4']);
    await reader.close();
    // Without a start id it reads from initialPosition.
    const fromStart = await client.subscribe({ topic, subscription: uniqueName('r'), durable: false, initialPosition: 'earliest' });
    assert.equal(String((await fromStart.receive({ timeoutMs: 10_000 })).value), 'm0');
    await fromStart.close();
  });

  it('refuses a start id on a durable subscription, on a partitioned topic, or of the wrong type, with ConfigError', async () => {
    const topic = uniqueTopic('reader-bad');
    const start = new PulsarMessageId(topic, 1n, 0n);
    await assert.rejects(() => client.subscribe({ topic, subscription: 's', startMessageId: start }), /needs durable: false/);
    await assert.rejects(
      () => client.subscribe({ topic, subscription: 's', durable: false, startMessageId: 'x' as never }),
      /startMessageId must be a PulsarMessageId/,
    );
    const partitioned = uniqueTopic('reader-parts');
    await createPartitionedTopic(partitioned, 2);
    const err = await rejection(client.subscribe({ topic: partitioned, subscription: 's', durable: false, startMessageId: start }));
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /needs one partition's topic/);
  });
});
