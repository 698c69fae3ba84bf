/**
 * The transaction coordinator (TC) client (PIP-31). The coordinators are the partitions
 * of persistent://pulsar/system/transaction_coordinator_assign; TC n lives on the broker
 * that owns partition n. A transaction id's most significant bits name its TC, so every
 * command about a transaction goes to that TC's connection.
 */
import { PulsarConnectionError, PulsarTransactionsDisabledError } from './errors.js';
import type { ClientServices } from './client-services.js';
import { CommandType, TxnAction, fromBigInt, toBigInt } from './wire/commands.js';
import type { NewTxnResponseBody } from './wire/commands.js';
import type { PulsarConnection } from './wire/connection.js';
import { partitionTopicName } from './topic-name.js';

export const TC_ASSIGN_TOPIC = 'persistent://pulsar/system/transaction_coordinator_assign';

/** A Pulsar transaction id: (mostSigBits = coordinator id, leastSigBits = sequence). */
export interface TxnId {
  readonly most: bigint;
  readonly least: bigint;
}

export function txnIdString(txn: TxnId): string {
  return `(${txn.most},${txn.least})`;
}

export class TransactionCoordinatorClient {
  readonly #client: ClientServices;
  #count: Promise<number> | undefined;
  readonly #connections = new Map<number, Promise<PulsarConnection>>();
  #next = 0;

  constructor(client: ClientServices) {
    this.#client = client;
  }

  /** Starts a transaction the coordinator aborts by itself after `timeoutMs`. */
  async newTransaction(timeoutMs: number): Promise<TxnId> {
    const count = await this.#coordinators();
    const tcId = this.#next++ % count;
    const connection = await this.#connection(tcId);
    // txn_ttl_seconds is milliseconds on the wire: the broker passes it on as timeoutInMills.
    const response = await connection.request<NewTxnResponseBody>(CommandType.NEW_TXN, {
      txnTtlSeconds: Math.ceil(timeoutMs),
      tcId,
    });
    return { most: toBigInt(response.txnidMostBits), least: toBigInt(response.txnidLeastBits) };
  }

  /** Registers partitions (full partition topic names) the transaction produces to. */
  async addPartitions(txn: TxnId, partitions: readonly string[]): Promise<void> {
    const connection = await this.connectionOf(txn);
    await connection.request(CommandType.ADD_PARTITION_TO_TXN, { ...bits(txn), partitions });
  }

  /** Registers subscriptions (on partition topics) the transaction acknowledges on. */
  async addSubscriptions(txn: TxnId, subscriptions: readonly { topic: string; subscription: string }[]): Promise<void> {
    const connection = await this.connectionOf(txn);
    await connection.request(CommandType.ADD_SUBSCRIPTION_TO_TXN, { ...bits(txn), subscription: subscriptions });
  }

  async commit(txn: TxnId): Promise<void> {
    await this.end(await this.connectionOf(txn), txn, TxnAction.COMMIT);
  }

  async abort(txn: TxnId): Promise<void> {
    await this.end(await this.connectionOf(txn), txn, TxnAction.ABORT);
  }

  /**
   * END_TXN on a connection got beforehand, so a caller can tell a failure to reach the
   * coordinator (nothing was sent) from a failure after sending (the outcome is unknown).
   */
  async end(connection: PulsarConnection, txn: TxnId, action: (typeof TxnAction)[keyof typeof TxnAction]): Promise<void> {
    await connection.request(CommandType.END_TXN, { ...bits(txn), txnAction: action });
  }

  /** The connection of the coordinator that owns `txn`. */
  connectionOf(txn: TxnId): Promise<PulsarConnection> {
    return this.#connection(Number(txn.most));
  }

  #coordinators(): Promise<number> {
    const count = (this.#count ??= this.#client.partitions(TC_ASSIGN_TOPIC).then((n) => {
      if (n <= 0) throw new PulsarTransactionsDisabledError();
      return n;
    }));
    // A failed look-up is asked again next time rather than remembered.
    count.catch(() => {
      if (this.#count === count) this.#count = undefined;
    });
    return count;
  }

  /**
   * The connection of coordinator `tcId`: looked up, opened and announced with
   * TC_CLIENT_CONNECT, which is also what makes the broker load the coordinator (a
   * NEW_TXN before it fails with TransactionCoordinatorNotFound on a fresh broker).
   */
  #connection(tcId: number): Promise<PulsarConnection> {
    const cached = this.#connections.get(tcId);
    if (cached !== undefined) return cached;
    const opening = (async () => {
      const { brokerUrl, proxyThroughServiceUrl } = await this.#client.lookup(partitionTopicName(TC_ASSIGN_TOPIC, tcId));
      const connection = await this.#client.connection(brokerUrl, proxyThroughServiceUrl);
      await connection.request(CommandType.TC_CLIENT_CONNECT_REQUEST, { tcId });
      connection.onClose(() => {
        if (this.#connections.get(tcId) === opening) this.#connections.delete(tcId);
      });
      return connection;
    })();
    this.#connections.set(tcId, opening);
    opening.catch(() => {
      if (this.#connections.get(tcId) === opening) this.#connections.delete(tcId);
    });
    return opening.then((connection) => {
      if (connection.ended) {
        this.#connections.delete(tcId);
        throw new PulsarConnectionError(`the connection to transaction coordinator ${tcId} closed`);
      }
      return connection;
    });
  }
}

function bits(txn: TxnId): { txnidMostBits: object; txnidLeastBits: object } {
  return { txnidMostBits: fromBigInt(txn.most), txnidLeastBits: fromBigInt(txn.least) };
}
