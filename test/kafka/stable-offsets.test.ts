/**
 * The OffsetFetch v7 request and response of the require_stable reader, byte by byte against
 * the Kafka protocol's layout (flexible version: compact strings and arrays, tagged fields), and
 * which clients it can read through. The reader against a broker is tested in
 * test/faults/kafka-faults.test.ts (markers held: unstable, then committed).
 */
import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { StableOffsets, decodeResponse, encodeRequest, isUnstableOffsets } from '../../src/adapters/kafka/stable-offsets.js';
import { TransientTransactionError } from '../../src/core/errors.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('require_stable offset reads (OffsetFetch v7)', () => {
  it('encodes the group, each topic with its partitions, and require_stable, after the header\'s empty tagged fields', () => {
    expect(encodeRequest('g', [{ topic: 'tp', partitions: [0, 1] }, { topic: 'x', partitions: [] }]).toString('hex')).toBe(
      hex(`
        00
        02 67
        03
          03 7470  03 00000000 00000001  00
          02 78    01                    00
        01
        00`).toString('hex'),
    );
  });

  it('decodes offsets, null metadata, per-partition and top-level errors, and skips tagged fields it does not know', () => {
    const payload = hex(`
      00
      00000005
      02
        03 7470
        03
          00000000 0000000000000007 ffffffff 00 0000 00
          00000001 ffffffffffffffff ffffffff 03 6d64 0058 01 05 02 abcd
        00
      0000
      00`);
    expect(decodeResponse(payload)).toEqual({
      errorCode: 0,
      clientSideThrottleTime: 5,
      partitions: [
        { topic: 'tp', partition: 0, offset: 7n, errorCode: 0 },
        { topic: 'tp', partition: 1, offset: -1n, errorCode: 88 },
      ],
    });
  });

  it('reads through a kafkajs client only; anything else falls back to admin()', () => {
    const kafka = new kafkajs.Kafka({ brokers: ['127.0.0.1:1'], logLevel: kafkajs.logLevel.NOTHING });
    expect(StableOffsets.of(kafka)).toBeInstanceOf(StableOffsets);
    expect(StableOffsets.of({ admin: () => ({}) })).toBeUndefined();
    expect(StableOffsets.of(undefined)).toBeUndefined();
  });

  it('tells its own unstable error from other transient ones', () => {
    expect(isUnstableOffsets(new TransientTransactionError('x', { code: 'UNSTABLE_OFFSET_COMMIT' as never }))).toBe(true);
    expect(isUnstableOffsets(new TransientTransactionError('x'))).toBe(false);
    expect(isUnstableOffsets(new Error('UNSTABLE_OFFSET_COMMIT'))).toBe(false);
  });
});
