/**
 * `@Transactional()` and `TransactionHost` without NestJS: the decorator in
 * its standard (TC39) and experimentalDecorators forms, applied the way the
 * TypeScript compiler applies each (this runner lowers neither form here),
 * and the mistakes a user makes with them. NestJS itself, with the decorator
 * syntax compiled, is exercised by examples/nestjs; the packed package by
 * test/package.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, TransactionPropagationError, TransientTransactionError } from 'txkit';
import { memoryTransactions } from 'txkit/memory';
import type { MemoryTxHandle } from 'txkit/memory';
import { TransactionHost, Transactional, TxkitModule, transactionContextToken, transactionHostToken } from 'txkit/nestjs';

const hosts: TransactionHost<unknown>[] = [];

function hostOf(name?: string): TransactionHost<MemoryTxHandle> & { context: ReturnType<typeof memoryTransactions> } {
  const ctx = memoryTransactions({ retry: { initialDelayMs: 0, maxDelayMs: 1 } });
  const host = new TransactionHost(ctx, name === undefined ? {} : { name });
  host.onModuleInit();
  hosts.push(host as TransactionHost<unknown>);
  return host as TransactionHost<MemoryTxHandle> & { context: typeof ctx };
}

/** What TypeScript emits for `@Transactional(options) method() {}` with standard decorators. */
function decorate<C extends { prototype: object }>(cls: C, method: string, options?: Parameters<typeof Transactional>[0]): void {
  const proto = cls.prototype as Record<string, unknown>;
  const context = { kind: 'method', name: method, static: false, private: false, metadata: {}, addInitializer: () => undefined, access: {} };
  const replaced = (Transactional(options) as unknown as (m: unknown, c: unknown) => unknown)(proto[method], context);
  if (replaced !== undefined) Object.defineProperty(proto, method, { value: replaced, writable: true, configurable: true });
}

afterEach(async () => {
  for (const h of hosts.splice(0)) await h.onApplicationShutdown();
});

describe('@Transactional() as a standard (TC39) decorator', () => {
  it('runs the method as one unit: its writes commit when it resolves, and nested decorated calls join that transaction', async () => {
    const host = hostOf();
    const ids: string[] = [];
    class Counter {
      async add(key: string, n: number): Promise<number> {
        ids.push(host.tx.id);
        const now = ((await host.handle.get(key)) as number | undefined) ?? 0;
        await host.handle.set(key, now + n);
        await this.audit(key);
        return now + n;
      }
      async audit(key: string): Promise<void> {
        ids.push(host.tx.id);
        await host.handle.set(`audit:${key}`, true);
      }
    }
    decorate(Counter, 'add');
    decorate(Counter, 'audit');
    const counter = new Counter();
    expect(await counter.add('c', 2)).toBe(2);
    expect(host.context.store.get('c')).toBe(2);
    expect(host.context.store.get('audit:c')).toBe(true);
    expect(ids).toHaveLength(2);
    expect(ids[0]).toBe(ids[1]);
    expect(host.current()).toBeUndefined();
  });

  it('a method that throws rolls back everything it wrote and rethrows the same error', async () => {
    const host = hostOf();
    const bug = new Error('business rule');
    class Orders {
      async place(): Promise<void> {
        await host.handle.set('order', 1);
        throw bug;
      }
    }
    decorate(Orders, 'place');
    await expect(new Orders().place()).rejects.toBe(bug);
    expect(host.context.store.get('order')).toBeUndefined();
  });

  it('a transient failure reruns the whole method with the same arguments and this, and options reach withTransaction', async () => {
    const host = hostOf();
    class Flaky {
      runs = 0;
      async write(value: string): Promise<number> {
        this.runs++;
        await host.handle.set('k', value);
        if (this.runs < 3) throw new TransientTransactionError('conflict');
        return host.tx.attempt;
      }
    }
    decorate(Flaky, 'write', { retry: { maxAttempts: 3, initialDelayMs: 0, maxDelayMs: 1 }, timeoutMs: 5_000 });
    const flaky = new Flaky();
    expect(await flaky.write('v')).toBe(3);
    expect(flaky.runs).toBe(3);
    expect(host.context.store.get('k')).toBe('v');
  });

  it('picks the context by name, and propagation options work as on withTransaction', async () => {
    const a = hostOf();
    const b = hostOf('audit');
    class Both {
      async main(): Promise<void> {
        await a.handle.set('x', 1);
        await this.side();
        throw new Error('main fails after the side unit committed');
      }
      async side(): Promise<void> {
        expect(a.current()).toBeDefined();
        await b.handle.set('y', 1);
      }
    }
    decorate(Both, 'main');
    decorate(Both, 'side', { context: 'audit', propagation: 'requires_new' });
    await expect(new Both().main()).rejects.toThrow('main fails');
    expect(a.context.store.get('x')).toBeUndefined();
    expect(b.context.store.get('y')).toBe(1);
  });

  it('a misspelt option fails the first call with a ConfigError before any work', async () => {
    const host = hostOf();
    let ran = false;
    class Typo {
      async go(): Promise<void> {
        ran = true;
      }
    }
    decorate(Typo, 'go', { timeoutMS: 100 } as object);
    const err = await new Typo().go().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/unknown option 'timeoutMS'/);
    expect(ran).toBe(false);
    expect(host.current()).toBeUndefined();
  });

  it('a call with no registered context names the method, the name and the fix', async () => {
    class Lonely {
      async charge(): Promise<void> {}
    }
    decorate(Lonely, 'charge', { context: 'billing' });
    const err = await new Lonely().charge().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/Lonely\.charge is @Transactional\(\{ context: 'billing' \}\) but no txkit context named 'billing' is registered/);
    expect((err as Error).message).toMatch(/TxkitModule\.forRoot\(\{ name: 'billing', context \}\)/);
  });

  it('refuses to decorate a field or an accessor', () => {
    const standard = Transactional() as unknown as (value: unknown, context: { kind: string; name: string }) => unknown;
    expect(() => standard(undefined, { kind: 'field', name: 'x' })).toThrow(/decorates methods, not a field \('x'\)/);
    expect(() => standard(() => 1, { kind: 'getter', name: 'y' })).toThrow(ConfigError);
  });
});

