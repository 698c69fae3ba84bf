// A pipeline worker process for the zombie scenario: consumes the generated
// source into a Postgres state table and outbox. On a 'freeze' request it
// stops itself with SIGSTOP in the middle of a transaction (state row and
// outbox message written, locks held, inbox not yet advanced), like a process
// paused by the OS or a long GC while holding its work. It reports over IPC:
// commits, every error its pipeline survives, and each partition it was
// fenced off. With WORKER_LEASE_TTL_MS it shares the partitions with the
// other workers of its consumer through leases (the scale scenario).
import knexFactory from 'knex';
import { knexTransactions } from '../../../src/adapters/sql/index.js';
import { InboxFencedError, pipeline, sqlOutboxStore } from '../../../src/outbox/index.js';
import { effectsHandler, generatedSource } from './pipeline-fixture.js';

const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`pipeline-worker needs ${name}`);
  return v;
};
const prefix = env('WORKER_PREFIX');
const partitions = Number(env('WORKER_PARTITIONS'));
const db = knexFactory({ client: 'pg', connection: env('WORKER_DB_URL'), pool: { min: 0, max: 4 }, log: { warn: () => undefined, error: () => undefined } });
const store = sqlOutboxStore(db, { tablePrefix: prefix });
const effects = effectsHandler(`${prefix}effects`, env('WORKER_NAME'));
let freeze = false;
let resumed = false;

const worker = pipeline({
  consumer: env('WORKER_CONSUMER'),
  source: generatedSource('input', partitions, Number(env('WORKER_PER_PARTITION'))),
  db: knexTransactions(db, { verifyCommit: true, retry: { initialDelayMs: 1, maxDelayMs: 20, deadlineMs: 10_000 } }),
  store,
  batchSize: 10,
  pollIntervalMs: 50,
  // WORKER_LEASE_TTL_MS: workers of the consumer split the partitions through leases.
  ...(process.env['WORKER_LEASE_TTL_MS'] ? { leases: { ttlMs: Number(process.env['WORKER_LEASE_TTL_MS']), owner: `${env('WORKER_NAME')}-${process.pid}` } } : {}),
  handler: async (m, context) => {
    if (resumed) process.send?.({ type: 'attempt', partition: m.partition, offset: m.offset });
    await effects(m, context);
    context.tx.afterCommit(() => void process.send?.({ type: 'committed', count: 1, resumed }));
    if (freeze) {
      freeze = false;
      resumed = true; // read when the process runs again
      process.send?.({ type: 'freezing', partition: m.partition, offset: m.offset });
      process.kill(process.pid, 'SIGSTOP');
    }
  },
  onError: (err) => {
    if (err instanceof InboxFencedError) process.send?.({ type: 'fenced', partition: err.partition });
    else process.send?.({ type: 'error', name: (err as Error)?.name, message: (err as Error)?.message });
  },
});

process.on('message', (m: { type?: string }) => {
  if (m.type === 'freeze') freeze = true;
  if (m.type === 'stop') {
    void worker
      .stop()
      .then(() => store.close())
      .then(() => db.destroy())
      .then(() => process.exit(0));
  }
});
worker.start();
process.send?.({ type: 'started' });
