import { ConfigError, ErrorCodes, TransientTransactionError, TxkitError } from '../../core/index.js';
import type { Transaction } from '../../core/index.js';
// Types only from the Pulsar adapter: txkit/outbox loads no Pulsar protocol code.
import type { PulsarClient, PulsarConsumer, PulsarMessage, PulsarMessageId, PulsarRecordMetadata, PulsarTxHandle } from '../../adapters/pulsar/index.js';
import { POSITION_OUTBOX_HEADER, checkPositionOwner } from '../outbox-errors.js';
import type { RelayPartition, RelayPosition } from '../outbox-types.js';
import { compareEntries, isTimeout } from './pulsar-message-ids.js';

/** Subscription of a positions topic whose acknowledgements chain the relay's position records. */
export const RELAY_POSITIONS_SUBSCRIPTION = 'txkit-relay';

/** A position record: the outbox sequence it holds and where it is stored. */
interface Token {
  readonly id: PulsarMessageId;
  readonly seq: number;
  /** The outbox the position was written for (unset by earlier versions and on first records). */
  readonly owner?: string | undefined;
}

interface PositionState {
  readonly topic: string;
  consumer: Promise<PulsarConsumer> | undefined;
  /** The position record this instance committed last; cleared whenever it may no longer be the latest. */
  cached: Token | undefined;
}

const RELAY_ID = /^[A-Za-z0-9_.=-]+$/;

/**
 * The relay positions of a {@link pulsarSink}: per relay id and outbox
 * partition, a chain of records on a positions topic, each relay transaction
 * acknowledging the record it started from and producing the next one.
 */
export class PulsarPositionChain {
  readonly #client: PulsarClient;
  /** Prefix of the positions topics, as a full topic name. */
  readonly #prefix: string;
  readonly #readTimeoutMs: number;
  readonly #states = new Map<string, PositionState>();
  /** The record each open transaction started from, per partition: writePosition acknowledges it. */
  readonly #startedFrom = new WeakMap<Transaction<PulsarTxHandle>, Map<string, Token>>();

  constructor(client: PulsarClient, prefix: string, readTimeoutMs: number) {
    this.#client = client;
    this.#prefix = prefix;
    this.#readTimeoutMs = readTimeoutMs;
  }

