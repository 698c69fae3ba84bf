/**
 * Which real services the tests can reach. The global setup probes (and for
 * brokers, starts) them once; test files ask here and skip with a printed
 * reason, or fail when TXKIT_REQUIRE names the service.
 */
import { inject } from 'vitest';

/** Servers, and `confluent-kafka`: the @confluentinc/kafka-javascript client (its url is the path of its module). */
export type ServiceName = 'postgres' | 'mysql' | 'kafka' | 'pulsar' | 'mongodb' | 'confluent-kafka';

export interface ServiceInfo {
  readonly name: ServiceName;
  /** Connection string when reachable (for `confluent-kafka`, the module's path). */
  readonly url?: string;
  /** Why it is not reachable. */
  readonly reason?: string;
}

export type ServiceMap = Partial<Record<ServiceName, ServiceInfo>>;

declare module 'vitest' {
  export interface ProvidedContext {
    txkitServices: ServiceMap;
  }
}

export function required(): Set<string> {
  return new Set(
    (process.env.TXKIT_REQUIRE ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

/**
 * The service's URL, or undefined after printing why its suite is skipped.
 * Throws when the service is required, so CI never passes by skipping.
 */
export function service(name: ServiceName): string | undefined {
  const info = inject('txkitServices')[name];
  if (info?.url !== undefined) return info.url;
  const reason = info?.reason ?? 'not probed by the global setup';
  if (required().has(name)) {
    throw new Error(`${name} is required (TXKIT_REQUIRE=${process.env.TXKIT_REQUIRE}) but unavailable: ${reason}`);
  }
  console.warn(`[txkit tests] skipping ${name} suites: ${reason}`);
  return undefined;
}
