import { ConfigError, TransientTransactionError, TxkitError } from '../core/index.js';
import type { Transaction } from '../core/index.js';
// Types only from the Pulsar adapter (and its dependency-free topic names): txkit/outbox loads no Pulsar protocol code.
import type {
  PulsarClient,
  PulsarConsumer,
  PulsarMessage,
  PulsarMessageId,
  PulsarRecordMetadata,
  PulsarTransactionContext,
  PulsarTxHandle,
} from '../adapters/pulsar/index.js';
import { fullTopicName, partitionTopicName } from '../pulsar-client/topic-name.js';
import type { MessageSource, RelaySink, SourceMessage } from './outbox-types.js';

/** Subscription of a positions topic whose acknowledgements chain the relay's position records. */
export const RELAY_POSITIONS_SUBSCRIPTION = 'txkit-relay';

/** Options of {@link pulsarSink}. */
export interface PulsarSinkOptions {
  /** The relay's broker transactions: `pulsarTransactions(...)`. */
  context: PulsarTransactionContext;
  /**
   * Prefix of the positions topics: relay `r` keeps the position of outbox partition `p`
   * on the non-partitioned topic `<positionsTopic>-<r>-<p>`. Nothing but the sink may
   * produce to these topics or touch their `txkit-relay` subscription.
   * @default 'persistent://public/default/txkit-relay-positions'
   */
  positionsTopic?: string;
  /** Time reading a position back from its topic may take before it fails (and the relay retries). @default 30_000 */
  readTimeoutMs?: number;
}

/** A Pulsar relay sink; `close()` releases its consumers (closing the context's client does too). */
export interface PulsarRelaySink extends RelaySink<PulsarTxHandle> {
  /** Closes the sink's subscriptions of the positions topics; the context and its client stay open. */
  close(): Promise<void>;
}

/** A position record: the outbox sequence it holds and where it is stored. */
interface Token {
  readonly id: PulsarMessageId;
  readonly seq: number;
}

interface PositionState {
  readonly topic: string;
  consumer: Promise<PulsarConsumer> | undefined;
  /** The position record this instance committed last; cleared whenever it may no longer be the latest. */
  cached: Token | undefined;
}

const RELAY_ID = /^[A-Za-z0-9_.=-]+$/;

/**
 * Pulsar as a relay sink. Pulsar has neither Kafka's transactional offsets nor a
 * producer epoch that fences an open transaction, so the position is a chain of
 * records on a positions topic, one topic per relay id and outbox partition:
 *
 * - each relay transaction acknowledges, in the transaction, the position record it
 *   started from, and produces the next one (the new sequence) in the same transaction
 *   as the messages;
 * - the broker lets one transaction at a time hold a pending acknowledgement of a
 *   message and refuses to acknowledge an acknowledged one (TransactionConflict), so
 *   of all transactions that start from one position record at most one commits.
 *
 * The guarantee: every outbox record is committed to its topic at most once per relay
 * id (and, while a relay runs, at least once), in sequence order per outbox
 * partition, whatever crashes, pauses or network partitions the relay instances go
 * through, and however many run. A zombie instance that wakes up with a stale batch
 * fails its acknowledgement and its transaction aborts; no lease or clock is involved.
 * The losing transaction fails with TransientTransactionError (code
 * `RELAY_POSITION_TAKEN`) and the relay reruns it from the position the broker has.
 * While a dead instance's transaction is still open (until the coordinator times it
 * out after the context's `transactionTimeoutMs`), the others wait on that partition.
 * It holds as long as the `txkit-relay` subscription of the positions topics is left
 * alone: skipping or clearing its backlog stalls the relay, resetting it to an
 * earlier position lets records be sent again.
 *
 * The first record of a topic (sequence 0) is produced outside any transaction; when
 * two instances race to write it, every instance takes the first one of the topic, and
 * the other is acknowledged once read past, never used.
 *
 * @throws {@link txkit!ConfigError | ConfigError} when `context` is not a `pulsarTransactions` context or
 *   `readTimeoutMs` is not a positive number. A relay id that is not a valid topic name part, or a
 *   positions topic that is partitioned, fails the relay's transactions with ConfigError later.
 *
 * @example
 * ```ts
 * const context = pulsarTransactions({ serviceUrl: 'pulsar://127.0.0.1:6650' });
 * const sink = pulsarSink({ context });
 * const relay = new OutboxRelay({ store, sink });
 * relay.start();
 * // ... on shutdown:
 * await relay.stop();
 * await sink.close();
 * await context.close();
 * ```
 */
