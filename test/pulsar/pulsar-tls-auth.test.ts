/**
 * The Pulsar client over TLS and with authentication, against the scripted
 * broker speaking TLS (certificates made here with openssl) and a local
 * OAuth2 issuer: the CA, the client certificate and the host name are
 * checked; the token (or the OAuth2 access token) travels in CONNECT and is
 * renewed when the broker sends AUTH_CHALLENGE; each failure is a typed
 * error that says what to fix.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PulsarClient, PulsarConnectionError, PulsarServerError, oauth2Authentication, tokenAuthentication } from '../../src/pulsar-client/index.js';
import type { PulsarClientOptions } from '../../src/pulsar-client/index.js';
import { CommandType } from '../../src/pulsar-client/wire/commands.js';
import { rejection } from '../../src/testing/index.js';
import { makeCertificates } from '../support/certificates.js';
import type { TestCertificates } from '../support/certificates.js';
import { waitUntil } from '../support/wait-until.js';
import { ScriptedBroker } from './scripted-broker.js';

const TOPIC = 'persistent://public/default/tls-auth';
let dir: string;
let certs: TestCertificates;
let localhostOnly: TestCertificates;
const read = (f: string): string => readFileSync(f, 'utf8');
const cleanups: (() => Promise<void>)[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'txkit-pulsar-tls-'));
  certs = makeCertificates(join(dir, mkdir('ip')));
  localhostOnly = makeCertificates(join(dir, mkdir('dns')), 'DNS:localhost');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function mkdir(name: string): string {
  mkdirSync(join(dir, name), { recursive: true });
  return name;
}

/** A scripted broker speaking TLS with `server`'s certificate, requiring a client certificate signed by its CA. */
async function tlsBroker(server: TestCertificates = certs, script?: Parameters<typeof ScriptedBroker.start>[0]): Promise<ScriptedBroker> {
  const broker = await ScriptedBroker.start(script, {
    tls: { key: read(server.serverKey), cert: read(server.serverCert), ca: read(server.ca), requestCert: true, rejectUnauthorized: true },
  });
  cleanups.push(() => broker.close());
  return broker;
}

function client(options: PulsarClientOptions): PulsarClient {
  const c = new PulsarClient({ operationTimeoutMs: 3_000, connectionTimeoutMs: 3_000, ...options });
  cleanups.push(() => c.close());
  return c;
}

