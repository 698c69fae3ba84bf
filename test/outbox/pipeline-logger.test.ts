/**
 * Where a pipeline reports the errors it survives: `onError` first, else a
 * pino-compatible `logger.error`, else a process warning. Never nowhere.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import { ConfigError } from '../../src/core/index.js';
import { MemoryOutboxStore } from '../../src/outbox/stores/memory-outbox-store.js';
import { memorySource } from '../../src/outbox/memory/memory-broker.js';
import { pipeline } from '../../src/outbox/engine/pipeline.js';
import type { PipelineOptions } from '../../src/outbox/engine/pipeline.js';

async function failingPipeline(extra: Partial<PipelineOptions<unknown>>): Promise<{ dead: number }> {
  const data = new MemoryStore();
  const db = memoryTransactions({ store: data, retry: { initialDelayMs: 1, maxDelayMs: 2 } });
  await db.withTransaction((tx) => tx.handle.send({ topic: 'in', messages: [{ key: 'a', value: 'bad' }] }));
  const p = pipeline({
    consumer: 'logger-test',
    source: memorySource(data, 'in'),
    db: db as never,
    store: new MemoryOutboxStore(data) as never,
    handler: async () => {
      throw new Error('cannot handle this one');
    },
    maxAttempts: 1,
    ...extra,
  });
  const stats = await p.runUntilIdle();
  await db.close();
  return { dead: stats.deadLettered };
}

describe('pipeline error reporting', () => {
  it('sends surviving errors to logger.error with pino’s (obj, msg) shape when no onError is given', async () => {
    const lines: { obj: Record<string, unknown>; msg: string }[] = [];
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      const { dead } = await failingPipeline({ logger: { error: (obj, msg) => void lines.push({ obj, msg }) } });
      expect(dead).toBe(1);
    } finally {
      process.off('warning', onWarning);
    }
    expect(lines.length).toBeGreaterThan(0);
    expect(lines[0]?.msg).toMatch(/txkit pipeline/);
    expect(lines[0]?.obj).toMatchObject({ consumer: 'logger-test' });
    expect(String((lines[0]?.obj.err as Error).message)).toMatch(/cannot handle this one/);
    expect(warnings.filter((w) => w.includes('txkit pipeline'))).toEqual([]);
  });

  it('prefers onError over the logger', async () => {
    const seen: unknown[] = [];
    const logged: unknown[] = [];
    await failingPipeline({ onError: (err) => void seen.push(err), logger: { error: (obj) => void logged.push(obj) } });
    expect(seen.length).toBeGreaterThan(0);
    expect(logged).toEqual([]);
  });

  it('refuses a logger whose error is not a function', () => {
    expect(() =>
      pipeline({
        consumer: 'c',
        source: memorySource(new MemoryStore(), 'in'),
        db: memoryTransactions() as never,
        store: new MemoryOutboxStore(new MemoryStore()) as never,
        handler: async () => {},
        logger: { error: 'loud' } as never,
      }),
    ).toThrow(ConfigError);
  });
});