export function pulsarSink(options: PulsarSinkOptions): PulsarRelaySink {
  if (typeof options !== 'object' || options === null) throw new ConfigError('pulsarSink needs options: { context: pulsarTransactions(...) }');
  const { context, readTimeoutMs = 30_000 } = options;
  if (context === undefined || typeof context.withTransaction !== 'function' || context.client === undefined) {
    throw new ConfigError('pulsarSink needs context: pulsarTransactions(...)', { backend: 'pulsar' });
  }
  if (!(typeof readTimeoutMs === 'number' && readTimeoutMs > 0 && Number.isFinite(readTimeoutMs))) {
    throw new ConfigError(`pulsarSink readTimeoutMs must be a positive number of milliseconds, got ${String(readTimeoutMs)}`, { backend: 'pulsar' });
  }
  const prefix = fullTopicName(options.positionsTopic ?? 'txkit-relay-positions');
  const client = context.client;
  const states = new Map<string, PositionState>();
  /** The record each open transaction started from, per partition: writePosition acknowledges it. */
  const startedFrom = new WeakMap<Transaction<PulsarTxHandle>, Map<string, Token>>();

  const stateOf = (relayId: string, partition: number): PositionState => {
    if (typeof relayId !== 'string' || !RELAY_ID.test(relayId)) {
      throw new ConfigError(`pulsarSink: relayId '${String(relayId)}' names Pulsar topics, so it may only hold letters, digits, '_', '.', '=' and '-'`, {
        backend: 'pulsar',
      });
    }
    if (!Number.isInteger(partition) || partition < 0) throw new ConfigError(`pulsarSink: outbox partition ${String(partition)} is not a partition number`);
    const key = `${relayId}/${partition}`;
    let state = states.get(key);
    if (state === undefined) {
      state = { topic: `${prefix}-${relayId}-${partition}`, consumer: undefined, cached: undefined };
      states.set(key, state);
    }
    return state;
  };

  const consumerOf = (state: PositionState): Promise<PulsarConsumer> => {
    if (state.consumer !== undefined) return state.consumer;
    const subscribing = (async () => {
      if ((await client.partitions(state.topic)) > 0) {
        throw new ConfigError(`the relay positions topic ${state.topic} is partitioned; it must be a non-partitioned topic: delete it or use another positionsTopic`, {
          backend: 'pulsar',
        });
      }
      // Earliest: a subscription created after the first record must still see it unacknowledged.
      const consumer = await client.subscribe({
        topic: state.topic,
        subscription: RELAY_POSITIONS_SUBSCRIPTION,
        subscriptionType: 'Shared',
        initialPosition: 'earliest',
        receiverQueueSize: 16,
      });
      // The records are read by id, not from here; taking deliveries only keeps the broker
      // dispatching, which is how it acknowledges the transaction markers between records, so
      // the subscription's position, and with it the topic's retention, moves on.
      void (async () => {
        try {
          for await (const delivered of consumer) void delivered;
        } catch {
          // A message that cannot be decoded ends the loop: nothing is lost, the records are read by id.
        }
      })();
      return consumer;
    })();
    state.consumer = subscribing;
    subscribing.catch(() => {
      if (state.consumer === subscribing) state.consumer = undefined;
    });
    return subscribing;
  };

  /** The latest committed position record of a topic, writing the first one when there is none. */
  const locate = async (state: PositionState, relayId: string, partition: number): Promise<Token> => {
    const consumer = await consumerOf(state);
    // Twice at most: an empty topic gets its first record, then has one.
    for (let round = 0; round < 2; round++) {
      const [last] = await consumer.getLastMessageIds();
      if (last !== undefined) {
        // Committed chain records follow each other in the topic, so the last one is the
        // latest, unless the last is a first record that lost the race to be first.
        const { best } = await readTokens(client, state.topic, last, last, readTimeoutMs);
        if (best.seq > 0) return best;
        const scan = await readTokens(client, state.topic, undefined, last, readTimeoutMs);
        // First records that lost the race are never anybody's position: acknowledging them lets the
        // subscription (and so the topic's retention) move past them. Best effort: one left only costs space.
        if (scan.losers.length > 0) await consumer.acknowledge(scan.losers).catch(() => undefined);
        return scan.best;
      }
      const producer = await client.createProducer({ topic: state.topic });
      try {
        await producer.send(positionRecord(relayId, partition, 0));
      } finally {
        await producer.close();
      }
    }
    throw new TransientTransactionError(`the relay positions topic ${state.topic} shows no record right after one was written; the relay retries`, {
      backend: 'pulsar',
      code: 'RELAY_POSITION_UNREADABLE',
    });
  };

  return {
    context,
    async readPosition(tx, relayId, partition) {
      const state = stateOf(relayId, partition);
      const token = state.cached ?? (await locate(state, relayId, partition));
      let map = startedFrom.get(tx);
      if (map === undefined) startedFrom.set(tx, (map = new Map()));
      map.set(state.topic, token);
      return token.seq === 0 ? undefined : token.seq;
    },
    async writePosition(tx, relayId, partition, seq) {
      const state = stateOf(relayId, partition);
      const from = startedFrom.get(tx)?.get(state.topic);
      if (from === undefined) {
        throw new ConfigError(`pulsarSink.writePosition for partition ${partition} needs readPosition first, in the same transaction`, { backend: 'pulsar' });
      }
      if (!Number.isSafeInteger(seq) || seq <= from.seq) {
        throw new ConfigError(`pulsarSink.writePosition: position ${String(seq)} of partition ${partition} does not move past ${from.seq}`, { backend: 'pulsar' });
      }
      // Until this transaction commits, the broker holds the truth: any other outcome reads it again.
      state.cached = undefined;
      const consumer = await consumerOf(state);
      // Both in one round trip: should the acknowledgement conflict, the record sent aborts with the transaction.
      const [acked, sent] = await Promise.allSettled([
        tx.handle.acknowledge(consumer, from.id),
        tx.handle.send({ topic: state.topic, messages: [recordMessage(relayId, partition, seq)] }),
      ]);
      if (acked.status === 'rejected') {
        const err: unknown = acked.reason;
        if (err instanceof TxkitError && err.code === 'PULSAR_TRANSACTION_CONFLICT') {
          throw new TransientTransactionError(
            `another instance of relay '${relayId}' moved or is moving the position of outbox partition ${partition} ` +
              `(its record on ${state.topic} is acknowledged by another transaction); this transaction aborts and reruns from the position the broker has`,
            { backend: 'pulsar', code: 'RELAY_POSITION_TAKEN', cause: err },
          );
        }
        throw err;
      }
      if (sent.status === 'rejected') throw sent.reason;
      const id = (sent.value[0] as PulsarRecordMetadata).messageId;
      tx.afterCommit(() => {
        state.cached = { id, seq };
      });
    },
    async close() {
      const consumers = [...states.values()].map((s) => s.consumer).filter((c): c is Promise<PulsarConsumer> => c !== undefined);
      states.clear();
      await Promise.allSettled(consumers.map(async (c) => (await c).close()));
    },
  };
}

