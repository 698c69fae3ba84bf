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

/** Given to {@link Telemetry.startTransaction} when a unit of work starts. */
export interface TransactionStartEvent {
  /** The backend of the context. */
  readonly backend: BackendName;
  /** The propagation of the call that opened the unit (`required`, `requires_new` or `nested` without a running transaction). */
  readonly propagation: Propagation;
}

/** Given to {@link TransactionObserver.attemptStarted} before each attempt begins. */
export interface AttemptEvent {
  /** 1 on the first run, +1 per rerun. */
  readonly attempt: number;
}

/** Given to {@link TransactionObserver.retry} when a transient failure reruns the unit. */
export interface RetryEvent {
  /** The attempt that failed. */
  readonly attempt: number;
  /** Which step failed. */
  readonly reason: RetryReason;
  /** Back-off before the next attempt. */
  readonly delayMs: number;
  /** The transient error. */
  readonly error: unknown;
  /** Low-cardinality name of the error: its `code`, else its class name (see {@link errorTypeOf}). */
  readonly errorType: string;
}

/** Given to {@link TransactionObserver.commitUnknown} each time a commit's result is unknown. */
export interface CommitUnknownEvent {
  /** The attempt whose commit is in doubt. */
  readonly attempt: number;
  /** 1 for the first commit of the attempt, +1 per retried or resolved commit. */
  readonly commitTry: number;
  /** The error that left the result unknown. */
  readonly error: unknown;
  /** Low-cardinality name of the error (see {@link errorTypeOf}). */
  readonly errorType: string;
}

/** Given to {@link TransactionObserver.commitResolved} when a commit that was unknown settles or is given up. */
export interface CommitResolvedEvent {
  /** The attempt whose commit was in doubt. */
  readonly attempt: number;
  /** How it ended. */
  readonly resolution: CommitUnknownResolution;
  /** Commits sent or resolved for this attempt, the first one included. */
  readonly commitTries: number;
}

/** Given to {@link TransactionObserver.end} once, when the unit returns or throws. */
export interface TransactionEndEvent {
  /** How the unit ended. */
  readonly outcome: TransactionOutcome;
  /** Attempts run, the last one included. */
  readonly attempts: number;
  /** Time from the call to its end, all attempts and back-offs included. */
  readonly durationMs: number;
  /** Id of the last attempt's transaction, when one was opened. */
  readonly transactionId: string | undefined;
  /** Set when `outcome` is `error`: what the caller got. */
  readonly error?: unknown;
  /** Set when `outcome` is `error`: low-cardinality name of the error (see {@link errorTypeOf}). */
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
  /** An attempt is about to begin its transaction. */
  attemptStarted?(event: AttemptEvent): void;
  /** An attempt failed transiently and the unit will run again after `delayMs`. */
  retry?(event: RetryEvent): void;
  /** A commit's result is unknown; the commit will be retried or resolved. */
  commitUnknown?(event: CommitUnknownEvent): void;
  /** A commit whose result was unknown settled, or was given up as unresolved. */
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
