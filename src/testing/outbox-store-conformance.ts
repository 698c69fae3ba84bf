import assert from 'node:assert/strict';
import { ConfigError } from '../core/index.js';
import type { TransactionContext } from '../core/index.js';
import { InboxFencedError, Outbox } from '../outbox/index.js';
import type { DeadLetter, LeaseRequest, OutboxStore, PartitionLease, PendingRecord } from '../outbox/index.js';
import { rejection } from './conformance/support.js';
import type { TestApi } from './conformance/options.js';

/** One fresh store plus the transactions of its database, made per test. */
export interface OutboxStoreSubject<H> {
  /** A store of its own (fresh tables, collections or memory store), not migrated yet: the suite migrates it. */
  readonly store: OutboxStore<NoInfer<H>>;
  /** The transactions of the store's database: records, positions and dead letters are written inside them. */
  readonly context: TransactionContext<H>;
  /** Frees what make() created (tables, collections, clients); the suite closes the store and the context itself first. */
  cleanup?(): Promise<void>;
}

/** Options of {@link testOutboxStore}. */
export interface OutboxStoreConformanceOptions<H> {
  /** Names the suite in the test report, e.g. `postgres (knex)`. */
  name: string;
  /** Makes a fresh subject with a store of `partitions` outbox partitions for each test. */
  make: (partitions: number) => Promise<OutboxStoreSubject<H>>;
  /**
   * The test framework's functions.
   * @default the globals `describe` and `it`
   */
  test?: TestApi;
  /** Per-test timeout for slow databases. @default 30_000 */
  timeoutMs?: number;
}

/** Longest a wait that should end early may take before the case fails. */
const GUARD_MS = 10_000;

/**
 * The suite every OutboxStore must pass: migrate, append and read, relay
 * positions, status and cleanup, the inbox compare-and-set, dead letters,
 * partition leases and group members, and the waits for a commit. Call it from a test file of the store, once
 * per database; add store-specific cases beside it.
 * @throws ConfigError when `test` is not given and the framework's globals
 *   `describe` and `it` are missing.
 * @example
 * ```ts
 * import { describe, it } from 'vitest';
 * import { MemoryStore, memoryTransactions } from 'txkit/memory';
 * import { MemoryOutboxStore } from 'txkit/outbox';
 * import { testOutboxStore } from 'txkit/testing';
 *
 * testOutboxStore({
 *   name: 'memory',
 *   test: { describe, it },
 *   make: async (partitions) => {
 *     const data = new MemoryStore();
 *     return { store: new MemoryOutboxStore(data, { partitions }), context: memoryTransactions({ store: data }) };
 *   },
 * });
 * ```
 */
