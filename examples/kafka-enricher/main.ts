// Kafka -> Kafka exactly once on @platformatic/kafka: orders are read from a topic,
// enriched and written to a second topic, each batch's output and input offsets in one
// transaction committed with the consumer's group generation (a stalled instance that
// lost its partitions commits nothing). One transactional id per instance.
//
//   KAFKA_BROKERS=127.0.0.1:9092 npx tsx examples/kafka-enricher/main.ts
import { pathToFileURL } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { kafkaTransactions, transactionalConsumer } from 'txkit/kafka';
import { kafkaSource } from 'txkit/outbox';
import { readAll } from '../kafka-pg-kafka/main.js';

export interface Report {
  orders: number;
  /** Enriched orders a read_committed reader read from the output topic. */
  enriched: number;
  /** Distinct orders among them (equal to `enriched` when nothing was duplicated). */
  distinct: number;
}

export async function runExample(brokers: string, orders = 300): Promise<Report> {
  const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const [ordersTopic, enrichedTopic] = [`orders-${run}`, `orders-enriched-${run}`];
  // kafkajs sets up the topics, writes the input and reads the output back; txkit runs on @platformatic/kafka.
  const kafka = new Kafka({ clientId: 'kafka-enricher', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: ordersTopic, numPartitions: 3 }, { topic: enrichedTopic, numPartitions: 3 }], waitForLeaders: true });
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  await producer.send({
    topic: ordersTopic,
    messages: Array.from({ length: orders }, (_, i) => ({ key: `customer-${i % 25}`, value: JSON.stringify({ orderId: `o-${i}`, cents: 100 + i }) })),
  });
  await producer.disconnect();

  const connection = { clientId: `enricher-${run}`, bootstrapBrokers: brokers.split(',') };
  const context = kafkaTransactions(connection, { transactionalId: `enricher-${run}` });
  let copied = 0;
  const enricher = transactionalConsumer(connection, {
    context,
    groupId: `enricher-${run}`,
    topics: [ordersTopic],
    fromBeginning: true,
    eachBatch: async ({ messages, tx }) => {
      await tx.handle.send({
        topic: enrichedTopic,
        messages: messages.map((m) => {
          const order = JSON.parse(String(m.value)) as { orderId: string; cents: number };
          return { key: m.key, value: JSON.stringify({ ...order, euros: order.cents / 100 }) };
        }),
      });
      tx.afterCommit(() => void (copied += messages.length));
    },
  });
  try {
    await enricher.start();
    const deadline = Date.now() + 60_000;
    while (copied < orders && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    await enricher.stop();
    await enricher.done;
    const values = await readAll(kafkaSource({ kafka, topic: enrichedTopic }));
    return { orders, enriched: values.length, distinct: new Set(values.map((v) => (JSON.parse(v) as { orderId: string }).orderId)).size };
  } finally {
    await enricher.stop();
    await context.close();
    await admin.deleteTopics({ topics: [ordersTopic, enrichedTopic] }).catch(() => undefined);
    await admin.disconnect();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const brokers = process.env.KAFKA_BROKERS;
  if (brokers === undefined) {
    console.error('set KAFKA_BROKERS (host:port) to run this example; it needs npm install @platformatic/kafka@1');
    process.exit(2);
  }
  const report = await runExample(brokers);
  console.log(report);
  process.exitCode = report.enriched === report.orders && report.distinct === report.orders ? 0 : 1;
}
