/**
 * One summary line per fault scenario: printed, and appended to
 * .test-results/faults.jsonl so a report of all scenarios can be assembled.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { waitUntil as waitForCondition } from '../../support/wait-until.js';


const RESULTS_DIR = fileURLToPath(new URL('../../../.test-results/', import.meta.url));

export interface FaultSummary {
  readonly scenario: string;
  /** Input messages (or units of work) the scenario pushed through. */
  readonly messages: number;
  /** Faults injected (frames stalled/cut, processes killed or frozen, servers crashed). */
  readonly faults: number;
  readonly duplicates: number;
  readonly lost: number;
  /** Scenario-specific figures (rejected writes, error types seen, durations, ...). */
  readonly [figure: string]: unknown;
}

export function reportScenario(summary: FaultSummary): void {
  const line = JSON.stringify({ ...summary, at: new Date().toISOString() });
  console.log(line);
  mkdirSync(RESULTS_DIR, { recursive: true });
  appendFileSync(`${RESULTS_DIR}faults.jsonl`, `${line}\n`);
}

/** Duplicates and losses of `seen` against the expected ids. */
export function tally(expected: readonly string[], seen: readonly string[]): { duplicates: number; lost: number; unexpected: number } {
  const want = new Set(expected);
  const counts = new Map<string, number>();
  for (const id of seen) counts.set(id, (counts.get(id) ?? 0) + 1);
  let duplicates = 0;
  let unexpected = 0;
  for (const [id, n] of counts) {
    if (!want.has(id)) unexpected += n;
    else duplicates += n - 1;
  }
  const lost = [...want].filter((id) => !counts.has(id)).length;
  return { duplicates, lost, unexpected };
}

/** Resolves when `check` holds; rejects naming `what` after `timeoutMs`. Polls, it does not sleep for a result. */
export function waitUntil(what: string | (() => string), check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  return waitForCondition(check, timeoutMs, what);
}
