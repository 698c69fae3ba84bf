/**
 * An Express 5 service with txkit, the recipe for any HTTP framework:
 * - one unit of work per request, opened in the route handler with
 *   `withTransaction` (not in a middleware around the response: the commit
 *   must finish before the reply says it happened);
 * - the business row and its event written in that unit (the outbox), so
 *   both commit or neither does;
 * - txkit's typed errors turned into HTTP statuses in one error handler;
 * - on shutdown: stop taking requests, then stop the relay, then close the
 *   context and the database.
 */
import express from 'express';
import type { ErrorRequestHandler, Request, Response } from 'express';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import knex from 'knex';
import type { Knex } from 'knex';
import { ConfigError, TransactionTimeoutError, TxkitError, UnknownCommitResultError } from 'txkit';
import { MemoryStore, memoryTransactions } from 'txkit/memory';
import { Outbox, OutboxRelay, memorySink, sqlOutboxStore } from 'txkit/outbox';
import type { SqlOutboxStore } from 'txkit/outbox';
import { knexTransactions } from 'txkit/sql';

export interface ExpressAppOptions {
  /** postgres://... to use Postgres; without it, an in-memory SQLite database. */
  databaseUrl?: string | undefined;
  /** @default 0 (any free port) */
  port?: number;
  /** Prefix of every table the service creates. @default 'express_' */
  tablePrefix?: string;
  /** Bound on each request's transaction. @default 5_000 */
  timeoutMs?: number;
}

export interface ExpressApp {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly db: Knex;
  readonly accountsTable: string;
  readonly outboxStore: SqlOutboxStore;
  /** The broker the relay publishes to (in production: kafkaSink(...) or `txkit relay`). */
  readonly broker: MemoryStore;
  close(): Promise<void>;
}

/** A request the service refuses: 4xx with its message. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

interface Transfer {
  from: string;
  to: string;
  amount: number;
}

export async function startExpressApp(options: ExpressAppOptions = {}): Promise<ExpressApp> {
  const { databaseUrl, port = 0, tablePrefix = 'express_', timeoutMs = 5_000 } = options;
  const db =
    databaseUrl === undefined
      ? knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true })
      : knex({ client: 'pg', connection: databaseUrl, pool: { min: 0, max: 4 } });
  const accountsTable = `${tablePrefix}accounts`;
  if (!(await db.schema.hasTable(accountsTable))) {
    await db.schema.createTable(accountsTable, (t) => {
      t.string('id').primary();
      t.integer('balance').notNullable();
    });
  }
  const outboxStore = sqlOutboxStore(db, { tablePrefix: `${tablePrefix}txkit_` });
  await outboxStore.migrate();

  const ctx = knexTransactions(db, { timeoutMs });
  const outbox = new Outbox(outboxStore);
  const broker = new MemoryStore();
  const brokerContext = memoryTransactions({ store: broker });
  const relay = new OutboxRelay({ store: outboxStore, sink: memorySink(brokerContext), pollIntervalMs: 200 });
  relay.start();

  const app = express();
  app.use(express.json({ limit: '64kb' }));

  app.put('/accounts/:id', async (req: Request<{ id: string }>, res: Response) => {
    const balance = (req.body as { balance?: unknown } | undefined)?.balance;
    if (typeof balance !== 'number' || !Number.isInteger(balance) || balance < 0) throw new HttpError(400, 'balance must be a non-negative integer');
    await ctx.withTransaction(async (tx) => {
      await tx.handle(accountsTable).insert({ id: req.params.id, balance }).onConflict('id').merge();
    });
    res.status(200).json({ id: req.params.id, balance });
  });

  // Both balances and the `transfer-made` event, in one transaction.
  app.post('/transfers', async (req: Request, res: Response) => {
    const transfer = parseTransfer(req.body);
    const result = await ctx.withTransaction(async (tx) => {
      const accounts = (): Knex.QueryBuilder => tx.handle(accountsTable);
      // One conditional statement checks and debits, so two concurrent transfers cannot both spend the same balance.
      const debited = await accounts().where({ id: transfer.from }).andWhere('balance', '>=', transfer.amount).decrement('balance', transfer.amount);
      if (debited === 0) {
        const from = (await accounts().where({ id: transfer.from }).first()) as { balance: number } | undefined;
        throw from === undefined
          ? new HttpError(404, `no account ${transfer.from}`)
          : new HttpError(409, `account ${transfer.from} has ${from.balance}, less than ${transfer.amount}`);
      }
      // Throwing here rolls back the debit above as well.
      if ((await accounts().where({ id: transfer.to }).increment('balance', transfer.amount)) === 0) throw new HttpError(404, `no account ${transfer.to}`);
      await outbox.publish(tx, { topic: 'transfer-made', key: transfer.from, value: JSON.stringify(transfer) });
      return { ...transfer, attempt: tx.attempt };
    });
    res.status(201).json(result);
  });

  app.get('/accounts/:id', async (req: Request<{ id: string }>, res: Response) => {
    const row = (await db(accountsTable).where({ id: req.params.id }).first()) as { id: string; balance: number } | undefined;
    if (row === undefined) throw new HttpError(404, `no account ${req.params.id}`);
    res.json(row);
  });

  app.use(txkitErrors);

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(port, '127.0.0.1', (err?: Error) => (err === undefined ? resolve(s) : reject(err)));
  });
  const { port: bound } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${bound}`,
    db,
    accountsTable,
    outboxStore,
    broker,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await relay.stop();
      await brokerContext.close();
      await ctx.close();
      await outboxStore.close();
      await db.destroy();
    },
  };
}

/**
 * txkit's errors as HTTP statuses. The retry loop already reran transient
 * failures inside the request, so what reaches here is final for this
 * request:
 * - UnknownCommitResultError: the commit may have applied; the client must
 *   check before sending the request again (500 with a distinct code);
 * - a timeout or an error still marked retriable (the retry deadline
 *   passed): 503 with Retry-After, the request can be sent again as is;
 * - ConfigError: a bug in the service (500);
 * - the service's own HttpError: its status.
 */
export const txkitErrors: ErrorRequestHandler = (err: unknown, _req, res, next) => {
  if (res.headersSent) return next(err);
  if (err instanceof HttpError) return void res.status(err.status).json({ error: err.message });
  if ((err as { type?: string }).type === 'entity.parse.failed') return void res.status(400).json({ error: 'the body must be JSON' });
  if (err instanceof UnknownCommitResultError) {
    return void res.status(500).json({ error: 'the outcome of the transaction is unknown: check before retrying', code: err.code });
  }
  if (err instanceof TransactionTimeoutError || (err instanceof TxkitError && err.retriable)) {
    return void res.status(503).set('retry-after', '1').json({ error: err.message, code: err.code });
  }
  if (err instanceof ConfigError) return void res.status(500).json({ error: 'service misconfigured', code: err.code });
  res.status(500).json({ error: err instanceof Error ? err.message : String(err) });
};

function parseTransfer(body: unknown): Transfer {
  const { from, to, amount } = (body ?? {}) as Partial<Record<keyof Transfer, unknown>>;
  if (typeof from !== 'string' || typeof to !== 'string' || from === '' || to === '') throw new HttpError(400, 'from and to must be account ids');
  if (from === to) throw new HttpError(400, 'from and to must differ');
  if (typeof amount !== 'number' || !Number.isInteger(amount) || amount <= 0) throw new HttpError(400, 'amount must be a positive integer');
  return { from, to, amount };
}
