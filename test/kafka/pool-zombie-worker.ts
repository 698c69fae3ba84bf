// A process with a pool of transactional producers for the pool zombie test. It runs
// POOL_SIZE units at once, each sending one record to POOL_TOPIC, reports 'sent' once
// every unit has sent, and stops itself with SIGSTOP before any commits. When it runs
// again the units go on to commit; it reports how each ended ('committed', or the
// error's name), then what a new unit gets, and exits.
import { kafkaTransactions } from '../../src/adapters/kafka/index.js';
import { makeKafka } from './kafka-support.js';

const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`pool-zombie-worker needs ${name}`);
  return v;
};
const size = Number(env('POOL_SIZE'));
const topic = env('POOL_TOPIC');
const ctx = kafkaTransactions(makeKafka(env('POOL_BROKERS'), `pool-zombie-${process.pid}`), { transactionalIdPrefix: env('POOL_PREFIX'), poolSize: size });

let sent = 0;
let release = (): void => undefined;
const allSent = new Promise<void>((resolve) => (release = resolve));
const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'committed',
    (err: unknown) => (err as Error)?.name ?? String(err),
  );
const units = Array.from({ length: size }, (_, i) =>
  outcome(
    ctx.withTransaction(
      async (tx) => {
        await tx.handle.send({ topic, messages: [{ value: `zombie-${i}` }] });
        if (++sent === size) release();
        await allSent;
      },
      { retry: { maxAttempts: 1 } },
    ),
  ),
);
await allSent;
process.send?.({ type: 'sent', ids: ctx.transactionalIds });
// Stopped with every transaction open and its record sent: commits come after SIGCONT.
process.kill(process.pid, 'SIGSTOP');
const results = await Promise.all(units);
const next = await outcome(ctx.withTransaction((tx) => tx.handle.send({ topic, messages: [{ value: 'zombie-after' }] }), { retry: { maxAttempts: 1 } }));
process.send?.({ type: 'done', results, next }, () => {
  void ctx.close().finally(() => process.exit(0));
});
