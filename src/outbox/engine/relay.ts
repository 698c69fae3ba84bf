import { ConfigError, FencedError, resolveRetryPolicy } from '../../core/index.js';
import type { Logger, MessageHandle, OutgoingMessage, RetryPolicy } from '../../core/index.js';
import type { OutboxRecord, OutboxRecordStore, PartitionLease, PartitionLeaseStore, RelaySink } from '../outbox-types.js';
import { runPartitionLoop } from './partition-loop.js';
import { PartitionLeases, resolveLeaseOption } from './partition-leases.js';
import type { HeldLease, LeaseOption } from './partition-leases.js';
import { errorReporter } from './report-error.js';
import { wait } from '../../core/backoff.js';
import { cachedUntilFailure } from '../../core/cached.js';

/** Header with `<partition>:<seq>` of the outbox record a message came from. */
export const OUTBOX_SEQ_HEADER = 'txkit-outbox-seq';

/** Options of {@link OutboxRelay}. */
export interface OutboxRelayOptions<H extends MessageHandle> {
  /**
   * Where the records are read from: the outbox role of a store
   * (`sqlOutboxStore`, `mongoOutboxStore`, `MemoryOutboxStore`, ...). When the
   * store has the lease role too (every store txkit ships), relays of one
   * relay id split the partitions between them; see `leases`.
   */
  store: OutboxRecordStore<unknown> & Partial<PartitionLeaseStore>;
  sink: RelaySink<H>;
  /**
   * Names this relay's positions in the broker; relays sharing it share the
   * work and never double-send. The outbox store learns the id when the
   * relay first runs (`registerRelay`), and from then on cleanup keeps every
   * row this id has not sent, whichever relay runs it; retire an id that is
   * gone for good with `store.removeRelay(id)` or `txkit outbox remove-relay`.
   * @default 'default'
   */
  relayId?: string;
  /** Outbox partitions this instance relays (with leases: shares with the other relays of its relay id). @default every partition of the store */
  partitions?: readonly number[];
  /**
   * How `start()` shares the partitions with the other relays of the same
   * relay id: each partition is relayed by one live relay at a time, which
   * holds its lease in the outbox store (renewed every third of `ttlMs`), and
   * partitions move when a relay stops, dies (after `ttlMs`) or joins.
   * Used when the store has the lease role and the sink can give each
   * partition its own transactions (kafkaSink with `transactionalIdPrefix`,
   * pulsarSink, memorySink); `false` relays every partition without leases
   * (relays of one id then race for each partition, and the broker lets one
   * commit). `drain()` and `relayOnce()` take no leases.
   * @default { ttlMs: 15_000 }
   */
  leases?: false | LeaseOption;
  /** Records per broker transaction. @default 500 */
  batchSize?: number;
  /** Longest wait between looks when no commit notification arrives (polling fallback). @default 1000 */
  pollIntervalMs?: number;
  /** Records older than this that every relay id known to the store has sent are deleted. @default 604_800_000 (7 days) */
  retentionMs?: number;
  /** How often cleanup runs. @default 60_000 */
  cleanupIntervalMs?: number;
  /** Retry policy of the broker transactions. */
  retry?: Partial<RetryPolicy>;
  /** Errors the relay survives (it backs off and goes on) are reported here. @default a process warning */
  onError?: (err: unknown) => void;
  /** A pino-compatible logger; surviving errors go to `logger.error` when no `onError` is given. */
  logger?: Logger;
}

/** Counters of one {@link OutboxRelay} instance since it was built. */
export interface RelayStats {
  /** Messages this instance committed to the broker. */
  readonly relayed: number;
  readonly transactions: number;
  /** Partitions this instance stopped relaying because another relay fenced it. */
  readonly fenced: readonly number[];
  /** Partitions whose lease this instance holds now (empty without leases or before start()). */
  readonly owned: readonly number[];
}

/**
 * Moves committed outbox records to a broker inside broker transactions, in
 * sequence (= commit) order per partition. The position goes into the same
 * broker transaction as the messages, as Kafka Connect's exactly-once
 * sources do, so a crash at any point neither loses nor duplicates a record
 * for a read_committed consumer.
 *
 * @example
 * ```ts
 * const relay = new OutboxRelay({ store, sink: memorySink(memoryTransactions({ store: broker })) });
 * relay.start();
 * // ... on shutdown:
 * await relay.stop();
 * await store.close();
 * ```
 */
