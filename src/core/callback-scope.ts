/**
 * Which object's user callback the current code runs in (through every async
 * step it starts), so that a stop() called from a consumer's own callback
 * does not wait for the callback that called it.
 * @internal
 */
import { hasAmbientValue, runWith } from './ambient.js';

/** The ambient value that marks "inside a callback of the owner". */
const IN_CALLBACK = Symbol('txkit.inCallback');

/** Runs `callback` as a callback of `owner`. */
export function inCallbackOf<T>(owner: object, callback: () => T): T {
  return runWith(owner, IN_CALLBACK, callback, undefined);
}

/** True in a callback of `owner` (or in work that callback started), at any depth. */
export function isInCallbackOf(owner: object): boolean {
  return hasAmbientValue(owner, IN_CALLBACK);
}
