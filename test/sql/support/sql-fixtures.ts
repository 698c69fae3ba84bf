/**
 * Shared pieces of the SQL adapter tests: unique table names, waiting for a
 * condition (never for a time), barriers that line two transactions up, and
 * the backends (real servers from test/support/services.ts, SQLite files,
 * PGlite behind its socket server).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it } from 'vitest';
import { deferred } from '../../support/deferred.js';
import type { TestApi } from '../../../src/testing/index.js';

/** A table name no other test run uses: `txkit_<label>_<pid>_<random>`. */
export function uniqueName(label: string): string {
  return `txkit_${label}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

/**
 * Resolves when `predicate` holds, checking every few milliseconds; rejects
 * naming `what` after `timeoutMs`. The check interval is not a sleep used as
 * synchronisation: the condition is what the test waits for.
 */
export async function waitFor(
  what: string,
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export { deferred };
export type { Deferred } from '../../support/deferred.js';

/** `parties` callers of arrive() all resume once the last one arrives (a one-shot barrier). */
export function barrier(parties: number): { arrive(): Promise<void> } {
  let arrived = 0;
  const all = deferred();
  return {
    arrive() {
      arrived += 1;
      if (arrived === parties) all.resolve();
      return all.promise;
    },
  };
}

/** The conformance suite's test API, skipping every test when the backend is unavailable. */
export function testApiFor(available: boolean, describe: TestApi['describe']): TestApi {
  return {
    describe,
    it: (name, fn, timeoutMs) => it.skipIf(!available)(name, fn, timeoutMs),
  };
}

/** A temporary directory for SQLite files, removed by the returned function. */
export function sqliteDir(): { dir: string; file(name: string): string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'txkit-sqlite-'));
  return {
    dir,
    file: (name) => path.join(dir, name),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
