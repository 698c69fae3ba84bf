import { ConfigError, FencedError } from '../core/index.js';
import type { MessageHandle, OutgoingMessage, RetryPolicy } from '../core/index.js';
import type { OutboxRecord, OutboxStore, RelaySink } from './outbox-types.js';
import { waitForWake } from './wait.js';

/** Header with `<partition>:<seq>` of the outbox record a message came from. */
export const OUTBOX_SEQ_HEADER = 'txkit-outbox-seq';

export interface OutboxRelayOptions<H extends MessageHandle> {
  store: OutboxStore<unknown>;
  sink: RelaySink<H>;
  /** Names this relay's positions in the broker; relays sharing it share the work and never double-send. @default 'default' */
  relayId?: string;
  /** Outbox partitions this instance relays. @default every partition of the store */
  partitions?: readonly number[];
  /** Records per broker transaction. @default 500 */
  batchSize?: number;
  /** Longest wait between looks when no commit notification arrives (polling fallback). @default 1000 */
  pollIntervalMs?: number;
  /** Relayed records older than this are deleted. @default 604_800_000 (7 days) */
  retentionMs?: number;
  /** How often cleanup runs. @default 60_000 */
  cleanupIntervalMs?: number;
  /** Retry policy of the broker transactions. */
  retry?: Partial<RetryPolicy>;
  /** Errors the relay survives (it backs off and goes on) are reported here. @default a process warning */
  onError?: (err: unknown) => void;
}

export interface RelayStats {
  /** Messages this instance committed to the broker. */
  readonly relayed: number;
  readonly transactions: number;
  /** Partitions this instance stopped relaying because another relay fenced it. */
  readonly fenced: readonly number[];
}

/**
 * Moves committed outbox records to a broker inside broker transactions, in
 * sequence (= commit) order per partition. The position goes into the same
 * broker transaction as the messages, as Kafka Connect's exactly-once
 * sources do, so a crash at any point neither loses nor duplicates a record
 * for a read_committed consumer.
 */
export class OutboxRelay<H extends MessageHandle = MessageHandle> {
  readonly #o: Required<Omit<OutboxRelayOptions<H>, 'partitions' | 'retry'>> & { partitions: readonly number[]; retry: Partial<RetryPolicy> };
  readonly #known = new Map<number, number>();
  readonly #fenced = new Set<number>();
  #relayed = 0;
  #transactions = 0;
  #running: { controller: AbortController; done: Promise<void> } | undefined;

  constructor(options: OutboxRelayOptions<H>) {
    const { store, sink } = options;
    if (store === undefined || typeof store.read !== 'function') throw new ConfigError('OutboxRelay needs a store (sqlOutboxStore, MemoryOutboxStore, ...)');
    if (sink === undefined || typeof sink.readPosition !== 'function') throw new ConfigError('OutboxRelay needs a sink (memorySink, kafkaSink, ...)');
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
    this.#o = {
      store,
      sink,
      relayId: options.relayId ?? 'default',
      partitions,
      batchSize: positive('batchSize', options.batchSize, 500),
      pollIntervalMs: positive('pollIntervalMs', options.pollIntervalMs, 1000),
      retentionMs: positive('retentionMs', options.retentionMs, 604_800_000),
      cleanupIntervalMs: positive('cleanupIntervalMs', options.cleanupIntervalMs, 60_000),
      retry: options.retry ?? {},
      onError: options.onError ?? ((err) => process.emitWarning(`txkit relay: ${err instanceof Error ? err.message : String(err)}`, { code: 'TXKIT_RELAY' })),
    };
  }

  get stats(): RelayStats {
    return { relayed: this.#relayed, transactions: this.#transactions, fenced: [...this.#fenced] };
  }

  /**
   * One broker transaction for one partition: reads the position as the
   * broker committed it, sends what follows, and moves the position. Returns
   * the number of records sent.
   */
  async relayOnce(partition: number): Promise<number> {
    const { store, sink, relayId, batchSize } = this.#o;
    const known = this.#known.get(partition);
    // Cheap look outside any transaction: no broker transaction when there is nothing to send.
    if (known !== undefined && (await store.read(partition, known, 1)).length === 0) return 0;
    let last: OutboxRecord | undefined;
    let count = 0;
    await sink.context.withTransaction(
      async (tx) => {
        const position = (await sink.readPosition(tx, relayId, partition)) ?? 0;
        const records = await store.read(partition, position, batchSize);
        count = records.length;
        last = records.at(-1);
        if (last === undefined) {
          this.#known.set(partition, position);
          return;
        }
        await tx.handle.sendBatch({ topicMessages: groupByTopic(records) });
        await sink.writePosition(tx, relayId, partition, last.seq);
      },
      { retry: this.#o.retry },
    );
    if (last === undefined) return 0;
    this.#known.set(partition, last.seq);
    this.#relayed += count;
    this.#transactions += 1;
    await store.markRelayed(partition, last.seq).catch(this.#o.onError);
    return count;
  }

  /** Relays until every record committed before the call has been sent; returns how many were sent. */
  async drain(): Promise<number> {
    let total = 0;
    for (const p of this.#o.partitions) {
      // Bounded: each round sends at least one record or ends.
      for (let round = 0; round < Number.MAX_SAFE_INTEGER; round++) {
        const n = await this.relayOnce(p);
        total += n;
        if (n === 0) break;
      }
    }
    return total;
  }

  /** Starts relaying in the background until stop(). */
  start(): void {
    if (this.#running !== undefined) return;
    const controller = new AbortController();
    const loops = this.#o.partitions.map((p) => this.#loop(p, controller.signal));
    const cleanup = this.#cleanupLoop(controller.signal);
    this.#running = { controller, done: Promise.all([...loops, cleanup]).then(() => undefined) };
  }

  /** Stops after the broker transactions in flight end. */
  async stop(): Promise<void> {
    const running = this.#running;
    if (running === undefined) return;
    running.controller.abort();
    await running.done;
    this.#running = undefined;
  }

  async #loop(partition: number, signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted && !this.#fenced.has(partition)) {
      try {
        const n = await this.relayOnce(partition);
        failures = 0;
        if (n === 0) await this.#o.store.waitForPublish(this.#o.pollIntervalMs, signal);
      } catch (err) {
        if (err instanceof FencedError) {
          // Another relay instance owns this partition now: stepping aside is the correct outcome.
          this.#fenced.add(partition);
          this.#o.onError(err);
          return;
        }
        this.#o.onError(err);
        failures += 1;
        await waitForWake(Math.min(this.#o.pollIntervalMs, 50 * 2 ** Math.min(failures, 10)), signal);
      }
    }
  }

  async #cleanupLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await waitForWake(this.#o.cleanupIntervalMs, signal);
      if (signal.aborted) return;
      await this.#o.store.cleanup(this.#o.retentionMs).catch(this.#o.onError);
    }
  }
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