export function testOutboxStore<H>(options: OutboxStoreConformanceOptions<H>): void {
  const api = options.test ?? globalTestApi();
  const { describe } = api;
  const timeout = options.timeoutMs ?? 30_000;

  /** Runs a test with a fresh, migrated subject, closing the store (twice: close is idempotent) and the context, then cleaning up. */
  const it = (name: string, body: (s: OutboxStoreSubject<H>) => Promise<void>, partitions = 2): void => {
    api.it(
      name,
      async () => {
        const subject = await options.make(partitions);
        try {
          await subject.store.migrate();
          await body(subject);
        } finally {
          await subject.store.close();
          await subject.store.close();
          await subject.context.close();
          await subject.cleanup?.();
        }
      },
      timeout,
    );
  };

  describe(`${options.name}: OutboxStore conformance`, () => {
    describe('outbox role', () => {
      it('migrate is idempotent, also when run twice at once', async ({ store, context }) => {
        await Promise.all([store.migrate(), store.migrate()]);
        await store.migrate();
        const status = await store.status();
        assert.deepEqual(
          status.partitions.map((p) => [p.partition, p.published, p.pending]),
          [
            [0, 0, 0],
            [1, 0, 0],
          ],
        );
        await append(context, store, 1, [record('after-migrate')]);
        assert.equal((await store.read(1, 0, 10)).length, 1);
      });

      it('outboxId (when the store has it) is a non-empty string that stays the same, also when asked twice at once', async ({ store }) => {
        if (store.outboxId === undefined) return;
        const [a, b] = await Promise.all([store.outboxId(), store.outboxId()]);
        assert.equal(typeof a, 'string');
        assert.ok((a as string).length > 0, 'outboxId is empty');
        assert.equal(b, a);
        assert.equal(await store.outboxId(), a);
      });

      it('append and read: sequence order per partition, from afterSeq, at most limit, with every field', async ({ store, context }) => {
        const createdAt = Date.now() - 5;
        await append(context, store, 0, [record('a1', { createdAt }), record('a2'), record('a3')]);
        await append(context, store, 1, [record('b1', { key: null, value: null }), record('b2')]);
        await append(context, store, 0, [record('a4'), record('a5')]);
        const all = await store.read(0, 0, 100);
        assert.deepEqual(
          all.map((r) => [r.seq, r.id]),
          ['a1', 'a2', 'a3', 'a4', 'a5'].map((id, i) => [i + 1, id]),
        );
        const first = all[0] as (typeof all)[number];
        assert.equal(first.partition, 0);
        assert.equal(first.topic, 'orders');
        assert.equal(first.key, 'k-a1');
        assert.deepEqual(first.value, Buffer.from([0, 1, 254, 255]));
        assert.deepEqual(first.headers, { 'trace-id': 'a1', 'a.b': '$x' });
        assert.equal(first.createdAt, createdAt);
        assert.deepEqual(
          (await store.read(0, 2, 2)).map((r) => r.seq),
          [3, 4],
        );
        assert.deepEqual(await store.read(0, 5, 10), []);
        const other = await store.read(1, 0, 10);
        assert.deepEqual(
          other.map((r) => [r.partition, r.seq, r.id, r.key, r.value]),
          [
            [1, 1, 'b1', null, null],
            [1, 2, 'b2', 'k-b2', Buffer.from([0, 1, 254, 255])],
          ],
        );
      });

      it('a rolled-back append is invisible and leaves no gap in the sequence', async ({ store, context }) => {
        const err = await rejection(
          context.withTransaction(async (tx) => {
            await store.append(tx.handle, 0, [record('never')]);
            throw new Error('business rule failed');
          }),
        );
        assert.equal((err as Error).message, 'business rule failed');
        assert.deepEqual(await store.read(0, 0, 10), []);
        assert.equal((await store.status()).partitions[0]?.published, 0);
        await append(context, store, 0, [record('kept')]);
        assert.deepEqual(
          (await store.read(0, 0, 10)).map((r) => [r.seq, r.id]),
          [[1, 'kept']],
        );
      });

      it('relay ids: registerRelay, markRelayed (never backwards), removeRelay, and status per partition, relay and topic', async ({ store, context }) => {
        await store.registerRelay('relay-a');
        await store.registerRelay('relay-a');
        await append(context, store, 0, [record('r1', { topic: 'x' }), record('r2', { topic: 'y' }), record('r3', { topic: 'y' })]);
        let status = await store.status();
        assert.deepEqual(
          status.relays.map((r) => [r.relayId, r.pending]),
          [['relay-a', 3]],
        );
        assert.deepEqual(status.pendingByTopic, { x: 1, y: 2 });
        await store.markRelayed({ relayId: 'relay-a', partition: 0, seq: 2 });
        await store.markRelayed({ relayId: 'relay-a', partition: 0, seq: 1 });
        status = await store.status();
        assert.deepEqual(status.relays[0]?.partitions.find((p) => p.partition === 0), { partition: 0, relayed: 2, pending: 1 });
        const p0 = status.partitions[0];
        assert.deepEqual([p0?.published, p0?.relayed, p0?.pending], [3, 2, 1]);
        assert.ok(typeof p0?.oldestPendingAgeMs === 'number' && p0.oldestPendingAgeMs >= 0, `oldestPendingAgeMs: ${String(p0?.oldestPendingAgeMs)}`);
        assert.deepEqual(status.pendingByTopic, { y: 1 });
        // markRelayed makes an unknown relay id known; the partition counts as relayed up to the lowest of them.
        await store.markRelayed({ relayId: 'relay-b', partition: 0, seq: 3 });
        status = await store.status();
        assert.deepEqual(
          status.relays.map((r) => r.relayId),
          ['relay-a', 'relay-b'],
        );
        assert.equal(status.partitions[0]?.relayed, 2);
        assert.equal(await store.removeRelay('relay-a'), true);
        assert.equal(await store.removeRelay('relay-a'), false);
        status = await store.status();
        assert.deepEqual(
          status.relays.map((r) => r.relayId),
          ['relay-b'],
        );
        assert.deepEqual([status.partitions[0]?.relayed, status.partitions[0]?.pending], [3, 0]);
        // A relay id is a non-empty string.
        for (const bad of [store.registerRelay(''), store.markRelayed({ relayId: '', partition: 0, seq: 1 }), store.removeRelay('')]) {
          const err = await rejection(bad);
          assert.ok(err instanceof ConfigError, `got ${String(err)}`);
        }
      });

      it('cleanup deletes only rows past retention that every known relay id has passed', async ({ store, context }) => {
        const old = Date.now() - 60_000;
        await append(context, store, 0, [record('c1', { createdAt: old }), record('c2', { createdAt: old }), record('c3', { createdAt: old })]);
        await append(context, store, 0, [record('young')]);
        // No relay id known: nothing counts as relayed.
        assert.deepEqual((await store.status()).relays, []);
        assert.equal(await store.cleanup(1000), 0);
        await store.registerRelay('fast');
        await store.registerRelay('slow');
        await store.markRelayed({ relayId: 'fast', partition: 0, seq: 4 });
        await store.markRelayed({ relayId: 'slow', partition: 0, seq: 1 });
        assert.equal(await store.cleanup(1000), 1);
        assert.deepEqual(
          (await store.read(0, 0, 10)).map((r) => r.id),
          ['c2', 'c3', 'young'],
        );
        // The slow relay id gone, the rest past retention goes; the young row stays.
        await store.removeRelay('slow');
        assert.equal(await store.cleanup(1000), 2);
        assert.deepEqual(
          (await store.read(0, 0, 10)).map((r) => r.id),
          ['young'],
        );
        assert.equal(await store.cleanup(1000), 0);
        // A reader behind the deleted rows starts at the oldest row left.
        assert.deepEqual(
          (await store.read(0, 1, 10)).map((r) => r.seq),
          [4],
        );
      });
    });

    describe('inbox role', () => {
      it('the position is a compare-and-set: a stale expected position throws InboxFencedError', async ({ store, context }) => {
        const at = { consumer: 'job', source: 'payments', partition: 1 };
        const position = (): Promise<number | undefined> => store.inboxPosition(undefined, at);
        assert.equal(await position(), undefined);
        await context.withTransaction((tx) => store.advanceInbox(tx.handle, { ...at, expected: undefined, next: 5 }));
        assert.equal(await position(), 5);
        // Expecting no position when one exists: another worker got there first.
        const unset = await rejection(context.withTransaction((tx) => store.advanceInbox(tx.handle, { ...at, expected: undefined, next: 9 }), { retry: false }));
        assert.ok(unset instanceof InboxFencedError, `got ${String(unset)}`);
        assert.deepEqual([unset.consumer, unset.source, unset.partition, unset.expected], ['job', 'payments', 1, undefined]);
        await context.withTransaction((tx) => store.advanceInbox(tx.handle, { ...at, expected: 5, next: 7 }));
        const stale = await rejection(context.withTransaction((tx) => store.advanceInbox(tx.handle, { ...at, expected: 5, next: 8 }), { retry: false }));
        assert.ok(stale instanceof InboxFencedError, `got ${String(stale)}`);
        assert.equal(await position(), 7);
        // Inside the transaction its own move is visible; outside, only once committed; an abort undoes it.
        await rejection(
          context.withTransaction(async (tx) => {
            await store.advanceInbox(tx.handle, { ...at, expected: 7, next: 10 });
            assert.equal(await store.inboxPosition(tx.handle, at), 10);
            throw new Error('handler failed');
          }),
        );
        assert.equal(await position(), 7);
        // Positions are per consumer, source and partition.
        assert.equal(await store.inboxPosition(undefined, { ...at, partition: 0 }), undefined);
        assert.equal(await store.inboxPosition(undefined, { ...at, consumer: 'other' }), undefined);
        assert.equal(await store.inboxPosition(undefined, { ...at, source: 'refunds' }), undefined);
      });
    });

    describe('dead-letter role', () => {
      it('dead letters commit with their transaction, keep the error, and are listed per consumer', async ({ store, context }) => {
        const letter = (consumer: string, offset: number): Omit<DeadLetter, 'createdAt'> => ({
          consumer,
          source: 'in',
          partition: 0,
          offset,
          key: 'k',
          value: Buffer.from('bad'),
          headers: { h: '1' },
          error: 'SyntaxError: bad',
          attempts: 3,
        });
        const before = Date.now();
        await context.withTransaction((tx) => store.addDeadLetter(tx.handle, letter('c1', 4)));
        await context.withTransaction((tx) => store.addDeadLetter(tx.handle, letter('c2', 5)));
        await rejection(
          context.withTransaction(async (tx) => {
            await store.addDeadLetter(tx.handle, letter('c1', 6));
            throw new Error('rolled back');
          }),
        );
        const c1 = await store.deadLetters('c1');
        assert.equal(c1.length, 1);
        const { createdAt, ...stored } = c1[0] as DeadLetter;
        assert.deepEqual(stored, letter('c1', 4));
        assert.ok(createdAt >= before - 1000 && createdAt <= Date.now() + 1000, `createdAt ${createdAt}`);
        assert.deepEqual((await store.deadLetters()).map((l) => l.consumer).sort(), ['c1', 'c2']);
        assert.deepEqual(await store.deadLetters('nobody'), []);
        assert.equal((await store.status()).deadLetters, 2);
      });
    });

    describe('lease role', () => {
      const group = 'relay/orders';
      const ask = (owner: string, partition = 0, ttlMs = 60_000): LeaseRequest => ({ group, partition, owner, ttlMs });
      const summary = (leases: readonly PartitionLease[]): [string, number, string, number][] => leases.map((l) => [l.group, l.partition, l.owner, l.epoch]);

      it('acquireLease: the first owner gets epoch 1, a renewal keeps it, another owner is refused while it is live', async ({ store }) => {
        const before = Date.now();
        const first = await store.acquireLease(ask('worker-a'));
        const after = Date.now();
        assert.ok(first, 'the first request got no lease');
        assert.deepEqual([first.group, first.partition, first.owner, first.epoch], [group, 0, 'worker-a', 1]);
        assert.ok(first.expiresAt >= before + 60_000 && first.expiresAt <= after + 60_001, `expiresAt ${first.expiresAt} is not 60 s after the request`);
        const renewed = await store.acquireLease(ask('worker-a'));
        assert.deepEqual(renewed && [renewed.owner, renewed.epoch], ['worker-a', 1]);
        assert.equal(await store.acquireLease(ask('worker-b')), undefined);
        assert.deepEqual(summary(await store.leases(group)), [[group, 0, 'worker-a', 1]]);
        // Another partition is another lease.
        const other = await store.acquireLease(ask('worker-b', 1));
        assert.deepEqual(other && [other.partition, other.owner, other.epoch], [1, 'worker-b', 1]);
      });

      it('a lapsed lease goes to another owner one epoch higher, and its former owner is refused', async ({ store }) => {
        const short = await store.acquireLease(ask('worker-a', 0, 1));
        assert.equal(short?.epoch, 1);
        await until(() => Date.now() > (short as PartitionLease).expiresAt, 'the 1 ms lease to lapse');
        const taken = await store.acquireLease(ask('worker-b'));
        assert.deepEqual(taken && [taken.owner, taken.epoch], ['worker-b', 2]);
        assert.equal(await store.acquireLease(ask('worker-a')), undefined);
        assert.deepEqual(summary(await store.leases(group)), [[group, 0, 'worker-b', 2]]);
      });

      it('releaseLease frees a lease at once, only for its owner under its epoch; the next owner gets the next epoch', async ({ store }) => {
        const first = (await store.acquireLease(ask('worker-a'))) as PartitionLease;
        assert.equal(first.epoch, 1);
        assert.equal(await store.releaseLease({ group, partition: 0, owner: 'worker-a', epoch: 2 }), false);
        assert.equal(await store.releaseLease({ group, partition: 0, owner: 'worker-a', epoch: 0 }), false);
        assert.equal(await store.releaseLease({ group, partition: 0, owner: 'worker-b', epoch: 1 }), false);
        assert.equal(await store.releaseLease({ group, partition: 1, owner: 'worker-a', epoch: 1 }), false);
        assert.deepEqual(summary(await store.leases(group)), [[group, 0, 'worker-a', 1]]);
        assert.equal(await store.acquireLease(ask('worker-b')), undefined);
        assert.equal(await store.releaseLease(first), true);
        assert.equal(await store.releaseLease(first), false);
        assert.deepEqual(summary(await store.leases(group)), [[group, 0, '', 1]]);
        // Released, even its former owner takes it under a new epoch: work of the old one is fenced.
        const again = (await store.acquireLease(ask('worker-a'))) as PartitionLease;
        assert.deepEqual([again.owner, again.epoch], ['worker-a', 2]);
        assert.equal(await store.releaseLease(again), true);
        const next = await store.acquireLease(ask('worker-b'));
        assert.deepEqual(next && [next.owner, next.epoch], ['worker-b', 3]);
      });

      it('two owners asking for a lease at once never both get it, for new and for released leases', async ({ store }) => {
        const partitions = Array.from({ length: 20 }, (_, p) => p);
        /** Both owners ask for every partition at once; exactly one gets each, under `epoch`, and the store agrees. */
        const race = async (epoch: number): Promise<void> => {
          const rounds = await Promise.all(partitions.map((p) => Promise.all([store.acquireLease(ask('worker-a', p)), store.acquireLease(ask('worker-b', p))])));
          const winners = rounds.map((results, p) => {
            const got = results.filter((l) => l !== undefined);
            assert.equal(got.length, 1, `partition ${p} at epoch ${epoch}: ${got.length} owners got the lease`);
            return got[0] as PartitionLease;
          });
          assert.deepEqual(
            summary(await store.leases(group)),
            winners.map((l, p) => [group, p, l.owner, epoch]),
          );
        };
        await race(1);
        for (const lease of await store.leases(group)) assert.equal(await store.releaseLease(lease), true);
        await race(2);
      });

      it('heartbeat lists the live members of its group sorted by owner and forgets lapsed ones', async ({ store }) => {
        const owners = (members: readonly { owner: string }[]): string[] => members.map((m) => m.owner);
        const before = Date.now();
        const alone = await store.heartbeat({ group, owner: 'member-b', ttlMs: 60_000 });
        assert.deepEqual(owners(alone), ['member-b']);
        assert.ok((alone[0]?.expiresAt ?? 0) >= before + 60_000, `expiresAt ${String(alone[0]?.expiresAt)}`);
        const brief = await store.heartbeat({ group, owner: 'member-c', ttlMs: 1 });
        assert.deepEqual(owners(brief), ['member-b', 'member-c']);
        const lapsesAt = (brief.find((m) => m.owner === 'member-c') as { expiresAt: number }).expiresAt;
        assert.deepEqual(owners(await store.heartbeat({ group, owner: 'member-a', ttlMs: 60_000 })).filter((o) => o !== 'member-c'), ['member-a', 'member-b']);
        await until(() => Date.now() > lapsesAt, "member-c's 1 ms membership to lapse");
        assert.deepEqual(owners(await store.heartbeat({ group, owner: 'member-b', ttlMs: 60_000 })), ['member-a', 'member-b']);
        // Members are per group.
        assert.deepEqual(owners(await store.heartbeat({ group: 'pipeline/other', owner: 'member-z', ttlMs: 60_000 })), ['member-z']);
      });

      it("leaveGroup releases the owner's leases in that group and removes it from the members", async ({ store }) => {
        await store.heartbeat({ group, owner: 'worker-a', ttlMs: 60_000 });
        await store.heartbeat({ group, owner: 'worker-b', ttlMs: 60_000 });
        for (const [owner, partition] of [['worker-a', 0], ['worker-a', 1], ['worker-b', 2]] as const) assert.ok(await store.acquireLease(ask(owner, partition)));
        assert.ok(await store.acquireLease({ group: 'pipeline/other', partition: 0, owner: 'worker-a', ttlMs: 60_000 }));
        await store.leaveGroup({ group, owner: 'worker-a' });
        assert.deepEqual(summary(await store.leases(group)), [
          [group, 0, '', 1],
          [group, 1, '', 1],
          [group, 2, 'worker-b', 1],
        ]);
        assert.deepEqual(summary(await store.leases('pipeline/other')), [['pipeline/other', 0, 'worker-a', 1]]);
        assert.deepEqual(
          (await store.heartbeat({ group, owner: 'worker-b', ttlMs: 60_000 })).map((m) => m.owner),
          ['worker-b'],
        );
        // Its leases are free at once, for the next owner one epoch higher.
        const taken = await store.acquireLease(ask('worker-b', 0));
        assert.deepEqual(taken && [taken.owner, taken.epoch], ['worker-b', 2]);
        await store.leaveGroup({ group, owner: 'nobody' });
      });

      it('leases(group) is sorted by partition and scoped to the group; leases() and status() list every group', async ({ store }) => {
        // Lease partitions are any non-negative integers (a pipeline's source partitions), not only the outbox's.
        for (const [g, partition] of [['pipeline/z', 10], ['pipeline/z', 2], ['pipeline/a', 1]] as const) {
          assert.ok(await store.acquireLease({ group: g, partition, owner: 'worker-a', ttlMs: 60_000 }));
        }
        assert.deepEqual(summary(await store.leases('pipeline/z')), [
          ['pipeline/z', 2, 'worker-a', 1],
          ['pipeline/z', 10, 'worker-a', 1],
        ]);
        assert.deepEqual(await store.leases('pipeline/none'), []);
        const all = await store.leases();
        assert.deepEqual(summary(all), [
          ['pipeline/a', 1, 'worker-a', 1],
          ['pipeline/z', 2, 'worker-a', 1],
          ['pipeline/z', 10, 'worker-a', 1],
        ]);
        assert.deepEqual((await store.status()).leases, all);
      });

      it('lease calls with a bad group, owner, partition, epoch or ttl throw ConfigError', async ({ store }) => {
        const bad: [string, Promise<unknown>][] = [
          ['empty group', store.acquireLease({ ...ask('worker-a'), group: '' })],
          ['group over 255 characters', store.acquireLease({ ...ask('worker-a'), group: 'g'.repeat(256) })],
          ['empty owner', store.acquireLease(ask(''))],
          ['negative partition', store.acquireLease(ask('worker-a', -1))],
          ['fractional partition', store.acquireLease(ask('worker-a', 1.5))],
          ['ttl 0', store.acquireLease(ask('worker-a', 0, 0))],
          ['ttl NaN', store.acquireLease(ask('worker-a', 0, Number.NaN))],
          ['heartbeat ttl 0', store.heartbeat({ group, owner: 'worker-a', ttlMs: 0 })],
          ['heartbeat empty group', store.heartbeat({ group: '', owner: 'worker-a', ttlMs: 1000 })],
          ['release negative epoch', store.releaseLease({ group, partition: 0, owner: 'worker-a', epoch: -1 })],
          ['leave empty owner', store.leaveGroup({ group, owner: '' })],
          ['leases of an empty group', store.leases('')],
        ];
        for (const [what, call] of bad) {
          const err = await rejection(call);
          assert.ok(err instanceof ConfigError, `${what}: got ${String(err)}`);
        }
        assert.deepEqual(await store.leases(), []);
      });
    });

    describe('waits', () => {
      it('waitForPublish resolves early after a publishing transaction commits', async ({ store, context }) => {
        // A first wait sets up what the store listens with (a LISTEN connection, a change stream).
        await store.waitForPublish(1);
        const started = Date.now();
        const waiting = store.waitForPublish(60_000);
        await context.withTransaction((tx) => new Outbox(store).publish(tx, { topic: 'orders', key: 'k', value: 'v' }));
        await within(waiting, GUARD_MS, 'waitForPublish(60_000) to end after a commit');
        assert.ok(Date.now() - started < GUARD_MS);
      });

      it('waitForPublish resolves after its timeout when nothing is published', async ({ store }) => {
        // Stores may wake spuriously ("something may have been published"), so one of a few waits must run its course.
        let longest = 0;
        for (let i = 0; i < 5 && longest < 90; i++) {
          const started = Date.now();
          await within(store.waitForPublish(100), GUARD_MS, 'waitForPublish(100) to end after its timeout');
          longest = Math.max(longest, Date.now() - started);
        }
        assert.ok(longest >= 90, `no wait lasted its timeout; the longest took ${longest} ms`);
      });

      it('close() wakes the waits in progress', async ({ store }) => {
        await store.waitForPublish(1);
        const waiting = store.waitForPublish(60_000);
        await store.close();
        await within(waiting, GUARD_MS, 'close() to end waitForPublish(60_000)');
      });
    });
  });
}

