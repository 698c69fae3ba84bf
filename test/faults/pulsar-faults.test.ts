/**
 * Pulsar faults on a private standalone broker that clients reach only
 * through a FaultProxy (lookups answer with the proxy's port): END_TXN
 * stalled or cut in either direction under a consume-transform-produce loop
 * (copies sent and originals acknowledged in one transaction), and the
 * broker SIGKILLed and restarted under a copier process. Exactly-once is
 * judged by a reader of the output, which sees committed messages only.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startPulsar } from '../../scripts/services/pulsar.mjs';
import type { PulsarHandle } from '../../scripts/services/pulsar.mjs';
import { PulsarClient, PulsarServerError, PulsarTimeoutError, pulsarTransactions } from '../../src/adapters/pulsar/index.js';
import type { PulsarMessage } from '../../src/adapters/pulsar/index.js';
import { TransactionTimeoutError, UnknownCommitResultError } from '../../src/core/errors.js';
import { TopicReader, uniqueName, uniqueTopic } from '../pulsar/pulsar-support.js';
import { service } from '../support/services.js';
import { FaultProxy, PulsarCommand, pulsarCommand } from './support/fault-proxy.js';
import type { FaultRule } from './support/fault-proxy.js';
import { reportScenario, tally, waitUntil } from './support/fault-report.js';
import { freePort } from './support/private-brokers.js';

// The shared broker being reachable means Java and the Pulsar jars are here to start a private one.
const available = service('pulsar') !== undefined;
const COPIER = fileURLToPath(new URL('../pulsar/copier-worker.ts', import.meta.url));

/** An unknown outcome, reported directly or as the deadline error that ended the commit retries. */
function isUnknownOutcome(err: unknown): boolean {
  return err instanceof UnknownCommitResultError || (err instanceof TransactionTimeoutError && err.cause instanceof UnknownCommitResultError);
}

/**
 * The output as stored: a reader's consumer may get a message again when the broker lost its
 * acknowledgement (a crash), which is a redelivery to the reader, not a second copy in the
 * topic. Each stored message (by message id) counts once; its values are what the tally judges.
 */
function storedValues(reader: TopicReader): { values: string[]; redeliveredToReader: number } {
  const byId = new Map<string, string>();
  for (const r of reader.records) byId.set(`${r.messageId.topic}/${r.messageId.toString()}`, r.value?.toString() ?? '<null>');
  return { values: [...byId.values()], redeliveredToReader: reader.records.length - byId.size };
}

async function produce(client: PulsarClient, topic: string, values: readonly string[]): Promise<void> {
  const producer = await client.createProducer({ topic });
  for (let i = 0; i < values.length; i += 100) await producer.sendAll(values.slice(i, i + 100).map((value) => ({ key: value, value })));
  await producer.close();
}


/**
 * The broker's view of a subscription, for a failure message: its backlog, unacknowledged
 * messages and consumers' permits, the transactions still holding acknowledgements on it,
 * and the coordinator's open transactions. Best effort: a part that cannot be read says why.
 */
async function brokerView(webServiceUrl: string, topic: string, subscription: string): Promise<string> {
  const name = topic.replace('persistent://', '');
  const get = async (url: string): Promise<unknown> => {
    try {
      const response = await fetch(`${webServiceUrl}${url}`, { signal: AbortSignal.timeout(5_000) });
      return response.ok ? await response.json() : `HTTP ${response.status}`;
    } catch (err) {
      return String(err);
    }
  };
  const stats = (await get(`/admin/v2/persistent/${name}/stats`)) as { subscriptions?: Record<string, unknown> } | string;
  const view = {
    subscription: typeof stats === 'string' ? stats : stats.subscriptions?.[subscription],
    pendingAck: await get(`/admin/v3/transactions/pendingAckStats/${name}/${encodeURIComponent(subscription)}`),
    coordinators: await get('/admin/v3/transactions/coordinatorStats'),
    slowTransactions: await get('/admin/v3/transactions/slowTransactions/1000'),
  };
  return JSON.stringify(view).slice(0, 6_000);
}

/** The broker refused an acknowledgement because a committed transaction had already made it (not one still pending). */
function ackedByEarlierCommit(result: unknown): boolean {
  return result instanceof PulsarServerError && result.serverError === 'TransactionConflict' && /already acked/i.test(result.message);
}

