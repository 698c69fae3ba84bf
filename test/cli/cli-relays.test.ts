/**
 * `txkit outbox status` per relay id, and `outbox add-relay` / `remove-relay`,
 * on a SQLite DATABASE_URL.
 */
import { join } from 'node:path';
import knexFactory from 'knex';
import { run, tempDir } from './cli-support.js';
import { describe, expect, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import { knexTransactions } from '../../src/adapters/sql/index.js';
import { Outbox, OutboxRelay, memorySink, sqlOutboxStore } from '../../src/outbox/index.js';

const dir = tempDir('cli-relays');

describe('txkit outbox relay ids on SQLite', () => {
  it('status lists each relay id with its backlog; add-relay makes one known, remove-relay retires it', async () => {
    const file = join(dir, 'cli.db');
    const url = `sqlite://${file}`;
    expect((await run(['migrate', '--database-url', url])).code).toBe(0);
    const knex = knexFactory({ client: 'better-sqlite3', connection: { filename: file }, useNullAsDefault: true });
    try {
      const store = sqlOutboxStore(knex);
      const db = knexTransactions(knex);
      const outbox = new Outbox(store);
      for (let i = 0; i < 3; i++) await db.withTransaction((tx) => outbox.publish(tx, { topic: 'events', key: `k${i}`, value: `e${i}` }));
      const none = await run(['outbox', 'status', '--database-url', url]);
      expect(none.out).toContain('relays: none known yet (cleanup deletes nothing until a relay has run)');

      await new OutboxRelay({ store, sink: memorySink(memoryTransactions({ store: new MemoryStore() })), relayId: 'search' }).drain();
      expect((await run(['outbox', 'add-relay', '--database-url', url, '--relay-id', 'audit'])).out.at(-1)).toMatch(
        /relay id 'audit' is known to sqlite 'txkit_outbox': cleanup keeps every record it has not sent/,
      );
      const text = await run(['outbox', 'status', '--database-url', url]);
      expect(text.out[0]).toMatch(/^pending: 3 /);
      expect(text.out).toContain('  audit  3  0:0');
      expect(text.out).toContain('  search  0  0:3');
      const json = JSON.parse((await run(['outbox', 'status', '--database-url', url, '--json'])).out.at(-1) as string) as {
        relays: { relayId: string; pending: number }[];
      };
      expect(json.relays.map((r) => [r.relayId, r.pending])).toEqual([
        ['audit', 3],
        ['search', 0],
      ]);

      const removed = await run(['outbox', 'remove-relay', '--database-url', url, '--relay-id', 'audit']);
      expect(removed.code).toBe(0);
      expect(removed.out.at(-1)).toMatch(/relay id 'audit' removed from sqlite 'txkit_outbox': cleanup no longer waits for it/);
      expect((await run(['outbox', 'status', '--database-url', url])).out[0]).toMatch(/^pending: 0 /);
      const again = await run(['outbox', 'remove-relay', '--database-url', url, '--relay-id', 'audit']);
      expect(again.code).toBe(1);
      expect(again.err).toMatch(/relay id 'audit' is not known to sqlite 'txkit_outbox'; known: search/);
      const unnamed = await run(['outbox', 'remove-relay', '--database-url', url]);
      expect(unnamed.code).toBe(2);
      expect(unnamed.err).toMatch(/outbox remove-relay needs the relay id: pass --relay-id ID or set TXKIT_RELAY_ID/);
      await store.close();
    } finally {
      await knex.destroy();
    }
  });
});
