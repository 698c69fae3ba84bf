import { randomUUID } from 'node:crypto';
import {
  ConfigError,
  createTransactionContext,
  validateSendBatchRequest,
  validateSendOffsetsRequest,
  validateSendRequest,
} from '../../core/index.js';
import type {
  ContextOptions,
  DriverSavepoint,
  DriverTransaction,
  RecordMetadata,
  SendBatchRequest,
  SendOffsetsRequest,
  SendRequest,
  TransactionContext,
  TransactionDriver,
} from '../../core/index.js';
import { HandleGuard } from '../../core/handle-guard.js';
import { describeType } from '../../core/options.js';
import type { HandleGuardSpec } from '../../core/handle-guard.js';
import { classifyMemoryError } from './memory-errors.js';
import { MemoryStore, copy, offsetKey } from './memory-store.js';
import type { MemoryTxHandle } from './memory-types.js';

/** Options of {@link memoryTransactions}: the context options plus the store. */
export interface MemoryTransactionsOptions extends ContextOptions {
  /** The store to work on; pass one to share it between contexts or to read it in tests. @default a new MemoryStore */
  store?: MemoryStore;
}

/** A memory TransactionContext that also exposes its store, to read committed data in tests. */
export type MemoryTransactionContext = TransactionContext<MemoryTxHandle> & { readonly store: MemoryStore };

/**
 * A transaction context on the in-memory store and broker: no server, real
 * conflicts, read-committed visibility. Conflicting writes raise
 * MemoryWriteConflictError, which is transient, so `withTransaction` reruns
 * the unit. Savepoints (`propagation: 'nested'`) are supported.
 * @throws ConfigError when `options` is not an object or `store` is not a MemoryStore.
 * @example
 * ```ts
 * import { memoryTransactions } from 'txkit/memory';
 *
 * const ctx = memoryTransactions();
 * await ctx.withTransaction(async (tx) => {
 *   const n = ((await tx.handle.get('counter')) as number | undefined) ?? 0;
 *   await tx.handle.set('counter', n + 1);
 *   await tx.handle.send({ topic: 'events', messages: [{ value: 'incremented' }] });
 * });
 * ctx.store.get('counter'); // 1
 * ctx.store.messages('events').length; // 1
 * ```
 */
export function memoryTransactions(options: MemoryTransactionsOptions = {}): MemoryTransactionContext {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError(`memoryTransactions(options) needs an options object such as { store }, got ${describeType(options, 'json')}; leave it out for a new store`, {
      backend: 'memory',
    });
  }
  const { store = new MemoryStore(), ...contextOptions } = options;
  if (!(store instanceof MemoryStore)) {
    throw new ConfigError('memoryTransactions({ store }) needs a MemoryStore instance', { backend: 'memory' });
  }
  return createTransactionContext(new MemoryDriver(store), contextOptions, { store });
}

/** The memory backend's TransactionDriver: also a small reference for writing an adapter. */
export class MemoryDriver implements TransactionDriver<MemoryTxHandle> {
  readonly backend = 'memory' as const;
  /** @param store the store every transaction of this driver reads and writes. */
  constructor(readonly store: MemoryStore) {}

  /**
   * Memory transactions have no options of their own (their isolation is
   * fixed: reads see committed data and a conflicting write fails at once), so
   * the core refuses any key but its own.
   */
  readonly optionKeys: readonly string[] = [];

  /** Opens a transaction on the store; nothing is taken until it writes. */
  async begin(): Promise<DriverTransaction<MemoryTxHandle>> {
    return new MemoryTransaction(this.store);
  }

  classify = classifyMemoryError;

  /** Does nothing: the store outlives the context. */
  async close(): Promise<void> {
    // The store outlives the context: tests read it after close.
  }
}

interface Mark {
  writes: Map<string, { value: unknown; deleted: boolean }>;
  sends: number;
}

type Ending = 'committed' | 'rolled back';

const HANDLE: HandleGuardSpec<Ending> = {
  backend: 'memory',
  label: 'memory',
  describe: (ended) => ({ how: `was ${ended}`, state: ended === 'committed' ? 'committed' : 'aborted' }),
};

class MemoryTransaction implements DriverTransaction<MemoryTxHandle> {
  readonly id = randomUUID();
  readonly handle: MemoryTxHandle;
  readonly #store: MemoryStore;
  #writes = new Map<string, { value: unknown; deleted: boolean }>();
  readonly #seen = new Map<string, number>();
  readonly #sends: SendRequest[] = [];
  readonly #guard = new HandleGuard(HANDLE);

