// A relay process for the relay zombie test: relays a Postgres outbox to Kafka with
// kafkaSink's per-partition producers and leases. On a 'freeze' request it stops itself
// with SIGSTOP inside a broker transaction, after the relay's own work in it (records,
// position, lease check) and before the commit; when it runs again the commit goes on.
// It reports the outcome of that transaction over IPC.
import knexFactory from 'knex';
import kafkajs from 'kafkajs';
import type { TransactionContext } from '../../src/core/index.js';
import type { KafkaTxHandle } from '../../src/adapters/kafka/index.js';
import { OutboxRelay, kafkaSink, sqlOutboxStore } from '../../src/outbox/index.js';

const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`relay-zombie-worker needs ${name}`);
  return v;
};
const db = knexFactory({ client: 'pg', connection: env('RELAY_DATABASE_URL'), pool: { min: 0, max: 4 } });
const store = sqlOutboxStore(db, { tablePrefix: env('RELAY_TABLE_PREFIX'), partitions: Number(env('RELAY_PARTITIONS')) });
const kafka = new kafkajs.Kafka({ brokers: env('RELAY_BROKERS').split(','), clientId: `relay-zombie-${process.pid}`, logLevel: kafkajs.logLevel.NOTHING });
const sink = kafkaSink({ kafka, transactionalIdPrefix: env('RELAY_TRANSACTIONAL_ID_PREFIX') });
let freeze = false;
const wrapped = new WeakMap<object, TransactionContext<KafkaTxHandle>>();
const contextFor = sink.contextFor?.bind(sink);
if (contextFor === undefined) throw new Error('kafkaSink with a prefix has contextFor');
const frozenSink = {
  ...sink,
  contextFor: (at: { relayId: string; partition: number }): TransactionContext<KafkaTxHandle> => {
    const inner = contextFor(at);
    let outer = wrapped.get(inner);
    if (outer === undefined) {
      const withTransaction = (async (cb: (tx: unknown) => Promise<unknown>, options?: object) => {
        let frozen = false;
        try {
          const result = await inner.withTransaction(async (tx) => {
            const value = await cb(tx);
            if (freeze) {
              freeze = false;
              frozen = true;
              process.send?.({ type: 'freezing', partition: at.partition });
              process.kill(process.pid, 'SIGSTOP');
            }
            return value;
          }, options as never);
          if (frozen) process.send?.({ type: 'frozen-outcome', committed: true });
          return result;
        } catch (err) {
          if (frozen) process.send?.({ type: 'frozen-outcome', committed: false, error: (err as Error)?.name, message: (err as Error)?.message });
          throw err;
        }
      }) as TransactionContext<KafkaTxHandle>['withTransaction'];
      outer = new Proxy(inner, { get: (target, name) => (name === 'withTransaction' ? withTransaction : Reflect.get(target, name)) });
      wrapped.set(inner, outer);
    }
    return outer;
  },
};
const relay = new OutboxRelay({
  store,
  sink: frozenSink,
  relayId: env('RELAY_ID'),
  batchSize: 50,
  pollIntervalMs: 200,
  leases: { ttlMs: Number(env('RELAY_LEASE_TTL_MS')), owner: `zombie-${process.pid}` },
  onError: (err) => process.send?.({ type: 'error', name: (err as Error)?.name, message: (err as Error)?.message }),
});
process.on('message', (m: { type?: string }) => {
  if (m.type === 'freeze') freeze = true;
});
setInterval(() => process.send?.({ type: 'stats', relayed: relay.stats.relayed, owned: relay.stats.owned }), 100).unref();
relay.start();
process.send?.({ type: 'started' });
