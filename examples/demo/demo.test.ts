import { describe, expect, it } from 'vitest';
import { runDemo } from './run-demo.js';

describe('demo pipeline', () => {
  it('processes every order exactly once under injected faults and real conflicts', async () => {
    const report = await runDemo({ orders: 1200, transientFaults: 40, unknownCommits: 10 });
    expect(report.faultsInjected).toBeGreaterThanOrEqual(30);
    expect(report.retriedTransactions).toBeGreaterThan(0);
    expect(report).toMatchObject({ input: 1200, processed: 1200, duplicates: 0, lost: 0, stateMismatches: 0 });
  });
});
