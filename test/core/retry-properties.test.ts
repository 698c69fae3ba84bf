/**
 * Property tests of the retry loop under random fault schedules: the
 * callback's effects commit at most once, the loop ends by the deadline, and
 * the error that comes out is never a replacement for the one that happened.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  TransactionTimeoutError,
  TransientTransactionError,
  UnknownCommitResultError,
  classifyKnown,
} from '../../src/core/index.js';
import { FaultRegistry } from '../../src/core/faults.js';
import { runTransaction } from '../../src/core/run-transaction.js';
import type { LoopClock, UnitHost } from '../../src/core/run-transaction.js';
import { RootTransaction } from '../../src/core/transaction.js';
import { memoryTransactions } from '../../src/adapters/memory/index.js';
import { injectFaults } from '../../src/testing/index.js';
import { DriverFault, ScriptedDriver } from '../support/scripted-driver.js';
import type { AttemptScript } from '../support/scripted-driver.js';

const attemptArb: fc.Arbitrary<AttemptScript> = fc.record(
  {
    begin: fc.constantFrom<'ok' | 'transient'>('ok', 'ok', 'ok', 'transient'),
    commit: fc.constantFrom('ok', 'transient', 'transient', 'fatal', 'unknown-applied', 'unknown-lost'),
    rollbackFails: fc.boolean(),
  },
  { requiredKeys: [] },
);

const scenarioArb = fc.record({
  script: fc.array(attemptArb, { minLength: 1, maxLength: 12 }),
  settle: fc.constantFrom<'resolve' | 'recommit' | 'none'>('resolve', 'recommit', 'none'),
  callbackThrows: fc.array(fc.constantFrom<'no' | 'transient' | 'fatal'>('no', 'no', 'transient', 'fatal'), { maxLength: 12 }),
  deadlineMs: fc.integer({ min: 1, max: 400 }),
  maxAttempts: fc.oneof(fc.constant(Number.POSITIVE_INFINITY), fc.integer({ min: 1, max: 8 })),
  opCostMs: fc.integer({ min: 0, max: 30 }),
  seed: fc.integer(),
});

describe('retry loop properties', () => {
  it('effects commit at most once, the loop stops by the deadline, errors are never replaced', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (sc) => {
        const driver = new ScriptedDriver({ script: sc.script, settle: sc.settle });
        let t = 0;
        let latestSleepEnd = 0;
        const clock: LoopClock = {
          now: () => t,
          sleep: async (ms) => {
            t += ms;
            latestSleepEnd = t;
          },
        };
        const faults = new FaultRegistry();
        const thrown = new Set<unknown>();
        const host: UnitHost<{ write(e: string): void }> = {
          backend: 'memory',
          faults,
          begin: async () => {
            t += sc.opCostMs;
            return driver.begin();
          },
          adopt: (dtx, attempt) => {
            const deps = {
              backend: 'memory' as const,
              faults,
              classify: (e: unknown) => classifyKnown(e) ?? driver.classify(e),
              onAbortHookError: () => undefined,
            };
            return new RootTransaction(dtx, deps, attempt, {});
          },
          refusal: () => undefined,
          runScoped: (tx, fn) => tx.run(host, fn),
          classify: (e) => classifyKnown(e) ?? driver.classify(e),
        };
        let runs = 0;
        const policy = {
          deadlineMs: sc.deadlineMs,
          maxAttempts: sc.maxAttempts,
          initialDelayMs: 1,
          maxDelayMs: 50,
          multiplier: 1.5,
          jitter: 'full' as const,
        };
        let outcome: { ok: true; value: number } | { ok: false; error: unknown };
        try {
          const value = await runTransaction(
            host,
            async (tx) => {
              const run = ++runs;
              t += sc.opCostMs;
              tx.handle.write(`run ${run}`);
              const mode = sc.callbackThrows[run - 1] ?? 'no';
              if (mode !== 'no') {
                const e = mode === 'transient' ? new TransientTransactionError('callback conflict') : new Error('callback bug');
                thrown.add(e);
                throw e;
              }
              return run;
            },
            policy,
            {},
            clock,
          );
          outcome = { ok: true, value };
        } catch (error) {
          outcome = { ok: false, error };
        }

        // At most once: no run's effect is ever applied twice, and at most one run's effect is applied.
        expect(driver.applied.length).toBeLessThanOrEqual(1);
        if (outcome.ok) {
          // The returned result belongs to the run whose effect is durable.
          expect(driver.applied).toEqual([`run ${outcome.value}`]);
        }
        // The loop never sleeps past the deadline; only an operation already running can overrun it.
        expect(latestSleepEnd).toBeLessThan(sc.deadlineMs);
        expect(t).toBeLessThanOrEqual(sc.deadlineMs + 3 * sc.opCostMs);
        if (!outcome.ok) {
          const e = outcome.error;
          // What really happened: a native fault, a callback's own error, or the news that an
          // unknown commit was in fact rolled back (which the driver learnt, and which the loop reports).
          const original = (x: unknown): boolean =>
            x instanceof DriverFault ||
            thrown.has(x) ||
            (x instanceof TransientTransactionError && x.code === 'COMMIT_ROLLED_BACK' && x.cause instanceof UnknownCommitResultError);
          const acceptable =
            original(e) ||
            e instanceof UnknownCommitResultError ||
            (e instanceof TransactionTimeoutError && (original(e.cause) || e.cause instanceof UnknownCommitResultError));
          expect(acceptable, `unexpected error ${String(e)}`).toBe(true);
          // A fatal error thrown by the callback comes back as the very same object.
          if (e instanceof Error && e.message === 'callback bug') expect(thrown.has(e)).toBe(true);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('on the memory backend, concurrent increments under random faults and real conflicts count each success once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 12 }),
        fc.array(
          fc.record({ on: fc.constantFrom('begin', 'callback', 'commit' as const), as: fc.constantFrom('transient', 'commit-unknown', 'fatal' as const) }),
          { maxLength: 4 },
        ),
        async (workers, plan) => {
          const ctx = memoryTransactions({ retry: { initialDelayMs: 0, maxDelayMs: 1, deadlineMs: 5_000 } });
          for (const f of plan) {
            if (f.as === 'commit-unknown' && f.on !== 'commit') continue;
            injectFaults(ctx, { on: f.on, as: f.as, times: 1 });
          }
          const results = await Promise.allSettled(
            Array.from({ length: workers }, () =>
              ctx.withTransaction(async (tx) => {
                const n = ((await tx.handle.get('counter')) as number | undefined) ?? 0;
                await tx.handle.set('counter', n + 1);
              }),
            ),
          );
          const ok = results.filter((r) => r.status === 'fulfilled').length;
          expect(ctx.store.get('counter') ?? 0).toBe(ok);
          await ctx.close();
        },
      ),
      { numRuns: 150 },
    );
  });
});
