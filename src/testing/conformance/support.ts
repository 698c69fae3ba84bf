import assert from 'node:assert/strict';
import type { ConformanceCapabilities, ConformanceSubject, TestApi } from './options.js';

/** What each group of cases gets from testTransactionContext. */
export interface SuiteKit<H> {
  /** The framework's describe. */
  readonly describe: TestApi['describe'];
  /** Declares a case that runs on a fresh subject; a case whose `when` is false is left out. */
  readonly it: (name: string, body: (s: ConformanceSubject<H>) => Promise<void>, when?: boolean) => void;
  /** A key, topic or id no other case or run uses. */
  readonly uniq: (label: string) => string;
  /** What the backend under test supports. */
  readonly caps: ConformanceCapabilities;
}

/** Fast retries so the suite does not wait on production back-off. */
export const FAST = { initialDelayMs: 1, maxDelayMs: 2 } as const;

/** Awaits a promise that must reject and returns its error. */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new assert.AssertionError({ message: 'expected the promise to reject, but it resolved' });
}

/** Resolves when `signal` fires: the way a callback "hangs" without sleeping. */
export function abortedSignal(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
