// `npm run bench -- outbox`: the outbox on real Postgres and a real Kafka broker.
// (a) Drain: OutboxRelay moves N pre-filled outbox rows (TXKIT_BENCH_OUTBOX_ROWS, default
//     1,000,000) from Postgres to Kafka in broker transactions; against raw kafkajs
//     transactions sending the same messages from memory, and a hand-written relay (read
//     the rows with pg, send them in a kafkajs transaction, keep the position in memory:
//     the floor of reading from Postgres, without exactly-once), measured in the same run.
// (b) Idle latency: one record per database transaction, spaced out; time from the
//     database commit to the record reaching a read_committed consumer, the relay woken
//     by LISTEN/NOTIFY (the publisher uses its own store object, so no in-process wake).
// (c) Pipeline: exactly-once pipeline() (inbox position in the database transaction,
//     outbox, relay) vs the same handler and writes at-least-once (output sent directly,
//     positions stored after the fact), 100 messages per batch; the relay once in the
//     pipeline's process and once as its own process (`txkit relay`); each with its Kafka
//     producers on kafkajs and on @platformatic/kafka, with the CPU each process spent.
// Runs the built package (dist/), as users run it; `npm run bench` builds it first.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import kafkajs from 'kafkajs';
import type { Kafka as KafkaClient, Message, Producer } from 'kafkajs';
import { Producer as PlatformaticProducer } from '@platformatic/kafka';
import { startKafka } from '../scripts/services/kafka.mjs';
import { startCpuMeter } from './process-cpu.js';
import type { CpuSample } from './process-cpu.js';
import { SMOKE, benchGoal, collectGarbage, fmt, fmtInterval, loadEntry, median, ratioInterval, roundOrder, sampleMemory, sized, unpairedRatioInterval, verdict } from './harness.js';
import type { BenchGoal, BenchResult, Interval } from './harness.js';

type OutboxModule = typeof import('../src/outbox/index.js');
type KafkaModule = typeof import('../src/adapters/kafka/index.js');
type SqlModule = typeof import('../src/adapters/sql/index.js');
const ob = await loadEntry<OutboxModule>('outbox');
const { DEFAULT_KAFKA_PRODUCER_RETRY, kafkaTransactions } = await loadEntry<KafkaModule>('kafka');
const { knexTransactions } = await loadEntry<SqlModule>('sql');

type MessageSource = import('../src/outbox/index.js').MessageSource;
type SourceFactory = (tag: string) => { source: MessageSource; close: () => Promise<unknown> };
const { Kafka, logLevel } = kafkajs;
const PG_URL = process.env.TXKIT_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ROWS = Number(process.env.TXKIT_BENCH_OUTBOX_ROWS ?? sized(1_000_000, 400));
/** Outbox partitions of the drain; each has its own order and its own relay position. */
const PARTITIONS = 4;
const KEYS_PER_PARTITION = 250;
const VALUE_BYTES = 100;
const RELAY_BATCH = Number(process.env.TXKIT_BENCH_OUTBOX_BATCH ?? sized(2_000, 50));
const LATENCY_SAMPLES = Number(process.env.TXKIT_BENCH_OUTBOX_LATENCY_SAMPLES ?? sized(500, 5));
const PIPELINE_MESSAGES = Number(process.env.TXKIT_BENCH_OUTBOX_PIPELINE_MESSAGES ?? sized(20_000, 60));
/** Rounds of (c): enough pairs for a bootstrap interval of the ratio on a machine whose speed drifts between rounds. */
const PIPELINE_ROUNDS = sized(7, 1);

type Closer = () => Promise<unknown>;

/** One variant of the drain: the turn that sends up to `size` more records, and what it sent (in all, and timed). */
interface Drainer {
  turn(size: number): Promise<number>;
  sent: number;
  timed: number;
  rates: number[];
  /** CPU of the timed turns, and their wall time (wallMs). */
  cpu: CpuSample;
}

/** The timed turns of one variant of the drain: records, each turn's msg/s, and the CPU the client, the broker and Postgres spent in them over their wall time (wallMs). */
interface DrainTurns {
  rows: number;
  rates: number[];
  cpu: CpuSample;
}

interface DrainResult {
  rows: number;
  /** Rows each variant sent untimed before its first turn. */
  warmRows: number;
  prefillMs: number;
  transactions: number;
  /** Rows per turn: relay and anchor alternate, segment by segment. */
  segment: number;
  relay: DrainTurns;
  /** Raw kafkajs transactions sending the same messages from memory. */
  native: DrainTurns;
  /** The same rows read with pg and sent by raw kafkajs transactions, position kept in memory, in turns of its own. */
  hand: DrainTurns;
  /** The same rows sent again by a second relay id whose producer runs on @platformatic/kafka, in turns of its own. */
  platformatic: DrainTurns & { transactions: number };
  /** The process's memory while draining: peak heap in the first and the last quarter of the rows relayed, and peak RSS. */
  memory: { startHeap: number; firstQuarterPeakHeap: number; lastQuarterPeakHeap: number; peakRss: number };
}

interface LatencyResult {
  /** Database commit to arrival at the consumer, ms. */
  samples: number[];
  /** Database commit to the relay's broker commit, ms. */
  relaySamples: number[];
}

/** Raw kafkajs transactions of one record, spaced like (b): where the broker part of the latency goes. */
interface BrokerCostResult {
  /**
   * Transaction duration (begin to commit returned), ms, per way of keeping the position; for the end-to-end
   * variant, begin to the record's arrival at a read_committed consumer.
   */
  variants: { name: string; samples: number[] }[];
  /** kafkajs request durations (ms, whole milliseconds as kafkajs reports them) of the consumer-group-offset variant. */
  requests: { api: string; perTransaction: number; p50: number; p99: number }[];
}

/** The Kafka client under both variants of (c): the relay's producer and the at-least-once producer. */
type PipelineClient = 'kafkajs' | 'platformatic';
const PIPELINE_CLIENTS: readonly PipelineClient[] = ['kafkajs', 'platformatic'];
const PIPELINE_CLIENT_NAME: Record<PipelineClient, string> = { kafkajs: 'kafkajs', platformatic: '@platformatic/kafka' };

/**
 * The variants of (c): exactly-once with the relay in the pipeline's process (`eos`) and as its own process, the
 * `txkit relay` command (`apart`), and the same work at-least-once (`alo`).
 */
type PipelineVariant = 'eos' | 'apart' | 'alo';
const PIPELINE_VARIANTS: readonly PipelineVariant[] = ['eos', 'apart', 'alo'];

interface PipelineRound {
  client: PipelineClient;
  /** msg/s of each variant. */
  rates: Record<PipelineVariant, number>;
  /** CPU each process spent while each variant ran (from its first fetch to its last output committed). */
  cpu: Record<PipelineVariant, CpuSample>;
}

/** One variant's throughput and the CPU it took. */
interface VariantRun {
  rate: number;
  cpu: CpuSample;
}

interface PipelineResult {
  rounds: PipelineRound[];
  /** What the pipelines read from, for the report. */
  source: string;
}

