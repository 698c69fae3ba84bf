/**
 * Topic lookup (CommandLookupTopic): asks the service URL which broker serves a topic
 * and follows Redirect answers (possibly through a proxy) until one says Connect.
 * Partitioned-topic metadata (CommandPartitionedTopicMetadata) tells how many
 * partitions a topic has, 0 for a non-partitioned one.
 */
import { PulsarProtocolError, PulsarServerError } from './errors.js';
import type { ConnectionPool, LookupResult } from './client-services.js';
import { CommandType, LookupType } from './wire/commands.js';
import type { LookupResponseBody, PartitionMetadataResponseBody } from './wire/commands.js';

export async function lookupTopic(client: ConnectionPool, topic: string): Promise<LookupResult> {
  let brokerUrl: string | undefined; // undefined: ask the service URL
  let proxy = false;
  let authoritative = false;
  // Bounded: a broker that keeps redirecting is an error after maxLookupRedirects hops.
  for (let hop = 0; hop <= client.options.maxLookupRedirects; hop++) {
    const connection = await client.connection(brokerUrl, proxy);
    const response: LookupResponseBody = await connection.request<LookupResponseBody>(CommandType.LOOKUP, { topic, authoritative });
    // A TLS client goes on to the broker's TLS URL.
    const next = client.tls ? response.brokerServiceUrlTls : response.brokerServiceUrl;
    switch (response.response) {
      case LookupType.Connect:
        if (next === undefined) throw new PulsarProtocolError(`lookup of ${topic} said Connect without a broker ${client.tls ? 'TLS ' : ''}URL${client.tls ? ' (is TLS enabled on that broker?)' : ''}`);
        return { brokerUrl: next, proxyThroughServiceUrl: response.proxyThroughServiceUrl === true };
      case LookupType.Redirect:
        if (next === undefined) throw new PulsarProtocolError(`lookup of ${topic} said Redirect without a broker ${client.tls ? 'TLS ' : ''}URL${client.tls ? ' (is TLS enabled on that broker?)' : ''}`);
        brokerUrl = next;
        proxy = response.proxyThroughServiceUrl === true;
        authoritative = response.authoritative === true;
        continue;
      default:
        throw new PulsarServerError(response.error ?? 0, response.message ?? 'lookup failed', 'LOOKUP');
    }
  }
  throw new PulsarProtocolError(
    `lookup of ${topic} was redirected more than ${client.options.maxLookupRedirects} times; the brokers disagree on who owns it`,
  );
}

export async function partitionCount(client: ConnectionPool, topic: string): Promise<number> {
  const connection = await client.connection(undefined, false);
  const response = await connection.request<PartitionMetadataResponseBody>(CommandType.PARTITIONED_METADATA, { topic });
  if (response.response === 1) {
    throw new PulsarServerError(response.error ?? 0, response.message ?? 'partitioned metadata lookup failed', 'PARTITIONED_METADATA');
  }
  return response.partitions ?? 0;
}
