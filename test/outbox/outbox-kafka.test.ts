/**
 * The relay on a real Kafka broker: a read_committed consumer sees every
 * outbox record exactly once, in per-key order, across SIGKILLs of the relay
 * process at random points; and the txkit CLI around it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaTransactions } from '../../src/adapters/kafka/index.js';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import { knexTransactions } from '../../src/adapters/sql/index.js';
import { main } from '../../src/cli/index.js';
import { ConfigError } from '../../src/core/index.js';
import { MemoryOutboxStore, Outbox, OutboxRelay, kafkaSink, kafkaSource, sqlOutboxStore } from '../../src/outbox/index.js';
import type { KafkaMessageSource, SourceMessage } from '../../src/outbox/index.js';
import { rejection } from '../../src/testing/index.js';
import { service } from '../support/services.js';
import { cli, committed, follow, until } from './outbox-kafka-support.js';

const brokers = service('kafka');
const pg = service('postgres');

describe.skipIf(brokers === undefined || pg === undefined)('outbox relay on Kafka', () => {
  let db: Knex;
  const prefix = `tk${process.pid}_${Date.now().toString(36)}_`;
  beforeAll(() => {
    db = knexFactory({ client: 'pg', connection: pg as string, pool: { min: 0, max: 8 } });
  });
  afterAll(async () => {
    for (const t of sqlOutboxStore(db, { tablePrefix: prefix }).tableNames) await db.schema.dropTableIfExists(t);
    await db.destroy();
  });

  // `txkit relay` with its producers on kafkajs, and on @platformatic/kafka (--kafka-client platformatic: its producers and its read of the stored positions).
  for (const client of ['kafkajs', 'platformatic'] as const) it(`a relay SIGKILLed at random points 10 times: every record exactly once, in per-key order (producers on ${client})`, async () => {
    const total = 20_000;
    const keys = 50;
    const topic = `relay-crash-${client}-${process.pid}-${Date.now().toString(36)}`;
    const store = sqlOutboxStore(db, { tablePrefix: prefix, partitions: 4 });
    await store.migrate();
    const ctx = knexTransactions(db);
    const outbox = new Outbox(store);
    for (let start = 0; start < total; start += 500) {
      await ctx.withTransaction((tx) =>
        outbox.publish(
          tx,
          Array.from({ length: 500 }, (_, i) => {
            const n = start + i;
            return { topic, key: `k${n % keys}`, value: `k${n % keys}:${Math.floor(n / keys)}` };
          }),
        ),
      );
    }
    await ctx.close();
    await store.close();

    const { seen, consumer } = await follow(topic);
    const args = ['relay', '--database-url', pg as string, '--kafka-brokers', brokers as string, '--table-prefix', prefix, '--partitions', '4', '--relay-id', topic, '--batch-size', '100', '--lease-ttl-ms', '2000', '--kafka-client', client];
    const kills: number[] = [];
    try {
      for (let k = 0; k < 10 && seen.length < total; k++) {
        const child = cli(args);
        const exited = new Promise((resolve) => child.once('exit', resolve));
        const from = seen.length;
        const step = 300 + Math.floor(Math.random() * 1200);
        await until(() => seen.length >= Math.min(total, from + step) || child.exitCode !== null, 60_000, `relay progress past ${from + step}`);
        child.kill('SIGKILL');
        await exited;
        kills.push(seen.length);
      }
      // A last relay run drains what is left and exits by itself.
      const last = cli([...args, '--drain']);
      const code = await new Promise((resolve) => last.once('exit', resolve));
      expect(code).toBe(0);
    } finally {
      await consumer.disconnect();
    }
    expect(kills.length).toBeGreaterThanOrEqual(5);
    // The drain has sent everything. Relay partitions have producers of their own, so aborted transactions of
    // several producers interleave in the output: the official Java consumer is the witness.
    const output = await committed(topic);
    expect(output.length).toBe(total);
    expect(new Set(output.map((s) => s.id)).size).toBe(total);
    const perKey = new Map<string, number>();
    for (const s of output) {
      const n = Number(s.value.split(':')[1]);
      expect(n, `order of ${s.key}`).toBe((perKey.get(s.key) ?? -1) + 1);
      perKey.set(s.key, n);
    }
  }, 300_000);

  it('positions travel as records of a per-relay compacted topic, are read back by a new instance, and a shared topic is refused', async () => {
    const stamp = `${process.pid}-${Date.now().toString(36)}`;
    const topic = `outbox-pos-${stamp}`;
    const positionsTopic = `outbox-pos-positions-${stamp}`;
    const { seen, consumer } = await follow(topic);
    const kafka = new kafkajs.Kafka({ brokers: (brokers as string).split(','), clientId: 'outbox-positions', logLevel: kafkajs.logLevel.NOTHING });
    const memory = new MemoryStore();
    const store = new MemoryOutboxStore(memory, { partitions: 1 });
    const outbox = new Outbox(store);
    const publish = (values: string[]): Promise<unknown> =>
      memoryTransactions({ store: memory }).withTransaction((tx) => outbox.publish(tx, values.map((value) => ({ topic, key: 'k', value }))));
    const relayOf = (relayId: string, transactionalId: string): { relay: OutboxRelay; close: () => Promise<void> } => {
      const context = kafkaTransactions(kafka, { transactionalId });
      const relay = new OutboxRelay({ store, sink: kafkaSink({ context, kafka, positionsTopic, positionsPartitions: 1 }), relayId });
      return { relay, close: () => context.close() };
    };
    const readPositions = async (): Promise<SourceMessage[]> => {
      const source: KafkaMessageSource = kafkaSource({ kafka, topic: positionsTopic });
      try {
        return await source.fetch(0, 0, 100);
      } finally {
        await source.close();
      }
    };
    try {
      await publish(['v1', 'v2', 'v3']);
      const first = relayOf('orders', `pos-a-${stamp}`);
      expect(await first.relay.drain()).toBe(3);
      await first.close();
      // One record per relay transaction, keyed <relayId>/<partition>, holding the outbox seq relayed up to.
      expect((await readPositions()).map((r) => [r.key, String(r.value)])).toEqual([['orders/0', '3']]);

      // A fresh instance (a restart) reads its position from the topic and sends nothing again.
      await publish(['v4', 'v5']);
      const second = relayOf('orders', `pos-a-${stamp}`);
      expect(await second.relay.drain()).toBe(2);
      expect(await second.relay.drain()).toBe(0);
      await second.close();
      await until(() => seen.length >= 5, 30_000, 'five records at the consumer');
      expect(seen.map((s) => s.value)).toEqual(['v1', 'v2', 'v3', 'v4', 'v5']);

      // Another relay id on the same positions topic: its positions could hide behind the other's open transactions.
      const other = relayOf('payments', `pos-b-${stamp}`);
      const err = await rejection(other.relay.drain());
      await other.close();
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/holds a record keyed "orders\/0" .* give each relayId its own positionsTopic/);
    } finally {
      await consumer.disconnect();
    }
  });

  it("a partition's first read that ends after another partition committed does not take that partition back to an older position", async () => {
    const stamp = `${process.pid}-${Date.now().toString(36)}`;
    const positionsTopic = `outbox-race-positions-${stamp}`;
    const kafka = new kafkajs.Kafka({ brokers: (brokers as string).split(','), clientId: 'outbox-positions', logLevel: kafkajs.logLevel.NOTHING });
    // The sink's first admin holds the offsets it fetched until released: that read (partition 1's, the relay's
    // first, which reads every partition) ends after partition 0 has read, sent and committed a position.
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let admins = 0;
    let held = false;
    const slowFirstRead = {
      consumer: kafka.consumer.bind(kafka),
      producer: kafka.producer.bind(kafka),
      admin: () => {
        const admin = kafka.admin();
        if (admins++ > 0) return admin;
        return {
          ...admin,
          fetchTopicOffsets: async (topic: string) => {
            const offsets = await admin.fetchTopicOffsets(topic);
            held = true;
            await gate;
            return offsets;
          },
        };
      },
    };
    const relayId = 'race';
    const sink = kafkaSink({ kafka: slowFirstRead, transactionalIdPrefix: `race-${stamp}`, positionsTopic, positionsPartitions: 2 });
    const on = (partition: number) => (sink.contextFor as NonNullable<typeof sink.contextFor>)({ relayId, partition });
    try {
      const slow = on(1).withTransaction((tx) => sink.readPosition(tx, { relayId, partition: 1 }));
      await until(() => held, 30_000, "partition 1's read to have fetched the offsets");
      await on(0).withTransaction(async (tx) => {
        expect(await sink.readPosition(tx, { relayId, partition: 0 })).toBeUndefined();
        await tx.handle.sendBatch({ topicMessages: [(sink.positionMessage as NonNullable<typeof sink.positionMessage>)(tx, { relayId, partition: 0, seq: 10 })] });
        await sink.writePosition(tx, { relayId, partition: 0, seq: 10 });
      });
      release();
      expect(await slow).toBeUndefined();
      // Partition 0's next transaction starts where its commit left it, not where the slow read saw it.
      expect(await on(0).withTransaction((tx) => sink.readPosition(tx, { relayId, partition: 0 }))).toBe(10);
    } finally {
      release();
      await sink.close();
    }
  });

  it('a positions topic made with fewer partitions serves the outbox partitions it has and refuses the others', async () => {
    const stamp = `${process.pid}-${Date.now().toString(36)}`;
    const topic = `outbox-few-${stamp}`;
    const positionsTopic = `outbox-few-positions-${stamp}`;
    const kafka = new kafkajs.Kafka({ brokers: (brokers as string).split(','), clientId: 'outbox-positions', logLevel: kafkajs.logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic, numPartitions: 1 }, { topic: positionsTopic, numPartitions: 2, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }],
      waitForLeaders: true,
    });
    await admin.disconnect();
    const memory = new MemoryStore();
    const store = new MemoryOutboxStore(memory, { partitions: 4 });
    const outbox = new Outbox(store);
    await memoryTransactions({ store: memory }).withTransaction((tx) =>
      outbox.publish(tx, Array.from({ length: 40 }, (_, i) => ({ topic, key: `k${i}`, value: `v${i}` }))),
    );
    const context = kafkaTransactions(kafka, { transactionalId: `few-${stamp}` });
    try {
      // positionsPartitions is left at 16: the sink goes by the partitions the topic has.
      const sink = kafkaSink({ context, kafka, positionsTopic });
      const inPartitions = async (partitions: number[]): Promise<number> => (await store.status()).partitions.filter((p) => partitions.includes(p.partition)).reduce((n, p) => n + p.published, 0);
      expect(await new OutboxRelay({ store, sink, relayId: 'few', partitions: [0, 1] }).drain()).toBe(await inPartitions([0, 1]));
      const err = await rejection(new OutboxRelay({ store, sink, relayId: 'few', partitions: [3] }).drain());
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/positions topic '.*' has 2 partition\(s\), outbox partition 3 needs one of its own/);
    } finally {
      await context.close();
    }
  });

  it('txkit migrate and txkit outbox status speak to the same schema', async () => {
    const lines: string[] = [];
    const io = { out: (l: string) => void lines.push(l), err: (t: string) => void lines.push(t), isTTY: false };
    const dir = mkdtempSync(join(tmpdir(), 'txkit-cli-'));
    try {
      const url = `sqlite://${join(dir, 'cli.db')}`;
      expect(await main(['migrate', '--database-url', url, '--partitions', '2'], {}, io)).toBe(0);
      expect(await main(['outbox', 'status', '--database-url', url, '--partitions', '2', '--json'], {}, io)).toBe(0);
      const status = JSON.parse(lines.at(-1) as string) as { partitions: unknown[]; deadLetters: number };
      expect(status.partitions).toHaveLength(2);
      expect(status.deadLetters).toBe(0);
      expect(await main(['outbox', 'status'], {}, io)).toBe(2);
      expect(lines.at(-1)).toMatch(/no database: pass --database-url/);
      expect(await main(['relay', '--database-url', url], {}, io)).toBe(2);
      expect(lines.at(-1)).toMatch(/relay needs a broker/);
      expect(await main(['bogus'], {}, io)).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
