import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { MemoryStore, memoryTransactions } from 'txkit/memory';
import { OutboxRelay, memorySink, memorySource, pipeline, sqlOutboxStore } from 'txkit/outbox';
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
}

/**
 * memory broker -> pipeline (SQLite state + outbox, in one transaction per
 * batch) -> relay -> memory broker, with workers racing on shared customer
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
  const broker = new MemoryStore({ partitions });
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
    const relay = new OutboxRelay({ store, sink: memorySink(memoryTransactions({ store: broker })), batchSize: 200 });
    relay.start();
    const jobs = Array.from({ length: workers }, (_, w) =>
      pipeline({
        consumer: CONSUMER,
        source: memorySource(broker, TOPIC_IN, { partitions: Array.from({ length: partitions }, (_, p) => p).filter((p) => p % workers === w) }),
        db: ctx,
        store,
        batchSize,
        maxAttempts: 2,
        handler: orderHandler(table),
        onError: () => undefined,
      }),
    );
    await Promise.all(jobs.map((job) => job.runUntilIdle()));
    await relay.stop();
    await relay.drain();
    await ctx.close();
    return { ...(await verify(db, table, store, broker, input)), faultsInjected: faults.reduce((n, f) => n + f.injected, 0), database: String(config.client) };
  } finally {
    await store.close();
    await db.schema.dropTableIfExists(table);
    for (const t of ['outbox', 'outbox_partitions', 'inbox', 'dead_letters', 'schema']) await db.schema.dropTableIfExists(`${prefix}${t}`);
    await db.destroy();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}

async function seedOrders(broker: MemoryStore, count: number, customers: number, poison: number): Promise<Order[]> {
  const ctx = memoryTransactions({ store: broker });
  const orders: Order[] = [];
  const poisonEvery = poison > 0 ? Math.floor(count / poison) : 0;
  for (let start = 0; start < count; start += 250) {
    await ctx.withTransaction(async (tx) => {
      const messages = [];
      for (let i = start; i < Math.min(count, start + 250); i++) {
        const order: Order = { orderId: `o-${i}`, customerId: `c-${i % customers}`, amountCents: 100 + ((i * 37) % 900) };
        orders.push(order);
        messages.push({ key: order.customerId, value: JSON.stringify(order) });
        if (poisonEvery > 0 && i % poisonEvery === poisonEvery - 1) messages.push({ key: order.customerId, value: '{"orderId": "broken"' });
      }
      await tx.handle.send({ topic: TOPIC_IN, messages });
    });
  }
  await ctx.close();
  return orders;
}

/** Everything is read back from the stores, not from counters kept by the job. */
async function verify(db: Knex, table: string, store: ReturnType<typeof sqlOutboxStore>, broker: MemoryStore, input: Order[]) {
  const output = broker.messages(TOPIC_OUT);
  const seen = new Map<string, number>();
  const retried = new Set<string>();
  for (const m of output) {
    const id = String(m.headers['order-id']);
    seen.set(id, (seen.get(id) ?? 0) + 1);
    if (Number(m.headers.attempt) > 1) retried.add(id);
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
