/**
 * `txkit outbox status` with partition leases, on a SQLite DATABASE_URL:
 * each group's leases with owner, epoch and whether live, lapsed or
 * released, and the same leases in the `--json` output.
 */
import { join } from 'node:path';
import knexFactory from 'knex';
import { run, tempDir } from './cli-support.js';
import { describe, expect, it } from 'vitest';
import { renderStatus } from '../../src/cli/index.js';
import { sqlOutboxStore } from '../../src/outbox/index.js';
import type { OutboxStatus, PartitionLease } from '../../src/outbox/index.js';
import { waitUntil } from '../support/wait-until.js';

const dir = tempDir('cli-leases');

describe('txkit outbox status: partition leases', () => {
  it('lists each group with its leases: owner, epoch, live, lapsed or released; --json carries them too', async () => {
    const file = join(dir, 'cli.db');
    const url = `sqlite://${file}`;
    expect((await run(['migrate', '--database-url', url])).code).toBe(0);
    expect((await run(['outbox', 'status', '--database-url', url])).out).toContain('leases: none (no relays or pipeline workers share partitions through this store)');
    const knex = knexFactory({ client: 'better-sqlite3', connection: { filename: file }, useNullAsDefault: true });
    try {
      const store = sqlOutboxStore(knex);
      const ask = (group: string, partition: number, owner: string, ttlMs: number): Promise<PartitionLease | undefined> =>
        store.acquireLease({ group, partition, owner, ttlMs });
      const released = (await ask('relay/orders', 0, 'relay-host-1', 60_000)) as PartitionLease;
      expect(await store.releaseLease(released)).toBe(true);
      await ask('relay/orders', 0, 'relay-host-2', 60_000);
      await ask('relay/orders', 1, 'relay-host-1', 60_000);
      await store.releaseLease((await ask('pipeline/billing', 3, 'billing-worker', 60_000)) as PartitionLease);
      const lapsing = (await ask('pipeline/billing', 7, 'billing-worker', 1)) as PartitionLease;
      await waitUntil(() => Date.now() > lapsing.expiresAt, 5_000, 'the 1 ms lease to lapse');

      const text = (await run(['outbox', 'status', '--database-url', url])).out;
      const from = text.indexOf('leases (relays and pipeline workers sharing partitions)');
      expect(from, text.join('\n')).toBeGreaterThan(0);
      const block = text.slice(from + 1);
      expect(block[0]).toBe('  pipeline/billing');
      expect(block[1]).toMatch(/^ {4}partition {2}owner +epoch {2}state$/);
      expect(block[2]).toMatch(/^ +3 {2}- +1 {2}released$/);
      expect(block[3]).toMatch(/^ +7 {2}billing-worker +1 {2}lapsed .+ ago$/);
      expect(block[4]).toBe('  relay/orders');
      expect(block[6]).toMatch(/^ +0 {2}relay-host-2 +2 {2}live, .+ left$/);
      expect(block[7]).toMatch(/^ +1 {2}relay-host-1 +1 {2}live, .+ left$/);

      const json = JSON.parse((await run(['outbox', 'status', '--database-url', url, '--json'])).out.at(-1) as string) as OutboxStatus;
      expect(json.partitions).toHaveLength(1);
      expect(json.leases.map((l) => [l.group, l.partition, l.owner, l.epoch])).toEqual([
        ['pipeline/billing', 3, '', 1],
        ['pipeline/billing', 7, 'billing-worker', 1],
        ['relay/orders', 0, 'relay-host-2', 2],
        ['relay/orders', 1, 'relay-host-1', 1],
      ]);
      expect(json.leases).toEqual(await store.leases());
      await store.close();
    } finally {
      await knex.destroy();
    }
  });

  it('renders the time left or since lapsing from the given clock', () => {
    const status: OutboxStatus = {
      partitions: [],
      relays: [],
      pendingByTopic: {},
      deadLetters: 0,
      leases: [
        { group: 'g', partition: 0, owner: 'a', epoch: 4, expiresAt: 15_000 },
        { group: 'g', partition: 1, owner: 'b', epoch: 2, expiresAt: 7_500 },
      ],
    };
    expect(renderStatus(status, 10_000).slice(-3)).toEqual([
      '    partition  owner  epoch  state',
      '            0  a          4  live, 5.0 s left',
      '            1  b          2  lapsed 2.5 s ago',
    ]);
  });
});
