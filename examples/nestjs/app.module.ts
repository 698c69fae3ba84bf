/**
 * A NestJS application with txkit: TxkitModule provides a knex context,
 * OrderService's @Transactional() methods write the order row and publish
 * its event through the outbox in one transaction, and a relay moves
 * committed events to the broker (here the memory broker; in production
 * kafkaSink(...) or `txkit relay`).
 */
import 'reflect-metadata';
import { Inject, Injectable, Module } from '@nestjs/common';
import type { BeforeApplicationShutdown, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import knex from 'knex';
import type { Knex } from 'knex';
import { MemoryStore, memoryTransactions } from 'txkit/memory';
import { TransactionHost, Transactional, TxkitModule } from 'txkit/nestjs';
import { Outbox, OutboxRelay, memorySink, sqlOutboxStore } from 'txkit/outbox';
import type { SqlOutboxStore } from 'txkit/outbox';
import { knexTransactions } from 'txkit/sql';

/** Where the application keeps its data, and the limit its business rule checks. */
export interface AppConfig {
  /** postgres://... to use Postgres; without it, an in-memory SQLite database. */
  databaseUrl?: string | undefined;
  /** Prefix of every table the application creates. @default 'nest_' */
  tablePrefix?: string;
  /** Orders above this total are refused after their writes. @default 10_000 */
  creditLimit?: number;
}

export interface Order {
  id: string;
  total: number;
}

/** Refused by a business rule; the transaction is rolled back. */
export class CreditLimitError extends Error {
  constructor(total: number, limit: number) {
    super(`order total ${total} is over the credit limit of ${limit}`);
    this.name = 'CreditLimitError';
  }
}

export const CONFIG = 'CONFIG';
export const DB = 'DB';

/** The database, its tables, the outbox and the relay, with their lifecycle. */
@Injectable()
export class Persistence implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  readonly db: Knex;
  readonly ordersTable: string;
  readonly outboxStore: SqlOutboxStore;
  readonly outbox: Outbox<Knex.Transaction>;
  /** The broker the relay publishes to. */
  readonly broker = new MemoryStore();
  readonly #brokerContext = memoryTransactions({ store: this.broker });
  readonly #relay: OutboxRelay;

  // @Inject(...) names each dependency, so injection works with compilers that do not emit
  // decorator metadata (esbuild, the test runner); with tsc, injection by type works as well.
  constructor(@Inject(CONFIG) readonly config: AppConfig) {
    const prefix = config.tablePrefix ?? 'nest_';
    this.db =
      config.databaseUrl === undefined
        ? knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true })
        : knex({ client: 'pg', connection: config.databaseUrl, pool: { min: 0, max: 4 } });
    this.ordersTable = `${prefix}orders`;
    this.outboxStore = sqlOutboxStore(this.db, { tablePrefix: `${prefix}txkit_` });
    this.outbox = new Outbox(this.outboxStore);
    this.#relay = new OutboxRelay({ store: this.outboxStore, sink: memorySink(this.#brokerContext), pollIntervalMs: 200 });
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!(await this.db.schema.hasTable(this.ordersTable))) {
      await this.db.schema.createTable(this.ordersTable, (t) => {
        t.string('id').primary();
        t.integer('total').notNullable();
      });
    }
    await this.outboxStore.migrate();
    this.#relay.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.#relay.stop();
    await this.#brokerContext.close();
    await this.outboxStore.close();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.db.destroy();
  }
}

@Injectable()
export class OrderService {
  constructor(
    @Inject(TransactionHost) private readonly txHost: TransactionHost<Knex.Transaction>,
    @Inject(Persistence) private readonly persistence: Persistence,
  ) {}

  /** Writes the order and its `order-created` event in one transaction. */
  @Transactional({ timeoutMs: 10_000 })
  async place(order: Order): Promise<Order> {
    const { ordersTable, outbox, config } = this.persistence;
    await this.txHost.handle(ordersTable).insert(order);
    await outbox.publish(this.txHost.tx, { topic: 'order-created', key: order.id, value: JSON.stringify(order) });
    // A rule checked after the writes: throwing rolls back the row and the event alike.
    const limit = config.creditLimit ?? 10_000;
    if (order.total > limit) throw new CreditLimitError(order.total, limit);
    return order;
  }

  /** All orders or none: each place() joins this method's transaction. */
  @Transactional()
  async placeAll(orders: Order[]): Promise<number> {
    for (const order of orders) await this.place(order);
    return orders.length;
  }

  async find(id: string): Promise<Order | undefined> {
    const { db, ordersTable } = this.persistence;
    return (await db(ordersTable).where({ id }).first()) as Order | undefined;
  }
}

/** The application's root module: `TxkitModule.forRootAsync` builds the context from the database provider. */
@Module({})
export class AppModule {
  static forRoot(config: AppConfig) {
    return {
      module: AppModule,
      imports: [
        TxkitModule.forRootAsync({
          inject: [Persistence],
          useFactory: (persistence: Persistence) => knexTransactions(persistence.db),
          imports: [PersistenceModule.forRoot(config)],
        }),
      ],
      providers: [OrderService],
      exports: [OrderService],
    };
  }
}

@Module({})
class PersistenceModule {
  static forRoot(config: AppConfig) {
    return {
      module: PersistenceModule,
      global: true,
      providers: [{ provide: CONFIG, useValue: config }, Persistence],
      exports: [Persistence],
    };
  }
}
