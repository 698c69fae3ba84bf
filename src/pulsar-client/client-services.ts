/**
 * What producers, consumers, topic lookup and the transaction coordinator client
 * need of the client that made them. {@link PulsarClient} implements it; they
 * depend on this interface, not on the client, so the client's modules import
 * one another in one direction only.
 */
import type { ResolvedClientOptions } from './client-options.js';
import type { PulsarConnection } from './wire/connection.js';

/** Where a topic is served. */
export interface LookupResult {
  /** The broker that serves the topic (`pulsar://host:port`). */
  readonly brokerUrl: string;
  /** Connect to the service URL and let it proxy to brokerUrl. */
  readonly proxyThroughServiceUrl: boolean;
}

/** The client's pooled connections and its options: what a topic lookup needs. */
export interface ConnectionPool {
  /** The client's options with their defaults applied. */
  readonly options: ResolvedClientOptions;
  /** Whether connections use TLS (a `pulsar+ssl://` serviceUrl): lookups then follow the brokers' TLS URLs. */
  readonly tls: boolean;
  /**
   * A ready connection to `brokerUrl` (the service URL when undefined), opened on first
   * use and shared. With `proxy`, the TCP connection goes to the service URL, which
   * forwards to brokerUrl.
   */
  connection(brokerUrl: string | undefined, proxy: boolean): Promise<PulsarConnection>;
}

/** The client as its producers, consumers and transaction coordinator client use it. */
export interface ClientServices extends ConnectionPool {
  /** True once the client was closed. */
  readonly closed: boolean;
  /** Aborted when the client closes. */
  readonly closeSignal: AbortSignal;
  /** Which broker serves `topic` (a full topic name; for a partitioned topic, one partition). */
  lookup(topic: string): Promise<LookupResult>;
  /** Partitions of `topic`, 0 for a non-partitioned topic. */
  partitions(topic: string): Promise<number>;
  /** A producer id unique within the client. */
  newProducerId(): number;
  /** A consumer id unique within the client. */
  newConsumerId(): number;
}
