import type { BackendName } from './backend.js';
import { brandError, hasErrorBrand } from './error-brand.js';
import type { ErrorCode, NativeErrorCode } from './error-codes.js';

/** How an adapter (or the core) judges a failure. Only `transient` reruns the unit. */
export type Classification = 'transient' | 'commit-unknown' | 'fatal';

/** Constructor options shared by the txkit error classes. */
export interface TxkitErrorOptions {
  /** The backend the error came from. */
  backend?: BackendName | undefined;
  /** The underlying error, kept untouched as `cause`. */
  cause?: unknown;
  /** Whether rerunning the whole unit is safe. @default false */
  retriable?: boolean;
}

/**
 * Base of every error txkit throws. `cause` is the native error, untouched.
 * `retriable` defaults to false: an error nobody classified is never retried.
 *
 * `instanceof` holds across copies of txkit: an error made by the CommonJS
 * build is an `instanceof TransientTransactionError` of the ESM build (and of
 * another installed version), so each copy retries what the other classified.
 */
export class TxkitError extends Error {
  /** Recognises txkit errors by their registered brand, not by which copy of txkit made them. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasErrorBrand(this, value);
  }

  /**
   * Machine-readable reason, e.g. `CONFIG`, `TRANSIENT`, `TX_TIMEOUT`: one of {@link txkit!ErrorCodes},
   * or, on errors the Kafka adapter passes on, the backend's own name ({@link txkit!NativeErrorCode}).
   */
  readonly code: ErrorCode | NativeErrorCode;
  /** The backend the error came from, when known. */
  readonly backend: BackendName | undefined;
  /** True when rerunning the whole unit is safe; `withTransaction` retries only such errors. */
  readonly retriable: boolean;
  /** Set when aborting after this error also failed: the abort's error, kept so it never hides this one. */
  abortError: unknown = undefined;

  constructor(code: ErrorCode | NativeErrorCode, message: string, options: TxkitErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    brandError(this, new.target);
    this.code = code;
    this.backend = options.backend;
    this.retriable = options.retriable ?? false;
  }
}

/** A failure after which rerunning the whole unit is safe: deadlock, write conflict, serialization failure. */
export class TransientTransactionError extends TxkitError {
  constructor(message: string, options: Omit<TxkitErrorOptions, 'retriable'> & { code?: ErrorCode | NativeErrorCode } = {}) {
    super(options.code ?? 'TRANSIENT', message, { ...options, retriable: true });
  }
}

/**
 * The commit may or may not have been applied. The unit is never rerun
 * blindly on this error; only the commit is retried or its outcome resolved.
 */
export class UnknownCommitResultError extends TxkitError {
  declare readonly code: ErrorCode;
  constructor(message: string, options: Omit<TxkitErrorOptions, 'retriable'> & { code?: ErrorCode } = {}) {
    super(options.code ?? 'COMMIT_UNKNOWN', message, options);
  }
}

/** The retry deadline passed (code RETRY_DEADLINE) or a transaction outlived its `timeoutMs` (code TX_TIMEOUT). */
export class TransactionTimeoutError extends TxkitError {
  declare readonly code: 'RETRY_DEADLINE' | 'TX_TIMEOUT';
  /** Time spent before giving up, in milliseconds. */
  readonly elapsedMs: number;
  constructor(
    code: 'RETRY_DEADLINE' | 'TX_TIMEOUT',
    message: string,
    options: Omit<TxkitErrorOptions, 'retriable'> & { elapsedMs: number },
  ) {
    super(code, message, options);
    this.elapsedMs = options.elapsedMs;
  }
}

/** The caller's AbortSignal fired; `cause` is the signal's reason. */
export class TransactionAbortedError extends TxkitError {
  declare readonly code: ErrorCode;
  constructor(message: string, options: Omit<TxkitErrorOptions, 'retriable'> = {}) {
    super('ABORTED', message, options);
  }
}

/** A method was called in a state that does not allow it (commit after abort, a handle used after the end, ...). */
export class TransactionStateError extends TxkitError {
  declare readonly code: ErrorCode;
  /** The state the transaction (or `closed` for a context) was in. */
  readonly state: string | undefined;
  /** The method that was refused. */
  readonly method: string | undefined;
  constructor(
    message: string,
    options: Omit<TxkitErrorOptions, 'retriable'> & { state?: string; method?: string; code?: ErrorCode } = {},
  ) {
    super(options.code ?? 'INVALID_STATE', message, options);
    this.state = options.state;
    this.method = options.method;
  }
}

/** A propagation mode's precondition failed (e.g. `mandatory` without an ambient transaction). */
export class TransactionPropagationError extends TxkitError {
  declare readonly code: ErrorCode;
  constructor(message: string, options: Omit<TxkitErrorOptions, 'retriable'> = {}) {
    super('PROPAGATION', message, options);
  }
}

/** Another instance took over this producer/session (Kafka zombie fencing). Fatal: rebuild the client. */
export class FencedError extends TxkitError {
  declare readonly code: ErrorCode;
  constructor(message: string, options: Omit<TxkitErrorOptions, 'retriable'> = {}) {
    super('FENCED', message, options);
  }
}

/** Invalid options or API misuse detected before any work was done. */
export class ConfigError extends TxkitError {
  declare readonly code: ErrorCode;
  constructor(message: string, options: Omit<TxkitErrorOptions, 'retriable'> = {}) {
    super('CONFIG', message, options);
  }
}

/**
 * The transaction committed durably, then one or more afterCommit hooks
 * failed. Every hook still ran; `errors` holds each failure in order.
 */
export class AfterCommitHookError extends TxkitError {
  declare readonly code: ErrorCode;
  /** Every hook failure, in hook order; `cause` is the first. */
  readonly errors: readonly unknown[];
  /** Always true: the transaction committed. */
  readonly committed = true as const;
  constructor(errors: readonly unknown[], options: Omit<TxkitErrorOptions, 'retriable' | 'cause'> = {}) {
    super(
      'HOOK_FAILED',
      `the ${options.backend ?? ''} transaction committed, but ${errors.length} afterCommit hook(s) failed; ` +
        'the commit stands: handle the failures in `errors` (do not rerun the transaction)',
      { ...options, cause: errors[0] },
    );
    this.errors = errors;
  }
}

/**
 * The core's own judgement of errors it or a user raised on purpose; `undefined`
 * for anything else, which the adapter classifies.
 */
export function classifyKnown(err: unknown): Classification | undefined {
  if (err instanceof UnknownCommitResultError) return 'commit-unknown';
  if (err instanceof TxkitError) return err.retriable ? 'transient' : 'fatal';
  return undefined;
}