export class OutboxRelay<H extends MessageHandle = MessageHandle> {
  readonly #o: Required<Omit<OutboxRelayOptions<H>, 'partitions' | 'retry' | 'logger' | 'leases'>> & {
    partitions: readonly number[];
    retry: Partial<RetryPolicy>;
    /** Lease settings when start() shares the partitions, else undefined. */
    leases: { ttlMs: number; owner: string } | undefined;
  };
  #leases: PartitionLeases | undefined;
  readonly #known = new Map<number, number>();
  readonly #fenced = new Set<number>();
  /** Rows read ahead per partition, after the position of the transaction that was ending. */
  readonly #ahead = new Map<number, { after: number; rows: Promise<OutboxRecord[] | undefined> }>();
  /** Positions waiting to be recorded as relayed, latest per partition. */
  readonly #marks = new Map<number, number>();
  #marking: Promise<void> | undefined;
  #relayed = 0;
  #transactions = 0;
  #running: { controller: AbortController; done: Promise<void> } | undefined;

  constructor(options: OutboxRelayOptions<H>) {
    if (typeof options !== 'object' || options === null) {
      throw new ConfigError(`new OutboxRelay(options) needs an options object { store, sink }, got ${options === null ? 'null' : typeof options}`);
    }
    const { store, sink } = options;
    if (store === undefined || typeof store.read !== 'function') throw new ConfigError('OutboxRelay needs a store (sqlOutboxStore, MemoryOutboxStore, ...)');
    if (sink === undefined || typeof sink.readPosition !== 'function') throw new ConfigError('OutboxRelay needs a sink (memorySink, kafkaSink, ...)');
    if (sink.context === undefined && typeof sink.contextFor !== 'function') {
      throw new ConfigError('OutboxRelay needs a sink with a context or contextFor(); make it with memorySink, kafkaSink or pulsarSink');
    }
    const partitions = options.partitions ?? Array.from({ length: store.partitions }, (_, i) => i);
    for (const p of partitions) {
      if (!Number.isInteger(p) || p < 0 || p >= store.partitions) {
        throw new ConfigError(`relay partition ${String(p)} does not exist: the store has partitions 0..${store.partitions - 1}`);
      }
    }
    const positive = (name: string, v: number | undefined, d: number): number => {
      const value = v ?? d;
      if (!(typeof value === 'number' && value > 0 && Number.isFinite(value))) throw new ConfigError(`OutboxRelay ${name} must be a positive number, got ${String(v)}`);
      return value;
    };
    const batchSize = positive('batchSize', options.batchSize, 500);
    if (!Number.isInteger(batchSize)) throw new ConfigError(`OutboxRelay batchSize must be a whole number of records, got ${batchSize}`);
    const relayId = options.relayId ?? 'default';
    if (typeof relayId !== 'string' || relayId === '' || relayId.length > 191) {
      throw new ConfigError(
        `OutboxRelay relayId must be a non-empty string of at most 191 characters naming this relay's positions, got ${JSON.stringify(relayId)}; e.g. 'orders-relay'`,
      );
    }
    try {
      // Checked now, or every broker transaction of the relay would fail with it later.
      resolveRetryPolicy(options.retry);
    } catch (err) {
      throw new ConfigError(`OutboxRelay option 'retry' is invalid: ${(err as Error).message}`, { cause: err });
    }
    this.#o = {
      store,
      sink,
      relayId,
      partitions,
      batchSize,
      pollIntervalMs: positive('pollIntervalMs', options.pollIntervalMs, 1000),
      retentionMs: positive('retentionMs', options.retentionMs, 604_800_000),
      cleanupIntervalMs: positive('cleanupIntervalMs', options.cleanupIntervalMs, 60_000),
      retry: options.retry ?? {},
      leases: leaseSettings(options.leases, store, sink),
      onError: errorReporter('relay', options.onError, options.logger, { relayId }),
    };
  }

  get stats(): RelayStats {
    return { relayed: this.#relayed, transactions: this.#transactions, fenced: [...this.#fenced], owned: this.#leases?.owned ?? [] };
  }

  /** The leases this instance holds now, by partition (empty without leases or before start()). */
  get leases(): PartitionLease[] {
    return this.#leases?.leases ?? [];
  }

  /**
   * One broker transaction for one partition: reads the position as the
   * broker committed it, sends what follows, and moves the position. Returns
   * the number of records sent.
   */
  async relayOnce(partition: number): Promise<number> {
    let relayed = await this.#relayPartition(partition);
    // Empty rows read ahead (during the previous transaction) say nothing of what was committed since: read now.
    if (relayed.count === 0 && !relayed.complete) relayed = await this.#relayPartition(partition);
    await this.#marking;
    return relayed.count;
  }

  async #relayPartition(partition: number, lease?: HeldLease): Promise<Relayed> {
    const { store, sink, relayId, batchSize } = this.#o;
    // Before anything is sent: once the store knows this id, cleanup keeps what it has not sent.
    const outboxId = await this.#register();
    const at = { relayId, partition, outboxId };
    const context = sink.contextFor?.(at) ?? (sink.context as NonNullable<typeof sink.context>);
    const known = this.#known.get(partition);
    // Rows after the position this relay last committed: read ahead while that transaction ended, or now.
    // Outside any transaction, so nothing to send costs no broker transaction.
    let fresh: OutboxRecord[] | undefined;
    // Whether the rows were read by this call (not ahead, during the previous transaction).
    let readNow = true;
    if (known !== undefined) {
      const ahead = await this.#takeAhead(partition, known);
      readNow = ahead === undefined;
      fresh = ahead ?? (await store.read(partition, known, batchSize));
      if (fresh.length === 0) return { count: 0, complete: readNow };
    }
    let last: OutboxRecord | undefined;
    let count = 0;
    let position = 0;
    await context.withTransaction(
      async (tx) => {
        position = (await sink.readPosition(tx, at)) ?? 0;
        // Rows read from `known` hold while the broker still has the position there (committed rows
        // after it never change); a rerun, or another relay having moved it, reads again.
        const reuse = fresh !== undefined && tx.attempt === 1 && position === known;
        if (!reuse) readNow = true;
        const records = reuse && fresh !== undefined ? fresh : await store.read(partition, position, batchSize);
        count = records.length;
        last = records.at(-1);
        if (last === undefined) {
          this.#known.set(partition, position);
          return;
        }
        const topicMessages = groupByTopic(records);
        const positionMessage = sink.positionMessage?.(tx, { ...at, seq: last.seq });
        if (positionMessage !== undefined) topicMessages.push(positionMessage);
        await tx.handle.sendBatch({ topicMessages });
        await sink.writePosition(tx, { ...at, seq: last.seq });
        // Never commit past the lease: a former owner's last transaction must not land after the new owner's first.
        lease?.check();
        // A full batch means more is probably waiting: read it while the broker commits this one.
        if (records.length === batchSize) this.#readAhead(partition, last.seq);
      },
      { retry: this.#o.retry },
    );
    if (last === undefined) {
      // The broker's position is new to this relay: a relay that committed it may have died (or failed to
      // record it) before its hint reached the store, which would otherwise show those rows pending for ever.
      if (position > 0 && position !== known) this.#markRelayed(partition, position);
      return { count: 0, complete: readNow };
    }
    this.#known.set(partition, last.seq);
    this.#relayed += count;
    this.#transactions += 1;
    this.#markRelayed(partition, last.seq);
    return { count, complete: readNow && count < batchSize };
  }

  /** Forgets this relay's and the sink's state of a partition (position, rows read ahead, producer). */
  async #reset(partition: number): Promise<void> {
    this.#known.delete(partition);
    await this.#ahead.get(partition)?.rows;
    this.#ahead.delete(partition);
    await this.#o.sink.resetPartition?.({ relayId: this.#o.relayId, partition }).catch(this.#o.onError);
  }

  /**
   * Registers the relay id with the store and learns the store's outbox id
   * (which the sink keeps beside each position), once; a failure is tried
   * again by the next transaction.
   */
  readonly #register = cachedUntilFailure(async (): Promise<string | undefined> => {
    const { store, relayId } = this.#o;
    const [, outboxId] = await Promise.all([store.registerRelay(relayId), store.outboxId?.()]);
    return outboxId;
  });

  #readAhead(partition: number, after: number): void {
    const rows = this.#o.store.read(partition, after, this.#o.batchSize);
    // A failed read-ahead is only a missed shortcut: the next transaction reads again and meets the error itself.
    this.#ahead.set(partition, { after, rows: rows.catch(() => undefined) });
  }

  async #takeAhead(partition: number, after: number): Promise<OutboxRecord[] | undefined> {
    const ahead = this.#ahead.get(partition);
    if (ahead === undefined) return undefined;
    this.#ahead.delete(partition);
    // Read after a transaction that did not commit: the position is elsewhere, the rows do not fit.
    return ahead.after === after ? await ahead.rows : undefined;
  }

  /**
   * Records this relay id's progress in the store without holding up the
   * next broker transaction: one update in flight at a time, each carrying
   * the latest position of its partition. It is a hint for status and
   * cleanup (which keeps rows until every known relay id has sent them).
   */
  #markRelayed(partition: number, seq: number): void {
    this.#marks.set(partition, seq);
    this.#marking ??= this.#flushMarks();
  }

  async #flushMarks(): Promise<void> {
    try {
      for (let [entry] = this.#marks; entry !== undefined; [entry] = this.#marks) {
        const [partition, seq] = entry;
        this.#marks.delete(partition);
        await this.#o.store.markRelayed({ relayId: this.#o.relayId, partition, seq }).catch((err: unknown) => {
          // Unrecorded: the partition's next round reads the position from the broker and records it again.
          if (!this.#marks.has(partition) && this.#known.get(partition) === seq) this.#known.delete(partition);
          this.#o.onError(err);
        });
      }
    } finally {
      this.#marking = undefined;
    }
  }

  /**
   * Relays until every record committed before the call has been sent;
   * returns how many were sent. Unless the relay was started, what the sink
   * opened for it (kafkaSink's per-partition producers) is released at the
   * end, so a script that drains and exits is not kept alive by it.
   */
  async drain(): Promise<number> {
    let total = 0;
    this.#drains++;
    try {
      for (const p of this.#o.partitions) {
        // Bounded: each round sends at least one record or ends.
        for (let round = 0; round < Number.MAX_SAFE_INTEGER; round++) {
          const { count, complete } = await this.#relayPartition(p);
          total += count;
          // Done when a read made now finds nothing; rows read ahead earlier may predate the call's commits.
          if (count === 0 && complete) break;
        }
      }
      await this.#marking;
    } finally {
      // The last of concurrent drains releases: an earlier one must not close producers another still uses.
      if (--this.#drains === 0 && this.#running === undefined) await this.#resetAll();
    }
    return total;
  }

  /** Drains in progress. */
  #drains = 0;

  /** Forgets every partition's state and releases what the sink opened for them. */
  async #resetAll(): Promise<void> {
    await Promise.all(this.#o.partitions.map((p) => this.#reset(p)));
  }

  /**
   * Starts relaying in the background until stop(): with leases, the share
   * of the partitions this instance holds; without, every partition.
   */
  start(): void {
    if (this.#running !== undefined) return;
    const controller = new AbortController();
    const cleanup = this.#cleanupLoop(controller.signal);
    const { leases, store, relayId, partitions } = this.#o;
    let work: Promise<unknown>;
    if (leases === undefined) {
      work = Promise.all(partitions.map((p) => this.#loop(p, controller.signal)));
    } else {
      this.#leases = new PartitionLeases({
        store: store as PartitionLeaseStore,
        group: `relay/${relayId}`,
        owner: leases.owner,
        partitions,
        ttlMs: leases.ttlMs,
        work: async (lease, signal) => {
          // Another relay may have moved the partition since this one last relayed it: nothing cached holds.
          this.#fenced.delete(lease.partition);
          await this.#reset(lease.partition);
          try {
            await this.#loop(lease.partition, signal, lease);
          } finally {
            await this.#reset(lease.partition);
          }
        },
        onError: this.#o.onError,
      });
      work = this.#leases.run(controller.signal);
    }
    this.#running = { controller, done: Promise.all([work, cleanup]).then(() => undefined) };
  }

  /**
   * Stops after the broker transactions in flight end (and, with leases,
   * gives the partitions back for other relays to take at once), and
   * releases what the sink opened for this relay (kafkaSink's per-partition
   * producers).
   */
  async stop(): Promise<void> {
    const running = this.#running;
    if (running === undefined) return;
    running.controller.abort();
    await running.done;
    // No query of this relay outlives stop(): the caller may close the database next.
    await Promise.all([...this.#ahead.values()].map((a) => a.rows));
    this.#ahead.clear();
    await this.#marking;
    // What the sink opened for this relay (kafkaSink's producers) is released: nothing of it keeps the process alive.
    await this.#resetAll();
    this.#running = undefined;
  }

  #loop(partition: number, signal: AbortSignal, lease?: HeldLease): Promise<void> {
    return runPartitionLoop(
      {
        run: (progressed) => this.#round(partition, signal, progressed, lease),
        failed: (err) => {
          if (!(err instanceof FencedError)) return true;
          // Another relay instance owns this partition now: stepping aside is the correct outcome.
          this.#fenced.add(partition);
          return false;
        },
        onError: this.#o.onError,
        pollIntervalMs: this.#o.pollIntervalMs,
      },
      signal,
    );
  }

  /** One round of a partition's loop: relays what is there, then waits for a commit notification or the poll interval. */
  async #round(partition: number, signal: AbortSignal, progressed: () => void, lease: HeldLease | undefined): Promise<boolean> {
    if (this.#fenced.has(partition)) return false;
    if (lease !== undefined && !lease.valid()) return false;
    // Listen before looking: a commit notified between an empty read and the start of the wait
    // would otherwise go unheard until the next poll. Asked first: a wait that starts listening later may miss a commit.
    const hearsEveryCommit = this.#o.store.hearsEveryCommit?.() === true;
    const look = new AbortController();
    const stopLooking = (): void => look.abort();
    signal.addEventListener('abort', stopLooking, { once: true });
    // Settled into a value at once, so a failure to listen is never an unhandled rejection while the read runs.
    const published = this.#o.store.waitForPublish(this.#o.pollIntervalMs, look.signal).then(
      () => undefined,
      (err: unknown) => ({ err }),
    );
    try {
      const { count, complete } = await this.#relayPartition(partition, lease);
      progressed();
      // The read took every record committed before it, and one committed since wakes the wait: nothing to read
      // until then. Where the store cannot hear every commit, only a read that found nothing waits. Rows read
      // ahead, before this wait began listening, prove nothing: a commit after them may have been heard before.
      const idle = complete && (count === 0 || hearsEveryCommit);
      const failed = idle ? await published : undefined;
      if (failed !== undefined) throw failed.err;
      return true;
    } finally {
      signal.removeEventListener('abort', stopLooking);
      look.abort();
      // Ends at once after the abort; a failure to listen after records were sent shows up in the next wait.
      await published;
    }
  }

  async #cleanupLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await wait(this.#o.cleanupIntervalMs, signal);
      if (signal.aborted) return;
      await this.#o.store.cleanup(this.#o.retentionMs).catch(this.#o.onError);
    }
  }
}