function recordMessage(relayId: string, partition: number, seq: number): { key: string; value: string; headers: Record<string, string> } {
  return { key: `${relayId}/${partition}`, value: String(seq), headers: { 'txkit-relay-id': relayId, 'txkit-outbox-partition': String(partition) } };
}

function positionRecord(relayId: string, partition: number, seq: number): { key: string; value: string; properties: Record<string, string> } {
  const { key, value, headers } = recordMessage(relayId, partition, seq);
  return { key, value, properties: headers };
}

/**
 * Reads the positions topic from `start` (or its beginning) up to `last` with a
 * non-durable reader: the record with the highest sequence, the first one among equals
 * (`best`), and the first records (sequence 0) that can never be a position (`losers`).
 */
async function readTokens(
  client: PulsarClient,
  topic: string,
  start: PulsarMessageId | undefined,
  last: PulsarMessageId,
  timeoutMs: number,
): Promise<{ best: Token; losers: PulsarMessageId[] }> {
  const reader = await client.subscribe({
    topic,
    subscription: `txkit-relay-reader-${Math.random().toString(36).slice(2)}`,
    durable: false,
    initialPosition: 'earliest',
    ...(start === undefined ? {} : { startMessageId: start }),
    receiverQueueSize: 100,
  });
  const deadline = Date.now() + timeoutMs;
  let best: Token | undefined;
  const firsts: PulsarMessageId[] = [];
  try {
    // Bounded by the deadline: each receive waits at most until it.
    for (;;) {
      const remaining = deadline - Date.now();
      let m: PulsarMessage;
      try {
        if (remaining <= 0) throw new TxkitError('PULSAR_TIMEOUT', `reading ${topic} took over ${timeoutMs} ms`, { backend: 'pulsar' });
        m = await reader.receive({ timeoutMs: remaining });
      } catch (err) {
        if (isTimeout(err)) {
          throw new TransientTransactionError(`the relay position record ${last.toString()} of ${topic} did not arrive within ${timeoutMs} ms; the relay retries`, {
            backend: 'pulsar',
            code: 'RELAY_POSITION_UNREADABLE',
            cause: err,
          });
        }
        throw err;
      }
      const beyond = compareEntries(m.messageId, last);
      if (beyond > 0) break;
      const seq = parseSeq(topic, m);
      if (seq === 0) firsts.push(m.messageId);
      if (best === undefined || seq > best.seq) best = { id: m.messageId, seq };
      if (beyond === 0) break;
    }
  } finally {
    await reader.close();
  }
  if (best === undefined) {
    throw new TransientTransactionError(`the relay positions topic ${topic} has no record up to ${last.toString()}; the relay retries`, {
      backend: 'pulsar',
      code: 'RELAY_POSITION_UNREADABLE',
    });
  }
  // With a chain position, every first record was taken (the first) or lost; otherwise all but the first lost.
  return { best, losers: best.seq > 0 ? firsts : firsts.slice(1) };
}