export default async function outboxBench(): Promise<BenchResult> {
  if (!Number.isInteger(ROWS) || ROWS < 1) throw new Error(`TXKIT_BENCH_OUTBOX_ROWS must be a positive integer, got ${process.env.TXKIT_BENCH_OUTBOX_ROWS}`);
  const broker = await startKafka({ log: (line: string) => console.error(`[kafka] ${line}`) });
  const kafka = new Kafka({ brokers: [broker.brokers], clientId: 'txkit-bench-outbox', logLevel: logLevel.NOTHING });
  const db = knexFactory({ client: 'pg', connection: PG_URL, pool: { min: 0, max: 6 } });
  const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
  const closers: Closer[] = [() => db.destroy(), () => pool.end()];
  const stamp = `${process.pid}_${Date.now().toString(36)}`;
  try {
    const pgVersion = String(((await pool.query('show server_version')).rows[0] as { server_version: string }).server_version);
    const drain = await drainBench(kafka, broker.brokers.split(','), db, pool, stamp, broker.pid, closers);
    const latency = await withOwnClosers((own) => latencyBench(kafka, db, stamp, own));
    const latencyPlt = await withOwnClosers((own) =>
      latencyBench(kafka, db, stamp, own, { clientId: 'bench-outbox-latency-plt', bootstrapBrokers: broker.brokers.split(',') }),
    );
    const brokerCost = await brokerCostBench(kafka, stamp, closers);
    const pipe = await pipelineBench(kafka, broker.brokers.split(','), db, stamp, broker.pid, closers);
    return report(drain, latency, latencyPlt, brokerCost, pipe, broker.version, pgVersion);
  } finally {
    for (const close of closers.reverse()) await close().catch((err: unknown) => console.error(`[outbox bench] cleanup: ${String(err)}`));
    await broker.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// shared helpers

async function createTopic(kafka: KafkaClient, topic: string, numPartitions: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

function dropTables(db: Knex, prefix: string): Closer {
  return async () => {
    for (const t of [...ob.sqlOutboxStore(db, { tablePrefix: prefix }).tableNames, `${prefix}state`]) await db.schema.dropTableIfExists(t);
  };
}

/**
 * Runs `run` with closers of its own, closed (last first) when it ends: what one run opens (stores and their LISTEN
 * connections, producers, tables) goes before the next, since the sections share one connection pool.
 */
async function withOwnClosers<T>(run: (closers: Closer[]) => Promise<T>): Promise<T> {
  const own: Closer[] = [];
  try {
    return await run(own);
  } finally {
    for (const close of own.reverse()) await close().catch((err: unknown) => console.error(`[outbox bench] cleanup: ${String(err)}`));
  }
}

/** Keys that hash to each outbox partition, so pre-filled rows sit where publish() would put them. */
function keysByPartition(partitions: number, perPartition: number): string[][] {
  const keys: string[][] = Array.from({ length: partitions }, () => []);
  for (let i = 0; keys.some((k) => k.length < perPartition); i++) {
    if (i > partitions * perPartition * 100) throw new Error('could not find keys for every outbox partition');
    const key = `key-${i}`;
    const bucket = keys[ob.partitionOf(key, partitions)] as string[];
    if (bucket.length < perPartition) bucket.push(key);
  }
  return keys;
}

/** Resolves when `check` holds; polls with a growing delay and fails after `timeoutMs`. */
async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 1; !(await check()); delay = Math.min(delay * 2, 50)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

function relayContext(kafka: KafkaClient, id: string, closers: Closer[], platformatic?: { clientId: string; bootstrapBrokers: string[] }) {
  const ctx = platformatic === undefined ? kafkaTransactions(kafka, { transactionalId: id }) : kafkaTransactions(platformatic, { transactionalId: id });
  closers.push(() => ctx.close());
  return { ctx };
}

// ---------------------------------------------------------------------------------------------
// (a) drain

/**
 * Fills the outbox as publish() would, in one statement: row g goes to partition g % P with
 * sequence g / P + 1 and a key of that partition; the counters end at each partition's last seq.
 */
async function prefill(pool: pg.Pool, tables: { outbox: string; partitions: string }, rows: number, topic: string, keys: string[][], stamp: string): Promise<void> {
  const flat = keys.flat();
  const chunk = 250_000;
  for (let from = 0; from < rows; from += chunk) {
    const to = Math.min(rows, from + chunk) - 1;
    await pool.query(
      `insert into ${tables.outbox} (part, seq, id, topic, msg_key, msg_value, headers, created_at)
       select g % $1, g / $1 + 1, u.id, $2, ($3::text[])[(g % $1) * $4 + (g / $1) % $4 + 1],
              convert_to(rpad(g::text, $5, 'x'), 'UTF8'), json_build_object('txkit-outbox-id', u.id)::text, $6
         from generate_series($7::bigint, $8::bigint) g
         cross join lateral (select md5($9 || g::text)::uuid::text as id) u`,
      [PARTITIONS, topic, flat, KEYS_PER_PARTITION, VALUE_BYTES, Date.now(), from, to, stamp],
    );
  }
  await pool.query(
    `update ${tables.partitions} p set next_seq = c.n from (select part, max(seq) as n from ${tables.outbox} group by part) c where p.part = c.part`,
  );
  await pool.query(`analyze ${tables.outbox}`);
}

/** The messages of rows [from, to) as the relay sends them, built in memory for the native anchor. */
function nativeMessages(from: number, to: number, keys: string[][], stamp: string): Message[] {
  const out: Message[] = [];
  for (let g = from; g < to; g++) {
    const part = g % PARTITIONS;
    const seq = Math.floor(g / PARTITIONS) + 1;
    const id = `${stamp}-${g}`;
    out.push({
      key: (keys[part] as string[])[Math.floor(g / PARTITIONS) % KEYS_PER_PARTITION] as string,
      value: Buffer.from(String(g).padEnd(VALUE_BYTES, 'x')),
      headers: { 'txkit-outbox-id': id, [ob.OUTBOX_SEQ_HEADER]: `${part}:${seq}` },
    });
  }
  return out;
}

async function drainBench(kafka: KafkaClient, brokerList: string[], db: Knex, pool: pg.Pool, stamp: string, kafkaPid: number, closers: Closer[]): Promise<DrainResult> {
  const prefix = `bench_ob${stamp}_`;
  const topic = `bench-outbox-drain-${stamp}`;
  const nativeTopic = `bench-outbox-native-${stamp}`;
  const handTopic = `bench-outbox-hand-${stamp}`;
  await createTopic(kafka, topic, PARTITIONS);
  await createTopic(kafka, nativeTopic, PARTITIONS);
  await createTopic(kafka, handTopic, PARTITIONS);
  const store = ob.sqlOutboxStore(db, { tablePrefix: prefix, partitions: PARTITIONS });
  closers.push(dropTables(db, prefix), () => store.close());
  await store.migrate();
  const keys = keysByPartition(PARTITIONS, KEYS_PER_PARTITION);
  console.error(`[outbox bench] pre-filling ${ROWS} outbox rows`);
  const p0 = performance.now();
  await prefill(pool, store.tables, ROWS, topic, keys, stamp);
  const prefillMs = performance.now() - p0;
  console.error(`[outbox bench] pre-filled in ${fmt(prefillMs / 1000, 1)} s; draining`);

  const { ctx } = relayContext(kafka, `bench-outbox-relay-${stamp}`, closers);
  const relay = new ob.OutboxRelay({
    store,
    sink: ob.kafkaSink({ context: ctx, kafka, positionsTopic: `bench-outbox-positions-${stamp}`, positionsPartitions: PARTITIONS }),
    relayId: stamp,
    batchSize: RELAY_BATCH,
  });
  // The same outbox again through a second relay id (a relay id sends every row) whose producer runs on @platformatic/kafka.
  const { ctx: pltCtx } = relayContext(kafka, `bench-outbox-relay-plt-${stamp}`, closers, { clientId: 'bench-outbox-plt', bootstrapBrokers: brokerList });
  const pltRelay = new ob.OutboxRelay({
    store,
    sink: ob.kafkaSink({ context: pltCtx, kafka, positionsTopic: `bench-outbox-positions-plt-${stamp}`, positionsPartitions: PARTITIONS }),
    relayId: `${stamp}-plt`,
    batchSize: RELAY_BATCH,
  });
  // Native anchor: kafkajs transactions of the same size and messages, with txkit's producer retry
  // (kafkajs' default 300 ms retry of CONCURRENT_TRANSACTIONS would make the anchor slow, not fair).
  const producer = kafka.producer({ transactionalId: `bench-outbox-native-${stamp}`, idempotent: true, maxInFlightRequests: 1, retry: { ...DEFAULT_KAFKA_PRODUCER_RETRY } });
  await producer.connect();
  closers.push(() => producer.disconnect());
  const handProducer = kafka.producer({ transactionalId: `bench-outbox-hand-${stamp}`, idempotent: true, maxInFlightRequests: 1, retry: { ...DEFAULT_KAFKA_PRODUCER_RETRY } });
  await handProducer.connect();
  closers.push(() => handProducer.disconnect());

  // Relay and anchor take turns, segment by segment, so drift in the shared machine's speed hits both alike.
  const segment = Math.max(RELAY_BATCH, Math.min(100_000, Math.floor(ROWS / 4 / RELAY_BATCH) * RELAY_BATCH));
  // Before the timed turns, every variant sends its first rows untimed: the code paths they share (kafkajs'
  // encoding, pg's parsing) are compiled during whichever variant runs first, and the relay's one-time start (its
  // producer's InitProducerId, the positions topic, the first position read) is not drain throughput. Twenty
  // transactions of 2000 records took 83 ms falling to 26 ms each in a cold process.
  const warmRows = Math.min(segment, Math.max(RELAY_BATCH, Math.floor(ROWS / 25 / RELAY_BATCH) * RELAY_BATCH));
  // One turn of a relay: partition after partition, `relayPartition(p)` sending that partition's next batch
  // (returning how many records it sent), until `size` records are sent or a round finds nothing.
  const partitionRounds = async (size: number, relayPartition: (p: number) => Promise<number>): Promise<number> => {
    let sent = 0;
    // Bounded: every outbox partition is visited once per round, and a round without records ends the turn.
    for (let round = 0; sent < size && round < ROWS; round++) {
      let inRound = 0;
      for (let p = 0; p < PARTITIONS && sent < size; p++) {
        const n = await relayPartition(p);
        sent += n;
        inRound += n;
      }
      if (inRound === 0) break;
    }
    return sent;
  };
  let nativeNext = 0;
  const nativeTurn = async (size: number): Promise<number> => {
    const end = Math.min(ROWS, nativeNext + size);
    for (let from = nativeNext; from < end; from += RELAY_BATCH) {
      const tx = await producer.transaction();
      await tx.send({ topic: nativeTopic, messages: nativeMessages(from, Math.min(end, from + RELAY_BATCH), keys, stamp) });
      await tx.commit();
    }
    const n = end - nativeNext;
    nativeNext = end;
    return n;
  };
  // Hand-written relay: what a team would write without txkit, minus exactly-once (the position lives in memory).
  const handPositions = Array.from({ length: PARTITIONS }, () => 0);
  const handRead = `select seq, msg_key, msg_value, headers from ${store.tables.outbox} where part = $1 and seq > $2 order by seq limit $3`;
  const handTurn = (size: number): Promise<number> =>
    partitionRounds(size, async (p) => {
      const { rows } = await pool.query<{ seq: string; msg_key: string | null; msg_value: Buffer | null; headers: string | null }>(handRead, [p, handPositions[p], RELAY_BATCH]);
      if (rows.length === 0) return 0;
      const messages: Message[] = rows.map((r) => ({
        key: r.msg_key,
        value: r.msg_value,
        headers: { ...(r.headers === null ? {} : (JSON.parse(r.headers) as Record<string, string>)), [ob.OUTBOX_SEQ_HEADER]: `${p}:${r.seq}` },
      }));
      const tx = await handProducer.transaction();
      await tx.send({ topic: handTopic, messages });
      await tx.commit();
      handPositions[p] = Number((rows.at(-1) as { seq: string }).seq);
      return rows.length;
    });
  // The variants, each with what it sent in all and in its timed turns.
  const drainer = (turn: (size: number) => Promise<number>): Drainer => ({ turn, sent: 0, timed: 0, rates: [], cpu: { wallMs: 0, node: 0, kafka: 0, postgres: 0 } });
  const drainers = {
    relay: drainer((size) => partitionRounds(size, (p) => relay.relayOnce(p))),
    native: drainer(nativeTurn),
    platformatic: drainer((size) => partitionRounds(size, (p) => pltRelay.relayOnce(p))),
    hand: drainer(handTurn),
  };
  const all = Object.values(drainers);
  for (const d of all) d.sent += await d.turn(warmRows);
  collectGarbage();
  const startHeap = process.memoryUsage().heapUsed;
  const sampler = sampleMemory(() => drainers.relay.sent);
  // Each round, every variant takes a turn in roundOrder's order: none always runs first or last, or always after
  // the same other variant (whose garbage, or whose writes the database and the broker are still flushing, it would inherit).
  for (let k = 0; all.some((d) => d.sent < ROWS); k++) {
    if (k > ROWS) throw new Error('the drain made no progress');
    for (const t of roundOrder(k, all.length)) {
      const d = all[t] as Drainer;
      if (d.sent >= ROWS) continue;
      const meter = startCpuMeter(kafkaPid);
      const n = await d.turn(segment);
      const cpu = meter.stop();
      if (n === 0) continue;
      d.sent += n;
      d.timed += n;
      d.rates.push(n / (cpu.wallMs / 1000));
      for (const field of ['wallMs', 'node', 'kafka', 'postgres'] as const) d.cpu[field] += cpu[field];
    }
    const { relay: r, native: nat } = drainers;
    console.error(`[outbox bench] drain round ${k + 1}: relay ${fmt(r.rates.at(-1) ?? 0, 0)} msg/s, native ${fmt(nat.rates.at(-1) ?? 0, 0)} msg/s (${r.sent} relayed)`);
  }
  const samples = sampler.stop();
  // Bounded means the relay holds a batch or two, whatever the backlog: the heap's peak late in the drain is that of early on.
  const peakHeap = (from: number, to: number): number =>
    Math.max(0, ...samples.filter((m) => m.progress >= from && m.progress <= to).map((m) => m.heapUsed));
  const memory = {
    startHeap,
    firstQuarterPeakHeap: peakHeap(0, ROWS / 4),
    lastQuarterPeakHeap: peakHeap((3 * ROWS) / 4, ROWS),
    peakRss: Math.max(...samples.map((m) => m.rss)),
  };
  const { relay: relayed, native, platformatic, hand } = drainers;
  if (relayed.sent !== ROWS || (await relay.drain()) !== 0) throw new Error(`the relay sent ${relayed.sent} records, expected ${ROWS}`);
  if (platformatic.sent !== ROWS || (await pltRelay.drain()) !== 0) throw new Error(`the relay on @platformatic/kafka sent ${platformatic.sent} records, expected ${ROWS}`);
  if (hand.sent !== ROWS) throw new Error(`the hand-written relay sent ${hand.sent} records, expected ${ROWS}`);
  await checkEndOffsets(kafka, handTopic, ROWS);
  await checkEndOffsets(kafka, topic, 2 * ROWS);
  const turns = ({ timed, rates, cpu }: Drainer): DrainTurns => ({ rows: timed, rates, cpu });
  console.error(`[outbox bench] relay: ${fmt(relayed.timed / (relayed.cpu.wallMs / 1000), 0)} msg/s, native: ${fmt(native.timed / (native.cpu.wallMs / 1000), 0)} msg/s (${relay.stats.transactions} relay transactions)`);
  return {
    rows: ROWS,
    warmRows,
    prefillMs,
    transactions: relay.stats.transactions,
    segment,
    relay: turns(relayed),
    native: turns(native),
    hand: turns(hand),
    platformatic: { ...turns(platformatic), transactions: pltRelay.stats.transactions },
    memory,
  };
}

/** Every record arrived: the topic's end offsets hold at least that many records (plus commit markers). */
async function checkEndOffsets(kafka: KafkaClient, topic: string, atLeast: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    const total = offsets.reduce((s, o) => s + Number(o.high), 0);
    if (total < atLeast) throw new Error(`topic ${topic} holds ${total} offsets, fewer than the ${atLeast} records relayed`);
  } finally {
    await admin.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// (b) idle latency

/** (b) with the relay's producer on kafkajs, or on @platformatic/kafka when its connection options are given. */
async function latencyBench(kafka: KafkaClient, db: Knex, base: string, closers: Closer[], platformatic?: { clientId: string; bootstrapBrokers: string[] }): Promise<LatencyResult> {
  const stamp = platformatic === undefined ? base : `${base}_plt`;
  const prefix = `bench_obl${stamp}_`;
  const topic = `bench-outbox-latency-${stamp}`;
  await createTopic(kafka, topic, 1);
  const relayStore = ob.sqlOutboxStore(db, { tablePrefix: prefix });
  // The publisher's own store object: its in-process wake-up does not reach the relay, LISTEN/NOTIFY must.
  const publisherStore = ob.sqlOutboxStore(db, { tablePrefix: prefix });
  closers.push(dropTables(db, prefix), () => relayStore.close(), () => publisherStore.close());
  await relayStore.migrate();
  const { ctx } = relayContext(kafka, `bench-outbox-latency-${stamp}`, closers, platformatic);
  const sink = ob.kafkaSink({ context: ctx, kafka: platformatic ?? kafka, positionsTopic: `bench-outbox-lpositions-${stamp}`, positionsPartitions: 1 });
  // When each relay transaction committed, to split the latency into relay and consumer parts.
  let relayCommittedAt = 0;
  const relay = new ob.OutboxRelay({
    store: relayStore,
    sink: {
      ...sink,
      writePosition: async (tx, { relayId, partition, seq }) => {
        await sink.writePosition(tx, { relayId, partition, seq });
        tx.afterCommit(() => void (relayCommittedAt = performance.now()));
      },
    },
    relayId: `latency-${stamp}`,
  });

  const arrived = new Map<number, number>();
  const consumer = kafka.consumer({ groupId: `bench-outbox-latency-${stamp}`, readUncommitted: false, maxWaitTimeInMs: 20 });
  await consumer.connect();
  closers.push(() => consumer.disconnect());
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => void arrived.set(Number(String(message.value)), performance.now()),
  });
  const dbCtx = knexTransactions(db);
  const outbox = new ob.Outbox(publisherStore);
  relay.start();
  closers.push(() => relay.stop());
  // A first record, unmeasured, gets the producer, the consumer's fetch loop and the LISTEN going.
  await dbCtx.withTransaction((tx) => outbox.publish(tx, { topic, key: 'k', value: '-1' }));
  await until(() => arrived.has(-1), 60_000, 'the warm-up record at the consumer');

  const samples: number[] = [];
  const relaySamples: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    await dbCtx.withTransaction((tx) => outbox.publish(tx, { topic, key: 'k', value: String(i) }));
    const committed = performance.now();
    await until(() => arrived.has(i), 10_000, `record ${i} at the consumer`);
    samples.push((arrived.get(i) as number) - committed);
    relaySamples.push(relayCommittedAt - committed);
    // Spacing: the relay goes back to waiting for a notification before the next commit.
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 20));
  }
  await relay.stop();
  console.error(`[outbox bench] latency${platformatic === undefined ? '' : ' (@platformatic/kafka relay)'} p50/p99 ${fmt(percentile(samples, 50), 1)}/${fmt(percentile(samples, 99), 1)} ms; relay part ${fmt(percentile(relaySamples, 50), 1)}/${fmt(percentile(relaySamples, 99), 1)} ms`);
  return { samples, relaySamples };
}

