import type { DriverSavepoint } from './driver.js';
import { TransactionStateError } from './errors.js';
import { HookList } from './hooks.js';
import { PendingWork, pendingWorkRefusal } from './pending-work.js';
import { ScopeBase } from './scope.js';
import type { RootScope, Scope } from './scope.js';
import { TxState, transition } from './tx-state.js';
import type { BackendName } from './types.js';

/** `propagation: 'nested'`: a savepoint inside a running transaction. */
export class SavepointTransaction<H> extends ScopeBase implements Scope<H> {
  readonly hooks = new HookList();
  readonly handle: H;
  protected readonly kind = 'savepoint';
  #state: TxState = TxState.active;
  #rollbackOnly: { reason: unknown } | undefined;
  readonly #parent: Scope<H>;
  readonly #sp: DriverSavepoint<H>;
  readonly #pending = new PendingWork();

  constructor(
    readonly root: RootScope<H>,
    parent: Scope<H>,
    sp: DriverSavepoint<H>,
  ) {
    super();
    this.#parent = parent;
    this.#sp = sp;
    this.handle = sp.handle;
  }

  get id(): string {
    return this.root.id;
  }
  get backend(): BackendName {
    return this.root.backend;
  }
  get attempt(): number {
    return this.root.attempt;
  }
  get signal(): AbortSignal {
    return this.root.signal;
  }
  get state(): TxState {
    return this.#state;
  }

  markRollbackOnly(reason: unknown): void {
    this.#rollbackOnly ??= { reason };
  }

  track<T>(work: Promise<T>): Promise<T> {
    return this.#pending.track(work);
  }

  /** Releases the savepoint; its hooks move to the enclosing scope and fire when the outermost one ends. */
  async commit(): Promise<void> {
    this.#assertParentActive('commit');
    this.#state = transition(this.#state, TxState.committing, 'commit', this.backend);
    if (this.#rollbackOnly !== undefined || this.#pending.count > 0) {
      const err =
        this.#rollbackOnly === undefined
          ? pendingWorkRefusal(this.backend, 'savepoint', this.#pending.count)
          : new TransactionStateError(
              `the ${this.backend} savepoint was marked rollback-only because a joined scope failed; it was rolled back instead`,
              { backend: this.backend, code: 'ROLLBACK_ONLY', cause: this.#rollbackOnly.reason, method: 'commit' },
            );
      await this.#sp.rollback();
      this.#state = transition(this.#state, TxState.aborted, 'commit', this.backend);
      this.#parent.hooks.discard(this.hooks, err);
      throw err;
    }
    try {
      await this.#sp.release();
    } catch (err) {
      this.#state = transition(this.#state, TxState.failed, 'commit', this.backend);
      throw err;
    }
    this.#state = transition(this.#state, TxState.committed, 'commit', this.backend);
    this.#parent.hooks.adopt(this.hooks);
  }

  /** Rolls back to the savepoint; the enclosing transaction goes on. */
  async abort(reason?: unknown): Promise<void> {
    this.#assertParentActive('abort');
    this.#state = transition(this.#state, TxState.aborting, 'abort', this.backend);
    try {
      await this.#sp.rollback();
    } catch (err) {
      this.#state = transition(this.#state, TxState.failed, 'abort', this.backend);
      throw err;
    }
    this.#state = transition(this.#state, TxState.aborted, 'abort', this.backend);
    this.#parent.hooks.discard(this.hooks, reason);
  }

  async openSavepoint(): Promise<SavepointTransaction<H>> {
    this.assertActive('savepoint');
    if (this.#sp.savepoint === undefined) {
      throw new TransactionStateError(`the ${this.backend} adapter cannot nest savepoints`, { backend: this.backend });
    }
    return new SavepointTransaction(this.root, this, await this.#sp.savepoint());
  }

  #assertParentActive(method: string): void {
    if (this.#parent.state !== TxState.active) {
      throw new TransactionStateError(
        `${method}() on a savepoint is not allowed: the enclosing ${this.backend} transaction is ${this.#parent.state}`,
        { backend: this.backend, state: this.#parent.state, method },
      );
    }
  }
}
