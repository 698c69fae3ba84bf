/**
 * Kafka faults on a private broker that clients reach only through a
 * FaultProxy (its advertised listener is the proxy's port): EndTxn stalled
 * or cut in either direction under the outbox relay, the broker SIGKILLed
 * and restarted under a copier, and a zombie copier frozen with SIGSTOP
 * while a successor fences its producer epoch. Exactly-once is judged by a
 * read_committed consumer of the output.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import { kafkaTransactions } from '../../src/adapters/kafka/index.js';
import { StableOffsets, isUnstableOffsets } from '../../src/adapters/kafka/stable-offsets.js';
import { TxkitError, UnknownCommitResultError } from '../../src/core/errors.js';
import { MemoryOutboxStore, Outbox, OutboxRelay, kafkaSink, kafkaSource } from '../../src/outbox/index.js';
import type { KafkaSourceClientLike } from '../../src/outbox/index.js';
import { TopicReader, createTopics, fillCopierInput, highWatermarks, makeKafka, readCommittedWithJava, uniqueName } from '../kafka/kafka-support.js';
import { service } from '../support/services.js';
import { KafkaApi, kafkaExchange, kafkaRequest } from './support/fault-proxy.js';
import type { FaultProxy, FaultRule } from './support/fault-proxy.js';
import { reportScenario, tally, waitUntil } from './support/fault-report.js';
import { startProxiedKafka } from './support/private-brokers.js';
import { DEFAULT_KAFKA_VERSION } from '../../scripts/services/kafka.mjs';
import type { ProxiedKafka } from './support/private-brokers.js';
import { processState } from '../support/process-state.js';
import { spawnJavaWitness } from '../support/java-witness.js';

// The shared broker being reachable means Java and the Kafka jars are here to start a private one.
const available = service('kafka') !== undefined;
const COPIER = fileURLToPath(new URL('../kafka/copier-worker.ts', import.meta.url));
const ZOMBIE = fileURLToPath(new URL('./support/kafka-zombie-worker.ts', import.meta.url));

interface Child {
  proc: ChildProcess;
  committed: number;
  messages: Record<string, unknown>[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The record of a copier process, and what takes each of its messages (a 'committed' one adds its count). */
function track(proc: ChildProcess): { child: Child; note: (m: Record<string, unknown>) => void } {
  const child: Child = {
    proc,
    committed: 0,
    messages: [],
    exited: new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  const note = (m: Record<string, unknown>): void => {
    child.messages.push(m);
    if (m.type === 'committed') child.committed += Number(m.count ?? 0);
  };
  return { child, note };
}

function spawnWorker(file: string, env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', file], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env } });
  const { child, note } = track(proc);
  proc.on('message', note);
  return child;
}

/**
 * The official Java clients' consume-transform-produce loop (test/support/java/KafkaCopier.java) as a copier:
 * the same env as copier-worker.ts, with COPIER_TRANSACTIONAL_ID; its "committed <n>" lines count as commits.
 */
async function spawnJavaCopier(env: Record<string, string>): Promise<Child> {
  const args = [env.COPIER_BROKERS, env.COPIER_INPUT, env.COPIER_OUTPUT, env.COPIER_GROUP, env.COPIER_TRANSACTIONAL_ID].map(String);
  const proc = await spawnJavaWitness({ coords: [`org.apache.kafka:kafka-clients:${DEFAULT_KAFKA_VERSION}`], source: 'KafkaCopier.java', args });
  const { child, note } = track(proc);
  createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    const [type = '', rest = ''] = line.split(/ (.*)/s);
    note({ type, ...(type === 'committed' ? { count: Number(rest) } : { detail: rest }) });
  });
  createInterface({ input: proc.stderr as NodeJS.ReadableStream }).on('line', (line) => {
    note({ type: 'stderr', line });
    console.error(`[java copier] ${line}`);
  });
  return child;
}

const alive = (c: Child): boolean => c.proc.exitCode === null && c.proc.signalCode === null;

