import { ConfigError } from '../../core/index.js';
import type { MemoryStore, MemoryTransactionContext, MemoryTxHandle } from '../../adapters/memory/index.js';
import { checkPositionOwner } from '../outbox-errors.js';
import type { MessageSource, RelaySink, SourceMessage } from '../outbox-types.js';
import { wait } from '../../core/backoff.js';

/**
 * The memory broker as a relay sink. The position is a key read and written
 * inside the relay's transaction, so two relays racing on one partition
 * conflict and the loser reruns from the winner's position.
 */
export function memorySink(context: MemoryTransactionContext): RelaySink<MemoryTxHandle> {
  return {
    context,
    readPosition: async (tx, at) => {
      const key = positionKey(at.relayId, at.partition);
      checkPositionOwner('memorySink', at, (await tx.handle.get(`${key}/outbox-id`)) as string | undefined);
      return (await tx.handle.get(key)) as number | undefined;
    },
    writePosition: async (tx, { relayId, partition, seq, outboxId }) => {
      const key = positionKey(relayId, partition);
      await tx.handle.set(key, seq);
      if (outboxId !== undefined) await tx.handle.set(`${key}/outbox-id`, outboxId);
    },
  };
}

/** A memory-broker topic as a pipeline source, read by offset. */
export function memorySource(store: MemoryStore, topic: string, options: { partitions?: readonly number[] } = {}): MessageSource {
  if (typeof topic !== 'string' || topic === '') throw new ConfigError('memorySource needs a topic name');
  const partitions = options.partitions ?? Array.from({ length: store.partitions }, (_, i) => i);
  return {
    name: topic,
    partitions: async () => [...partitions],
    fetch: async (partition, offset, max) =>
      store
        .messages(topic, partition)
        .slice(offset, offset + max)
        .map(
          (m): SourceMessage => ({
            source: topic,
            partition,
            offset: m.offset,
            key: m.key === null ? null : String(m.key),
            value: m.value === null ? null : Buffer.isBuffer(m.value) ? m.value : Buffer.from(m.value),
            headers: Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, String(v)])),
          }),
        ),
    waitFor: async (partition, offset, timeoutMs, signal) => {
      const ready = (): boolean => store.messages(topic, partition).length > offset;
      if (ready()) return;
      await wait(timeoutMs, signal, (wake) => store.onCommit(() => ready() && wake()));
    },
  };
}

function positionKey(relayId: string, partition: number): string {
  return `txkit-relay-position/${relayId}/${partition}`;
}
