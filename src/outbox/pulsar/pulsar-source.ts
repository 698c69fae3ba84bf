import { ConfigError, TxkitError } from '../../core/index.js';
// Types only from the Pulsar adapter, and topic names from the Pulsar client's dependency-free topic-name module: txkit/outbox loads no Pulsar protocol code.
import type { PulsarClient, PulsarConsumer, PulsarMessage, PulsarMessageId } from '../../adapters/pulsar/index.js';
import { fullTopicName, partitionTopicName } from '../../pulsar-client/topic-name.js';
import type { MessageSource, SourceMessage } from '../outbox-types.js';
import { compareEntries, isTimeout } from './pulsar-message-ids.js';

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
