import assert from 'node:assert/strict';
import { PulsarClient } from '../../src/adapters/pulsar/index.js';
import type { PulsarConsumer, PulsarMessage } from '../../src/adapters/pulsar/index.js';
import { waitUntil } from '../support/wait-until.js';

export { waitUntil };

let seq = 0;

/** A topic nobody else uses: every test works on its own topics. */
export function uniqueTopic(label: string): string {
  return `persistent://public/default/txkit-${label}-${process.pid}-${Date.now().toString(36)}-${seq++}`;
}

export function uniqueName(label: string): string {
  return `${label}-${process.pid}-${Date.now().toString(36)}-${seq++}`;
}

/** A client with short timeouts, so a broken test fails in seconds rather than minutes. */
export function makeClient(serviceUrl: string): PulsarClient {
  return new PulsarClient({ serviceUrl, operationTimeoutMs: 20_000, connectionTimeoutMs: 5_000 });
}

/** The admin REST URL of the broker the test setup started (from the script's state file). */
export async function webServiceUrl(): Promise<string> {
  const { pulsarStatus } = await import('../../scripts/services/pulsar.mjs');
  const status = await pulsarStatus();
  if (status === undefined) throw new Error('no txkit Pulsar broker is running (scripts/services/pulsar.mjs status)');
  return status.webServiceUrl;
}

/** Creates a partitioned topic through the admin REST API. */
export async function createPartitionedTopic(topic: string, partitions: number): Promise<void> {
  const path = topic.replace('persistent://', '');
  const response = await fetch(`${await webServiceUrl()}/admin/v2/persistent/${path}/partitions`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: String(partitions),
  });
  assert.ok(response.ok, `creating ${topic}: HTTP ${response.status} ${await response.text()}`);
}

/**
 * Reads a topic from its beginning, the way a downstream service would. `caughtUp()`
 * asks the broker for the last message a consumer could be given now (committed, not
 * aborted) on each partition and reads up to it, so `records` are then exactly the
 * committed messages (in order per partition). It never waits for a transaction that
 * is still open: what that one wrote is not visible yet.
 */
export class TopicReader {
  readonly records: PulsarMessage[] = [];
  readonly #consumer: PulsarConsumer;
  readonly #client: PulsarClient;
  /** The furthest (ledger, entry) read per partition topic. */
  readonly #positions = new Map<string, [bigint, bigint]>();
  #draining: Promise<void> | undefined;
  #failure: unknown;
  #closed = false;

  private constructor(client: PulsarClient, consumer: PulsarConsumer) {
    this.#client = client;
    this.#consumer = consumer;
  }

  static async open(serviceUrl: string, topic: string): Promise<TopicReader> {
    const client = makeClient(serviceUrl);
    const consumer = await client.subscribe({ topic, subscription: uniqueName('reader'), initialPosition: 'earliest' });
    const reader = new TopicReader(client, consumer);
    // A reading that ends in an error is reported by caughtUp(), never left as an unhandled rejection.
    reader.#draining = reader.#drain().catch((err: unknown) => {
      reader.#failure = err;
    });
    return reader;
  }

  /** Reads in the background until closed, so `records` grows as commits happen. */
  async #drain(): Promise<void> {
    // Ends when the reader closes (the iterator ends on PulsarClosedError).
    for await (const m of this.#consumer) {
      this.records.push(m);
      const { topic, ledgerId, entryId, batchIndex, batchSize } = m.messageId;
      // An entry counts as read with its last message (a batch arrives one message at a time).
      if (batchIndex >= 0 && batchIndex < batchSize - 1) {
        await this.#ack(m);
        continue;
      }
      const seen = this.#positions.get(topic);
      if (seen === undefined || compare([ledgerId, entryId], seen) > 0) this.#positions.set(topic, [ledgerId, entryId]);
      await this.#ack(m);
    }
  }

  /**
   * An acknowledgement only spares a redelivery, which tests count apart by message id; one lost
   * with its connection (a broker killed under the reader) must not end the reading.
   */
  async #ack(m: PulsarMessage): Promise<void> {
    try {
      await this.#consumer.acknowledge(m);
    } catch (err) {
      if (this.#closed) throw err;
    }
  }

  /** Waits until everything committed (and not aborted) before this call has been read. */
  async caughtUp(timeoutMs = 60_000): Promise<this> {
    if (this.#failure !== undefined) throw this.#failure;
    const lasts = await this.#consumer.getLastMessageIds();
    await waitUntil(
      () =>
        lasts.every((last) => {
          const seen = this.#positions.get(last.topic);
          return seen !== undefined && compare(seen, [last.ledgerId, last.entryId]) >= 0;
        }),
      timeoutMs,
      `the reader of ${this.#consumer.topic} to catch up`,
    );
    return this;
  }

  values(): string[] {
    return this.records.map((r) => r.value?.toString() ?? '<null>');
  }

  /** The latest committed value of `key`, undefined when none. */
  latest(key: string): string | undefined {
    for (let i = this.records.length - 1; i >= 0; i--) {
      const r = this.records[i] as PulsarMessage;
      if (r.key === key) return r.value?.toString();
    }
    return undefined;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#client.close();
    await this.#draining?.catch(() => undefined);
  }
}

function compare(a: readonly [bigint, bigint], b: readonly [bigint, bigint]): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  return a[1] === b[1] ? 0 : a[1] < b[1] ? -1 : 1;
}
