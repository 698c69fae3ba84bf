import { FencedError, TxkitError, UnknownCommitResultError, backoffDelay } from '../../core/index.js';
import type { Transaction } from '../../core/index.js';
import { wait } from '../../core/backoff.js';
import { describeError } from '../../core/options.js';
import { inCallbackOf, isInCallbackOf } from '../../core/callback-scope.js';
import { Outbox } from './outbox.js';
import { InboxFencedError, MessageRetryError, PoisonMessageError, RedeliveryExhaustedError } from '../outbox-errors.js';
import type { SourceMessage } from '../outbox-types.js';
import { resolveOptions } from './pipeline-options.js';
import type { PipelineOptions, ResolvedOptions } from './pipeline-options.js';
import { runPartitionLoop } from './partition-loop.js';
import { PartitionLeases } from './partition-leases.js';
import type { HeldLease } from './partition-leases.js';

export { DEFAULT_REDELIVERY } from './pipeline-options.js';
export type { PipelineContext, PipelineOptions, RedeliveryPolicy } from './pipeline-options.js';

/** Counters of one {@link Pipeline} instance since it was built. */
export interface PipelineStats {
  /** Messages whose handler committed. */
  readonly processed: number;
  /** Messages this instance put in the dead letters. */
  readonly deadLettered: number;
  /** Database transactions this instance committed. */
  readonly transactions: number;
  /** Source partitions this instance stopped processing (or stands by on) because another worker of the consumer moved their position. */
  readonly fenced: readonly number[];
  /** Partitions this instance took back after standing by (`takeOverAfterMs`), counted per takeover. */
  readonly takeovers: number;
  /** Partitions whose lease this instance holds now (with `leases`, while started). */
  readonly owned: readonly number[];
}

/** A message admitted to the handler with its decoded form, or set aside with the reason. */
type Admission<D> =
  | { readonly ok: true; readonly decoded: D }
  | { readonly ok: false; readonly error: PoisonMessageError; readonly attempts: number };


/**
 * Consume -> handler (state writes + outbox) -> commit, with the consumed
 * position stored in the same database transaction. After a restart the
 * source is read from the positions in the database, so every message's
 * effects commit exactly once. A message whose handler fails is rerun after
 * a back-off while its partition waits (`redelivery`), so an outage of the
 * handler's dependencies delays messages without losing their order; one
 * that still fails when the redelivery budget is spent goes to the dead
 * letters with its error, and the partition moves on. A message that fails
 * `requireKey`, `maxValueBytes` or `decode`, or whose handler throws
 * PoisonMessageError, goes there at once and without reruns.
 */
export class Pipeline<H, D = Buffer | null> {
  readonly outbox: Outbox<H>;
  readonly #o: ResolvedOptions<H, D>;
  #processed = 0;
  #dead = 0;
  #transactions = 0;
  #takeovers = 0;
  readonly #fenced = new Set<number>();
  /** With leases: the lease of each partition a started worker processes, checked before each commit there. */
  readonly #held = new Map<number, HeldLease>();
  #leases: PartitionLeases | undefined;
  #running: { controller: AbortController; done: Promise<void> } | undefined;

  /**
   * @throws {@link txkit!ConfigError | ConfigError} when an option is missing or invalid; the message names the option.
   */
  constructor(options: PipelineOptions<H, D>) {
    this.#o = resolveOptions(options);
    this.outbox = new Outbox(options.store);
  }

