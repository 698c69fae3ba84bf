import { setMaxListeners } from 'node:events';
import { ConfigError, TransactionTimeoutError } from './errors.js';
import { describeType } from './options.js';
import { abortedError } from './retry-policy.js';
import type { BackendName, BeginOptions } from './types.js';

/**
 * The signal begin gets when the caller gave none. It never fires, so the
 * listeners drivers add to it while a begin waits (and remove after) do
 * nothing; many begins at once are no leak.
 */
export const NEVER_ABORTED: AbortSignal = new AbortController().signal;
setMaxListeners(0, NEVER_ABORTED);

/**
 * Waits for a driver's begin no longer than the caller's signal and
 * `timeoutMs` allow, whatever the driver does with them: a begin stuck on a
 * pool, a coordinator or a network ends with the abort reason or TX_TIMEOUT,
 * and the transaction it opens later is rolled back at once.
 */
export async function boundedBegin<D extends { rollback(): Promise<void> }>(
  beginning: Promise<D>,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
  backend: BackendName,
): Promise<D> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const started = Date.now();
  const limit = new Promise<never>((_, reject) => {
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        reject(
          new TransactionTimeoutError(
            'TX_TIMEOUT',
            `the ${backend} transaction exceeded timeoutMs=${timeoutMs} before it began (waiting for a connection, a ` +
              'session or the coordinator); raise timeoutMs, or check that the backend answers',
            { backend, elapsedMs: Date.now() - started },
          ),
        );
      }, timeoutMs);
    }
    if (signal !== undefined) {
      onAbort = () => reject(abortedError(signal, backend, 'begin'));
      signal.addEventListener('abort', onAbort, { once: true });
    }
  });
  try {
    return await Promise.race([beginning, limit]);
  } catch (err) {
    // The begin lost the race: a transaction it opens later is not anyone's, so it is rolled back.
    beginning.then(
      (late) => late.rollback().catch(() => undefined),
      () => undefined,
    );
    throw err;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
  }
}

/** Checks the core's own begin options (`timeoutMs`, `signal`) of a call or of `defaults`. */
export function checkBeginOptions(options: BeginOptions, backend: BackendName): void {
  const { timeoutMs, signal } = options;
  if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs > 0 && Number.isFinite(timeoutMs))) {
    throw new ConfigError(`timeoutMs must be a positive finite number of milliseconds, got ${String(timeoutMs)}`, {
      backend,
    });
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new ConfigError(`signal must be an AbortSignal, got ${describeType(signal)}`, { backend });
  }
}
