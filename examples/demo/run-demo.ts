import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { kafkaTransactions } from 'txkit/kafka';
import { MemoryStore, memoryTransactions } from 'txkit/memory';
import { OutboxRelay, kafkaSink, kafkaSource, memorySink, memorySource, pipeline, sqlOutboxStore } from 'txkit/outbox';
import type { KafkaMessageSource, MessageSource, OutboxStore } from 'txkit/outbox';
import { knexTransactions } from 'txkit/sql';
import { injectFaults } from 'txkit/testing';
import { CONSUMER, TOPIC_IN, TOPIC_OUT, createStateTable, orderHandler } from './order-job.js';
import type { Order } from './order-job.js';

export interface DemoOptions {
  orders?: number;
  customers?: number;
  /** Malformed events mixed into the input; they must land in the dead letters. */
  poison?: number;
  partitions?: number;
  workers?: number;
  batchSize?: number;
  /** Transient failures injected into callbacks and commits of the database transactions. */
  transientFaults?: number;
  /** Commits whose result is reported unknown. */
  unknownCommits?: number;
  /** A knex connection config; the default is a SQLite file in a temp dir. */
  database?: Knex.Config;
  /** Kafka brokers ("host:port,..."): input and output topics on Kafka instead of the memory broker. */
  kafkaBrokers?: string;
}

export interface DemoReport {
  input: number;
  processed: number;
  deadLetters: number;
  /** Orders whose effects committed on a retried attempt. */
  retried: number;
  faultsInjected: number;
  duplicates: number;
  lost: number;
  stateMismatches: number;
  database: string;
  broker: 'memory' | 'kafka';
}

type Relay = Pick<OutboxRelay, 'start' | 'stop' | 'drain'>;

/** The demo's input and output, on the memory broker or on Kafka. */
interface Broker {
  readonly name: 'memory' | 'kafka';
  readonly topicIn: string;
  readonly topicOut: string;
  send(messages: { key: string; value: string }[]): Promise<void>;
  source(partitions: number[]): MessageSource;
  /** The relay from the store's outbox to this broker. */
  relay(store: OutboxStore<unknown>, relayId: string): Relay;
  /** Headers of every committed output message. */
  output(): Promise<Record<string, string>[]>;
  close(): Promise<void>;
}

