/**
 * Boots the NestJS application, places two orders (one refused by the
 * credit limit), waits for the relay, prints what reached the broker, and
 * closes the application.
 *   npx tsx --tsconfig examples/nestjs/tsconfig.json examples/nestjs/main.ts      (in-memory SQLite)
 *   DATABASE_URL=postgres://... npx tsx --tsconfig examples/nestjs/tsconfig.json examples/nestjs/main.ts
 */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule, CreditLimitError, OrderService, Persistence } from './app.module.js';

const app = await NestFactory.createApplicationContext(AppModule.forRoot({ databaseUrl: process.env.DATABASE_URL, creditLimit: 1_000 }), {
  logger: ['error', 'warn'],
});
app.enableShutdownHooks();
const orders = app.get(OrderService);
const { broker } = app.get(Persistence);

const run = Date.now().toString(36); // fresh ids, so the example can run again on the same database
await orders.place({ id: `o-1-${run}`, total: 42 });
await orders.place({ id: `o-2-${run}`, total: 5_000 }).catch((err: unknown) => {
  if (!(err instanceof CreditLimitError)) throw err;
  console.log(`refused: ${err.message} (no row, no event)`);
});
await broker.waitFor(() => broker.messages('order-created').length >= 1, 10_000);
console.log(`order o-1: ${JSON.stringify(await orders.find(`o-1-${run}`))}; order o-2: ${JSON.stringify(await orders.find(`o-2-${run}`))}`);
console.log(`events on the broker: ${broker.messages('order-created').map((m) => String(m.value)).join(', ')}`);
await app.close();
