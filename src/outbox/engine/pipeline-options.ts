import { ConfigError, resolveRetryPolicy } from '../../core/index.js';
import type { Logger, RetryPolicy, Transaction, TransactionContext } from '../../core/index.js';
import { describeType } from '../../core/options.js';
import type { Outbox } from './outbox.js';
import type { MessageSource, OutboxStore, SourceMessage } from '../outbox-types.js';
import { errorReporter } from './report-error.js';
import { resolveLeaseOption } from './partition-leases.js';
import type { LeaseOption } from './partition-leases.js';

/** What the handler gets with each message. */
export interface PipelineContext<H, D = Buffer | null> {
  /** The database transaction the message's effects, its outbox messages and the consumer position commit in. */
  readonly tx: Transaction<H>;
  readonly outbox: Outbox<H>;
  /** The message as `decode` returned it; without `decode`, the raw `message.value`. */
  readonly decoded: D;
}

/**
 * How a pipeline reruns a message whose handler fails with an ordinary error
 * (anything but PoisonMessageError): after a capped, jittered back-off, while
 * the message's partition waits, until `budgetMs` has passed since its first
 * run. The failure after that sends it to the dead letters with its last error
 * and its number of runs.
 */
export interface RedeliveryPolicy {
  /** Wait before the first rerun, in ms. @default 100 */
  readonly initialDelayMs: number;
  /** Longest wait between two runs, in ms. @default 5000 */
  readonly maxDelayMs: number;
  /** Growth of the wait from one rerun to the next. @default 2 */
  readonly multiplier: number;
  /** `'full'`: each wait is random between 0 and its capped value (spreads the load of many waiting partitions); `'none'`: exactly that value. @default 'full' */
  readonly jitter: 'full' | 'none';
  /** How long a message is rerun, in ms from its first run; 0 dead-letters it at its first failure. @default 300_000 (5 minutes) */
  readonly budgetMs: number;
}

/** The redelivery policy a pipeline uses when its `redelivery` option leaves a field out. */
export const DEFAULT_REDELIVERY: Readonly<RedeliveryPolicy> = Object.freeze({
  initialDelayMs: 100,
  maxDelayMs: 5000,
  multiplier: 2,
  jitter: 'full',
  budgetMs: 300_000,
});

const REDELIVERY_FIELDS: readonly (keyof RedeliveryPolicy)[] = ['initialDelayMs', 'maxDelayMs', 'multiplier', 'jitter', 'budgetMs'];

/** Options of {@link pipeline}: `H` is the database's transaction handle, `D` what `decode` returns. */
export interface PipelineOptions<H, D = Buffer | null> {
  /** Names this consumer's positions in the inbox; workers of one consumer share and fence each other. */
  consumer: string;
  /** Where the messages come from, read by offset: `memorySource`, `kafkaSource`, `pulsarSource` or your own {@link MessageSource}. */
  source: MessageSource;
  /** The database the handler writes to; positions, outbox and dead letters commit in its transactions. */
  db: TransactionContext<H>;
  /** Where positions, outbox messages and dead letters live, in `db`'s database (its handle type is taken from `db`). */
  store: OutboxStore<NoInfer<H>>;
  /** State writes and outbox.publish() for one message, inside the database transaction. Throw PoisonMessageError to dead-letter the message without retries. */
  handler: (message: SourceMessage, context: PipelineContext<H, D>) => Promise<void>;
  /**
   * How a message whose handler fails with an ordinary error is rerun: the
   * partition waits (order is kept) with a capped, jittered back-off until
   * the budget is spent, then the message goes to the dead letters. Each
   * rerun is reported to `onError` (or the logger) as a MessageRetryError.
   * PoisonMessageError, `decode` failures and the `requireKey` /
   * `maxValueBytes` checks skip this and dead-letter the message at once.
   * @default {@link DEFAULT_REDELIVERY}: 100 ms doubling up to 5 s, full jitter, for 5 minutes
   */
  redelivery?: Partial<RedeliveryPolicy>;
  /**
   * Turns a message into what the handler works on (parse JSON, check a
   * schema), once per message and outside the transaction. A message it
   * throws on can never succeed: it goes to the dead letters at once, with
   * the reason `decode: <error>`, and is not retried.
   * @default none (the handler gets `message.value` as `decoded`)
   */
  decode?: (message: SourceMessage) => D | Promise<D>;
  /**
   * Messages without a key (null or empty) go to the dead letters with the
   * reason `key: ...` before the handler runs.
   * @default false
   */
  requireKey?: boolean;
  /**
   * Messages whose value is larger, in bytes, go to the dead letters with the
   * reason `value: ...` before `decode` and the handler run.
   * @default no limit
   */
  maxValueBytes?: number;
  /** Messages per database transaction. @default 100 */
  batchSize?: number;
  /**
   * Most runs of a failing message (each with its own transient retries)
   * before it goes to the dead letters, even with redelivery budget left.
   * @default no limit (the `redelivery` budget decides)
   */
  maxAttempts?: number;
  /** Retry policy of each database transaction. @default a 10 s deadline */
  retry?: Partial<RetryPolicy>;
  /** Longest wait for new messages before looking again. @default 1000 */
  pollIntervalMs?: number;
  /**
   * What a started worker does with a partition another worker fenced it off
   * (InboxFencedError): by default it stops processing it. With this set, it
   * stands by instead, watching the stored position, and takes the partition
   * back when messages have waited past that position for this long without
   * it moving (the other worker died or was scaled away). Safe at any value:
   * the inbox compare-and-set still lets one worker commit each position, so
   * a takeover from a worker that was only slow costs a wasted batch, not a
   * duplicate effect.
   * @default undefined (no takeover: a fenced partition waits for a restart)
   */
  takeOverAfterMs?: number;
  /**
   * Workers of one consumer split the source's partitions through leases in
   * the store (group `pipeline/<consumer>`): each partition is processed by
   * one live worker at a time, partitions move when a worker stops, dies
   * (after `ttlMs`) or joins, and a worker commits only while its lease is
   * valid. Without leases every worker reads every partition and the inbox
   * fences all but one per partition (`takeOverAfterMs` then decides about
   * standing by). `runUntilIdle()` and `step()` take no leases.
   * @default undefined (no leases)
   */
  leases?: false | LeaseOption;
  /** Errors the pipeline survives are reported here, dead-lettered messages included. @default `logger.error`, else a process warning */
  onError?: (err: unknown) => void;
  /** A pino-compatible logger; surviving errors go to `logger.error` when no `onError` is given. */
  logger?: Logger;
}

