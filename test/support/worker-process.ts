/**
 * Child processes for crash tests: a TypeScript script run with tsx, its
 * stderr kept for failure messages, and a kill that lands once the test's
 * progress condition holds (the worker dying first fails the test instead).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { processState } from './process-state.js';
import type { ChildProcess } from 'node:child_process';

export interface WorkerProcess {
  readonly child: ChildProcess;
  /** Everything the worker wrote to stderr. */
  readonly stderr: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive(): boolean;
  /** The worker sent `{ type: 'started' }` over IPC: its SIGTERM handler is installed. */
  started(): boolean;
}

/** Runs `script` (a .ts file) in a new node process with tsx, `env` added to this process's environment, and an IPC channel. */
export function startWorker(script: string, env: Record<string, string>): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    env: { ...process.env, ...env },
  });
  const stderr: string[] = [];
  child.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
  // A process that could not be started (EAGAIN, ENOMEM) is reported with the worker's stderr.
  child.on('error', (err) => stderr.push(`[the worker process failed: ${err.message}]`));
  let started = false;
  child.on('message', (m: { type?: string } | null) => {
    if (m?.type === 'started') started = true;
  });
  return {
    child,
    stderr,
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
    alive: () => child.exitCode === null && child.signalCode === null,
    started: () => started,
  };
}

/** Polls `check` until it holds, or throws after `timeoutMs` naming `what`. */
export async function pollUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, 50)) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/**
 * Waits until `progressed()` holds, then SIGKILLs the worker and waits for it
 * to be gone. Fails if the worker exits on its own first (with its stderr).
 */
export async function killWhen(worker: WorkerProcess, progressed: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const spawned = Date.now();
  await pollUntil(async () => !worker.alive() || (await progressed()), timeoutMs, what).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; ${describeWorker(worker, spawned)}; the worker's stderr: ${worker.stderr.join('').slice(-4000)}`);
  });
  if (!worker.alive()) throw new Error(`the worker exited on its own before ${what}: ${worker.stderr.join('')}`);
  worker.child.kill('SIGKILL');
  const { signal } = await worker.exited;
  if (signal !== 'SIGKILL') throw new Error(`the worker ended with ${String(signal)}, not SIGKILL, before ${what}: ${worker.stderr.join('')}`);
}

/**
 * Stops the worker with SIGTERM and returns its exit code (kills it if it has
 * not exited within `timeoutMs`). A worker that has not said it started yet
 * is waited for first: a SIGTERM while it still loads meets no handler and
 * ends it by the signal (code null), which is not what a test of a clean stop
 * means to check.
 */
export async function stopWorker(worker: WorkerProcess, timeoutMs = 30_000): Promise<number | null> {
  await pollUntil(() => worker.started() || !worker.alive(), 60_000, 'the worker to say it started');
  if (!worker.alive()) return (await worker.exited).code;
  worker.child.kill('SIGTERM');
  const timer = setTimeout(() => worker.child.kill('SIGKILL'), timeoutMs);
  const { code } = await worker.exited;
  clearTimeout(timer);
  return code;
}

/** What a worker that made no progress was doing: whether it said it started, its process state and what it waits in (Linux /proc). */
function describeWorker(worker: WorkerProcess, since: number): string {
  const pid = worker.child.pid;
  const facts = [`pid ${pid ?? 'none (spawn failed)'}`, `started: ${worker.started()}`, `watched for ${Date.now() - since} ms`];
  if (pid !== undefined) {
    try {
      facts.push(`state ${processState(pid)}`);
      facts.push(`waiting in ${readFileSync(`/proc/${pid}/wchan`, 'utf8') || '-'}`);
      facts.push(`threads ${/Threads:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?'}`);
    } catch {
      facts.push('no /proc entry');
    }
  }
  return facts.join(', ');
}
