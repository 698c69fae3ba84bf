import { ConfigError, checkKnownOptions, createTransactionContext } from '../../core/index.js';
import type {
  Classification,
  ContextOptions,
  DriverBeginInfo,
  DriverTransaction,
  NativeEnd,
  TransactionContext,
  TransactionDriver,
} from '../../core/index.js';
import { describeType } from '../../core/options.js';
import { OpenList } from '../../core/open-list.js';
import type { OpenNode } from '../../core/open-list.js';
import { MongoCommitTimeoutError, classifyMongoError, commitError, misuseError } from './mongo-errors.js';
import type {
  MongoClientLike,
  MongoReadConcernLike,
  MongoReadPreferenceLike,
  MongoSessionLike,
  MongoSessionOptionsLike,
  MongoTransactionOptionsLike,
  MongoWriteConcernLike,
  SessionOf,
} from './mongo-types.js';

/**
 * Per-transaction options (`begin`, `withTransaction`, or `defaults` for the
 * whole context). Each one left out falls back to the context's `defaults`,
 * then to the MongoClient's own setting, as `startTransaction` does.
 */
export interface MongoTxOptions {
  /**
   * Read concern of the transaction's first command: 'local', 'majority' or 'snapshot'.
   * @default the client's readConcern (server default: 'local')
   */
  readConcern?: MongoReadConcernLike;
  /**
   * Write concern of commitTransaction and abortTransaction. A retried commit
   * always uses w: 'majority' (and wtimeout 10000 when none is set).
   * @default the client's writeConcern (server default)
   */
  writeConcern?: MongoWriteConcernLike;
  /**
   * Read preference of reads in the transaction; the driver refuses reads unless it is 'primary'.
   * @default the client's readPreference ('primary')
   */
  readPreference?: MongoReadPreferenceLike;
  /**
   * Server-side limit on one commitTransaction, in milliseconds. A commit that
   * hits it (MaxTimeMSExpired) is not retried: txkit throws MongoCommitTimeoutError.
   * @default none (the server's)
   */
  maxCommitTimeMS?: number;
}

/** Options of {@link mongoTransactions}: the context options plus the session settings. */
export interface MongoTransactionsOptions extends ContextOptions<MongoTxOptions> {
  /**
   * Starts each unit's session causally consistent, so reads in it see its own
   * earlier writes even when they go to another member.
   * @default true
   */
  causalConsistency?: boolean;
}

/** The keys {@link mongoTransactions} takes; any other is refused. */
const FACTORY_OPTION_KEYS: ReadonlySet<string> = new Set([
  'causalConsistency',
  'retry',
  'defaults',
  'onHookError',
  'telemetry',
  'logger',
]);

const DEFAULTS_HINT = "Transaction options (readConcern, writeConcern, readPreference, maxCommitTimeMS, timeoutMs, signal) go in 'defaults'.";
const TX_OPTION_HINTS: Readonly<Record<string, string>> = Object.fromEntries(
  ['readConcern', 'writeConcern', 'readPreference', 'maxCommitTimeMS', 'timeoutMs', 'signal'].map((k) => [k, DEFAULTS_HINT]),
);

/** A transaction context whose handle is the driver's ClientSession (inferred from the client). */
export type MongoTransactionContext<S extends MongoSessionLike = MongoSessionLike> = TransactionContext<S, MongoTxOptions>;

const READ_CONCERN_LEVELS: ReadonlySet<string> = new Set(['local', 'majority', 'snapshot']);
const READ_PREFERENCE_MODES: ReadonlySet<string> = new Set([
  'primary',
  'primaryPreferred',
  'secondary',
  'secondaryPreferred',
  'nearest',
]);

/**
 * A transaction context on a MongoDB replica set or sharded cluster. Each
 * unit runs on its own ClientSession (`tx.handle`), started for it, kept
 * across its reruns (so a rerun reads causally after the attempt before it,
 * as with the driver's `session.withTransaction`) and always ended; pass
 * `{ session: tx.handle }` to every operation of the unit. Errors are judged
 * by their labels: `TransientTransactionError` reruns the unit and
 * `UnknownTransactionCommitResult` retries only the commit. A callback that
 * commits or aborts the session's transaction itself is left as it is (the
 * convenient API's rule): no second commitTransaction, and its value is
 * returned. There are no savepoints, so `propagation: 'nested'` inside a
 * running transaction throws TransactionPropagationError.
 *
 * The context never closes the client: `close()` ends the sessions it still
 * holds, and the client stays yours.
 * @throws ConfigError when `client` has no `startSession()`, or an option is unknown or invalid.
 * @example
 * ```ts
 * import { mongoTransactions } from 'txkit/mongo';
 *
 * const client = await MongoClient.connect(process.env.MONGODB_URL!); // the driver's MongoClient
 * const ctx = mongoTransactions(client, { defaults: { writeConcern: { w: 'majority' } } });
 * await ctx.withTransaction(async (tx) => {
 *   const orders = client.db('shop').collection('orders');
 *   await orders.insertOne({ total: 10 }, { session: tx.handle });
 * });
 * ```
 */
