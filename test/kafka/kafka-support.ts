/**
 * Helpers for the Kafka tests: a kafkajs client on the test broker, unique
 * topics, and a reader that follows a topic and can wait until it has seen
 * everything written before the wait began.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runJavaWitness } from '../support/java-witness.js';
import kafkajs from 'kafkajs';
import type { Admin, Consumer, Kafka as KafkaClient } from 'kafkajs';
import { transactionalConsumer } from '../../src/adapters/kafka/index.js';
import type { KafkaConsumerFactoryLike, KafkaTransactionContext, KafkaTxHandle, PlatformaticKafkaOptions, TransactionalConsumer } from '../../src/adapters/kafka/index.js';
import { FencedError } from '../../src/core/index.js';
import type { Transaction } from '../../src/core/index.js';
import { rejection } from '../../src/testing/index.js';
import assert from 'node:assert/strict';
import { afterAll, beforeAll } from 'vitest';
import { waitUntil } from '../support/wait-until.js';

export { waitUntil };

const { Kafka, logLevel } = kafkajs;
const brokersOf = new WeakMap<KafkaClient, string>();

let seq = 0;

/** A topic name no other test (or earlier run) uses. */
export function uniqueName(label: string): string {
  return `${label}-${process.pid}-${Date.now().toString(36)}-${seq++}`;
}

/** A kafkajs client for `brokers` ("host:port,host:port"). Set TXKIT_KAFKA_LOG=1 to see kafkajs' own log. */
/**
 * A kafkajs client of the test brokers. `onConsumerCrash` hears each crash a
 * consumer of this client reports (kafkajs logs it, then restarts the
 * consumer for a retriable error): a test can wait for one.
 */
export function makeKafka(brokers: string, clientId: string, { onConsumerCrash }: { onConsumerCrash?: (message: string) => void } = {}): KafkaClient {
  const verbose = Boolean(process.env.TXKIT_KAFKA_LOG);
  const kafka = new Kafka({
    brokers: brokers.split(','),
    clientId,
    logLevel: verbose ? logLevel.INFO : onConsumerCrash === undefined ? logLevel.NOTHING : logLevel.ERROR,
    ...(onConsumerCrash === undefined
      ? {}
      : {
          logCreator: () => (entry: { namespace: string; level: number; log: { message: string } }) => {
            if (entry.log.message.startsWith('Crash:')) onConsumerCrash(entry.log.message);
            if (verbose) console.log(`[kafkajs ${entry.namespace}] ${entry.log.message}`);
          },
        }),
  });
  brokersOf.set(kafka, brokers);
  return kafka;
}

/**
 * For a describe block: a kafkajs client of the test brokers, its admin client (connected before the
 * first test) and a list of closers, run last first after the last test, before the admin disconnects.
 */
export function suiteKafka(brokers: string, clientId: string): { kafka: KafkaClient; admin: Admin; closers: (() => Promise<void>)[] } {
  const kafka = makeKafka(brokers, clientId);
  const admin = kafka.admin();
  const closers: (() => Promise<void>)[] = [];
  beforeAll(() => admin.connect());
  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await admin.disconnect();
  });
  return { kafka, admin, closers };
}

/**
 * The high watermark (end of the log, open transactions included) of each
 * partition, from a ListOffsets v1 request to the single test broker.
 * kafkajs' admin.fetchTopicOffsets cannot give it: it always asks with
 * isolation_level READ_COMMITTED, i.e. for the last stable offset, which
 * stays behind a committed transaction until its markers are written.
 */
