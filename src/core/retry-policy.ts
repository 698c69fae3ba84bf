import { backoff, wait } from './backoff.js';
import { ConfigError, TransactionAbortedError } from './errors.js';
import type { BackendName, RetryPolicy } from './types.js';

/** Defaults from the MongoDB convenient-transaction API (120 s budget) with capped, jittered back-off. */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  deadlineMs: 120_000,
  maxAttempts: Number.POSITIVE_INFINITY,
  initialDelayMs: 5,
  maxDelayMs: 500,
  multiplier: 1.5,
  jitter: 'full',
});

/** The policy of a run that must not retry at all. */
export const NO_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({ ...DEFAULT_RETRY_POLICY, maxAttempts: 1 });

const RETRY_FIELDS: readonly (keyof RetryPolicy)[] = ['deadlineMs', 'maxAttempts', 'initialDelayMs', 'maxDelayMs', 'multiplier', 'jitter'];

/**
 * Merges a partial policy over `base` and validates it; `false` gives a
 * policy of a single attempt and `undefined` gives `base`.
 * @throws ConfigError when a field is unknown or out of range (e.g. a
 *   non-finite `deadlineMs` or a `multiplier` below 1).
 */
export function resolveRetryPolicy(
  given: Partial<RetryPolicy> | false | undefined,
  base: Readonly<RetryPolicy> = DEFAULT_RETRY_POLICY,
  backend?: BackendName,
): Readonly<RetryPolicy> {
  if (given === false) return NO_RETRY_POLICY;
  if (given === undefined) return base;
  if (typeof given !== 'object' || given === null) {
    throw new ConfigError(`retry must be an object or false, got ${typeof given}`, { backend });
  }
  const unknown = Object.keys(given).filter((k) => !RETRY_FIELDS.includes(k as keyof RetryPolicy));
  if (unknown.length > 0) {
    throw new ConfigError(`retry has unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; the fields are ${RETRY_FIELDS.join(', ')}`, {
      backend,
    });
  }
  const policy = { ...base, ...stripUndefined(given) };
  const positive = (name: keyof RetryPolicy, allowZero: boolean): void => {
    const v = policy[name];
    if (typeof v !== 'number' || Number.isNaN(v) || v < 0 || (!allowZero && v === 0)) {
      throw new ConfigError(
        `retry.${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${String(v)}`,
        { backend },
      );
    }
  };
  positive('deadlineMs', false);
  positive('maxAttempts', false);
  positive('initialDelayMs', true);
  positive('maxDelayMs', true);
  positive('multiplier', false);
  if (policy.maxAttempts !== Number.POSITIVE_INFINITY && !Number.isInteger(policy.maxAttempts)) {
    throw new ConfigError(`retry.maxAttempts must be a whole number or Infinity, got ${policy.maxAttempts}`, { backend });
  }
  if (!Number.isFinite(policy.deadlineMs)) {
    throw new ConfigError('retry.deadlineMs must be finite: it is what bounds the retries; use a large value such as 600000 for a long budget', { backend });
  }
  if (policy.multiplier < 1) {
    throw new ConfigError(`retry.multiplier must be at least 1, got ${policy.multiplier}`, { backend });
  }
  if (policy.jitter !== 'full' && policy.jitter !== 'none') {
    throw new ConfigError(`retry.jitter must be 'full' or 'none', got ${String(policy.jitter)}`, { backend });
  }
  return Object.freeze(policy);
}

/**
 * Delay before rerun n (n >= 1): random[0,1) * min(initial * multiplier^(n-1), max),
 * the capped full-jitter back-off of the MongoDB transactions spec.
 */
export function backoffDelay(policy: Readonly<RetryPolicy>, n: number, random: () => number = Math.random): number {
  return backoff({ initialMs: policy.initialDelayMs, maxMs: policy.maxDelayMs, multiplier: policy.multiplier, jitter: policy.jitter }, n, random);
}

/** Waits `ms`, or rejects with TransactionAbortedError as soon as `signal` fires. */
export async function sleep(ms: number, signal: AbortSignal | undefined, backend?: BackendName): Promise<void> {
  if (signal?.aborted === true) throw abortedError(signal, backend, 'retry back-off');
  if (ms <= 0) return;
  if ((await wait(ms, signal)) === 'aborted') throw abortedError(signal as AbortSignal, backend, 'retry back-off');
}

export function abortedError(signal: AbortSignal, backend: BackendName | undefined, during: string): TransactionAbortedError {
  return new TransactionAbortedError(
    `the ${backend ?? ''} transaction was cancelled by the caller's AbortSignal during ${during}`.replace('  ', ' '),
    { backend, cause: signal.reason },
  );
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
