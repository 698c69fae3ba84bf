/**
 * Topic names as the broker wants them: `persistent://tenant/namespace/topic`, with
 * `topic-partition-<n>` for the partitions of a partitioned topic. Short names follow
 * the Java client: `t` is `persistent://public/default/t`, `tenant/ns/t` is
 * `persistent://tenant/ns/t`.
 */
import { PulsarConfigError } from './errors.js';

const PARTITION_SUFFIX = /-partition-(\d+)$/;

/** The full name of `topic`; PulsarConfigError when it cannot be a Pulsar topic name. */
export function fullTopicName(topic: string): string {
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new PulsarConfigError(`a Pulsar topic name must be a non-empty string, got ${JSON.stringify(topic)}`);
  }
  const scheme = /^(persistent|non-persistent):\/\//.exec(topic);
  const rest = scheme === null ? topic : topic.slice(scheme[0].length);
  const parts = rest.split('/');
  const valid = parts.every((p) => p.length > 0) && (scheme === null ? parts.length === 1 || parts.length === 3 : parts.length === 3);
  if (!valid) {
    throw new PulsarConfigError(
      `'${topic}' is not a Pulsar topic name: use 'name', 'tenant/namespace/name' or 'persistent://tenant/namespace/name'`);
  }
  if (scheme !== null) return topic;
  return parts.length === 1 ? `persistent://public/default/${topic}` : `persistent://${topic}`;
}

/** The name of partition `partition` of the partitioned topic `topic`: `<topic>-partition-<n>`. */
export function partitionTopicName(topic: string, partition: number): string {
  return `${topic}-partition-${partition}`;
}

/** `t-partition-3` -> { base: 't', partition: 3 }; a name without the suffix has partition -1. */
export function splitPartition(topic: string): { base: string; partition: number } {
  const match = PARTITION_SUFFIX.exec(topic);
  if (match === null) return { base: topic, partition: -1 };
  return { base: topic.slice(0, match.index), partition: Number(match[1]) };
}

/**
 * The partition Pulsar's Java client picks for a keyed message (Murmur3_32Hash, seed 0,
 * of the key's UTF-8 bytes, masked to 31 bits, modulo the partition count), so a key
 * lands on the same partition whichever client produced it.
 */
export function partitionForKey(key: string, partitions: number): number {
  return (murmur3_32(Buffer.from(key, 'utf8')) & 0x7fffffff) % partitions;
}

export function murmur3_32(bytes: Uint8Array, seed = 0): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  const len = bytes.length;
  const tail = len & ~3;
  let h1 = seed | 0;
  for (let i = 0; i < tail; i += 4) {
    let k1 = (bytes[i] as number) | ((bytes[i + 1] as number) << 8) | ((bytes[i + 2] as number) << 16) | ((bytes[i + 3] as number) << 24);
    k1 = Math.imul(k1, c1);
    k1 = (k1 << 15) | (k1 >>> 17);
    k1 = Math.imul(k1, c2);
    h1 ^= k1;
    h1 = (h1 << 13) | (h1 >>> 19);
    h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0;
  }
  let k1 = 0;
  for (let i = 0; i < (len & 3); i++) k1 ^= (bytes[tail + i] as number) << (i * 8);
  k1 = Math.imul(k1, c1);
  k1 = (k1 << 15) | (k1 >>> 17);
  k1 = Math.imul(k1, c2);
  h1 ^= k1;
  h1 ^= len;
  h1 ^= h1 >>> 16;
  h1 = Math.imul(h1, 0x85ebca6b);
  h1 ^= h1 >>> 13;
  h1 = Math.imul(h1, 0xc2b2ae35);
  h1 ^= h1 >>> 16;
  return h1 | 0;
}
