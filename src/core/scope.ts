import { TransactionStateError } from './errors.js';
import type { HookList } from './hooks.js';
import { TxState } from './tx-state.js';
import type { BackendName, BeginOptions, Transaction } from './types.js';

/** A scope that callbacks can join or open savepoints in: a root transaction or a savepoint. */
export interface Scope<H> extends Transaction<H> {
  readonly hooks: HookList;
  readonly root: RootScope<H>;
  markRollbackOnly(reason: unknown): void;
  openSavepoint(): Promise<Scope<H>>;
  /** Counts `work` as pending in this scope until it settles; commit is refused meanwhile. */
  track<T>(work: Promise<T>): Promise<T>;
}

/** The outermost scope of a transaction (a `RootTransaction`), as its savepoints and joining scopes see it. */
export interface RootScope<H> extends Scope<H> {
  /** The begin options the transaction was opened with. */
  readonly options: BeginOptions;
  /** The driver's transactions open savepoints, so `propagation: 'nested'` works. */
  readonly savepoints: boolean;
}

/**
 * What a root transaction and a savepoint share: afterCommit and afterAbort
 * hooks, registered only while the scope is active.
 */
export abstract class ScopeBase {
  abstract readonly backend: BackendName;
  abstract readonly state: TxState;
  abstract readonly hooks: HookList;
  /** How error messages name the scope. */
  protected abstract readonly kind: 'transaction' | 'savepoint';

  afterCommit(fn: () => unknown): void {
    this.assertActive('afterCommit');
    this.hooks.commit.push(fn);
  }

  afterAbort(fn: (reason: unknown) => unknown): void {
    this.assertActive('afterAbort');
    this.hooks.abort.push(fn);
  }

  protected assertActive(method: string): void {
    if (this.state !== TxState.active) {
      throw new TransactionStateError(`${method}() is not allowed: the ${this.backend} ${this.kind} is ${this.state}`, {
        backend: this.backend,
        state: this.state,
        method,
      });
    }
  }
}
