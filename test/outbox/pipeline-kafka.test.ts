/**
 * Kafka as the pipeline source, on a real broker and a real Postgres:
 * kafkaSource on its own (explicit offsets, read_committed, waitFor, bounded
 * buffers, option checks), and Kafka -> pipeline (Postgres state + outbox) ->
 * relay -> Kafka with the worker process SIGKILLed three times.
 */
import { fileURLToPath } from 'node:url';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, TransactionStateError, TxkitError } from '../../src/core/index.js';
import { knexTransactions } from '../../src/adapters/sql/index.js';
import { InboxFencedError, partitionOf, pipeline, sqlOutboxStore } from '../../src/outbox/index.js';
import { kafkaSource } from '../../src/outbox/kafka/kafka-source.js';
import type { KafkaSourceOptions } from '../../src/outbox/kafka/kafka-types.js';
import type { SourceMessage } from '../../src/outbox/outbox-types.js';
import { TopicReader, createTopics, makeKafka, uniqueName } from '../kafka/kafka-support.js';
import { service } from '../support/services.js';
import { killWhen, pollUntil, startWorker, stopWorker } from '../support/worker-process.js';
import type { WorkerProcess } from '../support/worker-process.js';

const brokers = service('kafka');
const pg = service('postgres');
const WORKER = fileURLToPath(new URL('./pipeline-process.ts', import.meta.url));

const valuesOf = (messages: SourceMessage[]): string[] => messages.map((m) => String(m.value));

