/**
 * Block decompression for every ZFS codec this project implements, chosen by the
 * `enum zio_compress` number that block pointers and send records carry (OpenZFS
 * `include/sys/zio_compress.h`).
 *
 * Implemented: LZJB, GZIP-1..9, ZLE, LZ4, ZSTD (with OpenZFS's header before the frame), and
 * the trivial OFF/EMPTY.
 *
 * @module
 */

import { gzipDecompress } from "./gzip.ts";
import { lz4Decompress } from "./lz4.ts";
import { lzjbDecompress } from "./lzjb.ts";
import { ZLE_DEFAULT_N, zleDecompress } from "./zle.ts";
import { zstdDecompress } from "./zstd.ts";

export { adler32, gzipDecompress } from "./gzip.ts";
export { zlibCompress } from "./deflate.ts";
export {
  compressBlock,
  lz4Compress,
  lz4CompressBlock,
  lzjbCompress,
  zleCompress,
} from "./encode.ts";
export { lz4Decompress, lz4DecompressBlock } from "./lz4.ts";
export { lzjbDecompress } from "./lzjb.ts";
export { ZLE_DEFAULT_N, zleDecompress } from "./zle.ts";
export {
  type ZfsZstdHeader,
  zfsZstdHeader,
  zstdDecompress,
  zstdDecompressFrames,
  type ZstdOptions,
} from "./zstd.ts";
export { xxhash64 } from "./xxhash64.ts";

/**
 * The `enum zio_compress` values.
 *
 * @example
 * ```ts
 * import { ZIO_COMPRESS } from "./mod.ts";
 * if (ZIO_COMPRESS.LZ4 !== 15 || ZIO_COMPRESS.GZIP_9 !== 13 || ZIO_COMPRESS.ZSTD !== 16) {
 *   throw new Error();
 * }
 * ```
 */
export const ZIO_COMPRESS = {
  INHERIT: 0,
  ON: 1,
  OFF: 2,
  LZJB: 3,
  EMPTY: 4,
  GZIP_1: 5,
  GZIP_2: 6,
  GZIP_3: 7,
  GZIP_4: 8,
  GZIP_5: 9,
  GZIP_6: 10,
  GZIP_7: 11,
  GZIP_8: 12,
  GZIP_9: 13,
  ZLE: 14,
  LZ4: 15,
  ZSTD: 16,
} as const;

const NAMES = [
  "inherit",
  "on",
  "off",
  "lzjb",
  "empty",
  "gzip-1",
  "gzip-2",
  "gzip-3",
  "gzip-4",
  "gzip-5",
  "gzip-6",
  "gzip-7",
  "gzip-8",
  "gzip-9",
  "zle",
  "lz4",
  "zstd",
];

/**
 * The name ZFS gives a compression number (`lz4`, `gzip-6`, ...), or `compression N` when it
 * has none.
 *
 * @example
 * ```ts
 * import { compressionName } from "./mod.ts";
 * if (compressionName(10) !== "gzip-6" || compressionName(99) !== "compression 99") {
 *   throw new Error();
 * }
 * ```
 */
export function compressionName(compression: number): string {
  return NAMES[compression] ?? `compression ${compression}`;
}

/**
 * Decompresses one block to its logical size.
 *
 * `INHERIT` (0, what a send record carries for "not compressed") and `OFF` return the first
 * `lsize` bytes of `src`; `EMPTY` returns zeros.
 *
 * @param compression the `enum zio_compress` value
 * @param src the stored bytes (`psize`, or an embedded payload)
 * @param lsize the logical size
 * @returns a new buffer of exactly `lsize` bytes
 * @throws {TypeError} for a codec this implementation lacks (`on`, unknown numbers), with
 * the codec's name in the message, and for a zstd frame that needs a dictionary
 * @throws {SyntaxError} for data the codec cannot decode
 * @throws {RangeError} for a bad `lsize`, uncompressed input shorter than `lsize`, or zstd
 * data that would expand past `lsize`
 * @example
 * ```ts
 * import { decompressBlock, ZIO_COMPRESS } from "./mod.ts";
 * const out = decompressBlock(ZIO_COMPRESS.LZ4, new Uint8Array([0, 0, 0, 2, 0x10, 0x78]), 1);
 * if (out[0] !== 0x78) throw new Error();
 * let refused = "";
 * try {
 *   decompressBlock(77, new Uint8Array(8), 512);
 * } catch (e) {
 *   if (e instanceof TypeError) refused = e.message;
 * }
 * if (!refused.includes("compression 77")) throw new Error(refused);
 * ```
 */
export function decompressBlock(compression: number, src: Uint8Array, lsize: number): Uint8Array {
  if (!Number.isSafeInteger(lsize) || lsize < 0) {
    throw new RangeError(`Cannot decompress a block: bad logical size ${lsize}`);
  }
  switch (compression) {
    case ZIO_COMPRESS.INHERIT:
    case ZIO_COMPRESS.OFF:
      if (src.length < lsize) {
        throw new RangeError(
          `Cannot read an uncompressed block: ${src.length} bytes stored, ${lsize} expected`,
        );
      }
      return src.slice(0, lsize);
    case ZIO_COMPRESS.EMPTY:
      return new Uint8Array(lsize);
    case ZIO_COMPRESS.LZJB:
      return lzjbDecompress(src, lsize);
    case ZIO_COMPRESS.ZLE:
      return zleDecompress(src, lsize, ZLE_DEFAULT_N);
    case ZIO_COMPRESS.LZ4:
      return lz4Decompress(src, lsize);
    case ZIO_COMPRESS.ZSTD:
      return zstdDecompress(src, lsize);
    default:
      if (compression >= ZIO_COMPRESS.GZIP_1 && compression <= ZIO_COMPRESS.GZIP_9) {
        return gzipDecompress(src, lsize);
      }
      throw new TypeError(
        `Cannot decompress a block compressed with ${compressionName(compression)}: ` +
          (compression === ZIO_COMPRESS.ON
            ? "'on' is a property value, not a codec a block can be stored with"
            : "this codec is not implemented"),
      );
  }
}
