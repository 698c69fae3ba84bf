import { ConfigError } from './errors.js';
import type { HookErrorHandler } from './hooks.js';
import { errorTypeOf } from './telemetry.js';
import type { CommitUnknownResolution, Logger, RetryReason, Telemetry, TransactionObserver } from './telemetry.js';
import type { RootTransaction } from './transaction.js';
import { TxState } from './tx-state.js';
import type { BackendName, Propagation } from './types.js';

/**
 * What the retry loop reports about one unit. The loop gets none when the
 * context has neither telemetry nor a logger, so an unobserved transaction
 * pays one undefined check per seam and allocates nothing for it.
 */
export interface UnitEvents {
  attemptStarted(attempt: number): void;
  opened(tx: RootTransaction<unknown>): void;
  retry(attempt: number, reason: RetryReason, delayMs: number, error: unknown): void;
  commitUnknown(attempt: number, commitTry: number, error: unknown): void;
  commitResolved(attempt: number, resolution: CommitUnknownResolution, commitTries: number): void;
}

const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/** Checks the `telemetry` and `logger` options of a context; both are optional. */
export function checkMonitorOptions(telemetry: unknown, logger: unknown, backend: BackendName): void {
  if (telemetry !== undefined && typeof (telemetry as Partial<Telemetry> | null)?.startTransaction !== 'function') {
    throw new ConfigError(
      "telemetry must be an object with a startTransaction() method, e.g. openTelemetry() from 'txkit/otel'",
      { backend },
    );
  }
  if (logger === undefined) return;
  if (typeof logger !== 'object' || logger === null) {
    throw new ConfigError(`logger must be an object with debug/info/warn/error methods (a pino logger fits), got ${typeof logger}`, {
      backend,
    });
  }
  for (const level of LOG_LEVELS) {
    const method = (logger as Record<string, unknown>)[level];
    if (method !== undefined && typeof method !== 'function') {
      throw new ConfigError(`logger.${level} must be a function (obj, msg) => void, got ${typeof method}`, { backend });
    }
  }
}

/** Sends afterAbort hook failures to the logger's `error` level. */
export function loggerHookErrorHandler(logger: Logger): HookErrorHandler {
  return (err, info) =>
    logger.error?.(
      { err, backend: info.backend, transactionId: info.transactionId, hook: info.hook },
      `txkit: an afterAbort hook of ${info.backend} transaction ${info.transactionId} failed`,
    );
}

/**
 * One per context that has telemetry or a logger: turns the loop's reports
 * into log lines and observer calls. Nothing the observer or logger throws
 * ever reaches the transaction.
 */
export class UnitMonitor implements UnitEvents {
  readonly #backend: BackendName;
  readonly #telemetry: Telemetry | undefined;
  readonly #logger: Logger | undefined;

  constructor(backend: BackendName, telemetry: Telemetry | undefined, logger: Logger | undefined) {
    this.#backend = backend;
    this.#telemetry = telemetry;
    this.#logger = logger;
  }

