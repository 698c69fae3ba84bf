/**
 * The broker scripts' lifecycle, on a private Kafka state directory: every
 * handle holds a lease, the last user of a broker that test runs started
 * stops it (so a run that reused another run's broker keeps it while it
 * runs), and a broker kept warm by `kafka.mjs start` outlives every handle.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { keepKafka, startKafka, stopKafka } from '../../scripts/services/kafka.mjs';
import { service } from '../support/services.js';
import { waitUntil } from '../support/wait-until.js';
import { processState } from '../support/process-state.js';

// The shared broker being reachable means Java and the Kafka jars are here to start a private one.
const available = service('kafka') !== undefined;

/** Whether the broker process still runs (a zombie waiting to be reaped does not count). */
function alive(pid: number): boolean {
  try {
    return processState(pid) !== 'Z';
  } catch {
    return false;
  }
}

describe.skipIf(!available)('broker script lifecycle (private Kafka state directory)', () => {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'txkit-lifecycle-'));
  afterAll(async () => {
    await stopKafka({ stateDir });
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('the last of the handles using a broker stops it, whichever started it', async () => {
    const first = await startKafka({ stateDir, log: false });
    const second = await startKafka({ stateDir, log: false });
    expect(first.reused).toBe(false);
    expect(second.reused).toBe(true);
    const running = (): boolean => alive(first.pid);

    // The starter ends first: the run that reused its broker still has it.
    await first.stop();
    expect(running()).toBe(true);
    await second.stop();
    await waitUntil(() => !running(), 30_000, 'the broker to stop with its last user');
  }, 180_000);

  it('a broker kept warm outlives every handle until stopKafka()', async () => {
    const starter = await startKafka({ stateDir, log: false });
    await keepKafka({ stateDir });
    const user = await startKafka({ stateDir, log: false });
    expect(user.reused).toBe(true);
    await user.stop();
    await starter.stop();
    expect(alive(starter.pid)).toBe(true);
    await stopKafka({ stateDir });
    await waitUntil(() => !alive(starter.pid), 30_000, 'stopKafka() to stop the kept broker');
  }, 180_000);
});
