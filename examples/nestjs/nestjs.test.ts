import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransactionHost } from 'txkit/nestjs';
import { service } from '../../test/support/services.js';
import { dropPostgresTables } from '../../test/support/sql-cleanup.js';
import { AppModule, CreditLimitError, OrderService, Persistence } from './app.module.js';

const pgUrl = service('postgres');
const backends: [string, string | undefined, boolean][] = [
  ['SQLite (default)', undefined, true],
  ['Postgres (DATABASE_URL)', pgUrl, pgUrl !== undefined],
];

describe.each(backends)('examples/nestjs on %s', (_name, databaseUrl, available) => {
  let app: INestApplicationContext;
  let orders: OrderService;
  let persistence: Persistence;
  const prefix = `nest_${process.pid}_${Date.now().toString(36)}_`;

  beforeAll(async () => {
    if (!available) return;
    app = await NestFactory.createApplicationContext(AppModule.forRoot({ databaseUrl, tablePrefix: prefix, creditLimit: 1_000 }), { logger: false });
    orders = app.get(OrderService);
    persistence = app.get(Persistence);
  });

  afterAll(async () => {
    if (!available) return;
    const tables = [persistence.ordersTable, ...Object.values(persistence.outboxStore.tables)];
    await app.close();
    await dropPostgresTables(databaseUrl, tables);
  });

  it.skipIf(!available)('a @Transactional() method commits the row and its outbox event, and the relay delivers the event', async () => {
    await orders.place({ id: 'o-1', total: 42 });
    expect(await orders.find('o-1')).toEqual({ id: 'o-1', total: 42 });
    const { broker } = persistence;
    await broker.waitFor(() => broker.messages('order-created').length >= 1, 10_000);
    const [message, ...rest] = broker.messages('order-created');
    expect(rest).toHaveLength(0);
    expect(message?.key).toBe('o-1');
    expect(JSON.parse(String(message?.value))).toEqual({ id: 'o-1', total: 42 });
  });

  it.skipIf(!available)('a method that throws after its writes leaves neither the row nor an event', async () => {
    await expect(orders.place({ id: 'o-big', total: 5_000 })).rejects.toBeInstanceOf(CreditLimitError);
    expect(await orders.find('o-big')).toBeUndefined();
    const pending = await persistence.db(persistence.outboxStore.tables.outbox).where({ msg_key: 'o-big' });
    expect(pending).toHaveLength(0);
  });

  it.skipIf(!available)('nested @Transactional() calls join the outer transaction: one refused order rolls back the whole batch', async () => {
    await expect(
      orders.placeAll([
        { id: 'b-1', total: 1 },
        { id: 'b-2', total: 2 },
        { id: 'b-3', total: 9_999 },
      ]),
    ).rejects.toBeInstanceOf(CreditLimitError);
    for (const id of ['b-1', 'b-2', 'b-3']) expect(await orders.find(id)).toBeUndefined();
    expect(await orders.placeAll([{ id: 'c-1', total: 1 }, { id: 'c-2', total: 2 }])).toBe(2);
    expect(await orders.find('c-2')).toEqual({ id: 'c-2', total: 2 });
  });

  it.skipIf(!available)('the TransactionHost is injected by its class and refuses tx outside a transaction with a typed error', () => {
    const host = app.get(TransactionHost);
    expect(host.context.backend).toBe(databaseUrl === undefined ? 'sqlite' : 'postgres');
    expect(() => host.tx).toThrow(/no transaction of the txkit context 'default'/);
  });
});

describe('examples/nestjs lifecycle', () => {
  it('closing the application closes the context, and a method called afterwards says no context is registered', async () => {
    const app = await NestFactory.createApplicationContext(AppModule.forRoot({ tablePrefix: 'closing_' }), { logger: false });
    const orders = app.get(OrderService);
    const host = app.get(TransactionHost);
    await orders.place({ id: 'x', total: 1 });
    await app.close();
    await expect(host.withTransaction(async () => 1)).rejects.toMatchObject({ code: 'CONTEXT_CLOSED' });
    await expect(orders.place({ id: 'y', total: 1 })).rejects.toThrow(/OrderService\.place is @Transactional\(\) but no txkit context named 'default' is registered/);
  });
});
