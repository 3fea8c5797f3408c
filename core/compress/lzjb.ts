/**
 * LZJB decompression (OpenZFS `module/zfs/lzjb.c`), the original ZFS codec.
 *
 * The input is groups of a copy-map byte and up to eight items, one per bit from the lowest:
 * a clear bit is one literal byte; a set bit is a 2-byte match, big-endian, whose top 6 bits
 * are the length - 3 and whose low 10 bits are the distance back into the output. Decoding
 * stops when the output holds exactly `dstSize` bytes (a match may be cut short there);
 * whatever input remains is padding.
 *
 * @module
 */

const MATCH_BITS = 6;
const MATCH_MIN = 3;
const OFFSET_MASK = (1 << (16 - MATCH_BITS)) - 1;

function fail(message: string): never {
  throw new SyntaxError(`Cannot decompress the LZJB block: ${message}`);
}

/**
 * Decompresses an LZJB block into exactly `dstSize` bytes.
 *
 * @param src the compressed block (trailing padding is ignored)
 * @param dstSize the logical size
 * @returns a new buffer of `dstSize` bytes
 * @throws {SyntaxError} when the input ends early or a match reaches before the output's start
 * @throws {RangeError} when `dstSize` is not a non-negative safe integer
 * @example
 * ```ts
 * import { lzjbDecompress } from "./lzjb.ts";
 * // copy map 0b0010: literal "a", then a match of 3 at distance 1, then literal "b"
 * const out = lzjbDecompress(new Uint8Array([0x02, 0x61, 0x00, 0x01, 0x62]), 5);
 * if (new TextDecoder().decode(out) !== "aaaab") throw new Error();
 * ```
 */
export function lzjbDecompress(src: Uint8Array, dstSize: number): Uint8Array {
  if (!Number.isSafeInteger(dstSize) || dstSize < 0) {
    throw new RangeError(`Cannot decompress the LZJB block: bad output size ${dstSize}`);
  }
  const dst = new Uint8Array(dstSize);
  const end = src.length;
  let ip = 0;
  let op = 0;
  let map = 0;
  let mask = 0x80;
  while (op < dstSize) {
    mask <<= 1;
    if (mask === 0x100) {
      if (ip >= end) fail(`the input ends after ${op} of ${dstSize} output bytes`);
      map = src[ip++]!;
      mask = 1;
    }
    if ((map & mask) !== 0) {
      if (end - ip < 2) fail(`the input ends inside a match at output byte ${op}`);
      const hi = src[ip]!;
      const lo = src[ip + 1]!;
      ip += 2;
      let length = (hi >>> (8 - MATCH_BITS)) + MATCH_MIN;
      const distance = ((hi << 8) | lo) & OFFSET_MASK;
      if (distance === 0) fail(`a match at output byte ${op} has distance 0`);
      if (distance > op) {
        fail(`a match at output byte ${op} reaches back ${distance} bytes, before the start`);
      }
      let from = op - distance;
      if (length > dstSize - op) length = dstSize - op;
      for (const stop = op + length; op < stop;) dst[op++] = dst[from++]!;
    } else {
      if (ip >= end) fail(`the input ends after ${op} of ${dstSize} output bytes`);
      dst[op++] = src[ip++]!;
    }
  }
  return dst;
}
