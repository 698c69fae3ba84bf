/** Calls `make` on first use and keeps its promise; a failure is forgotten, so the next call tries again. Imports nothing. */
export function cachedUntilFailure<T>(make: () => Promise<T>): () => Promise<T> {
  let cached: Promise<T> | undefined;
  return () => {
    cached ??= make().catch((err: unknown) => {
      cached = undefined;
      throw err;
    });
    return cached;
  };
}
