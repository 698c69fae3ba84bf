/**
 * The options of a {@link PulsarClient} and their checks, shared by the client and
 * by the producers and consumers it makes.
 */
import { PulsarConfigError } from './errors.js';

/** Options of a {@link PulsarClient}. */
export interface PulsarClientOptions {
  /** The broker or proxy to start from: `pulsar://host:port`, or several `host:port` separated by commas. */
  serviceUrl: string;
  /** Time each request (lookup, producer and consumer creation, transaction commands, acknowledgements) may take. @default 30_000 */
  operationTimeoutMs?: number;
  /** Time to open a TCP connection and complete the CONNECT handshake. @default 10_000 */
  connectionTimeoutMs?: number;
  /** Interval of keep-alive pings; a connection silent for two intervals is dropped and reopened. @default 30_000 */
  keepAliveIntervalMs?: number;
  /** First delay before reconnecting a producer or consumer; doubles per failure (full jitter). @default 100 */
  initialReconnectDelayMs?: number;
  /** Upper bound of the reconnect delay. @default 30_000 */
  maxReconnectDelayMs?: number;
  /** Redirects one topic lookup may follow before it fails. @default 20 */
  maxLookupRedirects?: number;
}

export type ResolvedClientOptions = Required<PulsarClientOptions>;

export function resolveOptions(options: PulsarClientOptions): ResolvedClientOptions {
  if (typeof options !== 'object' || options === null) {
    throw new PulsarConfigError('the Pulsar client needs options with a serviceUrl, e.g. { serviceUrl: "pulsar://localhost:6650" }');
  }
  const resolved: ResolvedClientOptions = {
    serviceUrl: options.serviceUrl,
    operationTimeoutMs: options.operationTimeoutMs ?? 30_000,
    connectionTimeoutMs: options.connectionTimeoutMs ?? 10_000,
    keepAliveIntervalMs: options.keepAliveIntervalMs ?? 30_000,
    initialReconnectDelayMs: options.initialReconnectDelayMs ?? 100,
    maxReconnectDelayMs: options.maxReconnectDelayMs ?? 30_000,
    maxLookupRedirects: options.maxLookupRedirects ?? 20,
  };
  for (const key of [
    'operationTimeoutMs',
    'connectionTimeoutMs',
    'keepAliveIntervalMs',
    'initialReconnectDelayMs',
    'maxReconnectDelayMs',
  ] as const) {
    positiveNumber(resolved[key], key);
  }
  if (!Number.isInteger(resolved.maxLookupRedirects) || resolved.maxLookupRedirects < 0) {
    throw new PulsarConfigError(`maxLookupRedirects must be a non-negative integer, got ${String(resolved.maxLookupRedirects)}`);
  }
  return resolved;
}

export function positiveNumber(value: unknown, name: string): void {
  if (!(typeof value === 'number' && Number.isFinite(value) && value > 0)) {
    throw new PulsarConfigError(`${name} must be a positive number of milliseconds, got ${String(value)}`);
  }
}