/** Order of the entries (ledger, entry) two ids of one topic are in, ignoring the index in a batch. */
function compareEntries(a: { ledgerId: bigint; entryId: bigint }, b: { ledgerId: bigint; entryId: bigint }): number {
  if (a.ledgerId !== b.ledgerId) return a.ledgerId < b.ledgerId ? -1 : 1;
  return a.entryId === b.entryId ? 0 : a.entryId < b.entryId ? -1 : 1;
}

function isTimeout(err: unknown): boolean {
  return err instanceof TxkitError && err.code === 'PULSAR_TIMEOUT';
}

function parseSeq(topic: string, m: PulsarMessage): number {
  const text = m.value?.toString('utf8') ?? '';
  if (!/^\d{1,15}$/.test(text)) {
    throw new TxkitError(
      'RELAY_POSITION_INVALID',
      `message ${m.messageId.toString()} on ${topic} is not a relay position (value '${text.slice(0, 40)}'); ` +
        'the positions topics belong to the relay: remove what else was produced there, or give the sink another positionsTopic',
      { backend: 'pulsar' },
    );
  }
  return Number(text);
}

/**
 * A Pulsar message id that does not fit the numeric offset of a pulsarSource: its
 * ledger id, entry id or index in a batch is past the bits the offset gives it.
 */