describe('@Transactional() as an experimentalDecorators decorator (NestJS)', () => {
  it('replaces the descriptor\'s method, keeps its name and the metadata other decorators stored on it', async () => {
    const host = hostOf();
    class Service {
      async save(v: number): Promise<number> {
        await host.handle.set('v', v);
        return v;
      }
    }
    const descriptor = Object.getOwnPropertyDescriptor(Service.prototype, 'save') as PropertyDescriptor;
    const original = descriptor.value as object;
    const meta = new Map<object, Map<unknown, unknown>>();
    const reflect = Reflect as unknown as Record<string, unknown>;
    reflect.getOwnMetadataKeys = (t: object) => [...(meta.get(t)?.keys() ?? [])];
    reflect.getOwnMetadata = (k: unknown, t: object) => meta.get(t)?.get(k);
    reflect.defineMetadata = (k: unknown, v: unknown, t: object) => meta.set(t, (meta.get(t) ?? new Map()).set(k, v));
    try {
      meta.set(original, new Map([['path', '/save']]));
      const legacy = Transactional() as unknown as (t: object, k: string, d: PropertyDescriptor) => PropertyDescriptor;
      const out = legacy(Service.prototype, 'save', descriptor);
      Object.defineProperty(Service.prototype, 'save', out);
      expect(out.value).not.toBe(original);
      expect((out.value as { name: string }).name).toBe('save');
      expect(meta.get(out.value as object)?.get('path')).toBe('/save');
    } finally {
      delete reflect.getOwnMetadataKeys;
      delete reflect.getOwnMetadata;
      delete reflect.defineMetadata;
    }
    expect(await new Service().save(7)).toBe(7);
    expect(host.context.store.get('v')).toBe(7);
  });

  it('refuses a property without a method', () => {
    const legacy = Transactional() as unknown as (t: object, k: string, d?: PropertyDescriptor) => unknown;
    expect(() => legacy({}, 'field')).toThrow(/decorates methods, not a property or accessor \('field'\)/);
    expect(() => legacy({}, 'getter', { get: () => 1 })).toThrow(ConfigError);
  });
});

