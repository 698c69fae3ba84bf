// src/core/backoff.ts imports nothing: the one module of txkit's core the client shares.
import { backoff, wait } from '../core/backoff.js';
import { PulsarClosedError, PulsarServerError } from './errors.js';
import type { PulsarServerErrorName } from './errors.js';

/** Exponential back-off with full jitter for reconnects: random in [0, min(initial * 2^n, max)), at least 10 ms. */
export class Backoff {
  #attempt = 0;
  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
  ) {}

  next(): number {
    const ms = backoff({ initialMs: this.initialMs, maxMs: this.maxMs, multiplier: 2, jitter: 'full' }, this.#attempt + 1);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    return Math.max(10, Math.floor(ms));
  }

  reset(): void {
    this.#attempt = 0;
  }
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
  /**
   * The refusals that end reconnecting. A producer or consumer that was connected
   * once keeps trying through the others, as the Java client does: a broker that
   * restarts or moves the topic refuses in many words (UnknownError among them)
   * while it loads it, and one that gave up would stay silent for good inside a
   * process that keeps running.
   */
  terminal: readonly PulsarServerErrorName[];
  /** A terminal refusal ends the loop here. */
  onPermanent: (err: Error) => void;
}

/**
 * The first connection of producers and consumers: `attempt` until it
 * resolves, retried with back-off while its failures are transient. A
 * permanent refusal, a failure at or after `deadline` (epoch ms), or one once
 * `stopped()` holds is thrown; the client closing during a wait throws
 * PulsarClosedError.
 */
export async function connectBy(
  deadline: number,
  backoff: Backoff,
  signal: AbortSignal,
  attempt: () => Promise<void>,
  stopped: () => boolean,
): Promise<void> {
  // Bounded by the deadline and by client close.
  for (;;) {
    try {
      await attempt();
      return;
    } catch (err) {
      if (isPermanent(err) || Date.now() >= deadline || stopped()) throw err;
    }
    const pause = Math.min(backoff.next(), Math.max(0, deadline - Date.now()));
    if ((await wait(pause, signal)) === 'aborted') throw new PulsarClosedError('client');
  }
}

/** The reconnect loop of producers and consumers: back off, try again, until connected, no longer wanted, or refused for good. */
export async function reconnectUntil({ backoff, active, signal, attempt, terminal, onPermanent }: ReconnectOptions): Promise<void> {
  while (active()) {
    if ((await wait(backoff.next(), signal)) === 'aborted') return;
    try {
      await attempt();
      return;
    } catch (err) {
      if (err instanceof PulsarServerError && err.serverError !== 'Unrecognized' && terminal.includes(err.serverError)) {
        onPermanent(err as Error);
        return;
      }
    }
  }
}
