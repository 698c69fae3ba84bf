/**
 * The ambient state of txkit: which transaction each context runs in here,
 * and whose user callback the current code is in. One AsyncLocalStorage for
 * all of it, however many contexts a process has: on Node 20 every enabled
 * AsyncLocalStorage adds work to every promise the process creates (a
 * service with Postgres, Kafka and MongoDB contexts would pay three times).
 * Each `runWith` pushes a frame that links to the frames around it; a lookup
 * walks them from the innermost, so it costs the nesting depth (a few frames).
 * Imports nothing of txkit.
 * @internal
 */
import { AsyncLocalStorage } from 'node:async_hooks';

interface Frame {
  readonly owner: object;
  readonly value: unknown;
  readonly outer: Frame | undefined;
}

const frames = new AsyncLocalStorage<Frame>();

/** Runs `fn(arg)` with `value` as `owner`'s ambient value in it and in every async step it starts. */
export function runWith<A, T>(owner: object, value: unknown, fn: (arg: A) => T, arg: A): T {
  return frames.run({ owner, value, outer: frames.getStore() }, fn, arg);
}

/** `owner`'s innermost ambient value here, or undefined when none was set. */
export function ambientValue(owner: object): unknown {
  for (let f = frames.getStore(); f !== undefined; f = f.outer) if (f.owner === owner) return f.value;
  return undefined;
}

/** True when some enclosing frame gave `owner` the value `value` (at any depth, not only the innermost). */
export function hasAmbientValue(owner: object, value: unknown): boolean {
  for (let f = frames.getStore(); f !== undefined; f = f.outer) if (f.owner === owner && f.value === value) return true;
  return false;
}