describe.skipIf(!available)('pulsar faults (private broker behind a fault proxy)', () => {
  let stateDir: string;
  let proxy: FaultProxy;
  let broker: PulsarHandle | undefined;
  let serviceUrl: string;
  const closers: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    stateDir = mkdtempSync(path.join(tmpdir(), 'txkit-fault-state-'));
    const [brokerPort, proxyPort] = [await freePort(), await freePort()];
    // The proxy listens first: the broker's own client connects to the advertised address while it starts.
    proxy = new FaultProxy({ target: { host: '127.0.0.1', port: brokerPort }, framing: 'length-prefixed', port: proxyPort });
    await proxy.start();
    broker = await startPulsar({ stateDir, port: brokerPort, advertisedPort: proxyPort, log: (line) => console.log(`[fault-pulsar] ${line}`) });
    serviceUrl = broker.serviceUrl;
  });

  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await proxy?.close();
    await broker?.stop();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it('END_TXN stalled or cut in either direction: typed outcome, and the output holds each input exactly once', async () => {
    const N = 300;
    const input = uniqueTopic('endtxn-in');
    const output = uniqueTopic('endtxn-out');
    const values = Array.from({ length: N }, (_, i) => `m-${i}`);
    const client = new PulsarClient({ serviceUrl, operationTimeoutMs: 2_000, connectionTimeoutMs: 2_000 });
    closers.push(() => client.close());
    await produce(client, input, values);
    // An open transaction whose END_TXN never arrived is aborted by the coordinator after this, and its input comes back.
    const context = pulsarTransactions({ client, transactionTimeoutMs: 4_000 });
    const consumer = await client.subscribe({ topic: input, subscription: uniqueName('endtxn'), subscriptionType: 'Shared', initialPosition: 'earliest', receiverQueueSize: 100 });
    const reader = await TopicReader.open(serviceUrl, output);
    closers.push(() => reader.close());

    const faultAt = new Map<number, 'stall-request' | 'stall-response' | 'cut-before' | 'cut-after'>([
      [2, 'stall-request'],
      [4, 'stall-response'],
      [6, 'cut-before'],
      [8, 'cut-after'],
      [10, 'stall-request'],
      [12, 'stall-response'],
    ]);
    const outcomes: string[] = [];
    let conflicts = 0;
    const deadline = Date.now() + 120_000;
    // Bounded by the deadline and a round count; each round copies one batch in one transaction.
    for (let round = 0; new Set(storedValues(reader).values).size < N && round < 1_000; round++) {
      assert.ok(Date.now() < deadline, `the copy did not finish within 120 s (${reader.records.length} read of ${N})`);
      const batch: PulsarMessage[] = [];
      for (let i = 0; i < 20; i++) {
        try {
          batch.push(await consumer.receive({ timeoutMs: i === 0 ? 1_000 : 20 }));
        } catch (err) {
          if (err instanceof PulsarTimeoutError) break;
          throw err;
        }
      }
      if (batch.length === 0) continue;
      const kind = faultAt.get(round);
      let rule: FaultRule | undefined;
      if (kind === 'stall-request') rule = proxy.addRule({ direction: 'to-server', match: pulsarCommand(PulsarCommand.END_TXN), action: { kind: 'stall' } });
      if (kind === 'stall-response') rule = proxy.addRule({ direction: 'to-client', match: pulsarCommand(PulsarCommand.END_TXN_RESPONSE), action: { kind: 'stall' } });
      if (kind === 'cut-before' || kind === 'cut-after') {
        rule = proxy.addRule({ direction: 'to-server', match: pulsarCommand(PulsarCommand.END_TXN), action: { kind: 'cut', forward: kind === 'cut-after' } });
      }
      const result = await context
        .withTransaction(
          async (tx) => {
            await tx.handle.send({ topic: output, messages: batch.map((m) => ({ key: m.key, value: m.value })) });
            await tx.handle.acknowledge(consumer, batch);
          },
          { retry: { deadlineMs: 6_000, initialDelayMs: 10, maxDelayMs: 200 } },
        )
        .then(
          () => 'committed',
          (err: unknown) => err,
        );
      if (rule !== undefined) {
        assert.ok(rule.hits >= 1, `${kind}: the fault was injected`);
        // A stalled connection is reset once the client has given up on it; the held frames are dropped.
        for (const c of rule.connections) proxy.cut(c);
        rule.release();
        if (kind?.startsWith('stall')) {
          assert.ok(isUnknownOutcome(result), `${kind}: an unanswered END_TXN is reported as an unknown outcome, got ${String(result)}`);
        } else if (kind === 'cut-after' && result instanceof PulsarServerError && result.serverError === 'TransactionConflict') {
          // The commit reached the broker; the rerun after the cut found its acknowledgements already
          // committed and was refused: the outcome is told by the broker, and nothing doubled.
          conflicts += 1;
        } else if (ackedByEarlierCommit(result)) {
          // In any round, the batch may hold a message an earlier round's committed transaction
          // acknowledged and a reconnect redelivered: the broker refuses that acknowledgement, this
          // copy is aborted, nothing doubles. (An acknowledgement still pending in an earlier attempt
          // of this unit, the race this round guards against, says "pending ack" and fails here.)
          conflicts += 1;
        } else {
          assert.ok(result === 'committed' || isUnknownOutcome(result), `${kind}: got ${String(result)}`);
        }
        outcomes.push(`${kind}:${result === 'committed' ? 'committed' : (result as Error).name}`);
        continue;
      }
      if (result instanceof PulsarServerError && result.serverError === 'TransactionConflict') {
        // A message a committed transaction already acknowledged came back: this copy was aborted, nothing doubled.
        conflicts += 1;
        continue;
      }
      // After an unknown outcome an unfaulted round may still meet the aftermath (a reconnect); it must be typed.
      if (result !== 'committed') assert.ok(result instanceof Error && 'backend' in result, `round ${round}: untyped failure ${String(result)}`);
    }
    await reader.caughtUp();
    const t = tally(values, storedValues(reader).values);
    assert.deepEqual(t, { duplicates: 0, lost: 0, unexpected: 0 });
    assert.equal(outcomes.length, faultAt.size, `every planned fault was injected: ${outcomes.join(', ')}`);
    reportScenario({
      scenario: 'pulsar-endtxn-stall-cut',
      messages: N,
      faults: outcomes.length,
      duplicates: t.duplicates,
      lost: t.lost,
      unknownOutcomes: outcomes.filter((o) => !o.endsWith(':committed')).length,
      conflicts,
      outcomes,
    });
  }, 180_000);

  it('the broker SIGKILLed and restarted mid-copy: the output is an exact copy', async () => {
    const live = broker as PulsarHandle;
    const TOTAL = 2_000;
    const input = uniqueTopic('kill-in');
    const output = uniqueTopic('kill-out');
    const values = Array.from({ length: TOTAL }, (_, i) => `k-${i}`);
    const client = new PulsarClient({ serviceUrl, operationTimeoutMs: 10_000, connectionTimeoutMs: 5_000 });
    closers.push(() => client.close());
    await produce(client, input, values);
    const reader = await TopicReader.open(serviceUrl, output);
    closers.push(() => reader.close());

    const subscription = uniqueName('kill-copier');
    const workers: { proc: ChildProcess; committed: number; exited: Promise<unknown>; events: string[] }[] = [];
    const start = (): (typeof workers)[number] => {
      const proc = spawn(process.execPath, ['--import', 'tsx', COPIER], {
        stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
        env: { ...process.env, COPIER_SERVICE_URL: serviceUrl, COPIER_INPUT: input, COPIER_OUTPUT: output, COPIER_SUBSCRIPTION: subscription },
      });
      const w = { proc, committed: 0, exited: new Promise((resolve) => proc.once('exit', resolve)), events: [] as string[] };
      // What the copier said last (a copier that loses its broker says so on stderr, as expected here), for a failure message.
      const note = (line: string): void => {
        w.events.push(`${new Date().toISOString().slice(11, 23)} ${line.slice(0, 300)}`);
        if (w.events.length > 12) w.events.shift();
      };
      proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => chunk.split('\n').filter(Boolean).forEach((l) => note(`stderr: ${l}`)));
      proc.on('message', (m: { type?: string; count?: number; error?: string }) => {
        if (m.type === 'committed') w.committed += m.count ?? 0;
        note(`${m.type ?? '?'}${m.count === undefined ? '' : ` ${m.count}`}${m.error === undefined ? '' : `: ${m.error}`}`);
      });
      workers.push(w);
      closers.push(async () => {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
        await w.exited;
      });
      return w;
    };
    const running = (w: (typeof workers)[number]): boolean => w.proc.exitCode === null && w.proc.signalCode === null;
    let current = start();
    await waitUntil('the copier to commit a third of the input', () => current.committed >= TOTAL / 3 || !running(current), 120_000);
    assert.ok(running(current), 'the copier runs when the broker is killed');
    const committedAtKill = current.committed;
    await live.kill();
    proxy.cutAll();
    await live.restart();
    // A copier that gave up while the broker was away is replaced, as a supervisor would; bounded.
    const copied = (): number => new Set(storedValues(reader).values).size;
    for (let restarts = 0; copied() < TOTAL; restarts++) {
      assert.ok(restarts < 5, 'at most 5 copier restarts');
      try {
        await waitUntil(
          () =>
            `the whole input to be copied (or the copier to stop): ${copied()} of ${TOTAL} copied; copier ${workers.length} ` +
            `(pid ${current.proc.pid}) committed ${current.committed} and said last: ${JSON.stringify(current.events)}`,
          () => copied() >= TOTAL || !running(current),
          180_000,
        );
      } catch (err) {
        // What the broker holds for the subscription says where the rest waits (backlog, permits, pending acknowledgements).
        throw new Error(`${(err as Error).message}\nthe broker's view: ${await brokerView(live.webServiceUrl, input, subscription)}`, { cause: err });
      }
      if (copied() < TOTAL) current = start();
    }
    current.proc.kill('SIGTERM');
    await current.exited;
    await reader.caughtUp();
    const stored = storedValues(reader);
    const t = tally(values, stored.values);
    assert.deepEqual(t, { duplicates: 0, lost: 0, unexpected: 0 });
    reportScenario({
      scenario: 'pulsar-broker-kill-restart',
      messages: TOTAL,
      faults: 1,
      duplicates: t.duplicates,
      lost: t.lost,
      committedAtKill,
      copierRuns: workers.length,
      redeliveredToReader: stored.redeliveredToReader,
    });
  }, 300_000);
});