/** Lease settings of a relay: undefined (no leases) when turned off, or when the store or the sink cannot share partitions. */
function leaseSettings(
  option: OutboxRelayOptions<MessageHandle>['leases'],
  store: Partial<PartitionLeaseStore>,
  sink: RelaySink<MessageHandle>,
): { ttlMs: number; owner: string } | undefined {
  const settings = resolveLeaseOption(option, 'OutboxRelay leases', true);
  if (settings === undefined) return undefined;
  const storeShares = typeof store.acquireLease === 'function' && typeof store.heartbeat === 'function';
  if (storeShares && sink.singleProducer !== true) return settings;
  if (option !== undefined) {
    throw new ConfigError(
      storeShares
        ? "OutboxRelay leases need a sink that gives each partition its own transactions: kafkaSink({ kafka, transactionalIdPrefix }) instead of kafkaSink({ context }), or pass leases: false"
        : 'OutboxRelay leases need a store with the lease role (heartbeat, acquireLease, ...): every store txkit ships has it; or pass leases: false',
    );
  }
  return undefined;
}

/** What one call of the relay's partition step did. */
interface Relayed {
  /** Records sent. */
  readonly count: number;
  /** The records were read by this step (not ahead, in the previous one) and were fewer than a batch: none was left then. */
  readonly complete: boolean;
}

function groupByTopic(records: readonly OutboxRecord[]): { topic: string; messages: OutgoingMessage[] }[] {
  const byTopic = new Map<string, OutgoingMessage[]>();
  for (const r of records) {
    const message: OutgoingMessage = {
      key: r.key,
      value: r.value,
      headers: { ...r.headers, [OUTBOX_SEQ_HEADER]: `${r.partition}:${r.seq}` },
    };
    const list = byTopic.get(r.topic);
    if (list === undefined) byTopic.set(r.topic, [message]);
    else list.push(message);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}
