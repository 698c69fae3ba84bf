/**
 * kafkajs' private cluster factory: each `Kafka` instance of kafkajs 2.x makes the cluster
 * (brokers, TLS, SASL, timeouts) of its producers, consumers and admin clients with it. txkit
 * uses it to send a request kafkajs does not speak over kafkajs' own connections
 * (stable-offsets.ts) and to guard a consumer's fetch loop (stoppable-consumer.ts).
 * @internal
 */

/** The factory's slot on a kafkajs `Kafka` instance and the factory itself; undefined for any other client. */
export function clusterFactoryOf(kafka: unknown): { symbol: symbol; create: (options: object) => unknown } | undefined {
  if (kafka === null || typeof kafka !== 'object') return undefined;
  const symbol = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster');
  const create = symbol === undefined ? undefined : (kafka as Record<symbol, unknown>)[symbol];
  if (symbol === undefined || typeof create !== 'function') return undefined;
  return { symbol, create: (options) => (create as (o: object) => unknown).call(kafka, options) };
}
