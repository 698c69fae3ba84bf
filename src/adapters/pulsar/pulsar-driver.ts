import {
  ConfigError,
  UnknownCommitResultError,
  validateSendBatchRequest,
  validateSendRequest,
} from '../../core/index.js';
import type {
  DriverTransaction,
  SendBatchRequest,
  SendRequest,
  TransactionDriver,
} from '../../core/index.js';
import {
  PulsarClosedError,
  PulsarConnectionError,
  PulsarProtocolError,
  PulsarServerError,
  PulsarTimeoutError,
  classifyPulsarError,
} from './pulsar-errors.js';
import { HandleGuard } from '../../core/handle-guard.js';
import type { HandleGuardSpec } from '../../core/handle-guard.js';
import { prepare } from './pulsar-messages.js';
import type { PreparedSend } from './pulsar-messages.js';
import type { PulsarBeginOptions, PulsarRecordMetadata, PulsarTxHandle } from './pulsar-types.js';
import type { PulsarClient } from '../../pulsar-client/client.js';
import { positiveNumber } from '../../pulsar-client/client-options.js';
import { TxnAction } from '../../pulsar-client/wire/commands.js';
import { PulsarConsumer, messageIdsOf } from '../../pulsar-client/consumer.js';
import type { AckTarget } from '../../pulsar-client/consumer.js';
import type { PartitionConsumer } from '../../pulsar-client/partition-consumer.js';
import type { PulsarMessageId } from '../../pulsar-client/message-id.js';
import type { PartitionProducer } from '../../pulsar-client/partition-producer.js';
import type { ProducerMessage, PulsarProducer } from '../../pulsar-client/producer.js';
import type { HashingScheme } from '../../pulsar-client/routing.js';
import { txnIdString } from '../../pulsar-client/transaction-coordinator.js';
import type { TxnId } from '../../pulsar-client/transaction-coordinator.js';

/** What a {@link PulsarDriver} applies to every transaction unless the call says otherwise. */
export interface PulsarDriverDefaults {
  /** Time after which the coordinator aborts a transaction by itself, in milliseconds. */
  transactionTimeoutMs: number;
  /** How long a send waits for the broker's receipt, in milliseconds. */
  sendTimeoutMs: number;
  /** How message keys pick a partition (the Java client's default is `javaStringHash`). */
  hashingScheme: HashingScheme;
}

/** The Pulsar backend's TransactionDriver. */
export class PulsarDriver implements TransactionDriver<PulsarTxHandle, PulsarBeginOptions> {
  readonly backend = 'pulsar' as const;
  /** The one Pulsar transaction option; the core refuses any other key. */
  readonly optionKeys: readonly string[] = ['transactionTimeoutMs'];
  readonly client: PulsarClient;
  readonly #ownsClient: boolean;
  readonly #defaults: PulsarDriverDefaults;
  /** One producer per topic, shared by the context's transactions. */
  readonly #producers = new Map<string, Promise<PulsarProducer>>();
  /** Transactions whose END_TXN abort got no answer, by id: begin ends them first. */
  readonly #unended = new Map<string, { txn: TxnId; ending: Promise<void> | undefined }>();

  constructor(client: PulsarClient, ownsClient: boolean, defaults: PulsarDriverDefaults) {
    this.client = client;
    this.#ownsClient = ownsClient;
    this.#defaults = defaults;
  }

  validateOptions(options: PulsarBeginOptions): void {
    if (options.transactionTimeoutMs !== undefined) positiveNumber(options.transactionTimeoutMs, 'transactionTimeoutMs');
  }

  async begin(options: PulsarBeginOptions): Promise<DriverTransaction<PulsarTxHandle>> {
    // A rerun must not meet an earlier attempt still open at the coordinator: its pending
    // acknowledgements would refuse the rerun's with TransactionConflict.
    await this.#endUnended();
    const ttl = options.transactionTimeoutMs ?? this.#defaults.transactionTimeoutMs;
    const txn = await this.client.transactions.newTransaction(ttl);
    return new PulsarTransaction(this, txn);
  }

