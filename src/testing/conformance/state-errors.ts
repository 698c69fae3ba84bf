import assert from 'node:assert/strict';
import { ConfigError, TransactionStateError } from '../../core/index.js';
import { rejection } from './support.js';
import type { SuiteKit } from './support.js';

/** The 'state errors' cases: illegal calls and bad options are refused with typed errors. */
export function stateErrorCases<H>({ describe, it }: SuiteKit<H>): void {
  describe('state errors', () => {
    it('illegal calls throw TransactionStateError naming the state and method', async (s) => {
      const tx = await s.context.begin();
      await tx.commit();
      for (const call of [() => tx.commit(), () => tx.abort()]) {
        const err = await rejection(call());
        assert.ok(err instanceof TransactionStateError, `expected TransactionStateError, got ${String(err)}`);
        assert.equal(err.state, 'committed');
        assert.match(err.message, /committed/);
      }
      assert.throws(() => tx.afterCommit(() => undefined), TransactionStateError);
      const aborted = await s.context.begin();
      await aborted.abort();
      const err = await rejection(aborted.commit());
      assert.ok(err instanceof TransactionStateError);
      assert.equal(err.method, 'commit');
      assert.equal(err.state, 'aborted');
    });

    it('a joined scope cannot commit the transaction it joined', async (s) => {
      await s.context.withTransaction(async () => {
        await s.context.withTransaction(async (inner) => {
          const err = await rejection(inner.commit());
          assert.ok(err instanceof TransactionStateError && err.code === 'JOINED_COMMIT');
        });
      });
    });

    it('bad options give ConfigError before any work', async (s) => {
      let runs = 0;
      const run = async (): Promise<void> => void (runs += 1);
      const bad: object[] = [
        { propagation: 'sometimes' },
        { timeoutMs: -1 },
        { retry: { deadlineMs: 0 } },
        { retry: { jitter: 'some' } },
        { signal: 'stop' },
      ];
      for (const options of bad) {
        const err = await rejection(s.context.withTransaction(run, options as never));
        assert.ok(err instanceof ConfigError, `expected ConfigError for ${JSON.stringify(options)}, got ${String(err)}`);
      }
      assert.equal(runs, 0);
    });
  });
}