export async function highWatermarks(brokers: string, topic: string, partitions: number[]): Promise<Map<number, bigint>> {
  const [host, port] = (brokers.split(',')[0] as string).split(':') as [string, string];
  const name = Buffer.from(topic);
  const clientId = Buffer.from('txkit-tests');
  const body = Buffer.alloc(4 + 4 + 2 + name.length + 4 + partitions.length * 12);
  let o = body.writeInt32BE(-1, 0); // replica_id
  o = body.writeInt32BE(1, o); // one topic
  o = body.writeInt16BE(name.length, o);
  o += name.copy(body, o);
  o = body.writeInt32BE(partitions.length, o);
  for (const p of partitions) {
    o = body.writeInt32BE(p, o);
    o = body.writeBigInt64BE(-1n, o); // latest
  }
  const header = Buffer.alloc(10);
  header.writeInt16BE(2, 0); // ListOffsets
  header.writeInt16BE(1, 2); // v1: no isolation level, so the high watermark
  header.writeInt32BE(7, 4);
  header.writeInt16BE(clientId.length, 8);
  const frame = Buffer.concat([Buffer.alloc(4), header, clientId, body]);
  frame.writeInt32BE(frame.length - 4, 0);
  const response = await new Promise<Buffer>((resolve, reject) => {
    const socket = net.connect({ host, port: Number(port) });
    let data = Buffer.alloc(0);
    socket.setTimeout(10_000, () => socket.destroy(new Error(`ListOffsets to ${brokers}: no answer`)));
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (data.length >= 4 && data.length >= 4 + data.readInt32BE(0)) {
        socket.end();
        resolve(data.subarray(4));
      }
    });
    socket.once('connect', () => socket.write(frame));
  });
  let r = 4; // correlation id
  const out = new Map<number, bigint>();
  for (let topics = response.readInt32BE(r), i = ((r += 4), 0); i < topics; i++) {
    r += 2 + response.readInt16BE(r);
    for (let n = response.readInt32BE(r), j = ((r += 4), 0); j < n; j++) {
      const partition = response.readInt32BE(r);
      const error = response.readInt16BE(r + 4);
      if (error !== 0) throw new Error(`ListOffsets ${topic}/${partition}: error code ${error}`);
      out.set(partition, response.readBigInt64BE(r + 14));
      r += 22;
    }
  }
  return out;
}

/**
 * Fills the `partitions` partitions of a copier's input topic with `total`
 * records, record `i` going to partition `i % partitions` with the value (and
 * key) `<partition>:<n-th in that partition>`; returns those values in input
 * order, what an exact copy holds.
 */
export async function fillCopierInput(kafka: KafkaClient, topic: string, total: number, partitions: number, chunk = 25): Promise<string[]> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const expected = Array.from({ length: total }, (_, i) => `${i % partitions}:${Math.floor(i / partitions)}`);
  try {
    for (let p = 0; p < partitions; p++) {
      const values = expected.filter((v) => v.startsWith(`${p}:`));
      for (let i = 0; i < values.length; i += chunk) {
        await producer.send({ topic, acks: -1, messages: values.slice(i, i + chunk).map((value) => ({ key: value, value, partition: p })) });
      }
    }
  } finally {
    await producer.disconnect();
  }
  return expected;
}

/** A record as the official Java consumer read it, with txkit's outbox headers. */
export interface JavaReadRecord {
  partition: number;
  offset: number;
  key: string;
  value: string;
  /** `txkit-outbox-id`, or '' */
  outboxId: string;
  /** `txkit-outbox-seq`, or '' */
  outboxSeq: string;
}

/**
 * Every committed record of a topic as the official Java consumer
 * (read_committed, kafka-clients from Maven Central) reads it, from the
 * beginning to the end offsets: the witness for topics that several
 * transactional producers write at once. kafkajs' read_committed filter
 * can let records of aborted transactions through when aborted
 * transactions of several producers interleave in one partition (it
 * expects the broker's aborted-transactions list sorted by first offset,
 * and it is not), so a kafkajs reader would report them as duplicates.
 */
