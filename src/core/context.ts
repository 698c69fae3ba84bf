import { ambientValue, runWith } from './ambient.js';
import { NEVER_ABORTED, boundedBegin, checkBeginOptions } from './begin.js';
import type { DriverTransaction, TransactionDriver } from './driver.js';
import { ConfigError, TransactionPropagationError, TransactionStateError, classifyKnown } from './errors.js';
import type { Classification } from './errors.js';
import { FaultRegistry } from './faults.js';
import { OpenList } from './open-list.js';
import { defaultHookErrorHandler } from './hooks.js';
import type { HookErrorHandler } from './hooks.js';
import { abortedError, resolveRetryPolicy } from './retry-policy.js';
import { runTransaction } from './run-transaction.js';
import type { UnitHost } from './run-transaction.js';
import { JoinedTransaction } from './joined-transaction.js';
import { RootTransaction } from './transaction.js';
import { TxState } from './tx-state.js';
import type { RootDeps } from './transaction.js';
import type { Scope } from './scope.js';
import type { Logger, Telemetry } from './telemetry.js';
import { UnitMonitor, checkMonitorOptions, loggerHookErrorHandler } from './unit-monitor.js';
import { addExtras } from './extras.js';
import { BEGIN_OPTION_KEYS, beginOptionHints, checkKnownOptions, describeType, sameOption, showOption } from './options.js';
import type {
  BackendName,
  BeginOptions,
  OptionalPropagation,
  OptionalTransactionCallback,
  Propagation,
  RequiredPropagation,
  TransactionCallback,
  RetryPolicy,
  RunOptions,
  Transaction,
  TransactionContext,
} from './types.js';

/** Options every backend factory accepts besides its own, and {@link createTransactionContext} takes as they are. */
export interface ContextOptions<O extends object = {}> {
  /**
   * Retry policy of every withTransaction call on this context, merged over
   * {@link txkit!DEFAULT_RETRY_POLICY | DEFAULT_RETRY_POLICY}.
   * @default DEFAULT_RETRY_POLICY
   */
  retry?: Partial<RetryPolicy>;
  /** Options applied to every transaction of this context; each call's own options win. */
  defaults?: O & BeginOptions;
  /**
   * Where failures of afterAbort hooks go.
   * @default `logger.error` when a logger with an error level is given, else a process warning (code TXKIT_HOOK_FAILED)
   */
  onHookError?: HookErrorHandler;
  /**
   * Spans and metrics for each unit of work, e.g. `openTelemetry()` from `txkit/otel`.
   * @default none: nothing is recorded and an unobserved transaction costs nothing extra
   */
  telemetry?: Telemetry;
  /**
   * Receives retries, unknown commit results and failed hooks; a pino logger fits as it is.
   * @default none: txkit prints nothing
   */
  logger?: Logger;
}

const PROPAGATIONS: ReadonlySet<string> = new Set<Propagation>([
  'required',
  'requires_new',
  'nested',
  'mandatory',
  'never',
  'supports',
  'not_supported',
]);

const RUN_OPTION_KEYS = new Set(['propagation', 'retry']);
const PER_CALL_HINT = "'propagation' and 'retry' belong to each withTransaction call (the context's retry policy is its own 'retry' option).";
const CONTEXT_OPTION_KEYS: ReadonlySet<string> = new Set<keyof ContextOptions>(['retry', 'defaults', 'onHookError', 'telemetry', 'logger']);

