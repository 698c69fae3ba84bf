import assert from 'node:assert/strict';
import { TransactionStateError } from '../../core/index.js';
import { rejection } from './support.js';
import type { SuiteKit } from './support.js';

/** The 'lifecycle and concurrency' cases: close() and concurrent units on one context. */
export function lifecycleCases<H>({ describe, it, uniq, caps }: SuiteKit<H>): void {
  describe('lifecycle and concurrency', () => {
    it('close() is idempotent and later calls are refused', async (s) => {
      await s.context.close();
      await s.context.close();
      const err = await rejection(s.context.withTransaction(async () => 1));
      assert.ok(err instanceof TransactionStateError && err.code === 'CONTEXT_CLOSED');
    });

    it('close() while a callback runs: the unit fails with CONTEXT_CLOSED and its write is not committed', async (s) => {
      const key = uniq('closed-mid-callback');
      let wrote!: () => void;
      const written = new Promise<void>((resolve) => (wrote = resolve));
      let finish!: () => void;
      const held = new Promise<void>((resolve) => (finish = resolve));
      const unit = s.context.withTransaction(async (tx) => {
        await s.write(tx, key, 'written before close');
        wrote();
        await held;
        return 'returned after close';
      });
      const outcome = unit.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
      await written;
      const closing = s.context.close();
      finish();
      await closing;
      const settled = await outcome;
      assert.ok(
        'error' in settled && settled.error instanceof TransactionStateError && settled.error.code === 'CONTEXT_CLOSED',
        `the unit should fail with CONTEXT_CLOSED, got ${JSON.stringify('value' in settled ? settled : String(settled.error))}`,
      );
      assert.equal(await s.read(key), undefined, 'nothing the aborted unit wrote is visible');
    });

    it(
      'concurrent withTransaction calls on one context do not interfere',
      async (s) => {
        const base = uniq('concurrent');
        const ids = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            s.context.withTransaction(async (tx) => {
              await Promise.resolve();
              assert.equal(s.context.current()?.id, tx.id, 'each unit sees its own ambient transaction');
              await s.write(tx, `${base}-${i}`, `value ${i}`);
              if (i % 2 === 1) throw new Error(`unit ${i} fails`);
              return tx.id;
            }).catch(() => undefined),
          ),
        );
        const committed = ids.filter((id) => id !== undefined);
        assert.equal(new Set(committed).size, 4);
        for (let i = 0; i < 8; i++) {
          assert.equal(await s.read(`${base}-${i}`), i % 2 === 0 ? `value ${i}` : undefined);
        }
      },
      caps.concurrentTransactions,
    );
  });
}
