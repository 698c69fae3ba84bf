/**
 * The Pulsar client: one pooled connection per broker, topic lookup, producers,
 * consumers and the transaction coordinator client, all closed together.
 */
import { PulsarClosedError, PulsarConfigError } from './errors.js';
import { resolveOptions } from './client-options.js';
import type { PulsarClientOptions, ResolvedClientOptions } from './client-options.js';
import type { ClientServices, LookupResult } from './client-services.js';
import { PulsarConnection } from './wire/connection.js';
import { PulsarConsumer } from './consumer.js';
import type { ConsumerOptions } from './consumer.js';
import { lookupTopic, partitionCount } from './lookup.js';
import { PulsarProducer } from './producer.js';
import type { ProducerOptions } from './producer.js';
import { TransactionCoordinatorClient } from './transaction-coordinator.js';

const CLIENT_VERSION = 'txkit-pulsar';

interface HostPort {
  host: string;
  port: number;
}

/**
 * txkit's Pulsar client over the binary protocol: one pooled connection per broker,
 * topic lookup, producers, consumers and the transaction coordinator client, all
 * closed together by {@link PulsarClient.close}. Share one with
 * `pulsarTransactions({ client })` to acknowledge its consumers' messages in transactions.
 *
 * @example
 * ```ts
 * const client = new PulsarClient({ serviceUrl: 'pulsar://127.0.0.1:6650' });
 * const consumer = await client.subscribe({ topic: 'orders', subscription: 'billing', subscriptionType: 'Shared' });
 * const message = await consumer.receive({ timeoutMs: 5_000 });
 * await consumer.acknowledge(message);
 * await client.close();
 * ```
 */
export class PulsarClient implements ClientServices {
  /** The options with their defaults applied. */
  readonly options: ResolvedClientOptions;
  readonly #serviceHosts: HostPort[];
  #serviceIndex = 0;
  readonly #pool = new Map<string, Promise<PulsarConnection>>();
  readonly #producers = new Set<PulsarProducer>();
  readonly #consumers = new Set<PulsarConsumer>();
  #nextProducerId = 1;
  #nextConsumerId = 1;
  #transactions: TransactionCoordinatorClient | undefined;
  #closing: Promise<void> | undefined;
  /** Fires on close, so reconnect back-offs and waiting operations stop at once. */
  readonly #closed = new AbortController();

  /**
   * Checks the options; connects on first use, not here.
   * @throws {@link txkit/pulsar-client!PulsarConfigError | PulsarConfigError} for a service URL that is not `pulsar://host:port[,host:port...]`
   *   or `pulsar+ssl://...`, tls options without `pulsar+ssl://`, or a timeout that is not a positive number.
   */
  constructor(options: PulsarClientOptions) {
    this.options = resolveOptions(options);
    const { tls, hosts } = parseServiceUrl(this.options.serviceUrl);
    if (!tls && this.options.tls !== undefined) {
      throw new PulsarConfigError(`tls options need a pulsar+ssl:// serviceUrl, got '${this.options.serviceUrl}'`);
    }
    this.tls = tls;
    this.#serviceHosts = hosts;
  }

  /** Whether the client speaks TLS (a `pulsar+ssl://` serviceUrl). */
  readonly tls: boolean;

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Aborted when the client closes. */
  get closeSignal(): AbortSignal {
    return this.#closed.signal;
  }