/** A record with every field set; `id` names it. */
function record(id: string, fields: Partial<PendingRecord> = {}): PendingRecord {
  return {
    id,
    topic: 'orders',
    key: `k-${id}`,
    value: Buffer.from([0, 1, 254, 255]),
    headers: { 'trace-id': id, 'a.b': '$x' },
    createdAt: Date.now(),
    ...fields,
  };
}

/** Appends records to a partition in a transaction of their own. */
async function append<H>(context: TransactionContext<H>, store: OutboxStore<H>, partition: number, records: PendingRecord[]): Promise<void> {
  await context.withTransaction((tx) => store.append(tx.handle, partition, records));
}

/** Polls `check` until it holds, failing after {@link GUARD_MS}: waiting for a condition, never for a time. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + GUARD_MS;
  for (let delay = 1; !check(); delay = Math.min(delay * 2, 50)) {
    if (Date.now() > deadline) throw new assert.AssertionError({ message: `timed out after ${GUARD_MS} ms waiting for ${what}` });
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/** Resolves with `p`, or fails naming `what` when it takes longer than `ms`. */
async function within(p: Promise<void>, ms: number, what: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new assert.AssertionError({ message: `timed out after ${ms} ms waiting for ${what}` })), ms);
  });
  try {
    await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

function globalTestApi(): TestApi {
  const g = globalThis as { describe?: TestApi['describe']; it?: TestApi['it'] };
  if (typeof g.describe !== 'function' || typeof g.it !== 'function') {
    throw new ConfigError(
      "testOutboxStore needs your test framework's functions: pass { test: { describe, it } } " +
        "(e.g. import { describe, it } from 'vitest'), or enable its globals",
    );
  }
  return { describe: g.describe, it: g.it };
}
