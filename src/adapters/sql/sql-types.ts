/**
 * Structural types of the few knex and pg members txkit calls, so neither
 * library is loaded (or needed by the emitted .d.ts) unless the user has it.
 * The factories are generic over these shapes and hand back the user's own
 * handle type (Knex.Transaction, pg.PoolClient), inferred from the argument.
 */

/** One pg query result: what `client.query()` resolves to (an array of them for a multi-statement string). */
export interface PgQueryResultLike {
  readonly command: string;
  readonly rows: readonly unknown[];
}

/**
 * The subset of pg's `PoolClient` txkit calls. To cancel a statement on a
 * timeout it also reads pg.Client's backend key data when present.
 */
export interface PgPoolClientLike {
  query(text: string, values?: readonly unknown[]): Promise<PgQueryResultLike | PgQueryResultLike[]>;
  /** Back to the pool; an argument destroys the connection instead. */
  release(err?: Error | boolean): void;
  on(event: 'error', listener: (err: Error) => void): unknown;
  removeListener(event: 'error', listener: (err: Error) => void): unknown;
}

/** The subset of pg's `Pool` txkit uses: one checked-out client per transaction. */
export interface PgPoolLike {
  connect(): Promise<PgPoolClientLike>;
}

/** knex's internal client object (`knex.client`, typed `any` by knex): the dialect and query cancelling. */
export interface KnexClientLike {
  /** 'postgresql', 'mysql' (mysql and mysql2) or 'sqlite3' (sqlite3 and better-sqlite3). */
  readonly dialect?: string;
  /** On a transaction's client: resolves to the transaction's own connection. */
  acquireConnection?(): unknown;
  /** Kills the statement running on `connection` from a separate raw connection (MySQL: KILL QUERY). */
  cancelQuery?(connection: unknown): unknown;
}

/** The transaction config knex accepts. */
export interface KnexTransactionConfigLike {
  isolationLevel?: string;
  readOnly?: boolean;
}

/** The subset of `Knex.Transaction` txkit uses. */
export interface KnexTransactionLike {
  commit(): PromiseLike<unknown>;
  rollback(): PromiseLike<unknown>;
  raw(sql: string, bindings?: readonly unknown[]): PromiseLike<unknown>;
  /** With a callback that returns nothing, knex leaves commit and rollback to the caller (here: a savepoint). */
  transaction(container: (trx: KnexTransactionLike) => void): PromiseLike<unknown>;
  isCompleted(): boolean;
  readonly client: KnexClientLike;
}

/** The subset of a knex instance txkit uses. */
export interface KnexLike {
  transaction(container: (trx: KnexTransactionLike) => void, config?: KnexTransactionConfigLike): PromiseLike<unknown>;
  raw(sql: string, bindings?: readonly unknown[]): PromiseLike<unknown>;
  readonly client: KnexClientLike;
}

/** The handle type of a knex instance: its `transaction()` callback's parameter (`Knex.Transaction` for knex). */
export type KnexTransactionOf<K extends KnexLike> = K extends {
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
