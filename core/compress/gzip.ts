/**
 * ZFS's "gzip-N" codecs: a zlib stream (RFC 1950: a 2-byte header, raw deflate data per
 * RFC 1951, an Adler-32 of the output) that must expand to exactly the block's logical size
 * (OpenZFS `module/zfs/gzip.c` calls zlib's `uncompress` and requires that length).
 *
 * The inflater here is synchronous and pure: it writes into one buffer of the logical size and
 * refuses to write past it, checks every code table (over-subscribed or incomplete sets as zlib
 * does), every distance, every stored-block length, and the Adler-32. Bytes after the zlib
 * stream are padding and ignored, as zlib ignores them.
 *
 * @module
 */

function fail(message: string): never {
  throw new SyntaxError(`Cannot decompress the gzip block: ${message}`);
}

/** DEFLATE's length base table (RFC 1951, 3.2.5), shared with the compressor. */
export const LENGTH_BASE: readonly number[] = [
  3,
  4,
  5,
  6,
  7,
  8,
  9,
  10,
  11,
  13,
  15,
  17,
  19,
  23,
  27,
  31,
  35,
  43,
  51,
  59,
  67,
  83,
  99,
  115,
  131,
  163,
  195,
  227,
  258,
];
/** DEFLATE's length extra table (RFC 1951, 3.2.5), shared with the compressor. */
export const LENGTH_EXTRA: readonly number[] = [
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  1,
  1,
  1,
  1,
  2,
  2,
  2,
  2,
  3,
  3,
  3,
  3,
  4,
  4,
  4,
  4,
  5,
  5,
  5,
  5,
  0,
];
/** DEFLATE's dist base table (RFC 1951, 3.2.5), shared with the compressor. */
export const DIST_BASE: readonly number[] = [
  1,
  2,
  3,
  4,
  5,
  7,
  9,
  13,
  17,
  25,
  33,
  49,
  65,
  97,
  129,
  193,
  257,
  385,
  513,
  769,
  1025,
  1537,
  2049,
  3073,
  4097,
  6145,
  8193,
  12289,
  16385,
  24577,
];
/** DEFLATE's dist extra table (RFC 1951, 3.2.5), shared with the compressor. */
export const DIST_EXTRA: readonly number[] = [
  0,
  0,
  0,
  0,
  1,
  1,
  2,
  2,
  3,
  3,
  4,
  4,
  5,
  5,
  6,
  6,
  7,
  7,
  8,
  8,
  9,
  9,
  10,
  10,
  11,
  11,
  12,
  12,
  13,
  13,
];
/** The order in which the code-length code lengths are sent. */
const CODE_LENGTH_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];
const MAX_BITS = 15;

/** A canonical Huffman code: how many codes of each length, and the symbols in code order. */
interface Huffman {
  counts: Uint16Array;
  symbols: Uint16Array;
}

/** What a table codes: code lengths must form a complete set; the others may not. */
type TableKind = "code lengths" | "literal/length" | "distance";

function buildHuffman(lengths: Uint8Array, kind: TableKind): Huffman {
  const counts = new Uint16Array(MAX_BITS + 1);
  for (const len of lengths) counts[len]!++;
  counts[0] = 0;
  let left = 1;
  let longest = 0;
  for (let len = 1; len <= MAX_BITS; len++) {
    left = (left << 1) - counts[len]!;
    if (left < 0) fail(`the ${kind} code is over-subscribed`);
    if (counts[len]! > 0) longest = len;
  }
  // zlib accepts an incomplete set only when it is a single one-bit code (or no code at all),
  // and never for the code-length code.
  if (left > 0 && longest > 0 && (kind === "code lengths" || longest !== 1)) {
    fail(`the ${kind} code is incomplete`);
  }
  const offsets = new Uint16Array(MAX_BITS + 2);
  for (let len = 1; len <= MAX_BITS; len++) offsets[len + 1] = offsets[len]! + counts[len]!;
  const symbols = new Uint16Array(lengths.length);
  for (let sym = 0; sym < lengths.length; sym++) {
    const len = lengths[sym]!;
    if (len !== 0) symbols[offsets[len]!++] = sym;
  }
  return { counts, symbols };
}

let fixedTables: { lit: Huffman; dist: Huffman } | null = null;

