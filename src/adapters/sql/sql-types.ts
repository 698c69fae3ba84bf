/**
 * Structural types of the few knex and pg members txkit calls, so neither
 * library is loaded (or needed by the emitted .d.ts) unless the user has it.
 * The factories are generic over these shapes and hand back the user's own
 * handle type (Knex.Transaction, pg.PoolClient), inferred from the argument.
 */

/** One pg query result: what `client.query()` resolves to (an array of them for a multi-statement string). */
export interface PgQueryResultLike {
  /** The SQL command of the statement, e.g. `SELECT`. */
  readonly command: string;
  /** The rows returned. */
  readonly rows: readonly unknown[];
}

/**
 * The subset of pg's `PoolClient` txkit calls. To cancel a statement on a
 * timeout it also reads pg.Client's backend key data when present.
 */
export interface PgPoolClientLike {
  /** Runs SQL text (several statements resolve to an array of results). */
  query(text: string, values?: readonly unknown[]): Promise<PgQueryResultLike | PgQueryResultLike[]>;
  /** Back to the pool; an argument destroys the connection instead. */
  release(err?: Error | boolean): void;
  /** Listens for connection errors while the client is checked out. */
  on(event: 'error', listener: (err: Error) => void): unknown;
  /** Stops listening for connection errors. */
  removeListener(event: 'error', listener: (err: Error) => void): unknown;
}

/** The subset of pg's `Pool` txkit uses: one checked-out client per transaction. */
export interface PgPoolLike {
  /** Checks out a client. */
  connect(): Promise<PgPoolClientLike>;
}

/** knex's internal client object (`knex.client`, typed `any` by knex): the dialect and query cancelling. */
export interface KnexClientLike {
  /** 'postgresql', 'mysql' (mysql and mysql2) or 'sqlite3' (sqlite3 and better-sqlite3). */
  readonly dialect?: string;
  /** Takes a connection from knex's pool (on a transaction's client: the transaction's own connection). */
  acquireConnection?(): unknown;
  /** Gives a connection back to knex's pool, which discards it when knex marked it disposed. */
  releaseConnection?(connection: unknown): unknown;
  /** Closes a raw connection (pg: end(), better-sqlite3: close()). */
  destroyRawConnection?(connection: unknown): unknown;
  /** Kills the statement running on `connection` from a separate raw connection (MySQL: KILL QUERY). */
  cancelQuery?(connection: unknown): unknown;
}

/** The transaction config knex accepts. */
export interface KnexTransactionConfigLike {
  /** Isolation level as knex spells it. */
  isolationLevel?: string;
  /** Starts the transaction read-only. */
  readOnly?: boolean;
  /** A connection txkit acquired: knex runs the transaction on it and leaves releasing it to txkit. */
  connection?: unknown;
}

/** The subset of `Knex.Transaction` txkit uses. */
export interface KnexTransactionLike {
  /** Commits the transaction (or releases the savepoint). */
  commit(): PromiseLike<unknown>;
  /** Rolls the transaction back (or back to the savepoint). */
  rollback(): PromiseLike<unknown>;
  /** Runs raw SQL on the transaction's connection. */
  raw(sql: string, bindings?: readonly unknown[]): PromiseLike<unknown>;
  /** With a callback that returns nothing, knex leaves commit and rollback to the caller (here: a savepoint). */
  transaction(container: (trx: KnexTransactionLike) => void): PromiseLike<unknown>;
  /** True once the transaction committed or rolled back. */
  isCompleted(): boolean;
  /** knex's client object of this transaction. */
  readonly client: KnexClientLike;
}

/** The subset of a knex instance txkit uses. */
export interface KnexLike {
  /** Opens a transaction; with a callback that returns nothing, knex leaves commit and rollback to the caller. */
  transaction(container: (trx: KnexTransactionLike) => void, config?: KnexTransactionConfigLike): PromiseLike<unknown>;
  /** Runs raw SQL on a pooled connection. */
  raw(sql: string, bindings?: readonly unknown[]): PromiseLike<unknown>;
  /** knex's client object: the dialect and query cancelling. */
  readonly client: KnexClientLike;
}

/** The handle type of a knex instance: its `transaction()` callback's parameter (`Knex.Transaction` for knex). */
export type KnexTransactionOf<K extends KnexLike> = K extends {
  /** knex's `transaction()`, whose callback parameter is the handle type. */
  transaction(container: (trx: infer T) => unknown, config?: never): unknown;
}
  ? T
  : KnexTransactionLike;

/**
 * The client type a pool's `connect()` resolves to (`PoolClient` for pg).
 * pg's Pool declares `connect()` twice (promise and callback), and inference
 * from an overloaded member uses the last signature, so both are matched.
 */
export type PoolClientOf<P extends PgPoolLike> = Awaited<Extract<LastTwoResults<P['connect']>, PromiseLike<unknown>>>;

type LastTwoResults<F> = F extends { (...args: infer _A1): infer R1; (...args: infer _A2): infer R2 } ? R1 | R2 : never;
