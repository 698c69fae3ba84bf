/**
 * What the pipeline fault scenarios share: a deterministic source (the same
 * input in every process, so a worker process and the test agree on it), a
 * handler whose every effect is countable (a state row and an outbox
 * message per input), and the exactly-once tally over both.
 */
import type { Knex } from 'knex';
import type { MessageSource, PipelineContext, SourceMessage } from '../../../src/outbox/index.js';
import { wait } from '../../../src/core/backoff.js';

/** Input id of message `offset` of `partition`. */
export const inputId = (partition: number, offset: number): string => `${partition}:${offset}`;

export function allInputIds(partitions: number, perPartition: number): string[] {
  return Array.from({ length: partitions }, (_, p) => Array.from({ length: perPartition }, (_, i) => inputId(p, i))).flat();
}

/**
 * A source of `perPartition` messages in each of `partitions` partitions,
 * generated on demand: message `p:i` at offset i. It never changes, so
 * reading it by offset after a crash gives the same messages again.
 */
export function generatedSource(name: string, partitions: number, perPartition: number): MessageSource {
  return {
    name,
    partitions: async () => Array.from({ length: partitions }, (_, p) => p),
    fetch: async (partition, offset, max) =>
      Array.from({ length: Math.max(0, Math.min(max, perPartition - offset)) }, (_, i): SourceMessage => {
        const id = inputId(partition, offset + i);
        return { source: name, partition, offset: offset + i, key: id, value: Buffer.from(id), headers: {} };
      }),
    // Nothing more ever arrives: wait out the poll interval (or the stop signal).
    waitFor: (_partition, offset, timeoutMs, signal) => (offset < perPartition ? Promise.resolve() : wait(timeoutMs, signal).then(() => undefined)),
  };
}

/** The state table the handler writes one row per processed input to (no unique key: a duplicate would show). */
export async function createEffectsTable(db: Knex, table: string): Promise<void> {
  await db.raw(`create table if not exists ${table} (input text not null, worker text not null, xid bigint not null default (pg_current_xact_id()::text::bigint))`);
}

/** The handler: one state row (with the writing worker and its transaction id) and one outbox message per input. */
export function effectsHandler(table: string, worker: string) {
  return async (m: SourceMessage, { tx, outbox }: PipelineContext<Knex.Transaction>): Promise<void> => {
    const id = m.value?.toString() ?? '';
    await tx.handle.raw(`insert into ${table} (input, worker) values (?, ?)`, [id, worker]);
    await outbox.publish(tx, { topic: 'out', key: id, value: id });
  };
}

/** Inputs as the state table and the outbox hold them. */
export async function readEffects(db: Knex, table: string, outboxTable: string): Promise<{ state: string[]; outbox: string[] }> {
  const state = ((await db.raw(`select input from ${table}`)) as { rows: { input: string }[] }).rows.map((r) => r.input);
  const outbox = ((await db.raw(`select msg_key from ${outboxTable} where topic = 'out'`)) as { rows: { msg_key: string }[] }).rows.map((r) => r.msg_key);
  return { state, outbox };
}