  /** @internal a rollback whose END_TXN abort got no answer: the transaction may still be open. */
  unended(txn: TxnId): void {
    const id = txnIdString(txn);
    if (!this.#unended.has(id)) this.#unended.set(id, { txn, ending: undefined });
  }

  /**
   * Sends END_TXN abort again for every transaction whose abort got no answer, once per
   * call. Ended (answered, or unknown to the coordinator: it ended and forgot it) ones are
   * forgotten; if any may still be open, begin fails with a retriable error, so the retry
   * loop asks again after its back-off, until its deadline.
   */
  async #endUnended(): Promise<void> {
    if (this.#unended.size === 0) return;
    const pending = [...this.#unended].map(([id, u]) => {
      u.ending ??= this.#abortAgain(id, u.txn).finally(() => (u.ending = undefined));
      return u.ending;
    });
    const failed = (await Promise.allSettled(pending)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  async #abortAgain(id: string, txn: TxnId): Promise<void> {
    const tc = this.client.transactions;
    try {
      await tc.end(await tc.connectionOf(txn), txn, TxnAction.ABORT);
    } catch (err) {
      const ended = err instanceof PulsarServerError && err.serverError === 'TransactionNotFound';
      if (!ended) {
        throw new PulsarConnectionError(
          `Pulsar transaction ${id} of an earlier attempt may still be open: its abort got no answer, and sending it again failed ` +
            `(${err instanceof Error ? err.message : String(err)}); a new transaction would meet its pending acknowledgements, ` +
            'so txkit sends the abort again before the next attempt (the coordinator also aborts it by itself after transactionTimeoutMs)',
          { cause: err, code: 'PULSAR_EARLIER_TRANSACTION_OPEN' },
        );
      }
    }
    this.#unended.delete(id);
  }

  classify = classifyPulsarError;

  async close(): Promise<void> {
    const producers = await Promise.allSettled(this.#producers.values());
    this.#producers.clear();
    await Promise.allSettled(producers.map((p) => (p.status === 'fulfilled' ? p.value.close() : undefined)));
    if (this.#ownsClient) await this.client.close();
  }

  /** @internal the context's producer of `topic` (a full topic name). */
  producer(topic: string): Promise<PulsarProducer> {
    const cached = this.#producers.get(topic);
    if (cached !== undefined) return cached;
    const { sendTimeoutMs, hashingScheme } = this.#defaults;
    const creating = this.client.createProducer({ topic, sendTimeoutMs, hashingScheme });
    this.#producers.set(topic, creating);
    creating.then(
      (producer) => producer.onClose(() => this.#producers.get(topic) === creating && this.#producers.delete(topic)),
      () => this.#producers.get(topic) === creating && this.#producers.delete(topic),
    );
    return creating;
  }
}

/** How a Pulsar transaction stopped being open: ending (waiting for its operations, then END_TXN), or ended. */
type Ending = 'ending' | 'committed' | 'aborted';

const HANDLE: HandleGuardSpec<Ending> = {
  backend: 'pulsar',
  label: 'Pulsar',
  describe: (ended) => ({ how: `is ${ended}`, state: ended === 'ending' ? 'committing' : ended }),
};

class PulsarTransaction implements DriverTransaction<PulsarTxHandle> {
  readonly id: string;
  readonly handle: PulsarTxHandle;
  readonly #driver: PulsarDriver;
  readonly #txn: TxnId;
  /** Open while `ended` is undefined; the handle refuses operations from 'ending' on. */
  readonly #guard = new HandleGuard(HANDLE);
  /** Sends and acknowledgements in flight: the commit waits for them and fails if any failed. */
  readonly #ops = new Set<Promise<unknown>>();
  #failure: { error: unknown } | undefined;
  readonly #partitions = new Map<string, Promise<void>>();
  readonly #subscriptions = new Map<string, Promise<void>>();
  readonly #ackedOn = new Set<PartitionConsumer>();
  #commitSent = false;
  /** The coordinator answered the first commit with TransactionNotFound: it timed the transaction out and forgot it. */
  #forgotten = false;

  constructor(driver: PulsarDriver, txn: TxnId) {
    this.#driver = driver;
    this.#txn = txn;
    this.id = txnIdString(txn);
    this.handle = Object.freeze({
      transactionId: this.id,
      send: (request: SendRequest) =>
        this.#operation('send', () => {
          validateSendRequest(request, 'pulsar');
          return this.#send(prepare([request]));
        }),
      sendBatch: (request: SendBatchRequest) =>
        this.#operation('sendBatch', () => {
          validateSendBatchRequest(request, 'pulsar');
          return this.#send(prepare(request.topicMessages));
        }),
      acknowledge: (consumer: PulsarConsumer, messageId: AckTarget) =>
        this.#operation('acknowledge', () => {
          if (!(consumer instanceof PulsarConsumer)) {
            throw new ConfigError('acknowledge(consumer, messageId) needs the PulsarConsumer the message came from', { backend: 'pulsar' });
          }
          const ids = messageIdsOf(messageId);
          const byPartition = new Map<PartitionConsumer, PulsarMessageId[]>();
          for (const id of ids) {
            const p = consumer.partitionOf(id);
            byPartition.set(p, [...(byPartition.get(p) ?? []), id]);
          }
          return this.#acknowledge(byPartition);
        }),
    });
  }

  /**
   * Runs a handle operation: input is checked synchronously (a ConfigError rejects the
   * call and leaves the transaction alone); the I/O is tracked, and a failure of it fails the commit.
   */
  #operation<T>(method: string, start: () => Promise<T>): Promise<T> {
    let op: Promise<T>;
    try {
      this.#guard.assertOpen(method);
      op = start();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#track(op);
  }

  async commit(): Promise<void> {
    if (this.#guard.ended === 'committed') return;
    this.#guard.ended = 'ending';
    await this.#settleOps();
    // A send or acknowledgement failed: committing would lose it, so the commit fails with its error.
    if (this.#failure !== undefined) throw this.#failure.error;
    await this.#endCommit(true);
  }

  /** After an unknown commit result: END_TXN commit again (the coordinator takes it again while committing). */
  /** Sends the commit again after an unknown result; a commit this transaction saw answered is done. */
  recommit(): Promise<void> {
    if (this.#guard.ended === 'committed') return Promise.resolve();
    return this.#endCommit(false);
  }

  async rollback(): Promise<void> {
    if (this.#guard.ended === 'aborted' || this.#guard.ended === 'committed') return;
    this.#guard.ended = 'ending';
    await this.#settleOps();
    // Forgotten by the coordinator: it aborted the transaction itself (timeout); nothing to end.
    if (!this.#forgotten) {
      const tc = this.#driver.client.transactions;
      try {
        await tc.end(await tc.connectionOf(this.#txn), this.#txn, TxnAction.ABORT);
      } catch (err) {
        // Gone before any commit was sent: the coordinator already aborted it (transaction timeout).
        const gone = err instanceof PulsarServerError && err.serverError === 'TransactionNotFound' && !this.#commitSent;
        if (!gone) {
          // Unanswered or not sent: the transaction may stay open, holding its acknowledgements,
          // until the coordinator times it out. The next begin sends the abort again first.
          const told = err instanceof PulsarServerError && (err.serverError === 'TransactionNotFound' || err.serverError === 'InvalidTxnStatus');
          if (!told) this.#driver.unended(this.#txn);
          throw err;
        }
      }
    }
    this.#guard.ended = 'aborted';
    // Shared subscriptions get an aborted transaction's acknowledged messages back from the
    // broker; single-consumer ones (Exclusive, Failover) only when the consumer asks.
    for (const consumer of this.#ackedOn) {
      if (consumer.subscriptionType === 'Exclusive' || consumer.subscriptionType === 'Failover') consumer.redeliverAll();
    }
  }

  async #endCommit(first: boolean): Promise<void> {
    const tc = this.#driver.client.transactions;
    let connection: Awaited<ReturnType<typeof tc.connectionOf>>;
    try {
      connection = await tc.connectionOf(this.#txn);
    } catch (err) {
      // Failing to reach the coordinator sends nothing, so a first commit's failure is judged as it is.
      // After an unanswered commit it tells nothing new: the outcome stays unknown and the commit is
      // asked again (a rerun instead would meet the first attempt's acknowledgements, still pending
      // in the coordinator, as a TransactionConflict).
      throw first ? err : this.#unknown(err);
    }
    try {
      this.#commitSent = true;
      await tc.end(connection, this.#txn, TxnAction.COMMIT);
    } catch (err) {
      // A commit sent again after an unanswered one may find the first one done: the
      // coordinator names the status it found ("... but it is in COMMITTED status").
      if (first || statusOf(err) !== 'COMMITTED') throw this.#commitError(err, first);
    }
    this.#guard.ended = 'committed';
  }

  /**
   * Which END_TXN failures leave the outcome unknown. The coordinator answers a repeated
   * commit while it is still committing; once done it forgets the transaction, so
   * TransactionNotFound after an earlier unanswered commit cannot tell committed from
   * timed out. InvalidTxnStatus means it is aborting: definitely not committed.
   */
  #commitError(err: unknown, first: boolean): unknown {
    if (err instanceof PulsarServerError) {
      switch (err.serverError) {
        case 'InvalidTxnStatus':
          // Not committing: aborting or aborted, so definitely not committed; a status it does not name stays unknown.
          return first || /^(ABORTING|ABORTED|TIME_OUT)$/.test(statusOf(err) ?? '') ? err : this.#unknown(err);
        case 'TransactionNotFound':
          // Never committed before: the coordinator aborted it (timeout) and forgot it.
          if (first) this.#forgotten = true;
          return first ? err : this.#unknown(err);
        case 'TransactionCoordinatorNotFound':
        case 'ServiceNotReady':
          return first ? err : this.#unknown(err);
        default:
          return this.#unknown(err);
      }
    }
    if (
      err instanceof PulsarTimeoutError ||
      err instanceof PulsarConnectionError ||
      err instanceof PulsarClosedError ||
      err instanceof PulsarProtocolError
    ) {
      return this.#unknown(err);
    }
    return err;
  }

  #unknown(cause: unknown): UnknownCommitResultError {
    return new UnknownCommitResultError(
      `the Pulsar commit of transaction ${this.id} got no definite answer; txkit asks the coordinator again ` +
        'while it may still be committing (check for the messages before producing them again)',
      { backend: 'pulsar', cause, code: 'PULSAR_COMMIT_UNKNOWN' },
    );
  }

  async #send(requests: readonly PreparedSend[]): Promise<PulsarRecordMetadata[]> {
    const producers = new Map<string, Promise<PulsarProducer>>();
    for (const r of requests) if (!producers.has(r.fullTopic)) producers.set(r.fullTopic, this.#driver.producer(r.fullTopic));
    // In request order; grouped per partition producer so each partition gets batched entries.
    const routed: { producer: PartitionProducer; topic: string }[] = [];
    const groups = new Map<PartitionProducer, { at: number[]; messages: ProducerMessage[] }>();
    for (const r of requests) {
      const producer = await (producers.get(r.fullTopic) as Promise<PulsarProducer>);
      for (const message of r.messages) {
        const p = producer.route(message);
        const group = groups.get(p) ?? { at: [], messages: [] };
        groups.set(p, group);
        group.at.push(routed.length);
        group.messages.push(message);
        routed.push({ producer: p, topic: r.topic });
      }
    }
    // The coordinator must know every partition before the commit reaches it; registering
    // before sending (as the Java client does) also keeps a timed-out transaction from
    // leaving messages the coordinator would never end.
    await this.#register(
      this.#partitions,
      [...groups.keys()].map((p) => ({ key: p.topic, value: p.topic })),
      (topics) => this.#driver.client.transactions.addPartitions(this.#txn, topics),
    );
    const ids = new Array<PulsarMessageId>(routed.length);
    await Promise.all(
      [...groups].map(async ([p, group]) => {
        const got = await p.sendMany(group.messages, this.#txn);
        group.at.forEach((at, k) => (ids[at] = got[k] as PulsarMessageId));
      }),
    );
    return routed.map((r, i) => ({ topicName: r.topic, partition: r.producer.partition, messageId: ids[i] as PulsarMessageId }));
  }

  async #acknowledge(byPartition: Map<PartitionConsumer, PulsarMessageId[]>): Promise<void> {
    await this.#register(
      this.#subscriptions,
      [...byPartition.keys()].map((p) => ({ key: `${p.topic}\u0000${p.subscription}`, value: { topic: p.topic, subscription: p.subscription } })),
      (subscriptions) => this.#driver.client.transactions.addSubscriptions(this.#txn, subscriptions),
    );
    for (const p of byPartition.keys()) this.#ackedOn.add(p);
    await Promise.all([...byPartition].map(([p, list]) => p.acknowledge(list, this.#txn)));
  }

  /** Registers with the coordinator, once per transaction, what it has not seen yet (one request for all). */
  async #register<V>(registered: Map<string, Promise<void>>, wanted: { key: string; value: V }[], add: (values: V[]) => Promise<void>): Promise<void> {
    const fresh = wanted.filter((w) => !registered.has(w.key));
    if (fresh.length > 0) {
      const adding = add(fresh.map((w) => w.value));
      for (const w of fresh) registered.set(w.key, adding);
    }
    await Promise.all(wanted.map((w) => registered.get(w.key)));
  }

  #track<T>(op: Promise<T>): Promise<T> {
    this.#ops.add(op);
    op.then(
      () => this.#ops.delete(op),
      (error: unknown) => {
        this.#ops.delete(op);
        this.#failure ??= { error };
      },
    );
    return op;
  }

  async #settleOps(): Promise<void> {
    // New operations are refused once ending, so one pass waits for all of them.
    await Promise.allSettled([...this.#ops]);
  }

}

/** The status an InvalidTxnStatus answer says the transaction is in ("Expect Txn ... but it is in COMMITTED status"). */
function statusOf(err: unknown): string | undefined {
  if (!(err instanceof PulsarServerError) || err.serverError !== 'InvalidTxnStatus') return undefined;
  return /but it is in (\w+) status/.exec(err.message)?.[1];
}
