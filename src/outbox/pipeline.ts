import { ConfigError } from '../core/index.js';
import type { RetryPolicy, Transaction, TransactionContext } from '../core/index.js';
import { Outbox } from './outbox.js';
import { InboxFencedError } from './outbox-errors.js';
import type { MessageSource, OutboxStore, SourceMessage } from './outbox-types.js';
import { waitForWake } from './wait.js';

export interface PipelineContext<H> {
  readonly tx: Transaction<H>;
  readonly outbox: Outbox<H>;
}

export interface PipelineOptions<H> {
  /** Names this consumer's positions in the inbox; workers of one consumer share and fence each other. */
  consumer: string;
  source: MessageSource;
  /** The database the handler writes to; positions, outbox and dead letters commit in its transactions. */
  db: TransactionContext<H>;
  store: OutboxStore<H>;
  /** State writes and outbox.publish() for one message, inside the database transaction. */
  handler: (message: SourceMessage, context: PipelineContext<H>) => Promise<void>;
  /** Messages per database transaction. @default 100 */
  batchSize?: number;
  /** Runs of a failing message (each with its own transient retries) before it goes to the dead letters. @default 3 */
  maxAttempts?: number;
  /** Retry policy of each database transaction. @default a 10 s deadline */
  retry?: Partial<RetryPolicy>;
  /** Longest wait for new messages before looking again. @default 1000 */
  pollIntervalMs?: number;
  /** Errors the pipeline survives are reported here. @default a process warning */
  onError?: (err: unknown) => void;
}

export interface PipelineStats {
  readonly processed: number;
  readonly deadLettered: number;
  readonly transactions: number;
  readonly fenced: readonly number[];
}

/**
 * Consume -> handler (state writes + outbox) -> commit, with the consumed
 * position stored in the same database transaction. After a restart the
 * source is read from the positions in the database, so every message's
 * effects commit exactly once. A message that keeps failing goes to the dead
 * letters with its error, and the partition moves on.
 */
export class Pipeline<H> {
  readonly outbox: Outbox<H>;
  readonly #o: Required<Omit<PipelineOptions<H>, 'retry'>> & { retry: Partial<RetryPolicy> };
  #processed = 0;
  #dead = 0;
  #transactions = 0;
  readonly #fenced = new Set<number>();
  #running: { controller: AbortController; done: Promise<void> } | undefined;

