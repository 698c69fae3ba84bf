/** Polls `check` until it holds, failing after `timeoutMs`: waiting for a condition, never for a time. */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string | (() => string)): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // Bounded by the deadline.
  for (let delay = 5; !(await check()); delay = Math.min(delay * 2, 100)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