export async function readCommittedWithJava(brokers: string, topic: string): Promise<JavaReadRecord[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'txkit-topic-dump-'));
  let out: string;
  try {
    const file = path.join(dir, 'records.tsv');
    await runJavaWitness({ coords: ['org.apache.kafka:kafka-clients:3.9.1'], source: 'KafkaTopicDump.java', args: [brokers, topic, file], timeoutMs: 120_000 });
    out = readFileSync(file, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const lines = out.split('\n').filter((l) => /^\d+\t|^end\t/.test(l));
  const end = lines.find((l) => l.startsWith('end\t'));
  if (end === undefined) throw new Error(`KafkaTopicDump printed no end line:\n${out.slice(-2000)}`);
  if (end !== 'end\t') throw new Error(`KafkaTopicDump did not reach the end of partitions ${end.slice(4)} of ${topic}`);
  return lines
    .filter((l) => !l.startsWith('end\t'))
    .map((l) => {
      const [partition, offset, key, value, outboxId, outboxSeq] = l.split('\t') as [string, string, string, string, string, string];
      return { partition: Number(partition), offset: Number(offset), key, value, outboxId, outboxSeq };
    });
}

/**
 * The same checks on every client of the adapter (kafkajs, confluent, platformatic), on a new
 * topic each: `ctx()` makes a context of the client (with the given transactional.id), `track`
 * keeps a reader for closing.
 */
export const clientChecks = {
  /** transactionalConsumer copies a topic exactly once with the client's context. */
  consumerCopies: (...args: Parameters<typeof consumerCopies>) => consumerCopies(...args),

  /**
   * stop() called while start() is still under way (a shutdown during startup, a start() not awaited): once both
   * have settled, no member of the consumer is left in the group (before, the consumer start() connected after
   * stop() had run stayed in the group, and kept the process alive).
   */
  async stopDuringStart(
    admin: Admin,
    consumerKafka: KafkaConsumerFactoryLike | PlatformaticKafkaOptions,
    ctx: KafkaTransactionContext,
    track: (close: () => Promise<void>) => void,
  ): Promise<void> {
    const input = uniqueName('early-stop-in');
    const groupId = uniqueName('early-stop-group');
    await createTopics(admin, [input]);
    const worker = transactionalConsumer(consumerKafka as KafkaConsumerFactoryLike, {
      context: ctx,
      groupId,
      topics: [input],
      fromBeginning: true,
      eachBatch: async () => undefined,
    });
    track(() => worker.stop());
    const starting = worker.start().then(
      () => 'started',
      (err: unknown) => `failed: ${String(err)}`,
    );
    await worker.stop();
    assert.equal(await starting, 'started');
    await worker.done;
    const { groups } = await admin.describeGroups([groupId]);
    assert.deepEqual(
      groups.flatMap((g) => g.members.map((m) => m.clientId)),
      [],
      'no member of the stopped consumer is left in its group',
    );
  },

  /**
   * An eachBatch that awaits its own consumer's stop() does not wait for itself: the call resolves, the
   * batch commits, the consumer stops and `done` resolves (a deadlock fails the test by its timeout).
   */
  async stopsFromItsOwnBatch(
    kafka: KafkaClient,
    admin: Admin,
    consumerKafka: KafkaConsumerFactoryLike | PlatformaticKafkaOptions,
    ctx: KafkaTransactionContext,
    track: (close: () => Promise<void>) => void,
  ): Promise<void> {
    const input = uniqueName('stop-in');
    const output = uniqueName('stop-out');
    await createTopics(admin, [input, output]);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: input, messages: ['s0', 's1', 's2'].map((value) => ({ value })) });
    await producer.disconnect();
    const batches: string[][] = [];
    const worker: TransactionalConsumer = transactionalConsumer(consumerKafka as KafkaConsumerFactoryLike, {
      context: ctx,
      groupId: uniqueName('stop-group'),
      topics: [input],
      fromBeginning: true,
      eachBatch: async ({ messages, tx }) => {
        batches.push(messages.map((m) => String(m.value)));
        await tx.handle.send({ topic: output, messages: messages.map((m) => ({ value: m.value })) });
        await worker.stop();
      },
    });
    track(() => worker.stop());
    await worker.start();
    await worker.done;
    assert.equal(batches.length, 1, 'the consumer stopped after the batch that stopped it');
    assert.equal(worker.committedBatches, 1, 'that batch committed');
    const r = await TopicReader.open(kafka, output);
    track(() => r.close());
    assert.deepEqual((await r.caughtUp()).values(), batches[0]);
  },

  /** A committed transaction is read by read_committed readers (kafkajs and Java), an aborted one only by read_uncommitted. */
  async abortedInvisible(kafka: KafkaClient, admin: Admin, ctx: () => KafkaTransactionContext, track: (r: TopicReader) => void): Promise<void> {
    const t = uniqueName('visibility');
    await createTopics(admin, [t]);
    const context = ctx();
    await context.withTransaction((tx) => tx.handle.send({ topic: t, messages: [{ key: 'k', value: 'committed', headers: { h: 'v' } }] }));
    await rejection(
      context.withTransaction(async (tx) => {
        await tx.handle.send({ topic: t, messages: [{ value: 'aborted' }] });
        throw new Error('abort');
      }),
    );
    const committed = await TopicReader.open(kafka, t);
    const uncommitted = await TopicReader.open(kafka, t, { readUncommitted: true });
    track(committed);
    track(uncommitted);
    assert.deepEqual((await committed.caughtUp()).values(), ['committed']);
    assert.deepEqual((await uncommitted.caughtUp()).values(), ['committed', 'aborted']);
    const brokers = brokersOf.get(kafka) as string;
    assert.deepEqual((await readCommittedWithJava(brokers, t)).map((r) => `${r.key}=${r.value}`), ['k=committed']);
  },

  /**
   * A second context of the same transactional.id takes over (the broker's producer ids are far
   * from 0 by then); the first one's open transaction fails with FencedError and stays invisible,
   * and the fenced context refuses new transactions.
   */
  async zombieFenced(kafka: KafkaClient, admin: Admin, ctx: (transactionalId: string) => KafkaTransactionContext): Promise<void> {
    const t = uniqueName('fencing');
    await createTopics(admin, [t]);
    const id = uniqueName('zombie');
    const zombie = ctx(id);
    await zombie.withTransaction((tx) => tx.handle.send({ topic: t, messages: [{ value: 'before' }] }));
    const open = await zombie.begin();
    await open.handle.send({ topic: t, messages: [{ value: 'zombie' }] });
    await ctx(id).withTransaction((tx) => tx.handle.send({ topic: t, messages: [{ value: 'successor' }] }));
    const err = await rejection(open.commit());
    assert.ok(err instanceof FencedError, `expected FencedError, got ${String(err)}`);
    const refused = await rejection(zombie.withTransaction(async () => undefined));
    assert.ok(refused instanceof FencedError, `a fenced context refuses new transactions, got ${String(refused)}`);
    const brokers = brokersOf.get(kafka) as string;
    assert.deepEqual((await readCommittedWithJava(brokers, t)).map((r) => r.value), ['before', 'successor']);
  },
};

