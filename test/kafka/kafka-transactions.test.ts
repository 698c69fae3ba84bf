import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import { describe, it } from 'vitest';
import {
  ConfigError,
  FencedError,
  TransactionAbortedError,
  TransactionPropagationError,
  TransactionStateError,
  UnknownCommitResultError,
} from '../../src/core/index.js';
import { DEFAULT_KAFKA_PRODUCER_RETRY, kafkaTransactions } from '../../src/adapters/kafka/index.js';
import { settleKafkaProducers } from '../../src/adapters/kafka/kafka-context.js';
import type { KafkaLike, KafkaTransactionContext, KafkaTransactionsOptions, KafkaTxHandle, PlatformaticKafkaOptions } from '../../src/adapters/kafka/index.js';
import type { Transaction } from '../../src/core/index.js';
import { rejection } from '../../src/testing/index.js';
import { processState } from '../support/process-state.js';
import { service } from '../support/services.js';
import { TopicReader, clientChecks, createTopics, makeKafka, readCommittedWithJava, suiteKafka, uniqueName, waitUntil } from './kafka-support.js';
import { kafkaSource } from '../../src/outbox/kafka/kafka-source.js';

const brokers = service('kafka');

/** A context on kafkajs (a Kafka instance) or on @platformatic/kafka (its connection options). */
function contextOn(target: KafkaLike | PlatformaticKafkaOptions, options: KafkaTransactionsOptions): KafkaTransactionContext {
  return 'bootstrapBrokers' in target ? kafkaTransactions(target, options as KafkaTransactionsOptions & { client?: 'platformatic' }) : kafkaTransactions(target, options);
}

