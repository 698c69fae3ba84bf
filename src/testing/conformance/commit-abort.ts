import assert from 'node:assert/strict';
import type { Transaction } from '../../core/index.js';
import { rejection } from './support.js';
import type { SuiteKit } from './support.js';

/** The 'commit and abort' cases: a unit's writes are visible exactly when it committed. */
export function commitAndAbortCases<H>({ describe, it, uniq }: SuiteKit<H>): void {
  describe('commit and abort', () => {
    it('commits: the write is visible after withTransaction returns, with the callback result', async (s) => {
      const key = uniq('commit');
      let seen: Transaction<H> | undefined;
      const result = await s.context.withTransaction(async (tx) => {
        seen = tx;
        assert.equal(tx.state, 'active');
        assert.equal(tx.attempt, 1);
        assert.equal(tx.backend, s.context.backend);
        await s.write(tx, key, 'v1');
        return 42;
      });
      assert.equal(result, 42);
      assert.equal(seen?.state, 'committed');
      assert.equal(await s.read(key), 'v1');
    });

    it('aborts when the callback throws: the same error comes back and nothing is visible', async (s) => {
      const key = uniq('abort');
      const boom = new Error('boom');
      let runs = 0;
      let seen: Transaction<H> | undefined;
      const err = await rejection(
        s.context.withTransaction(async (tx) => {
          runs += 1;
          seen = tx;
          await s.write(tx, key, 'never');
          throw boom;
        }),
      );
      assert.equal(err, boom, 'the original error, not a wrapper');
      assert.equal(runs, 1, 'an unclassified error is never retried');
      assert.equal(seen?.state, 'aborted');
      assert.equal(await s.read(key), undefined);
    });

    it('an explicit tx.abort() in the callback ends the unit without committing', async (s) => {
      const key = uniq('explicit-abort');
      const result = await s.context.withTransaction(async (tx) => {
        await s.write(tx, key, 'never');
        await tx.abort('changed my mind');
        assert.equal(tx.state, 'aborted');
        return 'done';
      });
      assert.equal(result, 'done');
      assert.equal(await s.read(key), undefined);
    });

    it('begin() gives a manual transaction that commits and aborts', async (s) => {
      const k1 = uniq('manual-commit');
      const k2 = uniq('manual-abort');
      const t1 = await s.context.begin();
      await s.write(t1, k1, 'yes');
      await t1.commit();
      const t2 = await s.context.begin();
      await s.write(t2, k2, 'no');
      await t2.abort();
      assert.equal(await s.read(k1), 'yes');
      assert.equal(await s.read(k2), undefined);
    });
  });
}
