/**
 * Cases that need real storage and real concurrency: a write conflict between
 * two concurrent transactions retried to success, and atomicity across
 * collections. They run against a real replica set when one is reachable and
 * against the scripted server always, which models the same rules.
 */
import assert from 'node:assert/strict';
import type { MongoClient } from 'mongodb';
import { mongoTransactions } from '../../src/adapters/mongo/index.js';
import { TransactionTimeoutError } from '../../src/core/index.js';
import type { TestApi } from '../../src/testing/index.js';
import { rejection } from '../../src/testing/index.js';
import { deferred, uniqueName } from './mongo-support.js';
import type { KeyValueDoc } from './mongo-support.js';

const FAST = { initialDelayMs: 1, maxDelayMs: 20 } as const;

export function testMongoDeployment(options: { name: string; test: TestApi; client: () => MongoClient; db: string }): void {
  const { describe, it } = options.test;
  const db = (): ReturnType<MongoClient['db']> => options.client().db(options.db);

  describe(`${options.name}: MongoDB transactions on real storage`, () => {
    it('a write conflict between two concurrent transactions is retried until both increments land', async () => {
      const coll = db().collection<KeyValueDoc>(uniqueName('conflict'));
      await coll.insertOne({ _id: 'counter', n: 0 });
      const ctx = mongoTransactions(options.client());
      const firstWrote = deferred();
      const secondConflicted = deferred();
      let secondRuns = 0;
      let conflictError: unknown;
      try {
        // The first transaction writes, then stays open until the second has hit the conflict.
        const first = ctx.withTransaction(
          async (tx) => {
            await coll.updateOne({ _id: 'counter' }, { $inc: { n: 1 } }, { session: tx.handle });
            firstWrote.resolve();
            await secondConflicted.promise;
          },
          { timeoutMs: 30_000 },
        );
        const second = ctx.withTransaction(
          async (tx) => {
            secondRuns += 1;
            if (secondRuns === 1) await firstWrote.promise;
            try {
              await coll.updateOne({ _id: 'counter' }, { $inc: { n: 1 } }, { session: tx.handle });
            } catch (err) {
              if (secondRuns === 1) {
                conflictError = err;
                secondConflicted.resolve();
              }
              throw err;
            }
          },
          { retry: { ...FAST, deadlineMs: 30_000 } },
        );
        await Promise.all([first, second]);
      } finally {
        secondConflicted.resolve();
        await ctx.close();
      }
      const labels = (conflictError as { errorLabels?: string[] } | undefined)?.errorLabels ?? [];
      assert.equal((conflictError as { codeName?: string } | undefined)?.codeName, 'WriteConflict');
      assert.ok(labels.includes('TransientTransactionError'), `labels: ${labels.join(', ')}`);
      assert.ok(secondRuns >= 2, `the conflicting unit ran ${secondRuns} time(s)`);
      assert.equal((await coll.findOne({ _id: 'counter' }))?.n, 2, 'both increments applied, neither twice');
    });

    it('a transaction over two collections commits both writes or neither', async () => {
      const accounts = db().collection<KeyValueDoc>(uniqueName('accounts'));
      const ledger = db().collection<KeyValueDoc>(uniqueName('ledger'));
      await accounts.insertOne({ _id: 'alice', n: 100 });
      const ctx = mongoTransactions(options.client());
      try {
        const transfer = (id: string, fail: boolean) =>
          ctx.withTransaction(
            async (tx) => {
              await accounts.updateOne({ _id: 'alice' }, { $inc: { n: -10 } }, { session: tx.handle });
              await ledger.insertOne({ _id: id, n: -10 }, { session: tx.handle });
              // Outside the transaction neither write is visible yet.
              assert.equal((await accounts.findOne({ _id: 'alice' }))?.n, 100);
              assert.equal(await ledger.findOne({ _id: id }), null);
              if (fail) throw new Error('transfer rejected');
            },
            { retry: FAST },
          );
        const err = await rejection(transfer('t1', true));
        assert.equal((err as Error).message, 'transfer rejected');
        assert.equal((await accounts.findOne({ _id: 'alice' }))?.n, 100, 'the failed unit changed neither collection');
        assert.equal(await ledger.findOne({ _id: 't1' }), null);
        await transfer('t2', false);
        assert.equal((await accounts.findOne({ _id: 'alice' }))?.n, 90);
        assert.deepEqual(await ledger.findOne({ _id: 't2' }), { _id: 't2', n: -10 });
      } finally {
        await ctx.close();
      }
    });

    it('the retry deadline bounds a unit that keeps conflicting', async () => {
      const coll = db().collection<KeyValueDoc>(uniqueName('blocked'));
      await coll.insertOne({ _id: 'row', n: 0 });
      const ctx = mongoTransactions(options.client());
      const holderWrote = deferred();
      const release = deferred();
      let runs = 0;
      try {
        const holder = ctx.withTransaction(async (tx) => {
          await coll.updateOne({ _id: 'row' }, { $inc: { n: 1 } }, { session: tx.handle });
          holderWrote.resolve();
          await release.promise;
        });
        await holderWrote.promise;
        const err = await rejection(
          ctx.withTransaction(
            async (tx) => {
              runs += 1;
              await coll.updateOne({ _id: 'row' }, { $inc: { n: 1 } }, { session: tx.handle });
            },
            { retry: { ...FAST, deadlineMs: 300 } },
          ),
        );
        assert.ok(err instanceof TransactionTimeoutError && err.code === 'RETRY_DEADLINE', `got ${String(err)}`);
        assert.equal((err.cause as { codeName?: string }).codeName, 'WriteConflict');
        assert.ok(runs >= 2, `ran ${runs} time(s) before the deadline`);
        release.resolve();
        await holder;
        assert.equal((await coll.findOne({ _id: 'row' }))?.n, 1, 'only the holder committed');
      } finally {
        release.resolve();
        await ctx.close();
      }
    });
  });
}
