/**
 * Authentication of a {@link PulsarClient} to the broker: the credentials sent
 * in CONNECT, and again when the broker asks for fresh ones (AUTH_CHALLENGE,
 * e.g. when a token expires on a long-lived connection). Token authentication
 * (a JWT, as with the Java client's AuthenticationToken) and OAuth2 client
 * credentials (as the Java client's AuthenticationOAuth2, which sends the
 * access token it gets from the issuer with the `token` method).
 */
import { PulsarConfigError, PulsarConnectionError } from './errors.js';

/** What a client sends to authenticate; make one with {@link tokenAuthentication} or {@link oauth2Authentication}. */
export interface PulsarAuthentication {
  /** The auth_method_name the broker's authentication provider expects (`token` for tokens and OAuth2). */
  readonly method: string;
  /** The credentials for a new connection or a refresh; called for each. */
  data(): Promise<Buffer>;
}

/**
 * Token authentication: `token` is the JWT the broker's
 * AuthenticationProviderToken checks, or a function that returns the current
 * one (read from a file that a sidecar rotates, a secret manager...), called
 * for each connection and each refresh the broker asks for.
 * @throws PulsarConfigError when `token` is neither a non-empty string nor a function.
 * @example
 * ```ts
 * const client = new PulsarClient({ serviceUrl: 'pulsar+ssl://pulsar.example.com:6651', authentication: tokenAuthentication(process.env.PULSAR_TOKEN!) });
 * ```
 */
export function tokenAuthentication(token: string | (() => string | Promise<string>)): PulsarAuthentication {
  if (typeof token === 'string') {
    if (token.trim() === '') throw new PulsarConfigError('tokenAuthentication needs a token: got an empty string');
    const bytes = Buffer.from(token.trim(), 'utf8');
    return { method: 'token', data: async () => bytes };
  }
  if (typeof token !== 'function') {
    throw new PulsarConfigError(`tokenAuthentication takes a token string or a function returning one, got ${token === null ? 'null' : typeof token}`);
  }
  return {
    method: 'token',
    data: async () => {
      const value = await token();
      if (typeof value !== 'string' || value.trim() === '') {
        throw new PulsarConfigError(`the token function of tokenAuthentication returned ${typeof value === 'string' ? 'an empty string' : typeof value}, not a token`);
      }
      return Buffer.from(value.trim(), 'utf8');
    },
  };
}

/** The options of {@link oauth2Authentication}: the OAuth2 client credentials flow. */
export interface OAuth2Options {
  /** The issuer (e.g. `https://auth.example.com/`): its `/.well-known/openid-configuration` names the token endpoint. */
  issuerUrl: string;
  /** The token endpoint itself, to skip the discovery. */
  tokenEndpoint?: string;
  clientId: string;
  clientSecret: string;
  /** The audience the broker expects in the token (`audience` parameter of the token request). */
  audience?: string;
  /** Space-separated scopes to ask for. */
  scope?: string;
  /** A token is asked for again this long before it expires. @default 60_000, and at most a tenth of its lifetime */
  refreshMarginMs?: number;
  /** Bound on each HTTP request to the issuer. @default 10_000 */
  requestTimeoutMs?: number;
}

/**
 * OAuth2 client credentials: gets an access token from the issuer's token
 * endpoint (found by OpenID discovery unless `tokenEndpoint` is given) and
 * sends it with the `token` method, as the Java client's AuthenticationOAuth2
 * does. The token is kept until shortly before it expires; a failing issuer
 * is a retriable PulsarConnectionError (the client reconnects with back-off).
 * @throws PulsarConfigError on missing or malformed options.
 */
export function oauth2Authentication(options: OAuth2Options): PulsarAuthentication {
  if (typeof options !== 'object' || options === null) {
    throw new PulsarConfigError('oauth2Authentication needs { issuerUrl, clientId, clientSecret } (and audience when the broker checks one)');
  }
  const { issuerUrl, tokenEndpoint, clientId, clientSecret, audience, scope, refreshMarginMs = 60_000, requestTimeoutMs = 10_000 } = options;
  for (const [name, value] of Object.entries({ issuerUrl, clientId, clientSecret })) {
    if (typeof value !== 'string' || value === '') throw new PulsarConfigError(`oauth2Authentication needs ${name}, a non-empty string`);
  }
  for (const [name, value] of Object.entries({ issuerUrl, tokenEndpoint })) {
    if (value !== undefined && !/^https?:\/\//.test(value)) throw new PulsarConfigError(`oauth2Authentication ${name} must be an http(s) URL, got '${value}'`);
  }
  let endpoint: Promise<string> | undefined = tokenEndpoint === undefined ? undefined : Promise.resolve(tokenEndpoint);
  let current: { token: Buffer; renewAt: number } | undefined;
  let fetching: Promise<Buffer> | undefined;

  const request = async (url: string, init: RequestInit, what: string): Promise<Record<string, unknown>> => {
    let response: Response;
    try {
      response = await fetch(url, { ...init, signal: AbortSignal.timeout(requestTimeoutMs) });
    } catch (err) {
      throw new PulsarConnectionError(`OAuth2: ${what} at ${url} failed: ${(err as Error).message}`, { cause: err });
    }
    const text = await response.text();
    if (!response.ok) throw new PulsarConnectionError(`OAuth2: ${what} at ${url} answered ${response.status}: ${text.slice(0, 300)}`);
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new PulsarConnectionError(`OAuth2: ${what} at ${url} answered with something that is not JSON: ${text.slice(0, 100)}`, { cause: err });
    }
  };

  const discover = async (): Promise<string> => {
    const url = `${issuerUrl.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const document = await request(url, { method: 'GET' }, 'the OpenID discovery');
    if (typeof document.token_endpoint !== 'string') throw new PulsarConnectionError(`OAuth2: the discovery document at ${url} names no token_endpoint`);
    return document.token_endpoint;
  };

  const fetchToken = async (): Promise<Buffer> => {
    if (endpoint === undefined) {
      endpoint = discover();
      endpoint.catch(() => (endpoint = undefined));
    }
    const url = await endpoint;
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret });
    if (audience !== undefined) form.set('audience', audience);
    if (scope !== undefined) form.set('scope', scope);
    const started = Date.now();
    const body = await request(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() }, 'the token request');
    if (typeof body.access_token !== 'string' || body.access_token === '') throw new PulsarConnectionError(`OAuth2: the token endpoint ${url} returned no access_token`);
    const lifetimeMs = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in * 1000 : 3_600_000;
    const token = Buffer.from(body.access_token, 'utf8');
    current = { token, renewAt: started + lifetimeMs - Math.min(refreshMarginMs, lifetimeMs / 10) };
    return token;
  };

  return {
    method: 'token',
    data: async () => {
      if (current !== undefined && Date.now() < current.renewAt) return current.token;
      // One request at a time: connections opening together share it.
      fetching ??= fetchToken().finally(() => (fetching = undefined));
      return fetching;
    },
  };
}