function fixed(): { lit: Huffman; dist: Huffman } {
  if (fixedTables === null) {
    const lit = new Uint8Array(288);
    lit.fill(8, 0, 144).fill(9, 144, 256).fill(7, 256, 280).fill(8, 280, 288);
    // The fixed distance code has 32 five-bit codes of which 30 are used: build the complete
    // set and refuse symbols 30 and 31 when they are decoded.
    fixedTables = {
      lit: buildHuffman(lit, "literal/length"),
      dist: buildHuffman(new Uint8Array(32).fill(5), "distance"),
    };
  }
  return fixedTables;
}

/** Reads bits least-significant first, one byte at a time, never past the input. */
class BitReader {
  pos: number;
  #buf = 0;
  #count = 0;
  readonly #src: Uint8Array;

  constructor(src: Uint8Array, pos: number) {
    this.#src = src;
    this.pos = pos;
  }

  bits(n: number): number {
    while (this.#count < n) {
      if (this.pos >= this.#src.length) fail("the input ends inside the deflate data");
      this.#buf |= this.#src[this.pos++]! << this.#count;
      this.#count += 8;
    }
    const v = this.#buf & ((1 << n) - 1);
    this.#buf >>>= n;
    this.#count -= n;
    return v;
  }

  /** Drops the bits left in the current byte. */
  align(): void {
    this.#buf = 0;
    this.#count = 0;
  }

  decode(h: Huffman): number {
    let code = 0;
    let first = 0;
    let index = 0;
    for (let len = 1; len <= MAX_BITS; len++) {
      code |= this.bits(1);
      const count = h.counts[len]!;
      if (code - first < count) return h.symbols[index + code - first]!;
      index += count;
      first = (first + count) << 1;
      code <<= 1;
    }
    return fail("a Huffman code that is not in the table");
  }
}

function readDynamic(br: BitReader): { lit: Huffman; dist: Huffman } {
  const nlen = br.bits(5) + 257;
  const ndist = br.bits(5) + 1;
  const ncode = br.bits(4) + 4;
  if (nlen > 286 || ndist > 30) fail(`too many codes (${nlen} literal/length, ${ndist} distance)`);
  const clens = new Uint8Array(19);
  for (let i = 0; i < ncode; i++) clens[CODE_LENGTH_ORDER[i]!] = br.bits(3);
  const clcode = buildHuffman(clens, "code lengths");
  const lengths = new Uint8Array(nlen + ndist);
  let i = 0;
  while (i < nlen + ndist) {
    const sym = br.decode(clcode);
    if (sym < 16) {
      lengths[i++] = sym;
      continue;
    }
    let value = 0;
    let repeat: number;
    if (sym === 16) {
      if (i === 0) fail("a repeated code length with no length before it");
      value = lengths[i - 1]!;
      repeat = 3 + br.bits(2);
    } else if (sym === 17) {
      repeat = 3 + br.bits(3);
    } else {
      repeat = 11 + br.bits(7);
    }
    if (i + repeat > nlen + ndist) fail("code lengths run past the number of codes");
    lengths.fill(value, i, i + repeat);
    i += repeat;
  }
  if (lengths[256] === 0) fail("the literal/length code has no end-of-block code");
  return {
    lit: buildHuffman(lengths.subarray(0, nlen), "literal/length"),
    dist: buildHuffman(lengths.subarray(nlen), "distance"),
  };
}

/** Inflates raw deflate data from `pos` into `dst`; returns the input position after it. */
function inflateInto(src: Uint8Array, pos: number, dst: Uint8Array): number {
  const br = new BitReader(src, pos);
  let op = 0;
  let last = 0;
  while (last === 0) {
    last = br.bits(1);
    const type = br.bits(2);
    if (type === 0) {
      br.align();
      if (src.length - br.pos < 4) fail("the input ends inside a stored block header");
      const len = src[br.pos]! | (src[br.pos + 1]! << 8);
      const nlen = src[br.pos + 2]! | (src[br.pos + 3]! << 8);
      br.pos += 4;
      if (len !== (~nlen & 0xffff)) fail("a stored block's length and its complement disagree");
      if (len > src.length - br.pos) fail("a stored block runs past the end of the input");
      if (len > dst.length - op) fail(`the data expands past ${dst.length} bytes`);
      dst.set(src.subarray(br.pos, br.pos + len), op);
      br.pos += len;
      op += len;
      continue;
    }
    if (type === 3) fail("a block of the reserved type 3");
    const { lit, dist } = type === 1 ? fixed() : readDynamic(br);
    for (;;) {
      const sym = br.decode(lit);
      if (sym < 256) {
        if (op >= dst.length) fail(`the data expands past ${dst.length} bytes`);
        dst[op++] = sym;
        continue;
      }
      if (sym === 256) break;
      const li = sym - 257;
      if (li >= 29) fail(`the invalid length symbol ${sym}`);
      const length = LENGTH_BASE[li]! + br.bits(LENGTH_EXTRA[li]!);
      const di = br.decode(dist);
      if (di >= 30) fail(`the invalid distance symbol ${di}`);
      const distance = DIST_BASE[di]! + br.bits(DIST_EXTRA[di]!);
      if (distance > op) {
        fail(`a distance of ${distance} at output byte ${op} reaches too far back`);
      }
      if (length > dst.length - op) fail(`the data expands past ${dst.length} bytes`);
      let from = op - distance;
      for (const stop = op + length; op < stop;) dst[op++] = dst[from++]!;
    }
  }
  if (op !== dst.length) fail(`it expands to ${op} bytes, not ${dst.length}`);
  br.align();
  return br.pos;
}

/**
 * Adler-32 of `data` (RFC 1950).
 *
 * @example
 * ```ts
 * import { adler32 } from "./gzip.ts";
 * if (adler32(new TextEncoder().encode("Wikipedia")) !== 0x11e60398) throw new Error();
 * ```
 */
export function adler32(data: Uint8Array): number {
  let a = 1;
  let b = 0;
  let i = 0;
  while (i < data.length) {
    const stop = Math.min(data.length, i + 5552);
    for (; i < stop; i++) {
      a += data[i]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/**
 * Decompresses a ZFS gzip block (a zlib stream, any level) into exactly `dstSize` bytes.
 *
 * @param src the compressed block; bytes after the zlib stream are ignored
 * @param dstSize the logical size
 * @returns a new buffer of `dstSize` bytes
 * @throws {SyntaxError} on a bad header, bad deflate data, a wrong size or a wrong Adler-32
 * @throws {RangeError} when `dstSize` is not a non-negative safe integer
 * @example
 * ```ts
 * import { gzipDecompress } from "./gzip.ts";
 * const text = new TextEncoder().encode("hello hello hello hello");
 * const z = new Uint8Array(
 *   await new Response(new Blob([text]).stream().pipeThrough(new CompressionStream("deflate")))
 *     .arrayBuffer(),
 * );
 * const out = gzipDecompress(z, text.length);
 * if (new TextDecoder().decode(out) !== "hello hello hello hello") throw new Error();
 * ```
 */
export function gzipDecompress(src: Uint8Array, dstSize: number): Uint8Array {
  if (!Number.isSafeInteger(dstSize) || dstSize < 0) {
    throw new RangeError(`Cannot decompress the gzip block: bad output size ${dstSize}`);
  }
  if (src.length < 2) fail("the input is too short for a zlib header");
  const cmf = src[0]!;
  const flg = src[1]!;
  if ((cmf & 15) !== 8 || cmf >> 4 > 7) fail(`not a zlib deflate stream (method byte ${cmf})`);
  if (((cmf << 8) | flg) % 31 !== 0) fail("the zlib header check fails");
  if ((flg & 0x20) !== 0) fail("the zlib stream asks for a preset dictionary");
  const dst = new Uint8Array(dstSize);
  const pos = inflateInto(src, 2, dst);
  if (src.length - pos < 4) fail("the input ends before the Adler-32");
  const stored =
    ((src[pos]! << 24) | (src[pos + 1]! << 16) | (src[pos + 2]! << 8) | src[pos + 3]!) >>>
    0;
  const actual = adler32(dst);
  if (stored !== actual) {
    fail(
      `Adler-32 mismatch: the stream says ${stored.toString(16)}, the data sums to ` +
        actual.toString(16),
    );
  }
  return dst;
}