describe('TransactionHost', () => {
  it('tx outside a transaction is a TransactionPropagationError that says where to read it', () => {
    const host = hostOf();
    expect(() => host.tx).toThrow(TransactionPropagationError);
    expect(() => host.handle).toThrow(/inside a @Transactional\(\) method/);
  });

  it('withTransaction runs on its context; a timer that outlives the method does not see its ended transaction', async () => {
    const host = hostOf();
    let later: Promise<boolean> | undefined;
    await host.withTransaction(async (tx) => {
      await tx.handle.set('a', 1);
      later = new Promise((resolve) => setTimeout(() => resolve(host.current() === undefined), 5));
    });
    expect(await later).toBe(true);
    expect(host.context.store.get('a')).toBe(1);
  });

  it('the newest registration of a name wins, and removing it uncovers the one before', async () => {
    const first = hostOf();
    const second = hostOf();
    let used: TransactionHost<MemoryTxHandle> | undefined;
    class Probe {
      async go(): Promise<void> {
        used = first.current() !== undefined ? first : second.current() !== undefined ? second : undefined;
      }
    }
    decorate(Probe, 'go');
    await new Probe().go();
    expect(used).toBe(second);
    await second.onApplicationShutdown();
    await new Probe().go();
    expect(used).toBe(first);
  });

  it('closes its context on application shutdown unless told not to', async () => {
    const closing = hostOf();
    await closing.onApplicationShutdown();
    await expect(closing.withTransaction(async () => 1)).rejects.toMatchObject({ code: 'CONTEXT_CLOSED' });

    const ctx = memoryTransactions();
    const keeping = new TransactionHost(ctx, { closeOnShutdown: false });
    keeping.onModuleInit();
    await keeping.onApplicationShutdown();
    expect(await ctx.withTransaction(async () => 1)).toBe(1);
    await ctx.close();
  });

  it('refuses something that is not a context', () => {
    expect(() => new TransactionHost({} as never)).toThrow(/needs a txkit transaction context/);
  });
});

describe('TxkitModule', () => {
  it('forRoot provides the context and its host under their tokens, as a global module', async () => {
    const ctx = memoryTransactions();
    const mod = TxkitModule.forRoot({ context: ctx });
    expect(mod.module).toBe(TxkitModule);
    expect(mod.global).toBe(true);
    expect(mod.exports).toEqual([transactionContextToken(), TransactionHost]);
    const [contextProvider, hostProvider] = mod.providers;
    expect(contextProvider?.provide).toBe('txkit:context:default');
    expect((contextProvider?.useFactory as () => unknown)()).toBe(ctx);
    expect(hostProvider?.provide).toBe(TransactionHost);
    expect(hostProvider?.inject).toEqual(['txkit:context:default']);
    const host = (hostProvider?.useFactory as (c: unknown) => TransactionHost<unknown>)(ctx);
    expect(host.context).toBe(ctx);
    await ctx.close();
  });

  it('a named context gets its own tokens', () => {
    const mod = TxkitModule.forRoot({ context: memoryTransactions(), name: 'audit' });
    expect(mod.exports).toEqual(['txkit:context:audit', 'txkit:host:audit']);
    expect(transactionHostToken('audit')).toBe('txkit:host:audit');
  });

  it('forRootAsync builds the context with injected providers and checks what the factory returns', async () => {
    const mod = TxkitModule.forRootAsync({ useFactory: (n: number) => memoryTransactions({ retry: { maxAttempts: n } }), inject: ['ATTEMPTS'] });
    const provider = mod.providers[0];
    expect(provider?.inject).toEqual(['ATTEMPTS']);
    const ctx = (await (provider?.useFactory as (n: number) => Promise<{ backend: string; close(): Promise<void> }>)(2));
    expect(ctx.backend).toBe('memory');
    await ctx.close();

    const bad = TxkitModule.forRootAsync({ useFactory: () => ({}) as never });
    await expect((bad.providers[0]?.useFactory as () => Promise<unknown>)()).rejects.toThrow(/returned object, not a txkit transaction context/);
  });

  it('refuses a missing or wrong context, unknown options and a bad name with ConfigErrors', () => {
    expect(() => TxkitModule.forRoot({} as never)).toThrow(/takes a txkit transaction context .* got undefined; to build it from other providers use TxkitModule\.forRootAsync/);
    expect(() => TxkitModule.forRoot({ context: memoryTransactions(), closeOnShutdwn: false } as never)).toThrow(/unknown option 'closeOnShutdwn' in TxkitModule\.forRoot/);
    expect(() => TxkitModule.forRoot({ context: memoryTransactions(), name: '' })).toThrow(/name.*non-empty string/);
    expect(() => TxkitModule.forRootAsync({} as never)).toThrow(/needs useFactory/);
    expect(() => Transactional({ context: 42 } as never)).toThrow(/takes the name a context was registered under, got number/);
  });
});
