/**
 * An HTTP service on node:http alone. POST /orders writes the order row and
 * publishes an `order-created` event through the outbox in one database
 * transaction; a relay moves committed events to the broker (here the memory
 * broker; in production kafkaSink(...) or `txkit relay`).
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import knex from 'knex';
import type { Knex } from 'knex';
import { MemoryStore, memoryTransactions } from 'txkit/memory';
import type { MemoryTransactionContext } from 'txkit/memory';
import { Outbox, OutboxRelay, memorySink, sqlOutboxStore } from 'txkit/outbox';
import type { SqlOutboxStore } from 'txkit/outbox';
import { knexTransactions } from 'txkit/sql';

export interface OrderServiceOptions {
  /** postgres://... to use Postgres; without it, an in-memory SQLite database. */
  databaseUrl?: string | undefined;
  /** @default 0 (any free port) */
  port?: number;
  /** Prefix of every table the service creates, so several services can share a database. @default 'shop_' */
  tablePrefix?: string;
  /** Orders above this total are refused after their writes, to show that a failing handler leaves nothing. @default 10_000 */
  creditLimit?: number;
}

export interface OrderService {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly db: Knex;
  readonly ordersTable: string;
  readonly outboxStore: SqlOutboxStore;
  /** The broker the relay publishes to. */
  readonly broker: MemoryStore;
  close(): Promise<void>;
}

/** Refused by a business rule; the transaction is rolled back. */
export class CreditLimitError extends Error {
  constructor(total: number, limit: number) {
    super(`order total ${total} is over the credit limit of ${limit}`);
    this.name = 'CreditLimitError';
  }
}

interface NewOrder {
  id: string;
  total: number;
}

export async function startOrderService(options: OrderServiceOptions = {}): Promise<OrderService> {
  const { databaseUrl, port = 0, tablePrefix = 'shop_', creditLimit = 10_000 } = options;
  const db =
    databaseUrl === undefined
      ? knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true })
      : knex({ client: 'pg', connection: databaseUrl, pool: { min: 0, max: 4 } });
  const ordersTable = `${tablePrefix}orders`;
  if (!(await db.schema.hasTable(ordersTable))) {
    await db.schema.createTable(ordersTable, (t) => {
      t.string('id').primary();
      t.integer('total').notNullable();
    });
  }
  const outboxStore = sqlOutboxStore(db, { tablePrefix: `${tablePrefix}txkit_` });
  await outboxStore.migrate();

  const orders = knexTransactions(db);
  const outbox = new Outbox(outboxStore);

  const broker = new MemoryStore();
  const brokerContext: MemoryTransactionContext = memoryTransactions({ store: broker });
  const relay = new OutboxRelay({ store: outboxStore, sink: memorySink(brokerContext), pollIntervalMs: 200 });
  relay.start();

  async function createOrder(order: NewOrder): Promise<void> {
    await orders.withTransaction(async (tx) => {
      await tx.handle(ordersTable).insert(order);
      await outbox.publish(tx, { topic: 'order-created', key: order.id, value: JSON.stringify(order) });
      // A rule checked after the writes: throwing rolls back the row and the event alike.
      if (order.total > creditLimit) throw new CreditLimitError(order.total, creditLimit);
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method === 'POST' && path === '/orders') {
      const order = parseOrder(await readBody(req));
      if (typeof order === 'string') return send(res, 400, { error: order });
      try {
        await createOrder(order);
      } catch (err) {
        if (err instanceof CreditLimitError) return send(res, 422, { error: err.message });
        throw err;
      }
      return send(res, 201, order);
    }
    const match = /^\/orders\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && match !== null) {
      const row = (await db(ordersTable).where({ id: decodeURIComponent(match[1] as string) }).first()) as NewOrder | undefined;
      return row === undefined ? send(res, 404, { error: 'no such order' }) : send(res, 200, row);
    }
    return send(res, 404, { error: `no route for ${req.method ?? '?'} ${path}` });
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => send(res, 500, { error: err instanceof Error ? err.message : String(err) }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${bound}`,
    db,
    ordersTable,
    outboxStore,
    broker,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await relay.stop();
      await brokerContext.close();
      await orders.close();
      await outboxStore.close();
      await db.destroy();
    },
  };
}

function parseOrder(body: string): NewOrder | string {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return 'the body must be JSON: { "id": string, "total": integer }';
  }
  const { id, total } = (value ?? {}) as { id?: unknown; total?: unknown };
  if (typeof id !== 'string' || id === '' || id.length > 64) return 'id must be a string of 1 to 64 characters';
  if (typeof total !== 'number' || !Number.isInteger(total) || total < 0) return 'total must be a non-negative integer';
  return { id, total };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 64 * 1024) throw new Error('request body over 64 KiB');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
