// A child process for pulsar-copier.test.ts: copies INPUT to OUTPUT exactly once, each
// batch in one Pulsar transaction that produces the copies and acknowledges the originals,
// reporting committed batches over IPC. The test SIGKILLs it at chosen moments; on 'hold'
// it stops inside a transaction (output sent, acknowledgements made, commit not sent).
// SIGTERM stops it cleanly.
import { PulsarClient, PulsarServerError, PulsarTimeoutError, pulsarTransactions } from '../../src/adapters/pulsar/index.js';
import type { PulsarMessage } from '../../src/adapters/pulsar/index.js';

const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`copier-worker needs ${name}`);
  return v;
};
const output = env('COPIER_OUTPUT');
const BATCH = 50;

const client = new PulsarClient({ serviceUrl: env('COPIER_SERVICE_URL'), operationTimeoutMs: 20_000 });
// A killed worker's open transaction is aborted by the coordinator after this, and its
// input messages go back to the subscription.
const context = pulsarTransactions({ client, transactionTimeoutMs: 5_000 });
const consumer = await client.subscribe({
  topic: env('COPIER_INPUT'),
  subscription: env('COPIER_SUBSCRIPTION'),
  subscriptionType: 'Shared',
  initialPosition: 'earliest',
  receiverQueueSize: 500,
});

let hold = false;
let stopping = false;
process.on('message', (m: { type?: string }) => {
  if (m.type === 'hold') hold = true;
});
process.on('SIGTERM', () => {
  stopping = true;
  void context
    .close()
    .then(() => client.close())
    .then(() => process.exit(0));
});

/** Messages this process committed: a redelivery of one of them (after an aborted attempt) is skipped. */
const committed = new Set<string>();

async function nextBatch(): Promise<PulsarMessage[]> {
  const batch: PulsarMessage[] = [];
  const add = (m: PulsarMessage): void => {
    const id = `${m.messageId.topic}/${m.messageId.toString()}`;
    if (!committed.has(id) && !batch.some((b) => b.messageId.equals(m.messageId))) batch.push(m);
  };
  // Bounded: one blocking receive, then at most BATCH quick ones.
  process.send?.({ type: 'receiving' }); // says where a copier that stops making progress waits
  while (batch.length === 0) add(await consumer.receive());
  for (let i = 0; i < BATCH && batch.length < BATCH; i++) {
    try {
      add(await consumer.receive({ timeoutMs: 20 }));
    } catch (err) {
      if (err instanceof PulsarTimeoutError) break; // Nothing more right now: commit what we have.
      throw err;
    }
  }
  return batch;
}

process.send?.({ type: 'started' });
// Runs until SIGTERM or SIGKILL.
while (!stopping) {
  let batch: PulsarMessage[];
  try {
    batch = await nextBatch();
  } catch (err) {
    if (stopping) break; // SIGTERM closed the consumer under the receive.
    // The client reconnects on its own; report the failure and receive again after a short pause.
    process.send?.({ type: 'failed', error: `receive: ${String(err)}` });
    await new Promise((resolve) => setTimeout(resolve, 100));
    continue;
  }
  try {
    await context.withTransaction(async (tx) => {
      await tx.handle.send({ topic: output, messages: batch.map((m) => ({ key: m.key, value: m.value })) });
      await tx.handle.acknowledge(consumer, batch);
      if (hold) {
        process.send?.({ type: 'holding', count: batch.length });
        await new Promise<never>(() => undefined);
      }
      tx.afterCommit(() => {
        for (const m of batch) committed.add(`${m.messageId.topic}/${m.messageId.toString()}`);
        process.send?.({ type: 'committed', count: batch.length });
      });
    });
  } catch (err) {
    // A message an earlier transaction of another worker already acknowledged came back:
    // this transaction is aborted (its copies never appear) and the rest is redelivered.
    if (err instanceof PulsarServerError && err.serverError === 'TransactionConflict') {
      process.send?.({ type: 'conflict' });
      continue;
    }
    if (stopping) break;
    // A transaction that failed for good (a broker too slow to answer within the operation timeout on a
    // loaded machine, say) was aborted, or its outcome is unknown: either its copies and acknowledgements
    // both committed or neither did, and unacknowledged originals come back. Go on, as a service would;
    // the test checks the output, and reports these.
    process.send?.({ type: 'failed', error: String(err) });
  }
}
