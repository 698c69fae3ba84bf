/**
 * The commit of a root transaction, on a driver whose commit the test holds
 * and releases: what callers see while it runs and after it ended, on the
 * plain path (nothing in its way) and on the paths that check first.
 */
import { describe, expect, it } from 'vitest';
import { TransactionStateError, createTransactionContext, trackWork } from '../../src/core/index.js';
import type { DriverTransaction, TransactionDriver } from '../../src/core/index.js';
import { COMMIT_DONE, COMMIT_FAILED, SEND_COMMIT } from '../../src/core/transaction.js';
import { deferred } from '../support/deferred.js';
import type { Deferred } from '../support/deferred.js';

/** Each transaction's commit waits for the test (`held`), or does what `commit` says at once. */
function heldDriver(commit: 'held' | 'throws' | 'returns-undefined' | 'rejects') {
  const events: string[] = [];
  const held: Deferred<void>[] = [];
  const driver: TransactionDriver<object> = {
    backend: 'memory',
    begin: async () => {
      const tx: DriverTransaction<object> = {
        handle: {},
        commit: () => {
          events.push('commit');
          if (commit === 'throws') throw new Error('commit refused at once');
          if (commit === 'rejects') return Promise.reject(new Error('commit refused'));
          if (commit === 'returns-undefined') return undefined as unknown as Promise<void>;
          const d = deferred();
          held.push(d);
          return d.promise;
        },
        rollback: async () => {
          events.push('rollback');
        },
      };
      return tx;
    },
    classify: () => 'fatal',
    close: async () => undefined,
  };
  return { driver, events, held };
}

/** What `work` rejected with (undefined when it resolved). */
function rejectionOf(work: Promise<unknown>): Promise<unknown> {
  return work.then(
    () => undefined,
    (err: unknown) => err,
  );
}

/** The refusal of a call on a transaction that has ended: it names the state, not a commit or abort in progress. */
function expectEndedRefusal(err: unknown): void {
  expect(err).toBeInstanceOf(TransactionStateError);
  expect((err as Error).message).not.toMatch(/in progress/);
}

describe('commit of a root transaction', () => {
  it('refuses a second commit or an abort while the commit runs, and reports the committed state once it has ended', async () => {
    const { driver, held } = heldDriver('held');
    const ctx = createTransactionContext(driver);
    const tx = await ctx.begin();
    const committing = tx.commit();
    expect(tx.state).toBe('committing');
    await expect(tx.commit()).rejects.toThrow(/not allowed while a commit or abort of this memory transaction is in progress/);
    await expect(tx.abort()).rejects.toThrow(/not allowed while a commit or abort of this memory transaction is in progress/);
    held[0]?.resolve();
    await committing;
    expect(tx.state).toBe('committed');
    // No longer in progress: the refusal names the ended state instead.
    expectEndedRefusal(await rejectionOf(tx.commit()));
    await ctx.close();
  });

  it('resolves only after the afterCommit hooks have run', async () => {
    const { driver, held } = heldDriver('held');
    const ctx = createTransactionContext(driver);
    const tx = await ctx.begin();
    const hookDone = deferred();
    const order: string[] = [];
    tx.afterCommit(async () => {
      order.push('hook started');
      await hookDone.promise;
      order.push('hook ended');
    });
    const committing = tx.commit().then(() => order.push('commit resolved'));
    held[0]?.resolve();
    await expect.poll(() => order).toContain('hook started');
    expect(order).not.toContain('commit resolved');
    hookDone.resolve();
    await committing;
    expect(order).toEqual(['hook started', 'hook ended', 'commit resolved']);
    await ctx.close();
  });

  it.each([
    ['throws synchronously', 'throws'],
    ['rejects', 'rejects'],
  ] as const)('a driver commit that %s: commit() rejects (never throws), the transaction is rolled back and ends aborted', async (_, how) => {
    const { driver, events } = heldDriver(how);
    const ctx = createTransactionContext(driver);
    const tx = await ctx.begin();
    let returned: Promise<void> | undefined;
    expect(() => {
      returned = tx.commit();
    }).not.toThrow();
    await expect(returned).rejects.toThrow(/commit refused/);
    expect(events).toEqual(['commit', 'rollback']);
    expect(tx.state).toBe('aborted');
    await ctx.close();
  });

  it('a driver commit that returns no promise counts as done', async () => {
    const { driver } = heldDriver('returns-undefined');
    const ctx = createTransactionContext(driver);
    const tx = await ctx.begin();
    await tx.commit();
    expect(tx.state).toBe('committed');
    await ctx.close();
  });

  it('a commit refused before it is sent (work still pending) rolls back, and nothing is in progress afterwards', async () => {
    const { driver, events } = heldDriver('held');
    const ctx = createTransactionContext(driver);
    const tx = await ctx.begin();
    const work = deferred();
    void trackWork(tx, work.promise);
    await expect(tx.commit()).rejects.toMatchObject({ code: 'PENDING_WORK' });
    expect(events).toEqual(['rollback']);
    expect(tx.state).toBe('aborted');
    expectEndedRefusal(await rejectionOf(tx.abort()));
    work.resolve();
    await ctx.close();
  });

  it("keeps the retry loop's own commit steps off a callback's tx by name, and they settle only a commit the loop sent", async () => {
    const { driver, held } = heldDriver('held');
    const ctx = createTransactionContext(driver);
    let named: string[] = [];
    let keyed = false;
    const unit = ctx.withTransaction(async (tx) => {
      named = ['sendCommit', 'committed', 'plainCommitFailed'].filter((name) => name in tx);
      keyed = typeof (tx as unknown as Record<symbol, unknown>)[SEND_COMMIT] === 'function';
      return 'done';
    });
    // The loop sent the unit's commit itself; it settles when the driver's commit does.
    await expect.poll(() => held.length).toBe(1);
    held[0]?.resolve();
    await expect(unit).resolves.toBe('done');
    expect(named).toEqual([]);
    expect(keyed).toBe(true);

    // A commit in flight that the loop did not send (a transaction begun by hand) is not settled by the loop's steps.
    const tx = await ctx.begin();
    const hooks: string[] = [];
    tx.afterCommit(() => void hooks.push('afterCommit'));
    const committing = tx.commit();
    const steps = tx as unknown as Record<symbol, (err?: unknown) => unknown>;
    expect(() => steps[COMMIT_DONE]?.()).toThrow(TransactionStateError);
    expect(() => steps[COMMIT_FAILED]?.(new Error('not this one'))).toThrow(TransactionStateError);
    expect(hooks).toEqual([]);
    expect(tx.state).toBe('committing');
    held[1]?.resolve();
    await committing;
    expect(hooks).toEqual(['afterCommit']);
    expect(tx.state).toBe('committed');
    await ctx.close();
  });
});
