import { TransactionStateError, TransactionTimeoutError } from '../../core/index.js';
import { HandleGuard } from '../../core/handle-guard.js';
import type { HandleGuardSpec } from '../../core/handle-guard.js';
import { NEVER_ABORTED } from '../../core/begin.js';
import { abortedError } from '../../core/retry-policy.js';
import { labelOf } from './sql-errors.js';
import type { SqlBackend } from './sql-errors.js';

/**
 * How long the cancel and the ROLLBACK of a transaction may take before
 * its connection is destroyed instead of given back to the pool (the
 * server rolls back a transaction whose connection is gone). A healthy
 * server answers in milliseconds; only a connection that stopped
 * answering (a network partition, a stalled proxy) reaches this.
 */
export const ROLLBACK_GRACE_MS = 2_000;

/**
 * SQL text that ends the transaction it runs in: COMMIT, END, ROLLBACK or
 * ABORT, alone (ROLLBACK TO SAVEPOINT and RELEASE SAVEPOINT do not match).
 * Anchored, so most statements fail on their first letters.
 */
const ENDS_TRANSACTION = /^\s*(?:commit|end|rollback|abort)(?:\s+(?:work|transaction))?(?:\s+and\s+(?:no\s+)?chain)?\s*;?\s*$/i;

/** True when `sql` (a string, or a query config with `text`/`sql`) is a statement that ends the transaction. */
export function endsTransaction(sql: unknown): boolean {
  const text =
    typeof sql === 'string' ? sql : typeof sql === 'object' && sql !== null ? ((sql as { text?: unknown; sql?: unknown }).text ?? (sql as { sql?: unknown }).sql) : undefined;
  if (typeof text !== 'string' || text.length >= 64) return false;
  // Most statements are told apart by their first letter, without running the expression.
  let i = 0;
  while (i < text.length && text.charCodeAt(i) <= 32) i++;
  const first = text.charCodeAt(i);
  if (first < 128 && !ENDS_FIRST_LETTERS.has(first | 0x20)) return false;
  return ENDS_TRANSACTION.test(text);
}

/** The first letters of COMMIT, END, ROLLBACK and ABORT, lower case. */
const ENDS_FIRST_LETTERS: ReadonlySet<number> = new Set(['c', 'e', 'r', 'a'].map((l) => l.charCodeAt(0)));

function handleSpec(backend: SqlBackend): HandleGuardSpec<string> {
  return {
    backend,
    label: labelOf(backend),
    describe: (why) => ({
      how: `has ended (${why}) and its connection goes back to the pool`,
      state: why === 'committing' ? 'committing' : 'aborting',
    }),
    advice: ', not one kept from an earlier unit (and pass tx.signal to long work so it stops on a timeout)',
  };
}

const HANDLE_SPECS: Readonly<Record<SqlBackend, HandleGuardSpec<string>>> = {
  postgres: handleSpec('postgres'),
  mysql: handleSpec('mysql'),
  sqlite: handleSpec('sqlite'),
};

/**
 * The guard of a SQL transaction handle: once `ended` says why the
 * transaction is ending (`committing`, `rolled back`, `cancelled`, `savepoint
 * released`...), every query on the handle is refused with HANDLE_ENDED.
 */
export function sqlHandleGuard(backend: SqlBackend): HandleGuard<string> {
  return new HandleGuard(HANDLE_SPECS[backend]);
}

/** The callback tried to end the transaction on the handle, behind txkit's back. */
export function handleOwnsEndError(backend: SqlBackend, method: string): TransactionStateError {
  return new TransactionStateError(
    `${method} is not allowed on a ${labelOf(backend)} transaction handle: txkit commits and rolls back, ` +
      'so that retries, hooks and savepoints stay right; return from the callback to commit, throw to roll back, ' +
      'or call tx.commit() / tx.abort()',
    { backend, method, state: 'active', code: 'HANDLE_OWNS_END' },
  );
}

/** What a begin awaits its connection and BEGIN through: a {@link BeginLimit}, or nothing when nothing can cut it short. */
export interface BeginBound {
  readonly reason: unknown;
  race<T>(work: PromiseLike<T>, onLate: (late: T) => void): Promise<T>;
  dispose(): void;
}

/** A begin without `timeoutMs` whose signal can never fire: its work is awaited as it is (no timer, listener or race). */
const UNBOUNDED: BeginBound = {
  reason: undefined,
  race: <T>(work: PromiseLike<T>): Promise<T> => Promise.resolve(work),
  dispose: () => undefined,
};

/** The limit of one begin, or none when the caller gave no `timeoutMs` and no signal (the begin of most transactions). */
export function beginLimit(backend: SqlBackend, timeoutMs: number | undefined, signal: AbortSignal): BeginBound {
  return timeoutMs === undefined && signal === NEVER_ABORTED ? UNBOUNDED : new BeginLimit(backend, timeoutMs, signal);
}

/** The limit of one begin: the caller's signal and `timeoutMs`, over the wait for a connection and BEGIN. */
export class BeginLimit implements BeginBound {
  #reason: unknown;
  #fire!: (reason: unknown) => void;
  readonly #fired: Promise<never>;
  readonly #signal: AbortSignal;
  readonly #onAbort: () => void;
  readonly #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(backend: SqlBackend, timeoutMs: number | undefined, signal: AbortSignal) {
    this.#fired = new Promise<never>((_, reject) => {
      this.#fire = (reason) => {
        if (this.#reason !== undefined) return;
        this.#reason = reason;
        reject(reason);
      };
    });
    this.#fired.catch(() => undefined);
    this.#signal = signal;
    this.#onAbort = () => this.#fire(abortedError(signal, backend, 'begin'));
    if (signal.aborted) this.#onAbort();
    else signal.addEventListener('abort', this.#onAbort, { once: true });
    if (timeoutMs !== undefined) {
      const started = Date.now();
      this.#timer = setTimeout(() => {
        this.#fire(
          new TransactionTimeoutError(
            'TX_TIMEOUT',
            `the ${backend} transaction exceeded timeoutMs=${timeoutMs} before it began (waiting for a pooled connection and BEGIN); ` +
              'raise timeoutMs, make the pool larger, or check that the database answers',
            { backend, elapsedMs: Date.now() - started },
          ),
        );
      }, timeoutMs);
    }
  }

  /** What ended the wait (a TransactionTimeoutError or TransactionAbortedError), once it has. */
  get reason(): unknown {
    return this.#reason;
  }

  /**
   * `work`, or the limit's reason if that comes first; then `onLate` gets
   * what `work` resolves to later (a connection to give back, say).
   */
  async race<T>(work: PromiseLike<T>, onLate: (value: T) => void): Promise<T> {
    const promise = Promise.resolve(work);
    try {
      if (this.#reason !== undefined) throw this.#reason;
      return await Promise.race([promise, this.#fired]);
    } catch (err) {
      if (err === this.#reason && this.#reason !== undefined) promise.then(onLate, () => undefined);
      throw err;
    }
  }

  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#signal.removeEventListener('abort', this.#onAbort);
  }
}

/** Resolves true when `work` settles within `ms` (its rejection is thrown), false when the time ran out first. */
export async function settlesWithin(work: PromiseLike<unknown>, ms: number): Promise<boolean> {
  const promise = Promise.resolve(work);
  if (ms <= 0) {
    promise.catch(() => undefined);
    return false;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(resolve, ms, false)));
  try {
    return await Promise.race([promise.then(() => true), late]);
  } finally {
    clearTimeout(timer);
    promise.catch(() => undefined);
  }
}
