import type { BackendName, Propagation } from './types.js';

/**
 * Where a rerun of the whole unit came from: a transient failure of begin,
 * of the callback, of the commit, or an unknown commit that turned out
 * rolled back.
 */
export type RetryReason = 'begin' | 'callback' | 'commit' | 'commit_rolled_back';

/** How an unknown commit result ended: applied, rolled back (the unit reruns), or never settled. */
export type CommitUnknownResolution = 'committed' | 'rolled_back' | 'unresolved';

/** How a unit ended: committed, aborted by its callback without an error, or with an error thrown to the caller. */
export type TransactionOutcome = 'committed' | 'aborted' | 'error';

export interface TransactionStartEvent {
  readonly backend: BackendName;
  /** The propagation of the call that opened the unit (`required`, `requires_new` or `nested` without a running transaction). */
  readonly propagation: Propagation;
}

export interface AttemptEvent {
  /** 1 on the first run, +1 per rerun. */
  readonly attempt: number;
}

export interface RetryEvent {
  /** The attempt that failed. */
  readonly attempt: number;
  readonly reason: RetryReason;
  /** Back-off before the next attempt. */
  readonly delayMs: number;
  readonly error: unknown;
  /** Low-cardinality name of the error: its `code`, else its class name (see {@link errorTypeOf}). */
  readonly errorType: string;
}

export interface CommitUnknownEvent {
  readonly attempt: number;
  /** 1 for the first commit of the attempt, +1 per retried or resolved commit. */
  readonly commitTry: number;
  readonly error: unknown;
  readonly errorType: string;
}

export interface CommitResolvedEvent {
  readonly attempt: number;
  readonly resolution: CommitUnknownResolution;
  /** Commits sent or resolved for this attempt, the first one included. */
  readonly commitTries: number;
}

export interface TransactionEndEvent {
  readonly outcome: TransactionOutcome;
  /** Attempts run, the last one included. */
  readonly attempts: number;
  /** Time from the call to its end, all attempts and back-offs included. */
  readonly durationMs: number;
  /** Id of the last attempt's transaction, when one was opened. */
  readonly transactionId: string | undefined;
  /** Set when `outcome` is `error`: what the caller got. */
  readonly error?: unknown;
  readonly errorType?: string;
}

/**
 * Watches one unit of work (an outermost `withTransaction` call, every
 * attempt included). Every method but `end` is optional. A method that
 * throws never disturbs the transaction: the failure goes to the context's
 * logger (or a process warning, code TXKIT_TELEMETRY_FAILED).
 */
export interface TransactionObserver {
  /** Runs the whole unit; lets an implementation make its span the active one for the callback's own I/O. */
  runInScope?<T>(fn: () => Promise<T>): Promise<T>;
  attemptStarted?(event: AttemptEvent): void;
  retry?(event: RetryEvent): void;
  commitUnknown?(event: CommitUnknownEvent): void;
  commitResolved?(event: CommitResolvedEvent): void;
  /** Called exactly once, when the call returns or throws. */
  end(event: TransactionEndEvent): void;
}

/**
 * Hooks a context calls for each unit of work, so spans and metrics can be
 * recorded without the core knowing any telemetry library. `txkit/otel`
 * provides an OpenTelemetry implementation.
 */
export interface Telemetry {
  /** A unit starts, on the caller's async context. Return an observer, or undefined to leave this unit unobserved. */
  startTransaction(event: TransactionStartEvent): TransactionObserver | undefined;
}

/** A logging method with pino's signature: a context object first, then the message. */
export type LogMethod = (obj: Record<string, unknown>, msg: string) => void;

/**
 * The subset of a logger txkit calls; a pino (or bunyan-style) logger fits as
 * it is. Every level is optional; txkit logs nothing when no logger is given.
 * Levels used: `debug` for retries, `warn` for unknown commit results, `info`
 * when one is settled, `error` for one left unresolved and for failed hooks.
 */
export interface Logger {
  debug?: LogMethod;
  info?: LogMethod;
  warn?: LogMethod;
  error?: LogMethod;
}

/** A low-cardinality name for an error: a txkit or native `code`, else the class name. */
export function errorTypeOf(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
    if (typeof code === 'number') return String(code);
    if (err instanceof Error) return err.name;
  }
  return typeof err;
}
