/**
 * Block compressors for ZFS's codecs, each writing the format the matching decompressor of this
 * folder (and OpenZFS's) reads: LZ4 with OpenZFS's 4-byte big-endian length before the block,
 * LZJB, ZLE (run split 64) and gzip-N (a zlib stream, see `deflate.ts`). They are simple greedy
 * encoders: their output decodes to the input, but is not byte for byte what OpenZFS's own
 * compressors write, and may be larger.
 *
 * @module
 */

import { zlibCompress } from "./deflate.ts";
import { ZLE_DEFAULT_N } from "./zle.ts";

function read32(b: Uint8Array, i: number): number {
  return (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
}

function pushLength(out: number[], n: number): void {
  while (n >= 255) {
    out.push(255);
    n -= 255;
  }
  out.push(n);
}

/**
 * A raw LZ4 block (no length prefix) of `src`: greedy matching, with the format's end rules
 * (the last 5 bytes are literals, no match starts in the last 12).
 *
 * @example
 * ```ts
 * import { lz4CompressBlock } from "./encode.ts";
 * import { lz4DecompressBlock } from "./lz4.ts";
 * const data = new TextEncoder().encode("abcabcabcabcabcabcabcabcabcabc!");
 * const back = lz4DecompressBlock(lz4CompressBlock(data), data.length);
 * if (new TextDecoder().decode(back) !== "abcabcabcabcabcabcabcabcabcabc!") throw new Error();
 * ```
 */
export function lz4CompressBlock(src: Uint8Array): Uint8Array {
  const out: number[] = [];
  const n = src.length;
  const table = new Int32Array(1 << 14).fill(-1);
  const limit = n - 12;
  let anchor = 0;
  let i = 0;
  const literals = (token: number, from: number, to: number) => {
    const len = to - from;
    out.push((Math.min(len, 15) << 4) | token);
    if (len >= 15) pushLength(out, len - 15);
    for (let k = from; k < to; k++) out.push(src[k]!);
  };
  while (i < limit) {
    const v = read32(src, i);
    const h = Math.imul(v, 2654435761) >>> 18;
    const cand = table[h]!;
    table[h] = i;
    if (cand >= 0 && i - cand <= 65535 && read32(src, cand) === v) {
      let m = 4;
      const max = n - 5 - i;
      while (m < max && src[cand + m] === src[i + m]) m++;
      literals(Math.min(m - 4, 15), anchor, i);
      const dist = i - cand;
      out.push(dist & 0xff, dist >>> 8);
      if (m - 4 >= 15) pushLength(out, m - 4 - 15);
      i += m;
      anchor = i;
    } else {
      i++;
    }
  }
  literals(0, anchor, n);
  return Uint8Array.from(out);
}

/**
 * `src` as OpenZFS stores an LZ4 block: the block's length (4 bytes, big-endian), then the block.
 *
 * @example
 * ```ts
 * import { lz4Compress } from "./encode.ts";
 * import { lz4Decompress } from "./lz4.ts";
 * const data = new Uint8Array(4096).fill(7);
 * const z = lz4Compress(data);
 * if (z.length > 64 || lz4Decompress(z, 4096)[4095] !== 7) throw new Error();
 * ```
 */
export function lz4Compress(src: Uint8Array): Uint8Array {
  const block = lz4CompressBlock(src);
  const out = new Uint8Array(4 + block.length);
  new DataView(out.buffer).setUint32(0, block.length, false);
  out.set(block, 4);
  return out;
}

/**
 * `src` in LZJB: groups of eight items after a byte whose bits say which are matches (2 bytes:
 * 6 bits of length - 3, 10 bits of distance), the others literal bytes.
 *
 * @example
 * ```ts
 * import { lzjbCompress } from "./encode.ts";
 * import { lzjbDecompress } from "./lzjb.ts";
 * const data = new TextEncoder().encode("zfs zfs zfs zfs zfs zfs zfs zfs");
 * if (new TextDecoder().decode(lzjbDecompress(lzjbCompress(data), data.length)) !==
 *   "zfs zfs zfs zfs zfs zfs zfs zfs") throw new Error();
 * ```
 */
export function lzjbCompress(src: Uint8Array): Uint8Array {
  const out: number[] = [];
  const n = src.length;
  const table = new Int32Array(1 << 12).fill(-1);
  let mapAt = 0;
  let mask = 0x80;
  let i = 0;
  while (i < n) {
    mask <<= 1;
    if (mask === 0x100) {
      mapAt = out.length;
      out.push(0);
      mask = 1;
    }
    if (i + 3 <= n) {
      const h = Math.imul((src[i]! << 16) | (src[i + 1]! << 8) | src[i + 2]!, 2654435761) >>> 20;
      const cand = table[h]!;
      table[h] = i;
      const dist = i - cand;
      if (
        cand >= 0 && dist <= 1023 && src[cand] === src[i] && src[cand + 1] === src[i + 1] &&
        src[cand + 2] === src[i + 2]
      ) {
        let m = 3;
        const max = Math.min(66, n - i);
        while (m < max && src[cand + m] === src[i + m]) m++;
        out[mapAt]! |= mask;
        out.push(((m - 3) << 2) | (dist >>> 8), dist & 0xff);
        i += m;
        continue;
      }
    }
    out.push(src[i++]!);
  }
  return Uint8Array.from(out);
}

/**
 * `src` in ZLE with OpenZFS's run split of 64: a byte below 64 says that many literals plus one
 * follow, a byte from 64 says that many zeros less 63.
 *
 * @example
 * ```ts
 * import { zleCompress } from "./encode.ts";
 * import { zleDecompress } from "./zle.ts";
 * const data = new Uint8Array(1000);
 * data[500] = 9;
 * const z = zleCompress(data);
 * if (z.length > 16 || zleDecompress(z, 1000)[500] !== 9) throw new Error(String(z.length));
 * ```
 */
export function zleCompress(src: Uint8Array): Uint8Array {
  const n = ZLE_DEFAULT_N;
  const out: number[] = [];
  let i = 0;
  while (i < src.length) {
    const start = i;
    if (src[i] === 0) {
      while (i < src.length && src[i] === 0 && i - start < 256 - n) i++;
      out.push(i - start - 1 + n);
    } else {
      // Literals up to a pair of zeros (a single zero costs less as a literal).
      while (
        i < src.length && i - start < n &&
        !(src[i] === 0 && (i + 1 >= src.length || src[i + 1] === 0))
      ) i++;
      out.push(i - start - 1);
      for (let k = start; k < i; k++) out.push(src[k]!);
    }
  }
  return Uint8Array.from(out);
}

/**
 * Compresses a block with the codec named by its `enum zio_compress` number: LZJB (3), GZIP_1..9
 * (5..13), ZLE (14), LZ4 (15).
 *
 * @returns the stored bytes, or null for a codec without a compressor here (ZSTD, ...)
 * @example
 * ```ts
 * import { compressBlock } from "./encode.ts";
 * import { decompressBlock } from "./mod.ts";
 * const data = new Uint8Array(512).fill(1);
 * for (const c of [3, 5, 13, 14, 15]) {
 *   if (decompressBlock(c, compressBlock(c, data)!, 512)[511] !== 1) throw new Error(String(c));
 * }
 * if (compressBlock(16, data) !== null) throw new Error();
 * ```
 */
export function compressBlock(compression: number, src: Uint8Array): Uint8Array | null {
  if (compression === 3) return lzjbCompress(src);
  if (compression >= 5 && compression <= 13) return zlibCompress(src);
  if (compression === 14) return zleCompress(src);
  if (compression === 15) return lz4Compress(src);
  return null;
}
