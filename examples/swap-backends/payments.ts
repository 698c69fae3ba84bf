/**
 * The code under test. It is written against what it needs, not against a
 * particular server or broker: a knex-on-Postgres transaction context, the
 * outbox store in that database, and a broker as a relay sink and a pipeline
 * source. Production passes real Postgres and Kafka; the test passes PGlite
 * and the memory broker. Nothing here changes between the two.
 */
import type { Knex } from 'knex';
import type { MessageHandle, TransactionContext } from 'txkit';
import { Outbox, OutboxRelay, pipeline } from 'txkit/outbox';
import type { MessageSource, RelaySink, SqlOutboxStore } from 'txkit/outbox';
import type { SqlOptions } from 'txkit/sql';

export interface PaymentsDeps<B extends MessageHandle = MessageHandle> {
  /** knexTransactions(knex) on Postgres (a server, or PGlite in tests). */
  readonly db: TransactionContext<Knex.Transaction, SqlOptions>;
  /** sqlOutboxStore(knex) on the same database. */
  readonly store: SqlOutboxStore;
  /** Where captured payments are published: kafkaSink(...) or memorySink(...). */
  readonly sink: RelaySink<B>;
  /** The `payment-captured` topic read back by the ledger: a Kafka-backed MessageSource or memorySource(...). */
  readonly source: MessageSource;
}

export interface Payment {
  id: string;
  orderId: string;
  /** In cents; must be positive. */
  amount: number;
}

export const PAYMENT_CAPTURED = 'payment-captured';

/** Refused payment: the transaction rolls back its row and its event. */
export class PaymentRefusedError extends Error {
  constructor(id: string, why: string) {
    super(`payment ${id} refused: ${why}`);
    this.name = 'PaymentRefusedError';
  }
}

export async function migratePayments(knex: Knex, store: SqlOutboxStore): Promise<void> {
  await knex.raw('CREATE TABLE IF NOT EXISTS payments (id text PRIMARY KEY, order_id text NOT NULL, amount integer NOT NULL)');
  await knex.raw('CREATE TABLE IF NOT EXISTS ledger (payment_id text PRIMARY KEY, amount integer NOT NULL)');
  await store.migrate();
}

/** Stores the payment and publishes `payment-captured`, in one transaction. */
export async function capturePayment(deps: PaymentsDeps, payment: Payment): Promise<void> {
  const outbox = new Outbox(deps.store);
  await deps.db.withTransaction(async (tx) => {
    await tx.handle('payments').insert({ id: payment.id, order_id: payment.orderId, amount: payment.amount });
    await outbox.publish(tx, { topic: PAYMENT_CAPTURED, key: payment.orderId, value: JSON.stringify(payment) });
    // Checked after the writes on purpose: a refusal must undo both.
    if (!(Number.isInteger(payment.amount) && payment.amount > 0)) {
      throw new PaymentRefusedError(payment.id, `amount must be a positive number of cents, got ${payment.amount}`);
    }
  });
}

/** Sends every committed event to the broker; returns how many were sent. */
export async function relayPayments(deps: PaymentsDeps): Promise<number> {
  return new OutboxRelay({ store: deps.store, sink: deps.sink, relayId: 'payments' }).drain();
}

/** Books every captured payment into the ledger exactly once; returns how many messages were processed. */
export async function bookLedger(deps: PaymentsDeps): Promise<number> {
  const job = pipeline<Knex.Transaction>({
    consumer: 'ledger',
    source: deps.source,
    db: deps.db,
    store: deps.store,
    handler: async (message, { tx }) => {
      const payment = JSON.parse(String(message.value)) as Payment;
      await tx.handle('ledger').insert({ payment_id: payment.id, amount: payment.amount });
    },
  });
  return (await job.runUntilIdle()).processed;
}