  /**
   * A ready connection to `brokerUrl` (the service URL when undefined), opened on first
   * use and shared. With `proxy`, the TCP connection goes to the service URL, which
   * forwards to brokerUrl.
   */
  connection(brokerUrl: string | undefined, proxy: boolean): Promise<PulsarConnection> {
    if (this.#closing !== undefined) return Promise.reject(new PulsarClosedError('client'));
    const physical = brokerUrl === undefined || proxy ? this.#serviceHost() : parseBrokerUrl(brokerUrl, this.tls);
    const key = `${physical.host}:${physical.port}|${proxy ? (brokerUrl ?? '') : ''}`;
    const cached = this.#pool.get(key);
    if (cached !== undefined) return cached;
    const opening = PulsarConnection.open({
      host: physical.host,
      port: physical.port,
      proxyToBrokerUrl: proxy ? brokerUrl : undefined,
      connectTimeoutMs: this.options.connectionTimeoutMs,
      operationTimeoutMs: this.options.operationTimeoutMs,
      keepAliveIntervalMs: this.options.keepAliveIntervalMs,
      clientVersion: CLIENT_VERSION,
      tls: this.tls ? (this.options.tls ?? {}) : undefined,
      authentication: this.options.authentication,
    });
    this.#pool.set(key, opening);
    opening.then(
      (connection) => {
        connection.onClose(() => {
          if (this.#pool.get(key) === opening) this.#pool.delete(key);
        });
        // Closed while it was opening.
        if (this.#closing !== undefined) void connection.close();
      },
      () => {
        if (this.#pool.get(key) === opening) this.#pool.delete(key);
        // A failed service host: try the next one of the list next time.
        if (brokerUrl === undefined) this.#serviceIndex++;
      },
    );
    return opening;
  }

  /** Which broker serves `topic` (a full topic name; for a partitioned topic, one partition). */
  lookup(topic: string): Promise<LookupResult> {
    return lookupTopic(this, topic);
  }

  /** Partitions of `topic`, 0 for a non-partitioned topic. */
  partitions(topic: string): Promise<number> {
    return partitionCount(this, topic);
  }

  /** Creates a producer; it is ready (connected to every partition's broker) when this resolves. */
  async createProducer(options: ProducerOptions): Promise<PulsarProducer> {
    this.#assertOpen();
    const producer = await PulsarProducer.create(this, options);
    if (this.#closing !== undefined) {
      await producer.close();
      throw new PulsarClosedError('client');
    }
    this.#producers.add(producer);
    producer.onClose(() => this.#producers.delete(producer));
    return producer;
  }

  /** Subscribes; messages flow once this resolves. */
  async subscribe(options: ConsumerOptions): Promise<PulsarConsumer> {
    this.#assertOpen();
    const consumer = await PulsarConsumer.subscribe(this, options);
    if (this.#closing !== undefined) {
      await consumer.close();
      throw new PulsarClosedError('client');
    }
    this.#consumers.add(consumer);
    consumer.onClose(() => this.#consumers.delete(consumer));
    return consumer;
  }

  /** The transaction coordinator client (connects on first use). */
  get transactions(): TransactionCoordinatorClient {
    this.#assertOpen();
    return (this.#transactions ??= new TransactionCoordinatorClient(this));
  }

  /** @internal */
  newProducerId(): number {
    return this.#nextProducerId++;
  }

  /** @internal */
  newConsumerId(): number {
    return this.#nextConsumerId++;
  }

  /** Closes producers, consumers and connections. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed.abort(new PulsarClosedError('client'));
      await Promise.allSettled([...this.#producers].map((p) => p.close()));
      await Promise.allSettled([...this.#consumers].map((c) => c.close()));
      const connections = await Promise.allSettled([...this.#pool.values()]);
      this.#pool.clear();
      await Promise.all(connections.map((c) => (c.status === 'fulfilled' ? c.value.close() : undefined)));
    })();
    return this.#closing;
  }

  #assertOpen(): void {
    if (this.#closing !== undefined) throw new PulsarClosedError('client');
  }

  #serviceHost(): HostPort {
    return this.#serviceHosts[this.#serviceIndex % this.#serviceHosts.length] as HostPort;
  }
}

/** `pulsar://h1:p1,h2:p2/` (or `pulsar+ssl://...`) -> hosts, and whether to use TLS. */
function parseServiceUrl(url: unknown): { tls: boolean; hosts: HostPort[] } {
  if (typeof url !== 'string' || url.length === 0) {
    throw new PulsarConfigError(`serviceUrl must be a string like 'pulsar://localhost:6650', got ${JSON.stringify(url)}`);
  }
  const match = /^(pulsar|pulsar\+ssl):\/\/([^/]+)\/?$/.exec(url);
  if (match === null) {
    throw new PulsarConfigError(`serviceUrl '${url}' is not a Pulsar service URL; use pulsar://host:port, or pulsar+ssl://host:port for TLS`);
  }
  const tls = match[1] === 'pulsar+ssl';
  return { tls, hosts: (match[2] as string).split(',').map((hostPort) => parseHostPort(hostPort, url, tls ? 6651 : 6650)) };
}

function parseBrokerUrl(url: string, tls: boolean): HostPort {
  const match = (tls ? /^pulsar\+ssl:\/\/([^/,]+)\/?$/ : /^pulsar:\/\/([^/,]+)\/?$/).exec(url);
  if (match === null) throw new PulsarConfigError(`the broker answered with an unusable broker URL '${url}'${tls ? ' (a TLS client needs pulsar+ssl:// URLs)' : ''}`);
  return parseHostPort(match[1] as string, url, tls ? 6651 : 6650);
}

function parseHostPort(hostPort: string, url: string, defaultPort: number): HostPort {
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostPort.trim());
  if (match === null) throw new PulsarConfigError(`cannot read host:port '${hostPort}' in '${url}'`);
  const host = (match[1] as string).replace(/^\[|\]$/g, '');
  const port = match[2] === undefined ? defaultPort : Number(match[2]);
  if (!(port > 0 && port < 65536)) throw new PulsarConfigError(`invalid port in '${url}'`);
  return { host, port };
}
