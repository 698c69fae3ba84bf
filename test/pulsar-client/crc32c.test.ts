import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'vitest';
import { crc32c } from '../../src/pulsar-client/wire/crc32c.js';

/** Bit-at-a-time CRC32C straight from its definition, to check the table-driven one against. */
function reference(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

describe('crc32c', () => {
  it('matches the published check values', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa);
    assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
    // 32 bytes counting up, and 32 bytes counting down (RFC 3720, B.4).
    assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
    assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
    assert.equal(crc32c(new Uint8Array(0)), 0);
  });

  it('matches the bit-at-a-time definition for every length around the 8-byte step, at any offset', () => {
    const bytes = randomBytes(4096 + 16);
    for (let length = 0; length <= 64; length++) {
      for (let offset = 0; offset < 8; offset++) {
        const data = bytes.subarray(offset, offset + length);
        assert.equal(crc32c(data), reference(data), `length ${length} at offset ${offset}`);
      }
    }
    const large = bytes.subarray(3, 3 + 4096 + 5);
    assert.equal(crc32c(large), reference(large));
  });
});
