/**
 * Many relay processes of one relay id on a real Kafka broker and Postgres:
 * three txkit CLI relays share eight outbox partitions through leases while
 * they are SIGKILLed and restarted at random moments, and a relay frozen with
 * SIGSTOP inside a broker transaction past its lease is fenced by the broker
 * when it wakes. A read_committed kafkajs consumer judges: every record once,
 * in sequence order per outbox partition.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { knexTransactions } from '../../src/adapters/sql/index.js';
import { main } from '../../src/cli/index.js';
import { Outbox, OutboxRelay, kafkaSink, sqlOutboxStore } from '../../src/outbox/index.js';
import type { KafkaRelaySink, OutboxStatus, SqlOutboxStore } from '../../src/outbox/index.js';
import { service } from '../support/services.js';
import { waitUntil } from '../support/wait-until.js';
import { cli, committed, follow, outputOf, until } from './outbox-kafka-support.js';
import type { Seen } from './outbox-kafka-support.js';

const brokers = service('kafka');
const pg = service('postgres');
const ZOMBIE = fileURLToPath(new URL('./relay-zombie-worker.ts', import.meta.url));
const PARTITIONS = 8;

/** Every record once, and per outbox partition in sequence order. */
function expectOnceInOrder(seen: readonly Seen[], total: number): void {
  expect(new Set(seen.map((s) => s.id)).size).toBe(seen.length);
  expect(seen.length).toBe(total);
  // The output topic has 3 partitions and keys spread over them; per outbox partition the seqs of one key rise.
  const lastPerKey = new Map<string, number>();
  for (const s of seen) {
    const seq = Number(s.seq.split(':')[1]);
    expect(seq, `order of ${s.key}`).toBeGreaterThan(lastPerKey.get(s.key) ?? 0);
    lastPerKey.set(s.key, seq);
  }
}

