import { ConfigError, TransactionPropagationError } from '../core/errors.js';
import type { OptionalPropagation, OptionalTransactionCallback, RunOptions, Transaction, TransactionCallback, TransactionContext } from '../core/types.js';

/** The name a context is registered under when none is given. */
export const DEFAULT_CONTEXT_NAME = 'default';

/**
 * The contexts `@Transactional()` methods run on, by name. A name holds a
 * stack: the newest registration wins and its removal uncovers the one
 * before, so two applications of one process (a test that builds one while
 * another is closing) do not take each other's context away.
 */
const registry = new Map<string, TransactionHost<unknown>[]>();

/** Makes `host` the one `@Transactional({ context: name })` methods use. */
export function registerHost(name: string, host: TransactionHost<unknown>): void {
  const stack = registry.get(name) ?? [];
  stack.push(host);
  registry.set(name, stack);
}

/** Removes `host` from its name; idempotent. */
export function unregisterHost(name: string, host: TransactionHost<unknown>): void {
  const stack = registry.get(name);
  if (stack === undefined) return;
  const i = stack.lastIndexOf(host);
  if (i >= 0) stack.splice(i, 1);
  if (stack.length === 0) registry.delete(name);
}

/** The registered host of `name`, for the method `where` names. */
export function registeredHost(name: string, where: string): TransactionHost<unknown> {
  const host = registry.get(name)?.at(-1);
  if (host !== undefined) return host;
  const known = [...registry.keys()];
  throw new ConfigError(
    `${where} is @Transactional(${name === DEFAULT_CONTEXT_NAME ? '' : `{ context: '${name}' }`}) but no txkit context named '${name}' is registered: ` +
      `import TxkitModule.forRoot({ ${name === DEFAULT_CONTEXT_NAME ? '' : `name: '${name}', `}context }) in the application's module, ` +
      `and call the method after the application was created (not in a constructor)` +
      (known.length > 0 ? `; registered names: ${known.map((n) => `'${n}'`).join(', ')}` : ''),
  );
}

/**
 * A transaction context as a NestJS provider: inject it (by its class for the
 * default context, `@Inject(transactionHostToken(name))` for a named one) to
 * reach the transaction a `@Transactional()` method runs in, or to run a unit
 * yourself.
 * @typeParam H the native handle of the context's transactions (`Knex.Transaction`, `PoolClient`, ...).
 * @example
 * ```ts
 * @Injectable()
 * class Orders {
 *   constructor(private readonly txHost: TransactionHost<Knex.Transaction>) {}
 *   @Transactional()
 *   async place(id: string) {
 *     await this.txHost.handle('orders').insert({ id });
 *   }
 * }
 * ```
 */
export class TransactionHost<H> {
  /** The context this host runs units on. */
  readonly context: TransactionContext<H, object>;
  /** The name `@Transactional({ context })` selects this host by. */
  readonly name: string;
  readonly #closeOnShutdown: boolean;

  constructor(context: TransactionContext<H, object>, options: { name?: string; closeOnShutdown?: boolean } = {}) {
    if (typeof (context as Partial<TransactionContext<H, object>> | undefined)?.withTransaction !== 'function') {
      throw new ConfigError(
        `TransactionHost needs a txkit transaction context (from knexTransactions, pgTransactions, mongoTransactions, ...), got ${context === null ? 'null' : typeof context}`,
      );
    }
    this.context = context;
    this.name = options.name ?? DEFAULT_CONTEXT_NAME;
    this.#closeOnShutdown = options.closeOnShutdown ?? true;
  }

  /**
   * The transaction running in the current async context.
   * @throws TransactionPropagationError when none is: call it inside a `@Transactional()` method or `withTransaction`.
   */
  get tx(): Transaction<H> {
    const tx = this.context.current();
    if (tx !== undefined) return tx;
    throw new TransactionPropagationError(
      `no transaction of the txkit context '${this.name}' (${this.context.backend}) is running here: ` +
        `read TransactionHost.tx inside a @Transactional() method or a TransactionHost.withTransaction callback, and await everything the method starts`,
      { backend: this.context.backend },
    );
  }

  /**
   * The native handle of the running transaction (`tx.handle`).
   * @throws TransactionPropagationError when no transaction is running here.
   */
  get handle(): H {
    return this.tx.handle;
  }

  /** The running transaction, or `undefined` outside one. */
  current(): Transaction<H> | undefined {
    return this.context.current();
  }

  /** `context.withTransaction` with an optional propagation mode: `fn` may get no transaction. */
  withTransaction<T>(fn: OptionalTransactionCallback<H, T>, options: RunOptions & { propagation: OptionalPropagation }): Promise<T>;
  /** `context.withTransaction`: runs `fn` as one unit of work (see {@link TransactionContext.withTransaction}). */
  withTransaction<T>(fn: TransactionCallback<H, T>, options?: RunOptions): Promise<T>;
  withTransaction<T>(fn: TransactionCallback<H, T>, options?: RunOptions): Promise<T> {
    return this.context.withTransaction(fn, options as never);
  }

  /** NestJS lifecycle: makes this host the one its name selects. */
  onModuleInit(): void {
    registerHost(this.name, this as TransactionHost<unknown>);
  }

  /** NestJS lifecycle, last step of `app.close()`: unregisters, and closes the context unless `closeOnShutdown: false`. */
  async onApplicationShutdown(): Promise<void> {
    unregisterHost(this.name, this as TransactionHost<unknown>);
    if (this.#closeOnShutdown) await this.context.close();
  }
}
