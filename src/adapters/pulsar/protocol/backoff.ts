/** Exponential back-off with full jitter for reconnects: random in [0, min(initial * 2^n, max)), at least 10 ms. */
export class Backoff {
  #attempt = 0;
  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
  ) {}

  next(): number {
    const cap = Math.min(this.initialMs * 2 ** this.#attempt, this.maxMs);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    return Math.max(10, Math.floor(Math.random() * cap));
  }

  reset(): void {
    this.#attempt = 0;
  }
}

/** Resolves after `ms`, or at once when `signal` fires (then with false). */
export function delay(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
