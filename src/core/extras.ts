import { ConfigError } from './errors.js';
import { describeType } from './options.js';
import type { BackendName } from './types.js';

/**
 * Adds a backend's extras to its context as read-only, enumerable
 * properties. They only add: the context's own members stay the core's.
 */
export function addExtras<C extends object, X extends object>(ctx: C, extras: X, backend: BackendName): C & X {
  if (typeof extras !== 'object' || extras === null) {
    throw new ConfigError(`the extras of a ${backend} transaction context must be an object, got ${describeType(extras)}`, { backend });
  }
  const descriptors: PropertyDescriptorMap = {};
  for (const key of Reflect.ownKeys(extras)) {
    if (key in ctx) {
      throw new ConfigError(`the extras of a ${backend} transaction context cannot replace its own member '${String(key)}'`, { backend });
    }
    descriptors[key] = { value: (extras as Record<PropertyKey, unknown>)[key], enumerable: true };
  }
  return Object.defineProperties(ctx, descriptors) as C & X;
}
