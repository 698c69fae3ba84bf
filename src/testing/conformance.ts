import assert from 'node:assert/strict';
import {
  AfterCommitHookError,
  ConfigError,
  TransactionAbortedError,
  TransactionPropagationError,
  TransactionStateError,
  TransactionTimeoutError,
  TransientTransactionError,
  TxkitError,
} from '../core/index.js';
import type { Transaction, TransactionContext } from '../core/index.js';
import { injectFaults } from './inject-faults.js';

/** One fresh context plus a way to write and read through it, made per test. */
export interface ConformanceSubject<H> {
  readonly context: TransactionContext<H, object>;
  /** Writes `value` under `key` inside `tx` (a row, a document, a message with that key...). */
  write(tx: Transaction<H>, key: string, value: string): Promise<void>;
  /** The committed value of `key`, read outside any transaction; undefined when absent. */
  read(key: string): Promise<string | undefined>;
  /** Frees what make() created (tables, topics, clients); the suite closes the context itself. */
  cleanup?(): Promise<void>;
}

/** What the backend under test supports; cases that need a missing feature are skipped. */
export interface ConformanceCapabilities {
  /** The backend supports savepoints (`propagation: 'nested'`). */
  savepoints: boolean;
  /** Two transactions can be open at once on one context (`requires_new` inside a running one). */
  concurrentTransactions: boolean;
}

/** The subset of a test framework the suite uses: vitest, jest, mocha and node:test all fit. */
export interface TestApi {
  /** Declares a group of tests. */
  describe(name: string, fn: () => void): unknown;
  /** Declares one test with its timeout in milliseconds. */
  it(name: string, fn: () => Promise<void>, timeoutMs?: number): unknown;
}

/** Options of {@link testTransactionContext}. */
export interface ConformanceOptions<H> {
  /** Names the suite in the test report, e.g. `postgres (knex)`. */
  name: string;
  /** Makes a fresh subject for each test. */
  make: () => Promise<ConformanceSubject<H>>;
  /** What the backend supports. */
  capabilities: ConformanceCapabilities;
  /**
   * The test framework's functions.
   * @default the globals `describe` and `it`
   */
  test?: TestApi;
  /** Per-test timeout for slow backends. @default 30_000 */
  timeoutMs?: number;
}

/** Fast retries so the suite does not wait on production back-off. */
const FAST = { initialDelayMs: 1, maxDelayMs: 2 } as const;

/**
 * The suite every TransactionContext must pass. Call it from a test file of
 * the adapter, once per backend flavour; add backend-specific cases beside it.
 * @throws ConfigError when `test` is not given and the framework's globals
 *   `describe` and `it` are missing.
 * @example
 * ```ts
 * import { describe, it } from 'vitest';
 * import { memoryTransactions } from 'txkit/memory';
 * import { testTransactionContext } from 'txkit/testing';
 *
 * testTransactionContext({
 *   name: 'memory',
 *   test: { describe, it },
 *   capabilities: { savepoints: true, concurrentTransactions: true },
 *   make: async () => {
 *     const context = memoryTransactions();
 *     return {
 *       context,
 *       write: (tx, key, value) => tx.handle.set(key, value),
 *       read: async (key) => context.store.get(key) as string | undefined,
 *     };
 *   },
 * });
 * ```
 */
export function testTransactionContext<H>(options: ConformanceOptions<H>): void {
  const api = options.test ?? globalTestApi();
  const { describe } = api;
  const timeout = options.timeoutMs ?? 30_000;
  const caps = options.capabilities;
  let seq = 0;
  const uniq = (label: string): string => `${label}-${process.pid}-${Date.now().toString(36)}-${seq++}`;

  /** Runs a test with a fresh subject, closing the context (twice: close is idempotent) and cleaning up. */
  const it = (name: string, body: (s: ConformanceSubject<H>) => Promise<void>, when = true): void => {
    if (!when) return;
    api.it(
      name,
      async () => {
        const subject = await options.make();
        try {
          await body(subject);
        } finally {
          await subject.context.close();
          await subject.context.close();
          await subject.cleanup?.();
        }
      },
      timeout,
    );
  };

  describe(`${options.name}: TransactionContext conformance`, () => {
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

    describe('timeouts and cancellation', () => {
      it('timeoutMs aborts a transaction that runs too long and frees it', async (s) => {
        const key = uniq('timeout');
        let seen: Transaction<H> | undefined;
        const err = await rejection(
          s.context.withTransaction(
            async (tx) => {
              seen = tx;
              await s.write(tx, key, 'never');
              await abortedSignal(tx.signal);
            },
            { timeoutMs: 50 },
          ),
        );
        assert.ok(err instanceof TransactionTimeoutError && err.code === 'TX_TIMEOUT', `got ${String(err)}`);
        assert.equal(seen?.state, 'aborted');
        assert.equal(await s.read(key), undefined);
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

    describe('lifecycle and concurrency', () => {
      it('close() is idempotent and later calls are refused', async (s) => {
        await s.context.close();
        await s.context.close();
        const err = await rejection(s.context.withTransaction(async () => 1));
        assert.ok(err instanceof TransactionStateError && err.code === 'CONTEXT_CLOSED');
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
  });
}

/** Awaits a promise that must reject and returns its error. */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new assert.AssertionError({ message: 'expected the promise to reject, but it resolved' });
}

/** Resolves when `signal` fires: the way a callback "hangs" without sleeping. */
function abortedSignal(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

function globalTestApi(): TestApi {
  const g = globalThis as { describe?: TestApi['describe']; it?: TestApi['it'] };
  if (typeof g.describe !== 'function' || typeof g.it !== 'function') {
    throw new ConfigError(
      "testTransactionContext needs your test framework's functions: pass { test: { describe, it } } " +
        "(e.g. import { describe, it } from 'vitest'), or enable its globals",
    );
  }
  return { describe: g.describe, it: g.it };
}