/**
 * transactionalConsumer on `consumerKafka` with the context `ctx` copies 300 records once, in
 * order, and commits the input offset 300 with the transactions.
 */
async function consumerCopies(
  kafka: KafkaClient,
  admin: Admin,
  consumerKafka: KafkaConsumerFactoryLike | PlatformaticKafkaOptions,
  ctx: KafkaTransactionContext,
  track: (close: () => Promise<void>) => void,
): Promise<void> {
  const input = uniqueName('copy-in');
  const output = uniqueName('copy-out');
  const group = uniqueName('copy-group');
  await createTopics(admin, [input, output]);
  const producer = kafka.producer();
  await producer.connect();
  const values = Array.from({ length: 300 }, (_, i) => `m${i}`);
  for (let i = 0; i < values.length; i += 50) await producer.send({ topic: input, messages: values.slice(i, i + 50).map((value) => ({ value })) });
  await producer.disconnect();
  // The consumer's client: a kafkajs-API instance, or @platformatic/kafka connection options (both take these options).
  const worker = transactionalConsumer(consumerKafka as KafkaConsumerFactoryLike, {
    context: ctx,
    groupId: group,
    topics: [input],
    fromBeginning: true,
    eachBatch: async ({ messages, tx }) => void (await tx.handle.send({ topic: output, messages: messages.map((m) => ({ value: m.value })) })),
  });
  track(() => worker.stop());
  await worker.start();
  const r = await TopicReader.open(kafka, output);
  track(() => r.close());
  await waitUntil(() => r.records.length >= values.length, 60_000, 'the copy');
  await worker.stop();
  await worker.done;
  assert.deepEqual((await r.caughtUp()).values(), values);
  await waitUntil(async () => {
    const [now] = await admin.fetchOffsets({ groupId: group, topics: [input] });
    return now?.partitions[0]?.offset === '300';
  }, 10_000, 'the committed input offset 300');
}

