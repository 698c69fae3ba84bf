import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from 'txkit';
import { memoryTransactions } from 'txkit/memory';
import { MemoryOutboxStore, Outbox, OutboxRelay, memorySink } from 'txkit/outbox';
import { TXKIT_TELEMETRY_NAMES, observeOutbox } from 'txkit/otel';
import { MemoryStore } from '../../src/adapters/memory/memory-store.js';
import { LEVEL, capturedPino, otelHarness } from './otel-support.js';
import type { OtelHarness } from './otel-support.js';

const N = TXKIT_TELEMETRY_NAMES;
let otel: OtelHarness;

afterEach(async () => {
  await otel?.shutdown();
});

/** Polls `ready` every few ms until it holds, failing after `timeoutMs`. */
async function waitUntil(ready: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function setup() {
  otel = otelHarness();
  const data = new MemoryStore();
  const store = new MemoryOutboxStore(data, { partitions: 2 });
  const ctx = memoryTransactions({ store: data });
  const broker = memoryTransactions();
  return { store, ctx, outbox: new Outbox(store), relay: new OutboxRelay({ store, sink: memorySink(broker) }) };
}

const byPartition = (points: Awaited<ReturnType<OtelHarness['points']>>): Record<string, unknown> =>
  Object.fromEntries(points.map((p) => [String(p.attributes['txkit.outbox.partition']), p.value]));

describe('observeOutbox()', () => {
  it('reports the backlog and lag per partition from the store, and both drop to 0 once relayed', async () => {
    const { store, ctx, outbox, relay } = setup();
    const metrics = observeOutbox(store, { meter: otel.meter, name: 'orders' });
    await ctx.withTransaction(async (tx) => {
      await outbox.publish(tx, [
        { topic: 'orders', key: 'a', value: '1' },
        { topic: 'orders', key: 'a', value: '2' },
        { topic: 'orders', key: 'a', value: '3' },
      ]);
    });
    // After the commit: the records were stamped before it, so 20 ms from here is at least 20 ms of lag.
    const published = Date.now();
    const partition = String((await store.status()).partitions.find((p) => p.pending > 0)?.partition);
    await waitUntil(() => Date.now() - published >= 20, 2_000);

    const backlog = await otel.points(N.outboxBacklog);
    expect(backlog.every((p) => p.attributes['txkit.outbox.name'] === 'orders')).toBe(true);
    expect(byPartition(backlog)).toEqual({ '0': 0, '1': 0, [partition]: 3 });
    const lag = byPartition(await otel.points(N.outboxLag));
    expect(lag[partition]).toBeGreaterThanOrEqual(0.02);
    expect(await otel.points(N.outboxDeadLetters)).toEqual([expect.objectContaining({ value: 0, attributes: { 'txkit.outbox.name': 'orders' } })]);

    expect(await relay.drain()).toBe(3);
    expect(byPartition(await otel.points(N.outboxBacklog))).toEqual({ '0': 0, '1': 0 });
    expect(byPartition(await otel.points(N.outboxLag))).toEqual({ '0': 0, '1': 0 });
    metrics.stop();
    metrics.stop();
  });

  it('stops reading the store after stop()', async () => {
    const { store, ctx, outbox } = setup();
    let reads = 0;
    const metrics = observeOutbox({ status: () => ((reads += 1), store.status()) }, { meter: otel.meter });
    expect(await otel.points(N.outboxBacklog)).toHaveLength(2);
    expect(reads).toBe(1);
    metrics.stop();
    await ctx.withTransaction((tx) => outbox.publish(tx, { topic: 'orders', key: 'a', value: '1' }));
    const after = await otel.points(N.outboxBacklog);
    expect(reads).toBe(1);
    expect(after.every((p) => p.value === 0)).toBe(true);
  });

  it('a status read that fails is logged, and that collection has no outbox values', async () => {
    otel = otelHarness();
    const { logger, lines } = capturedPino('error');
    observeOutbox({ status: () => Promise.reject(new Error('outbox table missing')) }, { meter: otel.meter, name: 'billing', logger });
    expect(await otel.points(N.outboxBacklog)).toEqual([]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: LEVEL.error, outbox: 'billing' });
    expect((lines[0]?.err as { message?: string }).message).toBe('outbox table missing');
  });

  it('rejects what is not an outbox store or a meter, with ConfigError', () => {
    otel = otelHarness();
    expect(() => observeOutbox({} as never, { meter: otel.meter })).toThrow(ConfigError);
    expect(() => observeOutbox(new MemoryOutboxStore(new MemoryStore()), { meter: {} as never })).toThrow(/needs an OpenTelemetry Meter/);
    expect(() => observeOutbox(new MemoryOutboxStore(new MemoryStore()), { meter: otel.meter, name: '' })).toThrow(ConfigError);
  });
});