/**
 * Wraps a driver into a TransactionContext. The core does the lifecycle,
 * state checks, ambient context, propagation, hooks and retry once, so each
 * adapter only opens, ends and classifies. The backend factories
 * (`knexTransactions`, `mongoTransactions`, ...) are built on it; call it
 * directly to add a backend of your own.
 * @throws ConfigError when `options` are invalid (retry policy, defaults, telemetry or logger).
 * @example
 * ```ts
 * import { createTransactionContext } from 'txkit';
 * import type { TransactionDriver } from 'txkit';
 *
 * const driver: TransactionDriver<MyConnection> = {
 *   backend: 'postgres',
 *   async begin() {
 *     const conn = await pool.acquire();
 *     await conn.query('BEGIN');
 *     return {
 *       handle: conn,
 *       commit: async () => { await conn.query('COMMIT'); pool.release(conn); },
 *       rollback: async () => { await conn.query('ROLLBACK'); pool.release(conn); },
 *     };
 *   },
 *   classify: (err) => (isDeadlock(err) ? 'transient' : 'fatal'),
 *   close: () => pool.drain(),
 * };
 * const ctx = createTransactionContext(driver, { retry: { deadlineMs: 10_000 } });
 * ```
 */
export function createTransactionContext<H, O extends object = {}>(
  driver: TransactionDriver<H, O>,
  options?: ContextOptions<O>,
): TransactionContext<H, O>;
/**
 * Wraps a driver into a TransactionContext that also carries `extras`: what
 * the backend gives its users besides transactions (the memory store, the
 * producer's transactional.id, the client...), as read-only properties of the
 * context, typed with it.
 * @throws ConfigError when `options` are invalid, `extras` is not an object, or
 *   one of its keys is a member of the context itself (`withTransaction`, `begin`, ...).
 * @example
 * ```ts
 * import { createTransactionContext } from 'txkit';
 *
 * const ctx = createTransactionContext(driver, {}, { pool });
 * ctx.pool; // typed as the pool given
 * ```
 */
export function createTransactionContext<H, O extends object, X extends object>(
  driver: TransactionDriver<H, O>,
  options: ContextOptions<O> | undefined,
  extras: X,
): TransactionContext<H, O> & Readonly<X>;
export function createTransactionContext<H, O extends object, X extends object>(
  driver: TransactionDriver<H, O>,
  options: ContextOptions<O> = {},
  extras?: X,
): TransactionContext<H, O> & Readonly<X> {
  const ctx = new CoreTransactionContext(driver, options);
  return extras === undefined ? (ctx as CoreTransactionContext<H, O> & X) : addExtras(ctx, extras, driver.backend);
}

/** The fault registry of a context made by createTransactionContext (for txkit/testing injectFaults), or undefined for any other object. */
export function faultRegistryOf(ctx: unknown): FaultRegistry | undefined {
  return CoreTransactionContext.faultsOf(ctx);
}

class CoreTransactionContext<H, O extends object> implements TransactionContext<H, O> {
  readonly backend: BackendName;
  readonly #driver: TransactionDriver<H, O>;
  readonly #open = new OpenList<RootTransaction<unknown>>();
  readonly #faults = new FaultRegistry();
  readonly #policy: Readonly<RetryPolicy>;
  readonly #defaults: (O & BeginOptions) | undefined;
  readonly #deps: RootDeps;
  /** The same for transactions begun by hand: with the driver's error translation, if it has one. */
  readonly #handDeps: RootDeps;
  /** The driver's translateError bound to it, or undefined when it has none. */
  readonly #translate: ((err: unknown) => unknown) | undefined;
  /** The retry loop's view of this context, made once. */
  readonly #host: UnitHost<H, O & BeginOptions>;
  /** Undefined unless telemetry or a logger was given: the unobserved path stays a single check. */
  readonly #monitor: UnitMonitor | undefined;
  #closing: Promise<void> | undefined;
  /** Every key a call's begin options may carry, when the driver declares its own (else keys are not checked). */
  #beginKeys: ReadonlySet<string> | undefined;
  /** The same plus the run-only keys (`propagation`, `retry`). */
  #runKeys: ReadonlySet<string> | undefined;

