import { ConfigError } from '../core/errors.js';
import { describeType } from '../core/options.js';
import type { TransactionContext } from '../core/types.js';
import { DEFAULT_CONTEXT_NAME, TransactionHost } from './transaction-host.js';

/** A NestJS injection token, as `@nestjs/common` types it. */
export type InjectionTokenLike = string | symbol | (abstract new (...args: never[]) => unknown) | ((...args: never[]) => unknown);

/** A provider of the module, in the shape NestJS reads (a factory provider). */
export interface TxkitProvider {
  /** The token the value is provided under. */
  provide: InjectionTokenLike;
  /** Makes the value from the providers `inject` names. */
  useFactory: (...args: never[]) => unknown;
  /** Providers passed to `useFactory`. */
  inject?: (InjectionTokenLike | { token: InjectionTokenLike; optional: boolean })[];
}

/**
 * What `TxkitModule.forRoot` returns: a NestJS dynamic module, assignable to
 * `DynamicModule`. `I` is the type of the modules `forRootAsync` was given to import.
 */
export interface TxkitDynamicModule<I = never> {
  module: typeof TxkitModule;
  global: boolean;
  imports?: I[];
  providers: TxkitProvider[];
  exports: InjectionTokenLike[];
}

/** The options of {@link TxkitModule.forRoot}. */
export interface TxkitModuleOptions {
  /** The context to provide, from any txkit factory (`knexTransactions(db)`, `pgTransactions(pool)`, ...). */
  context: TransactionContext<unknown, object>;
  /** Registers the context under this name, for `@Transactional({ context: name })` and `transactionHostToken(name)`. @default 'default' */
  name?: string;
  /** Closes the context when the application closes (`app.close()`). @default true */
  closeOnShutdown?: boolean;
}

/**
 * The options of {@link TxkitModule.forRootAsync}: the context is made by a
 * factory that NestJS injects into. `I` is the type of the modules to import.
 */
export interface TxkitModuleAsyncOptions<I = never> {
  /** Makes the context, from the providers named in `inject`. */
  useFactory: (...deps: never[]) => TransactionContext<unknown, object> | Promise<TransactionContext<unknown, object>>;
  /** Providers passed to `useFactory`, in order. */
  inject?: (InjectionTokenLike | { token: InjectionTokenLike; optional: boolean })[];
  /** Modules that export what `inject` names. */
  imports?: I[];
  /** @default 'default' */
  name?: string;
  /** @default true */
  closeOnShutdown?: boolean;
}

/** The token of the `TransactionContext` registered under `name`: `@Inject(transactionContextToken())`. */
export function transactionContextToken(name: string = DEFAULT_CONTEXT_NAME): string {
  return `txkit:context:${name}`;
}

/**
 * The token of the {@link TransactionHost} registered under `name`. The
 * default context's host is also provided under the `TransactionHost` class
 * itself, so it is injected by type.
 */
export function transactionHostToken(name: string = DEFAULT_CONTEXT_NAME): InjectionTokenLike {
  return name === DEFAULT_CONTEXT_NAME ? TransactionHost : `txkit:host:${name}`;
}

const ASYNC_KEYS = new Set(['useFactory', 'inject', 'imports', 'name', 'closeOnShutdown']);
const SYNC_KEYS = new Set(['context', 'name', 'closeOnShutdown']);

/**
 * The NestJS module of txkit: provides a transaction context and its
 * {@link TransactionHost} to the whole application (a global module), and
 * registers the context for `@Transactional()` methods. Import it once per
 * context; give each further context a `name`.
 *
 * It needs nothing from NestJS at run time: the module is plain data that
 * NestJS reads.
 * @example
 * ```ts
 * @Module({
 *   imports: [TxkitModule.forRoot({ context: knexTransactions(db) })],
 *   providers: [OrderService],
 * })
 * class AppModule {}
 * ```
 */
