/**
 * Runs the unchanged code of payments.ts on PGlite (Postgres in this process,
 * started by pgliteTransactions and reached by knex's pg client) and the
 * memory broker: no server and no broker needed.
 */
import knex from 'knex';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore, memoryTransactions } from 'txkit/memory';
import type { MemoryTransactionContext } from 'txkit/memory';
import { memorySink, memorySource, sqlOutboxStore } from 'txkit/outbox';
import { pgliteTransactions } from 'txkit/testing';
import type { PgliteTransactions } from 'txkit/testing';
import { PAYMENT_CAPTURED, PaymentRefusedError, bookLedger, capturePayment, migratePayments, relayPayments } from './payments.js';
import type { PaymentsDeps } from './payments.js';

describe('examples/swap-backends: payments on PGlite and the memory broker', () => {
  let pglite: PgliteTransactions<Knex.Transaction, Knex>;
  let db: Knex;
  let broker: MemoryStore;
  let brokerContext: MemoryTransactionContext;
  let deps: PaymentsDeps;

  beforeAll(async () => {
    // Where production passes knexTransactions(knex) on a Postgres server.
    pglite = await pgliteTransactions({ knex: (url) => knex({ client: 'pg', connection: url, pool: { min: 0, max: 4 } }) });
    db = pglite.db;
    const store = sqlOutboxStore(db);
    await migratePayments(db, store);
    broker = new MemoryStore();
    brokerContext = memoryTransactions({ store: broker });
    deps = { db: pglite.context, store, sink: memorySink(brokerContext), source: memorySource(broker, PAYMENT_CAPTURED) };
  });

  afterAll(async () => {
    await brokerContext.close();
    await deps.store.close();
    await pglite.close(); // the context, knex, the server and PGlite
  });

  it('captured payments reach the broker once and the ledger once, however often relay and ledger run', async () => {
    await capturePayment(deps, { id: 'p-1', orderId: 'o-1', amount: 1200 });
    await capturePayment(deps, { id: 'p-2', orderId: 'o-2', amount: 800 });

    expect(await relayPayments(deps)).toBe(2);
    expect(await relayPayments(deps)).toBe(0);
    expect(broker.messages(PAYMENT_CAPTURED).map((m) => m.key)).toEqual(['o-1', 'o-2']);

    expect(await bookLedger(deps)).toBe(2);
    expect(await bookLedger(deps)).toBe(0);
    const ledger = (await db('ledger').orderBy('payment_id')) as { payment_id: string; amount: number }[];
    expect(ledger).toEqual([
      { payment_id: 'p-1', amount: 1200 },
      { payment_id: 'p-2', amount: 800 },
    ]);
  });

  it('a refused payment leaves no row, no outbox record and no message', async () => {
    const before = broker.messages(PAYMENT_CAPTURED).length;
    await expect(capturePayment(deps, { id: 'p-bad', orderId: 'o-3', amount: 0 })).rejects.toBeInstanceOf(PaymentRefusedError);

    expect(await db('payments').where({ id: 'p-bad' }).first()).toBeUndefined();
    expect(await relayPayments(deps)).toBe(0);
    expect(broker.messages(PAYMENT_CAPTURED)).toHaveLength(before);
    expect((await db('ledger').where({ payment_id: 'p-bad' })).length).toBe(0);
  });
});
