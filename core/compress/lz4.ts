/**
 * LZ4 block decompression, and the framing ZFS puts around it.
 *
 * ZFS stores an LZ4-compressed block as a 4-byte big-endian length `n`, then `n` bytes of a raw
 * LZ4 block, then padding up to the allocated size (OpenZFS `module/zfs/lz4_zfs.c`). A block
 * must expand to exactly its logical size.
 *
 * The raw block is a run of sequences: a token (high nibble: literal count, low nibble: match
 * length - 4; 15 in either means more length bytes follow, each adding up to 255), the
 * literals, a 2-byte little-endian match offset and the extra match length bytes. The last
 * sequence holds literals only and ends exactly at the end of the input.
 *
 * Input is treated as hostile: every read and write is bounds-checked and the output buffer
 * is the only allocation.
 *
 * @module
 */

/** Bytes of ZFS's length prefix. */
const PREFIX = 4;
/** The shortest match LZ4 encodes. */
const MIN_MATCH = 4;

function fail(message: string): never {
  throw new SyntaxError(`Cannot decompress the LZ4 block: ${message}`);
}

function checkSize(dstSize: number): void {
  if (!Number.isSafeInteger(dstSize) || dstSize < 0) {
    throw new RangeError(`Cannot decompress the LZ4 block: bad output size ${dstSize}`);
  }
}

/**
 * Decodes a raw LZ4 block (no length prefix) that must expand to exactly `dstSize` bytes.
 *
 * @param block the LZ4 block, exactly as long as the encoder wrote it
 * @param dstSize the decompressed size
 * @returns a new buffer of `dstSize` bytes
 * @throws {SyntaxError} when the block is malformed or does not expand to `dstSize` bytes
 * @throws {RangeError} when `dstSize` is not a non-negative safe integer
 * @example
 * ```ts
 * import { lz4DecompressBlock } from "./lz4.ts";
 * // token 0x30: 3 literals, then the end of the block
 * const out = lz4DecompressBlock(new Uint8Array([0x30, 0x61, 0x62, 0x63]), 3);
 * if (new TextDecoder().decode(out) !== "abc") throw new Error();
 * ```
 */
export function lz4DecompressBlock(block: Uint8Array, dstSize: number): Uint8Array {
  checkSize(dstSize);
  const dst = new Uint8Array(dstSize);
  const end = block.length;
  let ip = 0;
  let op = 0;
  for (;;) {
    if (ip >= end) fail(`the input ends at byte ${ip} where a sequence should start`);
    const token = block[ip++]!;
    let literals = token >>> 4;
    if (literals === 15) {
      let more: number;
      do {
        if (ip >= end) fail("the input ends inside a literal length");
        more = block[ip++]!;
        literals += more;
      } while (more === 255);
    }
    if (literals > end - ip) {
      fail(`${literals} literals at byte ${ip} run past the end of the input (${end} bytes)`);
    }
    if (literals > dstSize - op) {
      fail(`${literals} literals would pass the output size of ${dstSize} bytes`);
    }
    dst.set(block.subarray(ip, ip + literals), op);
    ip += literals;
    op += literals;
    if (ip === end) break;

    if (end - ip < 2) fail("the input ends inside a match offset");
    const offset = block[ip]! | (block[ip + 1]! << 8);
    ip += 2;
    if (offset === 0) fail(`a match at output byte ${op} has offset 0`);
    if (offset > op) {
      fail(`a match at output byte ${op} reaches back ${offset} bytes, before the output's start`);
    }
    let length = token & 15;
    if (length === 15) {
      let more: number;
      do {
        if (ip >= end) fail("the input ends inside a match length");
        more = block[ip++]!;
        length += more;
      } while (more === 255);
    }
    length += MIN_MATCH;
    if (length > dstSize - op) {
      fail(
        `a match of ${length} bytes at output byte ${op} would pass the output size of ` +
          `${dstSize} bytes`,
      );
    }
    let from = op - offset;
    if (offset >= length) {
      dst.copyWithin(op, from, from + length);
      op += length;
    } else {
      // Overlapping match: it repeats the last `offset` bytes.
      for (const stop = op + length; op < stop;) dst[op++] = dst[from++]!;
    }
    if (ip === end) fail("the block ends with a match; the last sequence must be literals");
  }
  if (op !== dstSize) fail(`it expands to ${op} bytes, not ${dstSize}`);
  return dst;
}

/**
 * Decompresses a ZFS LZ4 block: a 4-byte big-endian length `n`, an `n`-byte LZ4 block, and any
 * padding after it. The result has exactly `dstSize` bytes, as ZFS requires.
 *
 * @param src the compressed block as stored (`psize` bytes, or the embedded payload)
 * @param dstSize the logical size
 * @returns a new buffer of `dstSize` bytes
 * @throws {SyntaxError} when the prefix or the block is malformed
 * @throws {RangeError} when `dstSize` is not a non-negative safe integer
 * @example
 * ```ts
 * import { lz4Decompress } from "./lz4.ts";
 * // length 4; "a" then a match of 4 at offset 1; then 2 literals "bc"
 * const src = new Uint8Array([0, 0, 0, 7, 0x10, 0x61, 1, 0, 0x20, 0x62, 0x63, 0, 0]);
 * const out = lz4Decompress(src, 7);
 * if (new TextDecoder().decode(out) !== "aaaaabc") throw new Error();
 * ```
 */
export function lz4Decompress(src: Uint8Array, dstSize: number): Uint8Array {
  checkSize(dstSize);
  if (src.length < PREFIX) fail(`${src.length} bytes is too short for the length prefix`);
  const n = ((src[0]! << 24) | (src[1]! << 16) | (src[2]! << 8) | src[3]!) >>> 0;
  if (n > src.length - PREFIX) {
    fail(`the prefix says ${n} bytes but only ${src.length - PREFIX} follow it`);
  }
  return lz4DecompressBlock(src.subarray(PREFIX, PREFIX + n), dstSize);
}
