import { TransactionStateError } from './errors.js';
import type { BackendName } from './backend.js';

/**
 * The states of one transaction. `failed` is terminal: a transaction whose
 * commit or abort failed definitively ends there instead of hanging in
 * `committing`/`aborting` (kafkajs can get stuck after a failed EndTxn).
 */
export const TxState = Object.freeze({
  idle: 'idle',
  active: 'active',
  committing: 'committing',
  committed: 'committed',
  aborting: 'aborting',
  aborted: 'aborted',
  failed: 'failed',
} as const);

/** One of the {@link TxState} values. */
export type TxState = (typeof TxState)[keyof typeof TxState];

/** The only legal moves. Every state change in txkit goes through `transition()`. */
const TRANSITIONS: Readonly<Record<TxState, readonly TxState[]>> = Object.freeze({
  idle: [TxState.active, TxState.failed],
  active: [TxState.committing, TxState.aborting],
  // committing -> committing: a commit whose result was unknown is tried again
  // (docs/architecture.md, rule 3). committing -> aborted: the commit failed
  // definitively, so the backend did not apply it. committing -> failed: the
  // outcome stayed unknown.
  committing: [TxState.committing, TxState.committed, TxState.aborted, TxState.failed],
  committed: [],
  aborting: [TxState.aborted, TxState.failed],
  aborted: [],
  failed: [],
});

/** True when no move leaves `state` (`committed`, `aborted`, `failed`). */
export function isTerminal(state: TxState): boolean {
  return TRANSITIONS[state].length === 0;
}

/** True when the transition table allows moving from `from` to `to`. */
export function canTransition(from: TxState, to: TxState): boolean {
  return TRANSITIONS[from].includes(to);
}

/**
 * Moves `from` to `to` or throws a TransactionStateError naming the state and
 * the method that attempted the move.
 * @returns `to`
 * @throws TransactionStateError when the transition table does not allow the move.
 */
export function transition(from: TxState, to: TxState, method: string, backend: BackendName): TxState {
  if (!canTransition(from, to)) {
    throw new TransactionStateError(
      `${method}() is not allowed: the ${backend} transaction is ${from}` +
        (isTerminal(from) ? ' and has ended; start a new transaction' : ''),
      { backend, state: from, method },
    );
  }
  return to;
}
