/**
 * A pipeline appends the outbox records of a batch once per outbox
 * partition, in ascending partition order. Two partition loops whose
 * handlers publish to several outbox partitions in opposite orders then
 * never deadlock on the partitions' counter rows (real Postgres).
 */
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import { knexTransactions } from '../../src/adapters/sql/index.js';
import { MemoryOutboxStore } from '../../src/outbox/stores/memory-outbox-store.js';
import { memorySource } from '../../src/outbox/memory/memory-broker.js';
import { Outbox, partitionOf } from '../../src/outbox/engine/outbox.js';
import { pipeline } from '../../src/outbox/engine/pipeline.js';
import { sqlOutboxStore } from '../../src/outbox/stores/sql-outbox-store.js';
import { service } from '../support/services.js';

const pgUrl = service('postgres');

/** Keys that land in outbox partitions 0..n-1, one per partition. */
function keysByPartition(n: number): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < n && i < 10_000; i++) {
    const p = partitionOf(`k${i}`, n);
    if (keys[p] === undefined) keys[p] = `k${i}`;
  }
  return keys;
}

describe('outbox.collect / appendCollected', () => {
  it('appends collected records once per partition, in ascending order, only when asked', async () => {
    const data = new MemoryStore();
    const store = new MemoryOutboxStore(data, { partitions: 4 });
    const appends: number[] = [];
    const append = store.append.bind(store);
    store.append = async (handle, partition, records) => {
      appends.push(partition);
      return append(handle, partition, records);
    };
    const outbox = new Outbox(store);
    const [k0, k1, k2, k3] = keysByPartition(4) as [string, string, string, string];
    await memoryTransactions({ store: data }).withTransaction(async (tx) => {
      outbox.collect(tx);
      for (const key of [k3, k1, k2, k1, k0]) await outbox.publish(tx, { topic: 't', key, value: key });
      expect(appends).toEqual([]);
      await outbox.appendCollected(tx);
    });
    expect(appends).toEqual([0, 1, 2, 3]);
    expect((await store.read(1, 0, 10)).map((r) => r.value?.toString())).toEqual([k1, k1]);
  });
});

describe.skipIf(pgUrl === undefined)('pipeline on Postgres with a multi-partition outbox', () => {
  let db: Knex;
  const prefix = `tkord${process.pid}_`;
  beforeAll(() => {
    db = knexFactory({ client: 'pg', connection: pgUrl as string, pool: { min: 0, max: 6 } });
  });
  afterAll(async () => {
    for (const t of sqlOutboxStore(db, { tablePrefix: prefix }).tableNames) await db.schema.dropTableIfExists(t);
    await db.destroy();
  });

  it('two partition loops publishing to outbox partitions in opposite orders never deadlock', async () => {
    const OUT = 4;
    const PER_PARTITION = 150;
    const store = sqlOutboxStore(db, { tablePrefix: prefix, partitions: OUT });
    await store.migrate();
    const keys = keysByPartition(OUT);
    const broker = new MemoryStore({ partitions: 2 });
    await memoryTransactions({ store: broker }).withTransaction((tx) =>
      tx.handle.send({
        topic: 'in',
        messages: Array.from({ length: 2 * PER_PARTITION }, (_, i) => ({ key: null, value: String(i), partition: i % 2 })),
      }),
    );
    const errors: unknown[] = [];
    // Retries are silent unless logged: the context's logger sees each one with its error type.
    const retried: string[] = [];
    const logger = { debug: (obj: Record<string, unknown>) => void retried.push(String(obj.errorType)) };
    const job = pipeline<Knex.Transaction>({
      consumer: 'order-test',
      source: memorySource(broker, 'in'),
      db: knexTransactions(db, { retry: { initialDelayMs: 1, maxDelayMs: 20 }, logger }),
      store,
      batchSize: 10,
      // Input partition 0 publishes to outbox partitions 0,1,2,3; input partition 1 to 3,2,1,0.
      handler: async (m, { tx, outbox }) => {
        const order = m.partition === 0 ? keys : [...keys].reverse();
        for (const key of order) await outbox.publish(tx, { topic: 'out', key, value: `${m.partition}:${m.offset}` });
      },
      onError: (err) => void errors.push(err),
    });
    job.start();
    const deadline = Date.now() + 120_000;
    const done = async (): Promise<boolean> =>
      (await store.inboxPosition(undefined, { consumer: 'order-test', source: 'in', partition: 0 })) === PER_PARTITION &&
      (await store.inboxPosition(undefined, { consumer: 'order-test', source: 'in', partition: 1 })) === PER_PARTITION;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error(`pipeline did not finish: ${JSON.stringify(job.stats)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await job.stop();
    expect(errors.map((e) => String((e as Error).message))).toEqual([]);
    // 40P01: deadlock_detected. Lock waits are fine; a cycle between the two loops is not.
    expect(retried.filter((t) => t === '40P01')).toEqual([]);
    const status = await store.status();
    expect(status.partitions.map((p) => p.published)).toEqual(Array.from({ length: OUT }, () => 2 * PER_PARTITION));
  });
});
