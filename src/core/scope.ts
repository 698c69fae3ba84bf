import type { HookList } from './hooks.js';
import type { BeginOptions, Transaction } from './types.js';

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