/**
 * A transactionalConsumer on @platformatic/kafka copying `input` to `output` (values only, from the beginning, short
 * fetch waits), pushing each batch's values to `copied` once its transaction committed. Not started.
 */
export function platformaticCopier(
  connection: PlatformaticKafkaOptions,
  o: { context: KafkaTransactionContext; groupId: string; input: string; output: string; copied: string[] },
): TransactionalConsumer {
  return transactionalConsumer(connection as unknown as KafkaConsumerFactoryLike, {
    context: o.context,
    groupId: o.groupId,
    topics: [o.input],
    fromBeginning: true,
    consumer: { maxWaitTime: 100 },
    eachBatch: async ({ messages, tx }) => {
      await tx.handle.send({ topic: o.output, messages: messages.map((m) => ({ value: m.value })) });
      tx.afterCommit(() => void o.copied.push(...messages.map((m) => String(m.value))));
    },
  });
}

export async function createTopics(admin: Admin, topics: string[], numPartitions = 1, replicationFactor = 1): Promise<void> {
  await admin.createTopics({ topics: topics.map((topic) => ({ topic, numPartitions, replicationFactor })), waitForLeaders: true });
}

/**
 * The conformance suite's `make` for a client: a fresh topic and reader, and a context from
 * `makeContext`. With `warm`, one empty transaction first: a client that connects and runs
 * InitProducerId at the first begin does it before the test, so the suite's short
 * retry-deadline case measures retries, not the connection.
 */
export async function conformanceTarget(
  kafka: KafkaClient,
  admin: Admin,
  makeContext: (transactionalId: string) => KafkaTransactionContext,
  { warm = false }: { warm?: boolean } = {},
): Promise<{ context: KafkaTransactionContext; cleanup: () => Promise<void> } & ReturnType<typeof conformanceReadWrite>> {
  const topic = uniqueName('conformance');
  await createTopics(admin, [topic]);
  const reader = await TopicReader.open(kafka, topic);
  const context = makeContext(uniqueName('conformance-tx'));
  if (warm) await context.withTransaction(async () => undefined);
  return { context, ...conformanceReadWrite(reader), cleanup: () => reader.close() };
}

/** The conformance suite's read/write on a topic: a message per write, read back by key. */
export function conformanceReadWrite(reader: TopicReader): {
  write(tx: Transaction<KafkaTxHandle>, key: string, value: string): Promise<void>;
  read(key: string): Promise<string | undefined>;
} {
  const writers = new Set<Transaction<KafkaTxHandle>>();
  return {
    write: async (tx, key, value) => {
      writers.add(tx);
      await tx.handle.send({ topic: reader.topic, messages: [{ key, value }] });
    },
    read: async (key) => {
      for (const tx of writers) if (tx.state !== 'active') writers.delete(tx);
      return (await reader.caughtUp({ openTransaction: writers.size > 0 })).latest(key);
    },
  };
}