export function mongoTransactions<C extends MongoClientLike>(
  client: C,
  options: MongoTransactionsOptions = {},
): MongoTransactionContext<SessionOf<C>> {
  if (typeof (client as Partial<MongoClientLike> | null | undefined)?.startSession !== 'function') {
    throw new ConfigError(
      `mongoTransactions(client) needs a MongoClient from the 'mongodb' package, got ${describeType(client)}`,
      { backend: 'mongodb' },
    );
  }
  checkKnownOptions(options ?? {}, FACTORY_OPTION_KEYS, 'the options of mongoTransactions(client, options)', 'mongodb', TX_OPTION_HINTS);
  const { causalConsistency = true, ...contextOptions } = options;
  if (typeof causalConsistency !== 'boolean') {
    throw new ConfigError(`causalConsistency must be a boolean, got ${describeType(causalConsistency)}`, { backend: 'mongodb' });
  }
  // C['startSession'] returns SessionOf<C> by definition; TypeScript cannot see that through the generic.
  const driver = new MongoDriver(client as unknown as SessionFactory<SessionOf<C>>, { causalConsistency });
  return createTransactionContext(driver, contextOptions);
}

/**
 * One withTransaction call: the session its attempts share (as the driver's
 * withTransaction reruns on one session, so each rerun reads causally after
 * the attempt before it).
 */
interface UnitScope<S> {
  /** The session between two attempts; the next attempt starts its transaction on it. */
  idle: S | undefined;
  /** The unit has returned or thrown: nothing is kept for a next attempt any more. */
  done: boolean;
}

/** A client as the driver sees it: what starts the sessions of type S. */
interface SessionFactory<S extends MongoSessionLike> {
  startSession(options?: MongoSessionOptionsLike): S;
}

/** The MongoDB TransactionDriver: one ClientSession per transaction, classified by error labels. */
export class MongoDriver<S extends MongoSessionLike> implements TransactionDriver<S, MongoTxOptions> {
  readonly backend = 'mongodb' as const;
  readonly #client: SessionFactory<S>;
  readonly #sessionOptions: { causalConsistency: boolean };
  /** Transactions not yet ended: a commit whose result stays unknown keeps its session until close(). */
  readonly #open = new OpenList<MongoTransaction<S>>();
  /** Sessions kept between two attempts of a unit. */
  readonly #idle = new Set<S>();

  constructor(client: SessionFactory<S>, options: { causalConsistency: boolean }) {
    this.#client = client;
    this.#sessionOptions = { causalConsistency: options.causalConsistency };
  }

  validateOptions(options: MongoTxOptions): void {
    const { readConcern, writeConcern, readPreference, maxCommitTimeMS } = options;
    if (readConcern !== undefined) {
      const level = typeof readConcern === 'string' ? readConcern : (readConcern as { level?: unknown } | null)?.level;
      if (typeof level !== 'string' || !READ_CONCERN_LEVELS.has(level)) {
        throw new ConfigError(
          `readConcern must be 'local', 'majority' or 'snapshot' (or { level }) in a MongoDB transaction, got ${show(readConcern)}`,
          { backend: 'mongodb' },
        );
      }
    }
    if (writeConcern !== undefined) {
      if (typeof writeConcern !== 'object' || writeConcern === null) {
        throw new ConfigError(`writeConcern must be an object such as { w: 'majority' }, got ${show(writeConcern)}`, {
          backend: 'mongodb',
        });
      }
      if (writeConcern.w === 0) {
        throw new ConfigError(
          "writeConcern { w: 0 } is not allowed: MongoDB transactions need acknowledged commits; use w: 1 or 'majority'",
          { backend: 'mongodb' },
        );
      }
    }
    if (readPreference !== undefined) {
      const mode = typeof readPreference === 'string' ? readPreference : (readPreference as { mode?: unknown } | null)?.mode;
      if (typeof mode !== 'string' || !READ_PREFERENCE_MODES.has(mode)) {
        throw new ConfigError(
          `readPreference must be one of ${[...READ_PREFERENCE_MODES].join(', ')} (or { mode }), got ${show(readPreference)}`,
          { backend: 'mongodb' },
        );
      }
    }
    if (maxCommitTimeMS !== undefined && !(Number.isInteger(maxCommitTimeMS) && maxCommitTimeMS > 0)) {
      throw new ConfigError(`maxCommitTimeMS must be a positive integer of milliseconds, got ${show(maxCommitTimeMS)}`, {
        backend: 'mongodb',
      });
    }
  }

