/**
 * The options of a {@link PulsarClient} and their checks, shared by the client and
 * by the producers and consumers it makes.
 */
import type { PulsarAuthentication } from './authentication.js';
import { PulsarConfigError } from './errors.js';

/** TLS settings of a client whose serviceUrl is `pulsar+ssl://`. */
export interface PulsarTlsOptions {
  /** PEM CA certificates that sign the brokers' certificates. @default the system's CAs */
  ca?: string | Buffer | (string | Buffer)[];
  /** PEM client certificate, for brokers that require TLS client authentication (with `key`). */
  cert?: string | Buffer;
  /** PEM private key of `cert`. */
  key?: string | Buffer;
  /** Checks that each broker's certificate names the host (or IP) connected to. @default true */
  hostnameVerification?: boolean;
  /** Accepts a broker certificate no trusted CA signed; for tests only. @default false */
  allowInsecureConnection?: boolean;
}

/** Options of a {@link PulsarClient}. */
export interface PulsarClientOptions {
  /**
   * The broker or proxy to start from: `pulsar://host:port`, or several
   * `host:port` separated by commas; `pulsar+ssl://host:port` for TLS (then
   * every broker connection, lookups included, uses TLS and the brokers'
   * TLS URLs).
   */
  serviceUrl: string;
  /** TLS settings; only with a `pulsar+ssl://` serviceUrl. */
  tls?: PulsarTlsOptions;
  /** Credentials sent to the broker: {@link tokenAuthentication} or {@link oauth2Authentication}. */
  authentication?: PulsarAuthentication;
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

export type ResolvedClientOptions = Required<Omit<PulsarClientOptions, 'tls' | 'authentication'>> & Pick<PulsarClientOptions, 'tls' | 'authentication'>;

const TLS_KEYS = new Set(['ca', 'cert', 'key', 'hostnameVerification', 'allowInsecureConnection']);

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
  if (options.tls !== undefined) {
    if (typeof options.tls !== 'object' || options.tls === null) throw new PulsarConfigError(`tls must be an object of TLS settings, got ${String(options.tls)}`);
    for (const key of Object.keys(options.tls)) {
      if (!TLS_KEYS.has(key)) throw new PulsarConfigError(`unknown tls option '${key}'; the tls options are ${[...TLS_KEYS].join(', ')}`);
    }
    if ((options.tls.cert === undefined) !== (options.tls.key === undefined)) {
      throw new PulsarConfigError('TLS client authentication needs both tls.cert and tls.key');
    }
    resolved.tls = options.tls;
  }
  if (options.authentication !== undefined) {
    const auth = options.authentication as Partial<PulsarAuthentication> | null;
    if (typeof auth !== 'object' || auth === null || typeof auth.method !== 'string' || typeof auth.data !== 'function') {
      throw new PulsarConfigError('authentication must come from tokenAuthentication(...) or oauth2Authentication(...): an object with a method name and data()');
    }
    resolved.authentication = options.authentication;
  }
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
