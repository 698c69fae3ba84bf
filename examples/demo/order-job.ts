/**
 * The demo's job: consume order events, keep running totals per customer in
 * the database, and publish one enriched event per order through the outbox.
 * The consumed position commits in the same database transaction, so every
 * order's effects commit exactly once, whatever fails and however often.
 */
import type { Knex } from 'knex';
import type { Transaction } from 'txkit';
import type { PipelineContext, SourceMessage } from 'txkit/outbox';

export interface Order {
  orderId: string;
  customerId: string;
  amountCents: number;
}

export const TOPIC_IN = 'orders';
export const TOPIC_OUT = 'order-totals';
export const CONSUMER = 'order-totals-job';

export async function createStateTable(db: Knex, table: string): Promise<void> {
  if (await db.schema.hasTable(table)) return;
  await db.schema.createTable(table, (t) => {
    t.string('customer_id', 64).primary();
    t.integer('orders').notNullable();
    t.bigInteger('amount_cents').notNullable();
  });
}

/** Parses an order or throws: a malformed event goes to the dead letters with this error. */
export function parseOrder(m: SourceMessage): Order {
  const o = JSON.parse(String(m.value)) as Partial<Order>;
  if (typeof o.orderId !== 'string' || typeof o.customerId !== 'string' || !Number.isInteger(o.amountCents)) {
    throw new TypeError(`order at ${m.source}/${m.partition}@${m.offset} lacks orderId, customerId or an integer amountCents`);
  }
  return o as Order;
}

/** The job's handler; `topicOut` is where the enriched events go. */
export function orderHandler(table: string, topicOut: string = TOPIC_OUT) {
  return async (m: SourceMessage, { tx, outbox }: PipelineContext<Knex.Transaction>): Promise<void> => {
    const order = parseOrder(m);
    const total = await addToTotals(tx, table, order);
    await outbox.publish(tx, {
      topic: topicOut,
      key: order.customerId,
      value: JSON.stringify({ ...order, customerTotalCents: total }),
      headers: { 'order-id': order.orderId, attempt: String(tx.attempt) },
    });
  };
}

async function addToTotals(tx: Transaction<Knex.Transaction>, table: string, order: Order): Promise<number> {
  const db = tx.handle;
  const row = (await db(table).where({ customer_id: order.customerId }).first()) as
    | { orders: number; amount_cents: number | string }
    | undefined;
  const total = Number(row?.amount_cents ?? 0) + order.amountCents;
  if (row === undefined) {
    await db(table).insert({ customer_id: order.customerId, orders: 1, amount_cents: total });
  } else {
    await db(table).where({ customer_id: order.customerId }).update({ orders: Number(row.orders) + 1, amount_cents: total });
  }
  return total;
}
