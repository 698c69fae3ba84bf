import { ConfigError } from '../core/errors.js';
import { describeType } from '../core/options.js';
import type { Propagation, RetryPolicy } from '../core/types.js';
import { DEFAULT_CONTEXT_NAME, registeredHost } from './transaction-host.js';

/** What `@Transactional()` takes: the context's name and the unit's run options. */
export interface TransactionalOptions {
  /** The name the context was registered under (`TxkitModule.forRoot({ name })`). @default 'default' */
  context?: string;
  /** How the method relates to a transaction already running (see `Propagation`). @default 'required' */
  propagation?: Propagation;
  /** Bound on each attempt, from begin to the end of commit. */
  timeoutMs?: number;
  /** Retry policy over the context's, or `false` to run once. */
  retry?: Partial<RetryPolicy> | false;
}

type AsyncMethod = (this: unknown, ...args: never[]) => Promise<unknown>;

/**
 * Runs the decorated method as one unit of work of a registered txkit
 * context: it joins the transaction running in its async context or starts
 * one (by `propagation`), commits when the method's promise resolves, and
 * rolls back and rethrows when it rejects, with the context's retry policy
 * (a transient failure reruns the whole method, so keep its effects inside
 * the transaction). Reach the transaction with an injected
 * {@link TransactionHost} (`txHost.tx`, `txHost.handle`).
 *
 * Works as a TypeScript `experimentalDecorators` decorator (NestJS) and as a
 * standard (TC39) method decorator. The method must return a promise.
 * Besides `context`, the options are those of `withTransaction` on the
 * context (`propagation`, `timeoutMs`, `retry`, and the backend's own, e.g.
 * `@Transactional<SqlOptions>({ isolationLevel: 'serializable' })`);
 * the context checks them on each call, as it checks a `withTransaction`
 * call's, so a misspelt key fails the first call with a ConfigError before
 * any work.
 * @typeParam O the backend's own begin options, when you pass any.
 * @throws ConfigError at decoration time when put on anything but a method;
 *   at call time when no context of that name is registered or an option is unknown.
 * @example
 * ```ts
 * @Transactional({ timeoutMs: 5_000 })
 * async place(order: Order) {
 *   await this.txHost.handle('orders').insert(order);
 *   await this.outbox.publish(this.txHost.tx, { topic: 'orders', key: order.id, value: order });
 * }
 * ```
 */
export function Transactional<O extends object = {}>(options: TransactionalOptions & O = {} as TransactionalOptions & O): MethodDecoratorBoth {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ConfigError(`@Transactional() takes an options object, got ${describeType(options, 'quoted')}`);
  }
  const name = options.context ?? DEFAULT_CONTEXT_NAME;
  if (typeof name !== 'string' || name === '') {
    throw new ConfigError(`@Transactional({ context }) takes the name a context was registered under, got ${describeType(name, 'quoted')}`);
  }
  const { context: _name, ...runOptions } = options;

  const wrap = (method: AsyncMethod, where: () => string): AsyncMethod => {
    // Fails as the method would: with a rejected promise, never a synchronous throw.
    const wrapped = async function (this: unknown, ...args: never[]): Promise<unknown> {
      const host = registeredHost(name, where.call(this));
      return host.context.withTransaction(async () => method.apply(this, args), runOptions as never);
    };
    Object.defineProperty(wrapped, 'name', { value: method.name });
    copyMetadata(method, wrapped);
    return wrapped;
  };

  return function decorate(target: unknown, key: unknown, descriptor?: PropertyDescriptor): never {
    if (isStandardContext(key)) {
      if (key.kind !== 'method' || typeof target !== 'function') {
        throw new ConfigError(`@Transactional() decorates methods, not a ${key.kind} ('${String(key.name)}')`);
      }
      const method = String(key.name);
      return wrap(target as AsyncMethod, function (this: unknown) {
        return `${className(this)}.${method}`;
      }) as never;
    }
    if (descriptor === undefined || typeof descriptor.value !== 'function') {
      throw new ConfigError(`@Transactional() decorates methods, not a property or accessor ('${String(key)}')`);
    }
    const method = String(key);
    const owner = typeof target === 'function' ? target.name : ((target as { constructor?: { name?: string } }).constructor?.name ?? 'object');
    descriptor.value = wrap(descriptor.value as AsyncMethod, () => `${owner}.${method}`);
    return descriptor as never;
  } as MethodDecoratorBoth;
}

/**
 * A method decorator in both dialects: `experimentalDecorators` (target, key,
 * descriptor) and standard decorators (method, context). Typed so that only a
 * method returning a promise can be decorated.
 */
export interface MethodDecoratorBoth {
  /** The experimentalDecorators form. @typeParam T the decorated method's type. */
  <T extends (...args: never[]) => Promise<unknown>>(
    target: object,
    key: string | symbol,
    descriptor: TypedPropertyDescriptor<T>,
  ): TypedPropertyDescriptor<T> | void;
  /** The standard (TC39) form. @typeParam T the decorated method's type. */
  <T extends (...args: never[]) => Promise<unknown>>(method: T, context: ClassMethodDecoratorContext): T | void;
}

interface StandardContext {
  kind: string;
  name: string | symbol;
}

function isStandardContext(v: unknown): v is StandardContext {
  return typeof v === 'object' && v !== null && 'kind' in v && 'name' in v;
}

function className(self: unknown): string {
  return (self as { constructor?: { name?: string } } | null | undefined)?.constructor?.name ?? 'object';
}

interface ReflectMetadata {
  getOwnMetadataKeys?(target: object): unknown[];
  getOwnMetadata?(key: unknown, target: object): unknown;
  defineMetadata?(key: unknown, value: unknown, target: object): void;
}

/**
 * Keeps what other decorators (NestJS routes, guards, event handlers) stored
 * on the method through `reflect-metadata`, so `@Transactional()` may sit
 * above or below them.
 */
function copyMetadata(from: object, to: object): void {
  const reflect = Reflect as unknown as ReflectMetadata;
  if (reflect.getOwnMetadataKeys === undefined || reflect.getOwnMetadata === undefined || reflect.defineMetadata === undefined) return;
  for (const key of reflect.getOwnMetadataKeys(from)) reflect.defineMetadata(key, reflect.getOwnMetadata(key, from), to);
}
