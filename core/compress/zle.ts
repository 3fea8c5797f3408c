/**
 * ZLE, zero-length encoding (OpenZFS `module/zfs/zle.c`): runs of zeros are coded by length.
 *
 * Each run starts with a byte `b`: when `b + 1 <= n` the next `b + 1` bytes are literals,
 * otherwise it stands for `b + 1 - n` zero bytes. ZFS uses `n` = 64. Decoding stops once the
 * output is full or the input is used up, and the output must then be exactly full.
 *
 * @module
 */

/** The run-length split ZFS uses for ZLE (its "level" in the compression table). */
export const ZLE_DEFAULT_N = 64;

function fail(message: string): never {
  throw new SyntaxError(`Cannot decompress the ZLE block: ${message}`);
}

/**
 * Decompresses a ZLE block into exactly `dstSize` bytes.
 *
 * @param src the compressed block
 * @param dstSize the logical size
 * @param n the literal/zero split (64 in ZFS)
 * @returns a new buffer of `dstSize` bytes
 * @throws {SyntaxError} when a run passes the end of the input or of the output, or the
 * output is not filled exactly
 * @throws {RangeError} when `dstSize` or `n` is out of range
 * @example
 * ```ts
 * import { zleDecompress } from "./zle.ts";
 * // 1 + 1 = 2 literals "hi", then 0x63: 99 + 1 - 64 = 36 zeros
 * const out = zleDecompress(new Uint8Array([1, 0x68, 0x69, 0x63]), 38);
 * if (out[0] !== 0x68 || out[1] !== 0x69 || out.length !== 38 || out[37] !== 0) {
 *   throw new Error();
 * }
 * ```
 */
export function zleDecompress(src: Uint8Array, dstSize: number, n = ZLE_DEFAULT_N): Uint8Array {
  if (!Number.isSafeInteger(dstSize) || dstSize < 0) {
    throw new RangeError(`Cannot decompress the ZLE block: bad output size ${dstSize}`);
  }
  if (!Number.isInteger(n) || n < 1 || n > 256) {
    throw new RangeError(`Cannot decompress the ZLE block: bad run split ${n}`);
  }
  const dst = new Uint8Array(dstSize);
  const end = src.length;
  let ip = 0;
  let op = 0;
  while (ip < end && op < dstSize) {
    let length = 1 + src[ip++]!;
    if (length <= n) {
      if (length > end - ip) fail(`${length} literals at byte ${ip} pass the end of the input`);
      if (length > dstSize - op) fail(`${length} literals pass the output size of ${dstSize}`);
      dst.set(src.subarray(ip, ip + length), op);
      ip += length;
      op += length;
    } else {
      length -= n;
      if (length > dstSize - op) fail(`${length} zeros pass the output size of ${dstSize}`);
      op += length; // the buffer is already zero
    }
  }
  if (op !== dstSize) fail(`the input ends after ${op} of ${dstSize} output bytes`);
  return dst;
}
