/**
 * Exactly-once on a real 3-node Kafka cluster (KRaft, replication factor 3,
 * min.insync.replicas 2) while nodes are SIGKILLed and restarted: the leader
 * of a data partition, and the node leading the transaction coordinator's
 * partition of the producer at work. The Kafka -> Kafka copier
 * (transactionalConsumer with a producer per input partition, in a child
 * process), and a pipeline (Kafka in, Postgres state and outbox) with two
 * relays sharing the outbox partitions through leases (Kafka out) run
 * through it; a read_committed consumer judges the output: every input
 * once, in order per partition or key.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Admin, Kafka } from 'kafkajs';
import knexFactory from 'knex';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startKafkaCluster } from '../../scripts/services/kafka.mjs';
import type { KafkaClusterHandle, KafkaClusterNode } from '../../scripts/services/kafka.mjs';
import { knexTransactions } from '../../src/adapters/sql/index.js';
import { OutboxRelay, kafkaSink, kafkaSource, pipeline, sqlOutboxStore } from '../../src/outbox/index.js';
import { TopicReader, fillCopierInput, makeKafka, readCommittedWithJava, uniqueName } from '../kafka/kafka-support.js';
import { service } from '../support/services.js';
import { reportScenario, tally, waitUntil } from './support/fault-report.js';

// The shared broker being reachable means Java and the Kafka jars are here to start a cluster.
const available = service('kafka') !== undefined;
const pg = service('postgres');
const COPIER = fileURLToPath(new URL('../kafka/copier-worker.ts', import.meta.url));
const PARTITIONS = 3;

interface Child {
  proc: ChildProcess;
  committed: number;
  exited: Promise<unknown>;
}

function spawnCopier(env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', COPIER], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env } });
  const child: Child = { proc, committed: 0, exited: new Promise((resolve) => proc.once('exit', resolve)) };
  proc.on('message', (m: { type?: string; count?: number }) => {
    if (m.type === 'committed') child.committed += Number(m.count ?? 0);
  });
  return child;
}

const alive = (c: Child): boolean => c.proc.exitCode === null && c.proc.signalCode === null;

/** Java's String.hashCode, as Kafka hashes a transactional.id to its coordinator's partition. */
function javaHash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}

