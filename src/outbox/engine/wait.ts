/**
 * Resolves when `subscribe`'s callback fires, after `timeoutMs`, or when
 * `signal` aborts, whichever comes first; never rejects. `subscribe` returns
 * its unsubscribe function. Relays and pipelines wait with this between
 * looks, so a commit notification wakes them and a stop ends the wait.
 */
export function waitForWake(timeoutMs: number, signal?: AbortSignal, subscribe?: (wake: () => void) => () => void): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    // Filled in after subscribing; a callback firing during subscribe() finds it empty and that is fine.
    const subscription: { off?: (() => void) | undefined } = {};
    const done = (): void => {
      clearTimeout(timer);
      subscription.off?.();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    signal?.addEventListener('abort', done, { once: true });
    subscription.off = subscribe?.(done);
  });
}
