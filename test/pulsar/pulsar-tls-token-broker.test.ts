/**
 * The Pulsar client against a real standalone broker configured for TLS
 * (requiring client certificates) and token authentication, as a managed
 * Pulsar service is: transactions over `pulsar+ssl://` with a token, a token
 * the broker did not sign, a client without a certificate, and OAuth2 client
 * credentials from a local issuer whose tokens the broker accepts.
 * Certificates are made by openssl and tokens signed here (HS256).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPulsar } from '../../scripts/services/pulsar.mjs';
import type { PulsarHandle } from '../../scripts/services/pulsar.mjs';
import { pulsarTransactions } from '../../src/adapters/pulsar/index.js';
import { PulsarClient, PulsarConnectionError, PulsarServerError, oauth2Authentication, tokenAuthentication } from '../../src/pulsar-client/index.js';
import type { PulsarAuthentication } from '../../src/pulsar-client/index.js';
import { rejection } from '../../src/testing/index.js';
import { makeCertificates } from '../support/certificates.js';
import type { TestCertificates } from '../support/certificates.js';
import { hs256Jwt } from '../support/jwt.js';
import { freePort } from '../support/ports.js';
import { service } from '../support/services.js';
import { uniqueTopic } from './pulsar-support.js';

// The shared broker being reachable means Java and the Pulsar jars are here to start a private one.
const available = service('pulsar') !== undefined;

describe.skipIf(!available)('a Pulsar standalone broker with TLS (client certificates) and token authentication', () => {
  let dir: string;
  let broker: PulsarHandle;
  let certs: TestCertificates;
  let secret: Buffer;
  let tlsUrl: string;
  const clients: PulsarClient[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'txkit-pulsar-secured-'));
    certs = makeCertificates(dir);
    secret = randomBytes(32);
    const tlsPort = await freePort();
    tlsUrl = `pulsar+ssl://127.0.0.1:${tlsPort}`;
    const admin = hs256Jwt(secret, { sub: 'admin' });
    broker = await startPulsar({
      stateDir: join(dir, 'state'),
      log: false,
      authToken: admin,
      properties: {
        brokerServicePortTls: tlsPort,
        tlsCertificateFilePath: certs.serverCert,
        tlsKeyFilePath: certs.serverKey,
        tlsTrustCertsFilePath: certs.ca,
        tlsRequireTrustedClientCertOnConnect: true,
        authenticationEnabled: true,
        authenticationProviders: 'org.apache.pulsar.broker.authentication.AuthenticationProviderToken',
        tokenSecretKey: `data:;base64,${secret.toString('base64')}`,
        superUserRoles: 'admin',
        brokerClientAuthenticationPlugin: 'org.apache.pulsar.client.impl.auth.AuthenticationToken',
        brokerClientAuthenticationParameters: `token:${admin}`,
      },
    });
  }, 300_000);

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const tls = (): { ca: string; cert: string; key: string } => ({
    ca: readFileSync(certs.ca, 'utf8'),
    cert: readFileSync(certs.clientCert, 'utf8'),
    key: readFileSync(certs.clientKey, 'utf8'),
  });
  const client = (authentication: PulsarAuthentication | undefined, url = tlsUrl, withTls = true): PulsarClient => {
    const c = new PulsarClient({
      serviceUrl: url,
      operationTimeoutMs: 20_000,
      connectionTimeoutMs: 10_000,
      maxReconnectDelayMs: 500,
      ...(withTls ? { tls: tls() } : {}),
      ...(authentication === undefined ? {} : { authentication }),
    });
    clients.push(c);
    return c;
  };

  it('over pulsar+ssl:// with a token: a transaction commits and a consumer reads its messages once', async () => {
    const c = client(tokenAuthentication(hs256Jwt(secret, { sub: 'relay' })));
    const topic = uniqueTopic('secured');
    const consumer = await c.subscribe({ topic, subscription: 'audit', initialPosition: 'earliest' });
    const ctx = pulsarTransactions({ client: c });
    await ctx.withTransaction(async (tx) => {
      await tx.handle.send({ topic, messages: [{ key: 'k', value: 'one' }, { key: 'k', value: 'two' }] });
    });
    const got: string[] = [];
    for (let i = 0; i < 2; i++) {
      const m = await consumer.receive({ timeoutMs: 20_000 });
      got.push(String(m.value));
      await consumer.acknowledge(m);
    }
    expect(got).toEqual(['one', 'two']);
    await ctx.close();
  }, 120_000);

  it('a token signed with another key is refused with AuthenticationError and its hint', async () => {
    const forged = hs256Jwt(randomBytes(32), { sub: 'admin' });
    const err = await rejection(client(tokenAuthentication(forged)).partitions(uniqueTopic('forged')));
    expect(err).toBeInstanceOf(PulsarServerError);
    expect((err as PulsarServerError).serverError).toBe('AuthenticationError');
    expect((err as Error).message).toMatch(/tokenAuthentication or oauth2Authentication/);
  }, 60_000);

  it('without a client certificate the TLS port ends the connection; the plaintext port refuses a client without a token', async () => {
    const token = tokenAuthentication(hs256Jwt(secret, { sub: 'relay' }));
    const noCert = new PulsarClient({ serviceUrl: tlsUrl, tls: { ca: readFileSync(certs.ca, 'utf8') }, authentication: token, connectionTimeoutMs: 5_000, operationTimeoutMs: 5_000 });
    clients.push(noCert);
    expect(await rejection(noCert.partitions(uniqueTopic('no-cert')))).toBeInstanceOf(PulsarConnectionError);
    const err = await rejection(client(undefined, broker.serviceUrl, false).partitions(uniqueTopic('no-token')));
    expect(err).toBeInstanceOf(PulsarServerError);
    expect((err as PulsarServerError).serverError).toBe('AuthenticationError');
  }, 60_000);

  it('OAuth2 client credentials: the access token from a local issuer is accepted and a transaction commits', async () => {
    let issued = 0;
    const issuer: Server = createServer((req, res) => {
      if (req.url === '/.well-known/openid-configuration') {
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token_endpoint: `${url}/token` }));
      }
      issued++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: hs256Jwt(secret, { sub: 'oauth-client' }), expires_in: 3600 }));
    });
    await new Promise<void>((resolve) => issuer.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(issuer.address() as AddressInfo).port}`;
    try {
      const c = client(oauth2Authentication({ issuerUrl: url, clientId: 'relay', clientSecret: 'secret', audience: 'urn:pulsar' }));
      const ctx = pulsarTransactions({ client: c });
      await ctx.withTransaction(async (tx) => {
        await tx.handle.send({ topic: uniqueTopic('oauth2'), messages: [{ value: 'v' }] });
      });
      await ctx.close();
      expect(issued).toBe(1);
    } finally {
      await new Promise<void>((resolve) => issuer.close(() => resolve()));
    }
  }, 120_000);
});
