// This module imports nothing: the Pulsar client, which imports no other part
// of txkit, uses it as well.

/** The shape of an exponential, capped back-off. */
export interface BackoffShape {
  /** Delay before the first retry (before jitter), in ms. */
  readonly initialMs: number;
  /** Upper bound of the delay (before jitter), in ms. */
  readonly maxMs: number;
  /** Growth of the delay per attempt. */
  readonly multiplier: number;
  /** `full`: a random delay in [0, cap); `none`: exactly the cap. */
  readonly jitter: 'full' | 'none';
}

/**
 * Delay before retry `attempt` (1 for the first): the cap
 * `min(initialMs * multiplier^(attempt-1), maxMs)`, or with full jitter
 * `random() * cap`, a delay in [0, cap).
 */
export function backoff(shape: BackoffShape, attempt: number, random: () => number = Math.random): number {
  const cap = Math.min(shape.initialMs * shape.multiplier ** (attempt - 1), shape.maxMs);
  return shape.jitter === 'full' ? random() * cap : cap;
}

/** How a {@link wait} ended. */
export type WaitEnd = 'elapsed' | 'woken' | 'aborted';

/**
 * Resolves after `ms`, when `signal` aborts, or when `subscribe`'s callback
 * fires, whichever comes first, with how it ended; never rejects. A signal
 * already aborted ends it at once. `subscribe` returns its unsubscribe
 * function, called when the wait ends.
 */
export function wait(ms: number, signal?: AbortSignal, subscribe?: (wake: () => void) => () => void): Promise<WaitEnd> {
  if (signal?.aborted === true) return Promise.resolve('aborted');
  return new Promise((resolve) => {
    // Filled in after subscribing; a callback firing during subscribe() finds it empty and that is fine.
    const subscription: { off?: (() => void) | undefined } = {};
    let ended = false;
    const end = (how: WaitEnd): void => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      subscription.off?.();
      signal?.removeEventListener('abort', onAbort);
      resolve(how);
    };
    const onAbort = (): void => end('aborted');
    const timer = setTimeout(() => end('elapsed'), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
    subscription.off = subscribe?.(() => end('woken'));
  });
}
