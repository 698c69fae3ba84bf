// transactionalConsumer on a @platformatic/kafka consumer: offsets committed with the group generation
// (a stalled member is fenced after a rebalance), aborted input kept out as the Java consumer keeps it
// out, and the group's lag drained past aborted tails. The witness of the output is the official Java
// consumer; the zombie is a real process stopped with SIGSTOP while its transaction is open.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { ConfigError } from '../../src/core/index.js';
import { kafkaTransactions, transactionalConsumer } from '../../src/adapters/kafka/index.js';
import type { TransactionalConsumer } from '../../src/adapters/kafka/index.js';
import { withoutAbortedRecords } from '../../src/adapters/kafka/platformatic-consumer.js';
import type { FetchResponseLike } from '../../src/adapters/kafka/platformatic-consumer.js';
import { service } from '../support/services.js';
import { TopicReader, clientChecks, createTopics, makeKafka, platformaticCopier, readCommittedWithJava, uniqueName, waitUntil } from './kafka-support.js';

const brokers = service('kafka');
const WORKER = fileURLToPath(new URL('./copier-worker.ts', import.meta.url));

/** A data batch of producer `pid` at `offset` with `values`, or a control batch (abort or commit marker). */
const data = (pid: bigint, offset: bigint, ...values: string[]) => ({
  firstOffset: offset,
  producerId: pid,
  attributes: 0x10,
  records: values.map((v) => ({ key: null, value: Buffer.from(v) })),
});
const marker = (pid: bigint, offset: bigint, type: 'abort' | 'commit') => {
  const key = Buffer.alloc(4);
  key.writeInt16BE(type === 'abort' ? 0 : 1, 2);
  return { firstOffset: offset, producerId: pid, attributes: 0x30, records: [{ key }] };
};
const valuesOf = (response: FetchResponseLike): string[] =>
  (response.responses[0]?.partitions[0]?.records ?? [])
    .filter((b) => (b.attributes & 0x20) === 0)
    .flatMap((b) => b.records.map((r) => String((r as { value?: Buffer }).value)));

describe('@platformatic/kafka fetches filtered as read_committed', () => {
  it('two aborted transactions of one producer in one fetch: neither is read (the library kept the first)', () => {
    const response = {
      responses: [
        {
          partitions: [
            {
              abortedTransactions: [
                { producerId: 7n, firstOffset: 0n },
                { producerId: 7n, firstOffset: 3n },
              ],
              records: [data(7n, 0n, 'A1', 'A2'), marker(7n, 2n, 'abort'), data(7n, 3n, 'B1'), marker(7n, 4n, 'abort'), data(7n, 5n, 'C1'), marker(7n, 6n, 'commit')],
            },
          ],
        },
      ],
    };
    withoutAbortedRecords(response);
    assert.deepEqual(valuesOf(response), ['C1']);
    // The batches stay, emptied, so the reader's position still moves past them.
    assert.equal(response.responses[0]?.partitions[0]?.records.length, 6);
  });

  it('an aborted transaction whose marker is in a later fetch is not read, and other producers interleaved with it are', () => {
    const response = {
      responses: [
        {
          partitions: [
            {
              abortedTransactions: [{ producerId: 1n, firstOffset: 10n }],
              records: [data(2n, 9n, 'other-before'), data(1n, 10n, 'aborted-1'), data(2n, 11n, 'other-during'), data(1n, 12n, 'aborted-2')],
            },
          ],
        },
      ],
    };
    withoutAbortedRecords(response);
    assert.deepEqual(valuesOf(response), ['other-before', 'other-during']);
  });

  it("a producer's committed transaction after its aborted one is read", () => {
    const response = {
      responses: [
        {
          partitions: [
            {
              abortedTransactions: [{ producerId: 3n, firstOffset: 0n }],
              records: [data(3n, 0n, 'x'), marker(3n, 1n, 'abort'), data(3n, 2n, 'y'), marker(3n, 3n, 'commit')],
            },
          ],
        },
      ],
    };
    withoutAbortedRecords(response);
    assert.deepEqual(valuesOf(response), ['y']);
  });
});