export class PulsarOffsetOverflowError extends TxkitError {
  constructor(readonly topic: string, readonly messageId: string, message: string) {
    super('PULSAR_OFFSET_OVERFLOW', message, { backend: 'pulsar' });
  }
}

/** Options of {@link pulsarSource}. */
export interface PulsarSourceOptions {
  /** The client to read with; the source does not close it. */
  client: PulsarClient;
  /** The topic, partitioned or not. */
  topic: string;
  /** The source's name in the inbox (positions and dead letters). @default the full topic name */
  name?: string;
  /** Partitions this worker reads; a non-partitioned topic has the one partition 0. @default every partition */
  partitions?: readonly number[];
  /**
   * Bits of the offset for the entry id within a ledger: entries per ledger must stay
   * below 2^entryBits (the broker's managedLedgerMaxEntriesPerLedger, 50_000 by default).
   * What entry and batch bits leave of the 53 holds the ledger id.
   * @default 20
   */
  entryBits?: number;
  /** Bits of the offset for the index in a batched entry: batches must hold at most 2^batchIndexBits messages. @default 10 */
  batchIndexBits?: number;
  /** Time a fetch may wait for messages the broker reported as committed. @default 30_000 */
  readTimeoutMs?: number;
}

interface PartitionReader {
  readonly topic: string;
  reader: PulsarConsumer | undefined;
  /** The offset the pipeline asks for next if it goes on from what it was given. */
  expected: number;
  /** Offsets below this were read already (a reader that reconnects delivers them again). */
  accepted: number;
  /** The furthest entry read to its last message. */
  seen: { ledgerId: bigint; entryId: bigint } | undefined;
  readonly buffer: SourceMessage[];
}

/**
 * A Pulsar topic as a pipeline source, read by position with non-durable readers:
 * the broker keeps nothing for the pipeline, whose positions live in its database
 * inbox. Only committed messages are read (aborted ones and transaction markers never
 * reach a reader).
 *
 * A message's offset is its id packed into one safe integer, `ledgerId`, `entryId` and
 * batch index from the high bits to the low ones (see `entryBits`, `batchIndexBits`), so
 * offsets grow with the topic, are stable across restarts and `offset + 1` reads on
 * from the next message; they are not dense. An id that does not fit fails the fetch
 * with PulsarOffsetOverflowError rather than being read at a wrong position.
 *
 * @throws {@link txkit!ConfigError | ConfigError} when `client` is missing, `entryBits` or `batchIndexBits` is
 *   not an integer from 0 to 40, the two leave fewer than 8 bits for ledger ids, or `readTimeoutMs` is not a
 *   positive number.
 *
 * @example
 * ```ts
 * const client = new PulsarClient({ serviceUrl: 'pulsar://127.0.0.1:6650' });
 * const job = pipeline({
 *   consumer: 'order-totals',
 *   source: pulsarSource({ client, topic: 'orders' }),
 *   db: knexTransactions(db),
 *   store: sqlOutboxStore(db),
 *   handler: async (message, { tx }) => {
 *     await tx.handle('orders_seen').insert({ id: message.key });
 *   },
 * });
 * job.start();
 * ```
 */