// ---------------------------------------------------------------------------------------------
// (b2) the broker transaction of (b), taken apart with raw kafkajs

// As many as (b) has commits: a p99 of fewer is its second-largest sample, and (b) is judged against it.
const BROKER_COST_SAMPLES = sized(500, 5);
/** The (b2) variant that times a raw transaction until a read_committed consumer has its record. */
const END_TO_END = 'no position, begin to arrival at a read_committed kafkajs consumer (the path of (b) without the database and the relay)';
/** The (b2) variant of the relay's own broker transaction (the record and its position record) timed until the consumer has the record. */
const EXACTLY_ONCE_END_TO_END =
  'position as a record in the same produce request, begin to arrival at a read_committed kafkajs consumer (the broker part of (b), exactly-once, without the database and the relay)';

async function brokerCostBench(kafka: KafkaClient, stamp: string, closers: Closer[]): Promise<BrokerCostResult> {
  const topic = `bench-outbox-cost-${stamp}`;
  const positions = `bench-outbox-cost-positions-${stamp}`;
  const admin = kafka.admin();
  await admin.connect();
  closers.push(() => admin.disconnect());
  await admin.createTopics({
    topics: [{ topic, numPartitions: 1 }, { topic: positions, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }],
    waitForLeaders: true,
  });
  const producer = kafka.producer({ transactionalId: `bench-outbox-cost-${stamp}`, idempotent: true, maxInFlightRequests: 1, retry: DEFAULT_KAFKA_PRODUCER_RETRY });
  const requests = new Map<string, number[]>();
  let measuring = false;
  producer.on(producer.events.REQUEST, ({ payload }: { payload: { apiName: string; duration: number } }) => {
    if (measuring) (requests.get(payload.apiName) ?? requests.set(payload.apiName, []).get(payload.apiName))?.push(payload.duration);
  });
  await producer.connect();
  closers.push(() => producer.disconnect());
  // The path of (b) without the database and the relay: a raw transaction, then the same consumer settings as (b).
  const e2eTopic = `bench-outbox-cost-e2e-${stamp}`;
  await createTopic(kafka, e2eTopic, 1);
  /** Arrival time by record value. */
  const arrived = new Map<string, number>();
  const consumer = kafka.consumer({ groupId: `bench-outbox-cost-e2e-${stamp}`, readUncommitted: false, maxWaitTimeInMs: 20 });
  await consumer.connect();
  closers.push(() => consumer.disconnect());
  await consumer.subscribe({ topics: [e2eTopic], fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void arrived.set(String(message.value), performance.now()) });
  /** Waits for the record of value `value` at the consumer; returns when it arrived. */
  const arrival = async (value: string): Promise<number> => {
    await until(() => arrived.has(value), 10_000, `record ${value} at the end-to-end consumer`);
    return arrived.get(value) as number;
  };
  /** Each way runs one transaction; one that returns a time gives its own sample end (else: when run() returned). */
  const ways: { name: string; run: (i: number) => Promise<number | void> }[] = [
    {
      name: 'position as a transactional consumer-group offset (AddOffsetsToTxn + TxnOffsetCommit)',
      run: async (i) => {
        const tx = await producer.transaction();
        await tx.send({ topic, messages: [{ key: 'k', value: String(i) }] });
        await tx.sendOffsets({ consumerGroupId: `bench-outbox-cost-${stamp}`, topics: [{ topic: positions, partitions: [{ partition: 0, offset: String(i) }] }] });
        await tx.commit();
      },
    },
    {
      name: 'position as a record in the same produce request (kafkaSink)',
      run: async (i) => {
        const tx = await producer.transaction();
        await tx.sendBatch({
          topicMessages: [
            { topic, messages: [{ key: 'k', value: String(i) }] },
            { topic: positions, messages: [{ key: 'relay/0', value: String(i), partition: 0 }] },
          ],
        });
        await tx.commit();
      },
    },
    {
      name: 'no position (not exactly-once; the floor)',
      run: async (i) => {
        const tx = await producer.transaction();
        await tx.send({ topic, messages: [{ key: 'k', value: String(i) }] });
        await tx.commit();
      },
    },
    {
      name: END_TO_END,
      run: async (i) => {
        const tx = await producer.transaction();
        await tx.send({ topic: e2eTopic, messages: [{ key: 'k', value: String(i) }] });
        await tx.commit();
        return arrival(String(i));
      },
    },
    {
      name: EXACTLY_ONCE_END_TO_END,
      run: async (i) => {
        const tx = await producer.transaction();
        await tx.sendBatch({
          topicMessages: [
            { topic: e2eTopic, messages: [{ key: 'k', value: `positioned-${i}` }] },
            { topic: positions, messages: [{ key: 'relay/0', value: String(i), partition: 0 }] },
          ],
        });
        await tx.commit();
        return arrival(`positioned-${i}`);
      },
    },
  ];
  const variants = ways.map((w) => ({ name: w.name, samples: [] as number[] }));
  // Warm-up: connections, coordinator lookups, the group.
  for (const way of ways) await way.run(-1);
  for (let i = 0; i < BROKER_COST_SAMPLES; i++) {
    // Interleaved, order rotating, spaced like (b): the machine's drift hits every variant.
    for (let k = 0; k < ways.length; k++) {
      const v = (i + k) % ways.length;
      measuring = v === 0;
      const t0 = performance.now();
      const end = await (ways[v] as (typeof ways)[number]).run(i);
      (variants[v] as (typeof variants)[number]).samples.push((end ?? performance.now()) - t0);
      measuring = false;
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 20));
    }
  }
  const perApi = [...requests].map(([api, xs]) => ({ api, perTransaction: xs.length / BROKER_COST_SAMPLES, p50: percentile(xs, 50), p99: percentile(xs, 99) }));
  for (const v of variants) console.error(`[outbox bench] broker transaction, ${v.name}: p50/p99 ${fmt(percentile(v.samples, 50), 1)}/${fmt(percentile(v.samples, 99), 1)} ms`);
  return { variants, requests: perApi };
}

