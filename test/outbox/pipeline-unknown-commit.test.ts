/**
 * A pipeline transaction whose COMMIT outcome is unknown (the connection is
 * cut around it and the context has no verifyCommit) is resolved from the
 * stored inbox position: a commit that happened is counted and the worker
 * goes on, one that did not is rerun; the worker never mistakes its own
 * commit for another worker's and abandons the partition.
 */
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import { knexTransactions } from '../../src/adapters/sql/index.js';
import { memorySource } from '../../src/outbox/memory/memory-broker.js';
import { pipeline } from '../../src/outbox/engine/pipeline.js';
import { sqlOutboxStore } from '../../src/outbox/stores/sql-outbox-store.js';
import { CommitCutProxy } from '../sql/support/commit-cut-proxy.js';
import type { CutMode } from '../sql/support/commit-cut-proxy.js';
import { service } from '../support/services.js';

const pgUrl = service('postgres');
const MESSAGES = 40;

describe.skipIf(pgUrl === undefined)('pipeline: unknown commit outcome on Postgres without verifyCommit', () => {
  let proxy: CommitCutProxy;
  let db: Knex;
  const prefix = `tkuc${process.pid}_`;

  beforeAll(async () => {
    const url = new URL(pgUrl as string);
    proxy = new CommitCutProxy({ host: url.hostname, port: Number(url.port || 5432) });
    const { host, port } = await proxy.start();
    url.hostname = host;
    url.port = String(port);
    // knex warns about every connection the proxy cuts; those are this test's point.
    db = knexFactory({ client: 'pg', connection: url.toString(), pool: { min: 0, max: 4 }, log: { warn: () => undefined } });
  });
  afterAll(async () => {
    for (const t of [...sqlOutboxStore(db, { tablePrefix: prefix }).tableNames, `${prefix}state`]) await db.schema.dropTableIfExists(t);
    await db.destroy();
    await proxy.close();
  });

  for (const mode of ['after-forward', 'before-forward'] as CutMode[]) {
    it(`a COMMIT cut ${mode === 'after-forward' ? 'after' : 'before'} the server saw it: every message once, no self-fencing`, async () => {
      const consumer = `uc-${mode}`;
      await db.schema.dropTableIfExists(`${prefix}state`);
      await db.schema.createTable(`${prefix}state`, (t) => {
        t.text('id').primary();
      });
      const store = sqlOutboxStore(db, { tablePrefix: prefix });
      await store.migrate();
      const broker = new MemoryStore({ partitions: 1 });
      await memoryTransactions({ store: broker }).withTransaction((tx) =>
        tx.handle.send({ topic: 'in', messages: Array.from({ length: MESSAGES }, (_, i) => ({ key: `k${i}`, value: `m${i}` })) }),
      );
      const errors: unknown[] = [];
      const p = pipeline<Knex.Transaction>({
        consumer,
        source: memorySource(broker, 'in'),
        db: knexTransactions(db, { retry: { initialDelayMs: 1, maxDelayMs: 5 } }),
        store,
        batchSize: 10,
        handler: async (m, { tx }) => {
          await tx.handle(`${prefix}state`).insert({ id: String(m.value) });
        },
        onError: (err) => void errors.push(err),
      });
      const cutsBefore = proxy.cuts;
      proxy.arm(mode);
      const stats = await p.runUntilIdle();

      expect(proxy.cuts - cutsBefore).toBe(1);
      // A commit that happened is resolved silently; one that did not is a failed run, reported and rerun.
      const names = errors.map((e) => (e as Error).name);
      expect(names).not.toContain('InboxFencedError');
      if (mode === 'before-forward') expect(names).toContain('UnknownCommitResultError');
      expect(stats.fenced).toEqual([]);
      expect(stats.processed).toBe(MESSAGES);
      const rows = (await db(`${prefix}state`).select('id')) as { id: string }[];
      expect(rows.map((r) => r.id).sort()).toEqual(Array.from({ length: MESSAGES }, (_, i) => `m${i}`).sort());
      expect(await store.inboxPosition(undefined, { consumer, source: 'in', partition: 0 })).toBe(MESSAGES);
    });
  }
});