describe('transactionalConsumer on @platformatic/kafka: options', () => {
  const connection = { clientId: 'options', bootstrapBrokers: ['127.0.0.1:9'] };
  const context = kafkaTransactions(connection, { transactionalId: 'options' });
  const base = { context, groupId: 'g', topics: ['t'], eachBatch: async () => undefined };

  it('needs a context on @platformatic/kafka, not a producer per partition; txkit owns the group, isolation and autocommit', () => {
    const kafkajsContext = kafkaTransactions({ producer: () => ({}) } as never, { transactionalId: 'k' });
    assert.throws(
      () => transactionalConsumer(connection, { ...base, context: kafkajsContext }),
      (e: unknown) => e instanceof ConfigError && /needs `context` made by kafkaTransactions on @platformatic\/kafka/.test(e.message),
    );
    assert.throws(
      () => transactionalConsumer(connection, { ...base, transactionalIdPrefix: 'p' } as never),
      (e: unknown) => e instanceof ConfigError && /takes `context`, not `transactionalIdPrefix`/.test(e.message),
    );
    assert.throws(
      () => transactionalConsumer(connection, { ...base, consumer: { autocommit: true, sessionTimeout: 6000 } }),
      (e: unknown) => e instanceof ConfigError && /sets `autocommit`/.test(e.message),
    );
    assert.throws(
      () => transactionalConsumer({ bootstrapBrokers: ['127.0.0.1:9'] } as never, base),
      (e: unknown) => e instanceof ConfigError && /clientId and bootstrapBrokers/.test(e.message),
    );
    assert.throws(() => transactionalConsumer(connection, { ...base, topics: [] }), (e: unknown) => e instanceof ConfigError && /topics/.test(e.message));
  });
});

interface Zombie {
  child: ChildProcess;
  holding: boolean;
  committed: number;
  stats?: { committedBatches: number; fencedBatches: number };
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

describe.skipIf(brokers === undefined)('transactionalConsumer on @platformatic/kafka', () => {
  if (brokers === undefined) return;
  const connection = (clientId = uniqueName('plt-consumer')) => ({ clientId, bootstrapBrokers: brokers.split(',') });
  const kafka = makeKafka(brokers, 'txkit-platformatic-consumer-tests');
  const admin = kafka.admin();
  const closers: (() => Promise<void>)[] = [];
  const children: ChildProcess[] = [];
  beforeAll(() => admin.connect());
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await admin.disconnect();
  });
  const context = (transactionalId = uniqueName('plt-consumer-tx')) => {
    const ctx = kafkaTransactions(connection(), { transactionalId });
    closers.push(() => ctx.close());
    return ctx;
  };
  const groupOffsets = async (groupId: string, topic: string): Promise<Map<number, string>> => {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((t?.partitions ?? []).map((p) => [p.partition, p.offset]));
  };
  const atEnd = async (groupId: string, topic: string): Promise<boolean> => {
    const ends = await admin.fetchTopicOffsets(topic);
    const committed = await groupOffsets(groupId, topic);
    return ends.every((e) => committed.get(e.partition) === e.high);
  };

  it('copies a topic exactly once', () => clientChecks.consumerCopies(kafka, admin, connection(), context(), (close) => closers.push(close)));