// The source reads with kafkajs (a consumer group of its own, seeking) or with @platformatic/kafka (Fetch requests at
// the asked offsets, no group); the writers and the admin client are kafkajs either way.
describe.skipIf(brokers === undefined).each(['kafkajs', 'platformatic'] as const)('kafkaSource on %s', (client) => {
  const writer = makeKafka(brokers ?? '', 'txkit-source-test');
  const kafka = writer;
  const reader = client === 'kafkajs' ? writer : { clientId: uniqueName('txkit-source-test'), bootstrapBrokers: (brokers ?? '').split(',') };
  const admin = kafka.admin();
  beforeAll(() => admin.connect());
  afterAll(() => admin.disconnect());

  it('reads by explicit offset, read_committed: records of an aborted transaction never appear; waitFor wakes on new records', async () => {
    const topic = uniqueName('source-rc');
    await createTopics(admin, [topic], 2);
    const producer = kafka.producer({ transactionalId: uniqueName('source-rc-tx'), idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const inTransaction = async (values: string[], commit: boolean): Promise<void> => {
      const tx = await producer.transaction();
      await tx.send({ topic, messages: values.map((value) => ({ value, partition: 0 })) });
      await (commit ? tx.commit() : tx.abort());
    };
    await inTransaction(['a0', 'a1', 'a2', 'a3', 'a4'], true);
    // Two aborted transactions of one producer in a row (a read_committed reader of @platformatic/kafka alone let the first through).
    await inTransaction(['x0', 'x1', 'x2'], false);
    await inTransaction(['y0'], false);
    await inTransaction(['b0', 'b1', 'b2', 'b3', 'b4'], true);

    const source = kafkaSource({ kafka: reader, topic, partitions: [0] });
    try {
      expect(await source.partitions()).toEqual([0]);
      const all = await source.fetch(0, 0, 100);
      expect(valuesOf(all)).toEqual(['a0', 'a1', 'a2', 'a3', 'a4', 'b0', 'b1', 'b2', 'b3', 'b4']);
      expect(all.every((m) => m.source === topic && m.partition === 0)).toBe(true);
      const [a3, a4, b0] = [all[3], all[4], all[5]] as [SourceMessage, SourceMessage, SourceMessage];
      // Offsets are the log's: a commit marker, three aborted records, an abort marker, one aborted record and an abort marker sit between a4 and b0.
      expect(b0.offset - a4.offset).toBe(1 + 3 + 1 + 1 + 1 + 1);

      expect(valuesOf(await source.fetch(0, a3.offset, 2))).toEqual(['a3', 'a4']);
      // An offset inside the aborted stretch reads on from the next committed record.
      expect(valuesOf(await source.fetch(0, a4.offset + 3, 1))).toEqual(['b0']);
      // Seeking back (a restart from the database position) reads the same records again.
      expect(valuesOf(await source.fetch(0, 0, 2))).toEqual(['a0', 'a1']);
      const end = (all.at(-1) as SourceMessage).offset + 1;
      expect(await source.fetch(0, end, 10)).toEqual([]);

      await expect(source.fetch(1, 0, 10)).rejects.toBeInstanceOf(ConfigError);

      let woke = false;
      const started = Date.now();
      const waiting = source.waitFor(0, end, 30_000).then(() => void (woke = true));
      await inTransaction(['c0'], true);
      await waiting;
      expect(woke).toBe(true);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(valuesOf(await source.fetch(0, end, 10))).toEqual(['c0']);
    } finally {
      await source.close();
      await producer.disconnect();
    }
    await expect(source.fetch(0, 0, 1)).rejects.toBeInstanceOf(TransactionStateError);
    await source.close(); // idempotent
  });

  it('a buffer bound far below the backlog still yields every record in order (fetching pauses and resumes)', async () => {
    const topic = uniqueName('source-bound');
    await createTopics(admin, [topic], 1);
    const producer = kafka.producer();
    await producer.connect();
    const total = 600;
    for (let i = 0; i < total; i += 50) {
      await producer.send({ topic, messages: Array.from({ length: 50 }, (_, j) => ({ value: `m${i + j}` })) });
    }
    await producer.disconnect();
    const source = kafkaSource({ kafka: reader, topic, maxBufferedMessages: 10, consumer: { maxBytesPerPartition: 1024 } });
    const seen: string[] = [];
    try {
      let offset = 0;
      for (let step = 0; step < total && seen.length < total; step++) {
        const batch = await source.fetch(0, offset, 7);
        if (batch.length === 0) await source.waitFor(0, offset, 5_000);
        seen.push(...valuesOf(batch));
        offset = batch.length === 0 ? offset : (batch.at(-1) as SourceMessage).offset + 1;
      }
    } finally {
      await source.close();
    }
    expect(seen).toEqual(Array.from({ length: total }, (_, i) => `m${i}`));
  });

  it('an offset outside the log (records deleted before they were processed, or past the end) is a typed error naming the bounds', async () => {
    const topic = uniqueName('source-range');
    await createTopics(admin, [topic], 1);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: ['r0', 'r1', 'r2', 'r3'].map((value) => ({ value })) });
    await producer.disconnect();
    // kafkajs finds the partition's leader in the metadata it has cached: load the new topic's first.
    await admin.fetchTopicMetadata({ topics: [topic] });
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '2' }] });
    const source = kafkaSource({ kafka: reader, topic });
    try {
      const deleted = await source.fetch(0, 0, 10).catch((e: unknown) => e);
      expect(deleted).toBeInstanceOf(TxkitError);
      expect((deleted as TxkitError).code).toBe('SOURCE_OFFSET_OUT_OF_RANGE');
      expect((deleted as TxkitError).message).toMatch(/outside the log \[2, 4\]: records 0\.\.1 were deleted/);
      const past = await source.fetch(0, 9, 10).catch((e: unknown) => e);
      expect((past as TxkitError).code).toBe('SOURCE_OFFSET_OUT_OF_RANGE');
      expect(valuesOf(await source.fetch(0, 2, 10))).toEqual(['r2', 'r3']);
    } finally {
      await source.close();
    }
  });

  it('close() while a waitFor is waiting: the wait ends quietly, later calls throw TransactionStateError', async () => {
    const topic = uniqueName('source-close');
    await createTopics(admin, [topic], 1);
    const source = kafkaSource({ kafka: reader, topic, catchUpTimeoutMs: 600_000 });
    expect(await source.fetch(0, 0, 10)).toEqual([]);
    const waiting = source.waitFor(0, 0, 600_000);
    await source.close();
    await waiting;
    await expect(source.fetch(0, 0, 1)).rejects.toBeInstanceOf(TransactionStateError);
    await expect(source.waitFor(0, 0, 1)).rejects.toBeInstanceOf(TransactionStateError);
  });

  it('rejects bad options with ConfigError naming the option', async () => {
    const bad: [string, unknown][] = [
      ['kafka', { topic: 't' }],
      ['topic', { kafka: reader, topic: '' }],
      ['partitions', { kafka: reader, topic: 't', partitions: [-1] }],
      ['partitions', { kafka: reader, topic: 't', partitions: [] }],
      ['twice', { kafka: reader, topic: 't', partitions: [1, 1] }],
      ['maxBufferedMessages', { kafka: reader, topic: 't', maxBufferedMessages: 0 }],
      ['catchUpTimeoutMs', { kafka: reader, topic: 't', catchUpTimeoutMs: 1.5 }],
      ['clientId', { kafka: { bootstrapBrokers: ['127.0.0.1:9'] }, topic: 't' }],
    ];
    for (const [what, options] of bad) {
      expect(() => kafkaSource(options as KafkaSourceOptions), what).toThrow(ConfigError);
      expect(() => kafkaSource(options as KafkaSourceOptions), what).toThrow(what);
    }
    const topic = uniqueName('source-parts');
    await createTopics(admin, [topic], 2);
    const source = kafkaSource({ kafka: reader, topic, partitions: [0, 5] });
    await expect(source.partitions()).rejects.toThrow(/has no partition 5/);
    await source.close();
  });
});