// ---------------------------------------------------------------------------------------------
// (c) pipeline exactly-once vs at-least-once

function inputMessages(from: number, to: number): { key: string; value: string }[] {
  return Array.from({ length: to - from }, (_, k) => ({ key: `order-${(from + k) % 500}`, value: JSON.stringify({ order: from + k, amount: (from + k) % 97 }) }));
}

/** The pipelines' input: a Kafka topic read by kafkaSource (read_committed). */
async function pipelineInput(kafka: KafkaClient, stamp: string, closers: Closer[]): Promise<{ make: SourceFactory; kind: string }> {
  const topic = `bench-outbox-orders-${stamp}`;
  await createTopic(kafka, topic, 1);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let from = 0; from < PIPELINE_MESSAGES; from += 1_000) await producer.send({ topic, messages: inputMessages(from, Math.min(PIPELINE_MESSAGES, from + 1_000)) });
  await producer.disconnect();
  return {
    kind: 'Kafka (`kafkaSource`, read_committed)',
    make: (tag) => {
      const source = ob.kafkaSource({ kafka, topic, groupId: `bench-outbox-source-${tag}` });
      closers.push(() => source.close());
      return { source, close: () => source.close() };
    },
  };
}

async function pipelineBench(kafka: KafkaClient, brokerList: string[], db: Knex, stamp: string, kafkaPid: number, closers: Closer[]): Promise<PipelineResult> {
  const { make, kind } = await pipelineInput(kafka, stamp, closers);
  const rounds: PipelineRound[] = [];
  const run: Record<PipelineVariant, typeof atLeastOnce> = {
    eos: (...args) => exactlyOnce(inProcessRelay, ...args),
    apart: (...args) => exactlyOnce(relayProcess, ...args),
    alo: atLeastOnce,
  };
  for (let r = 0; r < PIPELINE_ROUNDS; r++) {
    // The variants' order rotates and reverses every other round, so drift in the machine's speed hits all alike.
    const order = roundOrder(r, PIPELINE_VARIANTS.length).map((i) => PIPELINE_VARIANTS[i] as PipelineVariant);
    const clients = r % 2 === 0 ? PIPELINE_CLIENTS : [...PIPELINE_CLIENTS].reverse();
    for (const client of clients) {
      const runs: Partial<Record<PipelineVariant, VariantRun>> = {};
      for (const v of order) {
        const tag = `${stamp}_${r}_${v}_${client === 'kafkajs' ? 'k' : 'p'}`;
        const { source, close } = make(tag);
        const on = { kafka, brokerList, client };
        runs[v] = await withOwnClosers((own) => run[v](on, db, source, tag, kafkaPid, own));
        await close();
      }
      const done = runs as Record<PipelineVariant, VariantRun>;
      const round: PipelineRound = {
        client,
        rates: { eos: done.eos.rate, apart: done.apart.rate, alo: done.alo.rate },
        cpu: { eos: done.eos.cpu, apart: done.apart.cpu, alo: done.alo.cpu },
      };
      rounds.push(round);
      console.error(
        `[outbox bench] pipeline round ${r + 1} on ${PIPELINE_CLIENT_NAME[client]}: exactly-once ${fmt(round.rates.eos, 0)} msg/s ` +
          `(relay as its own process ${fmt(round.rates.apart, 0)}), at-least-once ${fmt(round.rates.alo, 0)} msg/s`,
      );
    }
  }
  return { rounds, source: kind };
}

/** The state write both variants make per message: an upsert of the order's running total. */
function stateWrite(handle: Knex.Transaction, table: string, key: string | null, value: Buffer | null): Promise<unknown> {
  const amount = (JSON.parse(String(value)) as { amount: number }).amount;
  return handle.raw(`insert into ${table} (k, total) values (?, ?) on conflict (k) do update set total = ${table}.total + excluded.total`, [key, amount]);
}

function outputOf(value: Buffer | null): string {
  const order = JSON.parse(String(value)) as { order: number; amount: number };
  return JSON.stringify({ order: order.order, charged: order.amount * 100 });
}

/** The broker connection of one (c) variant: kafkajs for topics, the client its Kafka producer runs on. */
interface PipelineKafka {
  kafka: KafkaClient;
  brokerList: string[];
  client: PipelineClient;
}

/** The relay of an exactly-once run, wherever it runs: how many records it has sent, and its end. */
interface PipelineRelay {
  /** The pid of the relay's own process, when it has one (its CPU is counted with this process's). */
  pid?: number | undefined;
  relayed(): number | Promise<number>;
  stop(): Promise<void>;
}

/** Where an exactly-once run's relay runs: what starts it on the store, with its Kafka producer on `client`. */
type RelayStarter = (run: { on: PipelineKafka; store: SqlStore; db: Knex; prefix: string; tag: string; closers: Closer[] }) => PipelineRelay;
type SqlStore = ReturnType<OutboxModule['sqlOutboxStore']>;

