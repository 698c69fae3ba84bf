import { AfterCommitHookError } from './errors.js';
import { describeError } from './options.js';
import type { BackendName } from './types.js';

/** Receives failures of afterAbort hooks, which never replace the error that caused the abort. */
export type HookErrorHandler = (error: unknown, info: { backend: BackendName; transactionId: string; hook: 'afterAbort' }) => void;

export const defaultHookErrorHandler: HookErrorHandler = (error, info) => {
  // A warning, not a throw: the abort already happened and its reason is what the caller gets.
  process.emitWarning(
    `txkit: an afterAbort hook of ${info.backend} transaction ${info.transactionId} failed: ${describeError(error)}`,
    { code: 'TXKIT_HOOK_FAILED' },
  );
};

/** Hooks of one scope; a released savepoint hands its hooks to its parent. */
export class HookList {
  readonly commit: (() => unknown)[] = [];
  readonly abort: ((reason: unknown) => unknown)[] = [];
  /** afterAbort hooks of rolled-back savepoints, bound to their reason: they run whatever the outcome. */
  readonly undone: (() => unknown)[] = [];

  adopt(child: HookList): void {
    this.commit.push(...child.commit);
    this.abort.push(...child.abort);
    this.undone.push(...child.undone);
  }

  /** A savepoint was rolled back: its commit hooks are void, its abort hooks still owe a call. */
  discard(child: HookList, reason: unknown): void {
    for (const fn of child.abort) this.undone.push(() => fn(reason));
    this.undone.push(...child.undone);
  }

  async runUndone(onError: (err: unknown) => void): Promise<void> {
    for (const fn of this.undone) {
      try {
        await fn();
      } catch (err) {
        onError(err);
      }
    }
  }

  /** Runs every afterCommit hook in order, then reports all failures as one error. */
  async runCommit(backend: BackendName): Promise<void> {
    if (this.commit.length === 0) return;
    const errors: unknown[] = [];
    for (const fn of this.commit) {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw new AfterCommitHookError(errors, { backend });
  }

  async runAbort(reason: unknown, onError: (err: unknown) => void): Promise<void> {
    for (const fn of this.abort) {
      try {
        await fn(reason);
      } catch (err) {
        onError(err);
      }
    }
  }
}