/**
 * memory broker (or Kafka) -> pipeline (SQLite state + outbox, in one
 * transaction per batch) -> relay -> memory broker (or Kafka), with workers racing on shared customer
 * rows, injected faults, and poison messages; verified from the stores.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoReport> {
  const { orders = 3000, customers = 40, poison = 3, partitions = 4, workers = 2, batchSize = 25, transientFaults = 60, unknownCommits = 20 } = options;
  const dir = options.database === undefined ? mkdtempSync(join(tmpdir(), 'txkit-demo-')) : undefined;
  const config: Knex.Config = options.database ?? {
    client: 'better-sqlite3',
    connection: { filename: join(dir as string, 'demo.db') },
    useNullAsDefault: true,
  };
  const db = knexFactory(config);
  const prefix = `demo_${Date.now().toString(36)}_`;
  const table = `${prefix}customer_totals`;
  const broker = options.kafkaBrokers === undefined ? memoryBroker(partitions) : await kafkaBroker(options.kafkaBrokers, partitions);
  const store = sqlOutboxStore(db, { tablePrefix: prefix });
  try {
    await store.migrate();
    await createStateTable(db, table);
    const input = await seedOrders(broker, orders, customers, poison);

    const ctx = knexTransactions(db, { retry: { initialDelayMs: 1, maxDelayMs: 20 } });
    const faults = [
      injectFaults(ctx, { on: 'callback', as: 'transient', times: Math.ceil(transientFaults / 2), every: 3 }),
      injectFaults(ctx, { on: 'commit', as: 'transient', times: Math.floor(transientFaults / 2), every: 4 }),
      injectFaults(ctx, { on: 'commit', as: 'commit-unknown', times: unknownCommits, every: 5 }),
    ];
    const relay = broker.relay(store, `demo-${prefix}`);
    relay.start();
    const jobs = Array.from({ length: workers }, (_, w) =>
      pipeline({
        consumer: CONSUMER,
        source: broker.source(Array.from({ length: partitions }, (_, p) => p).filter((p) => p % workers === w)),
        db: ctx,
        store,
        batchSize,
        maxAttempts: 2,
        handler: orderHandler(table, broker.topicOut),
        onError: () => undefined,
      }),
    );
    await Promise.all(jobs.map((job) => job.runUntilIdle()));
    await relay.stop();
    await relay.drain();
    await ctx.close();
    return {
      ...(await verify(db, table, store, await broker.output(), input)),
      faultsInjected: faults.reduce((n, f) => n + f.injected, 0),
      database: String(config.client),
      broker: broker.name,
    };
  } finally {
    await broker.close();
    await store.close();
    await db.schema.dropTableIfExists(table);
    for (const t of sqlOutboxStore(db, { tablePrefix: prefix }).tableNames) await db.schema.dropTableIfExists(t);
    await db.destroy();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}

async function seedOrders(broker: Broker, count: number, customers: number, poison: number): Promise<Order[]> {
  const orders: Order[] = [];
  const poisonEvery = poison > 0 ? Math.floor(count / poison) : 0;
  for (let start = 0; start < count; start += 250) {
    const messages = [];
    for (let i = start; i < Math.min(count, start + 250); i++) {
      const order: Order = { orderId: `o-${i}`, customerId: `c-${i % customers}`, amountCents: 100 + ((i * 37) % 900) };
      orders.push(order);
      messages.push({ key: order.customerId, value: JSON.stringify(order) });
      if (poisonEvery > 0 && i % poisonEvery === poisonEvery - 1) messages.push({ key: order.customerId, value: '{"orderId": "broken"' });
    }
    await broker.send(messages);
  }
  return orders;
}

function memoryBroker(partitions: number): Broker {
  const store = new MemoryStore({ partitions });
  const producer = memoryTransactions({ store });
  return {
    name: 'memory',
    topicIn: TOPIC_IN,
    topicOut: TOPIC_OUT,
    send: async (messages) => void (await producer.withTransaction((tx) => tx.handle.send({ topic: TOPIC_IN, messages }))),
    source: (parts) => memorySource(store, TOPIC_IN, { partitions: parts }),
    relay: (outbox, relayId) => new OutboxRelay({ store: outbox, sink: memorySink(memoryTransactions({ store })), relayId, batchSize: 200 }),
    output: async () => store.messages(TOPIC_OUT).map((m) => Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, String(v)]))),
    close: () => producer.close(),
  };
}

/** Fresh topics per run on the given Kafka brokers; the input is read with kafkaSource, the output written by kafkaSink. */
async function kafkaBroker(brokers: string, partitions: number): Promise<Broker> {
  const kafka = new Kafka({ clientId: 'txkit-demo', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
  const run = `${Date.now().toString(36)}-${process.pid}`;
  const [topicIn, topicOut] = [`${TOPIC_IN}-${run}`, `${TOPIC_OUT}-${run}`];
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [topicIn, topicOut].map((topic) => ({ topic, numPartitions: partitions })), waitForLeaders: true });
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  const sources: KafkaMessageSource[] = [];
  const relayContext = kafkaTransactions(kafka, { transactionalId: `txkit-demo-relay-${run}` });
  /** The relays' positions topics (kafkaSink's default name), deleted with the run's topics. */
  const positionsTopics: string[] = [];
  return {
    name: 'kafka',
    topicIn,
    topicOut,
    send: async (messages) => void (await producer.send({ topic: topicIn, messages })),
    source: (parts) => {
      const source = kafkaSource({ kafka, topic: topicIn, partitions: parts });
      sources.push(source);
      return source;
    },
    relay: (outbox, relayId) => {
      positionsTopics.push(`txkit-relay-positions-${relayId}`);
      return new OutboxRelay({ store: outbox, sink: kafkaSink({ context: relayContext, kafka }), relayId, batchSize: 200 });
    },
    output: async () => {
      // A kafkaSource fetch is empty only once it has caught up with the committed end of the partition.
      const reader = kafkaSource({ kafka, topic: topicOut });
      sources.push(reader);
      const headers: Record<string, string>[] = [];
      for (const partition of await reader.partitions()) {
        for (let offset = 0; ; ) {
          const batch = await reader.fetch(partition, offset, 500);
          if (batch.length === 0) break;
          headers.push(...batch.map((m) => ({ ...m.headers })));
          offset = (batch.at(-1) as { offset: number }).offset + 1;
        }
      }
      return headers;
    },
    close: async () => {
      await Promise.all([...sources.map((s) => s.close()), producer.disconnect(), relayContext.close()]);
      await admin.deleteTopics({ topics: [topicIn, topicOut, ...positionsTopics] }).catch(() => undefined);
      await admin.disconnect();
    },
  };
}

/** Everything is read back from the stores, not from counters kept by the job. */
async function verify(db: Knex, table: string, store: ReturnType<typeof sqlOutboxStore>, output: Record<string, string>[], input: Order[]) {
  const seen = new Map<string, number>();
  const retried = new Set<string>();
  for (const headers of output) {
    const id = String(headers['order-id']);
    seen.set(id, (seen.get(id) ?? 0) + 1);
    if (Number(headers.attempt) > 1) retried.add(id);
  }
  const expected = new Map<string, { orders: number; amount: number }>();
  for (const o of input) {
    const t = expected.get(o.customerId) ?? { orders: 0, amount: 0 };
    expected.set(o.customerId, { orders: t.orders + 1, amount: t.amount + o.amountCents });
  }
  const rows = (await db(table).select('customer_id', 'orders', 'amount_cents')) as { customer_id: string; orders: number; amount_cents: number | string }[];
  const stored = new Map(rows.map((r) => [r.customer_id, { orders: Number(r.orders), amount: Number(r.amount_cents) }]));
  let stateMismatches = 0;
  for (const [customer, t] of expected) {
    const s = stored.get(customer);
    if (s?.orders !== t.orders || s.amount !== t.amount) stateMismatches += 1;
  }
  return {
    input: input.length,
    processed: seen.size,
    deadLetters: (await store.deadLetters(CONSUMER)).length,
    retried: retried.size,
    duplicates: [...seen.values()].reduce((n, c) => n + c - 1, 0),
    lost: input.filter((o) => !seen.has(o.orderId)).length,
    stateMismatches,
  };
}
