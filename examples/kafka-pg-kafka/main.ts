// Kafka -> Postgres -> Kafka, exactly once: payments are read from a Kafka topic,
// applied to account balances in Postgres, and a balance event per payment goes
// out through the outbox and the relay to a second topic.
//
//   KAFKA_BROKERS=127.0.0.1:9092 DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx examples/kafka-pg-kafka/main.ts
import { pathToFileURL } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { kafkaTransactions } from 'txkit/kafka';
import { OutboxRelay, kafkaSink, kafkaSource, pipeline, sqlOutboxStore } from 'txkit/outbox';
import type { KafkaMessageSource } from 'txkit/outbox';
import { knexTransactions } from 'txkit/sql';

export interface Report {
  payments: number;
  /** Balance events a read_committed consumer read from the output topic. */
  events: number;
  /** Distinct payments among those events (equal to `events` when nothing was duplicated). */
  distinctEvents: number;
  /** Accounts whose balance in Postgres differs from the sum of their payments. */
  wrongBalances: number;
}

export async function runExample(brokers: string, databaseUrl: string, payments = 500): Promise<Report> {
  const kafka = new Kafka({ clientId: 'kafka-pg-kafka', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
  const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const [paymentsTopic, balancesTopic] = [`payments-${run}`, `balances-${run}`];
  const prefix = `example_${run}_`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: paymentsTopic, numPartitions: 3 }, { topic: balancesTopic, numPartitions: 3 }], waitForLeaders: true });

  // The input: payments keyed by account, so one account's payments stay in order.
  const expected = new Map<string, number>();
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  const messages = Array.from({ length: payments }, (_, i) => {
    const account = `acct-${i % 20}`;
    const cents = 100 + ((i * 53) % 400);
    expected.set(account, (expected.get(account) ?? 0) + cents);
    return { key: account, value: JSON.stringify({ paymentId: `p-${i}`, account, cents }) };
  });
  await producer.send({ topic: paymentsTopic, messages });
  await producer.disconnect();

  const db = knexFactory({ client: 'pg', connection: databaseUrl });
  const balances = `${prefix}balances`;
  const store = sqlOutboxStore(db, { tablePrefix: prefix });
  const source = kafkaSource({ kafka, topic: paymentsTopic });
  const relayContext = kafkaTransactions(kafka, { transactionalId: `example-relay-${run}` });
  const ctx = knexTransactions(db);
  try {
    await store.migrate();
    await db.schema.createTable(balances, (t) => {
      t.string('account', 64).primary();
      t.bigInteger('cents').notNullable();
    });

    // One database transaction per batch: the balance, the outgoing event and the consumed offset commit together.
    const job = pipeline({
      consumer: 'balances',
      source,
      db: ctx,
      store,
      handler: async (message, { tx, outbox }) => {
        const payment = JSON.parse(String(message.value)) as { paymentId: string; account: string; cents: number };
        const [row] = (await tx.handle(balances)
          .insert({ account: payment.account, cents: payment.cents })
          .onConflict('account')
          .merge({ cents: tx.handle.raw('?? + ?', [`${balances}.cents`, payment.cents]) })
          .returning('cents')) as { cents: string }[];
        await outbox.publish(tx, {
          topic: balancesTopic,
          key: payment.account,
          value: JSON.stringify({ ...payment, balance: Number(row?.cents) }),
        });
      },
    });
    await job.runUntilIdle();

    // The relay sends the outbox to Kafka in broker transactions, its position committed with them.
    const relay = new OutboxRelay({ store, sink: kafkaSink({ context: relayContext, kafka }), relayId: `example-${run}` });
    await relay.drain();

    const events = await readAll(kafkaSource({ kafka, topic: balancesTopic }));
    const stored = (await db(balances).select('account', 'cents')) as { account: string; cents: string }[];
    return {
      payments,
      events: events.length,
      distinctEvents: new Set(events.map((e) => (JSON.parse(e) as { paymentId: string }).paymentId)).size,
      wrongBalances: [...expected].filter(([account, cents]) => Number(stored.find((r) => r.account === account)?.cents) !== cents).length,
    };
  } finally {
    await Promise.all([source.close(), relayContext.close(), ctx.close()]);
    await store.close();
    await dropTables(db, prefix);
    await db.destroy();
    // The relay's positions topic (kafkaSink's default name) goes with the example's topics.
    await admin.deleteTopics({ topics: [paymentsTopic, balancesTopic, `txkit-relay-positions-example-${run}`] }).catch(() => undefined);
    await admin.disconnect();
  }
}

/** Every committed record of a topic: a kafkaSource fetch comes back empty only once it has caught up. */
export async function readAll(source: KafkaMessageSource): Promise<string[]> {
  const values: string[] = [];
  try {
    for (const partition of await source.partitions()) {
      for (let offset = 0; ; ) {
        const batch = await source.fetch(partition, offset, 500);
        if (batch.length === 0) break;
        values.push(...batch.map((m) => String(m.value)));
        offset = (batch.at(-1) as { offset: number }).offset + 1;
      }
    }
  } finally {
    await source.close();
  }
  return values;
}

async function dropTables(db: Knex, prefix: string): Promise<void> {
  for (const t of [...sqlOutboxStore(db, { tablePrefix: prefix }).tableNames, `${prefix}balances`]) await db.schema.dropTableIfExists(t);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const brokers = process.env.KAFKA_BROKERS;
  const url = process.env.DATABASE_URL;
  if (brokers === undefined || url === undefined) {
    console.error('set KAFKA_BROKERS (host:port) and DATABASE_URL (postgres://...) to run this example');
    process.exit(2);
  }
  const report = await runExample(brokers, url);
  console.log(report);
  process.exitCode = report.events === report.payments && report.distinctEvents === report.payments && report.wrongBalances === 0 ? 0 : 1;
}
