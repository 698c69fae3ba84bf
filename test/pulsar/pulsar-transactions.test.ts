import assert from 'node:assert/strict';
import { afterAll, describe, it } from 'vitest';
import { TransactionStateError, TransientTransactionError } from '../../src/index.js';
import { PulsarServerError, pulsarTransactions } from '../../src/adapters/pulsar/index.js';
import type { PulsarClient, PulsarConsumer, PulsarMessage, SubscriptionType } from '../../src/adapters/pulsar/index.js';
import { partitionForKey } from '../../src/pulsar-client/routing.js';
import { rejection } from '../../src/testing/index.js';
import { service } from '../support/services.js';
import { TopicReader, createPartitionedTopic, makeClient, uniqueName, uniqueTopic, waitUntil, webServiceUrl } from './pulsar-support.js';

const serviceUrl = service('pulsar');

/** Receives until `predicate` matches a message, returning everything received on the way. */
async function receiveUntil(consumer: PulsarConsumer, predicate: (m: PulsarMessage) => boolean, max = 1_000): Promise<PulsarMessage[]> {
  const seen: PulsarMessage[] = [];
  for (let i = 0; i < max; i++) {
    const m = await consumer.receive({ timeoutMs: 30_000 });
    seen.push(m);
    if (predicate(m)) return seen;
  }
  throw new Error(`no matching message among ${max} received`);
}

const text = (m: PulsarMessage): string => m.value?.toString() ?? '<null>';