export class TxkitModule {
  /**
   * Provides `options.context`.
   * @throws ConfigError on unknown options or a value that is not a txkit context.
   */
  static forRoot(options: TxkitModuleOptions): TxkitDynamicModule {
    const { name, closeOnShutdown } = checkModuleOptions(options, SYNC_KEYS, 'forRoot');
    if (typeof (options.context as Partial<TransactionContext<unknown, object>> | undefined)?.withTransaction !== 'function') {
      throw new ConfigError(
        `TxkitModule.forRoot({ context }) takes a txkit transaction context (from knexTransactions, pgTransactions, mongoTransactions, ...), ` +
          `got ${describeType(options.context)}; to build it from other providers use TxkitModule.forRootAsync({ useFactory, inject })`,
      );
    }
    const context = options.context;
    return moduleOf(name, closeOnShutdown, { provide: transactionContextToken(name), useFactory: () => context });
  }

  /**
   * Provides the context `useFactory` makes, once, from the providers `inject` names.
   * @throws ConfigError on unknown options or a missing `useFactory`.
   */
  static forRootAsync<I = never>(options: TxkitModuleAsyncOptions<I>): TxkitDynamicModule<I> {
    const { name, closeOnShutdown } = checkModuleOptions(options, ASYNC_KEYS, 'forRootAsync');
    if (typeof options.useFactory !== 'function') {
      throw new ConfigError(`TxkitModule.forRootAsync needs useFactory, a function that returns the txkit context, got ${describeType(options.useFactory)}`);
    }
    const make = options.useFactory;
    const provider: TxkitProvider = {
      provide: transactionContextToken(name),
      useFactory: async (...deps: never[]) => {
        const context = await make(...deps);
        if (typeof (context as Partial<TransactionContext<unknown, object>> | undefined)?.withTransaction !== 'function') {
          throw new ConfigError(`the useFactory of TxkitModule.forRootAsync returned ${describeType(context)}, not a txkit transaction context`);
        }
        return context;
      },
      ...(options.inject === undefined ? {} : { inject: options.inject }),
    };
    return moduleOf(name, closeOnShutdown, provider, options.imports);
  }
}

function checkModuleOptions(options: unknown, keys: ReadonlySet<string>, method: string): { name: string; closeOnShutdown: boolean } {
  if (typeof options !== 'object' || options === null) throw new ConfigError(`TxkitModule.${method} takes an options object, got ${describeType(options)}`);
  for (const key of Object.keys(options)) {
    if (!keys.has(key)) {
      throw new ConfigError(`unknown option '${key}' in TxkitModule.${method} (check the spelling); the accepted options are ${[...keys].join(', ')}`);
    }
  }
  const { name = DEFAULT_CONTEXT_NAME, closeOnShutdown = true } = options as { name?: unknown; closeOnShutdown?: unknown };
  if (typeof name !== 'string' || name === '') throw new ConfigError(`TxkitModule.${method}({ name }) must be a non-empty string, got ${describeType(name, 'quoted')}`);
  if (typeof closeOnShutdown !== 'boolean') throw new ConfigError(`TxkitModule.${method}({ closeOnShutdown }) must be true or false, got ${describeType(closeOnShutdown, 'quoted')}`);
  return { name, closeOnShutdown };
}

function moduleOf<I = never>(name: string, closeOnShutdown: boolean, contextProvider: TxkitProvider, imports?: I[]): TxkitDynamicModule<I> {
  const contextToken = transactionContextToken(name);
  const hostToken = transactionHostToken(name);
  return {
    module: TxkitModule,
    global: true,
    ...(imports === undefined ? {} : { imports }),
    providers: [
      contextProvider,
      {
        provide: hostToken,
        useFactory: ((context: TransactionContext<unknown, object>) => new TransactionHost(context, { name, closeOnShutdown })) as (...args: never[]) => unknown,
        inject: [contextToken],
      },
    ],
    exports: [contextToken, hostToken],
  };
}
