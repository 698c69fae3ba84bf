import { PulsarServerError } from './errors.js';

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

/** A refusal that reconnecting cannot fix. */
export function isPermanent(err: unknown): boolean {
  return err instanceof PulsarServerError && !err.retriable;
}

export interface ReconnectOptions {
  backoff: Backoff;
  /** Whether reconnecting is still wanted (the producer or consumer is not closed or ready). */
  active: () => boolean;
  /** Ends the wait between tries at once (the client closed). */
  signal: AbortSignal;
  /** One try; resolving ends the loop. */
  attempt: () => Promise<void>;
  /** A permanent refusal ends the loop here. */
  onPermanent: (err: Error) => void;
}

/** The reconnect loop of producers and consumers: back off, try again, until connected, no longer wanted, or refused for good. */
export async function reconnectUntil({ backoff, active, signal, attempt, onPermanent }: ReconnectOptions): Promise<void> {
  while (active()) {
    if (!(await delay(backoff.next(), signal))) return;
    try {
      await attempt();
      return;
    } catch (err) {
      if (isPermanent(err)) {
        onPermanent(err as Error);
        return;
      }
    }
  }
}
