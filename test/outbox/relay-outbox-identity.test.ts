/**
 * Two outboxes relaying to one broker under the same relay id. Relay
 * positions live in the broker per relay id and partition, so before each
 * position carried its outbox's id, the second outbox's relay read the
 * first's position and silently skipped every record of its own below it
 * (`txkit relay --drain` reported "relayed 0" with records pending). Now the
 * second relay stops with a ConfigError that names both outboxes, and sends
 * nothing; a second store object over the same tables is the same outbox.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import knexFactory from 'knex';
import pgLib from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import { PulsarClient, pulsarTransactions } from '../../src/adapters/pulsar/index.js';
import { knexTransactions } from '../../src/adapters/sql/index.js';
import { main } from '../../src/cli/index.js';
import { ConfigError } from '../../src/core/index.js';
import type { MessageHandle, TransactionContext } from '../../src/core/index.js';
import { MemoryOutboxStore, Outbox, OutboxRelay, kafkaSink, memorySink, pulsarSink, sqlOutboxStore } from '../../src/outbox/index.js';
import type { OutboxStore, RelaySink } from '../../src/outbox/index.js';
import { rejection } from '../../src/testing/index.js';
import { readCommittedWithJava } from '../kafka/kafka-support.js';
import { TopicReader, uniqueTopic } from '../pulsar/pulsar-support.js';
import { service } from '../support/services.js';

const stamp = `${process.pid}-${Date.now().toString(36)}`;
const ANOTHER_OUTBOX = /the position of relay id '.*' in outbox partition 0 was written by the relay of another outbox \(outbox id .*; this store's is .*\).*Give each outbox its own relayId/;

/** An outbox on the memory backend with `values` published to `topic`. */
async function memoryOutbox(topic: string, values: string[]): Promise<MemoryOutboxStore> {
  const memory = new MemoryStore();
  const store = new MemoryOutboxStore(memory);
  const outbox = new Outbox(store);
  await memoryTransactions({ store: memory }).withTransaction((tx) => outbox.publish(tx, values.map((value) => ({ topic, key: 'k', value }))));
  return store;
}

/** Outbox A relays first; then outbox B, with fewer records, under the same relay id and sink kind. */
async function twoOutboxes<H extends object>(
  topic: string,
  sinkFor: (label: 'a' | 'b') => RelaySink<H & MessageHandle>,
  relayId: string,
): Promise<{ first: number; second: unknown }> {
  const a = await memoryOutbox(topic, ['a1', 'a2', 'a3']);
  const b = await memoryOutbox(topic, ['b1', 'b2']);
  const first = await new OutboxRelay({ store: a, sink: sinkFor('a'), relayId }).drain();
  const second = await rejection(new OutboxRelay({ store: b as OutboxStore<unknown>, sink: sinkFor('b'), relayId, retry: { maxAttempts: 1 } }).drain());
  return { first, second };
}

