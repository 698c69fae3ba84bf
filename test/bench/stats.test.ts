/**
 * The benchmark statistics: a ratio of medians with a paired bootstrap
 * interval that is reproducible, narrows with more rounds, holds the true
 * ratio of a known distribution, and judges a goal met only when the whole
 * interval is inside it.
 */
import { describe, expect, it } from 'vitest';
import { controlledVerdict, differenceInterval, fmtInterval, interleaved, median, pairOrder, ratioInterval, roundOrder, unpairedRatioInterval, verdict } from '../../bench/harness.js';

/** Seeded normal-ish noise: the mean of four uniforms, centred, scaled. */
function noise(seed: number): () => number {
  let t = seed;
  const uniform = (): number => {
    t = (t * 1_103_515_245 + 12_345) % 2_147_483_648;
    return t / 2_147_483_648;
  };
  return () => (uniform() + uniform() + uniform() + uniform() - 2) * 0.5;
}

/** Rounds of two variants that share each round's drift (a slow round is slow for both), `mine` `ratio` times `base`. */
function rounds(n: number, ratio: number, seed = 7): { mine: number[]; base: number[] } {
  const next = noise(seed);
  const mine: number[] = [];
  const base: number[] = [];
  for (let i = 0; i < n; i++) {
    const drift = 1 + Math.abs(next()) * 2; // up to 3x slower rounds, as on a busy machine
    base.push(1_000 * drift * (1 + next() * 0.02));
    mine.push(1_000 * ratio * drift * (1 + next() * 0.02));
  }
  return { mine, base };
}

