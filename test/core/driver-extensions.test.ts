/**
 * The optional members of the driver contract, each used by a custom driver
 * through createTransactionContext, as a backend of a user's own would.
 */
import { describe, expect, it } from 'vitest';
import { kafkaTransactions, transactionalConsumer } from '../../src/adapters/kafka/index.js';
import type { KafkaConsumerFactoryLike, KafkaLike } from '../../src/adapters/kafka/index.js';
import { MemoryDriver, MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import type { MemoryTxHandle } from '../../src/adapters/memory/index.js';
import { HandleGuard } from '../../src/core/handle-guard.js';
import { injectFaults } from '../../src/testing/index.js';
import { ConfigError, TransactionPropagationError, TransactionStateError, TxkitError, createTransactionContext } from '../../src/core/index.js';
import type { NativeErrorCode } from '../../src/core/index.js';
import type { DriverTransaction, TransactionDriver } from '../../src/core/index.js';

/** A memory driver whose transactions have savepoint() only when `savepoints` is true, whatever it declares. */
function memoryDriver(store: MemoryStore, savepoints: boolean, declared?: boolean): TransactionDriver<MemoryTxHandle> {
  const base = new MemoryDriver(store);
  return {
    backend: 'memory',
    ...(declared === undefined ? {} : { capabilities: { savepoints: declared } }),
    begin: async () => {
      const dtx = await base.begin();
      const tx: DriverTransaction<MemoryTxHandle> = {
        handle: dtx.handle,
        commit: () => dtx.commit(),
        rollback: () => dtx.rollback(),
      };
      if (savepoints) tx.savepoint = () => (dtx.savepoint as NonNullable<typeof dtx.savepoint>).call(dtx);
      return tx;
    },
    classify: (err) => base.classify(err),
    close: () => base.close(),
  };
}

describe('driver contract: savepoints', () => {
  it("a driver whose transactions have savepoint() runs propagation 'nested' (a deprecated capabilities: false is ignored)", async () => {
    const store = new MemoryStore();
    const ctx = createTransactionContext(memoryDriver(store, true, false));
    await ctx.withTransaction(async (tx) => {
      await tx.handle.set('outer', 1);
      await expect(
        ctx.withTransaction(
          async (inner) => {
            await inner.handle.set('inner', 1);
            throw new Error('undo the savepoint only');
          },
          { propagation: 'nested' },
        ),
      ).rejects.toThrow('undo the savepoint only');
    });
    expect(store.get('outer')).toBe(1);
    expect(store.get('inner')).toBeUndefined();
    await ctx.close();
  });

  it("a driver without savepoint() refuses propagation 'nested' inside a transaction (a deprecated capabilities: true is ignored)", async () => {
    const store = new MemoryStore();
    const ctx = createTransactionContext(memoryDriver(store, false, true));
    let ran = false;
    const err = await ctx
      .withTransaction(() =>
        ctx.withTransaction(
          async () => {
            ran = true;
          },
          { propagation: 'nested' },
        ),
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransactionPropagationError);
    expect((err as Error).message).toMatch(/propagation 'nested' needs savepoints, which the memory adapter does not have/);
    expect(ran).toBe(false);
    await ctx.close();
  });
});

describe('handle guard', () => {
  it('refuses every call once the transaction ended, with HANDLE_ENDED in the one message shape of every adapter', async () => {
    const guard = new HandleGuard<'committed' | 'rolled back'>({
      backend: 'memory',
      label: 'custom',
      describe: (ended) => ({ how: `was ${ended}`, state: ended === 'committed' ? 'committed' : 'aborted' }),
      advice: ' (a custom hint)',
    });
    expect(guard.refusal('put')).toBeUndefined();
    guard.assertOpen('put');
    guard.ended = 'rolled back';
    const err = guard.refusal('put');
    expect(err).toBeInstanceOf(TransactionStateError);
    expect(err?.code).toBe('HANDLE_ENDED');
    expect(err?.state).toBe('aborted');
    expect(err?.method).toBe('put');
    expect(err?.message).toBe(
      'put() is not allowed: this custom transaction handle belongs to a transaction that was rolled back; ' +
        'use the handle of the transaction you are in (a custom hint)',
    );
    expect(() => guard.assertOpen('get')).toThrow(/^get\(\) is not allowed: this custom transaction handle belongs to a transaction that was rolled back/);

    // The memory adapter's handles refuse through the same guard.
    const ctx = memoryTransactions();
    const kept = await ctx.withTransaction(async (tx) => tx.handle);
    const refused = await kept.get('k').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TransactionStateError);
    expect((refused as TransactionStateError).message).toBe(
      'get() is not allowed: this memory transaction handle belongs to a transaction that was committed; use the handle of the transaction you are in',
    );
    await ctx.close();
  });
});