/** An OutboxRelay in this process, beside the pipeline: both share its one event loop. */
const inProcessRelay: RelayStarter = ({ on: { kafka, brokerList, client }, store, tag, closers }) => {
  const { ctx } = relayContext(kafka, `bench-outbox-pipe-${tag}`, closers, client === 'platformatic' ? { clientId: 'bench-outbox-pipe', bootstrapBrokers: brokerList } : undefined);
  const relay = new ob.OutboxRelay({ store, sink: ob.kafkaSink({ context: ctx, kafka, positionsTopic: `bench-outbox-ppositions-${tag}`, positionsPartitions: 1 }), relayId: tag });
  closers.push(() => relay.stop());
  relay.start();
  return { relayed: () => relay.stats.relayed, stop: () => relay.stop() };
};

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * `txkit relay` as its own process, as a service deploys it beside its workers: its own event loop and core.
 * How far it got is read from the store, where the relay records each partition's last relayed sequence
 * after every broker transaction (the partitions' sequences count from 1, so their sum is the records sent).
 */
const relayProcess: RelayStarter = ({ on: { brokerList, client }, store, db, prefix, tag, closers }) => {
  // The build's command, as installed; a smoke run (no build) runs the same main() from the sources.
  const command = SMOKE ? ['--import', 'tsx', 'test/outbox/relay-process.ts'] : ['bin/txkit.mjs'];
  const args = ['relay', '--database-url', PG_URL, '--table-prefix', prefix, '--kafka-brokers', brokerList.join(','), '--relay-id', tag];
  args.push('--transactional-id-prefix', `bench-outbox-cli-${tag}`, '--kafka-client', client);
  const child = spawn(process.execPath, [...command, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'late'>((resolve) => setTimeout(resolve, 30_000, 'late').unref())]);
    if (code === 'late') {
      child.kill('SIGKILL');
      throw new Error(`txkit relay did not stop within 30 s of SIGTERM; its stderr: ${stderr}`);
    }
    if (code !== 0) throw new Error(`txkit relay exited with ${String(code)}; its stderr: ${stderr}`);
  };
  closers.push(stop);
  return {
    pid: child.pid,
    relayed: async () => {
      if (child.exitCode !== null) throw new Error(`txkit relay exited with ${child.exitCode}; its stderr: ${stderr}`);
      const { rows } = (await db.raw(`select coalesce(sum(relayed_seq), 0) as n from ${store.tables.relays} where relay_id = ?`, [tag])) as { rows: { n: string }[] };
      return Number(rows[0]?.n ?? 0);
    },
    stop,
  };
};

async function exactlyOnce(
  startRelay: RelayStarter,
  on: PipelineKafka,
  db: Knex,
  source: MessageSource,
  tag: string,
  kafkaPid: number,
  closers: Closer[],
): Promise<VariantRun> {
  const prefix = `bench_obp${tag}_`;
  const topic = `bench-outbox-pipe-${tag}`;
  await createTopic(on.kafka, topic, 1);
  const store = ob.sqlOutboxStore(db, { tablePrefix: prefix });
  closers.push(dropTables(db, prefix), () => store.close());
  await store.migrate();
  const state = `${prefix}state`;
  await db.raw(`create table ${state} (k text primary key, total bigint not null)`);
  const job = ob.pipeline<Knex.Transaction>({
    consumer: `bench-${tag}`,
    source,
    db: knexTransactions(db),
    store,
    batchSize: 100,
    handler: async (m, { tx, outbox }) => {
      await stateWrite(tx.handle, state, m.key, m.value);
      await outbox.publish(tx, { topic, key: m.key, value: outputOf(m.value) });
    },
  });
  // As in a running service, the relay is connected before the input arrives: one record through the outbox,
  // unmeasured, gets its producer, its positions and its LISTEN going (the at-least-once producer sends one too).
  const relay = startRelay({ on, store, db, prefix, tag, closers });
  const dbCtx = knexTransactions(db);
  await dbCtx.withTransaction((tx) => new ob.Outbox(store).publish(tx, { topic, key: 'warm-up', value: '{}' }));
  await until(async () => (await relay.relayed()) >= 1, 60_000, 'the warm-up record to be relayed');
  const meter = startCpuMeter(kafkaPid, relay.pid === undefined ? [] : [relay.pid]);
  const stats = await job.runUntilIdle();
  await until(async () => (await relay.relayed()) >= PIPELINE_MESSAGES + 1, 300_000, 'the relay to send every output');
  const cpu = meter.stop();
  await relay.stop();
  if (stats.processed !== PIPELINE_MESSAGES) throw new Error(`exactly-once pipeline processed ${stats.processed} of ${PIPELINE_MESSAGES}`);
  return { rate: PIPELINE_MESSAGES / (cpu.wallMs / 1000), cpu };
}

/** A non-transactional idempotent producer of `client`, one acknowledged send per call. */
async function idempotentProducer(kafka: KafkaClient, brokerList: string[], client: PipelineClient, topic: string, closers: Closer[]): Promise<(messages: Message[]) => Promise<void>> {
  if (client === 'platformatic') {
    const producer = new PlatformaticProducer({ clientId: 'bench-outbox-alo', bootstrapBrokers: brokerList, idempotent: true, retries: 10 });
    closers.push(() => producer.close());
    return async (messages) => {
      await producer.send({ messages: messages.map((m) => ({ topic, ...(m.key == null ? {} : { key: Buffer.from(m.key) }), value: Buffer.from(m.value ?? '') })) });
    };
  }
  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  closers.push(() => producer.disconnect());
  return async (messages) => {
    await producer.send({ topic, messages });
  };
}

/**
 * The same handler, writes and output, at-least-once: each batch's state writes commit in a
 * database transaction, the outputs go straight to Kafka on an idempotent producer, and the
 * position is stored afterwards on its own, so a crash in between replays the batch.
 */
async function atLeastOnce({ kafka, brokerList, client }: PipelineKafka, db: Knex, source: MessageSource, tag: string, kafkaPid: number, closers: Closer[]): Promise<VariantRun> {
  const prefix = `bench_obp${tag}_`;
  const topic = `bench-outbox-pipe-${tag}`;
  await createTopic(kafka, topic, 1);
  const state = `${prefix}state`;
  const positions = `${prefix}inbox`;
  closers.push(dropTables(db, prefix));
  await db.raw(`create table ${state} (k text primary key, total bigint not null)`);
  await db.raw(`create table ${positions} (consumer text primary key, next_offset bigint not null)`);
  const send = await idempotentProducer(kafka, brokerList, client, topic, closers);
  // Connected before the input arrives, like the relay of the exactly-once variant.
  await send([{ key: 'warm-up', value: '{}' }]);
  const dbCtx = knexTransactions(db);
  const meter = startCpuMeter(kafkaPid);
  let offset = 0;
  for (let step = 0; step < PIPELINE_MESSAGES; step++) {
    const batch = await source.fetch(0, offset, 100);
    if (batch.length === 0) break;
    const outputs: Message[] = [];
    await dbCtx.withTransaction(async (tx) => {
      outputs.length = 0;
      for (const m of batch) {
        await stateWrite(tx.handle, state, m.key, m.value);
        outputs.push({ key: m.key, value: outputOf(m.value) });
      }
    });
    await send(outputs);
    offset = (batch.at(-1) as { offset: number }).offset + 1;
    await db.raw(`insert into ${positions} (consumer, next_offset) values (?, ?) on conflict (consumer) do update set next_offset = excluded.next_offset`, [tag, offset]);
  }
  const cpu = meter.stop();
  if (offset !== PIPELINE_MESSAGES) throw new Error(`at-least-once loop stopped at offset ${offset} of ${PIPELINE_MESSAGES}`);
  return { rate: PIPELINE_MESSAGES / (cpu.wallMs / 1000), cpu };
}

// ---------------------------------------------------------------------------------------------
// report

/** One exactly-once variant of (c) against at-least-once on the same client: msg/s, ratios, CPU. */
interface PipelineSide {
  rate: number;
  rates: number[];
  ratios: number[];
  ratio: Interval;
  cpu: ReturnType<typeof cpuPerThousand>;
  cpuRatio: number;
}

/** How the page names the drain's variants. */
const DRAIN_NAMES = { relay: 'relay', hand: 'hand-written relay', native: 'raw kafkajs transactions', platformatic: 'relay on @platformatic/kafka' } as const;

/** Medians over samples (rounds) of each process's CPU per 1000 of `messages` each, their sum, and the cores kept busy (CPU / wall). */
function cpuPerThousand(samples: CpuSample[], messages: number): { node: number; kafka: number; postgres: number; total: number; busyCores: number } {
  const per = (pick: (c: CpuSample) => number): number => median(samples.map((c) => (pick(c) * 1000) / messages));
  return {
    node: per((c) => c.node),
    kafka: per((c) => c.kafka),
    postgres: per((c) => c.postgres),
    total: per((c) => c.node + c.kafka + c.postgres),
    busyCores: median(samples.map((c) => (c.node + c.kafka + c.postgres) / c.wallMs)),
  };
}