describe.skipIf(brokers === undefined || pg === undefined)('relay processes sharing the outbox partitions (Kafka, Postgres)', () => {
  let db: Knex;
  /** Each test's own tables: relay ids relay every record of their outbox, so tests must not share one. */
  let prefix = '';
  const prefixes: string[] = [];
  beforeEach(() => {
    prefix = `rs${process.pid}_${Date.now().toString(36)}_${prefixes.length}_`;
    prefixes.push(prefix);
  });
  const children: ChildProcess[] = [];
  beforeAll(() => {
    db = knexFactory({ client: 'pg', connection: pg as string, pool: { min: 0, max: 8 } });
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
    for (const p of prefixes) for (const t of sqlOutboxStore(db, { tablePrefix: p, partitions: PARTITIONS }).tableNames) await db.schema.dropTableIfExists(t);
    await db.destroy();
  });

  /** Publishes `total` records over 40 keys; a key's outbox partition is fixed, so per key the seqs rise. */
  const publish = async (topic: string, total: number, from = 0): Promise<void> => {
    const store = sqlOutboxStore(db, { tablePrefix: prefix, partitions: PARTITIONS });
    await store.migrate();
    const ctx = knexTransactions(db);
    const outbox = new Outbox(store);
    for (let start = from; start < from + total; start += 250) {
      await ctx.withTransaction((tx) =>
        outbox.publish(
          tx,
          Array.from({ length: Math.min(250, from + total - start) }, (_, i) => {
            const n = start + i;
            return { topic, key: `k${n % 40}`, value: String(n) };
          }),
        ),
      );
    }
    await ctx.close();
    await store.close();
  };

  const status = async (): Promise<OutboxStatus> => {
    const lines: string[] = [];
    const io = { out: (l: string) => void lines.push(l), err: () => undefined, isTTY: false };
    await main(['outbox', 'status', '--database-url', pg as string, '--table-prefix', prefix, '--partitions', String(PARTITIONS), '--json'], {}, io);
    return JSON.parse(lines.at(-1) as string) as OutboxStatus;
  };
  const leases = async (relayId: string): Promise<OutboxStatus['leases']> => (await status()).leases.filter((l) => l.group === `relay/${relayId}`);

  it('three CLI relays over eight partitions, SIGKILLed and restarted at random moments: every record once, per-key order kept', async () => {
    const total = 12_000;
    const topic = `relay-scale-${process.pid}-${Date.now().toString(36)}`;
    const relayId = topic;
    await publish(topic, total);
    const { seen, consumer } = await follow(topic);
    const args = ['relay', '--database-url', pg as string, '--kafka-brokers', brokers as string, '--table-prefix', prefix, '--partitions', String(PARTITIONS)];
    args.push('--relay-id', relayId, '--batch-size', '100', '--lease-ttl-ms', '2000', '--poll-interval-ms', '200', '--transactional-id-prefix', `scale-${process.pid}`);
    const start = (): ChildProcess => {
      const child = cli(args);
      children.push(child);
      return child;
    };
    const relays = [start(), start(), start()];
    const owners = new Set<string>();
    let kills = 0;
    try {
      // Several relays hold partitions at once: the work is shared, not a standby.
      await until(() => seen.length >= 500, 120_000, 'the first 500 records');
      await waitUntil(
        async () => {
          const live = (await leases(relayId)).filter((l) => l.owner !== '' && l.expiresAt > Date.now());
          for (const l of live) owners.add(l.owner);
          return new Set(live.map((l) => l.owner)).size >= 2;
        },
        30_000,
        'leases held by two relay processes at once',
      );
      // Bounded: 6 kills, each after some progress (or at once, if everything was relayed already).
      for (let k = 0; k < 6; k++) {
        const from = seen.length;
        const step = 150 + Math.floor(Math.random() * 600);
        await until(() => seen.length >= Math.min(total, from + step), 120_000, `relay progress past ${from + step}`);
        const victim = Math.floor(Math.random() * relays.length);
        const child = relays[victim] as ChildProcess;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
        kills += 1;
        relays[victim] = start();
      }
      let behind = '';
      await waitUntil(
        async () => {
          const mine = (await status()).relays.find((r) => r.relayId === relayId);
          behind = JSON.stringify(mine?.partitions.filter((p) => p.pending > 0) ?? 'relay id unknown');
          return mine?.pending === 0;
        },
        180_000,
        () => `every record relayed (the consumer saw ${seen.length}; partitions pending: ${behind}; the relays: ${relays.map(outputOf).join('; ')})`,
      );
      for (const r of relays) {
        const exited = new Promise((resolve) => r.once('exit', resolve));
        r.kill('SIGTERM');
        await exited;
      }
    } finally {
      await consumer.disconnect();
    }
    expect(kills).toBeGreaterThanOrEqual(3);
    expect(owners.size).toBeGreaterThanOrEqual(2);
    // Aborted transactions of several producers interleave in the output: the official Java consumer is the witness.
    expectOnceInOrder(await committed(topic), total);
  }, 420_000);

  // The sink on kafkajs, and on @platformatic/kafka alone (its producers and its read of the stored positions).
  for (const client of ['kafkajs', 'platformatic'] as const) it(`partitions that move away and back (a relay joins, then leaves): the first relay relays them again from where the other left them (producers on ${client})`, async () => {
    const topic = `relay-moves-${client}-${process.pid}-${Date.now().toString(36)}`;
    const relayId = topic;
    const kafka = new kafkajs.Kafka({ brokers: (brokers as string).split(','), clientId: 'relay-moves', logLevel: kafkajs.logLevel.NOTHING });
    const { consumer } = await follow(topic); // creates the topic (3 partitions)
    const made: { relay: OutboxRelay; sink: KafkaRelaySink; store: SqlOutboxStore }[] = [];
    const relayNamed = (owner: string): OutboxRelay => {
      const sink = kafkaSink({
        kafka: client === 'platformatic' ? { clientId: `relay-moves-${owner}`, bootstrapBrokers: (brokers as string).split(',') } : kafka,
        transactionalIdPrefix: `moves-${client}-${process.pid}`,
      });
      // A store per relay, as two processes have; its LISTEN connection is released by close().
      const store = sqlOutboxStore(db, { tablePrefix: prefix, partitions: PARTITIONS });
      const relay = new OutboxRelay({
        store,
        sink,
        relayId,
        batchSize: 50,
        pollIntervalMs: 100,
        leases: { ttlMs: 1_000, owner },
        onError: () => undefined,
      });
      made.push({ relay, sink, store });
      return relay;
    };
    try {
      const a = relayNamed('a');
      a.start();
      await publish(topic, 400);
      const relayed = (): number => made.reduce((n, { relay }) => n + relay.stats.relayed, 0);
      await until(() => relayed() >= 400 && a.stats.owned.length === PARTITIONS, 60_000, 'a relays everything alone');
      const b = relayNamed('b');
      b.start();
      await until(() => a.stats.owned.length === PARTITIONS / 2 && b.stats.owned.length === PARTITIONS / 2, 60_000, 'a 4/4 split');
      await publish(topic, 400, 400);
      await until(() => relayed() >= 800 && b.stats.relayed > 0, 60_000, `800 relayed, some by b (have ${relayed()})`);
      await b.stop();
      await until(() => a.stats.owned.length === PARTITIONS, 60_000, 'a takes back every partition');
      await publish(topic, 400, 800);
      await until(() => relayed() >= 1_200, 60_000, `1200 relayed (have ${relayed()})`);
      await a.stop();
      expect(relayed()).toBe(1_200);
      expectOnceInOrder(await committed(topic), 1_200);
    } finally {
      for (const { relay, sink, store } of made) {
        await relay.stop();
        await sink.close();
        await store.close();
      }
      await consumer.disconnect();
    }
  }, 240_000);

  it('a relay frozen inside a broker transaction past its lease: another relay takes its partitions and fences it, its commit is refused', async () => {
    const total = 3_000;
    const topic = `relay-zombie-${process.pid}-${Date.now().toString(36)}`;
    const relayId = topic;
    const idPrefix = `zombie-${process.pid}-${Date.now().toString(36)}`;
    await publish(topic, total);
    const { seen, consumer } = await follow(topic);
    const messages: Record<string, unknown>[] = [];
    const zombie = spawn(process.execPath, ['--import', 'tsx', ZOMBIE], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: {
        ...process.env,
        RELAY_DATABASE_URL: pg as string,
        RELAY_TABLE_PREFIX: prefix,
        RELAY_PARTITIONS: String(PARTITIONS),
        RELAY_BROKERS: brokers as string,
        RELAY_TRANSACTIONAL_ID_PREFIX: idPrefix,
        RELAY_ID: relayId,
        RELAY_LEASE_TTL_MS: '2000',
      },
    });
    children.push(zombie);
    zombie.on('message', (m: Record<string, unknown>) => void messages.push(m));
    const state = (): string => `${messages.filter((m) => m.type !== 'stats').slice(-5).map((m) => JSON.stringify(m)).join(' ')}`;
    try {
      await until(() => seen.length >= total / 5, 120_000, 'the first relay to send a fifth');
      zombie.send({ type: 'freeze' });
      await until(() => messages.some((m) => m.type === 'freezing'), 60_000, 'the first relay to freeze inside a transaction');
      const atFreeze = seen.length;

      // Another relay of the relay id, the same prefix: once the frozen one's lease lapses it takes every partition.
      const other = cli([
        'relay', '--database-url', pg as string, '--kafka-brokers', brokers as string, '--table-prefix', prefix, '--partitions', String(PARTITIONS),
        '--relay-id', relayId, '--batch-size', '100', '--lease-ttl-ms', '2000', '--poll-interval-ms', '200', '--transactional-id-prefix', idPrefix,
      ]);
      children.push(other);
      // Done when the official Java consumer reads every record: the store's relayed hints can wait on the
      // frozen process's database session, so they are no measure while it stands still.
      await waitUntil(async () => new Set((await committed(topic)).map((r) => r.id)).size >= total, 120_000, () => `all ${total} records relayed (at the freeze the consumer had ${atFreeze})`);
      const held = await leases(relayId);
      expect(held.filter((l) => l.owner.startsWith('zombie-') && l.expiresAt > Date.now())).toEqual([]);

      zombie.kill('SIGCONT');
      await until(() => messages.some((m) => m.type === 'frozen-outcome'), 60_000, `the frozen transaction to end: ${state()}`);
      const outcome = messages.find((m) => m.type === 'frozen-outcome');
      expect(outcome?.committed, JSON.stringify(outcome)).toBe(false);
      expect(outcome?.error).toBe('FencedError');

      for (const c of [other, zombie]) {
        const exited = new Promise((resolve) => c.once('exit', resolve));
        c.kill(c === zombie ? 'SIGKILL' : 'SIGTERM');
        await exited;
      }
    } finally {
      await consumer.disconnect();
    }
    expectOnceInOrder(await committed(topic), total);
  }, 300_000);
});