describe.skipIf(serviceUrl === undefined)('pulsar transactions on a real broker', () => {
  const url = serviceUrl ?? '';
  const closers: (() => Promise<void>)[] = [];
  const client = (): PulsarClient => {
    const c = makeClient(url);
    closers.push(() => c.close());
    return c;
  };
  const reader = async (topic: string): Promise<TopicReader> => {
    const r = await TopicReader.open(url, topic);
    closers.push(() => r.close());
    return r;
  };
  afterAll(async () => {
    for (const close of closers.reverse()) await close();
  });

  it('messages produced in an aborted transaction are never delivered; committed ones exactly once', async () => {
    const topic = uniqueTopic('visibility');
    const ctx = pulsarTransactions({ client: client() });
    const send = (tx: { handle: { send: (r: { topic: string; messages: { value: string }[] }) => Promise<unknown> } }, value: string) =>
      tx.handle.send({ topic, messages: [{ value }] });

    await ctx.withTransaction((tx) => send(tx, 'committed-1'));
    const boom = new Error('boom');
    assert.equal(await rejection(ctx.withTransaction(async (tx) => { await send(tx, 'aborted-by-error'); throw boom; })), boom);
    const manual = await ctx.begin();
    await send(manual, 'aborted-explicitly');
    await manual.abort();
    await ctx.withTransaction(async (tx) => {
      await tx.handle.send({ topic, messages: [{ value: 'committed-2' }, { value: 'committed-3' }] });
    });

    const r = await (await reader(topic)).caughtUp();
    assert.deepEqual(r.values(), ['committed-1', 'committed-2', 'committed-3']);
    await ctx.close();
  });

  for (const subscriptionType of ['Shared', 'Exclusive'] as SubscriptionType[]) {
    it(`${subscriptionType}: a message acknowledged in an aborted transaction is delivered again; acknowledged in a committed one it is not`, async () => {
      const topic = uniqueTopic(`acks-${subscriptionType.toLowerCase()}`);
      const subscription = uniqueName('sub');
      const c = client();
      const producer = await c.createProducer({ topic });
      await producer.sendAll([{ value: 'm1' }, { value: 'm2' }]);
      const consumer = await c.subscribe({ topic, subscription, subscriptionType, initialPosition: 'earliest' });
      const ctx = pulsarTransactions({ client: c });

      const m1 = await consumer.receive({ timeoutMs: 30_000 });
      assert.equal(text(m1), 'm1');
      await rejection(
        ctx.withTransaction(async (tx) => {
          await tx.handle.acknowledge(consumer, m1.messageId);
          throw new Error('abort the acknowledgement');
        }),
      );
      // The aborted acknowledgement gives m1 back (m2 may come first).
      const again = await receiveUntil(consumer, (m) => text(m) === 'm1');
      const redelivered = again[again.length - 1] as PulsarMessage;
      assert.ok(redelivered.messageId.equals(m1.messageId));

      const rest = again.filter((m) => text(m) === 'm2');
      const m2 = rest[0] ?? (await receiveUntil(consumer, (m) => text(m) === 'm2')).pop();
      assert.ok(m2 !== undefined);
      await ctx.withTransaction((tx) => tx.handle.acknowledge(consumer, [redelivered.messageId, m2.messageId]));

      // A fresh consumer of the subscription gets nothing back: the first thing it receives is a new message.
      await consumer.close();
      await producer.send({ value: 'after' });
      const fresh = await c.subscribe({ topic, subscription, subscriptionType });
      assert.equal(text(await fresh.receive({ timeoutMs: 30_000 })), 'after');
      await ctx.close();
    });
  }

  it('partitioned topics: keyed messages go to the key\'s partition, and one transaction spans partitions for produce and acknowledge', async () => {
    const input = uniqueTopic('partitioned-in');
    const output = uniqueTopic('partitioned-out');
    await createPartitionedTopic(input, 3);
    await createPartitionedTopic(output, 3);
    const c = client();
    const ctx = pulsarTransactions({ client: c });
    const keys = Array.from({ length: 12 }, (_, i) => `key-${i}`);
    const written = await ctx.withTransaction((tx) =>
      tx.handle.send({ topic: input, messages: keys.map((key) => ({ key, value: `value of ${key}`, headers: { origin: 'test' } })) }),
    );
    for (const [i, meta] of written.entries()) {
      assert.equal(meta.partition, partitionForKey(keys[i] as string, 3), `${keys[i]} is on the partition of its key`);
      assert.equal(meta.messageId.partition, meta.partition);
    }
    assert.ok(new Set(written.map((m) => m.partition)).size > 1, 'the keys spread over several partitions');

    // Consume all partitions and copy to the output in one transaction.
    const subscription = uniqueName('copy');
    const consumer = await c.subscribe({ topic: input, subscription, subscriptionType: 'Shared', initialPosition: 'earliest' });
    const received: PulsarMessage[] = [];
    for (let i = 0; i < keys.length; i++) received.push(await consumer.receive({ timeoutMs: 30_000 }));
    assert.deepEqual(received.map((m) => m.properties.origin), keys.map(() => 'test'));
    await ctx.withTransaction(async (tx) => {
      await tx.handle.send({ topic: output, messages: received.map((m) => ({ key: m.key as string, value: m.value })) });
      await tx.handle.acknowledge(consumer, received);
    });

    const out = await (await reader(output)).caughtUp();
    assert.deepEqual(out.values().sort(), keys.map((k) => `value of ${k}`).sort());
    for (const m of out.records) assert.equal(m.messageId.partition, partitionForKey(m.key as string, 3));
    await consumer.close();
    const producer = await c.createProducer({ topic: input });
    await producer.send({ key: 'late', value: 'after' });
    const fresh = await c.subscribe({ topic: input, subscription, subscriptionType: 'Shared' });
    assert.equal(text(await fresh.receive({ timeoutMs: 30_000 })), 'after', 'nothing acknowledged in the committed transaction came back');
    await ctx.close();
  });

  it('consume-transform-produce: units that fail after producing and acknowledging leave no trace; the output is the input once', async () => {
    const input = uniqueTopic('ctp-in');
    const output = uniqueTopic('ctp-out');
    const c = client();
    const producer = await c.createProducer({ topic: input });
    const inputs = Array.from({ length: 60 }, (_, i) => `item-${i}`);
    await producer.sendAll(inputs.map((value) => ({ key: value, value })));
    const consumer = await c.subscribe({ topic: input, subscription: uniqueName('ctp'), subscriptionType: 'Shared', initialPosition: 'earliest' });
    const ctx = pulsarTransactions({ client: c });

    const done = new Set<string>();
    let units = 0;
    let failedUnits = 0;
    // Bounded: every committed unit adds at least one id to `done`; aborted ones are capped.
    while (done.size < inputs.length && units < 200) {
      const batch: PulsarMessage[] = [];
      // Redeliveries of messages a committed unit already acknowledged are skipped.
      while (batch.length < 8 && done.size + batch.length < inputs.length) {
        const m = await consumer.receive({ timeoutMs: 30_000 });
        if (!done.has(m.messageId.toString()) && !batch.some((b) => b.messageId.equals(m.messageId))) batch.push(m);
      }
      units += 1;
      await ctx.withTransaction(
        async (tx) => {
          await tx.handle.send({ topic: output, messages: batch.map((m) => ({ key: m.key as string, value: `${text(m)}!` })) });
          await tx.handle.acknowledge(consumer, batch);
          // Every third unit fails once after its work is done: the rerun (a new transaction) redoes it.
          if (units % 3 === 0 && tx.attempt === 1) {
            failedUnits += 1;
            throw new TransientTransactionError('injected failure after produce and acknowledge');
          }
        },
        { retry: { initialDelayMs: 1, maxDelayMs: 5 } },
      );
      for (const m of batch) done.add(m.messageId.toString());
    }
    assert.ok(failedUnits >= 2);
    const out = await (await reader(output)).caughtUp();
    assert.deepEqual(out.values().sort(), inputs.map((v) => `${v}!`).sort(), 'each input exactly once in the output');
    await ctx.close();
  });

  it('a transaction that outlives transactionTimeoutMs is aborted by the coordinator; its commit then fails for good', async () => {
    const topic = uniqueTopic('ttl');
    const ctx = pulsarTransactions({ client: client() });
    const web = await webServiceUrl();
    let runs = 0;
    const err = await rejection(
      ctx.withTransaction(
        async (tx) => {
          runs += 1;
          await tx.handle.send({ topic, messages: [{ value: 'never visible' }] });
          const [most, least] = tx.id.slice(1, -1).split(',');
          // The coordinator forgets the transaction once it has aborted it.
          await waitUntil(
            async () => (await fetch(`${web}/admin/v3/transactions/transactionMetadata/${most}/${least}`)).status === 404,
            30_000,
            `the coordinator to time out transaction ${tx.id}`,
          );
        },
        { transactionTimeoutMs: 1_000 },
      ),
    );
    assert.ok(err instanceof PulsarServerError, `got ${String(err)}`);
    assert.equal(err.serverError, 'TransactionNotFound');
    assert.equal(err.retriable, false);
    assert.equal(runs, 1, 'an ended transaction is fatal: the unit is not rerun');
    assert.equal(err.abortError, undefined, 'nothing left to abort: the coordinator already did');
    const r = await (await reader(topic)).caughtUp();
    assert.deepEqual(r.values(), []);
    await ctx.close();
  });

  it('acknowledging a message another open transaction acknowledged is a TransactionConflict, which is fatal', async () => {
    const topic = uniqueTopic('conflict');
    const c = client();
    await (await c.createProducer({ topic })).send({ value: 'contended' });
    const consumer = await c.subscribe({ topic, subscription: uniqueName('sub'), subscriptionType: 'Shared', initialPosition: 'earliest' });
    const m = await consumer.receive({ timeoutMs: 30_000 });
    const ctx = pulsarTransactions({ client: c });
    const first = await ctx.begin();
    await first.handle.acknowledge(consumer, m);
    const second = await ctx.begin();
    const err = await rejection(second.handle.acknowledge(consumer, m));
    assert.ok(err instanceof PulsarServerError && err.serverError === 'TransactionConflict', `got ${String(err)}`);
    assert.equal(err.retriable, false);
    // The failed acknowledgement keeps the second transaction from committing.
    assert.equal(await rejection(second.commit()), err);
    assert.equal(second.state, 'aborted');
    await first.commit();
    await ctx.close();
  });

  it('a handle used after its transaction ended is refused with TransactionStateError', async () => {
    const topic = uniqueTopic('ended');
    const ctx = pulsarTransactions({ client: client() });
    const tx = await ctx.begin();
    await tx.handle.send({ topic, messages: [{ value: 'x' }] });
    await tx.commit();
    const err = await rejection(tx.handle.send({ topic, messages: [{ value: 'late' }] }));
    assert.ok(err instanceof TransactionStateError && err.code === 'HANDLE_ENDED', `got ${String(err)}`);
    await ctx.close();
  });
});