  /** The position the chain holds for a relay id's outbox partition (undefined at its first record); `tx` remembers the record it started from. */
  async read(tx: Transaction<PulsarTxHandle>, at: RelayPartition): Promise<number | undefined> {
    const { relayId, partition } = at;
    const state = this.#stateOf(relayId, partition);
    const token = state.cached ?? (await this.#locate(state, relayId, partition));
    checkPositionOwner('pulsarSink', at, token.owner);
    let map = this.#startedFrom.get(tx);
    if (map === undefined) this.#startedFrom.set(tx, (map = new Map()));
    map.set(state.topic, token);
    return token.seq === 0 ? undefined : token.seq;
  }

  /** Trusts no cached position record for a relay id's outbox partition: the next read locates the chain's end again. */
  forget(relayId: string, partition: number): void {
    const state = this.#states.get(`${relayId}/${partition}`);
    if (state !== undefined) state.cached = undefined;
  }

  /** Acknowledges the record `tx` started from and produces the one holding `seq`, both in `tx`. */
  async write(tx: Transaction<PulsarTxHandle>, { relayId, partition, seq, outboxId }: RelayPosition): Promise<void> {
    const state = this.#stateOf(relayId, partition);
    const from = this.#startedFrom.get(tx)?.get(state.topic);
    if (from === undefined) {
      throw new ConfigError(`pulsarSink.writePosition for partition ${partition} needs readPosition first, in the same transaction`, { backend: 'pulsar' });
    }
    if (!Number.isSafeInteger(seq) || seq <= from.seq) {
      throw new ConfigError(`pulsarSink.writePosition: position ${String(seq)} of partition ${partition} does not move past ${from.seq}`, { backend: 'pulsar' });
    }
    // Until this transaction commits, the broker holds the truth: any other outcome reads it again.
    state.cached = undefined;
    const consumer = await this.#consumerOf(state);
    // Both in one round trip: should the acknowledgement conflict, the record sent aborts with the transaction.
    const [acked, sent] = await Promise.allSettled([
      tx.handle.acknowledge(consumer, from.id),
      tx.handle.send({ topic: state.topic, messages: [recordMessage(relayId, partition, seq, outboxId)] }),
    ]);
    if (acked.status === 'rejected') {
      const err: unknown = acked.reason;
      if (err instanceof TxkitError && err.code === ErrorCodes.PULSAR_TRANSACTION_CONFLICT) {
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
      state.cached = { id, seq, owner: outboxId };
    });
  }

  /** Closes the subscriptions of the positions topics. */
  async close(): Promise<void> {
    const consumers = [...this.#states.values()].map((s) => s.consumer).filter((c): c is Promise<PulsarConsumer> => c !== undefined);
    this.#states.clear();
    await Promise.allSettled(consumers.map(async (c) => (await c).close()));
  }

  #stateOf(relayId: string, partition: number): PositionState {
    if (typeof relayId !== 'string' || !RELAY_ID.test(relayId)) {
      throw new ConfigError(`pulsarSink: relayId '${String(relayId)}' names Pulsar topics, so it may only hold letters, digits, '_', '.', '=' and '-'`, {
        backend: 'pulsar',
      });
    }
    if (!Number.isInteger(partition) || partition < 0) throw new ConfigError(`pulsarSink: outbox partition ${String(partition)} is not a partition number`);
    const key = `${relayId}/${partition}`;
    let state = this.#states.get(key);
    if (state === undefined) {
      state = { topic: `${this.#prefix}-${relayId}-${partition}`, consumer: undefined, cached: undefined };
      this.#states.set(key, state);
    }
    return state;
  }

  #consumerOf(state: PositionState): Promise<PulsarConsumer> {
    if (state.consumer !== undefined) return state.consumer;
    const subscribing = (async () => {
      if ((await this.#client.partitions(state.topic)) > 0) {
        throw new ConfigError(`the relay positions topic ${state.topic} is partitioned; it must be a non-partitioned topic: delete it or use another positionsTopic`, {
          backend: 'pulsar',
        });
      }
      // Earliest: a subscription created after the first record must still see it unacknowledged.
      const consumer = await this.#client.subscribe({
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
  }

  /** The latest committed position record of a topic, writing the first one when there is none. */
  async #locate(state: PositionState, relayId: string, partition: number): Promise<Token> {
    const consumer = await this.#consumerOf(state);
    // Twice at most: an empty topic gets its first record, then has one.
    for (let round = 0; round < 2; round++) {
      const [last] = await consumer.getLastMessageIds();
      if (last !== undefined) {
        // Committed chain records follow each other in the topic, so the last one is the
        // latest, unless the last is a first record that lost the race to be first.
        const { best } = await readTokens(this.#client, state.topic, last, last, this.#readTimeoutMs);
        if (best.seq > 0) return best;
        const scan = await readTokens(this.#client, state.topic, undefined, last, this.#readTimeoutMs);
        // First records that lost the race are never anybody's position: acknowledging them lets the
        // subscription (and so the topic's retention) move past them. Best effort: one left only costs space.
        if (scan.losers.length > 0) await consumer.acknowledge(scan.losers).catch(() => undefined);
        return scan.best;
      }
      const producer = await this.#client.createProducer({ topic: state.topic });
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
  }

}

function recordMessage(relayId: string, partition: number, seq: number, outboxId?: string): { key: string; value: string; headers: Record<string, string> } {
  const headers: Record<string, string> = { 'txkit-relay-id': relayId, 'txkit-outbox-partition': String(partition) };
  if (outboxId !== undefined) headers[POSITION_OUTBOX_HEADER] = outboxId;
  return { key: `${relayId}/${partition}`, value: String(seq), headers };
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
      if (best === undefined || seq > best.seq) best = { id: m.messageId, seq, owner: m.properties[POSITION_OUTBOX_HEADER] };
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
