import assert from 'node:assert/strict';
import { AfterCommitHookError } from '../../core/index.js';
import { rejection } from './support.js';
import type { SuiteKit } from './support.js';

/** The 'hooks' cases: when afterCommit and afterAbort hooks run, and what their failures do. */
export function hookCases<H>({ describe, it, uniq }: SuiteKit<H>): void {
  describe('hooks', () => {
    it('afterCommit hooks run after the commit, awaited one by one in registration order', async (s) => {
      const key = uniq('hooks');
      const order: string[] = [];
      await s.context.withTransaction(async (tx) => {
        await s.write(tx, key, 'v');
        tx.afterCommit(async () => {
          assert.equal(await s.read(key), 'v', 'the commit is visible when hooks run');
          await Promise.resolve();
          order.push('first');
        });
        tx.afterCommit(() => void order.push('second'));
        tx.afterAbort(() => void order.push('abort'));
        assert.deepEqual(order, []);
      });
      assert.deepEqual(order, ['first', 'second']);
    });

    it('afterAbort hooks get the reason; afterCommit hooks of an aborted unit never run', async (s) => {
      const reasons: unknown[] = [];
      let committed = false;
      const boom = new Error('boom');
      await rejection(
        s.context.withTransaction(async (tx) => {
          tx.afterCommit(() => void (committed = true));
          tx.afterAbort((r) => void reasons.push(r));
          throw boom;
        }),
      );
      assert.deepEqual(reasons, [boom]);
      assert.equal(committed, false);
    });

    it('hooks of a joined scope fire only when the outermost transaction ends', async (s) => {
      const fired: string[] = [];
      await s.context.withTransaction(async () => {
        await s.context.withTransaction(async (inner) => {
          inner.afterCommit(() => void fired.push('inner'));
        });
        assert.deepEqual(fired, [], 'not before the outermost commit');
      });
      assert.deepEqual(fired, ['inner']);
    });

    it('a failing afterCommit hook does not undo the commit: all hooks run, failures come as one error', async (s) => {
      const key = uniq('hook-fail');
      const ran: number[] = [];
      let runs = 0;
      const e1 = new Error('hook 1');
      const err = await rejection(
        s.context.withTransaction(async (tx) => {
          runs += 1;
          await s.write(tx, key, 'kept');
          tx.afterCommit(() => {
            ran.push(1);
            throw e1;
          });
          tx.afterCommit(() => void ran.push(2));
        }),
      );
      assert.ok(err instanceof AfterCommitHookError);
      assert.deepEqual(err.errors, [e1]);
      assert.deepEqual(ran, [1, 2]);
      assert.equal(runs, 1, 'a hook failure never reruns a committed unit');
      assert.equal(await s.read(key), 'kept');
    });
  });
}
