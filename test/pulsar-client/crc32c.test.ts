import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, it } from 'vitest';
import { crc32c } from '../../src/pulsar-client/wire/crc32c.js';

/** The native CRC32C the client used before, when it is still installed (it is no longer a dependency). */
const native = ((): ((data: Buffer) => number) | undefined => {
  try {
    return (createRequire(import.meta.url)('@node-rs/crc32') as { crc32c: (data: Buffer) => number }).crc32c;
  } catch {
    return undefined;
  }
})();

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

  it.runIf(native !== undefined)('matches @node-rs/crc32 on random buffers', () => {
    const compare = native as (data: Buffer) => number;
    for (let round = 0; round < 200; round++) {
      const data = randomBytes(Math.floor(Math.random() * 3000)).subarray(round % 8);
      assert.equal(crc32c(data), compare(data) >>> 0, `${data.length} bytes: ${data.toString('hex').slice(0, 32)}...`);
    }
  });
});