  /** A unit's attempt continues on the session the attempt before it left; a transaction begun by hand gets a session of its own. */
  async begin(options: MongoTxOptions, _signal: AbortSignal, info: DriverBeginInfo<S>): Promise<DriverTransaction<S>> {
    const scope = info.unit ? (info.unitState as UnitScope<S> | undefined) : undefined;
    let session: S | undefined;
    if (scope?.idle !== undefined) {
      session = scope.idle;
      scope.idle = undefined;
      this.#idle.delete(session);
      if (session.hasEnded) session = undefined; // close() ended it between two attempts
    }
    session ??= this.#client.startSession(this.#sessionOptions);
    try {
      session.startTransaction(transactionOptions(options));
    } catch (err) {
      await session.endSession();
      throw err;
    }
    return new MongoTransaction(session, this, scope, this.#open);
  }

  /** Judges a driver error by its labels. */
  classify = (err: unknown): Classification => classifyMongoError(err);

  /**
   * Misuses surface in the user's own operations, where no adapter code runs:
   * they get their typed error where the context hands the error back.
   */
  translateError(err: unknown): unknown {
    return misuseError(err) ?? err;
  }

  /**
   * Runs one withTransaction unit: its attempts share one session, ended when the unit is over. It settles as
   * `run` does, once a session kept for a next attempt is ended: an async try/finally, written as one `then`
   * because that makes one promise less per unit (each promise costs a program with an AsyncLocalStorage its hooks).
   */
  runUnit<T>(run: (unitState: UnitScope<S>) => Promise<T>): Promise<T> {
    const scope: UnitScope<S> = { idle: undefined, done: false };
    let running: Promise<T>;
    try {
      running = run(scope);
    } catch (err) {
      running = Promise.reject(err);
    }
    return running.then(
      (value) => {
        const ending = this.#endUnit(scope);
        return ending === undefined ? value : ending.then(() => value);
      },
      (err: unknown) => {
        const ending = this.#endUnit(scope);
        if (ending === undefined) throw err;
        return ending.then(() => Promise.reject(err));
      },
    );
  }

  /** The unit is over: nothing is kept for a next attempt; a session still kept is ended (its promise). */
  #endUnit(scope: UnitScope<S>): Promise<void> | undefined {
    scope.done = true;
    const idle = scope.idle;
    if (idle === undefined) return undefined;
    scope.idle = undefined;
    this.#idle.delete(idle);
    return settled(() => idle.endSession());
  }

  /** The attempt is over and the unit may run again: keep its session for the next attempt, else end it. */
  async release(tx: MongoTransaction<S>, scope: UnitScope<S> | undefined): Promise<void> {
    tx.forget();
    if (scope === undefined || scope.done || scope.idle !== undefined || tx.handle.hasEnded) {
      await tx.handle.endSession();
      return;
    }
    scope.idle = tx.handle;
    this.#idle.add(tx.handle);
  }

