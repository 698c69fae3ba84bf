import { ConfigError } from '../../core/index.js';
import type { TransactionContext } from '../../core/index.js';
// Types only from the Pulsar adapter, and topic names from the Pulsar client's dependency-free topic-name module: txkit/outbox loads no Pulsar protocol code.
import type { PulsarTransactionContext, PulsarTxHandle } from '../../adapters/pulsar/index.js';
import { fullTopicName } from '../../pulsar-client/topic-name.js';
import type { RelaySink } from '../outbox-types.js';
import { PulsarPositionChain } from './pulsar-position-chain.js';

export { RELAY_POSITIONS_SUBSCRIPTION } from './pulsar-position-chain.js';

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
  /** The Pulsar transactions of every outbox partition: transactions of one context run side by side. */
  readonly context: TransactionContext<PulsarTxHandle>;
  /** Closes the sink's subscriptions of the positions topics; the context and its client stay open. */
  close(): Promise<void>;
}

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
  const chain = new PulsarPositionChain(client, prefix, readTimeoutMs);
  return {
    context,
    readPosition: (tx, at) => chain.read(tx, at),
    writePosition: (tx, position) => chain.write(tx, position),
    resetPartition: async ({ relayId, partition }) => chain.forget(relayId, partition),
    close: () => chain.close(),
  };
}
