/**
 * A small zlib (RFC 1950) compressor: one final deflate block with the fixed Huffman codes of
 * RFC 1951 and greedy LZ77 matching over a 32 KiB window. Its output is valid input for any
 * inflater (zlib's `uncompress`, the inflater of `gzip.ts`), though not the bytes zlib itself
 * would write. It is meant for small buffers (resume tokens, test data); it is not fast.
 *
 * @module
 */

import { adler32, DIST_BASE, DIST_EXTRA, LENGTH_BASE, LENGTH_EXTRA } from "./gzip.ts";

const WINDOW = 32768;
const MIN_MATCH = 3;
const MAX_MATCH = 258;
const MAX_CHAIN = 64;
const HASH_BITS = 15;

/** Writes bits least significant first, as deflate packs them. */
class BitWriter {
  #out: number[] = [];
  #acc = 0;
  #n = 0;

  bits(value: number, count: number): void {
    for (let i = 0; i < count; i++) {
      this.#acc |= ((value >>> i) & 1) << this.#n;
      if (++this.#n === 8) {
        this.#out.push(this.#acc);
        this.#acc = 0;
        this.#n = 0;
      }
    }
  }

  /** A Huffman code: its bits go most significant first. */
  code(code: number, length: number): void {
    for (let i = length - 1; i >= 0; i--) this.bits((code >>> i) & 1, 1);
  }

  bytes(): number[] {
    if (this.#n > 0) this.#out.push(this.#acc);
    this.#acc = 0;
    this.#n = 0;
    return this.#out;
  }
}

function literal(w: BitWriter, sym: number): void {
  if (sym < 144) w.code(0x30 + sym, 8);
  else if (sym < 256) w.code(0x190 + sym - 144, 9);
  else if (sym < 280) w.code(sym - 256, 7);
  else w.code(0xc0 + sym - 280, 8);
}

function match(w: BitWriter, length: number, distance: number): void {
  let li = LENGTH_BASE.length - 1;
  while (LENGTH_BASE[li]! > length) li--;
  literal(w, 257 + li);
  w.bits(length - LENGTH_BASE[li]!, LENGTH_EXTRA[li]!);
  let di = DIST_BASE.length - 1;
  while (DIST_BASE[di]! > distance) di--;
  w.code(di, 5);
  w.bits(distance - DIST_BASE[di]!, DIST_EXTRA[di]!);
}

function hash3(data: Uint8Array, i: number): number {
  const v = (data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!;
  return (Math.imul(v, 0x9e3779b1) >>> (32 - HASH_BITS)) & ((1 << HASH_BITS) - 1);
}

/**
 * Compresses `data` as one zlib stream (header `78 9c`, fixed-Huffman deflate, Adler-32).
 *
 * @param data the bytes to compress
 * @returns the zlib stream
 * @example
 * ```ts
 * import { zlibCompress } from "./deflate.ts";
 * import { gzipDecompress } from "./gzip.ts";
 * const text = new TextEncoder().encode("resume resume resume resume token");
 * const z = zlibCompress(text);
 * const back = new TextDecoder().decode(gzipDecompress(z, text.length));
 * if (back !== "resume resume resume resume token" || z.length >= text.length + 6) {
 *   throw new Error(back);
 * }
 * ```
 */
export function zlibCompress(data: Uint8Array): Uint8Array {
  const w = new BitWriter();
  w.bits(1, 1); // BFINAL
  w.bits(1, 2); // BTYPE 01: fixed Huffman codes
  const head = new Int32Array(1 << HASH_BITS).fill(-1);
  const prev = new Int32Array(WINDOW).fill(-1);
  const insert = (i: number) => {
    const h = hash3(data, i);
    prev[i % WINDOW] = head[h]!;
    head[h] = i;
  };
  let i = 0;
  while (i < data.length) {
    let bestLen = 0;
    let bestDist = 0;
    if (i + MIN_MATCH <= data.length) {
      const limit = Math.min(MAX_MATCH, data.length - i);
      let cand = head[hash3(data, i)]!;
      for (let chain = 0; cand >= 0 && i - cand <= WINDOW && chain < MAX_CHAIN; chain++) {
        let n = 0;
        while (n < limit && data[cand + n] === data[i + n]) n++;
        if (n > bestLen) {
          bestLen = n;
          bestDist = i - cand;
          if (n === limit) break;
        }
        const next = prev[cand % WINDOW]!;
        if (next >= cand) break;
        cand = next;
      }
    }
    if (bestLen >= MIN_MATCH) {
      match(w, bestLen, bestDist);
      for (let k = 0; k < bestLen; k++, i++) {
        if (i + MIN_MATCH <= data.length) insert(i);
      }
    } else {
      literal(w, data[i]!);
      if (i + MIN_MATCH <= data.length) insert(i);
      i++;
    }
  }
  literal(w, 256); // end of block
  const body = w.bytes();
  const out = new Uint8Array(2 + body.length + 4);
  out[0] = 0x78;
  out[1] = 0x9c;
  out.set(body, 2);
  const a = adler32(data);
  out[out.length - 4] = a >>> 24;
  out[out.length - 3] = (a >>> 16) & 0xff;
  out[out.length - 2] = (a >>> 8) & 0xff;
  out[out.length - 1] = a & 0xff;
  return out;
}