export interface ReadRecord {
  partition: number;
  offset: string;
  key: string | null;
  value: string | null;
}

/** Follows a topic from the beginning with its own consumer group (read_committed unless told otherwise). */
export class TopicReader {
  readonly records: ReadRecord[] = [];
  readonly #positions = new Map<number, bigint>();
  /** Per partition, the offset after the last record recorded. */
  readonly #next = new Map<number, bigint>();
  readonly #consumer: Consumer;
  readonly #admin: Admin;
  readonly #brokers: string;
  readonly topic: string;

  private constructor(consumer: Consumer, admin: Admin, topic: string, brokers: string) {
    this.#consumer = consumer;
    this.#admin = admin;
    this.topic = topic;
    this.#brokers = brokers;
  }

  static async open(kafka: KafkaClient, topic: string, { readUncommitted = false } = {}): Promise<TopicReader> {
    const consumer = kafka.consumer({
      groupId: uniqueName('reader'),
      readUncommitted,
      maxWaitTimeInMs: 100,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
    });
    const admin = kafka.admin();
    const brokers = brokersOf.get(kafka);
    if (brokers === undefined) throw new Error('TopicReader needs a client made by makeKafka()');
    const reader = new TopicReader(consumer, admin, topic, brokers);
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.topic === topic) reader.#positions.set(payload.partition, BigInt(payload.lastOffset) + 1n);
    });
    let joined = false;
    consumer.on(consumer.events.GROUP_JOIN, () => void (joined = true));
    await admin.connect();
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          // The witness counts log positions once: its own consumer may be handed a stretch again (a
          // rebalance or a restart after a broker came back resumes from its last committed offset).
          // A duplicate the code under test wrote sits at another offset and is still counted.
          const offset = BigInt(m.offset);
          if (offset < (reader.#next.get(batch.partition) ?? 0n)) continue;
          reader.#next.set(batch.partition, offset + 1n);
          reader.records.push({
            partition: batch.partition,
            offset: m.offset,
            key: m.key?.toString() ?? null,
            value: m.value?.toString() ?? null,
          });
        }
      },
    });
    await waitUntil(() => joined, 30_000, `the reader of ${topic} to join its group`);
    return reader;
  }

  /**
   * Waits until this reader has consumed up to the end of the log as it is
   * now: the high watermark, past every transaction written before the call,
   * so a committed one is visible and an aborted one provably is not. With
   * `openTransaction`, while one of the caller's own transactions is still
   * open (the high watermark would wait for it), only up to the last stable
   * offset, which ends before it.
   */
  async caughtUp({ timeoutMs = 30_000, openTransaction = false } = {}): Promise<this> {
    const stable = await this.#admin.fetchTopicOffsets(this.topic); // kafkajs asks READ_COMMITTED: the last stable offset
    const ends = openTransaction
      ? new Map(stable.map((p) => [p.partition, BigInt(p.offset)]))
      : await highWatermarks(this.#brokers, this.topic, stable.map((p) => p.partition));
    await waitUntil(
      () => [...ends].every(([partition, end]) => end === 0n || (this.#positions.get(partition) ?? 0n) >= end),
      timeoutMs,
      `the reader of ${this.topic} to reach ${[...ends].map(([p, e]) => `${p}:${e}`).join(',')}`,
    );
    return this;
  }

  /** The last value read for `key`, or undefined. */
  latest(key: string): string | undefined {
    for (let i = this.records.length - 1; i >= 0; i--) {
      const r = this.records[i] as ReadRecord;
      if (r.key === key) return r.value ?? undefined;
    }
    return undefined;
  }

  values(): (string | null)[] {
    return this.records.map((r) => r.value);
  }

  async close(): Promise<void> {
    await this.#consumer.disconnect();
    await this.#admin.disconnect();
  }
}
