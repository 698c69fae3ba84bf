import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { service } from '../../test/support/services.js';
import { dropPostgresTables } from '../../test/support/sql-cleanup.js';
import { startExpressApp } from './app.js';
import type { ExpressApp } from './app.js';

const pgUrl = service('postgres');
const backends: [string, string | undefined, boolean][] = [
  ['SQLite (default)', undefined, true],
  ['Postgres (DATABASE_URL)', pgUrl, pgUrl !== undefined],
];

describe.each(backends)('examples/express on %s', (_name, databaseUrl, available) => {
  let app: ExpressApp;
  const prefix = `express_${process.pid}_${Date.now().toString(36)}_`;
  const call = (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${app.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
  const balance = async (id: string): Promise<number> => ((await (await call('GET', `/accounts/${id}`)).json()) as { balance: number }).balance;

  beforeAll(async () => {
    if (!available) return;
    app = await startExpressApp({ databaseUrl, tablePrefix: prefix });
  });

  afterAll(async () => {
    if (!available) return;
    const tables = [app.accountsTable, ...Object.values(app.outboxStore.tables)];
    await app.close();
    await dropPostgresTables(databaseUrl, tables);
  });

  it.skipIf(!available)('a transfer moves the balance and its event reaches the broker through the outbox', async () => {
    expect((await call('PUT', '/accounts/a', { balance: 100 })).status).toBe(200);
    expect((await call('PUT', '/accounts/b', { balance: 0 })).status).toBe(200);
    const res = await call('POST', '/transfers', { from: 'a', to: 'b', amount: 30 });
    expect(res.status).toBe(201);
    expect(await balance('a')).toBe(70);
    expect(await balance('b')).toBe(30);
    await app.broker.waitFor(() => app.broker.messages('transfer-made').length >= 1, 10_000);
    expect(app.broker.messages('transfer-made').map((m) => JSON.parse(String(m.value)))).toEqual([{ from: 'a', to: 'b', amount: 30 }]);
  });

  it.skipIf(!available)('20 concurrent transfers from one account never overdraw it: exactly the covered ones commit, each with one event', async () => {
    await call('PUT', '/accounts/c', { balance: 100 });
    await call('PUT', '/accounts/d', { balance: 0 });
    const before = app.broker.messages('transfer-made').length;
    const statuses = await Promise.all(Array.from({ length: 20 }, () => call('POST', '/transfers', { from: 'c', to: 'd', amount: 10 }).then((r) => r.status)));
    expect(statuses.filter((s) => s === 201)).toHaveLength(10);
    expect(statuses.filter((s) => s === 409)).toHaveLength(10);
    expect(await balance('c')).toBe(0);
    expect(await balance('d')).toBe(100);
    await app.broker.waitFor(() => app.broker.messages('transfer-made').length >= before + 10, 10_000);
    expect(app.broker.messages('transfer-made').length).toBe(before + 10);
  });

  it.skipIf(!available)('a transfer to a missing account rolls back its debit and publishes nothing; bad input is a 400', async () => {
    await call('PUT', '/accounts/e', { balance: 50 });
    const res = await call('POST', '/transfers', { from: 'e', to: 'nobody', amount: 20 });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'no account nobody' });
    expect(await balance('e')).toBe(50);
    const events = await app.db(app.outboxStore.tables.outbox).where({ msg_key: 'e' });
    expect(events).toHaveLength(0);
    expect((await call('POST', '/transfers', '{not json')).status).toBe(400);
    expect((await call('POST', '/transfers', { from: 'e', to: 'e', amount: 1 })).status).toBe(400);
    expect((await call('PUT', '/accounts/f', { balance: -1 })).status).toBe(400);
  });
});
