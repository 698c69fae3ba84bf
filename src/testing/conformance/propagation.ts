import assert from 'node:assert/strict';
import { TransactionPropagationError, TransactionStateError } from '../../core/index.js';
import { rejection } from './support.js';
import type { SuiteKit } from './support.js';

/** The 'propagation' cases: how a call inside a running transaction joins, nests in or avoids it. */
export function propagationCases<H>({ describe, it, uniq, caps }: SuiteKit<H>): void {
  describe('propagation', () => {
    it('required joins the running transaction; current() tells which one', async (s) => {
      const key = uniq('required');
      assert.equal(s.context.current(), undefined);
      await s.context.withTransaction(async (outer) => {
        assert.equal(s.context.current()?.id, outer.id);
        await s.context.withTransaction(async (inner) => {
          assert.equal(inner.id, outer.id);
          await s.write(inner, key, 'joined');
        });
        assert.equal(await s.read(key), undefined, 'not visible before the outer commit');
      });
      assert.equal(await s.read(key), 'joined');
      assert.equal(s.context.current(), undefined);
    });

    it('a failure in a joined scope makes the transaction rollback-only, even if caught', async (s) => {
      const key = uniq('rollback-only');
      const err = await rejection(
        s.context.withTransaction(async (outer) => {
          await s.write(outer, key, 'never');
          await rejection(
            s.context.withTransaction(async () => {
              throw new Error('inner failed');
            }),
          );
        }),
      );
      assert.ok(err instanceof TransactionStateError && err.code === 'ROLLBACK_ONLY');
      assert.equal(await s.read(key), undefined);
    });

    it(
      'requires_new runs an independent transaction that commits even when the outer aborts',
      async (s) => {
        const inner = uniq('requires-new-inner');
        const outer = uniq('requires-new-outer');
        await rejection(
          s.context.withTransaction(async (tx) => {
            await s.write(tx, outer, 'never');
            await s.context.withTransaction(
              async (tx2) => {
                assert.notEqual(tx2.id, tx.id);
                assert.equal(s.context.current()?.id, tx2.id);
                await s.write(tx2, inner, 'independent');
              },
              { propagation: 'requires_new' },
            );
            assert.equal(s.context.current()?.id, tx.id, 'the outer transaction is ambient again');
            throw new Error('outer fails');
          }),
        );
        assert.equal(await s.read(inner), 'independent');
        assert.equal(await s.read(outer), undefined);
      },
      caps.concurrentTransactions,
    );

    it(
      'nested rolls back only the inner scope on failure; the outer commits',
      async (s) => {
        const a = uniq('nested-outer');
        const b = uniq('nested-inner-bad');
        const c = uniq('nested-inner-good');
        const aborted: unknown[] = [];
        await s.context.withTransaction(async (tx) => {
          await s.write(tx, a, 'outer');
          await rejection(
            s.context.withTransaction(
              async (sp) => {
                sp.afterAbort((r) => void aborted.push(r));
                await s.write(sp, b, 'undone');
                throw new Error('inner failed');
              },
              { propagation: 'nested' },
            ),
          );
          await s.context.withTransaction(async (sp) => s.write(sp, c, 'kept'), { propagation: 'nested' });
          assert.deepEqual(aborted, [], 'savepoint hooks wait for the outermost end');
        });
        assert.equal(await s.read(a), 'outer');
        assert.equal(await s.read(b), undefined);
        assert.equal(await s.read(c), 'kept');
        assert.equal(aborted.length, 1);
      },
      caps.savepoints,
    );

    it(
      'nested without savepoints throws TransactionPropagationError',
      async (s) => {
        await s.context.withTransaction(async () => {
          const err = await rejection(s.context.withTransaction(async () => 1, { propagation: 'nested' }));
          assert.ok(err instanceof TransactionPropagationError);
        });
      },
      !caps.savepoints,
    );

    it('nested with no running transaction starts one', async (s) => {
      const key = uniq('nested-top');
      await s.context.withTransaction(async (tx) => s.write(tx, key, 'top'), { propagation: 'nested' });
      assert.equal(await s.read(key), 'top');
    });

    it('mandatory needs a running transaction and joins it', async (s) => {
      const err = await rejection(s.context.withTransaction(async () => 1, { propagation: 'mandatory' }));
      assert.ok(err instanceof TransactionPropagationError);
      await s.context.withTransaction(async (outer) => {
        await s.context.withTransaction(async (inner) => assert.equal(inner.id, outer.id), { propagation: 'mandatory' });
      });
    });

    it('never refuses a running transaction and otherwise runs without one', async (s) => {
      assert.equal(await s.context.withTransaction(async (tx) => tx, { propagation: 'never' }), undefined);
      await s.context.withTransaction(async () => {
        const err = await rejection(s.context.withTransaction(async () => 1, { propagation: 'never' }));
        assert.ok(err instanceof TransactionPropagationError);
      });
    });

    it('supports joins a running transaction or runs without one', async (s) => {
      assert.equal(await s.context.withTransaction(async (tx) => tx, { propagation: 'supports' }), undefined);
      await s.context.withTransaction(async (outer) => {
        const id = await s.context.withTransaction(async (tx) => tx?.id, { propagation: 'supports' });
        assert.equal(id, outer.id);
      });
    });

    it('not_supported suspends the running transaction for its callback', async (s) => {
      await s.context.withTransaction(async (outer) => {
        await s.context.withTransaction(
          async (tx) => {
            assert.equal(tx, undefined);
            assert.equal(s.context.current(), undefined);
          },
          { propagation: 'not_supported' },
        );
        assert.equal(s.context.current()?.id, outer.id);
      });
    });
  });
}