function describeCpu(c: { node: number; kafka: number; postgres: number }): string {
  return `node ${fmt(c.node, 0)}, Kafka ${fmt(c.kafka, 0)}, Postgres ${fmt(c.postgres, 0)}`;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

function report(drain: DrainResult, latency: LatencyResult, latencyPlt: LatencyResult, brokerCost: BrokerCostResult, pipe: PipelineResult, kafkaVersion: string, pgVersion: string): BenchResult {
  const { rounds } = pipe;
  const range = (xs: number[], d = 0): string => `${fmt(Math.min(...xs), d)}–${fmt(Math.max(...xs), d)}`;
  const rateOf = (t: DrainTurns): number => t.rows / (t.cpu.wallMs / 1000);
  const relayRate = rateOf(drain.relay);
  const nativeRate = rateOf(drain.native);
  const pltRate = rateOf(drain.platformatic);
  const handRate = rateOf(drain.hand);
  /** A variant's turns against another's, paired round by round: the ratio of their median msg/s, with its interval. */
  const turnRatio = (mine: DrainTurns, base: DrainTurns): Interval => {
    const n = Math.min(mine.rates.length, base.rates.length);
    return ratioInterval(mine.rates.slice(0, n), base.rates.slice(0, n));
  };
  const relayRatio = turnRatio(drain.relay, drain.native);
  const pltRatio = turnRatio(drain.platformatic, drain.native);
  const handRatio = turnRatio(drain.hand, drain.native);
  const relayHandRatio = turnRatio(drain.relay, drain.hand);
  const drainCpus = (['relay', 'hand', 'native', 'platformatic'] as const).map((k) => ({ name: DRAIN_NAMES[k], ...cpuPerThousand([drain[k].cpu], drain[k].rows) }));
  const [relayCpu, handCpu] = drainCpus as [(typeof drainCpus)[number], (typeof drainCpus)[number]];
  const drainCpuText =
    'CPU per 1000 messages of the timed turns (ms, from /proc: this process, the Kafka broker\'s JVM, every Postgres process): ' +
    drainCpus.map((c) => `${c.name} ${fmt(c.total, 0)} (${describeCpu(c)}; cores busy ${fmt(c.busyCores, 2)} of 2)`).join(', ') +
    '.';
  /** Goals: the relay at least 0.9 of raw transactions; idle p99 at most 1.2x the raw one-record transaction's; exactly-once at least 0.85 of at-least-once. */
  const DRAIN_GOAL = 0.9;
  const LATENCY_GOAL = 1.2;
  const PIPELINE_GOAL = 0.85;
  const floor = brokerCost.variants.find((v) => v.name.startsWith('no position'));
  const withRecord = brokerCost.variants.find((v) => v.name.includes('kafkaSink'));
  const floorP99 = floor === undefined ? Number.NaN : percentile(floor.samples, 99);
  const recordP99 = withRecord === undefined ? Number.NaN : percentile(withRecord.samples, 99);
  const endToEnd = brokerCost.variants.find((v) => v.name === END_TO_END);
  const endToEndP99 = endToEnd === undefined ? Number.NaN : percentile(endToEnd.samples, 99);
  // Older runs recorded no exactly-once variant: NaN, and the text leaves it out.
  const positioned = brokerCost.variants.find((v) => v.name === EXACTLY_ONCE_END_TO_END);
  const positionedP99 = positioned === undefined ? Number.NaN : percentile(positioned.samples, 99);
  /** What the latency goal leaves for the outbox's own part once the path's floor without it is paid, ms. */
  const outboxRoomMs = Math.max(0, LATENCY_GOAL * floorP99 - endToEndP99);
  const p50 = percentile(latency.samples, 50);
  const p99 = percentile(latency.samples, 99);
  const max = Math.max(...latency.samples);
  const pltP99 = percentile(latencyPlt.samples, 99);
  // A p99 of a few hundred samples moves by milliseconds from run to run: the goal is judged on the ratio's interval.
  const p99Of = (xs: number[]): number => percentile(xs, 99);
  const floorSamples = floor?.samples ?? [Number.NaN];
  const latencyRatio = unpairedRatioInterval(latency.samples, floorSamples, p99Of);
  const pltLatencyRatio = unpairedRatioInterval(latencyPlt.samples, floorSamples, p99Of);
  const latencyVerdict = (ratio: Interval): ReturnType<typeof verdict> => verdict(ratio, { atMost: LATENCY_GOAL });
  const pipes = PIPELINE_CLIENTS.map((client) => {
    const own = rounds.filter((r) => r.client === client);
    const rates = (v: PipelineVariant): number[] => own.map((r) => r.rates[v]);
    const cpu = (v: PipelineVariant) => cpuPerThousand(own.map((r) => r.cpu[v]), PIPELINE_MESSAGES);
    const aloCpu = cpu('alo');
    /** Exactly-once with the relay at `v` against at-least-once, paired round by round. */
    const against = (v: 'eos' | 'apart'): PipelineSide => {
      const eosCpu = cpu(v);
      return {
        rate: median(rates(v)),
        rates: rates(v),
        ratios: own.map((r) => r.rates[v] / r.rates.alo),
        ratio: ratioInterval(rates(v), rates('alo')),
        cpu: eosCpu,
        cpuRatio: eosCpu.total / aloCpu.total,
      };
    };
    return { client, name: PIPELINE_CLIENT_NAME[client], rounds: own, alo: median(rates('alo')), aloCpu, inProcess: against('eos'), apart: against('apart') };
  });
  const goal = (ok: boolean): string => (ok ? 'meets the goal' : 'misses the goal');
  const mb = (bytes: number): string => fmt(bytes / 1024 / 1024, 1);
  const heapGrowth = drain.memory.lastQuarterPeakHeap / drain.memory.firstQuarterPeakHeap;
  const chart = {
    title: 'Outbox: ratios against the native API and the anchors named',
    reference: { value: 1, label: 'native / anchor = 1' },
    groups: [
      {
        label: '(a) drain msg/s / anchor (higher is better)',
        bars: [
          { label: 'relay / raw kafkajs transactions, same messages', value: relayRatio.value },
          { label: 'relay / okapi 5,200 msg/s (M3 Max)', value: relayRate / 5_200 },
          { label: 'relay / Open Outbox Relay 14,500 events/s (M1)', value: relayRate / 14_500 },
          { label: 'relay on @platformatic/kafka / raw kafkajs transactions', value: pltRatio.value },
          { label: 'relay / hand-written relay (pg read + kafkajs transaction, no exactly-once)', value: relayHandRatio.value },
          { label: 'goal: relay / raw kafkajs transactions', value: DRAIN_GOAL },
        ],
      },
      {
        label: '(b) commit-to-consumer latency / Debezium 500 ms poll (lower is better)',
        bars: [
          { label: 'p50', value: p50 / 500 },
          { label: 'p99', value: p99 / 500 },
          { label: 'p99, relay on @platformatic/kafka', value: pltP99 / 500 },
          { label: `goal: p99 of ${LATENCY_GOAL}x the raw one-record transaction's`, value: (LATENCY_GOAL * floorP99) / 500 },
        ],
      },
      {
        label: '(c) exactly-once msg/s / at-least-once msg/s (higher is better)',
        bars: [
          ...pipes.flatMap((c) => [
            { label: `txkit pipeline() exactly-once / at-least-once, relay in the same process, Kafka on ${c.name}`, value: c.inProcess.ratio.value },
            { label: `txkit pipeline() exactly-once / at-least-once, relay as its own process (txkit relay), Kafka on ${c.name}`, value: c.apart.ratio.value },
          ]),
          { label: 'goal', value: PIPELINE_GOAL },
          { label: 'anchor: Kafka Streams exactly-once, 30% cost', value: 0.7 },
          { label: 'anchor: Kafka Streams exactly-once, 15% cost', value: 0.85 },
        ],
      },
    ].map((g) => ({ ...g, bars: g.bars.map((bar) => ({ ...bar, value: Number(fmt(bar.value, 4)) })) })),
  };
  const drainGoal = (name: string, ratio: Interval, reason: string): BenchGoal =>
    benchGoal(
      {
        measure: `(a) drain, relay${name} / raw kafkajs transactions, msg/s`,
        figure: fmtInterval(ratio),
        goal: `>= ${DRAIN_GOAL}`,
        verdict: verdict(ratio, { atLeast: DRAIN_GOAL }),
      },
      () => reason,
    );
  const latencyGoal = (name: string, relayP99: number, ratio: Interval): BenchGoal =>
    benchGoal(
      {
        measure: `(b) commit-to-consumer p99 / raw one-record transaction p99, relay on ${name}`,
        figure: fmtInterval(ratio, 2),
        goal: `<= ${LATENCY_GOAL}`,
        verdict: latencyVerdict(ratio),
      },
      () =>
        `the raw transaction timed to the same consumer (no database, no relay) has p99 ${fmt(endToEndP99, 1)} ms = ` +
        `${fmt(endToEndP99 / floorP99)}x, ` +
        (Number.isNaN(positionedP99)
          ? `leaving ${fmt(outboxRoomMs, 1)} ms for the NOTIFY, the outbox read and the position record; the relay path is ` +
            `${fmt(relayP99 / endToEndP99)}x that floor`
          : `and ${fmt(positionedP99, 1)} ms = ${fmt(positionedP99 / floorP99)}x with the position record exactly-once needs ` +
            `(the relay's broker transaction without the database); the relay path is ${fmt(relayP99 / positionedP99)}x that ` +
            'floor, the NOTIFY and the outbox read included'),
    );
  const pipelineGoal = (measure: string, e: PipelineSide, why: string): BenchGoal =>
    benchGoal(
      { measure, figure: fmtInterval(e.ratio, 2), goal: `>= ${PIPELINE_GOAL}`, verdict: verdict(e.ratio, { atLeast: PIPELINE_GOAL }) },
      () =>
        `${why === '' ? '' : `${why}; `}exactly-once takes ${fmt(e.cpuRatio)}x the CPU of all processes (the relay's read, broker ` +
        `transaction and marker per batch); per-round ratios ${range(e.ratios, 2)}; Kafka Streams' exactly-once: 0.70–0.85`,
    );
  const goals: BenchGoal[] = [
    drainGoal(
      ' (kafkajs)',
      relayRatio,
      `a hand-written relay (pg read, no exactly-once) reaches ${fmtInterval(handRatio)} of raw here (the database shares the 2 cores); the relay is ${fmtInterval(relayHandRatio)} of it, ` +
        `spending ${fmt(relayCpu.total, 0)} ms of CPU per 1000 messages in all processes where the hand-written relay spends ${fmt(handCpu.total, 0)} ` +
        `(node ${fmt(relayCpu.node, 0)} / ${fmt(handCpu.node, 0)}, Kafka ${fmt(relayCpu.kafka, 0)} / ${fmt(handCpu.kafka, 0)}, Postgres ${fmt(relayCpu.postgres, 0)} / ${fmt(handCpu.postgres, 0)})`,
    ),
    drainGoal(' on @platformatic/kafka', pltRatio, `a hand-written relay on kafkajs reaches ${fmtInterval(handRatio)}`),
    {
      measure: '(a2) relay heap while draining, peak over the last quarter / the first',
      figure: fmt(heapGrowth),
      goal: '<= 1.2',
      verdict: heapGrowth <= 1.2 ? 'met' : 'missed',
    },
    latencyGoal('kafkajs', p99, latencyRatio),
    latencyGoal('@platformatic/kafka', pltP99, pltLatencyRatio),
    ...pipes.flatMap((c) => [
      pipelineGoal(
        `(c) exactly-once (relay in the pipeline's process) / at-least-once pipeline, msg/s (${c.name})`,
        c.inProcess,
        `the relay shares the pipeline's one event loop, and its reads and broker transactions hold up the pipeline's chain of ` +
          `round trips: with the relay as its own process the same work reaches ${fmtInterval(c.apart.ratio, 2)} (next row)`,
      ),
      pipelineGoal(`(c) exactly-once (relay as its own process, \`txkit relay\`) / at-least-once pipeline, msg/s (${c.name})`, c.apart, ''),
    ]),
  ];
  return {
    name: 'outbox',
    goals,
    chart,
    title: `Outbox: relay drain, commit-to-consumer latency, exactly-once pipeline (Postgres ${pgVersion.split(' ')[0]}, Kafka ${kafkaVersion})`,
    command: 'npm run bench -- outbox',
    summary: [
      `**(a) Drain** of ${drain.rows.toLocaleString('en-US')} pre-filled outbox rows (${PARTITIONS} outbox partitions, ${VALUE_BYTES}-byte values, ` +
        `${RELAY_BATCH} records per broker transaction, one relay with one transactional producer): **${fmt(relayRate, 0)} msg/s** ` +
        `(on this 2-core machine; okapi reports 5,200 msg/s on an M3 Max, ` +
        `Open Outbox Relay 14,500 events/s on an M1 with 12 workers). Raw kafkajs transactions sending the same messages ` +
        `from memory, same batch size: ${fmt(nativeRate, 0)} msg/s; relay/native **${fmtInterval(relayRatio)}** ` +
        `(median msg/s of the relay's turns over the native turns of the same rounds, 95% bootstrap interval; goal: at least ${DRAIN_GOAL}, ` +
        `**${verdict(relayRatio, { atLeast: DRAIN_GOAL })}**). What reading from Postgres costs on this ` +
        `machine (the database shares the client's 2 cores): a hand-written relay (each partition's next rows read with pg, ` +
        `sent in one kafkajs transaction, the position kept in memory, so not exactly-once) runs ${fmt(handRate, 0)} msg/s, ` +
        `${fmtInterval(handRatio)} of native (turns ${range(drain.hand.rates)}); the relay is ${fmtInterval(relayHandRatio)} of it. `+
        `Every variant takes a turn of ${drain.segment.toLocaleString('en-US')} records per round, the order rotating and reversing every other round, so the machine's ` +
        `drift hits all alike and none always follows the same other; per-turn rates: relay ${range(drain.relay.rates)}, native ${range(drain.native.rates)} msg/s. ` +
        `Before the first round each variant sent ${drain.warmRows.toLocaleString('en-US')} rows untimed: code the variants share ` +
        `is compiled while the first of them runs, and a relay's start (InitProducerId, the positions topic, the first position read) ` +
        `happens once per process, not per drain. ` +
        `Each relay transaction reads its rows from Postgres (the next batch is read while the broker commits), sends ` +
        `them with the record of the relay position (one sendBatch) and ends the transaction; ` +
        `${drain.transactions} transactions. The same rows through a second relay id whose producer runs on ` +
        `@platformatic/kafka, in turns of its own: **${fmt(pltRate, 0)} msg/s**, ${fmtInterval(pltRatio)} of native ` +
        `(turns ${range(drain.platformatic.rates)} msg/s; ${drain.platformatic.transactions} transactions). ${drainCpuText}`,
      '',
      `**(a2) Memory while draining** (the whole process: relay, anchor and clients): heap ${mb(drain.memory.startHeap)} MB ` +
        `before, peak ${mb(drain.memory.firstQuarterPeakHeap)} MB over the first quarter of the rows and ` +
        `${mb(drain.memory.lastQuarterPeakHeap)} MB over the last (ratio ${fmt(heapGrowth)}; goal: at most 1.2, the relay ` +
        `holds a batch or two whatever the backlog: ${goal(heapGrowth <= 1.2)}); peak RSS ${mb(drain.memory.peakRss)} MB.`,
      '',
      `**(b) Idle latency** from the database commit of one record to its arrival at a read_committed kafkajs consumer ` +
        `(${latency.samples.length} commits, 20–40 ms apart, relay waiting on LISTEN/NOTIFY): p50 **${fmt(p50, 1)} ms**, ` +
        `p99 **${fmt(p99, 1)} ms**, max ${fmt(max, 1)} ms; ${fmt(p99 / floorP99)}x the p99 of a raw one-record kafkajs ` +
        `transaction measured in (b2) (${fmt(floorP99, 1)} ms; ${fmtInterval(latencyRatio, 2)} with a 95% bootstrap interval, each side ` +
        `resampled on its own; goal: at most ${LATENCY_GOAL}x, **${latencyVerdict(latencyRatio)}**), ` +
        `${fmt(p99 / recordP99)}x that of one that also writes a position record as kafkaSink does (${fmt(recordP99, 1)} ms). Anchor: Debezium polls ` +
        `every 500 ms by default (p99/500 ms = ${fmt(p99 / 500, 3)}). The path is NOTIFY, one read, one broker transaction ` +
        '(AddPartitionsToTxn, Produce with the position record, EndTxn) and the consumer\'s next fetch; ' +
        `the relay's part (database commit to broker commit) is p50 ${fmt(percentile(latency.relaySamples, 50), 1)} ms, p99 ${fmt(percentile(latency.relaySamples, 99), 1)} ms. ` +
        `With the relay's producer on @platformatic/kafka (one Produce request for the record and its position, as the kafkajs ` +
        `relay's one call per leader broker makes): p50 **${fmt(percentile(latencyPlt.samples, 50), 1)} ms**, p99 ` +
        `**${fmt(pltP99, 1)} ms**, ${fmtInterval(pltLatencyRatio, 2)} of the raw transaction's p99 (**${latencyVerdict(pltLatencyRatio)}**); ` +
        `its relay part p50 ${fmt(percentile(latencyPlt.relaySamples, 50), 1)} ms, p99 ${fmt(percentile(latencyPlt.relaySamples, 99), 1)} ms. ` +
        `The path's floor without the outbox: the same raw transaction timed until the same consumer has its record ` +
        `(no database, no relay; (b2)) has p99 ${fmt(endToEndP99, 1)} ms, ${fmt(endToEndP99 / floorP99)}x the transaction alone ` +
        `(a read_committed consumer sees a record only after the commit markers are written and its next fetch returns), which leaves ` +
        `${fmt(outboxRoomMs, 1)} ms of the goal's ${fmt(LATENCY_GOAL * floorP99, 1)} ms for the outbox's own part: ` +
        `the NOTIFY, the read of the record and the position record in the transaction. Against that floor the relay path's p99 is ` +
        `${fmt(p99 / endToEndP99)}x on kafkajs and ${fmt(pltP99 / endToEndP99)}x on @platformatic/kafka.` +
        (Number.isNaN(positionedP99)
          ? ''
          : ` The relay's own broker transaction (the record and its position record in one produce request, as kafkaSink sends them) ` +
            `timed the same way has p99 ${fmt(positionedP99, 1)} ms, ${fmt(positionedP99 / floorP99)}x the raw transaction alone: ` +
            `the floor of an exactly-once path, before the database and the relay add anything. Against it the relay path's p99 ` +
            `is ${fmt(p99 / positionedP99)}x on kafkajs and ${fmt(pltP99 / positionedP99)}x on @platformatic/kafka.`),
      '',
      `**(b2) Where the broker part goes**: raw kafkajs transactions of one record, ${BROKER_COST_SAMPLES} of each kind, interleaved and ` +
        `spaced like (b), begin to commit returned: ` +
        brokerCost.variants.map((v) => `${v.name} p50 ${fmt(percentile(v.samples, 50), 1)} ms, p99 ${fmt(percentile(v.samples, 99), 1)} ms`).join('; ') +
        '. kafkajs requests per transaction of the first kind (p50/p99 ms): ' +
        brokerCost.requests.map((r) => `${r.api} ×${fmt(r.perTransaction, 0)} (${fmt(r.p50, 0)}/${fmt(r.p99, 0)})`).join(', ') +
        '. kafkajs looks up the coordinator (FindCoordinator, reported as GroupCoordinator) before each coordinator request; ' +
        'keeping the position as a consumer-group offset, as kafkaSink did before, adds AddOffsetsToTxn, TxnOffsetCommit and two of those lookups to every transaction.',
      '',
      `**(c) Exactly-once pipeline** vs the same work at-least-once, ${PIPELINE_MESSAGES.toLocaleString('en-US')} messages, ` +
        '100 per database transaction, each message one upsert of a state row and one output message. Exactly-once: ' +
        '`pipeline()` with the inbox position in the database transaction, the output through the outbox, the relay ' +
        'running alongside, timed until the last output is committed in Kafka; once with the relay in the pipeline\'s process ' +
        '(an `OutboxRelay` started beside it) and once with the relay as its own process (`txkit relay`, the command a service ' +
        'runs beside its workers, its Kafka client chosen with `--kafka-client`; done when the store records the last output ' +
        'relayed). At-least-once: the same upserts in a ' +
        'database transaction, the outputs sent straight to Kafka with an idempotent producer, the position stored ' +
        'afterwards in its own statement. All start timing with their Kafka producers connected (one unmeasured ' +
        'message each), as in a running service. Each round runs the three on kafkajs and on @platformatic/kafka (the ' +
        'relay\'s producer and the at-least-once one), in an order that rotates and reverses every other round. ' +
        pipes
          .map(
            (c) =>
              `On ${c.name}: at-least-once ${fmt(c.alo, 0)} msg/s; exactly-once with the relay in the process ` +
              `**${fmt(c.inProcess.rate, 0)} msg/s**, ratio **${fmtInterval(c.inProcess.ratio, 2)}** ` +
              `(goal at least ${PIPELINE_GOAL}: **${verdict(c.inProcess.ratio, { atLeast: PIPELINE_GOAL })}**; per-round ratios ` +
              `${range(c.inProcess.ratios, 2)}), with the relay as its own process **${fmt(c.apart.rate, 0)} msg/s**, ratio ` +
              `**${fmtInterval(c.apart.ratio, 2)}** (**${verdict(c.apart.ratio, { atLeast: PIPELINE_GOAL })}**; per-round ratios ` +
              `${range(c.apart.ratios, 2)}).`,
          )
          .join(' ') +
        ' (95% bootstrap intervals over the paired rounds.) One pipeline worker runs its transactions one after another, ' +
        'each a chain of round trips to Postgres, so its pace is set by how soon each reply is handled. A relay in the same ' +
        'process handles its reads and broker transactions on the same event loop, and every reply of the pipeline that arrives ' +
        'meanwhile waits; as its own process, the relay runs on the other core. ' +
        `Anchor: Kafka Streams exactly-once costs 15–30% of throughput (ratio 0.70–0.85). All variants read from ${pipe.source}.`,
      '',
      'CPU per 1000 messages of (c) (ms, medians over rounds, from /proc: the Node processes (the pipeline\'s, and the relay\'s ' +
        'when it runs as its own), the Kafka broker\'s JVM, every Postgres process): ' +
        pipes
          .map(
            (c) =>
              `on ${c.name}, exactly-once with the relay in the process ${describeCpu(c.inProcess.cpu)} (cores busy ` +
              `${fmt(c.inProcess.cpu.busyCores, 2)} of 2), with the relay as its own process ${describeCpu(c.apart.cpu)} ` +
              `(${fmt(c.apart.cpu.busyCores, 2)} of 2), at-least-once ${describeCpu(c.aloCpu)} (${fmt(c.aloCpu.busyCores, 2)} of 2): ` +
              `${fmt(c.inProcess.cpuRatio)}x and ${fmt(c.apart.cpuRatio)}x the CPU of at-least-once`,
          )
          .join('; ') +
        '. The relay\'s work is what at-least-once does not do: a read of the outbox, a broker transaction (AddPartitionsToTxn, ' +
        'the records and the position record, EndTxn and its markers) and the relayed marker, for every batch.',
      '',
      `Medians of ${pipes[0]?.rounds.length ?? 0} alternating rounds per client for (c). Single-node broker and Postgres on the same 2-core machine ` +
        `as the client, shared with other work, so figures vary from run to run. Pre-fill of (a) took ${fmt(drain.prefillMs / 1000, 1)} s.`,
    ].join('\n'),
    table: {
      headers: ['measure', 'txkit', 'native / anchor', 'ratio', 'goal'],
      rows: [
        ['(a) drain, msg/s', `${fmt(relayRate, 0)} (turns ${range(drain.relay.rates)})`, `${fmt(nativeRate, 0)} (raw kafkajs transactions; turns ${range(drain.native.rates)})`, `${fmtInterval(relayRatio)} of native`, `>= ${DRAIN_GOAL} of native: ${verdict(relayRatio, { atLeast: DRAIN_GOAL })}`],
        ['(a) drain vs a hand-written relay (pg read + kafkajs transaction, position in memory), msg/s', fmt(relayRate, 0), `${fmt(handRate, 0)} (turns ${range(drain.hand.rates)}); ${fmtInterval(handRatio)} of native`, `${fmtInterval(relayHandRatio)} of hand-written`, ''],
        ['(a) drain on @platformatic/kafka, msg/s', `${fmt(pltRate, 0)} (turns ${range(drain.platformatic.rates)})`, `${fmt(nativeRate, 0)} (raw kafkajs transactions)`, `${fmtInterval(pltRatio)} of native`, `>= ${DRAIN_GOAL} of native: ${verdict(pltRatio, { atLeast: DRAIN_GOAL })}`],
        ['(a2) drain peak heap MB, last quarter / first quarter', `${mb(drain.memory.lastQuarterPeakHeap)} / ${mb(drain.memory.firstQuarterPeakHeap)}`, `peak RSS ${mb(drain.memory.peakRss)} MB`, fmt(heapGrowth), '<= 1.2 (bounded)'],
        ['(a) drain vs okapi (M3 Max)', fmt(relayRate, 0), '5,200', `${fmt(relayRate / 5_200)}x`, ''],
        ['(a) drain vs Open Outbox Relay (M1, 12 workers)', fmt(relayRate, 0), '14,500', `${fmt(relayRate / 14_500)}x`, ''],
        ['(b) commit to consumer p50, ms', fmt(p50, 1), '500 (Debezium poll)', fmt(p50 / 500, 3), ''],
        ['(b) commit to consumer p99, ms', fmt(p99, 1), '500 (Debezium poll)', fmt(p99 / 500, 3), ''],
        ['(b) commit to consumer p99 / raw one-record transaction p99 (b2, no position)', fmt(p99, 1), fmt(floorP99, 1), fmtInterval(latencyRatio, 2), `<= ${LATENCY_GOAL}: ${latencyVerdict(latencyRatio)}`],
        ['(b) commit to consumer p99 / raw one-record transaction to the same consumer p99 (b2, end to end)', fmt(p99, 1), fmt(endToEndP99, 1), fmt(p99 / endToEndP99), ''],
        ...(Number.isNaN(positionedP99)
          ? []
          : [['(b) commit to consumer p99 / raw transaction with its position record to the same consumer p99 (b2, exactly-once end to end)', fmt(p99, 1), fmt(positionedP99, 1), fmt(p99 / positionedP99), '']]),
        ['(b) the same, relay on @platformatic/kafka', fmt(pltP99, 1), fmt(floorP99, 1), fmtInterval(pltLatencyRatio, 2), `<= ${LATENCY_GOAL}: ${latencyVerdict(pltLatencyRatio)}`],
        ...brokerCost.variants.map((v) => [`(b2) one-record kafkajs transaction p50/p99, ms: ${v.name}`, `${fmt(percentile(v.samples, 50), 1)} / ${fmt(percentile(v.samples, 99), 1)}`, '', '', '']),
        ...pipes.flatMap((c) => [
          ...(['inProcess', 'apart'] as const).map((where) => [
            `(c) pipeline msg/s on ${c.name}, exactly-once (relay ${where === 'inProcess' ? 'in the same process' : 'as its own process'}) / at-least-once`,
            `${fmt(c[where].rate, 0)} (rounds ${range(c[where].rates)})`,
            `${fmt(c.alo, 0)} (rounds ${range(c.rounds.map((r) => r.rates.alo))})`,
            fmtInterval(c[where].ratio, 2),
            `>= ${PIPELINE_GOAL} (Kafka Streams EOS: 0.70–0.85): ${verdict(c[where].ratio, { atLeast: PIPELINE_GOAL })}`,
          ]),
          [
            `(c) CPU ms per 1000 messages on ${c.name}, all processes: exactly-once (relay in the process; as its own) / at-least-once`,
            `${fmt(c.inProcess.cpu.total, 0)} (${describeCpu(c.inProcess.cpu)}); ${fmt(c.apart.cpu.total, 0)} (${describeCpu(c.apart.cpu)})`,
            `${fmt(c.aloCpu.total, 0)} (${describeCpu(c.aloCpu)})`,
            `${fmt(c.inProcess.cpuRatio)}x; ${fmt(c.apart.cpuRatio)}x`,
            '',
          ],
        ]),
      ],
    },
  };
}
