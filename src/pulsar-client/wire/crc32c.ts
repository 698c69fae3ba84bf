/**
 * CRC32C (Castagnoli: reflected polynomial 0x82F63B78, initial value and final
 * XOR 0xFFFFFFFF), the checksum of Pulsar's payload frames, in plain JavaScript.
 * Slicing-by-8: eight 256-entry tables let the loop take eight bytes per step.
 */

const POLYNOMIAL = 0x82f63b78;

/** Table k holds the CRC of byte n followed by k zero bytes. */
const TABLES = ((): Uint32Array[] => {
  const all = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ POLYNOMIAL : c >>> 1;
    all[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = all[n] as number;
    for (let k = 1; k < 8; k++) {
      c = (all[c & 0xff] as number) ^ (c >>> 8);
      all[k * 256 + n] = c;
    }
  }
  return Array.from({ length: 8 }, (_, k) => all.subarray(k * 256, (k + 1) * 256));
})();
const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];

/** The CRC32C of `data`, as an unsigned 32-bit integer. */
export function crc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  let i = 0;
  const length = data.length;
  // Every index below is in range (i + 7 < length) and every table index is a byte, so the `as number` casts hold.
  for (const whole = length - (length % 8); i < whole; i += 8) {
    const low =
      crc ^ ((data[i] as number) | ((data[i + 1] as number) << 8) | ((data[i + 2] as number) << 16) | ((data[i + 3] as number) << 24));
    crc =
      (T7[low & 0xff] as number) ^
      (T6[(low >>> 8) & 0xff] as number) ^
      (T5[(low >>> 16) & 0xff] as number) ^
      (T4[low >>> 24] as number) ^
      (T3[data[i + 4] as number] as number) ^
      (T2[data[i + 5] as number] as number) ^
      (T1[data[i + 6] as number] as number) ^
      (T0[data[i + 7] as number] as number);
  }
  for (; i < length; i++) crc = (T0[(crc ^ (data[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