describe.skipIf(!available)('exactly-once on a 3-node Kafka cluster with node kills', () => {
  let cluster: KafkaClusterHandle;
  let stateDir: string;
  let kafka: Kafka;
  let admin: Admin;
  const children: Child[] = [];
  const readers: TopicReader[] = [];

  beforeAll(async () => {
    stateDir = mkdtempSync(path.join(tmpdir(), 'txkit-cluster-state-'));
    cluster = await startKafkaCluster({ stateDir, size: 3, log: (line) => console.log(`[kafka-cluster] ${line}`) });
    kafka = makeKafka(cluster.brokers, 'cluster-tests');
    admin = kafka.admin();
    await admin.connect();
  }, 240_000);

  afterAll(async () => {
    for (const c of children) if (alive(c)) c.proc.kill('SIGKILL');
    await Promise.all(children.map((c) => c.exited));
    for (const r of readers) await r.close().catch(() => undefined);
    await admin?.disconnect();
    await cluster?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }, 60_000);

  const node = (id: number): KafkaClusterNode => {
    const found = cluster.nodes.find((n) => n.nodeId === id);
    assert.ok(found !== undefined, `node ${id} is one of the cluster's`);
    return found;
  };

  /** The node leading a partition of a topic now (asked again while the cluster settles after a restart; bounded). */
  const leaderOf = async (topic: string, partition: number): Promise<number> => {
    let leader: number | undefined;
    await waitUntil(
      `a leader of ${topic}/${partition}`,
      async () => {
        try {
          const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
          leader = topics[0]?.partitions.find((p) => p.partitionId === partition)?.leader;
        } catch {
          leader = undefined;
        }
        return typeof leader === 'number' && leader >= 0;
      },
      60_000,
    );
    return leader as number;
  };

  /**
   * Creates topics with replication factor 3 and waits until every partition has a leader in the
   * metadata (asked again while brokers learn of the new topic; kafkajs' own wait gives up on
   * UNKNOWN_TOPIC_OR_PARTITION from a broker that has not yet).
   */
  const createReplicatedTopics = async (names: string[], partitions: number): Promise<void> => {
    await admin.createTopics({ topics: names.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 3 })), waitForLeaders: false });
    for (const topic of names) for (let p = 0; p < partitions; p++) await leaderOf(topic, p);
  };

  /** True once the group's committed offsets reach the end of the topic. */
  const consumedAll = async (groupId: string, topic: string): Promise<boolean> => {
    try {
      const ends = await admin.fetchTopicOffsets(topic);
      const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
      return ends.every((e) => offsets?.partitions.find((p) => p.partition === e.partition)?.offset === e.high);
    } catch {
      return false;
    }
  };

  /** The node leading the transaction-state partition that holds `transactionalId`, i.e. its coordinator. */
  const coordinatorOf = async (transactionalId: string): Promise<number> => {
    const h = javaHash(transactionalId);
    // Kafka's Utils.abs: Math.abs, with Integer.MIN_VALUE mapped to 0.
    const partition = (h === -2147483648 ? 0 : Math.abs(h)) % PARTITIONS;
    return leaderOf('__transaction_state', partition);
  };

  /** SIGKILL a node, let the rest go on without it for a moment of progress, then restart it (whatever happened meanwhile). */
  const killAndRestart = async (id: number, progress: () => boolean | Promise<boolean>, what: string): Promise<void> => {
    await node(id).kill();
    try {
      await waitUntil(`${what} while node ${id} is down`, progress, 120_000);
    } finally {
      await node(id).restart();
    }
  };

  // On kafkajs a producer per input partition fences a zombie; on @platformatic/kafka one producer does, with the
  // group generation sent with the offsets.
  it.each([
    ['kafkajs, a producer per input partition', 'kafka-cluster-copier-node-kills', false],
    ['@platformatic/kafka, one producer and the group generation', 'kafka-cluster-copier-node-kills-platformatic', true],
  ])('the copier (%s) through kills of a data leader and of the transaction coordinator: output = input, once, in order', async (_client, scenario, platformatic) => {
    const TOTAL = 6_000;
    const input = uniqueName('cl-in');
    const output = uniqueName('cl-out');
    await createReplicatedTopics([input, output], PARTITIONS);
    const expected = await fillCopierInput(kafka, input, TOTAL, PARTITIONS, 50);
    const prefix = uniqueName('cl-copier');
    const env = {
      COPIER_BROKERS: cluster.brokers,
      COPIER_INPUT: input,
      COPIER_OUTPUT: output,
      COPIER_GROUP: uniqueName('cl-group'),
      ...(platformatic ? { COPIER_TRANSACTIONAL_ID: prefix, COPIER_CONSUMER: 'platformatic', COPIER_CLIENT: 'platformatic' } : { COPIER_TRANSACTIONAL_ID_PREFIX: prefix }),
    };
    let current = spawnCopier(env);
    children.push(current);
    let copierRuns = 1;
    const reader = await TopicReader.open(kafka, output);
    readers.push(reader);
    const copied = (): number => reader.records.length;

    await waitUntil('a sixth of the input copied', () => copied() >= TOTAL / 6 || !alive(current), 120_000);
    const dataLeader = await leaderOf(output, 0);
    let mark = copied();
    await killAndRestart(dataLeader, () => copied() >= Math.min(TOTAL, mark + TOTAL / 6) || !alive(current), 'copy progress');

    const coordinator = await coordinatorOf(platformatic ? prefix : `${prefix}-${input}-0`);
    mark = copied();
    await killAndRestart(coordinator, () => copied() >= Math.min(TOTAL, mark + TOTAL / 6) || !alive(current), 'copy progress');

    // A copier that gave up while a node was away is replaced, as a supervisor would; bounded. Done is when the
    // group's offsets, committed with the output in its transactions, reach the end of the input.
    for (let restarts = 0; !(await consumedAll(env.COPIER_GROUP, input)); restarts++) {
      assert.ok(restarts < 5, 'at most 5 copier restarts');
      await waitUntil('the whole input to be copied (or the copier to stop)', async () => !alive(current) || (await consumedAll(env.COPIER_GROUP, input)), 180_000);
      if (!(await consumedAll(env.COPIER_GROUP, input))) {
        current = spawnCopier(env);
        children.push(current);
        copierRuns += 1;
      }
    }
    current.proc.kill('SIGTERM');
    await current.exited;
    // The official Java consumer (read_committed) judges the output.
    const java = await readCommittedWithJava(cluster.brokers, output);
    const t = tally(expected, java.map((r) => r.value));
    assert.deepEqual(t, { duplicates: 0, lost: 0, unexpected: 0 });
    for (let p = 0; p < PARTITIONS; p++) {
      assert.deepEqual(
        java.filter((r) => r.partition === p).map((r) => r.value),
        expected.filter((v) => v.startsWith(`${p}:`)),
        `partition ${p} in input order`,
      );
    }
    reportScenario({ scenario, messages: TOTAL, faults: 2, duplicates: t.duplicates, lost: t.lost, dataLeader, coordinator, copierRuns });
  }, 600_000);

  // This scenario found two defects, both fixed: kafkajs retrying a send that spanned several leaders after a
  // leader moved (records of a partition sent twice or not at all, in a committed transaction), and a relay's
  // first position read overwriting a newer position of another partition.
  it.skipIf(pg === undefined)('a pipeline (Kafka in, Postgres state and outbox) and two relays (Kafka out) through the same kills: every input once at the end, in order per key', async () => {
    const TOTAL = 4_000;
    const KEYS = 40;
    const input = uniqueName('cl-pipe-in');
    const output = uniqueName('cl-pipe-out');
    await createReplicatedTopics([input, output], PARTITIONS);
    // One partition per send: a kafkajs call spanning several leaders can lose or repeat records when a
    // leader moves during its retries (a node restarted by the scenario before may take its leaderships back).
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (let p = 0; p < PARTITIONS; p++) {
      const messages = Array.from({ length: TOTAL }, (_, n) => ({ key: `k${n % KEYS}`, value: `k${n % KEYS}:${Math.floor(n / KEYS)}`, partition: (n % KEYS) % PARTITIONS })).filter(
        (m) => m.partition === p,
      );
      for (let i = 0; i < messages.length; i += 200) await producer.send({ topic: input, acks: -1, messages: messages.slice(i, i + 200) });
    }
    await producer.disconnect();
    const db = knexFactory({ client: 'pg', connection: pg as string, pool: { min: 0, max: 10 } });
    const tablePrefix = `kc${process.pid}_${Date.now().toString(36)}_`;
    const store = sqlOutboxStore(db, { tablePrefix, partitions: 4 });
    await store.migrate();
    const source = kafkaSource({ kafka, topic: input });
    const job = pipeline({
      consumer: 'cluster-pipe',
      source,
      db: knexTransactions(db, { retry: { deadlineMs: 60_000 } }),
      store,
      batchSize: 50,
      pollIntervalMs: 200,
      onError: () => undefined,
      handler: async (m, { tx, outbox }) => {
        await outbox.publish(tx, { topic: output, key: m.key, value: m.value });
      },
    });
    const relayId = uniqueName('cl-relay');
    const idPrefix = uniqueName('cl-relay-tx');
    // Which relay owned what when, and what went wrong: the failure message tells them.
    const events: string[] = [];
    const t0 = Date.now();
    let watch: ReturnType<typeof setInterval> | undefined;
    const relays = ['r1', 'r2'].map((owner) => {
      const sink = kafkaSink({ kafka, transactionalIdPrefix: idPrefix });
      // A store per relay, as two processes have; close() releases its LISTEN connection.
      const relayStore = sqlOutboxStore(db, { tablePrefix, partitions: 4 });
      const relay = new OutboxRelay({ store: relayStore, sink, relayId, batchSize: 100, pollIntervalMs: 200, leases: { ttlMs: 2_000, owner }, retry: { deadlineMs: 60_000 }, onError: (err) => void events.push(`${Date.now() - t0} ${owner} error: ${(err as Error).message.slice(0, 200)}`) });
      return { relay, sink, relayStore };
    });
    const reader = await TopicReader.open(kafka, output);
    readers.push(reader);
    const arrived = (): number => reader.records.length;
    try {
      job.start();
      for (const { relay } of relays) relay.start();
      const owned = ['', ''];
      watch = setInterval(() => {
        relays.forEach(({ relay }, i) => {
          const now = relay.stats.owned.join(',');
          if (now !== owned[i]) events.push(`${Date.now() - t0} r${i + 1} owns [${now}] (arrived ${arrived()})`);
          owned[i] = now;
        });
      }, 20);
      await waitUntil('a sixth of the input through', () => arrived() >= TOTAL / 6, 180_000);
      const dataLeader = await leaderOf(output, 0);
      let mark = arrived();
      await killAndRestart(dataLeader, () => arrived() >= Math.min(TOTAL, mark + TOTAL / 6), 'progress');
      // The coordinator of one relay partition's producer.
      const coordinator = await coordinatorOf(`${idPrefix}-${relayId}-0`);
      mark = arrived();
      await killAndRestart(coordinator, () => arrived() >= Math.min(TOTAL, mark + TOTAL / 6), 'progress');
      // Done: the pipeline consumed the whole input and the relays sent every outbox record.
      const relayedAll = async (): Promise<boolean> => {
        const status = await store.status();
        const published = status.partitions.reduce((n, p) => n + p.published, 0);
        return published >= TOTAL && status.relays.find((r) => r.relayId === relayId)?.pending === 0;
      };
      await waitUntil(() => `all ${TOTAL} through (the kafkajs reader has ${arrived()})`, relayedAll, 300_000);
      // Two relays' producers write the output: the official Java consumer (read_committed) judges it.
      const records = await readCommittedWithJava(cluster.brokers, output);
      const values = records.map((r) => r.value);
      const t = tally(
        Array.from({ length: TOTAL }, (_, n) => `k${n % KEYS}:${Math.floor(n / KEYS)}`),
        values,
      );
      if (t.duplicates + t.lost + t.unexpected > 0) {
        // Where a duplicate comes from: the same outbox record sent twice (the relay; one transaction's copies
        // sit next to each other), two outbox records of one input (the pipeline), or the input itself.
        const copies = new Map<string, string[]>();
        for (const r of records) copies.set(r.outboxId, [...(copies.get(r.outboxId) ?? []), `${r.partition}@${r.offset}`]);
        const twice = [...copies].filter(([, at]) => at.length > 1);
        const outboxRows = (await db(`${tablePrefix}outbox`).count({ n: '*' }))[0] as { n: string | number };
        const inputRecords = await readCommittedWithJava(cluster.brokers, input);
        assert.fail(
          `${JSON.stringify(t)}: ${records.length} records, outbox records sent twice ${twice.length}, outbox rows ${String(outboxRows.n)}, ` +
            `input records ${inputRecords.length} (${inputRecords.length - new Set(inputRecords.map((r) => r.value)).size} repeated); ` +
            `first copies: ${twice.slice(0, 12).map(([id, at]) => `${id} at ${at.join(' ')}`).join('; ')}; relay events: ${events.join('; ')}`,
        );
      }
      const last = new Map<string, number>();
      for (const v of values) {
        const [key, n] = v.split(':') as [string, string];
        assert.equal(Number(n), (last.get(key) ?? -1) + 1, `order of ${key}`);
        last.set(key, Number(n));
      }
      reportScenario({ scenario: 'kafka-cluster-pipeline-relay-node-kills', messages: TOTAL, faults: 2, duplicates: t.duplicates, lost: t.lost, dataLeader, coordinator });
    } finally {
      clearInterval(watch);
      await job.stop();
      await source.close();
      for (const { relay, sink, relayStore } of relays) {
        await relay.stop();
        await sink.close();
        await relayStore.close();
      }
      await store.close();
      for (const table of store.tableNames) await db.schema.dropTableIfExists(table);
      await db.destroy();
    }
  }, 600_000);
});
