import { TransactionStateError } from './errors.js';
import type { BackendName } from './types.js';

/** How the transaction of a handle ended, as a refused call reports it. */
export interface HandleEnding {
  /** Ends the sentence "this handle belongs to a transaction that ...": `was committed`, `is ending`... */
  readonly how: string;
  /** The state the refusal reports as `TransactionStateError.state`. */
  readonly state: string;
}

/** What a backend's handles say when they refuse a call; one per adapter, shared by all its transactions. */
export interface HandleGuardSpec<E extends string> {
  readonly backend: BackendName;
  /** The backend as the message names it (`memory`, `Pulsar`, `PostgreSQL`...). */
  readonly label: string;
  /** The adapter's name for an ending (`committed`, `rolled back`...) told as a refusal reports it. */
  describe(ended: E): HandleEnding;
  /** Appended to the advice to use the handle of the transaction you are in (starts with its own punctuation). */
  readonly advice?: string;
}

/**
 * A call on a transaction handle after its transaction ended (or began to
 * end): TransactionStateError with code HANDLE_ENDED, in the one message shape
 * every adapter uses.
 */
export function handleEndedError(spec: Omit<HandleGuardSpec<never>, 'describe'>, method: string, ending: HandleEnding): TransactionStateError {
  return new TransactionStateError(
    `${method}() is not allowed: this ${spec.label} transaction handle belongs to a transaction that ${ending.how}; ` +
      `use the handle of the transaction you are in${spec.advice ?? ''}`,
    { backend: spec.backend, method, state: ending.state, code: 'HANDLE_ENDED' },
  );
}

/**
 * The guard of one transaction's handle. The adapter sets `ended` when the
 * transaction ends (or starts to), in its own words; from then on every
 * guarded call is refused with {@link handleEndedError}. A handle kept past
 * its unit (in a closure, a timer, a callback still running after a timeout)
 * can then never touch a connection, session or producer that already serves
 * another transaction.
 */
export class HandleGuard<E extends string> {
  /** How the transaction ended; `undefined` while it is open. */
  ended: E | undefined = undefined;

  constructor(readonly spec: HandleGuardSpec<E>) {}

  /** The refusal of `method` once the transaction has ended, else `undefined`. */
  refusal(method: string): TransactionStateError | undefined {
    const { ended } = this;
    return ended === undefined ? undefined : handleEndedError(this.spec, method, this.spec.describe(ended));
  }

  /** Throws the refusal of `method` once the transaction has ended. */
  assertOpen(method: string): void {
    const refused = this.refusal(method);
    if (refused !== undefined) throw refused;
  }
}
