import { ConfigError } from '../../core/index.js';
import type { OutboxRelayStatus } from '../outbox-types.js';

/** What a store knows of its relays: relay id -> outbox partition -> highest sequence reported relayed. */
export type RelayPositions = ReadonlyMap<string, ReadonlyMap<number, number>>;

/** Groups `(relayId, partition, seq)` rows into {@link RelayPositions}. */
export function positionsOf(rows: Iterable<{ relayId: string; partition: number; seq: number }>): RelayPositions {
  const out = new Map<string, Map<number, number>>();
  for (const { relayId, partition, seq } of rows) {
    let byPartition = out.get(relayId);
    if (byPartition === undefined) out.set(relayId, (byPartition = new Map()));
    byPartition.set(partition, Math.max(seq, byPartition.get(partition) ?? 0));
  }
  return out;
}

/**
 * How far every known relay id has relayed a partition: the lowest of their
 * positions, a relay id without one there counting as 0. Undefined when no
 * relay id is known, so nothing counts as relayed (and cleanup deletes nothing).
 */
export function relayedByAll(positions: RelayPositions, partition: number): number | undefined {
  if (positions.size === 0) return undefined;
  let low = Number.POSITIVE_INFINITY;
  for (const byPartition of positions.values()) low = Math.min(low, byPartition.get(partition) ?? 0);
  return low;
}

/**
 * Cleanup over `partitions` outbox partitions: in each, `deleteUpTo(partition, upTo)`
 * deletes the old records every known relay id has sent (sequence at most `upTo`)
 * and says how many; returns the total. With no relay id known nothing is deleted.
 */
export async function deleteRelayed(
  positions: RelayPositions,
  partitions: number,
  deleteUpTo: (partition: number, upTo: number) => Promise<number>,
): Promise<number> {
  let deleted = 0;
  for (let p = 0; p < partitions; p++) {
    // Only what every known relay id has sent; with none known, nothing counts as sent.
    const upTo = relayedByAll(positions, p) ?? 0;
    if (upTo <= 0) continue;
    deleted += await deleteUpTo(p, upTo);
  }
  return deleted;
}

/** Per relay id: its position and backlog in each partition, given what each partition has published. */
export function relayStatuses(positions: RelayPositions, published: ReadonlyMap<number, number>): OutboxRelayStatus[] {
  return [...positions.keys()].sort().map((relayId) => {
    const byPartition = positions.get(relayId) as ReadonlyMap<number, number>;
    const partitions = [...published].map(([partition, count]) => {
      const relayed = byPartition.get(partition) ?? 0;
      return { partition, relayed, pending: Math.max(0, count - relayed) };
    });
    return { relayId, pending: partitions.reduce((n, p) => n + p.pending, 0), partitions };
  });
}

/** A relay id as stores take it: a non-empty string. */
export function checkRelayId(relayId: unknown, method: string): string {
  if (typeof relayId !== 'string' || relayId === '') {
    throw new ConfigError(`outbox store ${method}() needs the relay id as a non-empty string, got ${relayId === null ? 'null' : typeof relayId}; it is the relay's relayId option ('default' when not given)`);
  }
  if (relayId.length > 191) throw new ConfigError(`outbox store ${method}(): relay id '${relayId.slice(0, 40)}...' is ${relayId.length} characters, over the 191 the stores keep`);
  return relayId;
}
