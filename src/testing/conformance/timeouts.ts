import assert from 'node:assert/strict';
import { TransactionAbortedError, TransactionTimeoutError } from '../../core/index.js';
import type { Transaction } from '../../core/index.js';
import { injectFaults } from '../inject-faults.js';
import { rejection, abortedSignal } from './support.js';
import type { SuiteKit } from './support.js';

/** The 'timeouts and cancellation' cases: timeoutMs and the caller's AbortSignal. */
export function timeoutCases<H>({ describe, it, uniq }: SuiteKit<H>): void {
  describe('timeouts and cancellation', () => {
    it('timeoutMs aborts a transaction that runs too long and frees it', async (s) => {
      // The limit covers begin too: on a loaded machine a 50 ms limit can end the unit before its callback
      // started, which is no test of a callback that runs too long; a longer limit is tried then.
      for (const timeoutMs of [50, 250, 1_000, 5_000]) {
        const key = uniq('timeout');
        let seen: Transaction<H> | undefined;
        const err = await rejection(
          s.context.withTransaction(
            async (tx) => {
              seen = tx;
              await s.write(tx, key, 'never');
              await abortedSignal(tx.signal);
            },
            { timeoutMs },
          ),
        );
        assert.ok(err instanceof TransactionTimeoutError && err.code === 'TX_TIMEOUT', `got ${String(err)}`);
        if (seen === undefined) continue;
        assert.equal(seen.state, 'aborted');
        assert.equal(await s.read(key), undefined);
        return;
      }
      assert.fail('with timeoutMs up to 5000 the limit ended every unit before its callback started: begin takes longer than that');
    });

    it('an already aborted signal stops the unit before begin', async (s) => {
      let runs = 0;
      const err = await rejection(
        s.context.withTransaction(async () => void (runs += 1), { signal: AbortSignal.abort(new Error('stop')) }),
      );
      assert.ok(err instanceof TransactionAbortedError);
      assert.equal(runs, 0);
    });

    it('a signal fired during the callback aborts the transaction', async (s) => {
      const key = uniq('signal');
      const controller = new AbortController();
      const err = await rejection(
        s.context.withTransaction(
          async (tx) => {
            await s.write(tx, key, 'never');
            controller.abort(new Error('user cancelled'));
            await abortedSignal(tx.signal);
          },
          { signal: controller.signal },
        ),
      );
      assert.ok(err instanceof TransactionAbortedError);
      assert.equal(await s.read(key), undefined);
    });

    it('a signal fired during the retry back-off stops retrying', async (s) => {
      const controller = new AbortController();
      injectFaults(s.context, { on: 'callback', as: 'transient', times: Number.POSITIVE_INFINITY });
      let runs = 0;
      const err = await rejection(
        s.context.withTransaction(
          async (tx) => {
            runs += 1;
            // Fires once attempt 1 has aborted, i.e. while the loop waits out its back-off.
            tx.afterAbort(() => void setImmediate(() => controller.abort()));
          },
          { signal: controller.signal, retry: { initialDelayMs: 10_000, maxDelayMs: 10_000, jitter: 'none' } },
        ),
      );
      assert.ok(err instanceof TransactionAbortedError, `got ${String(err)}`);
      assert.equal(runs, 1, 'aborted while waiting for the first rerun');
    });
  });
}