// Every case on kafkajs; those that do not reach into kafkajs itself (a spy or a lossy wrapper of its
// producer, a worker process written with it) also with the producers on @platformatic/kafka.
for (const client of ['kafkajs', 'platformatic'] as const)
describe.skipIf(brokers === undefined)(`kafka transactions on a real broker (producers on ${client})`, () => {
  const { kafka, admin, closers } = suiteKafka(brokers ?? '', 'txkit-kafka-tests');
  // The producers' client: the kafkajs instance, or @platformatic/kafka connection options (one object, as one process has).
  const producers: KafkaLike | PlatformaticKafkaOptions =
    client === 'kafkajs' ? kafka : { clientId: 'txkit-kafka-tests', bootstrapBrokers: (brokers ?? '').split(',') };
  /** Another process's client, for a restarted or successor process. */
  const otherProcess = (clientId: string): KafkaLike | PlatformaticKafkaOptions =>
    client === 'kafkajs' ? makeKafka(brokers ?? '', clientId) : { clientId, bootstrapBrokers: (brokers ?? '').split(',') };

  const topic = async (label: string, partitions = 1): Promise<string> => {
    const name = uniqueName(label);
    await createTopics(admin, [name], partitions);
    return name;
  };
  const reader = async (name: string, readUncommitted = false): Promise<TopicReader> => {
    const r = await TopicReader.open(kafka, name, { readUncommitted });
    closers.push(() => r.close());
    return r;
  };
  const context = (transactionalId = uniqueName('tx'), k: KafkaLike | PlatformaticKafkaOptions = producers) => {
    const ctx = contextOn(k, { transactionalId });
    closers.push(() => ctx.close());
    return ctx;
  };

  it('committed messages are visible; aborted ones are invisible to read_committed and visible to read_uncommitted', async () => {
    const t = await topic('visibility');
    const ctx = context();
    await ctx.withTransaction((tx) => tx.handle.send({ topic: t, messages: [{ key: 'k', value: 'committed-1' }] }));
    await rejection(
      ctx.withTransaction(async (tx) => {
        await tx.handle.sendBatch({ topicMessages: [{ topic: t, messages: [{ key: 'k', value: 'aborted-1' }, { key: 'k', value: 'aborted-2' }] }] });
        throw new Error('abort this one');
      }),
    );
    const manual = await ctx.begin();
    await manual.handle.send({ topic: t, messages: [{ value: 'aborted-3' }] });
    await manual.abort();
    await ctx.withTransaction((tx) => tx.handle.send({ topic: t, messages: [{ key: 'k', value: 'committed-2' }] }));

    const committed = await (await reader(t)).caughtUp();
    assert.deepEqual(committed.values(), ['committed-1', 'committed-2']);
    const uncommitted = await (await reader(t, true)).caughtUp();
    assert.deepEqual(uncommitted.values(), ['committed-1', 'aborted-1', 'aborted-2', 'aborted-3', 'committed-2']);
  });

  it('a send the callback forgot to await stops the commit (PENDING_WORK) and nothing of the unit is visible; the next unit commits', async () => {
    const t = await topic('floating-send');
    const ctx = context();
    let floating: Promise<unknown> | undefined;
    const err = await rejection(
      ctx.withTransaction(async (tx) => {
        await tx.handle.send({ topic: t, messages: [{ key: 'k', value: 'awaited' }] });
        floating = tx.handle.send({ topic: t, messages: [{ key: 'k', value: 'forgotten' }] });
        floating.catch(() => undefined);
      }),
    );
    assert.equal((err as { code?: string }).code, 'PENDING_WORK', String(err));
    assert.match((err as Error).message, /did you forget await\?/);
    await floating?.catch(() => undefined);
    await ctx.withTransaction((tx) => tx.handle.send({ topic: t, messages: [{ key: 'k', value: 'next' }] }));
    const committed = await (await reader(t)).caughtUp();
    assert.deepEqual(committed.values(), ['next']);
  });

  it('zombie fencing: a second producer with the same transactionalId fences the first, whose later work stays invisible', async () => {
    const t = await topic('fencing');
    const other = await topic('fencing-other');
    const id = uniqueName('zombie');
    const zombie = context(id);
    await zombie.withTransaction((tx) => tx.handle.send({ topic: t, messages: [{ value: 'zombie-before' }] }));

    const open = await zombie.begin();
    await open.handle.send({ topic: t, messages: [{ value: 'zombie-open-at-fence' }] });

    const successor = context(id);
    await successor.withTransaction((tx) => tx.handle.send({ topic: t, messages: [{ value: 'successor' }] }));

    // A send after the fence, to a partition new to the transaction (AddPartitionsToTxn) and to one already in it (Produce).
    const sendNew = await rejection(open.handle.send({ topic: other, messages: [{ value: 'zombie-after-fence' }] }));
    assert.ok(sendNew instanceof FencedError, `expected FencedError, got ${String(sendNew)}`);
    const commitErr = await rejection(open.commit());
    assert.ok(commitErr instanceof FencedError, `expected FencedError from commit, got ${String(commitErr)}`);
    assert.equal(open.state, 'aborted');

    const next = await rejection(zombie.withTransaction((tx) => tx.handle.send({ topic: t, messages: [{ value: 'zombie-later' }] })));
    assert.ok(next instanceof FencedError, 'a fenced context refuses new transactions');

    assert.deepEqual((await (await reader(t)).caughtUp()).values(), ['zombie-before', 'successor']);
    assert.deepEqual((await (await reader(other)).caughtUp()).values(), []);
  });

  it('a fenced zombie commit: the zombie commits after the fence without sending again and gets FencedError', async () => {
    const t = await topic('fenced-commit');
    const id = uniqueName('zombie-commit');
    const zombie = context(id);
    const open = await zombie.begin();
    await open.handle.send({ topic: t, messages: [{ value: 'zombie' }] });
    const successor = context(id);
    await successor.withTransaction(async () => undefined); // InitProducerId alone fences
    const err = await rejection(open.commit());
    assert.ok(err instanceof FencedError, `expected FencedError, got ${String(err)}`);
    assert.deepEqual((await (await reader(t)).caughtUp()).values(), []);
  });

  it('concurrent withTransaction calls from separate async flows queue on the one producer and all succeed', async () => {
    const t = await topic('queue');
    const ctx = context();
    const inside: string[] = [];
    let open = 0;
    let maxOpen = 0;
    const ids = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        ctx.withTransaction(async (tx) => {
          open += 1;
          maxOpen = Math.max(maxOpen, open);
          assert.equal(ctx.current()?.id, tx.id);
          await tx.handle.send({ topic: t, messages: [{ key: `k${i}`, value: `v${i}` }] });
          inside.push(tx.id);
          open -= 1;
          return tx.id;
        }),
      ),
    );
    assert.equal(new Set(ids).size, 8);
    assert.equal(maxOpen, 1, 'one transaction at a time on the producer');
    const r = await (await reader(t)).caughtUp();
    assert.deepEqual(r.values().sort(), Array.from({ length: 8 }, (_, i) => `v${i}`).sort());
  });

  it('requires_new (or begin) inside a running Kafka transaction fails fast instead of waiting for itself', async () => {
    const t = await topic('requires-new');
    const ctx = context();
    await ctx.withTransaction(async (outer) => {
      await outer.handle.send({ topic: t, messages: [{ value: 'outer' }] });
      const err = await rejection(ctx.withTransaction(async () => 1, { propagation: 'requires_new' }));
      assert.ok(err instanceof TransactionPropagationError, `got ${String(err)}`);
      assert.match((err as Error).message, /one transaction at a time/);
      assert.ok((await rejection(ctx.begin())) instanceof TransactionPropagationError);
    });
    assert.deepEqual((await (await reader(t)).caughtUp()).values(), ['outer']);
  });

  it('a begin waiting for the producer is taken out of the queue by its AbortSignal', async () => {
    const ctx = context();
    const holder = await ctx.begin();
    const controller = new AbortController();
    const waiting = rejection(ctx.begin({ signal: controller.signal }));
    controller.abort(new Error('gave up waiting'));
    assert.ok((await waiting) instanceof TransactionAbortedError);
    await holder.abort();
    const after = await ctx.begin();
    await after.commit();
  });

  if (client === 'kafkajs') it('the producer is transactional, idempotent, one request in flight, with the 2 ms first retry', async () => {
    const seen: object[] = [];
    const spy: KafkaLike = {
      producer: (config) => {
        seen.push(config ?? {});
        return kafka.producer(config);
      },
    };
    const id = uniqueName('config');
    const ctx = context(id, spy);
    await ctx.withTransaction(async () => undefined);
    assert.deepEqual(seen, [
      { transactionalId: id, idempotent: true, maxInFlightRequests: 1, retry: { ...DEFAULT_KAFKA_PRODUCER_RETRY } },
    ]);
    assert.equal(DEFAULT_KAFKA_PRODUCER_RETRY.initialRetryTime, 2);
  });

  it('sendOffsets commits consumer positions with the transaction, and an abort leaves them out', async () => {
    const input = await topic('offsets-in');
    const out = await topic('offsets-out');
    const group = uniqueName('group');
    const ctx = context();
    const offsetOf = async (): Promise<string | undefined> => {
      const [t] = await admin.fetchOffsets({ groupId: group, topics: [input] });
      return t?.partitions[0]?.offset;
    };
    await rejection(
      ctx.withTransaction(async (tx) => {
        await tx.handle.sendOffsets({ consumerGroupId: group, topics: [{ topic: input, partitions: [{ partition: 0, offset: '5' }] }] });
        throw new Error('abort');
      }),
    );
    await ctx.withTransaction(async (tx) => {
      await tx.handle.send({ topic: out, messages: [{ value: 'x' }] });
      await tx.handle.sendOffsets({ consumerGroupId: group, topics: [{ topic: input, partitions: [{ partition: 0, offset: '7' }] }] });
    });
    // Transactional offsets become visible when the coordinator writes the commit marker, just after the reply.
    await waitUntil(async () => (await offsetOf()) === '7', 10_000, 'the committed offset 7');
    // Back-to-back: the first request of this transaction is AddOffsetsToTxn (kafkajs sends it once; txkit re-sends on CONCURRENT_TRANSACTIONS).
    for (const offset of ['8', '9', '10']) {
      await ctx.withTransaction((tx) =>
        tx.handle.sendOffsets({ consumerGroupId: group, topics: [{ topic: input, partitions: [{ partition: 0, offset }] }] }),
      );
    }
    await waitUntil(async () => (await offsetOf()) === '10', 10_000, 'the committed offset 10');
    await rejection(
      ctx.withTransaction(async (tx) => {
        await tx.handle.sendOffsets({ consumerGroupId: group, topics: [{ topic: input, partitions: [{ partition: 0, offset: '100' }] }] });
        throw new Error('abort');
      }),
    );
    // This transaction's first request waits (CONCURRENT_TRANSACTIONS) until the abort above has completed,
    // so once its message is read, the aborted offsets have been discarded for good.
    await ctx.withTransaction((tx) => tx.handle.send({ topic: out, messages: [{ value: 'after-abort' }] }));
    await (await reader(out)).caughtUp();
    assert.equal(await offsetOf(), '10', 'the aborted offset 100 never became the committed one');
  });

  if (client === 'kafkajs') it('an EndTxn without a reply is an unknown commit: not rerun, and the next transaction runs on a rebuilt producer', async () => {
    const t = await topic('unknown-commit');
    let producers = 0;
    let loseNextCommitReply = true;
    // The real EndTxn is sent and applied; only its reply is replaced by the timeout kafkajs raises when none comes.
    const lossy: KafkaLike = {
      producer: (config) => {
        producers += 1;
        const real = kafka.producer(config);
        return {
          connect: () => real.connect(),
          disconnect: () => real.disconnect(),
          transaction: async () => {
            const tx = await real.transaction();
            return {
              send: (r) => tx.send(r),
              sendBatch: (b) => tx.sendBatch(b),
              sendOffsets: (o) => tx.sendOffsets(o as Parameters<typeof tx.sendOffsets>[0]),
              abort: () => tx.abort(),
              commit: async () => {
                await tx.commit();
                if (loseNextCommitReply) {
                  loseNextCommitReply = false;
                  throw new kafkajs.KafkaJSRequestTimeoutError('Request EndTxn(key: 26, version: 1) timed out', {
                    broker: brokers ?? '',
                    clientId: 'test',
                    correlationId: 1,
                    createdAt: Date.now(),
                    sentAt: Date.now(),
                    pendingDuration: 0,
                  });
                }
              },
            };
          },
        };
      },
    };
    const ctx = context(uniqueName('unknown'), lossy);
    let runs = 0;
    let seen: Transaction<KafkaTxHandle> | undefined;
    const err = await rejection(
      ctx.withTransaction(
        async (tx) => {
          runs += 1;
          seen = tx;
          await tx.handle.send({ topic: t, messages: [{ value: 'maybe' }] });
        },
        { retry: { initialDelayMs: 1, maxDelayMs: 2 } },
      ),
    );
    assert.ok(err instanceof UnknownCommitResultError, `got ${String(err)}`);
    assert.equal(runs, 1, 'a commit of unknown outcome never reruns the unit');
    assert.equal(seen?.state, 'failed');
    assert.equal(producers, 1);
    await ctx.withTransaction((tx) => tx.handle.send({ topic: t, messages: [{ value: 'next' }] }));
    assert.equal(producers, 2, 'the producer was rebuilt after the indefinite EndTxn');
    assert.deepEqual((await (await reader(t)).caughtUp()).values(), ['maybe', 'next']);
  });

  it('transactionalConsumer (its consumer on the same client): stop() while start() is under way leaves no member in the group', () =>
    clientChecks.stopDuringStart(admin, client === 'kafkajs' ? kafka : (producers as PlatformaticKafkaOptions), context(), (close) => closers.push(close)));

  it('transactionalConsumer (its consumer on the same client): an eachBatch that awaits stop() does not wait for itself', () =>
    clientChecks.stopsFromItsOwnBatch(kafka, admin, client === 'kafkajs' ? kafka : (producers as PlatformaticKafkaOptions), context(), (close) => closers.push(close)));

  it('a handle used after its transaction ended throws TransactionStateError', async () => {
    const t = await topic('ended-handle');
    const ctx = context();
    const handle = await ctx.withTransaction(async (tx) => tx.handle);
    const err = await rejection(handle.send({ topic: t, messages: [{ value: 'late' }] }));
    assert.ok(err instanceof TransactionStateError && err.code === 'HANDLE_ENDED');
  });

  it('bad messages and bad options fail with ConfigError before anything is sent', async () => {
    const t = await topic('config');
    const ctx = context();
    await ctx.withTransaction(async (tx) => {
      for (const bad of [
        { topic: '', messages: [{ value: 'x' }] },
        { topic: t, messages: [] },
        { topic: t, messages: [{ value: { not: 'bytes' } }] },
        { topic: t, messages: [{ value: 'x', partition: -1 }] },
      ]) {
        assert.ok((await rejection(tx.handle.send(bad as never))) instanceof ConfigError, JSON.stringify(bad));
      }
      assert.ok((await rejection(tx.handle.sendOffsets({ consumerGroupId: '', topics: [] }))) instanceof ConfigError);
    });
    for (const bad of [
      () => kafkaTransactions(kafka, { transactionalId: '' }),
      () => kafkaTransactions(kafka, undefined as never),
      () => kafkaTransactions({} as never, { transactionalId: 'x' }),
      () => kafkaTransactions(kafka, { transactionalId: 'x', producer: { idempotent: false } as never }),
      () => kafkaTransactions(kafka, { transactionalId: 'x', producer: { maxInFlightRequests: 5 } as never }),
      () => kafkaTransactions(kafka, { transactionalId: 'x', producer: { transactionTimeout: -1 } }),
      () => kafkaTransactions(kafka, { transactionalId: 'x', producer: { retry: { initialRetryTime: -5 } } }),
    ]) {
      assert.throws(bad, ConfigError);
    }
    assert.deepEqual((await (await reader(t)).caughtUp()).values(), []);
  });

  describe('a pool of transactional producers (transactionalIdPrefix, poolSize)', () => {
    const pool = (prefix: string, poolSize: number, k: KafkaLike | PlatformaticKafkaOptions = producers) => {
      const ctx = contextOn(k, { transactionalIdPrefix: prefix, poolSize });
      closers.push(() => ctx.close());
      return ctx;
    };

    it('runs poolSize transactions at once, each on its own id, and a further one waits for a free producer', async () => {
      const t = await topic('pool-concurrent');
      const prefix = uniqueName('pool');
      const ctx = pool(prefix, 4);
      assert.deepEqual(ctx.transactionalIds, [0, 1, 2, 3].map((i) => `${prefix}-${i}`));
      // Four units that each wait until all four are open at the same time: with fewer producers they could not.
      let open = 0;
      let allOpen!: () => void;
      const together = new Promise<void>((resolve) => (allOpen = resolve));
      const ids: string[] = [];
      const fifthBegan: string[] = [];
      const units = [0, 1, 2, 3].map((i) =>
        ctx.withTransaction(async (tx) => {
          ids.push(tx.handle.transactionalId);
          await tx.handle.send({ topic: t, messages: [{ key: `k${i}`, value: `v${i}` }] });
          if (++open === 4) allOpen();
          await together;
          // The fifth unit cannot have begun while all four producers are held.
          assert.deepEqual(fifthBegan, []);
        }),
      );
      await waitUntil(() => open >= 1, 30_000, 'the first pooled unit to open');
      const fifth = ctx.withTransaction(async (tx) => {
        fifthBegan.push(tx.handle.transactionalId);
        await tx.handle.send({ topic: t, messages: [{ key: 'k4', value: 'v4' }] });
      });
      await Promise.all(units);
      await fifth;
      assert.deepEqual([...ids].sort(), [...ctx.transactionalIds].sort());
      assert.equal(fifthBegan.length, 1);
      assert.ok(ctx.transactionalIds.includes(fifthBegan[0] as string));
      assert.deepEqual((await (await reader(t)).caughtUp()).values().sort(), ['v0', 'v1', 'v2', 'v3', 'v4']);
    });

    it('a restarted process with the same prefix fences every producer of its predecessor at its first transaction, used or not', async () => {
      const t = await topic('pool-restart');
      const prefix = uniqueName('pool-restart');
      const before = pool(prefix, 3);
      // The predecessor holds all three producers with open transactions that sent something.
      const open = await Promise.all([0, 1, 2].map(() => before.begin()));
      for (const [i, tx] of open.entries()) await tx.handle.send({ topic: t, messages: [{ value: `zombie-${i}` }] });
      assert.deepEqual(open.map((tx) => tx.handle.transactionalId).sort(), [...before.transactionalIds].sort());

      // The restart runs in another process: another Kafka instance, as two processes would have.
      const restarted = pool(prefix, 3, otherProcess('txkit-kafka-tests-restarted'));
      // One transaction on one producer: every id of the pool is fenced all the same.
      await restarted.withTransaction((tx) => tx.handle.send({ topic: t, messages: [{ value: 'restarted' }] }));
      for (const tx of open) {
        const err = await rejection(tx.commit());
        assert.ok(err instanceof FencedError, `expected FencedError for ${tx.handle.transactionalId}, got ${String(err)}`);
      }
      const refused = await rejection(before.withTransaction(async () => undefined));
      assert.ok(refused instanceof FencedError, 'the fenced pool refuses new transactions');
      // Three aborted transactions of three producers interleave in the partition: the official Java
      // consumer is the witness (kafkajs' read_committed filter lets some of them through).
      assert.deepEqual((await readCommittedWithJava(brokers ?? '', t)).map((r) => r.value), ['restarted']);
      // kafkaSource on @platformatic/kafka reads what the Java consumer reads.
      const source = kafkaSource({ kafka: { clientId: uniqueName('pool-restart-reader'), bootstrapBrokers: (brokers ?? '').split(',') }, topic: t });
      try {
        const read = await Promise.all((await source.partitions()).map((p) => source.fetch(p, 0, 100)));
        assert.deepEqual(read.flat().map((m) => String(m.value)), ['restarted']);
      } finally {
        await source.close();
      }
    });

    if (client === 'kafkajs') it('a pool process frozen (SIGSTOP) with every transaction open while a successor starts commits nothing when it runs again', async () => {
      const t = await topic('pool-zombie');
      const prefix = uniqueName('pool-zombie');
      const worker = fileURLToPath(new URL('./pool-zombie-worker.ts', import.meta.url));
      const proc = spawn(process.execPath, ['--import', 'tsx', worker], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        env: { ...process.env, POOL_BROKERS: brokers ?? '', POOL_PREFIX: prefix, POOL_SIZE: '3', POOL_TOPIC: t },
      });
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      const messages: { type?: string; results?: string[]; next?: string }[] = [];
      proc.on('message', (m: { type?: string }) => void messages.push(m));
      try {
        await waitUntil(() => messages.some((m) => m.type === 'sent'), 60_000, 'the pool process to send in three transactions');
        await waitUntil(() => processState(proc.pid as number) === 'T', 10_000, 'the pool process to stop itself');
        // The successor (another process's prefix, the same ids) commits while the first stands still.
        const successor = pool(prefix, 3, makeKafka(brokers ?? '', 'txkit-kafka-tests-successor'));
        await successor.withTransaction((tx) => tx.handle.send({ topic: t, messages: [{ value: 'successor' }] }));
        proc.kill('SIGCONT');
        await waitUntil(() => messages.some((m) => m.type === 'done'), 60_000, 'the pool process to end its transactions');
        const done = messages.find((m) => m.type === 'done') as { results: string[]; next: string };
        assert.deepEqual(done.results, ['FencedError', 'FencedError', 'FencedError'], 'every frozen transaction is refused');
        assert.equal(done.next, 'FencedError', 'the fenced pool refuses new transactions');
        // Several producers' aborted transactions interleave: the official Java consumer is the witness.
        assert.deepEqual((await readCommittedWithJava(brokers ?? '', t)).map((r) => r.value), ['successor']);
      } finally {
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.kill('SIGCONT');
          proc.kill('SIGKILL');
        }
        await exited;
      }
    });

    it('refuses a second live pool with the same prefix on one Kafka instance until the first is closed', async () => {
      const prefix = uniqueName('pool-dup');
      const first = pool(prefix, 2);
      const err = (() => {
        try {
          contextOn(producers, { transactionalIdPrefix: prefix, poolSize: 2 });
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
      assert.match(err.message, /in use by another live context/);
      await first.close();
      const second = pool(prefix, 2);
      await second.withTransaction(async (tx) => assert.ok(second.transactionalIds.includes(tx.handle.transactionalId)));
    });

    if (client === 'kafkajs') it('settleKafkaProducers renews every producer of the pool once, the one in use after its unit ended, which still commits', async () => {
      const t = await topic('pool-settle');
      const made: string[] = [];
      // The real client, counting the producers the context makes (each new one sends InitProducerId).
      const counting = {
        producer: (config: { transactionalId: string }) => {
          made.push(config.transactionalId);
          return kafka.producer(config as never);
        },
        admin: () => kafka.admin(),
      } as unknown as KafkaLike;
      const ctx = pool(uniqueName('settle'), 3, counting);
      await ctx.withTransaction((tx) => tx.handle.send({ topic: t, messages: [{ value: 'first' }] }));
      assert.equal(made.length, 3, 'every producer of the pool is made once, before the first transaction');
      let began = false;
      let finish!: () => void;
      const held = new Promise<void>((resolve) => (finish = resolve));
      const running = ctx.withTransaction(async (tx) => {
        await tx.handle.send({ topic: t, messages: [{ value: 'held' }] });
        began = true;
        await held;
      });
      await waitUntil(() => began, 30_000, 'the held unit to send');
      const settling = settleKafkaProducers(ctx);
      finish();
      await running;
      await settling;
      assert.deepEqual(made.slice(3).sort(), [...ctx.transactionalIds].sort(), 'one new producer per id');
      await ctx.withTransaction((tx) => tx.handle.send({ topic: t, messages: [{ value: 'after' }] }));
      assert.equal(made.length, 6, 'renewed once, not at every transaction');
      assert.deepEqual((await (await reader(t)).caughtUp()).values().sort(), ['after', 'first', 'held']);
      await assert.rejects(settleKafkaProducers({} as never), (err: unknown) => err instanceof ConfigError && /made by kafkaTransactions/.test(err.message));
    });

    it('bad pool options fail with ConfigError that names the fix', () => {
      const cases: [() => unknown, RegExp][] = [
        [() => kafkaTransactions(kafka, { transactionalId: 'x', transactionalIdPrefix: 'y' }), /not both/],
        [() => kafkaTransactions(kafka, { transactionalId: 'x', poolSize: 2 }), /needs transactionalIdPrefix/],
        [() => kafkaTransactions(kafka, { transactionalIdPrefix: 'x', poolSize: 0 }), /poolSize must be a whole number/],
        [() => kafkaTransactions(kafka, { transactionalIdPrefix: 'x', poolSize: 1.5 }), /poolSize must be a whole number/],
        [() => kafkaTransactions(kafka, { transactionalIdPrefix: 'x', poolSize: 5000 }), /poolSize must be a whole number/],
        [() => kafkaTransactions(kafka, { transactionalIdPrefix: '' }), /non-empty string/],
        [() => kafkaTransactions(kafka, {} as never), /transactionalIdPrefix with poolSize/],
      ];
      for (const [make, message] of cases) {
        assert.throws(make, (err: unknown) => err instanceof ConfigError && message.test(err.message));
      }
    });
  });
});