  it("aborted input is never copied (two aborted transactions of one producer in a row, and an aborted tail), and the group's offset reaches the end of the input", async () => {
    const input = uniqueName('plt-aborted-in');
    const output = uniqueName('plt-aborted-out');
    const groupId = uniqueName('plt-aborted-group');
    await createTopics(admin, [input, output]);
    const producer = kafka.producer({ transactionalId: uniqueName('plt-aborted-writer'), idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    closers.push(() => producer.disconnect());
    const write = async (transactions: readonly (readonly [string, boolean])[]): Promise<void> => {
      for (const [name, commit] of transactions) {
        const tx = await producer.transaction();
        await tx.send({ topic: input, messages: [1, 2, 3].map((i) => ({ value: `${name}${i}` })) });
        if (commit) await tx.commit();
        else await tx.abort();
      }
    };
    await write([['A', false], ['B', false], ['C', true]]);
    const copied: string[] = [];
    const worker = platformaticCopier(connection(), { context: context(), groupId, input, output, copied });
    closers.push(() => worker.stop());
    await worker.start();
    await waitUntil(() => copied.length >= 3 && atEnd(groupId, input), 30_000, 'C to be copied');
    // A tail of aborted transactions fetched on its own (nothing to copy in it) is committed past.
    await write([['D', false], ['E', false]]);
    await waitUntil(() => atEnd(groupId, input), 30_000, "the group's committed offset to reach the end of the input past D and E");
    await worker.stop();
    await worker.done;
    assert.deepEqual(copied, ['C1', 'C2', 'C3']);
    assert.deepEqual((await readCommittedWithJava(brokers, output)).map((r) => r.value), ['C1', 'C2', 'C3']);
  });

  it('two members of one group split the partitions and copy exactly once; once both have joined, no batch is fenced', async () => {
    const input = uniqueName('plt-pair-in');
    const output = uniqueName('plt-pair-out');
    const groupId = uniqueName('plt-pair-group');
    await createTopics(admin, [input, output], 4);
    const copiedBy: string[][] = [[], []];
    const members = copiedBy.map((copied) =>
      transactionalConsumer(connection(), {
        context: context(),
        groupId,
        topics: [input],
        fromBeginning: true,
        consumer: { sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTime: 100 },
        eachBatch: async ({ messages, tx }) => {
          await tx.handle.send({ topic: output, messages: messages.map((m) => ({ value: m.value })) });
          tx.afterCommit(() => void copied.push(...messages.map((m) => String(m.value))));
        },
      }),
    );
    for (const m of members) closers.push(() => m.stop());
    const producer = kafka.producer();
    await producer.connect();
    closers.push(() => producer.disconnect());
    const expected: string[] = [];
    const round = async (n: number): Promise<void> => {
      const values = Array.from({ length: 100 }, (_, i) => `${n}:${i}`);
      expected.push(...values);
      await producer.send({ topic: input, messages: values.map((value, i) => ({ value, partition: i % 4 })) });
      await waitUntil(() => copiedBy.flat().length >= expected.length, 60_000, `round ${n} to be copied`);
    };
    // The first member copies alone; the second one's join moves partitions, and the first reopens its stream.
    await (members[0] as TransactionalConsumer).start();
    await round(0);
    await (members[1] as TransactionalConsumer).start();
    // Then the input arrives in rounds, each copied before the next.
    for (let n = 1; n < 5; n++) await round(n);
    for (const m of members) await m.stop();
    assert.deepEqual(copiedBy.flat().sort(), [...expected].sort(), 'each record copied once');
    assert.ok(copiedBy.every((c) => c.length > 0), `both members copied (${copiedBy.map((c) => c.length).join(' + ')})`);
    assert.deepEqual(
      members.map((m) => m.fencedBatches),
      [0, 0],
      'no batch was refused for a stale generation after both had joined',
    );
  });

  it('a member stopped (SIGSTOP) inside a transaction until its partitions moved is fenced by its group generation when it resumes: its output never shows, the new owner copies the batch once', async () => {
    const input = uniqueName('plt-zombie-in');
    const output = uniqueName('plt-zombie-out');
    const groupId = uniqueName('plt-zombie-group');
    const PARTITIONS = 2;
    const PER_PARTITION = 200;
    await createTopics(admin, [input, output], PARTITIONS);
    const writer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await writer.connect();
    const expected: string[] = [];
    for (let p = 0; p < PARTITIONS; p++) {
      const values = Array.from({ length: PER_PARTITION }, (_, i) => `${p}:${i}`);
      expected.push(...values);
      for (let i = 0; i < values.length; i += 20) await writer.send({ topic: input, messages: values.slice(i, i + 20).map((value) => ({ value, partition: p })) });
    }
    await writer.disconnect();

    // The zombie: a worker process with its own transactional id, told to hold inside its first batch's transaction.
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      env: {
        ...process.env,
        COPIER_BROKERS: brokers,
        COPIER_INPUT: input,
        COPIER_OUTPUT: output,
        COPIER_GROUP: groupId,
        COPIER_TRANSACTIONAL_ID: uniqueName('plt-zombie-a'),
        COPIER_CLIENT: 'platformatic',
        COPIER_CONSUMER: 'platformatic',
        COPIER_HOLD: 'until-release',
      },
    });
    children.push(child);
    const zombie: Zombie = {
      child,
      holding: false,
      committed: 0,
      stderr: [],
      exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
    };
    child.stderr?.on('data', (d: Buffer) => zombie.stderr.push(d.toString()));
    child.on('message', (m: { type?: string; count?: number; committedBatches?: number; fencedBatches?: number }) => {
      if (m.type === 'holding') {
        // Stopped the moment its output is written and before its offsets are sent: a GC pause or a frozen VM.
        child.kill('SIGSTOP');
        zombie.holding = true;
      }
      if (m.type === 'committed') zombie.committed += m.count ?? 0;
      if (m.type === 'stats') zombie.stats = { committedBatches: m.committedBatches ?? 0, fencedBatches: m.fencedBatches ?? 0 };
    });
    const alive = (): boolean => child.exitCode === null && child.signalCode === null;
    await waitUntil(() => zombie.holding || !alive(), 60_000, 'the first worker to hold inside a transaction');
    assert.ok(zombie.holding, `the first worker exited: ${zombie.stderr.join('')}`);

    // The second member takes every partition once the first one's session has expired, and copies the rest.
    const copiedBySecond: string[] = [];
    const second = transactionalConsumer(connection(), {
      context: context(),
      groupId,
      topics: [input],
      fromBeginning: true,
      consumer: { sessionTimeout: 6_000, rebalanceTimeout: 10_000, heartbeatInterval: 500, maxWaitTime: 100 },
      eachBatch: async ({ messages, tx }) => {
        await tx.handle.send({ topic: output, messages: messages.map((m) => ({ value: m.value })) });
        tx.afterCommit(() => void copiedBySecond.push(...messages.map((m) => String(m.value))));
      },
    });
    closers.push(() => second.stop());
    await second.start();
    await waitUntil(() => atEnd(groupId, input), 120_000, 'the second member to commit the whole input');

    // The first member resumes where it stopped: its offsets carry the generation the group has left behind.
    child.kill('SIGCONT');
    child.send({ type: 'release' });
    const reader = await TopicReader.open(kafka, output);
    closers.push(() => reader.close());
    await waitUntil(() => reader.records.length >= expected.length, 120_000, 'the output to be readable past the zombie transaction');
    child.kill('SIGTERM');
    const exit = await zombie.exited;
    assert.equal(exit.code, 0, `the first worker ended with ${exit.code ?? exit.signal}: ${zombie.stderr.join('')}`);
    await second.stop();
    await second.done;

    const records = await readCommittedWithJava(brokers, output);
    assert.equal(records.length, expected.length, `${records.length} output records, expected ${expected.length}`);
    assert.deepEqual(records.map((r) => r.value).sort(), [...expected].sort(), 'each input record copied exactly once');
    assert.ok(zombie.stats !== undefined, 'the first worker reported its counts');
    assert.ok(zombie.stats.fencedBatches >= 1, `the resumed member's batch was fenced (fencedBatches ${zombie.stats.fencedBatches})`);
    assert.equal(zombie.committed + copiedBySecond.length, expected.length, 'every record was committed by exactly one member');
  }, 300_000);
});
