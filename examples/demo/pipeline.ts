/**
 * The demo's consume-transform-produce job: read order events, keep running
 * totals per customer, publish one enriched event per order, and commit the
 * consumer position in the same transaction. Written against the shared
 * message-handle shape plus a key-value state handle.
 */
import type { Transaction, TransactionContext } from 'txkit';
import type { CommittedMessage, MemoryStore, MemoryTxHandle } from 'txkit/memory';

export interface Order {
  orderId: string;
  customerId: string;
  amountCents: number;
}

export interface CustomerTotals {
  orders: number;
  amountCents: number;
}

export const TOPIC_IN = 'orders';
export const TOPIC_OUT = 'order-totals';
export const GROUP = 'order-totals-job';

/** Publishes `count` orders to the input topic, a committed batch at a time. */
export async function seedOrders(ctx: TransactionContext<MemoryTxHandle>, count: number, customers: number): Promise<void> {
  const batch = 250;
  for (let start = 0; start < count; start += batch) {
    await ctx.withTransaction(async (tx) => {
      const messages = [];
      for (let i = start; i < Math.min(count, start + batch); i++) {
        const order: Order = { orderId: `o-${i}`, customerId: `c-${i % customers}`, amountCents: 100 + ((i * 37) % 900) };
        messages.push({ key: order.customerId, value: JSON.stringify(order) });
      }
      await tx.handle.send({ topic: TOPIC_IN, messages });
    });
  }
}

/**
 * One worker drains its partitions. Each batch is one transaction: state
 * writes, output messages and the consumer position commit together or not
 * at all, so a retried batch can never publish twice.
 */
export async function runWorker(
  ctx: TransactionContext<MemoryTxHandle>,
  store: MemoryStore,
  partitions: number[],
  batchSize: number,
): Promise<void> {
  for (const partition of partitions) {
    // Bounded: each pass commits at least one message or the partition is drained.
    for (let guard = 0; guard < 1_000_000; guard++) {
      const from = store.committedOffset(GROUP, TOPIC_IN, partition) ?? 0;
      const batch = store.messages(TOPIC_IN, partition).slice(from, from + batchSize);
      if (batch.length === 0) break;
      await ctx.withTransaction((tx) => processBatch(tx, partition, batch));
    }
  }
}

async function processBatch(tx: Transaction<MemoryTxHandle>, partition: number, batch: CommittedMessage[]): Promise<void> {
  // Re-read the position inside the transaction: if another worker moved it, the commit conflicts.
  const first = batch[0] as CommittedMessage;
  await tx.handle.get(`position/${partition}`);
  const out = [];
  for (const message of batch) {
    const order = JSON.parse(String(message.value)) as Order;
    const key = `customer/${order.customerId}`;
    const totals = ((await tx.handle.get(key)) as CustomerTotals | undefined) ?? { orders: 0, amountCents: 0 };
    const next = { orders: totals.orders + 1, amountCents: totals.amountCents + order.amountCents };
    await tx.handle.set(key, next);
    out.push({
      key: order.customerId,
      value: JSON.stringify({ ...order, customerTotalCents: next.amountCents }),
      headers: { 'order-id': order.orderId, attempt: String(tx.attempt) },
    });
  }
  await tx.handle.send({ topic: TOPIC_OUT, messages: out });
  await tx.handle.set(`position/${partition}`, first.offset + batch.length);
  await tx.handle.sendOffsets({
    consumerGroupId: GROUP,
    topics: [{ topic: TOPIC_IN, partitions: [{ partition, offset: String(first.offset + batch.length) }] }],
  });
}

export interface Report {
  input: number;
  processed: number;
  committedTransactions: number;
  retriedTransactions: number;
  duplicates: number;
  lost: number;
  stateMismatches: number;
}

/** Everything here is read back from the stores, not from counters kept by the job. */
export function verify(store: MemoryStore): Report {
  const input = store.messages(TOPIC_IN).map((m) => JSON.parse(String(m.value)) as Order);
  const output = store.messages(TOPIC_OUT);
  const seen = new Map<string, number>();
  const transactions = new Set<string>();
  const retried = new Set<string>();
  for (const m of output) {
    const id = String(m.headers['order-id']);
    seen.set(id, (seen.get(id) ?? 0) + 1);
    transactions.add(m.transactionId);
    if (Number(m.headers.attempt) > 1) retried.add(m.transactionId);
  }
  const expected = new Map<string, CustomerTotals>();
  for (const o of input) {
    const t = expected.get(o.customerId) ?? { orders: 0, amountCents: 0 };
    expected.set(o.customerId, { orders: t.orders + 1, amountCents: t.amountCents + o.amountCents });
  }
  let stateMismatches = 0;
  for (const [customer, totals] of expected) {
    const stored = store.get(`customer/${customer}`) as CustomerTotals | undefined;
    if (stored?.orders !== totals.orders || stored.amountCents !== totals.amountCents) stateMismatches += 1;
  }
  return {
    input: input.length,
    processed: seen.size,
    committedTransactions: transactions.size,
    retriedTransactions: retried.size,
    duplicates: [...seen.values()].reduce((n, c) => n + c - 1, 0),
    lost: input.filter((o) => !seen.has(o.orderId)).length,
    stateMismatches,
  };
}
