import type { MongoDocumentLike } from './mongo-outbox-types.js';

/** Field order fixed: MongoDB compares embedded `_id` documents field by field, in order. */
export function relayDocId(relayId: string, partition: number): MongoDocumentLike {
  return { relayId, partition };
}

/** The `_id` of a partition's lease in a lease group (field order fixed, as for {@link relayDocId}). */
export function leaseDocId(group: string, partition: number): MongoDocumentLike {
  return { group, partition };
}

/** The `_id` of a lease group member (field order fixed, as for {@link relayDocId}). */
export function leaseMemberId(group: string, owner: string): MongoDocumentLike {
  return { group, owner };
}

/** The `_id` of a consumer's position in a source partition. */
export function inboxId(consumer: string, source: string, partition: number): MongoDocumentLike {
  return { consumer, source, partition };
}

/** The server's error code of a driver error, if it has one. */
export function codeOf(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

/** A server's refusal (a numeric code), as opposed to a network or driver error. */
export function hasServerCode(err: unknown): boolean {
  return typeof codeOf(err) === 'number';
}

/** findOneAndUpdate's document, from drivers that return it bare (6+) or inside `{ value }`. */
export function unwrapModifyResult(result: unknown): MongoDocumentLike | null {
  if (result === null || result === undefined) return null;
  const r = result as MongoDocumentLike;
  if ('lastErrorObject' in r && 'value' in r) return (r.value as MongoDocumentLike | null) ?? null;
  return r;
}

/** Headers stored as `[name, value]` pairs (names may hold '.' and '$'), back as an object. */
export function fromPairs(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(v)) return out;
  for (const pair of v as unknown[]) {
    if (Array.isArray(pair)) out[String(pair[0])] = String(pair[1]);
  }
  return out;
}

/** A Buffer from what the driver returns for binary data (its `Binary`, or a Buffer with promoteBuffers). */
export function toBuffer(v: unknown): Buffer | null {
  if (v === null || v === undefined) return null;
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  const binary = v as { buffer?: unknown; position?: unknown };
  if (binary.buffer instanceof Uint8Array) {
    const bytes = typeof binary.position === 'number' ? binary.buffer.subarray(0, binary.position) : binary.buffer;
    return Buffer.from(bytes);
  }
  return Buffer.from(String(v));
}
