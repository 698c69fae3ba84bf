import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { backoff, wait } from '../../src/core/backoff.js';
import { backoffDelay, DEFAULT_RETRY_POLICY } from '../../src/core/index.js';

describe('backoff', () => {
  const shape = { initialMs: 100, maxMs: 1_000, multiplier: 2, jitter: 'none' } as const;

  it('grows by the multiplier from initialMs at attempt 1 and stops at maxMs', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 40].map((n) => backoff(shape, n)), [100, 200, 400, 800, 1_000, 1_000]);
  });

  it('with full jitter scales the cap by random() into [0, cap)', () => {
    assert.equal(backoff({ ...shape, jitter: 'full' }, 3, () => 0.5), 200);
    assert.equal(backoff({ ...shape, jitter: 'full' }, 3, () => 0), 0);
  });

  it('is what backoffDelay gives for a retry policy', () => {
    const p = DEFAULT_RETRY_POLICY;
    for (const n of [1, 2, 10, 30]) {
      assert.equal(backoffDelay(p, n, () => 0.25), backoff({ initialMs: p.initialDelayMs, maxMs: p.maxDelayMs, multiplier: p.multiplier, jitter: p.jitter }, n, () => 0.25));
    }
  });
});

describe('wait', () => {
  it('ends elapsed after the time, aborted on the signal, woken by the subscription', async () => {
    assert.equal(await wait(1), 'elapsed');
    const aborted = new AbortController();
    aborted.abort();
    assert.equal(await wait(60_000, aborted.signal), 'aborted');
    const later = new AbortController();
    const pending = wait(60_000, later.signal);
    later.abort();
    assert.equal(await pending, 'aborted');
    let unsubscribed = false;
    let wake: (() => void) | undefined;
    const woken = wait(60_000, undefined, (w) => {
      wake = w;
      return () => (unsubscribed = true);
    });
    wake?.();
    assert.equal(await woken, 'woken');
    assert.equal(unsubscribed, true);
  });
});