describe('two outboxes, one broker, one relay id', () => {
  it('memory broker: the second outbox\'s relay stops with a ConfigError naming both outboxes and sends none of its records', async () => {
    const broker = memoryTransactions();
    const { first, second } = await twoOutboxes('orders', () => memorySink(broker), 'shared');
    expect(first).toBe(3);
    expect(second).toBeInstanceOf(ConfigError);
    expect((second as Error).message).toMatch(ANOTHER_OUTBOX);
    expect(broker.store.messages('orders').map((m) => String(m.value))).toEqual(['a1', 'a2', 'a3']);
    // Its own relay id works.
    const b = await memoryOutbox('orders', ['b1', 'b2']);
    expect(await new OutboxRelay({ store: b, sink: memorySink(broker), relayId: 'b-relay' }).drain()).toBe(2);
    await broker.close();
  });

  it('a second store object over the same memory store, or the same SQL tables, is the same outbox and goes on where the first stopped', async () => {
    const memory = new MemoryStore();
    expect(await new MemoryOutboxStore(memory).outboxId()).toBe(await new MemoryOutboxStore(memory).outboxId());
    expect(await new MemoryOutboxStore(memory).outboxId()).not.toBe(await new MemoryOutboxStore(new MemoryStore()).outboxId());

    const dir = mkdtempSync(join(tmpdir(), 'txkit-identity-'));
    const db = knexFactory({ client: 'better-sqlite3', connection: { filename: join(dir, 'a.db') }, useNullAsDefault: true });
    try {
      const one = sqlOutboxStore(db, { tablePrefix: 'one_' });
      await one.migrate();
      const again = sqlOutboxStore(db, { tablePrefix: 'one_' });
      const other = sqlOutboxStore(db, { tablePrefix: 'two_' });
      await other.migrate();
      expect(await one.outboxId()).toMatch(/^sql:\d+$/);
      expect(await again.outboxId()).toBe(await one.outboxId());
      expect(await other.outboxId()).not.toBe(await one.outboxId());

      const broker = memoryTransactions();
      const ctx = knexTransactions(db);
      const publish = (v: string): Promise<unknown> => ctx.withTransaction((tx) => new Outbox(one).publish(tx, { topic: 't', key: 'k', value: v }));
      await publish('x1');
      expect(await new OutboxRelay({ store: one, sink: memorySink(broker), relayId: 'r' }).drain()).toBe(1);
      await publish('x2');
      expect(await new OutboxRelay({ store: again, sink: memorySink(broker), relayId: 'r' }).drain()).toBe(1);
      expect(broker.store.messages('t').map((m) => String(m.value))).toEqual(['x1', 'x2']);
      await ctx.close();
      await broker.close();
    } finally {
      await db.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const pg = service('postgres');
  it.skipIf(pg === undefined)('Postgres: the knex store and the pg Pool store over the same tables have one outbox id', async () => {
    const db = knexFactory({ client: 'pg', connection: pg as string });
    const pool = new pgLib.Pool({ connectionString: pg });
    const prefix = `ident_${stamp.replace(/-/g, '_')}_`;
    try {
      const viaKnex = sqlOutboxStore(db, { tablePrefix: prefix });
      await viaKnex.migrate();
      const viaPool = sqlOutboxStore(pool, { tablePrefix: prefix });
      // Asked at once by both: one insert wins and both read the winner.
      const [x, y] = await Promise.all([viaKnex.outboxId(), viaPool.outboxId()]);
      expect(x).toBe(y);
      await viaPool.close();
      await viaKnex.close();
    } finally {
      for (const t of sqlOutboxStore(db, { tablePrefix: prefix }).tableNames) await db.schema.dropTableIfExists(t);
      await pool.end();
      await db.destroy();
    }
  });
});

const brokers = service('kafka');
describe.skipIf(brokers === undefined)('two outboxes, one Kafka cluster, one relay id', () => {
  const kafka = new kafkajs.Kafka({ brokers: (brokers ?? '').split(','), clientId: 'identity', logLevel: kafkajs.logLevel.NOTHING });
  const sinks: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    await Promise.allSettled(sinks.map((s) => s.close()));
  });

  it('kafkaSink: the second relay stops with a ConfigError and the Java consumer reads only the first outbox\'s records', async () => {
    const topic = `identity-${stamp}`;
    const { first, second } = await twoOutboxes(
      topic,
      (label) => {
        const sink = kafkaSink({ kafka, transactionalIdPrefix: `identity-${label}-${stamp}`, positionsPartitions: 1 });
        sinks.push(sink);
        return sink;
      },
      `identity-${stamp}`,
    );
    expect(first).toBe(3);
    expect(second).toBeInstanceOf(ConfigError);
    expect((second as Error).message).toMatch(ANOTHER_OUTBOX);
    expect((await readCommittedWithJava(brokers as string, topic)).map((r) => r.value)).toEqual(['a1', 'a2', 'a3']);
  });

  it('txkit relay --drain of a second database under the default relay id exits 2 (wrong configuration) with the reason, where it printed "relayed 0" and exited 0 before', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'txkit-identity-cli-'));
    const lines: string[] = [];
    const io = { out: (l: string) => void lines.push(l), err: (t: string) => void lines.push(t), isTTY: false };
    const topic = `identity-cli-${stamp}`;
    const relayId = `cli-${stamp}`;
    try {
      for (const [file, values] of [
        ['a.db', ['a1', 'a2', 'a3']],
        ['b.db', ['b1']],
      ] as const) {
        const url = `sqlite://${join(dir, file)}`;
        expect(await main(['migrate', '--database-url', url], {}, io)).toBe(0);
        const db = knexFactory({ client: 'better-sqlite3', connection: { filename: join(dir, file) }, useNullAsDefault: true });
        const ctx: TransactionContext<unknown> = knexTransactions(db);
        await ctx.withTransaction((tx) => new Outbox(sqlOutboxStore(db)).publish(tx as never, values.map((value) => ({ topic, key: 'k', value }))));
        await ctx.close();
        await db.destroy();
      }
      const relay = (file: string): Promise<number> =>
        main(['relay', '--drain', '--database-url', `sqlite://${join(dir, file)}`, '--kafka-brokers', brokers as string, '--relay-id', relayId, '--transactional-id-prefix', `cli-${file}-${stamp}`, '--timeout-ms', '20000'], {}, io);
      expect(await relay('a.db')).toBe(0);
      lines.length = 0;
      expect(await relay("b.db"), lines.join("\n")).toBe(2); // wrong configuration
      expect(lines.join('\n')).toMatch(ANOTHER_OUTBOX);
      expect((await readCommittedWithJava(brokers as string, topic)).map((r) => r.value)).toEqual(['a1', 'a2', 'a3']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

const pulsar = service('pulsar');
describe.skipIf(pulsar === undefined)('two outboxes, one Pulsar cluster, one relay id', () => {
  it('pulsarSink: the second relay stops with a ConfigError and a reader sees only the first outbox\'s records', async () => {
    const client = new PulsarClient({ serviceUrl: pulsar as string, operationTimeoutMs: 20_000, connectionTimeoutMs: 5_000 });
    const context = pulsarTransactions({ client });
    const topic = uniqueTopic('identity');
    const positionsTopic = uniqueTopic('identity-positions');
    const reader = await TopicReader.open(pulsar as string, topic);
    try {
      const { first, second } = await twoOutboxes(topic, () => pulsarSink({ context, positionsTopic }), `identity-${stamp}`);
      expect(first).toBe(3);
      expect(second).toBeInstanceOf(ConfigError);
      expect((second as Error).message).toMatch(ANOTHER_OUTBOX);
      await reader.caughtUp();
      expect(reader.records.map((m) => String(m.value))).toEqual(['a1', 'a2', 'a3']);
    } finally {
      await reader.close();
      await context.close();
      await client.close();
    }
  }, 120_000);
});