/** The options of a pipeline, checked, with their defaults filled in. */
export interface ResolvedOptions<H, D> {
  readonly consumer: string;
  readonly source: MessageSource;
  readonly db: TransactionContext<H>;
  readonly store: OutboxStore<H>;
  readonly handler: (message: SourceMessage, context: PipelineContext<H, D>) => Promise<void>;
  readonly decode: ((message: SourceMessage) => D | Promise<D>) | undefined;
  readonly requireKey: boolean;
  readonly maxValueBytes: number;
  readonly batchSize: number;
  readonly maxAttempts: number;
  readonly redelivery: Readonly<RedeliveryPolicy>;
  /** The redelivery back-off in the shape the core's back-off formula takes. */
  readonly backoff: Readonly<RetryPolicy>;
  readonly retry: Partial<RetryPolicy>;
  readonly pollIntervalMs: number;
  readonly takeOverAfterMs: number | undefined;
  /** Lease settings when start() shares the partitions with the other workers, else undefined. */
  readonly leases: { readonly ttlMs: number; readonly owner: string } | undefined;
  readonly onError: (err: unknown) => void;
}

const NO_LIMIT = Number.POSITIVE_INFINITY;

/** Checks every option before any work; each message names the option and how to fix it. */
export function resolveOptions<H, D>(options: PipelineOptions<H, D>): ResolvedOptions<H, D> {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError(`pipeline() needs an options object { consumer, source, db, store, handler }, got ${describeType(options, 'json')}`);
  }
  const { consumer, source, db, store, handler, decode, onError } = options;
  if (typeof consumer !== 'string' || consumer.trim() === '') {
    throw new ConfigError(
      `pipeline() option 'consumer' must be a non-empty string naming this consumer's positions, got ${describeType(consumer, 'json')}; ` +
        "use one stable name per logical consumer, e.g. 'payments-job'",
    );
  }
  if (!hasMethods(source, ['partitions', 'fetch', 'waitFor'])) {
    throw new ConfigError(
      `pipeline() option 'source' must be a MessageSource with partitions(), fetch() and waitFor(), got ${describeType(source, 'json')}; ` +
        'pass memorySource(...) or your own MessageSource',
    );
  }
  if (typeof source.name !== 'string' || source.name === '') {
    throw new ConfigError(`pipeline() option 'source' needs a non-empty 'name' (positions are stored under it), got ${describeType(source.name, 'json')}`);
  }
  if (!hasMethods(db, ['withTransaction'])) {
    throw new ConfigError(
      `pipeline() option 'db' must be the TransactionContext of the store's database, got ${describeType(db, 'json')}; ` +
        'pass knexTransactions(knex) for sqlOutboxStore(knex), pgTransactions(pool) for sqlOutboxStore(pool), or memoryTransactions({ store }) for a MemoryOutboxStore',
    );
  }
  if (!hasMethods(store, ['advanceInbox', 'addDeadLetter', 'inboxPosition', 'append'])) {
    throw new ConfigError(
      `pipeline() option 'store' must be an OutboxStore, got ${describeType(store, 'json')}; pass sqlOutboxStore(knex), mongoOutboxStore(client.db(name)) or new MemoryOutboxStore(store) (sqlOutboxStore also takes a pg Pool)`,
    );
  }
  if (typeof handler !== 'function') {
    throw new ConfigError(`pipeline() option 'handler' must be an async function (message, { tx, outbox, decoded }), got ${describeType(handler, 'json')}`);
  }
  if (decode !== undefined && typeof decode !== 'function') {
    throw new ConfigError(`pipeline() option 'decode' must be a function (message) => decoded, got ${describeType(decode, 'json')}; leave it out to get message.value`);
  }
  if (onError !== undefined && typeof onError !== 'function') {
    throw new ConfigError(`pipeline() option 'onError' must be a function (err) => void, got ${describeType(onError, 'json')}`);
  }
  if (options.requireKey !== undefined && typeof options.requireKey !== 'boolean') {
    throw new ConfigError(`pipeline() option 'requireKey' must be true or false, got ${describeType(options.requireKey, 'json')}`);
  }
  const batchSize = positiveInteger('batchSize', options.batchSize, 100);
  const maxAttempts = positiveInteger('maxAttempts', options.maxAttempts, NO_LIMIT);
  const redelivery = resolveRedelivery(options.redelivery);
  const maxValueBytes = positiveInteger('maxValueBytes', options.maxValueBytes, NO_LIMIT);
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  if (typeof pollIntervalMs !== 'number' || !Number.isFinite(pollIntervalMs) || pollIntervalMs <= 0) {
    throw new ConfigError(
      `pipeline() option 'pollIntervalMs' must be a positive finite number of milliseconds, got ${String(pollIntervalMs)}; leave it out for 1000`,
    );
  }
  const takeOverAfterMs = options.takeOverAfterMs;
  if (takeOverAfterMs !== undefined && (typeof takeOverAfterMs !== 'number' || !Number.isFinite(takeOverAfterMs) || takeOverAfterMs <= 0)) {
    throw new ConfigError(
      `pipeline() option 'takeOverAfterMs' must be a positive finite number of milliseconds, got ${String(takeOverAfterMs)}; leave it out to never take a fenced partition back`,
    );
  }
  const retry = options.retry ?? { deadlineMs: 10_000 };
  try {
    // Checked now, or every transaction of the pipeline would fail with it later.
    resolveRetryPolicy(retry);
  } catch (err) {
    throw new ConfigError(`pipeline() option 'retry' is invalid: ${(err as Error).message}`, { cause: err });
  }
  return {
    consumer,
    source,
    db,
    store,
    handler,
    decode,
    requireKey: options.requireKey ?? false,
    maxValueBytes,
    batchSize,
    maxAttempts,
    redelivery,
    backoff: { ...redelivery, deadlineMs: Math.max(redelivery.budgetMs, 1), maxAttempts: NO_LIMIT },
    retry,
    pollIntervalMs,
    takeOverAfterMs,
    leases: resolveLeaseOption(options.leases, 'pipeline() leases', false),
    onError: errorReporter('pipeline', onError, options.logger, { consumer }),
  };
}

