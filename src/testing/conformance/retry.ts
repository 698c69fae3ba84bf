import assert from 'node:assert/strict';
import { TransactionTimeoutError, TransientTransactionError, TxkitError } from '../../core/index.js';
import { injectFaults } from '../inject-faults.js';
import { FAST, rejection } from './support.js';
import type { SuiteKit } from './support.js';

/** The 'retry' cases: what reruns a unit, what bounds the reruns, and what is never rerun. */
export function retryCases<H>({ describe, it, uniq }: SuiteKit<H>): void {
  describe('retry', () => {
    it('a transient callback failure reruns the whole unit; only the last attempt commits', async (s) => {
      const base = uniq('transient');
      const faults = injectFaults(s.context, { on: 'callback', as: 'transient', times: 2 });
      const attempts: number[] = [];
      await s.context.withTransaction(
        async (tx) => {
          attempts.push(tx.attempt);
          await s.write(tx, `${base}-${tx.attempt}`, `attempt ${tx.attempt}`);
        },
        { retry: FAST },
      );
      assert.deepEqual(attempts, [1, 2, 3]);
      assert.equal(faults.injected, 2);
      assert.equal(await s.read(`${base}-1`), undefined);
      assert.equal(await s.read(`${base}-2`), undefined);
      assert.equal(await s.read(`${base}-3`), 'attempt 3');
    });

    it('a TransientTransactionError thrown by user code is retried too', async (s) => {
      const key = uniq('user-transient');
      let runs = 0;
      await s.context.withTransaction(
        async (tx) => {
          runs += 1;
          await s.write(tx, key, `run ${runs}`);
          if (runs < 3) throw new TransientTransactionError('try again');
        },
        { retry: FAST },
      );
      assert.equal(runs, 3);
      assert.equal(await s.read(key), 'run 3');
    });

    it('a transient failure at begin or at commit reruns the unit', async (s) => {
      const key = uniq('begin-commit-transient');
      injectFaults(s.context, { on: 'begin', as: 'transient', times: 1 });
      injectFaults(s.context, { on: 'commit', as: 'transient', times: 1 });
      const attempts: number[] = [];
      await s.context.withTransaction(
        async (tx) => {
          attempts.push(tx.attempt);
          await s.write(tx, `${key}-${tx.attempt}`, 'x');
        },
        { retry: FAST },
      );
      // Attempt 1 failed at begin before the callback; attempt 2 failed at commit; attempt 3 committed.
      assert.deepEqual(attempts, [2, 3]);
      assert.equal(await s.read(`${key}-2`), undefined);
      assert.equal(await s.read(`${key}-3`), 'x');
    });

    // The reply lost: the commit was applied, so recovery must find it and never apply it twice.
    // The request lost: it never arrived, so recovery must apply it once or report it not applied.
    for (const lost of ['reply', 'request'] as const) {
      it(`an unknown commit result (its ${lost} lost) is resolved without losing or repeating the commit, or reported as unknown`, async (s) => {
        const key = uniq(`commit-unknown-${lost}`);
        const faults = injectFaults(s.context, { on: 'commit', as: 'commit-unknown', times: 2, lost });
        let runs = 0;
        let failure: unknown;
        try {
          await s.context.withTransaction(
            async (tx) => {
              runs += 1;
              await s.write(tx, `${key}-${runs}`, 'once');
            },
            { retry: FAST },
          );
        } catch (err) {
          failure = err;
        }
        assert.equal(faults.injected, 2);
        const present: number[] = [];
        for (let run = 1; run <= runs; run++) if ((await s.read(`${key}-${run}`)) !== undefined) present.push(run);
        if (failure === undefined) {
          // Resolved: exactly one run's writes are there, the last one's (an earlier run may only have rerun after a definite rollback).
          assert.deepEqual(present, [runs], `the commit was reported done, so exactly run ${runs}'s write must be there, found runs [${present.join(', ')}]`);
          if (lost === 'reply') assert.equal(runs, 1, 'a commit whose reply was lost was applied: the unit must not run again');
        } else {
          // The adapter cannot resolve an unknown commit: the caller hears it, and nothing ran twice.
          assert.ok(failure instanceof TxkitError && failure.code === 'COMMIT_UNKNOWN' || failure instanceof TxkitError && failure.code === 'INJECTED_COMMIT_UNKNOWN', String(failure));
          assert.equal(runs, 1);
          assert.deepEqual(present, lost === 'reply' ? [1] : [], `with the ${lost} lost, found runs [${present.join(', ')}]`);
        }
      });
    }

    it('the deadline ends retries with TransactionTimeoutError carrying the last error', async (s) => {
      const key = uniq('deadline');
      // Warm up first, so connecting a client is not what uses up the deadline.
      await s.context.withTransaction(async () => undefined);
      injectFaults(s.context, { on: 'callback', as: 'transient', times: Number.POSITIVE_INFINITY });
      let runs = 0;
      const err = await rejection(
        s.context.withTransaction(
          async (tx) => {
            runs += 1;
            await s.write(tx, key, 'never');
          },
          { retry: { deadlineMs: 150, ...FAST } },
        ),
      );
      assert.ok(err instanceof TransactionTimeoutError, `expected TransactionTimeoutError, got ${String(err)}`);
      assert.equal(err.code, 'RETRY_DEADLINE');
      assert.ok(err.cause instanceof TransientTransactionError);
      assert.ok(runs >= 1);
      assert.equal(await s.read(key), undefined);
    });

    it('maxAttempts bounds the reruns and the last error comes back as it is', async (s) => {
      injectFaults(s.context, { on: 'callback', as: 'transient', times: 10 });
      let runs = 0;
      const err = await rejection(
        s.context.withTransaction(
          async () => {
            runs += 1;
          },
          { retry: { maxAttempts: 3, ...FAST } },
        ),
      );
      assert.equal(runs, 3);
      assert.ok(err instanceof TransientTransactionError);
    });

    it('retry: false runs the unit once', async (s) => {
      injectFaults(s.context, { on: 'callback', as: 'transient', times: 1 });
      let runs = 0;
      const err = await rejection(s.context.withTransaction(async () => void (runs += 1), { retry: false }));
      assert.equal(runs, 1);
      assert.ok(err instanceof TransientTransactionError);
    });

    it('a fatal error is thrown at once and not retried', async (s) => {
      injectFaults(s.context, { on: 'commit', as: 'fatal', times: 1 });
      const key = uniq('fatal');
      let runs = 0;
      const err = await rejection(
        s.context.withTransaction(async (tx) => {
          runs += 1;
          await s.write(tx, key, 'never');
        }),
      );
      assert.equal(runs, 1);
      assert.ok(err instanceof TxkitError && err.code === 'INJECTED_FATAL');
      assert.equal(await s.read(key), undefined);
    });
  });
}