  /** Counters of this instance so far. */
  get stats(): PipelineStats {
    return {
      processed: this.#processed,
      deadLettered: this.#dead,
      transactions: this.#transactions,
      fenced: [...this.#fenced],
      takeovers: this.#takeovers,
      owned: this.#leases?.owned ?? [],
    };
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

  /**
   * Starts one worker loop per partition of the source (with `leases`, per
   * partition this instance holds); stop() ends them. Calling it twice is a no-op.
   */
  start(): void {
    if (this.#running !== undefined) return;
    const controller = new AbortController();
    const { leases, store, consumer, source } = this.#o;
    const done = source.partitions().then((parts): Promise<unknown> => {
      if (leases === undefined) return Promise.all(parts.map((p) => this.#loop(p, controller.signal)));
      this.#leases = new PartitionLeases({
        store,
        group: `pipeline/${consumer}`,
        owner: leases.owner,
        partitions: parts,
        ttlMs: leases.ttlMs,
        work: async (lease, signal) => {
          this.#fenced.delete(lease.partition);
          this.#held.set(lease.partition, lease);
          try {
            await this.#loop(lease.partition, signal);
          } finally {
            this.#held.delete(lease.partition);
          }
        },
        onError: this.#o.onError,
      });
      return this.#leases.run(controller.signal);
    });
    this.#running = { controller, done: done.then(() => undefined) };
  }

  /**
   * Stops the loops started by start() after their current transaction; resolves when they have ended.
   * Called from the handler, it resolves at once: the loops end once that handler's transaction has.
   */
  async stop(): Promise<void> {
    const running = this.#running;
    if (running === undefined) return;
    running.controller.abort();
    const ended = running.done.then(() => {
      if (this.#running === running) this.#running = undefined;
    });
    if (isInCallbackOf(this)) {
      // Waiting here from the handler would wait for that handler's own loop; a later stop() reports how it ended.
      ended.catch(() => undefined);
      return;
    }
    await ended;
  }

  /**
   * Processes one batch of a partition from `offset`; returns the new offset,
   * or undefined when this worker was fenced off the partition.
   */
  step(partition: number, offset: number): Promise<number | undefined> {
    return this.#step(partition, offset, undefined);
  }

  /** step(), with the stop signal of a started worker: a redelivery back-off ends on it and the position stays where it is. */
  async #step(partition: number, offset: number, signal: AbortSignal | undefined): Promise<number | undefined> {
    const { source, store, consumer, handler, batchSize } = this.#o;
    const batch = await source.fetch(partition, offset, batchSize);
    if (batch.length === 0) return offset;
    // The position this worker believes is stored: its fencing token. No position is ever stored as 0.
    const expected = offset === 0 ? undefined : offset;
    const next = (batch.at(-1) as SourceMessage).offset + 1;
    // Checks and decode run once per message, outside the transaction: their verdict does not change on a rerun.
    const admissions = new Map<SourceMessage, Admission<D>>();
    for (const m of batch) admissions.set(m, await this.#admit(m));
    const rejected = batch.filter((m) => !(admissions.get(m) as Admission<D>).ok);
    // One message: its runs are its attempts, without a batch run before them.
    if (batch.length === 1) {
      const one = await this.#processOne(partition, batch[0] as SourceMessage, expected, admissions.get(batch[0] as SourceMessage) as Admission<D>, signal);
      return one === STOPPED ? offset : one;
    }
    let current: SourceMessage | undefined;
    try {
      await this.#commit(partition, expected, next, async (tx) => {
        this.outbox.collect(tx);
        for (const m of batch) {
          current = m;
          const admission = admissions.get(m) as Admission<D>;
          if (admission.ok) await inCallbackOf(this, () => handler(m, { tx, outbox: this.outbox, decoded: admission.decoded }));
          else await store.addDeadLetter(tx.handle, this.#letter(m, admission.error.reason ?? admission.error.message, 0));
        }
        current = undefined;
        await this.outbox.appendCollected(tx);
        await store.advanceInbox(tx.handle, { consumer, source: source.name, partition, expected, next });
      });
      this.#processed += batch.length - rejected.length;
      this.#dead += rejected.length;
      this.#transactions += 1;
      for (const m of rejected) this.#o.onError((admissions.get(m) as { error: PoisonMessageError }).error);
      return next;
    } catch (err) {
      if (err instanceof InboxFencedError) return this.#fence(partition, err);
      // The handler declared this message poison: it is set aside below without running again.
      if (err instanceof PoisonMessageError && current !== undefined && (admissions.get(current) as Admission<D>).ok) {
        admissions.set(current, { ok: false, error: poisonOf(err, 1), attempts: 1 });
      } else {
        this.#o.onError(err);
      }
    }
    // Some message of the batch fails: go one by one, so only the bad one is set aside.
    let position: number | undefined = expected;
    for (const m of batch) {
      const next = await this.#processOne(partition, m, position, admissions.get(m) as Admission<D>, signal);
      if (next === undefined) return undefined;
      // Stopped during a back-off: the message waits, unprocessed, for the next start.
      if (next === STOPPED) return position ?? offset;
      position = next;
    }
    return position;
  }

  /** Runs the checks and `decode` of one message; a failure is the dead-letter reason. */
  async #admit(m: SourceMessage): Promise<Admission<D>> {
    const { requireKey, maxValueBytes, decode } = this.#o;
    const where = `message ${m.offset} of '${m.source}' partition ${m.partition}`;
    if (requireKey && (m.key === null || m.key === '')) {
      const reason = 'key: the message has no key and the pipeline has requireKey: true';
      return rejectWith(`${where} went to the dead letters: ${reason}; the producer must set a key`, reason);
    }
    const size = m.value?.length ?? 0;
    if (size > maxValueBytes) {
      const reason = `value: ${size} bytes is over maxValueBytes=${maxValueBytes}`;
      return rejectWith(`${where} went to the dead letters: ${reason}; raise maxValueBytes or have the producer send a reference to the payload`, reason);
    }
    if (decode === undefined) return { ok: true, decoded: m.value as D };
    try {
      return { ok: true, decoded: await decode(m) };
    } catch (err) {
      const reason = `decode: ${err instanceof PoisonMessageError ? err.message : describeError(err)}`;
      return rejectWith(`${where} went to the dead letters: ${reason}; decode failures are not retried`, reason, err);
    }
  }

  /**
   * Runs one message until it commits. An ordinary failure is reported as a
   * MessageRetryError and rerun after the redelivery back-off, the partition
   * waiting meanwhile; once the budget (or maxAttempts) is spent the message
   * goes to the dead letters with its last error. Returns the next offset,
   * undefined when fenced, STOPPED when the worker stopped during a back-off.
   */
  async #processOne(
    partition: number,
    m: SourceMessage,
    expected: number | undefined,
    admission: Admission<D>,
    signal: AbortSignal | undefined,
  ): Promise<number | undefined | typeof STOPPED> {
    const { store, consumer, handler, source, redelivery, maxAttempts } = this.#o;
    if (!admission.ok) {
      return this.#deadLetter(partition, m, expected, admission.error.reason ?? admission.error.message, admission.attempts, admission.error);
    }
    const since = Date.now();
    // Bounded by maxAttempts and by the budget: every failed run either ends the loop or is followed by a wait within the budget.
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      try {
        await this.#commit(partition, expected, m.offset + 1, async (tx) => {
          this.outbox.collect(tx);
          await inCallbackOf(this, () => handler(m, { tx, outbox: this.outbox, decoded: admission.decoded }));
          await this.outbox.appendCollected(tx);
          await store.advanceInbox(tx.handle, { consumer, source: source.name, partition, expected, next: m.offset + 1 });
        });
        this.#processed += 1;
        this.#transactions += 1;
        return m.offset + 1;
      } catch (err) {
        if (err instanceof InboxFencedError) return this.#fence(partition, err);
        if (err instanceof PoisonMessageError) {
          const poison = poisonOf(err, attempt);
          return this.#deadLetter(partition, m, expected, poison.reason ?? poison.message, attempt, poison);
        }
        const spent = Date.now() - since;
        if (attempt >= maxAttempts || spent >= redelivery.budgetMs) {
          const why = attempt >= maxAttempts ? `maxAttempts=${maxAttempts}` : `the redelivery budget of ${redelivery.budgetMs} ms`;
          const report = new RedeliveryExhaustedError(consumer, source.name, m.partition, m.offset, attempt, spent, why, err);
          return this.#deadLetter(partition, m, expected, describeError(err), attempt, report);
        }
        const delayMs = Math.round(Math.min(backoffDelay(this.#o.backoff, attempt), redelivery.budgetMs - spent));
        this.#o.onError(new MessageRetryError(consumer, source.name, m.partition, m.offset, attempt, delayMs, redelivery.budgetMs - spent, err));
        // The partition waits here, so the messages behind this one keep their order; stop() ends the wait.
        if (delayMs > 0) await wait(delayMs, signal);
        if (signal?.aborted === true) return STOPPED;
      }
    }
    // Not reached: the last allowed run dead-letters the message above.
    throw new Error(`pipeline: message ${m.offset} ran out of attempts without being dead-lettered`);
  }

  /** The message and its reason go to the dead letters in the same transaction that moves past it. */
  async #deadLetter(
    partition: number,
    m: SourceMessage,
    expected: number | undefined,
    reason: string,
    attempts: number,
    report: unknown,
  ): Promise<number | undefined> {
    const { store, consumer, source } = this.#o;
    try {
      await this.#commit(partition, expected, m.offset + 1, async (tx) => {
        await store.addDeadLetter(tx.handle, this.#letter(m, reason, attempts));
        await store.advanceInbox(tx.handle, { consumer, source: source.name, partition, expected, next: m.offset + 1 });
      });
    } catch (err) {
      if (err instanceof InboxFencedError) return this.#fence(partition, err);
      throw err;
    }
    this.#dead += 1;
    this.#transactions += 1;
    this.#o.onError(report);
    return m.offset + 1;
  }

  /**
   * Runs one transaction that moves the partition's position from `expected`
   * to `next`. When its commit outcome is unknown (and the database context
   * could not resolve it), the stored position tells: it moves only together
   * with the effects, so `next` means the transaction committed and
   * `expected` means it did not (an ordinary failure, rerun as one). Any
   * other position means another worker moved it: this worker is fenced.
   * Without this, a commit that succeeded would look like a lost fencing
   * race and the worker would abandon a partition nobody else owns.
   */
  async #commit(partition: number, expected: number | undefined, next: number, body: (tx: Transaction<H>) => Promise<void>): Promise<void> {
    const lease = this.#held.get(partition);
    const run =
      lease === undefined
        ? body
        : async (tx: Transaction<H>): Promise<void> => {
            await body(tx);
            // Never commit past the lease: a former owner's last transaction must not land after the new owner's first.
            lease.check();
          };
    try {
      await this.#o.db.withTransaction(run, { retry: this.#o.retry });
    } catch (err) {
      if (!isUnknownCommit(err)) throw err;
      const stored = await this.#storedOrUndefined(partition);
      if (stored === next) return;
      if (stored === expected) throw err;
      throw new InboxFencedError(this.#o.consumer, this.#o.source.name, partition, expected);
    }
  }

  #letter(m: SourceMessage, error: string, attempts: number) {
    const { consumer, source } = this.#o;
    return {
      consumer,
      source: source.name,
      partition: m.partition,
      offset: m.offset,
      key: m.key,
      value: m.value,
      headers: m.headers,
      error,
      attempts,
    };
  }

  #loop(partition: number, signal: AbortSignal): Promise<void> {
    let offset: number | undefined;
    return runPartitionLoop(
      {
        run: async (progressed) => {
          const lease = this.#held.get(partition);
          if (lease !== undefined && !lease.valid()) return false;
          offset ??= await this.#position(partition);
          const next = await this.#step(partition, offset, signal);
          if (next === undefined) {
            // With leases, the partition goes back to the store: the worker holding it next takes it.
            if (lease !== undefined) return false;
            if (this.#o.takeOverAfterMs === undefined || !(await this.#standBy(partition, this.#o.takeOverAfterMs, signal))) return false;
            this.#fenced.delete(partition);
            this.#takeovers += 1;
            offset = undefined;
            return true;
          }
          progressed();
          if (next === offset) await this.#o.source.waitFor(partition, offset, this.#o.pollIntervalMs, signal);
          offset = next;
          return true;
        },
        failed: (err) => {
          // This worker's lease ran out before a commit: another worker may own the partition now.
          if (err instanceof FencedError && this.#held.has(partition)) return false;
          // The database or source is failing (not a message): back off and look again from the stored position.
          offset = undefined;
          return true;
        },
        onError: this.#o.onError,
        pollIntervalMs: this.#o.pollIntervalMs,
      },
      signal,
    );
  }

  /**
   * Watches a partition this worker was fenced off: true once messages have waited past the stored
   * position for `afterMs` without it moving, false when the worker stops first.
   */
  async #standBy(partition: number, afterMs: number, signal: AbortSignal): Promise<boolean> {
    let stored = await this.#storedOrUndefined(partition);
    let since = Date.now();
    // Bounded by stop(): each round waits up to the poll interval or for new messages.
    while (!signal.aborted) {
      await wait(Math.min(this.#o.pollIntervalMs, afterMs), signal);
      if (signal.aborted) return false;
      try {
        const now = await this.#storedOrUndefined(partition);
        if (now !== stored) {
          stored = now;
          since = Date.now();
          continue;
        }
        if (Date.now() - since < afterMs) continue;
        // Standing still is a sign of a dead worker only while there is work waiting.
        if ((await this.#o.source.fetch(partition, stored ?? 0, 1)).length > 0) return true;
        since = Date.now();
      } catch (err) {
        this.#o.onError(err);
      }
    }
    return false;
  }

  async #position(partition: number): Promise<number> {
    return (await this.#storedOrUndefined(partition)) ?? 0;
  }

  #storedOrUndefined(partition: number): Promise<number | undefined> {
    return this.#o.store.inboxPosition(undefined, { consumer: this.#o.consumer, source: this.#o.source.name, partition });
  }

  #fence(partition: number, err: InboxFencedError): undefined {
    this.#fenced.add(partition);
    this.#o.onError(err);
    return undefined;
  }
}

/**
 * Builds a pipeline; call start() for a long-running worker or runUntilIdle() for a batch run.
 *
 * @throws {@link txkit!ConfigError | ConfigError} when an option is missing or invalid; the message names the option.
 *
 * @example
 * ```ts
 * const job = pipeline({
 *   consumer: 'order-totals',
 *   source: memorySource(broker, 'orders'),
 *   db: knexTransactions(db),
 *   store: sqlOutboxStore(db),
 *   decode: (message) => JSON.parse(String(message.value)) as { customer: string; amount: number },
 *   handler: async (_message, { tx, outbox, decoded: order }) => {
 *     await tx.handle('totals').increment('amount', order.amount).where({ customer: order.customer });
 *     await outbox.publish(tx, { topic: 'totals', key: order.customer, value: String(order.amount) });
 *   },
 * });
 * job.start();
 * // ... on shutdown:
 * await job.stop();
 * ```
 */
export function pipeline<H, D = Buffer | null>(options: PipelineOptions<H, D>): Pipeline<H, D> {
  return new Pipeline(options);
}

function rejectWith(message: string, reason: string, cause?: unknown): { ok: false; error: PoisonMessageError; attempts: number } {
  return { ok: false, error: new PoisonMessageError(message, cause === undefined ? { reason } : { reason, cause }), attempts: 0 };
}

/** A handler's PoisonMessageError with the dead-letter reason `poison: <its message>`. */
function poisonOf(err: PoisonMessageError, attempts: number): PoisonMessageError {
  if (err.reason !== undefined) return err;
  return new PoisonMessageError(`${err.message} (dead-lettered after ${attempts} run${attempts === 1 ? '' : 's'}, not retried)`, {
    cause: err,
    reason: `poison: ${err.message}`,
  });
}

/** An unknown commit outcome, also when it is the cause of the deadline error that ended the retries. */
function isUnknownCommit(err: unknown): boolean {
  return err instanceof UnknownCommitResultError || (err instanceof TxkitError && err.cause instanceof UnknownCommitResultError);
}


/** What #processOne returns when the worker stopped while the message waited for its rerun. */
const STOPPED = Symbol('stopped');
