// The Kafka adapter on @platformatic/kafka (pure JavaScript; a dev dependency pinned by the lockfile):
// kafkaTransactions takes its connection options with client 'platformatic'. The witnesses are
// kafkajs readers and the official Java clients (consumer, and the Java producer's own partitioner).
import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { ConfigError, TxkitError } from '../../src/core/index.js';
import { DEFAULT_KAFKA_PRODUCER_RETRY, kafkaTransactions } from '../../src/adapters/kafka/index.js';
import { retryDelayOf } from '../../src/adapters/kafka/platformatic.js';
import { murmur2 } from '../../src/adapters/kafka/kafka-partition-router.js';
import { rejection, testTransactionContext } from '../../src/testing/index.js';
import { runJavaWitness } from '../support/java-witness.js';
import { service } from '../support/services.js';
import { clientChecks, conformanceTarget, createTopics, readCommittedWithJava, uniqueName, waitUntil, suiteKafka } from './kafka-support.js';

const brokers = service('kafka');

describe('kafkaTransactions on @platformatic/kafka: options', () => {
  const connection = { clientId: 'options', bootstrapBrokers: ['127.0.0.1:9'] };

  it('connection options are taken as @platformatic/kafka, with or without client', () => {
    assert.equal(kafkaTransactions(connection, { transactionalId: 'a' }).transactionalId, 'a');
    assert.equal(kafkaTransactions(connection, { transactionalId: 'b', client: 'platformatic' }).transactionalId, 'b');
  });

  it('a client that does not fit the value passed, or an option txkit owns, is a ConfigError before any connection', () => {
    const kafkajsLike = { producer: () => ({}) };
    assert.throws(
      () => kafkaTransactions(kafkajsLike as never, { transactionalId: 'a', client: 'platformatic' } as never),
      (e: unknown) => e instanceof ConfigError && /connection options as `kafka`/.test(e.message),
    );
    assert.throws(
      () => kafkaTransactions(connection, { transactionalId: 'a', client: 'kafkajs' } as never),
      (e: unknown) => e instanceof ConfigError && /has bootstrapBrokers/.test(e.message),
    );
    assert.throws(
      () => kafkaTransactions({ bootstrapBrokers: ['127.0.0.1:9'] } as never, { transactionalId: 'a' }),
      (e: unknown) => e instanceof ConfigError && /clientId and bootstrapBrokers/.test(e.message),
    );
    assert.throws(
      () => kafkaTransactions({ beginTransaction: () => undefined } as never, { transactionalId: 'a' }),
      (e: unknown) => e instanceof ConfigError && /got a @platformatic\/kafka Producer: pass its connection options instead/.test(e.message),
    );
    assert.throws(
      () => kafkaTransactions(connection, { transactionalId: 'a', producer: { idempotent: false } }),
      (e: unknown) => e instanceof ConfigError && /idempotent/.test(e.message),
    );
  });

  it('retries back off from 2 ms, and from 1 ms after CONCURRENT_TRANSACTIONS (the previous commit\'s markers are often written within a millisecond)', async () => {
    const { ProtocolError, ResponseError, NetworkError } = await import('@platformatic/kafka');
    const delay = retryDelayOf({ ...DEFAULT_KAFKA_PRODUCER_RETRY });
    const concurrent = new ResponseError(24, 5, { '/results/0/partitions/0': [51, null] }, {});
    assert.deepEqual([1, 2, 3, 11].map((attempt) => delay(undefined, 'addPartitionsToTransaction', attempt, 13, concurrent)), [1, 2, 4, 1000]);
    assert.deepEqual([1, 2, 10, 13].map((attempt) => delay(undefined, 'produce', attempt, 13, new NetworkError('closed'))), [2, 4, 1000, 1000]);
    assert.equal(delay(undefined, 'produce', 1, 13, new ProtocolError(6)), 2, 'NOT_LEADER_OR_FOLLOWER waits the policy\'s first retry');
  });

  it('a producer option txkit owns is refused at the first transaction with what to use instead', async () => {
    const ctx = kafkaTransactions(connection, { transactionalId: 'owned', producer: { timeout: 1000 } });
    const err = await rejection(ctx.withTransaction(async () => undefined, { retry: false }));
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.match(err.message, /producer\.timeout is set by txkit; use transactionalId, producer\.transactionTimeout/);
    await ctx.close();
  });
});