export function pulsarSource(options: PulsarSourceOptions): MessageSource {
  if (typeof options !== 'object' || options === null) throw new ConfigError('pulsarSource needs options: { client, topic }', { backend: 'pulsar' });
  const { client, entryBits = 20, batchIndexBits = 10, readTimeoutMs = 30_000 } = options;
  if (client === undefined || typeof client.subscribe !== 'function') throw new ConfigError('pulsarSource needs client: a PulsarClient', { backend: 'pulsar' });
  const topic = fullTopicName(options.topic);
  for (const [name, bits] of [['entryBits', entryBits], ['batchIndexBits', batchIndexBits]] as const) {
    if (!Number.isInteger(bits) || bits < 0 || bits > 40) throw new ConfigError(`pulsarSource ${name} must be an integer from 0 to 40, got ${String(bits)}`, { backend: 'pulsar' });
  }
  const ledgerBits = 53 - entryBits - batchIndexBits;
  if (ledgerBits < 8) throw new ConfigError(`pulsarSource entryBits + batchIndexBits leave ${ledgerBits} bits for ledger ids; keep their sum at 45 or below`, { backend: 'pulsar' });
  if (!(typeof readTimeoutMs === 'number' && readTimeoutMs > 0 && Number.isFinite(readTimeoutMs))) {
    throw new ConfigError(`pulsarSource readTimeoutMs must be a positive number of milliseconds, got ${String(readTimeoutMs)}`, { backend: 'pulsar' });
  }
  const codec = offsetCodec(ledgerBits, entryBits, batchIndexBits);
  const name = options.name ?? topic;
  const readers = new Map<number, PartitionReader>();
  let partitionCount: Promise<number> | undefined;
  const countPartitions = (): Promise<number> => {
    const counting = (partitionCount ??= client.partitions(topic));
    counting.catch(() => {
      if (partitionCount === counting) partitionCount = undefined;
    });
    return counting;
  };

  const partitions = async (): Promise<number[]> => {
    const count = await countPartitions();
    const all = count === 0 ? [0] : Array.from({ length: count }, (_, i) => i);
    if (options.partitions === undefined) return all;
    for (const p of options.partitions) {
      if (!all.includes(p)) throw new ConfigError(`pulsarSource: partition ${String(p)} of ${topic} does not exist (it has ${all.length})`, { backend: 'pulsar' });
    }
    return [...options.partitions];
  };

  /** The reader of `partition`, positioned at `offset` unless it already goes on from there. */
  const readerAt = async (partition: number, offset: number): Promise<PartitionReader> => {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new ConfigError(`pulsarSource: offset ${String(offset)} is not a non-negative safe integer`, { backend: 'pulsar' });
    const count = await countPartitions();
    if (!(count === 0 ? partition === 0 : Number.isInteger(partition) && partition >= 0 && partition < count)) {
      throw new ConfigError(`pulsarSource: partition ${String(partition)} of ${topic} does not exist`, { backend: 'pulsar' });
    }
    let state = readers.get(partition);
    if (state?.reader !== undefined && state.expected === offset) return state;
    await state?.reader?.close();
    const partTopic = count === 0 ? topic : partitionTopicName(topic, partition);
    state = { topic: partTopic, reader: undefined, expected: offset, accepted: offset, seen: undefined, buffer: [] };
    readers.set(partition, state);
    const at = codec.decode(offset);
    state.reader = await client.subscribe({
      topic: partTopic,
      subscription: `txkit-source-${Math.random().toString(36).slice(2)}`,
      durable: false,
      initialPosition: 'earliest',
      ...(offset === 0 ? {} : { startMessageId: { ledgerId: at.ledgerId, entryId: at.entryId } }),
    });
    return state;
  };

  /** Receives one message into the buffer (dropping what was read before); false when none came in time. */
  const pull = async (state: PartitionReader, partition: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> => {
    let m: PulsarMessage;
    try {
      m = await (state.reader as PulsarConsumer).receive({ timeoutMs, ...(signal === undefined ? {} : { signal }) });
    } catch (err) {
      if (isTimeout(err) || signal?.aborted === true) return false;
      throw err;
    }
    const id = m.messageId;
    if (id.batchIndex < 0 || id.batchIndex === id.batchSize - 1) {
      if (state.seen === undefined || compareEntries(id, state.seen) > 0) state.seen = { ledgerId: id.ledgerId, entryId: id.entryId };
    }
    const offset = codec.encode(state.topic, id);
    if (offset < state.accepted) return true;
    state.accepted = offset + 1;
    state.buffer.push({
      source: name,
      partition,
      offset,
      key: m.key === null ? null : typeof m.key === 'string' ? m.key : m.key.toString('base64'),
      value: m.value,
      headers: m.properties,
    });
    return true;
  };

  return {
    name,
    partitions,
    async fetch(partition, offset, max) {
      const state = await readerAt(partition, offset);
      if (state.buffer.length < max) {
        const [last] = await (state.reader as PulsarConsumer).getLastMessageIds();
        const deadline = Date.now() + readTimeoutMs;
        // Reads up to the last committed message the broker reported; bounded by the deadline.
        while (last !== undefined && state.buffer.length < max && (state.seen === undefined || compareEntries(state.seen, last) < 0)) {
          const remaining = deadline - Date.now();
          if (remaining <= 0 || !(await pull(state, partition, remaining))) {
            throw new TxkitError('PULSAR_TIMEOUT', `pulsarSource: reading ${state.topic} up to ${last.toString()} took over ${readTimeoutMs} ms; raise readTimeoutMs if the broker is just slow`, {
              backend: 'pulsar',
              retriable: true,
            });
          }
        }
      }
      const batch = state.buffer.splice(0, max);
      const tail = batch.at(-1);
      if (tail !== undefined) state.expected = tail.offset + 1;
      return batch;
    },
    async waitFor(partition, offset, timeoutMs, signal) {
      const state = await readerAt(partition, offset);
      if (state.buffer.length > 0 || signal?.aborted === true) return;
      await pull(state, partition, timeoutMs, signal);
    },
    async close() {
      const open = [...readers.values()];
      readers.clear();
      await Promise.allSettled(open.map((r) => r.reader?.close()));
    },
  };
}

/** Message ids <-> offsets: ledger, entry and batch index packed high to low into 53 bits. */
function offsetCodec(ledgerBits: number, entryBits: number, batchBits: number) {
  const limits = { ledger: 1n << BigInt(ledgerBits), entry: 1n << BigInt(entryBits), batch: 1n << BigInt(batchBits) };
  return {
    encode(topic: string, id: PulsarMessageId): number {
      const batch = BigInt(Math.max(id.batchIndex, 0));
      if (id.ledgerId >= limits.ledger || id.entryId >= limits.entry || batch >= limits.batch) {
        const which =
          id.ledgerId >= limits.ledger
            ? `ledger id ${id.ledgerId} needs more than ${ledgerBits} bits: lower entryBits or batchIndexBits`
            : id.entryId >= limits.entry
              ? `entry id ${id.entryId} needs more than entryBits=${entryBits} bits: raise entryBits or lower managedLedgerMaxEntriesPerLedger`
              : `batch index ${id.batchIndex} needs more than batchIndexBits=${batchBits} bits: raise batchIndexBits or batch fewer messages per entry`;
        throw new PulsarOffsetOverflowError(topic, id.toString(), `message ${id.toString()} of ${topic} has no numeric offset: its ${which}`);
      }
      return Number((((id.ledgerId << BigInt(entryBits)) | id.entryId) << BigInt(batchBits)) | batch);
    },
    decode(offset: number): { ledgerId: bigint; entryId: bigint; batchIndex: number } {
      const v = BigInt(offset);
      return {
        ledgerId: v >> BigInt(entryBits + batchBits),
        entryId: (v >> BigInt(batchBits)) & (limits.entry - 1n),
        batchIndex: Number(v & (limits.batch - 1n)),
      };
    },
  };
}