describe('Pulsar client over TLS', () => {
  it('with the CA and a client certificate: the producer connects, looks the topic up on the TLS URL and sends; the broker saw the client certificate', async () => {
    const broker = await tlsBroker();
    const c = client({ serviceUrl: broker.url, tls: { ca: read(certs.ca), cert: read(certs.clientCert), key: read(certs.clientKey) } });
    const producer = await c.createProducer({ topic: TOPIC });
    await producer.send({ value: 'over tls' });
    expect(broker.url).toMatch(/^pulsar\+ssl:\/\//);
    expect(broker.bodies(CommandType.SEND)).toHaveLength(1);
    const peer = (broker.connections[0]?.socket as TLSSocket).getPeerCertificate();
    expect(peer.subject.CN).toBe('client');
  });

  it('a broker certificate from another CA is refused with a connection error naming the certificate', async () => {
    const broker = await tlsBroker();
    const c = client({ serviceUrl: broker.url, tls: { ca: read(certs.otherCa), cert: read(certs.clientCert), key: read(certs.clientKey) }, maxLookupRedirects: 0 });
    const err = await rejection(c.lookup(TOPIC));
    expect(err).toBeInstanceOf(PulsarConnectionError);
    expect((err as Error).message).toMatch(/certificate/i);
  });

  it('a certificate that does not name the host connected to is refused, unless hostnameVerification is off', async () => {
    const broker = await tlsBroker(localhostOnly);
    const tls = { ca: read(localhostOnly.ca), cert: read(localhostOnly.clientCert), key: read(localhostOnly.clientKey) };
    const err = await rejection(client({ serviceUrl: broker.url, tls }).lookup(TOPIC));
    expect(err).toBeInstanceOf(PulsarConnectionError);
    expect((err as Error).message).toMatch(/altnames|does not match/i);
    expect((await client({ serviceUrl: broker.url, tls: { ...tls, hostnameVerification: false } }).lookup(TOPIC)).brokerUrl).toBe(broker.url);
  });

  it('without a client certificate, a broker that requires one ends the connection', async () => {
    const broker = await tlsBroker();
    const err = await rejection(client({ serviceUrl: broker.url, tls: { ca: read(certs.ca) } }).lookup(TOPIC));
    expect(err).toBeInstanceOf(PulsarConnectionError);
  });
});

/** The CONNECT commands the broker received, with their auth fields. */
function connects(broker: ScriptedBroker): { authMethodName?: string; authData?: Uint8Array; featureFlags?: { supportsAuthRefresh?: boolean } }[] {
  return broker.bodies(CommandType.CONNECT);
}

describe('Pulsar client authentication', () => {
  it('a token travels in CONNECT with the token method, and the client says it can refresh', async () => {
    const broker = await ScriptedBroker.start();
    cleanups.push(() => broker.close());
    await client({ serviceUrl: broker.url, authentication: tokenAuthentication('eyJ.token.sig') }).lookup(TOPIC);
    const [connect] = connects(broker);
    expect(connect?.authMethodName).toBe('token');
    expect(Buffer.from(connect?.authData ?? []).toString()).toBe('eyJ.token.sig');
    expect(connect?.featureFlags?.supportsAuthRefresh).toBe(true);
  });

  it('on AUTH_CHALLENGE the client answers AUTH_RESPONSE with the current token from its function, on the same connection', async () => {
    let n = 0;
    const broker = await ScriptedBroker.start();
    cleanups.push(() => broker.close());
    const c = client({ serviceUrl: broker.url, authentication: tokenAuthentication(() => `token-${++n}`) });
    await c.lookup(TOPIC);
    broker.connections[0]?.send(CommandType.AUTH_CHALLENGE, { serverVersion: 'scripted', protocolVersion: 19, challenge: { authMethodName: 'refresh', authData: Buffer.from('refresh') } });
    await waitUntil(() => broker.bodies(CommandType.AUTH_RESPONSE).length === 1, 5_000, 'the AUTH_RESPONSE');
    const [answer] = broker.bodies<{ response?: { authMethodName?: string; authData?: Uint8Array } }>(CommandType.AUTH_RESPONSE);
    expect(answer?.response?.authMethodName).toBe('token');
    expect(Buffer.from(answer?.response?.authData ?? []).toString()).toBe('token-2');
    // The connection stays up: the next request goes over it.
    await c.lookup(TOPIC);
    expect(broker.connections).toHaveLength(1);
  });

  it('a broker that refuses the credentials fails the connection with AuthenticationError and a hint', async () => {
    const broker = await ScriptedBroker.start((command, c) => {
      if (command.type !== CommandType.CONNECT) return false;
      c.send(CommandType.ERROR, { requestId: 0, error: 3, message: 'Failed to authenticate' });
      return true;
    });
    cleanups.push(() => broker.close());
    const err = await rejection(client({ serviceUrl: broker.url, authentication: tokenAuthentication('expired') }).lookup(TOPIC));
    expect(err).toBeInstanceOf(PulsarServerError);
    expect((err as PulsarServerError).serverError).toBe('AuthenticationError');
    expect((err as Error).message).toMatch(/tokenAuthentication or oauth2Authentication/);
  });

  it('tokenAuthentication refuses an empty token, and a function that returns none fails the connection', async () => {
    expect(() => tokenAuthentication('  ')).toThrow(/needs a token/);
    const broker = await ScriptedBroker.start();
    cleanups.push(() => broker.close());
    const err = await rejection(client({ serviceUrl: broker.url, authentication: tokenAuthentication(() => '') }).lookup(TOPIC));
    expect((err as Error).message).toMatch(/returned an empty string, not a token/);
  });
});

describe('OAuth2 client credentials', () => {
  let issuer: Server;
  let issuerUrl: string;
  let requests: URLSearchParams[] = [];
  let lifetime = 3600;
  let down = false;

  beforeAll(async () => {
    issuer = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (down) return void res.writeHead(503).end('down');
      if (req.url === '/.well-known/openid-configuration') {
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token_endpoint: `${issuerUrl}/oauth/token` }));
      }
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const form = new URLSearchParams(body);
        requests.push(form);
        if (form.get('client_secret') !== 'secret') return void res.writeHead(401).end('{"error":"invalid_client"}');
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `access-${requests.length}`, token_type: 'Bearer', expires_in: lifetime }));
      });
    });
    await new Promise<void>((resolve) => issuer.listen(0, '127.0.0.1', resolve));
    issuerUrl = `http://127.0.0.1:${(issuer.address() as AddressInfo).port}`;
  });
  afterAll(async () => new Promise<void>((resolve) => issuer.close(() => resolve())));
  afterEach(() => {
    requests = [];
    lifetime = 3600;
    down = false;
  });

  it('finds the token endpoint, asks with the client credentials and audience, sends the access token, and reuses it until it nears expiry', async () => {
    const broker = await ScriptedBroker.start();
    cleanups.push(() => broker.close());
    const authentication = oauth2Authentication({ issuerUrl, clientId: 'relay', clientSecret: 'secret', audience: 'urn:pulsar' });
    await client({ serviceUrl: broker.url, authentication }).lookup(TOPIC);
    await client({ serviceUrl: broker.url, authentication }).lookup(TOPIC);
    expect(requests).toHaveLength(1);
    expect(Object.fromEntries(requests[0] ?? [])).toEqual({ grant_type: 'client_credentials', client_id: 'relay', client_secret: 'secret', audience: 'urn:pulsar' });
    expect(connects(broker).map((c) => [c.authMethodName, Buffer.from(c.authData ?? []).toString()])).toEqual([
      ['token', 'access-1'],
      ['token', 'access-1'],
    ]);

    // A token past its renewal time (a tenth of its lifetime before expiry, here 45 ms after it was asked for) is asked for again.
    lifetime = 0.05;
    const shortLived = oauth2Authentication({ issuerUrl, clientId: 'relay', clientSecret: 'secret' });
    const asked = Date.now();
    expect((await shortLived.data()).toString()).toBe('access-2');
    await waitUntil(() => Date.now() - asked > 50, 5_000, 'the short-lived token to expire');
    expect((await shortLived.data()).toString()).toBe('access-3');
    expect(requests).toHaveLength(3);
  });

  it('wrong credentials and an issuer that is down are connection errors that name the issuer', async () => {
    const broker = await ScriptedBroker.start();
    cleanups.push(() => broker.close());
    const wrong = await rejection(client({ serviceUrl: broker.url, authentication: oauth2Authentication({ issuerUrl, clientId: 'relay', clientSecret: 'nope' }) }).lookup(TOPIC));
    expect(wrong).toBeInstanceOf(PulsarConnectionError);
    expect((wrong as Error).message).toMatch(/OAuth2: the token request at .*\/oauth\/token answered 401/);
    down = true;
    const unavailable = await rejection(oauth2Authentication({ issuerUrl, clientId: 'relay', clientSecret: 'secret' }).data());
    expect((unavailable as Error).message).toMatch(/OAuth2: the OpenID discovery at .* answered 503/);
    expect(broker.bodies(CommandType.CONNECT)).toHaveLength(0);
  });

  it('refuses missing or malformed options', () => {
    expect(() => oauth2Authentication({ issuerUrl, clientId: '', clientSecret: 's' })).toThrow(/needs clientId/);
    expect(() => oauth2Authentication({ issuerUrl: 'auth.example.com', clientId: 'c', clientSecret: 's' })).toThrow(/issuerUrl must be an http\(s\) URL/);
  });
});