describe.skipIf(brokers === undefined || pg === undefined)('Kafka -> Postgres -> Kafka pipeline', () => {
  const TOTAL = 20_000;
  const KEYS = 50;
  const KILLS = 3;
  const kafka = makeKafka(brokers ?? '', 'txkit-pipeline-test');
  const admin = kafka.admin();
  const tablePrefix = `pk${process.pid}_${Date.now().toString(36)}_`;
  const workers: WorkerProcess[] = [];
  const readers: TopicReader[] = [];
  let db: Knex;
  beforeAll(async () => {
    db = knexFactory({ client: 'pg', connection: pg as string, pool: { min: 0, max: 4 } });
    await admin.connect();
  });
  afterAll(async () => {
    for (const w of workers) if (w.alive()) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    for (const r of readers) await r.close().catch(() => undefined);
    await admin.disconnect();
    for (const prefix of [tablePrefix, `${tablePrefix}f_`, `${tablePrefix}p_`]) {
      for (const t of [...sqlOutboxStore(db, { tablePrefix: prefix }).tableNames, `${prefix}totals`]) await db.schema.dropTableIfExists(t);
    }
    await db.destroy();
  });

  it('two workers that both read every partition: the inbox fences one per partition, every effect commits once', async () => {
    const topic = uniqueName('pipe-fence');
    const count = 800;
    await createTopics(admin, [topic], 3);
    const fencePrefix = `${tablePrefix}f_`;
    const store = sqlOutboxStore(db, { tablePrefix: fencePrefix, partitions: 1 });
    await store.migrate();
    const table = `${fencePrefix}totals`;
    await db.schema.createTable(table, (t) => {
      t.string('key', 64).primary();
      t.integer('n').notNullable();
    });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: Array.from({ length: count }, (_, i) => ({ key: `k${i % 30}`, value: String(i) })) });
    await producer.disconnect();
    const ctx = knexTransactions(db);
    const fenced: unknown[] = [];
    const sources = [kafkaSource({ kafka, topic }), kafkaSource({ kafka, topic })];
    const jobs = sources.map((source) =>
      pipeline({
        consumer: 'fence-test',
        source,
        db: ctx,
        store,
        batchSize: 20,
        pollIntervalMs: 100,
        onError: (err) => void (err instanceof InboxFencedError ? fenced.push(err) : undefined),
        handler: async (m, { tx }) => {
          await tx.handle.raw(`insert into ?? (key, n) values (?, 1) on conflict (key) do update set n = ??.n + 1`, [table, m.key, table]);
        },
      }),
    );
    try {
      for (const job of jobs) job.start();
      const done = async (): Promise<number> => Number(((await db(table).sum({ s: 'n' }).first()) as { s: string | null }).s ?? 0);
      await pollUntil(async () => (await done()) >= count, 60_000, `${count} messages processed`);
      for (const job of jobs) await job.stop();
      expect(await done()).toBe(count);
      expect(await store.deadLetters('fence-test')).toEqual([]);
      // Counted from what committed: a batch that lost the compare-and-set committed nothing.
      expect(jobs.reduce((n, job) => n + job.stats.processed, 0)).toBe(count);
      for (const e of fenced) expect(e).toBeInstanceOf(InboxFencedError);
      console.log(`[pipeline-kafka] fencing: ${fenced.length} batch(es) fenced; partitions fenced per worker: ${jobs.map((j) => j.stats.fenced.join(',') || '-').join(' / ')}`);
    } finally {
      for (const job of jobs) await job.stop();
      await Promise.all(sources.map((s) => s.close()));
      await ctx.close();
      await store.close();
      for (const t of [...store.tableNames, table]) await db.schema.dropTableIfExists(t);
    }
  }, 120_000);

  // The worker's source reads with kafkajs, or with @platformatic/kafka; its tables are its own.
  for (const client of ['kafkajs', 'platformatic'] as const) it(`${TOTAL} messages exactly once through Postgres while the worker is SIGKILLed ${KILLS} times (source on ${client})`, async () => {
    const prefix = client === 'kafkajs' ? tablePrefix : `${tablePrefix}p_`;
    const input = uniqueName('pipe-in');
    const output = uniqueName('pipe-out');
    await createTopics(admin, [input, output], 4);
    const store = sqlOutboxStore(db, { tablePrefix: prefix, partitions: 4 });
    await store.migrate();
    await db.schema.createTable(`${prefix}totals`, (t) => {
      t.string('key', 64).primary();
      t.integer('n').notNullable();
      t.bigInteger('total').notNullable();
    });

    const expected = new Map<string, { n: number; total: number }>();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (let start = 0; start < TOTAL; start += 500) {
      const messages = Array.from({ length: 500 }, (_, i) => {
        const id = start + i;
        const key = `k${id % KEYS}`;
        const amount = (id % 97) + 1;
        const e = expected.get(key) ?? { n: 0, total: 0 };
        expected.set(key, { n: e.n + 1, total: e.total + amount });
        // Kafka partition = outbox partition of the key: each partition loop publishes to one outbox partition.
        return { key, value: JSON.stringify({ id, key, amount }), partition: partitionOf(key, 4) };
      });
      await producer.send({ topic: input, messages });
    }
    await producer.disconnect();

    const downstream = await TopicReader.open(kafka, output);
    readers.push(downstream);
    const progress = async (): Promise<number> => Number(((await db(`${prefix}totals`).sum({ s: 'n' }).first()) as { s: string | null }).s ?? 0);
    const env = {
      PIPELINE_BROKERS: brokers as string,
      PIPELINE_DATABASE_URL: pg as string,
      PIPELINE_TABLE_PREFIX: prefix,
      PIPELINE_INPUT: input,
      PIPELINE_OUTPUT: output,
      PIPELINE_CONSUMER: 'pipeline-kafka-test',
      PIPELINE_RELAY_ID: uniqueName('pipe-relay'),
      PIPELINE_DEBUG: '1',
      PIPELINE_SOURCE_CLIENT: client,
    };

    const kills: number[] = [];
    let last = 0;
    for (let run = 1; run <= KILLS; run++) {
      const w = startWorker(WORKER, env);
      workers.push(w);
      const target = last + Math.ceil(TOTAL * 0.2) + Math.floor(Math.random() * TOTAL * 0.03);
      await killWhen(w, async () => (await progress()) >= target, 120_000, `run ${run} to commit ${target} messages to Postgres`);
      last = await progress();
      kills.push(last);
    }
    const final = startWorker(WORKER, env);
    workers.push(final);
    await pollUntil(async () => !final.alive() || (await progress()) >= TOTAL, 120_000, `all ${TOTAL} messages in Postgres`);
    await pollUntil(() => !final.alive() || downstream.records.length >= TOTAL, 120_000, `all ${TOTAL} messages at the output`);
    expect(final.alive(), final.stderr.join('')).toBe(true);
    expect(await stopWorker(final), `the last worker did not stop cleanly: ${final.stderr.join('').slice(-3000)}`).toBe(0);
    await downstream.caughtUp();

    // Database state: each key's count and sum are exactly the input's: no effect lost or applied twice.
    const rows = (await db(`${prefix}totals`).select('key', 'n', 'total')) as { key: string; n: number; total: string | number }[];
    expect(new Map(rows.map((r) => [r.key, { n: Number(r.n), total: Number(r.total) }]))).toEqual(expected);
    expect(await store.deadLetters()).toEqual([]);
    // The inbox positions reached the end of every input partition.
    const ends = await admin.fetchTopicOffsets(input);
    for (const e of ends) expect(await store.inboxPosition(undefined, { consumer: 'pipeline-kafka-test', source: input, partition: e.partition })).toBe(Number(e.high));
    // Output (read_committed, read the whole time): every input id exactly once, values unchanged.
    const ids = downstream.records.map((r) => (JSON.parse(r.value as string) as { id: number }).id);
    expect(ids.length).toBe(TOTAL);
    expect(new Set(ids).size).toBe(TOTAL);
    expect(Math.min(...ids)).toBe(0);
    expect(Math.max(...ids)).toBe(TOTAL - 1);
    for (const r of downstream.records) expect(r.key).toBe((JSON.parse(r.value as string) as { key: string }).key);
    // Each run went at least 20% further than the one before it.
    expect(kills.length).toBe(KILLS);
    kills.reduce((prev, k) => (expect(k - prev).toBeGreaterThanOrEqual(TOTAL * 0.2), k), 0);
    console.log(`[pipeline-kafka, source on ${client}] killed after ${kills.join(', ')} messages committed; output ${ids.length} records, ${new Set(ids).size} distinct`);
  }, 480_000);
});