describe('bench statistics', () => {
  it('the interval holds the true ratio and is narrow when round i of both variants shares its drift', () => {
    const { mine, base } = rounds(100, 1.05);
    const i = ratioInterval(mine, base);
    expect(i.low).toBeLessThanOrEqual(1.05);
    expect(i.high).toBeGreaterThanOrEqual(1.05);
    expect(i.low).toBeLessThanOrEqual(i.value);
    expect(i.value).toBeLessThanOrEqual(i.high);
    expect(i.confidence).toBe(0.95);
    // Drift of up to 3x between rounds, 2% noise within one: the pairing keeps the interval well under 10% wide.
    expect(i.high - i.low).toBeLessThan(0.1);
  });

  it('is the same on every run (seeded) and narrows with more rounds', () => {
    const small = rounds(20, 1.02);
    const large = rounds(400, 1.02);
    expect(ratioInterval(small.mine, small.base)).toEqual(ratioInterval(small.mine, small.base));
    const a = ratioInterval(small.mine, small.base);
    const b = ratioInterval(large.mine, large.base);
    expect(b.high - b.low).toBeLessThan(a.high - a.low);
  });

  it('a difference of medians has an interval too, in the rounds\' unit', () => {
    const { mine, base } = rounds(100, 1.05);
    const d = differenceInterval(mine, base);
    expect(d.value).toBeCloseTo(median(mine) - median(base), 9);
    expect(d.low).toBeLessThanOrEqual(d.value);
    expect(d.high).toBeGreaterThanOrEqual(d.value);
  });

  it('a goal is met only when the whole interval is inside it, missed only when all of it is outside', () => {
    const at = (low: number, high: number) => ({ value: (low + high) / 2, low, high, confidence: 0.95 });
    expect(verdict(at(1.0, 1.02), { atMost: 1.03 })).toBe('met');
    expect(verdict(at(1.01, 1.05), { atMost: 1.03 })).toBe('undecided');
    expect(verdict(at(1.04, 1.08), { atMost: 1.03 })).toBe('missed');
    expect(verdict(at(0.92, 0.97), { atLeast: 0.9 })).toBe('met');
    expect(verdict(at(0.85, 0.95), { atLeast: 0.9 })).toBe('undecided');
    expect(verdict(at(0.7, 0.8), { atLeast: 0.9 })).toBe('missed');
    expect(fmtInterval(at(1.0, 1.02))).toBe('1.010 [1.000, 1.020]');
  });

  it('controlledVerdict decides nothing when the control tells the baseline from itself', () => {
    const at = (low: number, high: number) => ({ value: (low + high) / 2, low, high, confidence: 0.95 });
    const quiet = at(0.99, 1.01);
    expect(controlledVerdict(at(1.0, 1.02), quiet, { atMost: 1.03 })).toBe('met');
    expect(controlledVerdict(at(1.04, 1.06), quiet, { atMost: 1.03 })).toBe('missed');
    // The same intervals, in a run whose two identical variants differ by 2-6%:
    expect(controlledVerdict(at(1.0, 1.02), at(1.02, 1.06), { atMost: 1.03 })).toBe('undecided');
    expect(controlledVerdict(at(1.04, 1.06), at(0.94, 0.98), { atMost: 1.03 })).toBe('undecided');
    // Differences in µs: the control must hold 0.
    expect(controlledVerdict(at(1.5, 1.7), at(-0.02, 0.03), { atMost: 2 }, 0)).toBe('met');
    expect(controlledVerdict(at(1.5, 1.7), at(0.05, 0.1), { atMost: 2 }, 0)).toBe('undecided');
  });

  it('a ratio of two samples measured apart (a p99 against another phase\'s p99) has an interval from resampling each side on its own', () => {
    const next = noise(11);
    // Latency-like samples: a floor, noise, and a tail of one in fifty.
    const sample = (n: number, scale: number): number[] => Array.from({ length: n }, (_, k) => scale * (4 + Math.abs(next()) * 2 + (k % 50 === 0 ? 6 : 0)));
    const p99 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.ceil(0.99 * xs.length) - 1] as number;
    const mine = sample(500, 1.3);
    const base = sample(300, 1);
    const i = unpairedRatioInterval(mine, base, p99);
    expect(i.value).toBeCloseTo(p99(mine) / p99(base), 12);
    expect(i.low).toBeLessThanOrEqual(i.value);
    expect(i.value).toBeLessThanOrEqual(i.high);
    expect(i.low).toBeLessThan(1.3);
    expect(i.high).toBeGreaterThan(1.3);
    // Seeded: the same figures give the same interval; a p99 of a few hundred samples is not known to within 1%.
    expect(unpairedRatioInterval(mine, base, p99)).toEqual(i);
    expect(i.high - i.low).toBeGreaterThan(0.02);
    expect(() => unpairedRatioInterval([], base, p99)).toThrow(RangeError);
  });

  it('refuses rounds that cannot be paired and a confidence outside (0, 1)', () => {
    expect(() => ratioInterval([1, 2], [1])).toThrow(/same non-zero number of rounds/);
    expect(() => ratioInterval([], [])).toThrow(/same non-zero number of rounds/);
    expect(() => ratioInterval([1], [1], { confidence: 1 })).toThrow(/confidence must be between 0 and 1/);
  });

  it('roundOrder puts each of three variants in each place twice in six rounds, before and after each other alike', () => {
    const orders = Array.from({ length: 6 }, (_, r) => roundOrder(r, 3));
    expect(new Set(orders.map((o) => o.join(''))).size).toBe(6);
    for (let place = 0; place < 3; place++) {
      for (let v = 0; v < 3; v++) expect(orders.filter((o) => o[place] === v)).toHaveLength(2);
    }
    // Two variants simply alternate, as before: 01, 10, 10, 01.
    expect(Array.from({ length: 4 }, (_, r) => roundOrder(r, 2).join(''))).toEqual(['01', '10', '10', '01']);
  });

  it('interleaved reports wall and CPU time per operation for every round of every variant', async () => {
    const spin = (ms: number) => async (): Promise<void> => {
      const end = performance.now() + ms;
      while (performance.now() < end);
    };
    const [fast, slow] = await interleaved(
      [
        { label: 'fast', run: spin(0.2) },
        { label: 'slow', run: spin(1) },
      ],
      { rounds: 5, opsPerRound: 5, warmupOps: 1 },
    );
    for (const r of [fast, slow]) {
      expect(r?.roundsNs).toHaveLength(5);
      expect(r?.roundsCpuNs).toHaveLength(5);
    }
    // Busy-waiting is CPU time: the CPU figures order the variants as the wall figures do.
    expect(slow?.medianNs).toBeGreaterThan(fast?.medianNs as number);
    expect(slow?.cpuNs).toBeGreaterThan(fast?.cpuNs as number);
  });

  it('interleaved with alternate takes turns by operation, each variant after every variant alike, and leaves out the slowest tenth of a round', async () => {
    const spin = (ms: number): void => {
      const end = performance.now() + ms;
      while (performance.now() < end);
    };
    const order: number[] = [];
    let calls = 0;
    const [steady, hiccups, slow] = await interleaved(
      [
        { label: 'steady', run: async () => (order.push(0), spin(0.2)) },
        // One operation in ten meets a hiccup 25 times its time: the round's figure leaves it out.
        { label: 'hiccups', run: async () => (order.push(1), spin(++calls % 10 === 0 ? 5 : 0.2)) },
        // Resolves at once, and leaves 0.6 ms of work behind: counted as its own.
        { label: 'deferred', run: async () => (order.push(2), void setImmediate(() => spin(0.6))) },
      ],
      { rounds: 4, opsPerRound: 10, warmupOps: 0, alternate: true },
    );
    // 10 per round made 12, a multiple of the 3 variants; each one runs after each one 16 times.
    expect(order).toHaveLength(3 * 4 * 12);
    const follows = new Map<string, number>();
    for (let k = 1; k < order.length; k++) follows.set(`${order[k - 1]}${order[k]}`, (follows.get(`${order[k - 1]}${order[k]}`) ?? 0) + 1);
    expect([...follows.values()].every((count) => Math.abs(count - 16) <= 1)).toBe(true);
    expect(follows.size).toBe(9);
    for (const r of [steady, hiccups, slow]) expect(r?.roundsNs).toHaveLength(4);
    expect(hiccups?.medianNs).toBeLessThan((steady?.medianNs as number) * 1.5);
    expect(slow?.medianNs).toBeGreaterThan((steady?.medianNs as number) * 2);
  });

  it('pairOrder has each of n variants follow every variant once', () => {
    for (let n = 1; n <= 5; n++) {
      const order = pairOrder(n);
      expect(order).toHaveLength(n * n);
      const pairs = new Set(order.map((v, k) => `${order[(k + order.length - 1) % order.length]},${v}`));
      expect(pairs.size).toBe(n * n);
    }
    expect(pairOrder(3)).toEqual([0, 0, 1, 0, 2, 1, 1, 2, 2]);
  });

  it('interleaved with alternate refuses a variant timed in another process', async () => {
    await expect(
      interleaved(
        [
          { label: 'here', run: async () => undefined },
          { label: 'java', round: async () => ({ wallNs: 1, cpuNs: 1 }) },
        ],
        { rounds: 1, opsPerRound: 1, warmupOps: 0, alternate: true },
      ),
    ).rejects.toThrow(/'java' is timed in another process/);
  });
});
