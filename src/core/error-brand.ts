// This module imports nothing: the Pulsar client, which imports no other part
// of txkit, brands its errors with it as well.

/**
 * Where each txkit error keeps the names of its classes, registered
 * process-wide, so that two copies of txkit (its ESM and CommonJS builds, or
 * two installed versions) recognise each other's errors.
 */
const KINDS = Symbol.for('txkit.error.kinds');

/** An error class, abstract or not. */
export type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * The class names from `ctor` up to Error: what `instanceof` checks across
 * copies. A class with its own static `txkitKind` (the Pulsar client's) is
 * followed by the txkit class name it stands for.
 */
function kindsOf(ctor: ErrorClass): readonly string[] {
  const kinds: string[] = [];
  for (let c: unknown = ctor; typeof c === 'function' && c !== Error; c = Object.getPrototypeOf(c)) {
    kinds.push((c as ErrorClass).name);
    if (Object.hasOwn(c, 'txkitKind')) kinds.push((c as unknown as { txkitKind: string }).txkitKind);
  }
  return Object.freeze(kinds);
}

const kindsCache = new WeakMap<ErrorClass, readonly string[]>();

/** Marks `error`, made by `ctor` (the constructor's `new.target`), with the brand of its classes. */
export function brandError(error: Error, ctor: ErrorClass): void {
  let kinds = kindsCache.get(ctor);
  if (kinds === undefined) kindsCache.set(ctor, (kinds = kindsOf(ctor)));
  Object.defineProperty(error, KINDS, { value: kinds });
}

/**
 * `value instanceof cls` by the brand, whichever copy made the error: a
 * branded value is an instance when its brand names `cls`; any other object
 * is judged by its prototype chain.
 */
export function hasErrorBrand(cls: ErrorClass, value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const kinds = (value as { [KINDS]?: unknown })[KINDS];
  if (Array.isArray(kinds)) return kinds.includes(cls.name);
  return Function.prototype[Symbol.hasInstance].call(cls, value);
}
