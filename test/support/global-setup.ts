import net from 'node:net';
import type { TestProject } from 'vitest/node';
import type { ServiceMap } from './services.js';

/**
 * Probes the databases this machine runs and starts the brokers the project
 * scripts can start. Everything it starts, it stops in teardown.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const services: ServiceMap = {};
  const stops: (() => Promise<void>)[] = [];

  const pgUrl = process.env.TXKIT_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const mysqlUrl = process.env.TXKIT_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
  services.postgres = await probe('postgres', pgUrl);
  services.mysql = await probe('mysql', mysqlUrl);
  services.mongodb = process.env.MONGODB_URI
    ? { name: 'mongodb', url: process.env.MONGODB_URI }
    : { name: 'mongodb', reason: 'MONGODB_URI is not set and no Docker engine runs here' };

  services.kafka = await startBroker('kafka', async () => {
    const { startKafka } = await import('../../scripts/services/kafka.mjs');
    const kafka = await startKafka({ log: (line: string) => console.log(`[kafka] ${line}`) });
    stops.push(() => kafka.stop());
    return kafka.brokers;
  });
  services.pulsar = await startBroker('pulsar', async () => {
    const { startPulsar } = await import('../../scripts/services/pulsar.mjs');
    const pulsar = await startPulsar({ log: (line: string) => console.log(`[pulsar] ${line}`) });
    stops.push(() => pulsar.stop());
    return pulsar.serviceUrl;
  });

  // Not a server: the @confluentinc/kafka-javascript client, installed (compiled) once into the txkit cache.
  services['confluent-kafka'] = await startBroker('confluent-kafka', async () => {
    const given = process.env.TXKIT_CONFLUENT_KAFKA_MODULE;
    if (given !== undefined && given !== '') return given;
    const { ensureConfluentClient } = await import('../../scripts/services/confluent.mjs');
    return ensureConfluentClient({ log: (line: string) => console.log(`[confluent] ${line}`) });
  });

  project.provide('txkitServices', services);
  return async () => {
    for (const stop of stops.reverse()) await stop();
  };
}

/** Starts a broker (or installs a client) from the project scripts; its failure becomes the reason its suites skip (or fail, if required). */
async function startBroker<N extends 'kafka' | 'pulsar' | 'confluent-kafka'>(
  name: N,
  start: () => Promise<string>,
): Promise<{ name: N; url?: string; reason?: string }> {
  if ((process.env.TXKIT_SKIP_SERVICES ?? '').split(',').includes(name)) {
    return { name, reason: `TXKIT_SKIP_SERVICES names ${name}` };
  }
  try {
    return { name, url: await start() };
  } catch (err) {
    return { name, reason: `could not start ${name}: ${err instanceof Error ? err.message : String(err)}` };
  }
}

async function probe(name: 'postgres' | 'mysql', url: string): Promise<{ name: typeof name; url?: string; reason?: string }> {
  const { hostname, port } = new URL(url);
  const ok = await new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    const done = (v: boolean): void => {
      socket.destroy();
      resolve(v);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
  return ok ? { name, url } : { name, reason: `nothing listens on ${hostname}:${port} (${url})` };
}