  constructor(options: PipelineOptions<H>) {
    for (const k of ['consumer', 'source', 'db', 'store', 'handler'] as const) {
      if (options[k] === undefined || options[k] === null) throw new ConfigError(`pipeline() needs '${k}'`);
    }
    if (typeof options.handler !== 'function') throw new ConfigError('pipeline() handler must be a function');
    const batchSize = options.batchSize ?? 100;
    const maxAttempts = options.maxAttempts ?? 3;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new ConfigError(`pipeline() batchSize must be a positive integer, got ${String(batchSize)}`);
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new ConfigError(`pipeline() maxAttempts must be a positive integer, got ${String(maxAttempts)}`);
    this.#o = {
      ...options,
      batchSize,
      maxAttempts,
      retry: options.retry ?? { deadlineMs: 10_000 },
      pollIntervalMs: options.pollIntervalMs ?? 1000,
      onError: options.onError ?? ((err) => process.emitWarning(`txkit pipeline: ${err instanceof Error ? err.message : String(err)}`, { code: 'TXKIT_PIPELINE' })),
    };
    this.outbox = new Outbox(options.store);
  }

  get stats(): PipelineStats {
    return { processed: this.#processed, deadLettered: this.#dead, transactions: this.#transactions, fenced: [...this.#fenced] };
  }

  /** Processes until every partition has no message left, then returns (for batch jobs and tests). */
  async runUntilIdle(): Promise<PipelineStats> {
    for (const p of await this.#o.source.partitions()) {
      let offset = await this.#position(p);
      // Bounded: each step moves the position forward or ends.
      for (let step = 0; step < Number.MAX_SAFE_INTEGER; step++) {
        const next = await this.step(p, offset);
        if (next === undefined || next === offset) break;
        offset = next;
      }
    }
    return this.stats;
  }

  start(): void {
    if (this.#running !== undefined) return;
    const controller = new AbortController();
    const done = this.#o.source.partitions().then((parts) => Promise.all(parts.map((p) => this.#loop(p, controller.signal))));
    this.#running = { controller, done: done.then(() => undefined) };
  }

  async stop(): Promise<void> {
    const running = this.#running;
    if (running === undefined) return;
    running.controller.abort();
    await running.done;
    this.#running = undefined;
  }

  /**
   * Processes one batch of a partition from `offset`; returns the new offset,
   * or undefined when this worker was fenced off the partition.
   */
  async step(partition: number, offset: number): Promise<number | undefined> {
    const { source, db, store, consumer, handler, batchSize } = this.#o;
    const batch = await source.fetch(partition, offset, batchSize);
    if (batch.length === 0) return offset;
    // The position this worker believes is stored: its fencing token. No position is ever stored as 0.
    const expected = offset === 0 ? undefined : offset;
    const next = (batch.at(-1) as SourceMessage).offset + 1;
    try {
      await db.withTransaction(
        async (tx) => {
          for (const m of batch) await handler(m, { tx, outbox: this.outbox });
          await store.advanceInbox(tx.handle, consumer, source.name, partition, expected, next);
        },
        { retry: this.#o.retry },
      );
      this.#processed += batch.length;
      this.#transactions += 1;
      return next;
    } catch (err) {
      if (err instanceof InboxFencedError) return this.#fence(partition, err);
      this.#o.onError(err);
    }
    // Some message of the batch fails: go one by one, so only the bad one is set aside.
    let position: number | undefined = expected;
    for (const m of batch) {
      position = await this.#processOne(partition, m, position);
      if (position === undefined) return undefined;
    }
    return position;
  }

  async #processOne(partition: number, m: SourceMessage, expected: number | undefined): Promise<number | undefined> {
    const { db, store, consumer, handler, source } = this.#o;
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.#o.maxAttempts; attempt++) {
      try {
        await db.withTransaction(
          async (tx) => {
            await handler(m, { tx, outbox: this.outbox });
            await store.advanceInbox(tx.handle, consumer, source.name, partition, expected, m.offset + 1);
          },
          { retry: this.#o.retry },
        );
        this.#processed += 1;
        this.#transactions += 1;
        return m.offset + 1;
      } catch (err) {
        if (err instanceof InboxFencedError) return this.#fence(partition, err);
        lastError = err;
      }
    }
    // Out of attempts: the message and its error go to the dead letters in the same transaction that moves past it.
    try {
      await db.withTransaction(
        async (tx) => {
          await store.addDeadLetter(tx.handle, {
            consumer,
            source: source.name,
            partition,
            offset: m.offset,
            key: m.key,
            value: m.value,
            headers: m.headers,
            error: describe(lastError),
            attempts: this.#o.maxAttempts,
          });
          await store.advanceInbox(tx.handle, consumer, source.name, partition, expected, m.offset + 1);
        },
        { retry: this.#o.retry },
      );
    } catch (err) {
      if (err instanceof InboxFencedError) return this.#fence(partition, err);
      throw err;
    }
    this.#dead += 1;
    this.#o.onError(lastError);
    return m.offset + 1;
  }

  async #loop(partition: number, signal: AbortSignal): Promise<void> {
    let offset: number | undefined;
    let failures = 0;
    while (!signal.aborted) {
      try {
        offset ??= await this.#position(partition);
        const next = await this.step(partition, offset);
        if (next === undefined) return;
        failures = 0;
        if (next === offset) await this.#o.source.waitFor(partition, offset, this.#o.pollIntervalMs, signal);
        offset = next;
      } catch (err) {
        // The database or source is failing (not a message): back off and look again from the stored position.
        this.#o.onError(err);
        offset = undefined;
        failures += 1;
        await waitForWake(Math.min(this.#o.pollIntervalMs, 50 * 2 ** Math.min(failures, 10)), signal);
      }
    }
  }

  async #position(partition: number): Promise<number> {
    return (await this.#storedOrUndefined(partition)) ?? 0;
  }

  #storedOrUndefined(partition: number): Promise<number | undefined> {
    return this.#o.store.inboxPosition(undefined, this.#o.consumer, this.#o.source.name, partition);
  }

  #fence(partition: number, err: InboxFencedError): undefined {
    this.#fenced.add(partition);
    this.#o.onError(err);
    return undefined;
  }
}

/** Builds a pipeline; call start() for a long-running worker or runUntilIdle() for a batch run. */
export function pipeline<H>(options: PipelineOptions<H>): Pipeline<H> {
  return new Pipeline(options);
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