  constructor(store: MemoryStore) {
    this.#store = store;
    this.handle = Object.freeze({
      get: async (key: string) => this.#get(key),
      set: async (key: string, value: unknown) => this.#write(key, value, false),
      delete: async (key: string) => this.#write(key, undefined, true),
      send: async (request: SendRequest) => {
        this.#guard.assertOpen('send');
        validateSendRequest(request, 'memory');
        return this.#send([request]);
      },
      sendBatch: async (request: SendBatchRequest) => {
        this.#guard.assertOpen('sendBatch');
        validateSendBatchRequest(request, 'memory');
        return this.#send(request.topicMessages);
      },
      sendOffsets: async (request: SendOffsetsRequest) => this.#sendOffsets(request),
    });
  }

  async commit(): Promise<void> {
    if (this.#guard.ended === 'committed') return;
    this.#guard.assertOpen('commit');
    this.#store.commit({ transactionId: this.id, seen: this.#seen, writes: this.#writes, sends: this.#sends });
    this.#guard.ended = 'committed';
  }

  /** Committing twice is a no-op, as MongoDB's commitTransaction is. */
  recommit(): Promise<void> {
    return this.commit();
  }

  async rollback(): Promise<void> {
    if (this.#guard.ended !== undefined) return;
    this.#store.release(this.#writes.keys(), this.id);
    this.#guard.ended = 'rolled back';
  }

  async savepoint(): Promise<DriverSavepoint<MemoryTxHandle>> {
    return this.#savepointAt({ writes: new Map(this.#writes), sends: this.#sends.length });
  }

  #savepointAt(mark: Mark): DriverSavepoint<MemoryTxHandle> {
    return {
      handle: this.handle,
      release: async () => undefined,
      rollback: async () => {
        this.#guard.assertOpen('rollback to savepoint');
        const dropped = [...this.#writes.keys()].filter((k) => !mark.writes.has(k));
        this.#store.release(dropped, this.id);
        this.#writes = new Map(mark.writes);
        this.#sends.length = mark.sends;
      },
      savepoint: async () => this.#savepointAt({ writes: new Map(this.#writes), sends: this.#sends.length }),
    };
  }

  #get(key: string): unknown {
    this.#guard.assertOpen('get');
    checkKey(key, 'get');
    const own = this.#writes.get(key);
    if (own !== undefined) return own.deleted ? undefined : copy(own.value);
    if (!this.#seen.has(key)) this.#seen.set(key, this.#store.versionOf(key));
    return this.#store.get(key);
  }

  #write(key: string, value: unknown, deleted: boolean): void {
    this.#guard.assertOpen(deleted ? 'delete' : 'set');
    checkKey(key, deleted ? 'delete' : 'set');
    if (!deleted && value === undefined) {
      throw new ConfigError(`set('${key}') needs a value; use delete('${key}') to remove a key`, { backend: 'memory' });
    }
    this.#store.claim(key, this.id);
    if (!this.#seen.has(key)) this.#seen.set(key, this.#store.versionOf(key));
    this.#writes.set(key, { value: deleted ? undefined : copy(value), deleted });
  }

  #send(requests: SendRequest[]): RecordMetadata[] {
    const out: RecordMetadata[] = [];
    for (const r of requests) {
      // Choose partitions now so the metadata is true; offsets are only known at commit.
      const messages = r.messages.map((m) => ({ ...m, partition: this.#store.partitionFor(m) }));
      this.#sends.push({ topic: r.topic, messages });
      for (const m of messages) out.push({ topicName: r.topic, partition: m.partition });
    }
    return out;
  }

  #sendOffsets(request: SendOffsetsRequest): void {
    this.#guard.assertOpen('sendOffsets');
    validateSendOffsetsRequest(request, 'memory');
    for (const t of request.topics) {
      for (const p of t.partitions) {
        // Offsets are keys like any other, so two consumers committing one partition conflict.
        this.#write(offsetKey(request.consumerGroupId, t.topic, p.partition), Number(p.offset), false);
      }
    }
  }
}

function checkKey(key: unknown, method: string): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new ConfigError(`${method}() needs a non-empty string key, got ${key === null ? 'null' : typeof key}`, {
      backend: 'memory',
    });
  }
}
