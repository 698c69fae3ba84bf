/**
 * Key routing of partitioned topics, as the Java client does it: a keyed message goes
 * to `hash(key) & Integer.MAX_VALUE` modulo the partition count, where the hash is the
 * producer's hashing scheme. The Java client's default (`HashingScheme.JavaStringHash`)
 * is Java's `String.hashCode()`, which runs over the key's UTF-16 code units, as
 * JavaScript strings are; `Murmur3_32Hash` is Murmur3 x86_32 (seed 0) of its UTF-8 bytes.
 * A binary key is hashed as the Java client sees it: its base64 text.
 */
import { PulsarConfigError } from './errors.js';
import { murmur3_32 } from './topic-name.js';

/** How a producer hashes message keys to pick a partition; the names follow the Java client's `HashingScheme`. */
export type HashingScheme = 'javaStringHash' | 'murmur3_32';

export const HASHING_SCHEMES: readonly HashingScheme[] = ['javaStringHash', 'murmur3_32'];

/** The Java client's default. */
export const DEFAULT_HASHING_SCHEME: HashingScheme = 'javaStringHash';

/** `value` as a hashing scheme (undefined: the default); PulsarConfigError for anything else. */
export function hashingScheme(value: unknown): HashingScheme {
  if (value === undefined) return DEFAULT_HASHING_SCHEME;
  if (typeof value === 'string' && (HASHING_SCHEMES as readonly string[]).includes(value)) return value as HashingScheme;
  throw new PulsarConfigError(
    `hashingScheme must be one of ${HASHING_SCHEMES.map((s) => `'${s}'`).join(', ')}, got ${JSON.stringify(value) ?? String(value)}: ` +
      "'javaStringHash' routes keys as a default Java producer does, 'murmur3_32' as one built with HashingScheme.Murmur3_32Hash");
}

/** Java's `String.hashCode()`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units, in 32-bit arithmetic. */
export function javaStringHash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}

/** The key as the Java client hashes it: the text of a string key, base64 of a binary one. */
export function routingKey(key: string | Uint8Array): string {
  return typeof key === 'string' ? key : Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64');
}

/** The partition a Java producer with `scheme` picks for `key` on a topic of `partitions` partitions. */
export function partitionForKey(key: string | Uint8Array, partitions: number, scheme: HashingScheme = DEFAULT_HASHING_SCHEME): number {
  const text = routingKey(key);
  const hash = scheme === 'murmur3_32' ? murmur3_32(Buffer.from(text, 'utf8')) : javaStringHash(text);
  return (hash & 0x7fffffff) % partitions;
}
