import { describe, expect, it, vi } from 'vitest';
import {
  TransactionTimeoutError,
  TxkitError,
  UnknownCommitResultError,
  backoffDelay,
  createTransactionContext,
  resolveRetryPolicy,
} from '../../src/core/index.js';
import type { NativeErrorCode, Transaction } from '../../src/core/index.js';
import { rejection } from '../../src/testing/index.js';
import { DriverFault, ScriptedDriver } from '../support/scripted-driver.js';
import type { AttemptScript, ScriptedDriverOptions } from '../support/scripted-driver.js';

const FAST = { initialDelayMs: 0, maxDelayMs: 0 };

function setup(script: AttemptScript[], settle: ScriptedDriverOptions['settle'] = 'none') {
  const driver = new ScriptedDriver({ script, settle });
  const ctx = createTransactionContext(driver, { retry: FAST });
  let runs = 0;
  const unit = (tx: Transaction<{ write(effect: string): void }>): Promise<string> => {
    runs += 1;
    tx.handle.write(`effect of run ${runs}`);
    return Promise.resolve(`result ${runs}`);
  };
  return { driver, ctx, unit, runs: () => runs };
}

describe('runTransaction: the rules of DESIGN section 3', () => {
  it('step 2: a transient native error reruns the unit; only the run that committed is applied', async () => {
    const { driver, ctx, unit, runs } = setup([{ commit: 'transient' }, { commit: 'transient' }, {}]);
    expect(await ctx.withTransaction(unit)).toBe('result 3');
    expect(runs()).toBe(3);
    expect(driver.applied).toEqual(['effect of run 3']);
  });

  it('step 2: a failed abort never hides the error that caused it; it is attached as abortError', async () => {
    const { ctx } = setup([{ rollbackFails: true }]);
    const original = new TxkitError('MY_CODE' as NativeErrorCode, 'callback failed');
    const err = await rejection(
      ctx.withTransaction(async () => {
        throw original;
      }),
    );
    expect(err).toBe(original);
    expect(original.abortError).toBeInstanceOf(DriverFault);
  });

  it('step 4: an unknown commit that the driver resolves as committed succeeds without rerunning', async () => {
    const { driver, ctx, unit, runs } = setup([{ commit: 'unknown-applied' }], 'resolve');
    expect(await ctx.withTransaction(unit)).toBe('result 1');
    expect(runs()).toBe(1);
    expect(driver.applied).toEqual(['effect of run 1']);
  });

  it('step 4: an unknown commit that the driver resolves as rolled back reruns the unit, applied once', async () => {
    const { driver, ctx, unit, runs } = setup([{ commit: 'unknown-lost' }, {}], 'resolve');
    expect(await ctx.withTransaction(unit)).toBe('result 2');
    expect(runs()).toBe(2);
    expect(driver.applied).toEqual(['effect of run 2']);
  });

  it('step 4: a driver that can resend the commit gets the commit resent, never the callback', async () => {
    const { driver, ctx, unit, runs } = setup([{ commit: 'unknown-lost' }], 'recommit');
    await ctx.withTransaction(unit);
    expect(runs()).toBe(1);
    expect(driver.events).toEqual(['begin', 'commit', 'recommit']);
    expect(driver.applied).toEqual(['effect of run 1']);
  });

  it('step 4: a driver that can neither resolve nor resend gives UnknownCommitResultError; the unit is not rerun', async () => {
    const { driver, ctx, unit, runs } = setup([{ commit: 'unknown-applied' }, {}], 'none');
    let tx: Transaction<unknown> | undefined;
    const hooks: string[] = [];
    const err = await rejection(
      ctx.withTransaction(async (t) => {
        tx = t;
        t.afterCommit(() => void hooks.push('commit'));
        t.afterAbort(() => void hooks.push('abort'));
        return unit(t);
      }),
    );
    expect(err).toBeInstanceOf(UnknownCommitResultError);
    expect((err as UnknownCommitResultError).cause).toBeInstanceOf(DriverFault);
    expect(runs()).toBe(1);
    expect(tx?.state).toBe('failed');
    // An unknown outcome fires neither hook.
    expect(hooks).toEqual([]);
    expect(driver.applied).toEqual(['effect of run 1']);
  });

  it('step 5: the deadline ends commit retries with TransactionTimeoutError and the last error as cause', async () => {
    const driver = new ScriptedDriver({ script: [{ commit: 'unknown-lost' }], settle: 'resolve' });
    // resolveCommit keeps answering 'unknown': the outcome cannot be learnt in time.
    const begin = driver.begin.bind(driver);
    driver.begin = async () => Object.assign(await begin(), { resolveCommit: async () => 'unknown' as const });
    const ctx = createTransactionContext(driver, { retry: { deadlineMs: 30, initialDelayMs: 1, maxDelayMs: 2 } });
    let tx: Transaction<unknown> | undefined;
    const err = await rejection(ctx.withTransaction(async (t) => void (tx = t)));
    expect(err).toBeInstanceOf(TransactionTimeoutError);
    expect((err as TransactionTimeoutError).code).toBe('RETRY_DEADLINE');
    expect((err as TransactionTimeoutError).cause).toBeInstanceOf(UnknownCommitResultError);
    expect(tx?.state).toBe('failed');
  });

  it('a fatal native error at commit is rethrown as it is, after releasing the transaction', async () => {
    const { driver, ctx, unit } = setup([{ commit: 'fatal' }]);
    const err = await rejection(ctx.withTransaction(unit));
    expect(err).toBeInstanceOf(DriverFault);
    expect(driver.events).toEqual(['begin', 'commit', 'rollback']);
    expect(driver.applied).toEqual([]);
  });

  it('a failing afterAbort hook goes to onHookError and never replaces the error', async () => {
    const driver = new ScriptedDriver({ script: [{}], settle: 'none' });
    const onHookError = vi.fn();
    const ctx = createTransactionContext(driver, { onHookError });
    const original = new Error('callback failed');
    const hookError = new Error('hook failed');
    const err = await rejection(
      ctx.withTransaction(async (tx) => {
        tx.afterAbort(() => {
          throw hookError;
        });
        throw original;
      }),
    );
    expect(err).toBe(original);
    expect(onHookError).toHaveBeenCalledWith(hookError, expect.objectContaining({ hook: 'afterAbort', backend: 'memory' }));
  });

  it('close() aborts transactions still open and closes the driver once', async () => {
    const driver = new ScriptedDriver({ script: [{}], settle: 'none' });
    const ctx = createTransactionContext(driver);
    const tx = await ctx.begin();
    await Promise.all([ctx.close(), ctx.close()]);
    expect(tx.state).toBe('aborted');
    expect(driver.closed).toBe(1);
  });

  it('timeoutMs interrupts the driver, then rolls back', async () => {
    const driver = new ScriptedDriver({ script: [{}], settle: 'none' });
    const begin = driver.begin.bind(driver);
    driver.begin = async () =>
      Object.assign(await begin(), { interrupt: async () => void driver.events.push('interrupt') });
    const ctx = createTransactionContext(driver);
    const err = await rejection(
      ctx.withTransaction((tx) => new Promise((resolve) => tx.signal.addEventListener('abort', resolve)), { timeoutMs: 20 }),
    );
    expect(err).toBeInstanceOf(TransactionTimeoutError);
    expect(driver.events).toEqual(['begin', 'interrupt', 'rollback']);
  });
});

describe('retry policy', () => {
  it('backs off by random[0,1) * min(initial * multiplier^(n-1), max)', () => {
    const p = resolveRetryPolicy({ initialDelayMs: 10, multiplier: 2, maxDelayMs: 50 });
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(p, n, () => 0.5))).toEqual([5, 10, 20, 25, 25]);
    const none = resolveRetryPolicy({ initialDelayMs: 10, multiplier: 2, maxDelayMs: 50, jitter: 'none' });
    expect([1, 2, 3, 4].map((n) => backoffDelay(none, n))).toEqual([10, 20, 40, 50]);
  });

  it('has the documented defaults', () => {
    expect(resolveRetryPolicy(undefined)).toEqual({
      deadlineMs: 120_000,
      maxAttempts: Number.POSITIVE_INFINITY,
      initialDelayMs: 5,
      maxDelayMs: 500,
      multiplier: 1.5,
      jitter: 'full',
    });
  });
});