describe.skipIf(brokers === undefined)('kafka adapter on @platformatic/kafka', () => {
  if (brokers === undefined) return;
  const connection = (clientId = uniqueName('plt')) => ({ clientId, bootstrapBrokers: brokers.split(',') });
  const { kafka, admin, closers } = suiteKafka(brokers, 'txkit-platformatic-tests');
  const context = (transactionalId = uniqueName('plt')) => {
    const ctx = kafkaTransactions(connection(), { transactionalId });
    closers.push(() => ctx.close());
    return ctx;
  };


  testTransactionContext({
    name: 'kafka (@platformatic/kafka)',
    test: { describe, it },
    capabilities: { savepoints: false, concurrentTransactions: false },
    make: () => conformanceTarget(kafka, admin, (transactionalId) => kafkaTransactions(connection(), { transactionalId }), { warm: true }),
  });

  it('aborted messages are invisible to read_committed (kafkajs and Java) and visible to read_uncommitted', () =>
    clientChecks.abortedInvisible(kafka, admin, () => context(), (r) => closers.push(() => r.close())));

  // The successor's InitProducerId must ask for "a new producer" (-1/-1), or the coordinator refuses it as fenced.
  it('zombie fencing: a new context of the same id takes over, the old one gets FencedError and its transaction stays invisible', () =>
    clientChecks.zombieFenced(kafka, admin, (id) => context(id)));

  it('keys land on the partition a default Java producer picks (the Java client computes it), not the library default', async () => {
    const t = uniqueName('plt-keys');
    await createTopics(admin, [t], 3);
    const keys = Array.from({ length: 60 }, (_, i) => `order-${i}`);
    const ctx = context();
    await ctx.withTransaction((tx) => tx.handle.send({ topic: t, messages: keys.map((key) => ({ key, value: key })) }));
    const javaSays = new Map(
      (await runJavaWitness({ coords: ['org.apache.kafka:kafka-clients:3.9.1'], source: 'KafkaKeyPartition.java', args: ['3', ...keys] }))
        .trim()
        .split('\n')
        .map((line) => line.split('\t') as [string, string])
        .map(([key, partition]) => [key, Number(partition)]),
    );
    const landed = await readCommittedWithJava(brokers, t);
    assert.equal(landed.length, keys.length);
    for (const r of landed) assert.equal(r.partition, javaSays.get(r.key), `key ${r.key}`);
    // The library's own default keeps 32 bits of the hash: it would have put some of these keys elsewhere.
    const libraryDefault = keys.filter((key) => (murmur2(key) >>> 0) % 3 !== javaSays.get(key));
    assert.ok(libraryDefault.length > 0, 'the keys include some the library default routes elsewhere');
  });

  it('a pool of 4 producers runs 20 concurrent transactions; each commits once', async () => {
    const t = uniqueName('plt-pool');
    await createTopics(admin, [t], 2);
    const ctx = kafkaTransactions(connection(), { transactionalIdPrefix: uniqueName('plt-pool'), poolSize: 4 });
    closers.push(() => ctx.close());
    const ids = new Set<string>();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        ctx.withTransaction(async (tx) => {
          ids.add(tx.handle.transactionalId);
          await tx.handle.send({ topic: t, messages: [{ key: `k${i}`, value: `v${i}` }] });
        }),
      ),
    );
    assert.equal(ids.size, 4);
    const values = (await readCommittedWithJava(brokers, t)).map((r) => r.value).sort();
    assert.deepEqual(values, Array.from({ length: 20 }, (_, i) => `v${i}`).sort());
  });

  it('sendOffsets by group id commits the offsets with the transaction, and an abort leaves them as they were', async () => {
    const t = uniqueName('plt-offsets');
    const group = uniqueName('plt-offsets-group');
    await createTopics(admin, [t], 2);
    const ctx = context();
    await ctx.withTransaction((tx) =>
      tx.handle.sendOffsets({ consumerGroupId: group, topics: [{ topic: t, partitions: [{ partition: 0, offset: '5' }, { partition: 1, offset: '7' }] }] }),
    );
    await rejection(
      ctx.withTransaction(async (tx) => {
        await tx.handle.sendOffsets({ consumerGroupId: group, topics: [{ topic: t, partitions: [{ partition: 0, offset: '9' }] }] });
        throw new Error('abort');
      }),
    );
    const committed = async () => {
      const [topic] = await admin.fetchOffsets({ groupId: group, topics: [t] });
      return Object.fromEntries((topic?.partitions ?? []).map((p) => [p.partition, p.offset]));
    };
    await waitUntil(async () => JSON.stringify(await committed()) === JSON.stringify({ 0: '5', 1: '7' }), 10_000, 'the committed offsets 5 and 7');
  });

  it('concurrent calls inside one transaction (sends to several partitions and offsets of two groups) all commit', async () => {
    const t = uniqueName('plt-concurrent');
    const groups = [uniqueName('plt-g1'), uniqueName('plt-g2')];
    await createTopics(admin, [t], 4);
    const ctx = context();
    await ctx.withTransaction(async (tx) => {
      await Promise.all([
        ...[0, 1, 2, 3].map((partition) => tx.handle.send({ topic: t, messages: [{ partition, value: `p${partition}` }] })),
        ...groups.map((groupId, i) =>
          tx.handle.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: t, partitions: [{ partition: 0, offset: String(10 + i) }, { partition: 1, offset: '3' }] }] }),
        ),
      ]);
    });
    assert.deepEqual((await readCommittedWithJava(brokers, t)).map((r) => `${r.partition}:${r.value}`).sort(), ['0:p0', '1:p1', '2:p2', '3:p3']);
    for (const [i, groupId] of groups.entries()) {
      await waitUntil(async () => {
        const [topic] = await admin.fetchOffsets({ groupId, topics: [t] });
        const got = Object.fromEntries((topic?.partitions ?? []).map((p) => [p.partition, p.offset]));
        return got[0] === String(10 + i) && got[1] === '3';
      }, 10_000, `the offsets of ${groupId}`);
    }
  });

  it('group-generation fencing: offsets sent with a member whose partitions moved are refused (ILLEGAL_GENERATION), not retried, and its output stays invisible', async () => {
    const { Consumer } = await import('@platformatic/kafka');
    const t = uniqueName('plt-generation');
    const out = uniqueName('plt-generation-out');
    const groupId = uniqueName('plt-generation-group');
    await createTopics(admin, [t], 2);
    await createTopics(admin, [out]);
    const member = (clientId: string) =>
      new Consumer({ clientId, groupId, bootstrapBrokers: brokers.split(','), sessionTimeout: 10_000, heartbeatInterval: 500, rebalanceTimeout: 10_000 });
    const first = member(uniqueName('plt-member-a'));
    closers.push(() => first.close());
    const firstStream = await first.consume({ topics: [t], mode: 'earliest' });
    closers.push(() => firstStream.close());
    // The member as a stalled instance last saw itself: the generation it joined in.
    const stalled = { groupId: first.groupId, generationId: first.generationId, memberId: first.memberId, coordinatorId: first.coordinatorId };
    const second = member(uniqueName('plt-member-b'));
    closers.push(() => second.close());
    const secondStream = await second.consume({ topics: [t], mode: 'earliest' });
    closers.push(() => secondStream.close());
    await waitUntil(() => first.generationId > stalled.generationId, 30_000, 'the rebalance after the second member joined');
    const ctx = context();
    let attempts = 0;
    const err = await rejection(
      ctx.withTransaction(async (tx) => {
        attempts += 1;
        await tx.handle.send({ topic: out, messages: [{ value: 'from the stalled member' }] });
        await tx.handle.sendOffsets({ consumerGroupId: groupId, consumer: stalled, topics: [{ topic: t, partitions: [{ partition: 0, offset: '3' }] }] });
      }),
    );
    assert.ok(err instanceof TxkitError && err.code === 'ILLEGAL_GENERATION', `expected ILLEGAL_GENERATION, got ${String(err)}`);
    assert.equal(attempts, 1, 'a stale generation is not rerun: only the consumer rejoining can help');
    // The same context commits with the member's current generation.
    await ctx.withTransaction(async (tx) => {
      await tx.handle.send({ topic: out, messages: [{ value: 'from the current member' }] });
      await tx.handle.sendOffsets({ consumerGroupId: '', consumer: first, topics: [{ topic: t, partitions: [{ partition: 0, offset: '4' }] }] });
    });
    assert.deepEqual((await readCommittedWithJava(brokers, out)).map((r) => r.value), ['from the current member']);
    await waitUntil(async () => {
      const [topic] = await admin.fetchOffsets({ groupId, topics: [t] });
      return topic?.partitions.find((p) => p.partition === 0)?.offset === '4';
    }, 10_000, 'the committed offset 4 of partition 0');
  });

  it('a topic that cannot exist is a typed error that is not retried', async () => {
    const ctx = context();
    let attempts = 0;
    const err = await rejection(
      ctx.withTransaction(async (tx) => {
        attempts += 1;
        await tx.handle.send({ topic: 'bad topic name!', messages: [{ value: 'x' }] });
      }),
    );
    assert.ok(err instanceof TxkitError, `expected a TxkitError, got ${String(err)}`);
    assert.equal(attempts, 1);
  });

  it('transactionalConsumer with a kafkajs consumer and a @platformatic/kafka context copies a topic exactly once', () =>
    clientChecks.consumerCopies(kafka, admin, kafka, context(), (close) => closers.push(close)));
});
