import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { service } from '../../test/support/services.js';
import { dropPostgresTables } from '../../test/support/sql-cleanup.js';
import { startOrderService } from './order-service.js';
import type { OrderService } from './order-service.js';

const post = (svc: OrderService, body: unknown): Promise<Response> =>
  fetch(`${svc.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

const pgUrl = service('postgres');
const backends: [string, string | undefined, boolean][] = [
  ['SQLite (default)', undefined, true],
  ['Postgres (DATABASE_URL)', pgUrl, pgUrl !== undefined],
];

describe.each(backends)('examples/http-service on %s', (_name, databaseUrl, available) => {
  let svc: OrderService;
  const prefix = `http_${process.pid}_${Date.now().toString(36)}_`;

  beforeAll(async () => {
    if (!available) return;
    svc = await startOrderService({ databaseUrl, tablePrefix: prefix, creditLimit: 1000 });
  });

  afterAll(async () => {
    if (!available) return;
    const tables = [svc.ordersTable, ...Object.values(svc.outboxStore.tables)];
    await svc.close();
    await dropPostgresTables(databaseUrl, tables);
  });

  it.skipIf(!available)('POST /orders commits the row and the relay delivers its event to the broker', async () => {
    const res = await post(svc, { id: 'o-1', total: 42 });
    expect(res.status).toBe(201);
    expect(await (await fetch(`${svc.url}/orders/o-1`)).json()).toEqual({ id: 'o-1', total: 42 });

    await svc.broker.waitFor(() => svc.broker.messages('order-created').length >= 1, 10_000);
    const [message, ...rest] = svc.broker.messages('order-created');
    expect(rest).toHaveLength(0);
    expect(message?.key).toBe('o-1');
    expect(JSON.parse(String(message?.value))).toEqual({ id: 'o-1', total: 42 });
    expect(message?.headers['txkit-outbox-id']).toEqual(expect.any(String));
  });

  it.skipIf(!available)('a handler that fails after its writes leaves neither the row nor an event', async () => {
    const res = await post(svc, { id: 'o-big', total: 5000 });
    expect(res.status).toBe(422);
    expect((await res.json()) as unknown).toEqual({ error: 'order total 5000 is over the credit limit of 1000' });

    expect(await svc.db(svc.ordersTable).where({ id: 'o-big' }).first()).toBeUndefined();
    // Nothing was committed to the outbox: its status counts only o-1's record, and a full relay pass adds nothing.
    const status = await svc.outboxStore.status();
    expect(status.partitions.reduce((n, p) => n + p.published, 0)).toBe(1);
    expect(svc.broker.messages('order-created').map((m) => m.key)).toEqual(['o-1']);
    expect((await fetch(`${svc.url}/orders/o-big`)).status).toBe(404);
  });

  it.skipIf(!available)('refuses a malformed order with 400 and writes nothing', async () => {
    const res = await post(svc, { id: '', total: -1 });
    expect(res.status).toBe(400);
    expect(Number((await svc.db(svc.ordersTable).count({ n: '*' }))[0]?.n)).toBe(1);
  });
});