describe.skipIf(!available)('kafka faults (private broker behind a fault proxy)', () => {
  let k: ProxiedKafka;
  let kafka: Kafka;
  let admin: Admin;
  const children: Child[] = [];
  const readers: TopicReader[] = [];

  beforeAll(async () => {
    // The broker's own traffic (transaction markers) through a second proxy, so a test can hold markers back.
    k = await startProxiedKafka({ 'transaction.abort.timed.out.transaction.cleanup.interval.ms': 1_000 }, { proxyInternal: true });
    kafka = makeKafka(k.brokers, 'fault-tests');
    admin = kafka.admin();
    await admin.connect();
  });

  afterAll(async () => {
    for (const c of children) {
      if (alive(c)) {
        c.proc.kill('SIGCONT');
        c.proc.kill('SIGKILL');
      }
    }
    await Promise.all(children.map((c) => c.exited));
    for (const r of readers) await r.close().catch(() => undefined);
    await admin?.disconnect();
    await k?.close();
  });

  // The relay's producer on kafkajs, and on @platformatic/kafka (kafkajs still reads the positions).
  for (const producerClient of ['kafkajs', 'platformatic'] as const) it(`EndTxn stalled or cut in either direction under the outbox relay: typed outcome, producer rebuilt, every record exactly once (producer on ${producerClient})`, async () => {
    // More records than the 25 transactions of 20 below can take even when every fault ends committed (a client that
    // retries a cut EndTxn on a new connection), so every fault meets a transaction; the drain sends the rest.
    const N = 600;
    const topic = uniqueName(`relay-endtxn-${producerClient}`);
    await createTopics(admin, [topic], 1);
    const memory = new MemoryStore({ partitions: 1 });
    const store = new MemoryOutboxStore(memory, { partitions: 1 });
    const outbox = new Outbox(store);
    await memoryTransactions({ store: memory }).withTransaction((tx) =>
      outbox.publish(tx, Array.from({ length: N }, (_, i) => ({ topic, key: `k${i}`, value: `v${i}` }))),
    );
    // A short request timeout and one kafkajs retry, so a stalled EndTxn turns into an indefinite result in seconds.
    const client = new kafkajs.Kafka({ brokers: [k.brokers], clientId: 'relay', requestTimeout: 2_000, logLevel: kafkajs.logLevel.NOTHING });
    const retry = { retries: 1, initialRetryTime: 20, maxRetryTime: 100 };
    const context =
      producerClient === 'kafkajs'
        ? kafkaTransactions(client, { transactionalId: uniqueName('relay-tx'), producer: { retry } })
        : kafkaTransactions({ clientId: 'relay', bootstrapBrokers: [k.brokers], requestTimeout: 2_000 }, { transactionalId: uniqueName('relay-tx'), producer: { retry } });
    const relay = new OutboxRelay({
      store,
      sink: kafkaSink({ context, kafka: client, positionsTopic: uniqueName('relay-positions'), positionsPartitions: 1 }),
      relayId: topic,
      batchSize: 20,
      retry: { deadlineMs: 30_000, initialDelayMs: 5, maxDelayMs: 50 },
    });
    const inits = k.proxy.addRule({ direction: 'to-server', match: kafkaRequest(KafkaApi.InitProducerId), action: { kind: 'observe' }, times: 1_000_000 });
    const endTxn = kafkaExchange(KafkaApi.EndTxn);
    const endTxnRequests = k.proxy.addRule({ direction: 'to-server', match: endTxn.request, action: { kind: 'observe' }, times: 1_000_000 });

    const kinds = ['stall-request', 'stall-response', 'cut-before', 'cut-after', 'delay-short', 'corrupt-request'] as const;
    const outcomes: { kind: string; outcome: string; rebuilt: boolean }[] = [];
    try {
      await relay.relayOnce(0); // a first clean transaction: the producer exists, its InitProducerId is counted
      for (const kind of [...kinds, ...kinds]) {
        let rule: FaultRule;
        if (kind === 'stall-request') rule = k.proxy.addRule({ direction: 'to-server', match: kafkaRequest(KafkaApi.EndTxn), action: { kind: 'stall' } });
        else if (kind === 'stall-response') rule = k.proxy.addRule({ direction: 'to-client', match: endTxn.response, action: { kind: 'stall' } });
        else if (kind === 'delay-short') rule = k.proxy.addRule({ direction: 'to-server', match: kafkaRequest(KafkaApi.EndTxn), action: { kind: 'delay', ms: 300 } });
        // Garbage after the api key and version: the broker cannot parse the request and drops the connection.
        else if (kind === 'corrupt-request') rule = k.proxy.addRule({ direction: 'to-server', match: kafkaRequest(KafkaApi.EndTxn), action: { kind: 'corrupt' } });
        else rule = k.proxy.addRule({ direction: 'to-server', match: kafkaRequest(KafkaApi.EndTxn), action: { kind: 'cut', forward: kind === 'cut-after' } });
        const initsBefore = inits.hits;
        const result = await relay.relayOnce(0).then(
          () => 'committed',
          (err: unknown) => err,
        );
        assert.equal(rule.hits, 1, `${kind}: the fault was injected`);
        // A stalled connection is reset once the client has given up on it.
        if (kind.startsWith('stall')) k.proxy.cut(rule.connections[0] as number);
        rule.release();
        if (kind.startsWith('stall')) {
          // Nothing came back for EndTxn: the outcome is unknown, and said so with the type that means it.
          assert.ok(result instanceof UnknownCommitResultError, `${kind}: got ${String(result)}`);
          assert.equal(result.backend, 'kafka');
        } else if (kind === 'delay-short') {
          // Slow but within the request timeout: nothing is indefinite.
          assert.equal(result, 'committed', `${kind}: got ${String(result)}`);
        } else {
          // A broken connection is retried by kafkajs on a new one (EndTxn is idempotent) or reported as unknown.
          assert.ok(result === 'committed' || result instanceof UnknownCommitResultError, `${kind}: got ${String(result)}`);
        }
        const unknown = result instanceof TxkitError;
        // The next transaction must start on a new producer after an unknown outcome: InitProducerId again.
        await relay.relayOnce(0);
        const rebuilt = inits.hits > initsBefore;
        if (unknown) assert.ok(rebuilt, `${kind}: the producer was rebuilt (InitProducerId) after the indefinite result`);
        outcomes.push({ kind, outcome: unknown ? (result as Error).name : 'committed', rebuilt });
      }
      await relay.drain();
    } finally {
      await context.close();
    }
    const reader = await TopicReader.open(kafka, topic);
    readers.push(reader);
    await reader.caughtUp();
    const t = tally(
      Array.from({ length: N }, (_, i) => `v${i}`),
      reader.records.map((r) => r.value ?? ''),
    );
    assert.deepEqual(t, { duplicates: 0, lost: 0, unexpected: 0 });
    assert.deepEqual(
      reader.records.map((r) => r.value),
      Array.from({ length: N }, (_, i) => `v${i}`),
      'in outbox order',
    );
    const unknownOutcomes = outcomes.filter((o) => o.outcome === 'UnknownCommitResultError').length;
    assert.ok(unknownOutcomes >= 4, `the stalls (at least) ended as unknown outcomes: ${outcomes.map((o) => o.outcome).join(',')}`);
    reportScenario({
      scenario: producerClient === 'kafkajs' ? 'kafka-endtxn-stall-cut' : 'kafka-endtxn-stall-cut-platformatic',
      messages: N,
      faults: outcomes.length,
      duplicates: t.duplicates,
      lost: t.lost,
      unknownOutcomes,
      producerRebuilds: outcomes.filter((o) => o.rebuilt).length,
      endTxnRequests: endTxnRequests.hits,
      outcomes: outcomes.map((o) => `${o.kind}:${o.outcome}`),
    });
  }, 120_000);

  /**
   * A copier (one transactional.id, kafkajs consumer) over a fresh input, with the test's hooks: `kill` runs once
   * the copier has committed a third of the input and must leave the broker running again (`append` adds records
   * to one input partition, which the copy must hold too); then copiers are replaced
   * (as a supervisor would, at most 5 times) until the group's committed offsets reach the end of the input. The
   * verdict is the official Java consumer's read of the output; the kafkajs reader's view is reported beside it.
   */
  interface FaultHooks {
    /** The copier running now. */
    copier(): Child;
    readonly total: number;
    /** Appends `count` records to input partition `partition` in one produce request. */
    append(partition: number, count: number): Promise<void>;
    /** Waits until every commit's markers are in the output (its last stable offsets reach its log ends). */
    outputSettled(): Promise<void>;
  }

  async function copyThroughFault(
    scenario: string,
    kill: (hooks: FaultHooks) => Promise<Record<string, unknown>>,
    { perPartition = false, java: javaCopier = false, platformatic = false }: { perPartition?: boolean; java?: boolean; platformatic?: boolean } = {},
  ): Promise<void> {
    const TOTAL = 3_000;
    const PARTITIONS = 3;
    const input = uniqueName(`${scenario}-in`);
    const output = uniqueName(`${scenario}-out`);
    await createTopics(admin, [input, output], PARTITIONS);
    const expected = await fillCopierInput(kafka, input, TOTAL, PARTITIONS);
    const env = {
      COPIER_BROKERS: k.brokers,
      COPIER_INPUT: input,
      COPIER_OUTPUT: output,
      COPIER_GROUP: uniqueName(`${scenario}-group`),
      ...(perPartition ? { COPIER_TRANSACTIONAL_ID_PREFIX: uniqueName(`${scenario}-copier`) } : { COPIER_TRANSACTIONAL_ID: uniqueName(`${scenario}-copier`) }),
      // Consumer and producer on @platformatic/kafka: offsets committed with the group generation, read with require_stable.
      ...(platformatic ? { COPIER_CONSUMER: 'platformatic', COPIER_CLIENT: 'platformatic' } : {}),
    };
    const workers: Child[] = [];
    const start = async (): Promise<Child> => {
      const c = javaCopier ? await spawnJavaCopier(env) : spawnWorker(COPIER, env);
      children.push(c);
      workers.push(c);
      return c;
    };
    let current = await start();
    await waitUntil('the copier to commit a third of the input', () => current.committed >= TOTAL / 3 || !alive(current), 120_000);
    assert.ok(alive(current), 'the copier runs when the broker is killed');
    const committedAtKill = current.committed;
    const figures = await kill({
      copier: () => current,
      total: TOTAL,
      append: async (partition, count) => {
        const values = Array.from({ length: count }, (_, i) => `${partition}:appended-${i}`);
        const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
        await producer.connect();
        try {
          await producer.send({ topic: input, acks: -1, messages: values.map((value) => ({ key: value, value, partition })) });
        } finally {
          await producer.disconnect();
        }
        expected.push(...values);
      },
      outputSettled: () =>
        waitUntil(
          'the markers of the output\'s last commit to be written',
          async () => {
            const ends = await highWatermarks(k.brokers, output, Array.from({ length: PARTITIONS }, (_, p) => p));
            return (await admin.fetchTopicOffsets(output)).every((p) => BigInt(p.offset) === ends.get(p.partition));
          },
          30_000,
        ),
    });
    const ends = await admin.fetchTopicOffsets(input);
    const copied = async (): Promise<boolean> => {
      const [offsets] = await admin.fetchOffsets({ groupId: env.COPIER_GROUP, topics: [input] });
      return ends.every((e) => offsets?.partitions.find((p) => p.partition === e.partition)?.offset === e.high);
    };
    for (let restarts = 0; !(await copied()); restarts++) {
      assert.ok(restarts < 5, 'at most 5 copier restarts');
      await waitUntil('the whole input to be copied (or the copier to stop)', async () => !alive(current) || (await copied()), 120_000);
      if (!(await copied())) current = await start();
    }
    current.proc.kill('SIGTERM');
    await current.exited;
    const reader = await TopicReader.open(kafka, output);
    readers.push(reader);
    await reader.caughtUp();
    const java = await readCommittedWithJava(k.brokers, output);
    const t = tally(expected, java.map((r) => r.value));
    const seenByKafkajs = tally(expected, reader.records.map((r) => r.value ?? ''));
    assert.deepEqual(t, { duplicates: 0, lost: 0, unexpected: 0 }, `java ${JSON.stringify(t)}; kafkajs reader ${JSON.stringify(seenByKafkajs)}; copier runs ${workers.length}`);
    for (let p = 0; p < PARTITIONS; p++) {
      assert.deepEqual(
        java.filter((r) => r.partition === p).map((r) => r.value),
        expected.filter((v) => v.startsWith(`${p}:`)),
        `partition ${p} in input order`,
      );
    }
    reportScenario({
      scenario,
      messages: TOTAL,
      faults: 1,
      duplicates: t.duplicates,
      lost: t.lost,
      committedAtKill,
      copierRuns: workers.length,
      kafkajsReaderDuplicates: seenByKafkajs.duplicates,
      ...figures,
    });
  }

  // On Kafka 4.x (single combined node) a transaction the broker was killed in between answering EndTxn and writing its
  // markers does not complete after the restart: the official Java copier stalls on it exactly as txkit's does
  // (docs/reliability.md). The held-markers scenarios make that happen every time, and a kill at a random moment now and
  // then (the commit's outcome then unknown), so these run on 3.x only.
  const kafka4 = Number(DEFAULT_KAFKA_VERSION.split('.')[0]) >= 4;
  if (kafka4) console.warn(`[txkit tests] skipping the broker-kill copier scenarios on Kafka ${DEFAULT_KAFKA_VERSION}: a kill between EndTxn and its markers leaves that transaction hanging after the restart, for the Java client too (docs/reliability.md)`);

  it.skipIf(kafka4).each([
    ['kafkajs', 'kafka-broker-kill-restart', false],
    ['@platformatic/kafka', 'kafka-broker-kill-restart-platformatic', true],
  ])('the broker SIGKILLed and restarted mid-copy: the output is an exact copy (copier on %s)', async (_client, scenario, platformatic) => {
    await copyThroughFault(scenario, async () => {
      await k.broker.kill();
      k.proxy.cutAll();
      await k.broker.restart();
      return {};
    }, { platformatic });
  }, 240_000);

  it.skipIf(kafka4).each([
    ['one producer (context)', 'kafka-kill-before-markers', false, false, false],
    ['a producer per input partition (transactionalIdPrefix)', 'kafka-kill-before-markers-per-partition', true, false, false],
    ['witness: the official Java clients\' copier', 'kafka-kill-before-markers-java', false, true, false],
    ['consumer and producer on @platformatic/kafka', 'kafka-kill-before-markers-platformatic', false, false, true],
  ])('the broker SIGKILLed after answering EndTxn and before writing the markers, %s: the restarted consumer does not copy that batch again', async (_mode, scenario, perPartition, java, platformatic) => {
    const internal = k.internalProxy as FaultProxy;
    await copyThroughFault(scenario, async ({ copier, total, append, outputSettled }) => {
      await waitUntil('the copier to copy the whole input', () => copier().committed >= total || !alive(copier()), 120_000);
      assert.ok(alive(copier()), 'the copier runs');
      // A commit is answered before its markers are written: only the next commit's must be held.
      await outputSettled();
      // From here on, the markers that complete a commit are held: EndTxn is answered once PrepareCommit is in the
      // transaction log, so the copier sees its batch committed while the offsets it committed stay pending. One more
      // batch, on one partition, makes that one commit; then the copier is idle, fetching (a transaction after it
      // would wait for the held markers).
      const markers = internal.addRule({ direction: 'to-server', match: kafkaRequest(KafkaApi.WriteTxnMarkers), action: { kind: 'stall' }, times: 1_000_000 });
      try {
        const endTxn = kafkaExchange(KafkaApi.EndTxn);
        k.proxy.addRule({ direction: 'to-server', match: endTxn.request, action: { kind: 'observe' }, times: 1_000_000 });
        const answered = k.proxy.addRule({ direction: 'to-client', match: endTxn.response, action: { kind: 'observe' }, times: 1_000_000 });
        await append(0, 10);
        await waitUntil('the appended batch to be committed, its markers held', () => (answered.hits >= 1 && markers.hits >= 1 && copier().committed >= total + 10) || !alive(copier()), 60_000);
        assert.ok(alive(copier()), 'the copier runs');
        const offsetFetch = kafkaExchange(KafkaApi.OffsetFetch);
        k.proxy.addRule({ direction: 'to-server', match: offsetFetch.request, action: { kind: 'observe' }, times: 1_000_000 });
        const offsetsRead = k.proxy.addRule({ direction: 'to-client', match: offsetFetch.response, action: { kind: 'observe' }, times: 1_000_000 });
        const crashes = (): number => copier().messages.filter((m) => m.type === 'crash').length;
        const crashesBefore = crashes();
        await k.broker.kill();
        k.proxy.cutAll();
        internal.cutAll();
        // Down until kafkajs gives up and restarts the consumer: the new one joins the group and reads its offsets again,
        // while the batch the old one was running goes on retrying in the background. (The Java consumer rejoins by itself.)
        if (!java && !platformatic) await waitUntil('the copier\'s consumer to crash while the broker is down', () => crashes() > crashesBefore || !alive(copier()), 120_000);
        await k.broker.restart();
        // The restarted coordinator sends the markers again; they stay held until the copier's consumer has rejoined
        // and read the group's offsets (the batch's offset is still pending then: a read without require_stable gets
        // the offset before it, one with it is answered UNSTABLE_OFFSET_COMMIT), or until that copier stopped.
        await waitUntil('the copier to read the group offsets after the restart', () => offsetsRead.hits >= 1 || !alive(copier()), 120_000);
        const copierAliveAtRead = alive(copier());
        markers.release();
        // The case this test is for: the same copier, whose consumer read the offsets while the batch's were pending.
        assert.ok(copierAliveAtRead, `the copier ran through the restart (it stopped with ${JSON.stringify(copier().messages.at(-1))})`);
        return { copierAliveAtRead, markersHeld: markers.hits };
      } finally {
        // Never left holding: a later test's commits would wait on it.
        markers.release();
      }
    }, { perPartition, java, platformatic });
  }, 240_000);

  it('offsets a transaction committed read as unstable while its markers are held, and as committed once they are written (require_stable); kafkajs\' own read shows the offset before', async () => {
    const topic = uniqueName('stable-offsets');
    const groupId = uniqueName('stable-group');
    await createTopics(admin, [topic], 2);
    const client = makeKafka(k.brokers, 'stable-offsets');
    const context = kafkaTransactions(client, { transactionalId: uniqueName('stable-tx') });
    const stable = StableOffsets.of(client) as StableOffsets;
    assert.ok(stable !== undefined, 'a kafkajs client carries what the reader needs');
    const internal = k.internalProxy as FaultProxy;
    const commit = (offset: number): Promise<void> =>
      context.withTransaction(async (tx) => {
        await tx.handle.send({ topic, messages: [{ value: `v${offset}`, partition: 0 }] });
        await tx.handle.sendOffsets({ consumerGroupId: groupId, topics: [{ topic, partitions: [{ partition: 0, offset: String(offset) }, { partition: 1, offset: String(offset * 2) }] }] });
      });
    let markers: FaultRule | undefined;
    try {
      assert.deepEqual([...((await stable.read(groupId, [topic])) as { offsets: Map<string, bigint> }).offsets], [], 'a group without offsets reads as none');
      await commit(5);
      // Read right after the commit was answered: the markers may still be on their way, and the read waits for them.
      assert.deepEqual([...((await stable.read(groupId, [topic])) as { offsets: Map<string, bigint> }).offsets].sort(), [[`0:${topic}`, 5n], [`1:${topic}`, 10n]]);
      markers = internal.addRule({ direction: 'to-server', match: kafkaRequest(KafkaApi.WriteTxnMarkers), action: { kind: 'stall' }, times: 1_000_000 });
      await commit(7);
      await markers.hit;
      // Held: the coordinator answers UNSTABLE_OFFSET_COMMIT, so the read ends with that, typed, after its timeout.
      await assert.rejects(stable.read(groupId, [topic], { timeoutMs: 1_000 }), (err: unknown) => isUnstableOffsets(err) && err instanceof TxkitError && err.retriable);
      // What kafkajs reads meanwhile (OffsetFetch v4): the offset before the transaction, as if it had not committed.
      const [seen] = await admin.fetchOffsets({ groupId, topics: [topic] });
      assert.equal(seen?.partitions.find((p) => p.partition === 0)?.offset, '5');
      const waiting = stable.read(groupId, [topic]);
      markers.release();
      assert.deepEqual([...((await waiting) as { offsets: Map<string, bigint> }).offsets].sort(), [[`0:${topic}`, 7n], [`1:${topic}`, 14n]]);
    } finally {
      markers?.release();
      await stable.disconnect();
      await context.close();
    }
  }, 60_000);

  it('a relay replaced while its last commit\'s markers are held: the new one reads the position only after they are written, and sends nothing twice', async () => {
    const N = 60;
    const topic = uniqueName('relay-held-markers');
    await createTopics(admin, [topic], 1);
    const memory = new MemoryStore({ partitions: 1 });
    const store = new MemoryOutboxStore(memory, { partitions: 1 });
    await memoryTransactions({ store: memory }).withTransaction((tx) =>
      new Outbox(store).publish(tx, Array.from({ length: N }, (_, i) => ({ topic, key: `k${i}`, value: `v${i}` }))),
    );
    const transactionalId = uniqueName('relay-held-tx');
    const positionsTopic = uniqueName('relay-held-positions');
    const relayWith = (client: Kafka) => {
      const context = kafkaTransactions(client, { transactionalId });
      const relay = new OutboxRelay({ store, sink: kafkaSink({ context, kafka: client, positionsTopic, positionsPartitions: 1 }), relayId: topic, batchSize: 20 });
      return { context, relay };
    };
    const internal = k.internalProxy as FaultProxy;
    const first = relayWith(makeKafka(k.brokers, 'relay-held-1'));
    let markers: FaultRule | undefined;
    try {
      await first.relay.relayOnce(0);
      // Its markers are written after EndTxn was answered: wait for them (the last stable offset reaches the log end), so only the next commit's are held.
      await waitUntil('the first batch\'s markers to be written', async () => (await admin.fetchTopicOffsets(topic))[0]?.offset === '21', 30_000);
      // The second batch commits with its markers held: EndTxn answered, its records and its position pending.
      markers = internal.addRule({ direction: 'to-server', match: kafkaRequest(KafkaApi.WriteTxnMarkers), action: { kind: 'stall' }, times: 1_000_000 });
      assert.equal(await first.relay.relayOnce(0), 20);
      await markers.hit;
    } finally {
      await first.context.close();
    }
    // A new relay (a restarted process) with the same transactional.id: its InitProducerId waits for the held markers,
    // and it reads its position only after that, so it starts after the second batch.
    const inits = k.proxy.addRule({ direction: 'to-server', match: kafkaRequest(KafkaApi.InitProducerId), action: { kind: 'observe' }, times: 1_000_000 });
    const second = relayWith(makeKafka(k.brokers, 'relay-held-2'));
    try {
      const draining = second.relay.drain();
      await waitUntil('the new relay to ask for its producer id', () => inits.hits >= 1, 60_000);
      assert.equal((await admin.fetchTopicOffsets(topic))[0]?.offset, '21', 'the second batch is still pending: its markers are held');
      markers.release();
      assert.equal(await draining, N - 40, 'the new relay sends only what the first did not');
    } finally {
      markers.release();
      await second.context.close();
    }
    const reader = await TopicReader.open(kafka, topic);
    readers.push(reader);
    await reader.caughtUp();
    assert.deepEqual(
      reader.records.map((r) => r.value),
      Array.from({ length: N }, (_, i) => `v${i}`),
      'every record once, in outbox order',
    );
  }, 120_000);

  it('a zombie copier frozen past its session timeout is fenced by its successor: its commit is refused, no duplicates', async () => {
    const TOTAL = 3_000;
    const PARTITIONS = 3;
    const input = uniqueName('zombie-in');
    const output = uniqueName('zombie-out');
    await createTopics(admin, [input, output], PARTITIONS);
    const expected = await fillCopierInput(kafka, input, TOTAL, PARTITIONS);
    const env = { COPIER_BROKERS: k.brokers, COPIER_INPUT: input, COPIER_OUTPUT: output, COPIER_GROUP: uniqueName('zombie-group'), COPIER_TRANSACTIONAL_ID: uniqueName('zombie-copier') };
    const zombie = spawnWorker(ZOMBIE, env);
    children.push(zombie);
    await waitUntil('the first copier to commit a fifth of the input', () => zombie.committed >= TOTAL / 5 || !alive(zombie), 120_000);
    assert.ok(alive(zombie), 'the first copier runs');
    zombie.proc.send({ type: 'freeze' });
    await waitUntil('the first copier to be stopped by SIGSTOP', () => processState(zombie.proc.pid as number) === 'T', 10_000);
    const committedBeforeFreeze = zombie.committed;

    // The successor: same transactional.id and group. Its InitProducerId bumps the epoch and aborts the zombie's open
    // transaction; it gets the partitions once the zombie's session (6 s, no heartbeats while frozen) times out.
    const successor = spawnWorker(COPIER, env);
    children.push(successor);
    const reader = await TopicReader.open(kafka, output);
    readers.push(reader);
    await waitUntil('the successor to copy the whole input', () => reader.records.length >= TOTAL || !alive(successor), 120_000);
    assert.ok(alive(successor), 'the successor runs');

    zombie.proc.kill('SIGCONT');
    const { code } = await zombie.exited;
    const stopped = zombie.messages.find((m) => m.type === 'stopped');
    assert.equal(stopped?.fenced, true, `the zombie stopped because it was fenced: ${JSON.stringify(stopped)}`);
    assert.equal(code, 3);
    const committedAfterResume = zombie.messages.filter((m) => m.type === 'committed' && m.resumed === true).length;
    assert.equal(committedAfterResume, 0, 'no zombie transaction committed after it resumed');
    const rejectedWrites = 1 + zombie.messages.filter((m) => m.type === 'attempt').length;

    successor.proc.kill('SIGTERM');
    await successor.exited;
    await reader.caughtUp();
    const t = tally(expected, reader.records.map((r) => r.value ?? ''));
    assert.deepEqual(t, { duplicates: 0, lost: 0, unexpected: 0 });
    reportScenario({
      scenario: 'kafka-zombie-epoch-fenced',
      messages: TOTAL,
      faults: 1,
      duplicates: t.duplicates,
      lost: t.lost,
      committedBeforeFreeze,
      rejectedWrites,
      zombieCommitsAfterResume: committedAfterResume,
    });
  }, 180_000);

  it('per-partition producers: a copier frozen past its session timeout while another instance of the group takes its partitions commits nothing for them', async () => {
    const TOTAL = 3_000;
    const PARTITIONS = 3;
    const input = uniqueName('pp-zombie-in');
    const output = uniqueName('pp-zombie-out');
    await createTopics(admin, [input, output], PARTITIONS);
    const expected = await fillCopierInput(kafka, input, TOTAL, PARTITIONS);
    // Two instances of one group, as a deployment runs them: one prefix for the group, a producer per input partition.
    const env = { COPIER_BROKERS: k.brokers, COPIER_INPUT: input, COPIER_OUTPUT: output, COPIER_GROUP: uniqueName('pp-zombie-group'), COPIER_TRANSACTIONAL_ID_PREFIX: uniqueName('pp-copier') };
    const zombie = spawnWorker(ZOMBIE, env);
    children.push(zombie);
    await waitUntil('the first instance to commit a fifth of the input', () => zombie.committed >= TOTAL / 5 || !alive(zombie), 120_000);
    assert.ok(alive(zombie), 'the first instance runs');
    zombie.proc.send({ type: 'freeze' });
    await waitUntil('the first instance to be stopped by SIGSTOP', () => processState(zombie.proc.pid as number) === 'T', 10_000);
    const frozenAt = zombie.committed;

    // A second instance joins; once the frozen one's session times out it is assigned every partition, fences
    // each partition's producer, reads the committed offsets again and copies the rest.
    const other = spawnWorker(COPIER, env);
    children.push(other);
    const reader = await TopicReader.open(kafka, output);
    readers.push(reader);
    await waitUntil('the other instance to copy the whole input', () => reader.records.length >= TOTAL || !alive(other), 120_000);
    assert.ok(alive(other), 'the other instance runs');

    // The frozen instance resumes inside its open transaction and tries to commit it.
    zombie.proc.kill('SIGCONT');
    await waitUntil('the resumed instance to have its open transaction refused', () => zombie.messages.some((m) => m.type === 'fenced-batches') || !alive(zombie), 60_000);
    assert.ok(alive(zombie), 'a fence costs the resumed instance the partition, not its life: it rejoins the group');
    assert.equal(zombie.messages.filter((m) => m.type === 'frozen-committed').length, 0, 'the transaction open across the freeze never committed');
    other.proc.kill('SIGTERM');
    zombie.proc.kill('SIGKILL');
    await Promise.all([other.exited, zombie.exited]);
    await reader.caughtUp();
    const t = tally(expected, reader.records.map((r) => r.value ?? ''));
    assert.deepEqual(t, { duplicates: 0, lost: 0, unexpected: 0 });
    reportScenario({
      scenario: 'kafka-zombie-partition-fenced',
      messages: TOTAL,
      faults: 1,
      duplicates: t.duplicates,
      lost: t.lost,
      committedBeforeFreeze: frozenAt,
    });
  }, 180_000);

  it('a kafkaSource whose consumer crashes joining its group waits for kafkajs to restart it: every record once, in order', async () => {
    const N = 300;
    const topic = uniqueName('source-crash');
    await createTopics(admin, [topic], 1);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (let i = 0; i < N; i += 100) await producer.send({ topic, messages: Array.from({ length: 100 }, (_, j) => ({ key: 'k', value: `m-${i + j}` })) });
    await producer.disconnect();
    // No kafkajs retries: a failed join crashes the consumer, and kafkajs restarts it 100 ms later. Its
    // run() has resolved by then all the same, and until the restart kafkajs refuses seek().
    const events = { crashes: 0, joins: 0 };
    const watched: KafkaSourceClientLike = {
      admin: () => kafka.admin(),
      consumer: (config) => {
        const consumer = kafka.consumer({ ...config, retry: { retries: 0, initialRetryTime: 100 } });
        consumer.on(consumer.events.CRASH, () => void (events.crashes += 1));
        consumer.on(consumer.events.GROUP_JOIN, () => void (events.joins += 1));
        return consumer as unknown as ReturnType<KafkaSourceClientLike['consumer']>;
      },
    };
    const joinCut = k.proxy.addRule({ direction: 'to-server', match: kafkaRequest(KafkaApi.JoinGroup), action: { kind: 'cut' }, times: 2 });
    const source = kafkaSource({ kafka: watched, topic, catchUpTimeoutMs: 30_000 });
    const values: string[] = [];
    try {
      // Bounded: each fetch returns records or the source is caught up (it then returns empty).
      for (let offset = 0, round = 0; offset < N && round < 1_000; round++) {
        const batch = await source.fetch(0, offset, 40);
        if (batch.length === 0) break;
        values.push(...batch.map((m) => String(m.value)));
        offset = (batch.at(-1) as { offset: number }).offset + 1;
      }
    } finally {
      joinCut.retire();
      await source.close();
    }
    assert.ok(events.crashes >= 1, 'the consumer crashed joining its group');
    assert.ok(events.joins >= 1, 'and joined after kafkajs restarted it');
    assert.deepEqual(values, Array.from({ length: N }, (_, i) => `m-${i}`));
    console.log(`[kafka source crash] ${N} records read in order; consumer crashes ${events.crashes}, group joins ${events.joins}`);
  }, 120_000);
});