  constructor(driver: TransactionDriver<H, O>, options: ContextOptions<O>) {
    this.#driver = driver;
    this.backend = driver.backend;
    if (driver.optionKeys !== undefined) {
      this.#beginKeys = new Set([...BEGIN_OPTION_KEYS, ...driver.optionKeys]);
      this.#runKeys = new Set([...this.#beginKeys, ...RUN_OPTION_KEYS]);
    }
    if (typeof options !== 'object' || options === null) {
      throw new ConfigError(`the options of a ${driver.backend} transaction context must be an object, got ${describeType(options)}`, {
        backend: driver.backend,
      });
    }
    checkKnownOptions(options, CONTEXT_OPTION_KEYS, `the options of a ${driver.backend} transaction context`, driver.backend, beginOptionHints(driver as TransactionDriver<unknown, object>, options));
    this.#policy = resolveRetryPolicy(options.retry, undefined, driver.backend);
    if (options.defaults !== undefined) {
      if (typeof options.defaults !== 'object' || options.defaults === null) {
        throw new ConfigError(`defaults must be an object of transaction options, got ${describeType(options.defaults)}`, {
          backend: driver.backend,
        });
      }
      this.#checkOptions(options.defaults, 'defaults', false);
    }
    this.#defaults = options.defaults;
    const { telemetry, logger } = options;
    checkMonitorOptions(telemetry, logger, driver.backend);
    this.#monitor = telemetry === undefined && logger === undefined ? undefined : new UnitMonitor(driver.backend, telemetry, logger);
    const onHookError =
      options.onHookError ??
      (logger?.error === undefined ? defaultHookErrorHandler : loggerHookErrorHandler(logger));
    this.#deps = {
      backend: driver.backend,
      faults: this.#faults,
      classify: (err) => this.#classify(err),
      onAbortHookError: (err, tx) => onHookError(err, { backend: this.backend, transactionId: tx.id, hook: 'afterAbort' }),
      open: this.#open,
    };
    const { translateError } = driver;
    const translate = translateError === undefined ? undefined : (err: unknown): unknown => translateError.call(driver, err);
    this.#translate = translate;
    this.#handDeps = translate === undefined ? this.#deps : { ...this.#deps, translateError: translate };
    this.#host = {
      backend: this.backend,
      faults: this.#faults,
      begin: (attempt, beginOptions, unitState) => this.#beginNative(beginOptions, attempt, true, unitState),
      adopt: (dtx, attempt, beginOptions, startedAt) => this.#adopt(dtx, attempt, beginOptions, startedAt, true),
      refusal: (beginOptions) => this.#refusal(beginOptions),
      runScoped: (tx, body) => tx.run(this, body),
      classify: (err) => this.#classify(err),
      ...(translate === undefined ? {} : { translate }),
    };
  }

  /** The fault registry of a context made by createTransactionContext, or undefined for any other object. */
  static faultsOf(ctx: unknown): FaultRegistry | undefined {
    return typeof ctx === 'object' && ctx !== null && #faults in ctx ? ctx.#faults : undefined;
  }

  current(): Transaction<H> | undefined {
    return this.#joinable();
  }

  /**
   * The transaction of this async context, if it can still be joined. One that
   * has ended (a timer or an afterCommit hook running after its unit) is never
   * joined: the caller starts a new one, as code run after completion does in Spring.
   */
  #joinable(): Scope<H> | undefined {
    // The ambient scope of this context here (null inside `not_supported`).
    const scope = (ambientValue(this) as Scope<H> | null | undefined) ?? undefined;
    return scope !== undefined && scope.state === TxState.active ? scope : undefined;
  }

  begin(options?: O & BeginOptions): Promise<Transaction<H>> {
    return this.#translating(this.#beginByHand(options));
  }

  async #beginByHand(options: (O & BeginOptions) | undefined): Promise<Transaction<H>> {
    this.#assertOpen('begin');
    const merged = this.#merge(options);
    // `timeoutMs` counts from here, the wait to begin included.
    const startedAt = merged.timeoutMs === undefined ? undefined : Date.now();
    const tx = this.#adopt(await this.#beginNative(merged, 1, false), 1, merged, startedAt, false);
    const refused = this.#refusal(merged);
    if (refused !== undefined) {
      await tx.abortQuietly(refused);
      throw refused;
    }
    return tx;
  }

  withTransaction<T>(
    fn: OptionalTransactionCallback<H, T>,
    options: O & RunOptions & { propagation: OptionalPropagation },
  ): Promise<T>;
  withTransaction<T>(
    fn: TransactionCallback<H, T>,
    options?: O & RunOptions & { propagation?: RequiredPropagation },
  ): Promise<T>;
  withTransaction<T>(
    callback: TransactionCallback<H, T> | OptionalTransactionCallback<H, T>,
    options?: O & RunOptions,
  ): Promise<T> {
    // Only the optional modes call it with undefined; the overloads keep callers honest about that.
    return this.#propagate(callback as OptionalTransactionCallback<H, T>, options);
  }

  /**
   * `running` with its error as the driver would have it told. A unit's loop translates its own error (see
   * UnitHost.translate), without the promise this costs.
   */
  #translating<T>(running: Promise<T>): Promise<T> {
    const translate = this.#translate;
    return translate === undefined ? running : running.catch((err: unknown) => Promise.reject(translate(err)));
  }

  /** Runs `fn` as `propagation` says: in a new unit, joined to the running transaction, in a savepoint, or without one. */
  #propagate<T>(fn: OptionalTransactionCallback<H, T>, options: (O & RunOptions) | undefined): Promise<T> {
    try {
      this.#assertOpen('withTransaction');
      if (typeof fn !== 'function') {
        throw new ConfigError(`withTransaction needs a callback function, got ${describeType(fn)}`, {
          backend: this.backend,
        });
      }
      const propagation = options?.propagation ?? 'required';
      if (!PROPAGATIONS.has(propagation)) {
        throw new ConfigError(
          `unknown propagation '${String(propagation)}'; use one of ${[...PROPAGATIONS].join(', ')}`,
          { backend: this.backend },
        );
      }
      const ambient = this.#joinable();
      switch (propagation) {
        case 'required':
          return ambient ? this.#translating(this.#join(ambient, fn, options)) : this.#runUnit(fn, options, propagation);
        case 'requires_new':
          return this.#runUnit(fn, options, propagation);
        case 'nested':
          if (!ambient) return this.#runUnit(fn, options, propagation);
          if (!ambient.root.savepoints) {
            throw new TransactionPropagationError(
              `propagation 'nested' needs savepoints, which the ${this.backend} adapter does not have; ` +
                "use 'required' to join the running transaction or 'requires_new' for an independent one",
              { backend: this.backend },
            );
          }
          this.#checkJoin(ambient, options, propagation);
          return this.#translating(this.#runSavepoint(ambient, fn));
        case 'mandatory':
          if (!ambient) {
            throw new TransactionPropagationError(
              `propagation 'mandatory' needs a running ${this.backend} transaction in this async context, and there is none; ` +
                'call this inside withTransaction',
              { backend: this.backend },
            );
          }
          return this.#translating(this.#join(ambient, fn, options));
        case 'never':
          if (ambient) {
            throw new TransactionPropagationError(
              `propagation 'never' forbids a running ${this.backend} transaction, and one (${ambient.id}) is active here; ` +
                "use 'not_supported' to run outside it",
              { backend: this.backend },
            );
          }
          return this.#translating(fn(undefined));
        case 'supports':
          return this.#translating(ambient ? this.#join(ambient, fn, options) : fn(undefined));
        case 'not_supported':
          return this.#translating(runWith(this, null, fn, undefined));
      }
    } catch (err) {
      return this.#translating(Promise.reject(err));
    }
    return Promise.reject(new ConfigError('unreachable propagation', { backend: this.backend }));
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      const reason = new TransactionStateError(`the ${this.backend} transaction context was closed`, {
        backend: this.backend,
        code: 'CONTEXT_CLOSED',
      });
      await Promise.all(this.#open.values().map((tx) => tx.closeAbort(reason)));
      await this.#driver.close();
    })();
    return this.#closing;
  }

  #classify(err: unknown): Classification {
    return classifyKnown(err) ?? this.#driver.classify(err);
  }

  #assertOpen(method: string): void {
    if (this.#closing !== undefined) {
      throw new TransactionStateError(`${method}() is not allowed: this ${this.backend} transaction context is closed; create a new context (close() is final)`, {
        backend: this.backend,
        method,
        state: 'closed',
        code: 'CONTEXT_CLOSED',
      });
    }
  }

  /** Begin options of one call over the context's defaults, without the run-only keys. */
  #merge(options: (O & RunOptions) | (O & BeginOptions) | undefined): O & BeginOptions {
    if (options === undefined) return this.#defaults ?? EMPTY_OPTIONS;
    this.#checkOptions(options, 'options', true);
    const merged: Record<string, unknown> = { ...this.#defaults };
    for (const key in options) {
      if (!RUN_OPTION_KEYS.has(key)) merged[key] = (options as Record<string, unknown>)[key];
    }
    checkBeginOptions(merged as BeginOptions, this.backend);
    this.#driver.validateOptions?.(merged as O);
    return merged as O & BeginOptions;
  }

  /** Refuses keys neither the core nor the driver knows, when the driver declares its keys. */
  #checkOptions(options: object, what: 'options' | 'defaults', run: boolean): void {
    if (typeof options !== 'object' || options === null) {
      throw new ConfigError(`the ${what} of a ${this.backend} transaction must be an object, got ${describeType(options)}`, {
        backend: this.backend,
      });
    }
    const keys = run ? this.#runKeys : this.#beginKeys;
    if (keys !== undefined) {
      const hints: Record<string, string> = run ? {} : { propagation: PER_CALL_HINT, retry: PER_CALL_HINT };
      checkKnownOptions(options, keys, `the ${what} of a ${this.backend} transaction`, this.backend, hints);
    }
    if (!run) {
      checkBeginOptions(options as BeginOptions, this.backend);
      this.#driver.validateOptions?.(options as O);
    }
  }

  /** Begins the native transaction of a unit's attempt (`unit`) or of a begin by hand, bounded by the signal and `timeoutMs`. */
  #beginNative(options: O & BeginOptions, attempt: number, unit: boolean, unitState?: unknown): Promise<DriverTransaction<H>> {
    const signal = options.signal;
    if (signal?.aborted) throw abortedError(signal, this.backend, 'begin');
    this.#faults.raise('begin', this.backend);
    const beginning = this.#driver.begin(options, signal ?? NEVER_ABORTED, { attempt, unit, ambient: this.#joinable(), unitState });
    return signal === undefined && options.timeoutMs === undefined ? beginning : boundedBegin(beginning, signal, options.timeoutMs, this.backend);
  }

  /** A begun native transaction as a root transaction of this context, which close() will abort while it is open. */
  #adopt(dtx: DriverTransaction<H>, attempt: number, options: O & BeginOptions, startedAt: number | undefined, unit: boolean): RootTransaction<H> {
    // Only a transaction begun by hand hands errors of its commit() and abort() straight to the caller.
    return new RootTransaction(dtx, unit ? this.#deps : this.#handDeps, attempt, options, startedAt);
  }

  /** The context may have closed, or the signal fired, while a begin was in flight: the transaction it opened must not run. */
  #refusal(options: BeginOptions): unknown {
    if (this.#closing !== undefined) {
      return new TransactionStateError(`the ${this.backend} transaction context was closed during begin`, {
        backend: this.backend,
        code: 'CONTEXT_CLOSED',
      });
    }
    return options.signal?.aborted ? abortedError(options.signal, this.backend, 'begin') : undefined;
  }

  #runUnit<T>(fn: (tx: Transaction<H>) => Promise<T>, options: (O & RunOptions) | undefined, propagation: Propagation): Promise<T> {
    const policy = resolveRetryPolicy(options?.retry, this.#policy, this.backend);
    const merged = this.#merge(options);
    if (this.#driver.runUnit === undefined) return this.#runLoop(fn, policy, merged, propagation, undefined);
    // The driver's state for this unit reaches each attempt's begin.
    return this.#driver.runUnit((unitState) => this.#runLoop(fn, policy, merged, propagation, unitState));
  }

  #runLoop<T>(
    fn: (tx: Transaction<H>) => Promise<T>,
    policy: Readonly<RetryPolicy>,
    options: O & BeginOptions,
    propagation: Propagation,
    unitState: unknown,
  ): Promise<T> {
    const monitor = this.#monitor;
    if (monitor === undefined) return runTransaction(this.#host, fn, policy, options, undefined, undefined, unitState);
    return monitor.run(propagation, (events) => runTransaction(this.#host, fn, policy, options, undefined, events, unitState));
  }

  /**
   * Joined scopes never retry on their own: the error reaches the unit that
   * opened the transaction. The scope is tracked until it ends, so the unit
   * cannot commit while a joined call it forgot to await is still running.
   */
  #join<T>(scope: Scope<H>, fn: (tx: Transaction<H>) => Promise<T>, options: (O & RunOptions) | undefined): Promise<T> {
    this.#checkJoin(scope, options, 'join');
    const joined = (async () => {
      try {
        return await fn(new JoinedTransaction(scope));
      } catch (err) {
        scope.markRollbackOnly(err);
        throw err;
      }
    })();
    return scope.track(joined);
  }

  /**
   * A scope that joins (or nests in) a running transaction takes that
   * transaction as it is: its options are checked like any call's, and one that
   * asks for other transaction options than the running one has is refused.
   */
  #checkJoin(scope: Scope<H>, options: (O & RunOptions) | undefined, how: 'join' | 'nested'): void {
    if (options === undefined) return;
    this.#merge(options);
    resolveRetryPolicy(options.retry, this.#policy, this.backend);
    const running = scope.root.options as Record<string, unknown>;
    for (const key in options) {
      if (RUN_OPTION_KEYS.has(key) || BEGIN_OPTION_KEYS.has(key)) continue;
      const asked = (options as Record<string, unknown>)[key];
      if (asked === undefined || sameOption(asked, running[key])) continue;
      throw new TransactionPropagationError(
        `this call asks for ${key}=${showOption(asked)}, but the running ${this.backend} transaction it would ${how === 'join' ? 'join' : 'nest in'} ` +
          `has ${key}=${showOption(running[key])}; a transaction's options cannot change once it runs: use propagation 'requires_new' ` +
          `for an independent transaction with these options, or leave ${key} out to take the running one's`,
        { backend: this.backend },
      );
    }
  }

  #runSavepoint<T>(parent: Scope<H>, fn: (tx: Transaction<H>) => Promise<T>): Promise<T> {
    return parent.track(this.#savepointScope(parent, fn));
  }

  async #savepointScope<T>(parent: Scope<H>, fn: (tx: Transaction<H>) => Promise<T>): Promise<T> {
    const sp = await parent.openSavepoint();
    let result: T;
    try {
      result = await runWith(this, sp, fn, sp);
    } catch (err) {
      if (sp.state === 'active') {
        try {
          await sp.abort(err);
        } catch (rollbackError) {
          parent.markRollbackOnly(rollbackError);
        }
      }
      throw err;
    }
    if (sp.state === 'active') await sp.commit();
    return result;
  }
}

const EMPTY_OPTIONS = Object.freeze({}) as never;