describe('driver contract: extras on the context', () => {
  it('createTransactionContext(driver, options, extras) returns the context with the extras as typed, read-only properties', async () => {
    const store = new MemoryStore();
    const pool = { name: 'pool-1' };
    const ctx = createTransactionContext(memoryDriver(store, true), undefined, { pool, region: 'eu' });
    const typed: { readonly name: string } = ctx.pool;
    expect(typed).toBe(pool);
    expect(ctx.region).toBe('eu');
    expect(Object.keys(ctx)).toEqual(['backend', 'pool', 'region']);
    expect(() => {
      (ctx as { region: string }).region = 'us';
    }).toThrow(TypeError);
    await ctx.withTransaction((tx) => tx.handle.set('k', 1));
    expect(store.get('k')).toBe(1);
    await ctx.close();
  });

  it("refuses extras that would replace the context's own members, so nothing patches the core", () => {
    const err = (() => {
      try {
        createTransactionContext(memoryDriver(new MemoryStore(), true), {}, { withTransaction: () => undefined });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/cannot replace its own member 'withTransaction'/);
  });

  it('the backend factories carry their extras the same way: memory store, kafka transactionalId (and its client for transactionalConsumer)', async () => {
    const mem = memoryTransactions();
    expect(mem.store).toBeInstanceOf(MemoryStore);
    expect(Object.keys(mem)).toEqual(['backend', 'store']);
    const kafka = { producer: () => ({}), consumer: () => ({}), admin: () => ({}) } as unknown as KafkaLike & KafkaConsumerFactoryLike;
    const ctx = kafkaTransactions(kafka, { transactionalId: 'extras-test' });
    expect(ctx.transactionalId).toBe('extras-test');
    const consumerOptions = { groupId: 'g', topics: ['t'], eachBatch: async () => undefined };
    expect(() => transactionalConsumer(kafka, { ...consumerOptions, context: ctx })).not.toThrow();
    expect(() => transactionalConsumer(kafka, { ...consumerOptions, context: mem as never })).toThrow(ConfigError);
    await Promise.all([ctx.close(), mem.close()]);
  });
});

/** A native error of the custom backend: `misuse` ones are what translateError turns into typed errors. */
class NativeError extends Error {
  constructor(
    readonly kind: 'misuse' | 'transient' | 'other',
    message: string,
  ) {
    super(message);
  }
}

class TypedMisuseError extends TxkitError {
  constructor(cause: unknown) {
    super('CUSTOM_MISUSE' as NativeErrorCode, 'the custom backend was misused', { backend: 'memory', cause });
  }
}

interface Recorded {
  readonly attempt: number;
  readonly unit: boolean;
  readonly ambient: string | undefined;
  /** Which runUnit call the begin ran in (0: none), from the state that runUnit passed to its run. */
  readonly inUnit: number;
}

/** A memory-backed driver that records what the core tells it, and translates and classifies NativeError. */
function recordingDriver(store: MemoryStore, failures: { begin?: NativeError[]; commit?: NativeError[] } = {}) {
  const base = new MemoryDriver(store);
  const begins: Recorded[] = [];
  const translated: unknown[] = [];
  let units = 0;
  const driver: TransactionDriver<MemoryTxHandle> = {
    backend: 'memory',
    runUnit<T>(run: (unitState: { unit: number }) => Promise<T>): Promise<T> {
      return run({ unit: ++units });
    },
    begin: async (_options, _signal, info) => {
      const inUnit = info.unit ? (info.unitState as { unit: number }).unit : 0;
      begins.push({ attempt: info.attempt, unit: info.unit, ambient: info.ambient?.id, inUnit });
      const fail = failures.begin?.shift();
      if (fail !== undefined) throw fail;
      const dtx = await base.begin();
      const commitFailure = failures.commit?.shift();
      return {
        handle: dtx.handle,
        commit: async () => {
          if (commitFailure !== undefined) {
            await dtx.rollback();
            throw commitFailure;
          }
          await dtx.commit();
        },
        rollback: () => dtx.rollback(),
      };
    },
    classify: (err) => (err instanceof NativeError && err.kind === 'transient' ? 'transient' : base.classify(err)),
    translateError: (err) => {
      translated.push(err);
      return err instanceof NativeError && err.kind === 'misuse' ? new TypedMisuseError(err) : err;
    },
    close: () => base.close(),
  };
  return { driver, begins, translated, units: () => units };
}

const FAST = { initialDelayMs: 1, maxDelayMs: 2 };

describe('driver contract: error translation', () => {
  it('withTransaction hands the caller the translated error, once, after the retry loop judged the native one', async () => {
    const store = new MemoryStore();
    const { driver, translated } = recordingDriver(store, { commit: [new NativeError('transient', 'conflict')] });
    const ctx = createTransactionContext(driver, { retry: FAST });
    let runs = 0;
    const native = new NativeError('misuse', 'wrong session');
    const err = await ctx
      .withTransaction(async () => {
        runs += 1;
        // The first attempt's commit fails transiently: the loop classifies the native error and reruns.
        if (runs === 2) throw native;
      })
      .catch((e: unknown) => e);
    expect(runs).toBe(2);
    expect(err).toBeInstanceOf(TypedMisuseError);
    expect((err as TypedMisuseError).cause).toBe(native);
    expect(translated).toEqual([native]);

    // Errors it does not know come back as they are.
    const other = new NativeError('other', 'constraint');
    await expect(ctx.withTransaction(() => Promise.reject(other))).rejects.toBe(other);
    await ctx.close();
  });

  it('begin(), and commit() and abort() of a transaction begun by hand, hand the caller translated errors', async () => {
    const store = new MemoryStore();
    const { driver } = recordingDriver(store, {
      begin: [new NativeError('misuse', 'no sessions here')],
      commit: [new NativeError('misuse', 'commit refused')],
    });
    const ctx = createTransactionContext(driver);
    await expect(ctx.begin()).rejects.toBeInstanceOf(TypedMisuseError);
    const tx = await ctx.begin();
    await tx.handle.set('k', 1);
    await expect(tx.commit()).rejects.toBeInstanceOf(TypedMisuseError);
    expect(store.get('k')).toBeUndefined();
    // State errors of the core are txkit's own and stay as they are.
    await expect(tx.abort()).rejects.toBeInstanceOf(TransactionStateError);
    await ctx.close();
  });
});

describe('driver contract: units and begin info', () => {
  it('runUnit wraps the retry loop of one unit: every attempt begins inside it, numbered, as an attempt of a unit', async () => {
    const store = new MemoryStore();
    const { driver, begins, units } = recordingDriver(store, { begin: [new NativeError('transient', 'busy')], commit: [new NativeError('transient', 'conflict')] });
    const ctx = createTransactionContext(driver, { retry: FAST });
    await ctx.withTransaction((tx) => tx.handle.set('k', 1));
    expect(store.get('k')).toBe(1);
    expect(units()).toBe(1);
    expect(begins).toEqual([
      { attempt: 1, unit: true, ambient: undefined, inUnit: 1 },
      { attempt: 2, unit: true, ambient: undefined, inUnit: 1 },
      { attempt: 3, unit: true, ambient: undefined, inUnit: 1 },
    ]);
    await ctx.close();
  });

  it("a begin by hand is no attempt of a unit; requires_new runs a unit of its own beside the ambient one; a joined call runs none", async () => {
    const store = new MemoryStore();
    const { driver, begins, units } = recordingDriver(store);
    const ctx = createTransactionContext(driver);
    let outerId = '';
    await ctx.withTransaction(async (outer) => {
      outerId = outer.id;
      const byHand = await ctx.begin();
      await byHand.abort();
      await ctx.withTransaction(async () => undefined, { propagation: 'requires_new' });
      await ctx.withTransaction(async () => undefined);
    });
    expect(units()).toBe(2);
    expect(begins).toEqual([
      { attempt: 1, unit: true, ambient: undefined, inUnit: 1 },
      { attempt: 1, unit: false, ambient: outerId, inUnit: 0 },
      { attempt: 1, unit: true, ambient: outerId, inUnit: 2 },
    ]);
    await ctx.close();
  });
});

describe('fault injection finds the context without a registry', () => {
  it('injectFaults works on any context made by createTransactionContext, and refuses anything else', async () => {
    const store = new MemoryStore();
    const ctx = createTransactionContext(memoryDriver(store, false), { retry: FAST });
    const faults = injectFaults(ctx, { on: 'commit', as: 'transient' });
    let runs = 0;
    await ctx.withTransaction(async (tx) => {
      runs += 1;
      await tx.handle.set('k', runs);
    });
    expect(runs).toBe(2);
    expect(faults.injected).toBe(1);
    expect(store.get('k')).toBe(2);
    for (const other of [{}, null, Object.create(ctx) as object]) {
      expect(() => injectFaults(other as never, { on: 'begin', as: 'fatal' })).toThrow(ConfigError);
    }
    await ctx.close();
  });
});
