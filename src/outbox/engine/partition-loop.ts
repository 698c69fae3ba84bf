import { backoff, wait } from '../../core/backoff.js';

/** The longest back-off after failures in a row, whatever the poll interval (the 10th doubling of 100 ms). */
const FAILURE_BACKOFF_MAX_MS = 51_200;

/** How one round of a {@link runPartitionLoop} went on, or ended the loop. */
export interface PartitionRound {
  /**
   * One round for the partition: fetch, process in a transaction, wait for
   * more. Calls `progressed()` once the work succeeded (before waiting), so
   * the next failure backs off from the shortest wait again. Resolves true
   * to go on, false to end the loop.
   */
  run(progressed: () => void): Promise<boolean>;
  /**
   * Called with the error a round threw, before it is reported: false ends
   * the loop (e.g. another worker fenced this one off the partition), true
   * backs off and goes on.
   */
  failed(err: unknown): boolean;
  /** Where errors the loop survives are reported. */
  readonly onError: (err: unknown) => void;
  /** Longest back-off after failures, in ms: the poll interval. */
  readonly pollIntervalMs: number;
}

/**
 * The worker loop of one partition, shared by the relay and the pipeline:
 * rounds until `signal` aborts or a round ends the loop; a round that throws
 * is reported and followed by a back-off that doubles from 100 ms with each
 * failure in a row, up to the poll interval, and ends at once on `signal`.
 */
export async function runPartitionLoop(round: PartitionRound, signal: AbortSignal): Promise<void> {
  let failures = 0;
  const progressed = (): void => {
    failures = 0;
  };
  while (!signal.aborted) {
    try {
      if (!(await round.run(progressed))) return;
    } catch (err) {
      const goOn = round.failed(err);
      round.onError(err);
      if (!goOn) return;
      failures += 1;
      await wait(backoff({ initialMs: 100, maxMs: Math.min(round.pollIntervalMs, FAILURE_BACKOFF_MAX_MS), multiplier: 2, jitter: 'none' }, failures), signal);
    }
  }
}