/** The `redelivery` option over the defaults, each field checked; an unknown field is refused (a typo would silently change nothing). */
function resolveRedelivery(given: unknown): Readonly<RedeliveryPolicy> {
  if (given === undefined) return DEFAULT_REDELIVERY;
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw new ConfigError(`pipeline() option 'redelivery' must be an object { ${REDELIVERY_FIELDS.join(', ')} }, got ${describeType(given, 'json')}; leave it out for the defaults`);
  }
  const unknown = Object.keys(given).filter((k) => !REDELIVERY_FIELDS.includes(k as keyof RedeliveryPolicy));
  if (unknown.length > 0) {
    throw new ConfigError(
      `pipeline() option 'redelivery' has unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; the fields are ${REDELIVERY_FIELDS.join(', ')}`,
    );
  }
  const fields = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as Partial<RedeliveryPolicy>;
  const policy: RedeliveryPolicy = { ...DEFAULT_REDELIVERY, ...fields };
  for (const name of ['initialDelayMs', 'maxDelayMs', 'budgetMs'] as const) {
    const v = policy[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new ConfigError(`pipeline() option 'redelivery.${name}' must be a finite number of milliseconds, 0 or more, got ${typeof v === 'number' ? String(v) : describeType(v, 'json')}`);
    }
  }
  if (typeof policy.multiplier !== 'number' || !Number.isFinite(policy.multiplier) || policy.multiplier < 1) {
    throw new ConfigError(`pipeline() option 'redelivery.multiplier' must be a finite number of at least 1, got ${typeof policy.multiplier === 'number' ? String(policy.multiplier) : describeType(policy.multiplier, 'json')}`);
  }
  if (policy.jitter !== 'full' && policy.jitter !== 'none') {
    throw new ConfigError(`pipeline() option 'redelivery.jitter' must be 'full' or 'none', got ${describeType(policy.jitter, 'json')}`);
  }
  if (policy.maxDelayMs < policy.initialDelayMs) {
    throw new ConfigError(
      `pipeline() option 'redelivery.maxDelayMs' (${policy.maxDelayMs}) is below 'redelivery.initialDelayMs' (${policy.initialDelayMs}); the cap must be at least the first wait`,
    );
  }
  return Object.freeze(policy);
}

function positiveInteger(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new ConfigError(`pipeline() option '${name}' must be a positive integer, got ${typeof value === 'number' ? String(value) : describeType(value, 'json')}`);
  }
  return value;
}

function hasMethods(v: unknown, methods: readonly string[]): boolean {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && methods.every((m) => typeof (v as Record<string, unknown>)[m] === 'function');
}

