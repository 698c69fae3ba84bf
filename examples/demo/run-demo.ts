import { MemoryStore, memoryTransactions } from 'txkit/memory';
import { injectFaults } from 'txkit/testing';
import { runWorker, seedOrders, verify } from './pipeline.js';
import type { Report } from './pipeline.js';

export interface DemoOptions {
  orders?: number;
  customers?: number;
  partitions?: number;
  workers?: number;
  batchSize?: number;
  /** Transient failures injected into batch callbacks and commits. */
  transientFaults?: number;
  /** Commits whose result is reported unknown (retried as commit only). */
  unknownCommits?: number;
}

/**
 * Runs the pipeline with several workers over shared customer state (so they
 * conflict for real) plus injected faults, then verifies from the stores.
 */
export async function runDemo(options: DemoOptions = {}): Promise<Report & { faultsInjected: number }> {
  const { orders = 3000, customers = 40, partitions = 4, workers = 2, batchSize = 25, transientFaults = 60, unknownCommits = 20 } = options;
  const store = new MemoryStore({ partitions });
  const producer = memoryTransactions({ store });
  await seedOrders(producer, orders, customers);
  await producer.close();

  const job = memoryTransactions({ store, retry: { initialDelayMs: 1, maxDelayMs: 20 } });
  const faults = [
    injectFaults(job, { on: 'callback', as: 'transient', times: Math.ceil(transientFaults / 2), every: 3 }),
    injectFaults(job, { on: 'commit', as: 'transient', times: Math.floor(transientFaults / 2), every: 4 }),
    injectFaults(job, { on: 'commit', as: 'commit-unknown', times: unknownCommits, every: 5 }),
  ];
  const assigned = Array.from({ length: workers }, (_, w) =>
    Array.from({ length: partitions }, (_, p) => p).filter((p) => p % workers === w),
  );
  await Promise.all(assigned.map((parts) => runWorker(job, store, parts, batchSize)));
  await job.close();
  return { ...verify(store), faultsInjected: faults.reduce((n, f) => n + f.injected, 0) };
}