  /** Ends sessions still held (commits whose result stayed unknown, sessions between two attempts); the client stays open. */
  async close(): Promise<void> {
    const idle = [...this.#idle];
    this.#idle.clear();
    await Promise.all([...this.#open.values().map((tx) => tx.end()), ...idle.map((s) => s.endSession())]);
  }
}

/** Only the options that were given: the driver fills in the rest from the session and client defaults. */
function transactionOptions(options: MongoTxOptions): MongoTransactionOptionsLike | undefined {
  const { readConcern, writeConcern, readPreference, maxCommitTimeMS } = options;
  if (readConcern === undefined && writeConcern === undefined && readPreference === undefined && maxCommitTimeMS === undefined) {
    return undefined;
  }
  const out: MongoTransactionOptionsLike = {};
  if (readConcern !== undefined) out.readConcern = readConcern;
  if (writeConcern !== undefined) out.writeConcern = writeConcern;
  if (readPreference !== undefined) out.readPreference = readPreference;
  if (maxCommitTimeMS !== undefined) out.maxCommitTimeMS = maxCommitTimeMS;
  return out;
}

/**
 * How the callback left the session's transaction, when it committed or
 * aborted it itself. The driver records it in `session.transaction.state`
 * (the states of the transactions spec) and marks a commit that failed with
 * `commitAttempted`; a session without that record reports nothing, and
 * txkit commits as usual.
 */
function endedBySession(session: MongoSessionLike): 'committed' | 'commit-failed' | 'aborted' | undefined {
  if (session.inTransaction()) return undefined;
  const { transaction, commitAttempted } = session as {
    readonly transaction?: { readonly state?: unknown };
    readonly commitAttempted?: unknown;
  };
  const state = transaction?.state;
  if (state === 'TRANSACTION_COMMITTED' || state === 'TRANSACTION_COMMITTED_EMPTY') {
    return commitAttempted === true ? 'commit-failed' : 'committed';
  }
  if (state === 'TRANSACTION_ABORTED') return 'aborted';
  return undefined;
}

/**
 * One transaction (one attempt of a unit) on a ClientSession. The session is
 * ended when the transaction commits; after a rollback it is kept for the
 * unit's next attempt, and ended with the unit.
 */
class MongoTransaction<S extends MongoSessionLike> implements DriverTransaction<S> {
  readonly handle: S;
  readonly #driver: MongoDriver<S>;
  readonly #scope: UnitScope<S> | undefined;
  /** A commitTransaction of txkit's was acknowledged: the transaction is committed, whatever is asked later. */
  #committed = false;
  #ending: Promise<void> | undefined;
  /** Its place among the driver's open transactions, which close() ends, until it no longer holds its session. */
  readonly #openNode: OpenNode<MongoTransaction<S>>;
  readonly #open: OpenList<MongoTransaction<S>>;

  constructor(session: S, driver: MongoDriver<S>, scope: UnitScope<S> | undefined, open: OpenList<MongoTransaction<S>>) {
    this.handle = session;
    this.#driver = driver;
    this.#scope = scope;
    this.#open = open;
    this.#openNode = open.add(this);
  }

  /** The transaction no longer holds its session open: close() need not end it. */
  forget(): void {
    this.#open.delete(this.#openNode);
  }

  /**
   * The callback may have ended the transaction itself through the session:
   * its decision stands (convenient API, step 8), and the session is freed.
   * A commit of the callback's that failed is not taken as an end: txkit
   * sends it again (with w: 'majority') and judges it as its own. A session
   * still in its transaction is answered at once, without a promise.
   */
  endedNatively(): NativeEnd | undefined | Promise<NativeEnd> {
    const ended = endedBySession(this.handle);
    if (ended === 'committed') return this.end().then(() => 'committed' as const);
    if (ended === 'aborted') {
      this.#ending ??= this.#driver.release(this, this.#scope);
      return this.#ending.then(() => 'aborted' as const);
    }
    return undefined;
  }

  commit(): Promise<void> {
    // Asked again after an acknowledged commit (its answer was taken as lost): it is committed, and the session ended.
    if (this.#committed) return Promise.resolve();
    // An empty transaction commits locally: the driver sends nothing (transactions spec).
    return settled(() => this.handle.commitTransaction()).then(
      () => {
        this.#committed = true;
        return this.end();
      },
      (err: unknown) => this.#commitFailed(err).then((reported) => Promise.reject(reported)),
    );
  }

  /**
   * Sends commitTransaction again after an unknown result; the driver applies
   * w: 'majority' (wtimeout 10000 unless set) to every commit after the first.
   * Deleted after MaxTimeMSExpired, which the convenient API never retries:
   * without it the core ends the transaction `failed` with the timeout error.
   */
  recommit?: () => Promise<void> = recommit;

  async rollback(): Promise<void> {
    try {
      // Not after a commit was sent, nor after the callback ended the transaction: the driver refuses abortTransaction then.
      if (this.handle.inTransaction()) await this.handle.abortTransaction();
    } finally {
      this.#ending ??= this.#driver.release(this, this.#scope);
      await this.#ending;
    }
  }

  /** Ends the session once; endSession aborts a transaction still in progress and never throws a server error. */
  end(): Promise<void> {
    return (this.#ending ??= this.#end());
  }

  #end(): Promise<void> {
    this.forget();
    return settled(() => this.handle.endSession());
  }

  async #commitFailed(err: unknown): Promise<unknown> {
    const reported = commitError(err);
    if (reported instanceof MongoCommitTimeoutError) {
      // Nothing will retry this commit: withdraw recommit and free the session now.
      delete this.recommit;
      await this.end();
    }
    return reported;
  }
}

/**
 * The promise `call` returns, settled as an async function around the call would be, without a promise of its
 * own: a synchronous throw becomes its rejection. The value is not read (the session methods' results are not
 * used), so it is typed void. The driver's session methods are async already: this costs them nothing.
 */
function settled(call: () => Promise<unknown>): Promise<void> {
  try {
    return Promise.resolve(call()) as Promise<void>;
  } catch (err) {
    return Promise.reject(err);
  }
}

/** MongoTransaction's recommit, one function for all of them (the core calls it as a method of the transaction). */
function recommit(this: { commit(): Promise<void> }): Promise<void> {
  return this.commit();
}

function show(v: unknown): string {
  try {
    return typeof v === 'string' ? `'${v}'` : (JSON.stringify(v) ?? String(v));
  } catch {
    return String(v);
  }
}
