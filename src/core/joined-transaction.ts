import { TransactionStateError } from './errors.js';
import type { Scope } from './scope.js';
import type { TxState } from './tx-state.js';
import type { BackendName, Transaction } from './types.js';

/**
 * What a callback gets when it joins a running transaction (`required`,
 * `supports`, `mandatory`): the same transaction, but only the scope that
 * opened it may commit it.
 */
export class JoinedTransaction<H> implements Transaction<H> {
  constructor(readonly scope: Scope<H>) {}

  get id(): string {
    return this.scope.id;
  }
  get backend(): BackendName {
    return this.scope.backend;
  }
  get attempt(): number {
    return this.scope.attempt;
  }
  get handle(): H {
    return this.scope.handle;
  }
  get signal(): AbortSignal {
    return this.scope.signal;
  }
  get state(): TxState {
    return this.scope.state;
  }

  commit(): Promise<void> {
    return Promise.reject(
      new TransactionStateError(
        `commit() is not allowed in a scope that joined a running ${this.backend} transaction; the scope that ` +
          "opened it commits when its callback returns (use propagation 'requires_new' for an independent transaction)",
        { backend: this.backend, state: this.state, method: 'commit', code: 'JOINED_COMMIT' },
      ),
    );
  }

  /** Aborts the whole transaction this scope joined. */
  abort(reason?: unknown): Promise<void> {
    return this.scope.abort(reason);
  }

  track<T>(work: Promise<T>): Promise<T> {
    return this.scope.track(work);
  }

  afterCommit(fn: () => unknown): void {
    this.scope.afterCommit(fn);
  }

  afterAbort(fn: (reason: unknown) => unknown): void {
    this.scope.afterAbort(fn);
  }
}