  /** Runs one unit, observed when telemetry asks for it; `body` is the retry loop. */
  run<T>(propagation: Propagation, body: (events: UnitEvents) => Promise<T>): Promise<T> {
    if (this.#telemetry === undefined) return body(this);
    let observer: TransactionObserver | undefined;
    try {
      observer = this.#telemetry.startTransaction({ backend: this.#backend, propagation });
    } catch (err) {
      this.hookFailed('startTransaction', err);
    }
    if (observer === undefined) return body(this);
    const unit = new ObservedUnit(this, observer);
    const execute = (): Promise<T> => {
      unit.began = true;
      return body(unit).then(
        (result) => {
          unit.end(false, undefined);
          return result;
        },
        (err: unknown) => {
          unit.end(true, err);
          throw err;
        },
      );
    };
    if (observer.runInScope === undefined) return execute();
    try {
      return observer.runInScope(execute);
    } catch (err) {
      this.hookFailed('runInScope', err);
      // A scope that failed before running the unit must not cost the caller the unit.
      if (!unit.began) return execute();
      throw err;
    }
  }

  attemptStarted(): void {}

  opened(): void {}

  retry(attempt: number, reason: RetryReason, delayMs: number, error: unknown): void {
    if (this.#logger?.debug === undefined) return;
    const backend = this.#backend;
    const obj = { backend, attempt, reason, delayMs: Math.round(delayMs), errorType: errorTypeOf(error), err: error };
    this.#log('debug', obj, `txkit: ${backend} transaction attempt ${attempt} failed (${reason}, transient); retrying`);
  }

  commitUnknown(attempt: number, commitTry: number, error: unknown): void {
    if (this.#logger?.warn === undefined) return;
    const backend = this.#backend;
    const obj = { backend, attempt, commitTry, errorType: errorTypeOf(error), err: error };
    this.#log(
      'warn',
      obj,
      `txkit: the result of ${backend} commit ${commitTry} of attempt ${attempt} is unknown; retrying or resolving the commit only`,
    );
  }

  commitResolved(attempt: number, resolution: CommitUnknownResolution, commitTries: number): void {
    const level = resolution === 'unresolved' ? 'error' : 'info';
    if (this.#logger?.[level] === undefined) return;
    const backend = this.#backend;
    const msg =
      resolution === 'unresolved'
        ? `txkit: the ${backend} commit result stayed unknown after ${commitTries} tries; check whether its effects are present`
        : `txkit: the unknown ${backend} commit result was settled: ${resolution.replace('_', ' ')}`;
    this.#log(level, { backend, attempt, resolution, commitTries }, msg);
  }

  /** A telemetry hook threw: the transaction goes on, the failure is reported once here. */
  hookFailed(hook: string, err: unknown): void {
    if (this.#logger?.error !== undefined) {
      this.#log('error', { backend: this.#backend, hook, err }, `txkit: telemetry hook ${hook} failed; the transaction was not affected`);
      return;
    }
    process.emitWarning(
      `txkit: telemetry hook ${hook} failed (the transaction was not affected): ${err instanceof Error ? err.message : String(err)}`,
      { code: 'TXKIT_TELEMETRY_FAILED' },
    );
  }

  #log(level: (typeof LOG_LEVELS)[number], obj: Record<string, unknown>, msg: string): void {
    try {
      // Called as a method: pino's methods need their `this`.
      this.#logger?.[level]?.(obj, msg);
    } catch (err) {
      process.emitWarning(`txkit: logger.${level} threw: ${err instanceof Error ? err.message : String(err)}`, {
        code: 'TXKIT_LOGGER_FAILED',
      });
    }
  }
}

/** One observed unit: forwards the loop's reports to its observer and to the context's logger. */
class ObservedUnit implements UnitEvents {
  readonly #monitor: UnitMonitor;
  readonly #observer: TransactionObserver;
  readonly #started = performance.now();
  #attempts = 0;
  #tx: RootTransaction<unknown> | undefined;
  #ended = false;
  began = false;

  constructor(monitor: UnitMonitor, observer: TransactionObserver) {
    this.#monitor = monitor;
    this.#observer = observer;
  }

  attemptStarted(attempt: number): void {
    this.#attempts = attempt;
    this.#tx = undefined;
    if (this.#observer.attemptStarted === undefined) return;
    try {
      this.#observer.attemptStarted({ attempt });
    } catch (err) {
      this.#monitor.hookFailed('attemptStarted', err);
    }
  }

  opened(tx: RootTransaction<unknown>): void {
    this.#tx = tx;
  }

  retry(attempt: number, reason: RetryReason, delayMs: number, error: unknown): void {
    this.#monitor.retry(attempt, reason, delayMs, error);
    if (this.#observer.retry === undefined) return;
    try {
      this.#observer.retry({ attempt, reason, delayMs, error, errorType: errorTypeOf(error) });
    } catch (err) {
      this.#monitor.hookFailed('retry', err);
    }
  }

  commitUnknown(attempt: number, commitTry: number, error: unknown): void {
    this.#monitor.commitUnknown(attempt, commitTry, error);
    if (this.#observer.commitUnknown === undefined) return;
    try {
      this.#observer.commitUnknown({ attempt, commitTry, error, errorType: errorTypeOf(error) });
    } catch (err) {
      this.#monitor.hookFailed('commitUnknown', err);
    }
  }

  commitResolved(attempt: number, resolution: CommitUnknownResolution, commitTries: number): void {
    this.#monitor.commitResolved(attempt, resolution, commitTries);
    if (this.#observer.commitResolved === undefined) return;
    try {
      this.#observer.commitResolved({ attempt, resolution, commitTries });
    } catch (err) {
      this.#monitor.hookFailed('commitResolved', err);
    }
  }

  end(failed: boolean, error: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    const durationMs = performance.now() - this.#started;
    const transactionId = this.#tx?.id;
    try {
      if (!failed) {
        const outcome = this.#tx?.state === TxState.committed ? 'committed' : 'aborted';
        this.#observer.end({ outcome, attempts: this.#attempts, durationMs, transactionId });
      } else {
        this.#observer.end({ outcome: 'error', attempts: this.#attempts, durationMs, transactionId, error, errorType: errorTypeOf(error) });
      }
    } catch (err) {
      this.#monitor.hookFailed('end', err);
    }
  }
}
