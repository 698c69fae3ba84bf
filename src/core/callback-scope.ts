/**
 * Which object's user callback the current code runs in (through every async
 * step it starts), so that a stop() called from a consumer's own callback
 * does not wait for the callback that called it. Imports nothing of txkit.
 * @internal
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** The owners whose callbacks enclose the current code, innermost first. */
interface Enclosing {
  readonly owner: object;
  readonly outer: Enclosing | undefined;
}

const enclosing = new AsyncLocalStorage<Enclosing>();

/** Runs `callback` as a callback of `owner`. */
export function inCallbackOf<T>(owner: object, callback: () => T): T {
  return enclosing.run({ owner, outer: enclosing.getStore() }, callback);
}

/** True in a callback of `owner` (or in work that callback started), at any depth. */
export function isInCallbackOf(owner: object): boolean {
  for (let e = enclosing.getStore(); e !== undefined; e = e.outer) if (e.owner === owner) return true;
  return false;
}
