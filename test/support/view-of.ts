/**
 * `target` as a caller sees it with some methods (or properties) replaced:
 * the others are `target`'s own, its methods bound to it (so private fields
 * keep working behind the Proxy).
 */
export function viewOf<T extends object>(target: T, replaced: Partial<T>): T {
  return new Proxy(target, {
    get: (t, key) => {
      if (Object.hasOwn(replaced, key)) return replaced[key as keyof T];
      const value: unknown = Reflect.get(t, key, t);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value;
    },
  });
}
