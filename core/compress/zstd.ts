/**
 * Zstandard decompression (RFC 8878), and the header OpenZFS puts in front of each zstd block.
 *
 * A Zstandard frame is a header (window, optional content size, optional dictionary id, whether
 * a checksum follows), then blocks: raw, RLE, or compressed. A compressed block holds literals
 * (raw, RLE, or Huffman-coded in one or four streams, with a new or the previous tree) and
 * sequences (literal length, match length, offset), whose codes are FSE-coded with predefined,
 * RLE, described or repeated tables, and whose offsets may name one of three recent offsets.
 *
 * OpenZFS (`module/zstd/zfs_zstd.c`, `include/sys/zstd/zstd.h`) stores a zstd block as an
 * 8-byte header, then one frame in the "magicless" format (the frame without its 4-byte magic
 * number; no content size and no checksum in the frames OpenZFS writes), then padding up to
 * the allocated size:
 *
 * | bytes | field                                                                       |
 * | ----- | --------------------------------------------------------------------------- |
 * | 0-3   | `c_len`: big-endian length of the frame; `c_len + 8` must not exceed psize    |
 * | 4-7   | big-endian word: the zstd library version (24 bits) and the level (8 bits)  |
 *
 * OpenZFS now writes the version/level word as the level in byte 4 and the version in bytes
 * 5-7 (big-endian) on every machine. Older releases kept the two in a C bitfield, which
 * big-endian machines laid out as the version in bytes 4-6 and the level in byte 7. OpenZFS
 * tells the layouts apart by where the version's zero high byte sits, and refuses a level
 * outside its `enum zio_zstd_levels` (1-19 and the fast levels 103-123) as a sign of
 * corruption; so does this module. The block must expand to exactly the logical size.
 *
 * Input is treated as hostile: every length and offset is bounded before use, the output never
 * grows past its limit (the logical size of a ZFS block), tables are fixed-size and reused, and
 * every loop is bounded by the input or the output. Malformed data throws `SyntaxError`, data
 * that would pass its size limit throws `RangeError`, and dictionaries (which OpenZFS never
 * uses) throw `TypeError`.
 *
 * @module
 */

import { xxhash64Low32 } from "./xxhash64.ts";

const MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE = 0x184d2a50;
/** The largest a block may be, compressed or not. */
const BLOCK_SIZE_MAX = 131072;
/** The largest window the reference decoder accepts (64-bit builds). */
const WINDOW_LOG_MAX = 31;
/** OpenZFS's header before the frame. */
const ZFS_HEADER = 8;
/** The limit `zstdDecompressFrames` puts on its output unless told otherwise. */
const DEFAULT_MAX_SIZE = 1 << 30;

const LL_MAX_LOG = 9, ML_MAX_LOG = 9, OF_MAX_LOG = 8, HUF_WEIGHT_MAX_LOG = 6;
const LL_MAX_SYMBOL = 35, ML_MAX_SYMBOL = 52, OF_MAX_SYMBOL = 31;
const HUF_MAX_BITS = 11;

function fail(message: string): never {
  throw new SyntaxError(`Cannot decompress the zstd data: ${message}`);
}

function tooLarge(message: string): never {
  throw new RangeError(`Cannot decompress the zstd data: ${message}`);
}

// ------------------------------------------------------------------------------------------
// Code tables (RFC 8878, section 3.1.1.3.2.1.1)
// ------------------------------------------------------------------------------------------

const LL_BASE = new Int32Array(36);
const LL_BITS = new Uint8Array(36);
const ML_BASE = new Int32Array(53);
const ML_BITS = new Uint8Array(53);
{
  const llExtra = [1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
  let base = 16;
  for (let c = 0; c < 36; c++) {
    if (c < 16) {
      LL_BASE[c] = c;
    } else {
      LL_BASE[c] = base;
      LL_BITS[c] = llExtra[c - 16]!;
      // Each code's range starts where the previous one's ends.
      base += 1 << LL_BITS[c]!;
    }
  }
  const mlExtra = [1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
  base = 35;
  for (let c = 0; c < 53; c++) {
    if (c < 32) {
      ML_BASE[c] = c + 3;
    } else {
      ML_BASE[c] = base;
      ML_BITS[c] = mlExtra[c - 32]!;
      base += 1 << ML_BITS[c]!;
    }
  }
}

// ------------------------------------------------------------------------------------------
// FSE tables
// ------------------------------------------------------------------------------------------

/** A decoding table: per state the symbol, the bits to read and the base of the next state. */
class FseTable {
  log = 0;
  readonly symbol: Uint8Array;
  readonly bits: Uint8Array;
  readonly base: Uint16Array;
  constructor(maxLog: number) {
    const size = 1 << maxLog;
    this.symbol = new Uint8Array(size);
    this.bits = new Uint8Array(size);
    this.base = new Uint16Array(size);
  }
}

/** Scratch for building tables: the next state number of each symbol. */
const nextState = new Uint16Array(256);

/** Fills `t` from a normalized distribution (`-1` means "less than 1"), RFC 8878 4.1.1. */
function buildFse(t: FseTable, norm: Int16Array, symbols: number, log: number): void {
  const size = 1 << log;
  const mask = size - 1;
  let high = size - 1;
  for (let s = 0; s < symbols; s++) {
    if (norm[s] === -1) {
      t.symbol[high--] = s;
      nextState[s] = 1;
    } else {
      nextState[s] = norm[s]!;
    }
  }
  const step = (size >> 1) + (size >> 3) + 3;
  let pos = 0;
  for (let s = 0; s < symbols; s++) {
    const n = norm[s]!;
    for (let i = 0; i < n; i++) {
      t.symbol[pos] = s;
      do pos = (pos + step) & mask; while (pos > high);
    }
  }
  if (pos !== 0) fail("an FSE distribution does not fill its table");
  for (let u = 0; u < size; u++) {
    const s = t.symbol[u]!;
    const x = nextState[s]!;
    nextState[s] = x + 1;
    const nb = log - (31 - Math.clz32(x));
    t.bits[u] = nb;
    t.base[u] = (x << nb) - size;
  }
  t.log = log;
}

/** Makes a one-state table that always yields `symbol` and reads nothing (RLE mode). */
function buildRle(t: FseTable, symbol: number): void {
  t.symbol[0] = symbol;
  t.bits[0] = 0;
  t.base[0] = 0;
  t.log = 0;
}

function predefined(dist: number[], log: number): FseTable {
  const t = new FseTable(log);
  buildFse(t, Int16Array.from(dist), dist.length, log);
  return t;
}

// deno-fmt-ignore
const LL_PREDEFINED = predefined([
  4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1,
  -1, -1, -1, -1,
], 6);
// deno-fmt-ignore
const ML_PREDEFINED = predefined([
  1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1,
], 6);
// deno-fmt-ignore
const OF_PREDEFINED = predefined([
  1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1,
], 5);

const normScratch = new Int16Array(256);

/**
 * Reads an FSE table description (a forward little-endian bitstream) at `start` and builds
 * `t` from it.
 *
 * @returns the position after the description (it ends on a byte boundary)
 */
function readFse(
  buf: Uint8Array,
  start: number,
  end: number,
  t: FseTable,
  maxLog: number,
  maxSymbol: number,
  what: string,
): number {
  if (start >= end) fail(`the ${what} table description is missing`);
  const limit = end * 8;
  let bp = start * 8;
  // `buf` has zero padding after `end`, so a 4-byte read never leaves it; the position is
  // checked against `limit` after each field.
  const peek = (): number => {
    const i = bp >>> 3;
    return ((buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24)) >>>
      (bp & 7)) >>> 0;
  };
  const log = (peek() & 15) + 5;
  if (log > maxLog) fail(`the ${what} table has accuracy log ${log}, more than ${maxLog}`);
  bp += 4;
  const norm = normScratch;
  let remaining = (1 << log) + 1;
  let threshold = 1 << log;
  let nbBits = log + 1;
  let s = 0;
  while (remaining > 1) {
    if (s > maxSymbol) fail(`the ${what} table describes more than ${maxSymbol + 1} symbols`);
    const v = peek();
    const max = 2 * threshold - 1 - remaining;
    let count: number;
    if ((v & (threshold - 1)) < max) {
      count = v & (threshold - 1);
      bp += nbBits - 1;
    } else {
      count = v & (2 * threshold - 1);
      if (count >= threshold) count -= max;
      bp += nbBits;
    }
    count--;
    remaining -= count < 0 ? -count : count;
    if (remaining < 1) fail(`the ${what} table's probabilities add up to more than its size`);
    norm[s++] = count;
    if (count === 0) {
      for (;;) {
        const repeat = peek() & 3;
        bp += 2;
        if (bp > limit) break;
        if (s + repeat > maxSymbol + 1) {
          fail(`the ${what} table describes more than ${maxSymbol + 1} symbols`);
        }
        for (let k = 0; k < repeat; k++) norm[s++] = 0;
        if (repeat !== 3) break;
      }
    }
    while (remaining < threshold) {
      nbBits--;
      threshold >>= 1;
    }
    if (bp > limit) fail(`the ${what} table description runs past its block`);
  }
  if (remaining !== 1) fail(`the ${what} table's probabilities do not add up to its size`);
  buildFse(t, norm, s, log);
  return (bp + 7) >>> 3;
}

// ------------------------------------------------------------------------------------------
// The backward bitstream (RFC 8878, section 4.1: read from the end, highest bits first)
// ------------------------------------------------------------------------------------------

/**
 * Bits `[p, p + n)` of a backward bitstream whose first byte is at `start` (`n` at most 25),
 * as one little-endian 32-bit load; bits before the stream's start (`p < 0`) read as zero.
 * The view must have 3 readable bytes past the stream (the input is padded).
 */
function bitsAt(view: DataView, start: number, p: number, n: number): number {
  if (p >= 0) return (view.getUint32(start + (p >>> 3), true) >>> (p & 7)) & ((1 << n) - 1);
  const top = p + n;
  if (top <= 0) return 0;
  return (view.getUint32(start, true) & ((1 << top) - 1)) << -p;
}

/** A backward bitstream (RFC 8878, section 4.1: read from the end, highest bits first). */
class BackwardBits {
  view: DataView = new DataView(new ArrayBuffer(4));
  /** First byte of the stream. */
  start = 0;
  /** Bits not yet read, counted from `start`; below zero once the stream is overread. */
  pos = 0;

  /** Starts reading the stream `buf[start, end)` through `view` (a view of all of `buf`). */
  init(buf: Uint8Array, view: DataView, start: number, end: number, what: string): void {
    if (end <= start) fail(`the ${what} bitstream is empty`);
    const last = buf[end - 1]!;
    if (last === 0) fail(`the ${what} bitstream's last byte is zero (no end mark)`);
    this.view = view;
    this.start = start;
    this.pos = (end - start - 1) * 8 + (31 - Math.clz32(last));
  }

  /** Reads `n` bits (0..25). */
  read(n: number): number {
    this.pos -= n;
    return bitsAt(this.view, this.start, this.pos, n);
  }
}

// ------------------------------------------------------------------------------------------
// Huffman
// ------------------------------------------------------------------------------------------

const weights = new Uint8Array(256);
const rankStart = new Uint32Array(HUF_MAX_BITS + 2);

// ------------------------------------------------------------------------------------------
// The decoder
// ------------------------------------------------------------------------------------------

/** Per-call state; module-level scratch (tables, literal buffer) is shared between calls. */
class Decoder {
  /** The input, with zero padding so that 4-byte reads never leave it. */
  buf: Uint8Array;
  /** A view of all of `buf`, for 32-bit reads. */
  view: DataView;
  out: Uint8Array;
  op = 0;
  /** The most bytes the output may hold. */
  readonly limit: number;
  readonly growable: boolean;
  readonly limitName: string;

  // Frame state
  frameStart = 0;
  window = 0;
  blockMax = 0;
  rep1 = 1;
  rep2 = 4;
  rep3 = 8;
  huffLog = 0; // 0: no tree yet in this frame
  ll: FseTable | null = null;
  of: FseTable | null = null;
  ml: FseTable | null = null;

  // Literals of the current block: lit[litPos, litEnd)
  lit: Uint8Array;
  litPos = 0;
  litEnd = 0;

  readonly bits = new BackwardBits();

  constructor(buf: Uint8Array, out: Uint8Array, limit: number, growable: boolean, name: string) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.out = out;
    this.limit = limit;
    this.growable = growable;
    this.limitName = name;
    this.lit = scratch.literals;
  }

  /** Makes room for `n` more output bytes, or throws. */
  reserve(n: number): void {
    const need = this.op + n;
    if (need <= this.out.length) return;
    if (need > this.limit) {
      tooLarge(`the output would pass ${this.limitName} (${this.limit} bytes)`);
    }
    if (!this.growable) tooLarge(`the output would pass its ${this.out.length} bytes`);
    const size = Math.min(this.limit, Math.max(need, this.out.length * 2, 65536));
    const grown = new Uint8Array(size);
    grown.set(this.out.subarray(0, this.op));
    this.out = grown;
  }

  /** Decodes one frame whose header (after any magic number) starts at `pos`. */
  frame(pos: number, end: number): number {
    const buf = this.buf;
    if (pos >= end) fail("the input ends before a frame header");
    const fhd = buf[pos++]!;
    const fcsFlag = fhd >>> 6;
    const single = (fhd & 0x20) !== 0;
    if (fhd & 0x08) fail("the frame header's reserved bit is set");
    const checksum = (fhd & 0x04) !== 0;
    const dictFlag = fhd & 3;
    const dictBytes = dictFlag === 3 ? 4 : dictFlag;
    const fcsBytes = fcsFlag === 0 ? (single ? 1 : 0) : 1 << fcsFlag;
    if ((single ? 0 : 1) + dictBytes + fcsBytes > end - pos) {
      fail("the input ends inside a frame header");
    }
    let window = 0;
    if (!single) {
      const wd = buf[pos++]!;
      const log = 10 + (wd >>> 3);
      if (log > WINDOW_LOG_MAX) {
        tooLarge(`the frame's window is 2^${log} bytes, more than 2^${WINDOW_LOG_MAX}`);
      }
      const base = 2 ** log;
      window = base + (base / 8) * (wd & 7);
    }
    let dictId = 0;
    for (let k = 0; k < dictBytes; k++) dictId += buf[pos++]! * 2 ** (8 * k);
    if (dictId !== 0) {
      throw new TypeError(
        `Cannot decompress the zstd data: the frame needs dictionary ${dictId}; ` +
          "dictionaries are not supported",
      );
    }
    let contentSize = -1;
    if (fcsBytes > 0) {
      contentSize = 0;
      for (let k = 0; k < fcsBytes; k++) contentSize += buf[pos++]! * 2 ** (8 * k);
      if (fcsBytes === 2) contentSize += 256;
    }
    if (single) window = contentSize;
    if (contentSize > this.limit - this.op) {
      tooLarge(
        `the frame says it holds ${contentSize} bytes, more than ${this.limitName} allows ` +
          `(${this.limit - this.op} left)`,
      );
    }
    if (contentSize > 0 && this.growable) this.reserve(Math.min(contentSize, reserveCap(end)));

    this.frameStart = this.op;
    this.window = window;
    this.blockMax = Math.min(window, BLOCK_SIZE_MAX);
    this.rep1 = 1;
    this.rep2 = 4;
    this.rep3 = 8;
    this.huffLog = 0;
    this.ll = this.of = this.ml = null;

    for (;;) {
      if (end - pos < 3) fail("the input ends inside a block header");
      const bh = buf[pos]! | (buf[pos + 1]! << 8) | (buf[pos + 2]! << 16);
      pos += 3;
      const last = bh & 1;
      const type = (bh >>> 1) & 3;
      const size = bh >>> 3;
      if (type === 3) fail(`a block at input byte ${pos - 3} has the reserved type 3`);
      if (size > this.blockMax) {
        fail(`a block of ${size} bytes exceeds the frame's block size limit of ${this.blockMax}`);
      }
      if (type === 1) {
        if (pos >= end) fail("the input ends inside an RLE block");
        this.reserve(size);
        this.out.fill(buf[pos]!, this.op, this.op + size);
        this.op += size;
        pos += 1;
      } else {
        if (size > end - pos) {
          fail(`a block of ${size} bytes runs past the end of the input (${end - pos} left)`);
        }
        if (type === 0) {
          this.reserve(size);
          this.out.set(buf.subarray(pos, pos + size), this.op);
          this.op += size;
        } else {
          this.compressedBlock(pos, pos + size);
        }
        pos += size;
      }
      if (last) break;
    }
    const produced = this.op - this.frameStart;
    if (contentSize >= 0 && produced !== contentSize) {
      fail(`the frame says it holds ${contentSize} bytes but expands to ${produced}`);
    }
    if (checksum) {
      if (end - pos < 4) fail("the input ends inside the frame's checksum");
      const want = (buf[pos]! | (buf[pos + 1]! << 8) | (buf[pos + 2]! << 16) |
        (buf[pos + 3]! << 24)) >>> 0;
      const got = xxhash64Low32(this.out.subarray(this.frameStart, this.op));
      if (want !== got) {
        fail(
          `content checksum mismatch: the frame says ${want.toString(16).padStart(8, "0")}, ` +
            `its ${produced} bytes hash to ${got.toString(16).padStart(8, "0")}`,
        );
      }
      pos += 4;
    }
    return pos;
  }

  compressedBlock(start: number, end: number): void {
    const blockStart = this.op;
    const pos = this.literals(start, end);
    this.sequences(pos, end, blockStart);
  }

  /** Decodes the literals section; returns where the sequences section starts. */
  literals(start: number, end: number): number {
    const buf = this.buf;
    const b0 = buf[start]!;
    const type = b0 & 3;
    const format = (b0 >>> 2) & 3;
    if (type < 2) {
      let size: number, header: number;
      if ((format & 1) === 0) {
        size = b0 >>> 3;
        header = 1;
      } else if (format === 1) {
        size = (b0 >>> 4) | (buf[start + 1]! << 4);
        header = 2;
      } else {
        size = (b0 >>> 4) | (buf[start + 1]! << 4) | (buf[start + 2]! << 12);
        header = 3;
      }
      if (header > end - start) fail("a block ends inside its literals header");
      if (size > this.blockMax) {
        fail(`${size} literals exceed the block size limit of ${this.blockMax}`);
      }
      const pos = start + header;
      if (type === 0) {
        if (size > end - pos) fail(`${size} raw literals run past the end of their block`);
        this.lit = buf;
        this.litPos = pos;
        this.litEnd = pos + size;
        return pos + size;
      }
      if (pos >= end) fail("a block ends before its RLE literal");
      this.lit = scratch.literals;
      this.lit.fill(buf[pos]!, 0, size);
      this.litPos = 0;
      this.litEnd = size;
      return pos + 1;
    }
    let regen: number, csize: number, header: number;
    if (format < 2) {
      const h = b0 | (buf[start + 1]! << 8) | (buf[start + 2]! << 16);
      regen = (h >>> 4) & 0x3ff;
      csize = (h >>> 14) & 0x3ff;
      header = 3;
    } else if (format === 2) {
      const h =
        (b0 | (buf[start + 1]! << 8) | (buf[start + 2]! << 16) | (buf[start + 3]! << 24)) >>>
        0;
      regen = (h >>> 4) & 0x3fff;
      csize = h >>> 18;
      header = 4;
    } else {
      const h =
        (b0 | (buf[start + 1]! << 8) | (buf[start + 2]! << 16) | (buf[start + 3]! << 24)) >>>
        0;
      regen = (h >>> 4) & 0x3ffff;
      csize = (h >>> 22) | (buf[start + 4]! << 10);
      header = 5;
    }
    if (header > end - start) fail("a block ends inside its literals header");
    if (regen > this.blockMax) {
      fail(`${regen} literals exceed the block size limit of ${this.blockMax}`);
    }
    let pos = start + header;
    if (csize > end - pos) fail(`${csize} bytes of compressed literals run past their block`);
    const litEnd = pos + csize;
    if (type === 2) {
      pos = this.huffmanTree(pos, litEnd);
    } else if (this.huffLog === 0) {
      fail("a block reuses the previous Huffman tree but the frame has none yet");
    }
    const out = scratch.literals;
    if (format === 0) {
      this.huffmanStream(pos, litEnd, out, 0, regen);
    } else {
      if (litEnd - pos < 10) fail("four Huffman streams do not fit their literals section");
      const s1 = buf[pos]! | (buf[pos + 1]! << 8);
      const s2 = buf[pos + 2]! | (buf[pos + 3]! << 8);
      const s3 = buf[pos + 4]! | (buf[pos + 5]! << 8);
      const a = pos + 6;
      const b = a + s1, c = b + s2, d = c + s3;
      if (d >= litEnd) fail("the Huffman jump table points past the literals section");
      const seg = (regen + 3) >>> 2;
      if (3 * seg > regen) fail(`${regen} literals are too few for four Huffman streams`);
      this.huffmanStream(a, b, out, 0, seg);
      this.huffmanStream(b, c, out, seg, seg);
      this.huffmanStream(c, d, out, 2 * seg, seg);
      this.huffmanStream(d, litEnd, out, 3 * seg, regen - 3 * seg);
    }
    this.lit = out;
    this.litPos = 0;
    this.litEnd = regen;
    return litEnd;
  }

  /** Reads a Huffman tree description into the decoding table; returns the position after it. */
  huffmanTree(start: number, end: number): number {
    const buf = this.buf;
    if (start >= end) fail("the literals section ends before its Huffman tree");
    const hb = buf[start]!;
    let n: number; // weights read (the last symbol's is implied)
    let pos: number;
    if (hb >= 128) {
      n = hb - 127;
      const bytes = (n + 1) >>> 1;
      if (bytes > end - start - 1) fail("the Huffman weights run past the literals section");
      for (let i = 0; i < n; i++) {
        const byte = buf[start + 1 + (i >>> 1)]!;
        weights[i] = i & 1 ? byte & 15 : byte >>> 4;
      }
      pos = start + 1 + bytes;
    } else {
      if (hb > end - start - 1) fail("the Huffman weights run past the literals section");
      const wend = start + 1 + hb;
      const t = scratch.weightTable;
      const from = readFse(buf, start + 1, wend, t, HUF_WEIGHT_MAX_LOG, 255, "Huffman weight");
      if (from >= wend) fail("the Huffman weights have a table but no bitstream");
      const bits = this.bits;
      bits.init(buf, this.view, from, wend, "Huffman weight");
      let s1 = bits.read(t.log);
      let s2 = bits.read(t.log);
      // The two states take turns; once a state update overreads the stream, the other
      // state's symbol is the last one.
      n = 0;
      for (let turn = 0;; turn ^= 1) {
        if (n >= 255) fail("more than 255 Huffman weights");
        const state = turn === 0 ? s1 : s2;
        weights[n++] = t.symbol[state]!;
        const next = t.base[state]! + bits.read(t.bits[state]!);
        if (turn === 0) s1 = next;
        else s2 = next;
        if (bits.pos < 0) {
          if (n >= 255) fail("more than 255 Huffman weights");
          weights[n++] = t.symbol[turn === 0 ? s2 : s1]!;
          break;
        }
      }
      pos = wend;
    }
    // The implied last weight completes the sum of 2^(w-1) to a power of two.
    let total = 0;
    for (let i = 0; i < n; i++) {
      const w = weights[i]!;
      if (w > HUF_MAX_BITS) fail(`a Huffman weight of ${w} is more than ${HUF_MAX_BITS}`);
      if (w > 0) total += 1 << (w - 1);
    }
    if (total === 0) fail("every Huffman weight is zero");
    const maxBits = 32 - Math.clz32(total);
    if (maxBits > HUF_MAX_BITS) fail(`the Huffman tree is ${maxBits} bits deep, more than 11`);
    const rest = (1 << maxBits) - total;
    if (rest & (rest - 1)) fail("the Huffman weights cannot be completed to a power of two");
    weights[n] = 32 - Math.clz32(rest);
    const symbols = n + 1;
    // Count, check, and lay out: the lowest weights take the lowest table entries.
    rankStart.fill(0);
    let present = 0;
    for (let i = 0; i < symbols; i++) {
      const w = weights[i]!;
      if (w > 0) {
        rankStart[w + 1]! += 1 << (w - 1);
        present++;
      }
    }
    if (present < 2) fail("a Huffman tree needs at least two symbols");
    if (rankStart[2] === 0) fail("no Huffman symbol has weight 1");
    for (let w = 1; w <= maxBits; w++) rankStart[w + 1]! += rankStart[w]!;
    const table = scratch.huffman;
    for (let s = 0; s < symbols; s++) {
      const w = weights[s]!;
      if (w === 0) continue;
      const entry = s | ((maxBits + 1 - w) << 8);
      const from = rankStart[w]!;
      const to = from + (1 << (w - 1));
      table.fill(entry, from, to);
      rankStart[w] = to;
    }
    this.huffLog = maxBits;
    return pos;
  }

  /** Decodes `count` literals from the Huffman stream `buf[start, end)` into `out` at `o`. */
  huffmanStream(start: number, end: number, out: Uint8Array, o: number, count: number): void {
    const buf = this.buf;
    if (end <= start) fail("a Huffman stream is empty");
    const lastByte = buf[end - 1]!;
    if (lastByte === 0) fail("a Huffman stream's last byte is zero (no end mark)");
    let p = (end - start - 1) * 8 + (31 - Math.clz32(lastByte));
    const log = this.huffLog;
    const mask = (1 << log) - 1;
    const table = scratch.huffman;
    const view = this.view;
    const stop = o + count;
    while (o < stop) {
      const q = p - log;
      let v: number;
      if (q >= 0) {
        v = (view.getUint32(start + (q >>> 3), true) >>> (q & 7)) & mask;
      } else if (p > 0) {
        v = ((buf[start]! | (buf[start + 1]! << 8)) & ((1 << p) - 1)) << -q;
      } else {
        v = 0;
      }
      const e = table[v]!;
      out[o++] = e;
      p -= e >>> 8;
    }
    if (p !== 0) {
      fail(
        p > 0
          ? `a Huffman stream has ${p} bits left after its ${count} literals`
          : `a Huffman stream ends before its ${count} literals`,
      );
    }
  }

  /** Picks the table for one symbol type; returns the position after its description. */
  table(
    mode: number,
    pos: number,
    end: number,
    current: FseTable | null,
    own: FseTable,
    fixed: FseTable,
    maxLog: number,
    maxSymbol: number,
    what: string,
  ): [FseTable, number] {
    switch (mode) {
      case 0:
        return [fixed, pos];
      case 1: {
        if (pos >= end) fail(`the block ends before its ${what} RLE symbol`);
        const s = this.buf[pos]!;
        if (s > maxSymbol) fail(`the ${what} RLE symbol ${s} is more than ${maxSymbol}`);
        buildRle(own, s);
        return [own, pos + 1];
      }
      case 2:
        return [own, readFse(this.buf, pos, end, own, maxLog, maxSymbol, what)];
      default:
        if (current === null) {
          fail(`the block repeats the previous ${what} table but the frame has none yet`);
        }
        return [current, pos];
    }
  }

  /** Decodes and executes the sequences section, then appends the literals left over. */
  sequences(start: number, end: number, blockStart: number): void {
    const buf = this.buf;
    if (start >= end) fail("a compressed block has no sequences section");
    let pos = start;
    const b0 = buf[pos++]!;
    let count: number;
    if (b0 < 128) {
      count = b0;
    } else if (b0 < 255) {
      if (pos >= end) fail("the block ends inside its sequence count");
      count = ((b0 - 128) << 8) + buf[pos++]!;
    } else {
      if (end - pos < 2) fail("the block ends inside its sequence count");
      count = buf[pos]! + (buf[pos + 1]! << 8) + 0x7f00;
      pos += 2;
    }
    const blockEnd = Math.min(blockStart + this.blockMax, this.limit);
    if (count === 0) {
      if (pos !== end) fail(`a block without sequences has ${end - pos} bytes after its literals`);
      this.flushLiterals(blockEnd, blockStart);
      return;
    }
    if (pos >= end) fail("the block ends before its compression modes");
    const modes = buf[pos++]!;
    if (modes & 3) fail("the sequence compression modes' reserved bits are set");
    let ll: FseTable, of: FseTable, ml: FseTable;
    [ll, pos] = this.table(
      modes >>> 6,
      pos,
      end,
      this.ll,
      scratch.ll,
      LL_PREDEFINED,
      LL_MAX_LOG,
      LL_MAX_SYMBOL,
      "literal length",
    );
    [of, pos] = this.table(
      (modes >>> 4) & 3,
      pos,
      end,
      this.of,
      scratch.of,
      OF_PREDEFINED,
      OF_MAX_LOG,
      OF_MAX_SYMBOL,
      "offset",
    );
    [ml, pos] = this.table(
      (modes >>> 2) & 3,
      pos,
      end,
      this.ml,
      scratch.ml,
      ML_PREDEFINED,
      ML_MAX_LOG,
      ML_MAX_SYMBOL,
      "match length",
    );
    this.ll = ll;
    this.of = of;
    this.ml = ml;

    const bits = this.bits;
    bits.init(buf, this.view, pos, end, "sequence");
    let llState = bits.read(ll.log);
    let ofState = bits.read(of.log);
    let mlState = bits.read(ml.log);
    const llSym = ll.symbol, llNb = ll.bits, llBase = ll.base;
    const ofSym = of.symbol, ofNb = of.bits, ofBase = of.base;
    const mlSym = ml.symbol, mlNb = ml.bits, mlBase = ml.base;
    let rep1 = this.rep1, rep2 = this.rep2, rep3 = this.rep3;
    const lit = this.lit;
    let litPos = this.litPos;
    const litEnd = this.litEnd;
    const frameStart = this.frameStart;
    const window = this.window;
    let out = this.out;
    let op = this.op;

    // The bit reads are written out (no calls through `bits`): this loop is where the time
    // goes for most data.
    const view = this.view;
    const s0 = bits.start;
    let p = bits.pos;
    let nb: number;
    for (let n = count; n > 0; n--) {
      const ofCode = ofSym[ofState]!;
      let ofValue: number;
      if (ofCode <= 25) {
        p -= ofCode;
        ofValue = (1 << ofCode) + bitsAt(view, s0, p, ofCode);
      } else {
        p -= ofCode - 16;
        const hi = bitsAt(view, s0, p, ofCode - 16);
        p -= 16;
        ofValue = 2 ** ofCode + hi * 65536 + bitsAt(view, s0, p, 16);
      }
      const mlCode = mlSym[mlState]!;
      nb = ML_BITS[mlCode]!;
      p -= nb;
      const matchLength = ML_BASE[mlCode]! + bitsAt(view, s0, p, nb);
      const llCode = llSym[llState]!;
      nb = LL_BITS[llCode]!;
      p -= nb;
      const litLength = LL_BASE[llCode]! + bitsAt(view, s0, p, nb);

      let offset: number;
      if (ofValue > 3) {
        offset = ofValue - 3;
        rep3 = rep2;
        rep2 = rep1;
        rep1 = offset;
      } else {
        const index = ofValue - (litLength === 0 ? 0 : 1);
        if (index === 0) {
          offset = rep1;
        } else {
          offset = index === 1 ? rep2 : index === 2 ? rep3 : rep1 - 1;
          if (index !== 1) rep3 = rep2;
          rep2 = rep1;
          rep1 = offset;
        }
      }

      if (n > 1) {
        nb = llNb[llState]!;
        p -= nb;
        llState = llBase[llState]! + bitsAt(view, s0, p, nb);
        nb = mlNb[mlState]!;
        p -= nb;
        mlState = mlBase[mlState]! + bitsAt(view, s0, p, nb);
        nb = ofNb[ofState]!;
        p -= nb;
        ofState = ofBase[ofState]! + bitsAt(view, s0, p, nb);
      }

      // Execute: literals, then the match.
      if (litLength > litEnd - litPos) {
        fail(`a sequence takes ${litLength} literals but only ${litEnd - litPos} are left`);
      }
      const total = litLength + matchLength;
      if (total > blockEnd - op) {
        if (op + total > blockStart + this.blockMax) {
          fail(`a block expands past the block size limit of ${this.blockMax} bytes`);
        }
        tooLarge(`the output would pass ${this.limitName} (${this.limit} bytes)`);
      }
      if (op + total > out.length) {
        this.op = op;
        this.reserve(total);
        out = this.out;
      }
      if (litLength > 0) {
        if (litLength <= 32) {
          for (let k = 0; k < litLength; k++) out[op + k] = lit[litPos + k]!;
        } else {
          out.set(lit.subarray(litPos, litPos + litLength), op);
        }
        op += litLength;
        litPos += litLength;
      }
      if (offset > op - frameStart || offset > window || offset === 0) {
        fail(
          offset === 0
            ? "a sequence has offset 0"
            : `a match at output byte ${op - frameStart} of its frame reaches back ${offset} ` +
              `bytes, past ${offset > window ? "the window" : "the frame's start"}`,
        );
      }
      let from = op - offset;
      if (offset >= matchLength) {
        if (matchLength <= 32) {
          for (let k = 0; k < matchLength; k++) out[op + k] = out[from + k]!;
        } else {
          out.copyWithin(op, from, from + matchLength);
        }
        op += matchLength;
      } else if (matchLength <= 32) {
        for (const stop = op + matchLength; op < stop;) out[op++] = out[from++]!;
      } else {
        // A repeating pattern: each copy doubles the distance it can take at once.
        let left = matchLength;
        while (left > 0) {
          const k = Math.min(op - from, left);
          out.copyWithin(op, from, from + k);
          op += k;
          left -= k;
        }
      }
    }
    if (p !== 0) {
      fail(
        p > 0
          ? `the sequence bitstream has ${p} bits left after ${count} sequences`
          : `the sequence bitstream ends before its ${count} sequences`,
      );
    }
    this.rep1 = rep1;
    this.rep2 = rep2;
    this.rep3 = rep3;
    this.op = op;
    this.litPos = litPos;
    this.flushLiterals(blockEnd, blockStart);
  }

  /** Appends the literals no sequence took. */
  flushLiterals(blockEnd: number, blockStart: number): void {
    const n = this.litEnd - this.litPos;
    if (n > blockEnd - this.op) {
      if (this.op + n > blockStart + this.blockMax) {
        fail(`a block expands past the block size limit of ${this.blockMax} bytes`);
      }
      tooLarge(`the output would pass ${this.limitName} (${this.limit} bytes)`);
    }
    this.reserve(n);
    this.out.set(this.lit.subarray(this.litPos, this.litEnd), this.op);
    this.op += n;
    this.litPos = this.litEnd;
  }
}

/** Module scratch, shared by calls (decoding is synchronous, so never by two at once). */
const scratch = {
  literals: new Uint8Array(BLOCK_SIZE_MAX + 8),
  huffman: new Uint16Array(1 << HUF_MAX_BITS),
  weightTable: new FseTable(HUF_WEIGHT_MAX_LOG),
  ll: new FseTable(LL_MAX_LOG),
  of: new FseTable(OF_MAX_LOG),
  ml: new FseTable(ML_MAX_LOG),
  input: new Uint8Array(0),
};

/** The most a frame's declared content size may reserve up front for `n` bytes of input. */
function reserveCap(n: number): number {
  return Math.max(1 << 20, n * 16);
}

/** Copies `src` into a buffer with 8 zero bytes after it (reused for small inputs). */
function padded(src: Uint8Array): Uint8Array {
  const need = src.length + 8;
  let buf: Uint8Array;
  if (need <= 1 << 20) {
    if (scratch.input.length < need) scratch.input = new Uint8Array(Math.max(need, 65536));
    buf = scratch.input;
  } else {
    buf = new Uint8Array(need);
  }
  buf.set(src);
  buf.fill(0, src.length, need);
  return buf;
}

function readU32LE(b: Uint8Array, i: number): number {
  return (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
}

/** Options of {@linkcode zstdDecompressFrames}. */
export interface ZstdOptions {
  /** The most bytes the output may have (default 1 GiB); more throws `RangeError`. */
  maxSize?: number;
}

/**
 * Decompresses standard Zstandard data (what the `zstd` tool writes): one or more frames, each
 * with its magic number, and skippable frames, which are skipped. A content checksum, when a
 * frame has one, is verified.
 *
 * @param src the compressed bytes
 * @param options the output limit
 * @returns the decompressed bytes of every frame, concatenated
 * @throws {SyntaxError} when the data is malformed or a checksum does not match
 * @throws {RangeError} when the output would pass `maxSize`, or a window is over 2 GiB
 * @throws {TypeError} when a frame needs a dictionary
 * @example
 * ```ts
 * import { zstdDecompressFrames } from "./zstd.ts";
 * // A frame with a content size of 3 and one raw block holding "abc".
 * const frame = new Uint8Array([
 *   0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x03, 0x19, 0x00, 0x00, 0x61, 0x62, 0x63,
 * ]);
 * if (new TextDecoder().decode(zstdDecompressFrames(frame)) !== "abc") throw new Error();
 * ```
 */
export function zstdDecompressFrames(src: Uint8Array, options: ZstdOptions = {}): Uint8Array {
  const maxSize = options.maxSize ?? DEFAULT_MAX_SIZE;
  if (!Number.isSafeInteger(maxSize) || maxSize < 0) {
    throw new RangeError(`Cannot decompress the zstd data: bad maximum size ${maxSize}`);
  }
  const end = src.length;
  const buf = padded(src);
  const initial = Math.min(maxSize, reserveCap(end));
  const d = new Decoder(buf, new Uint8Array(Math.min(initial, 65536)), maxSize, true, "the limit");
  let pos = 0;
  while (pos < end) {
    if (end - pos < 4) fail(`${end - pos} bytes after the last frame are not a frame`);
    const magic = readU32LE(buf, pos);
    if (magic === MAGIC) {
      pos = d.frame(pos + 4, end);
    } else if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE) {
      if (end - pos < 8) fail("the input ends inside a skippable frame's header");
      const size = readU32LE(buf, pos + 4);
      if (size > end - pos - 8) fail(`a skippable frame of ${size} bytes runs past the input`);
      pos += 8 + size;
    } else {
      fail(`no frame at input byte ${pos} (magic ${magic.toString(16).padStart(8, "0")})`);
    }
  }
  return d.out.length === d.op ? d.out : d.out.slice(0, d.op);
}

/** What OpenZFS's 8-byte header before a zstd frame says. */
export interface ZfsZstdHeader {
  /** Bytes of the frame after the header. */
  compressedLength: number;
  /** The `enum zio_zstd_levels` value: 1..19, or 103..123 for the fast levels. */
  level: number;
  /** The zstd library version that compressed the block (e.g. 10506 for 1.5.6). */
  version: number;
}

/**
 * Reads OpenZFS's header before a zstd frame (`zfs_zstdhdr_t`), telling apart the layouts of
 * the version/level word (today's, and the bitfield layout older big-endian machines wrote)
 * as OpenZFS's `zfs_get_hdrmeta()` does.
 *
 * @param src the block as stored (at least 8 bytes)
 * @returns the header's fields
 * @throws {SyntaxError} when `src` is shorter than the header
 * @example
 * ```ts
 * import { zfsZstdHeader } from "./zstd.ts";
 * // c_len 5; level 3, version 1.5.6 (0x00290a) as a little-endian machine writes them
 * const h = zfsZstdHeader(new Uint8Array([0, 0, 0, 5, 3, 0x00, 0x29, 0x0a]));
 * if (h.compressedLength !== 5 || h.level !== 3 || h.version !== 10506) throw new Error();
 * ```
 */
export function zfsZstdHeader(src: Uint8Array): ZfsZstdHeader {
  if (src.length < ZFS_HEADER) {
    fail(`${src.length} bytes is too short for OpenZFS's ${ZFS_HEADER}-byte zstd header`);
  }
  const compressedLength = ((src[0]! << 24) | (src[1]! << 16) | (src[2]! << 8) | src[3]!) >>> 0;
  const raw = ((src[4]! << 24) | (src[5]! << 16) | (src[6]! << 8) | src[7]!) >>> 0;
  // The version's high byte is zero (versions below 6.55.36); where that zero byte sits tells
  // which of the four layouts wrote the word.
  let shift = 0;
  while (shift < 4 && ((raw >>> (8 * shift)) & 0xff) !== 0) shift++;
  const swapped = (((raw & 0xff) << 24) | ((raw & 0xff00) << 8) | ((raw >>> 8) & 0xff00) |
    (raw >>> 24)) >>> 0;
  let level = 0, version = 0;
  switch (shift) {
    case 0:
      level = raw >>> 24;
      version = swapped >>> 8;
      break;
    case 1:
      level = raw & 0xff;
      version = swapped & 0xffffff;
      break;
    case 2:
      level = raw >>> 24;
      version = raw & 0xffffff;
      break;
    case 3:
      level = raw & 0xff;
      version = raw >>> 8;
      break;
  }
  return { compressedLength, level, version };
}

/** Whether OpenZFS accepts `level` from a block header (`zstd_enum_to_level()`). */
function validLevel(level: number): boolean {
  return (level >= 1 && level <= 19) || (level >= 103 && level <= 123);
}

/**
 * Decompresses a ZFS zstd block: OpenZFS's 8-byte header, a magicless Zstandard frame of the
 * length the header gives, and padding. The result has exactly `dstSize` bytes, as ZFS
 * requires.
 *
 * @param src the compressed block as stored (`psize` bytes)
 * @param dstSize the logical size
 * @returns a new buffer of `dstSize` bytes
 * @throws {SyntaxError} when the header, the level or the frame is malformed, or the frame
 * does not expand to `dstSize` bytes
 * @throws {RangeError} when `dstSize` is not a non-negative safe integer, or the frame would
 * expand past it
 * @throws {TypeError} when the frame needs a dictionary
 * @example
 * ```ts
 * import { zstdDecompress } from "./zstd.ts";
 * // Header: c_len 6, level 3; frame: descriptor (single segment, 1-byte size 4),
 * // one last RLE block of 4 bytes of 0x7a.
 * const src = new Uint8Array([0, 0, 0, 6, 3, 0, 0x29, 0x0a, 0x20, 4, 0x23, 0, 0, 0x7a, 0, 0]);
 * if (new TextDecoder().decode(zstdDecompress(src, 4)) !== "zzzz") throw new Error();
 * ```
 */
export function zstdDecompress(src: Uint8Array, dstSize: number): Uint8Array {
  if (!Number.isSafeInteger(dstSize) || dstSize < 0) {
    throw new RangeError(`Cannot decompress the zstd block: bad output size ${dstSize}`);
  }
  const h = zfsZstdHeader(src);
  if (h.compressedLength > src.length - ZFS_HEADER) {
    fail(
      `OpenZFS's header says the frame has ${h.compressedLength} bytes but only ` +
        `${src.length - ZFS_HEADER} follow it`,
    );
  }
  if (!validLevel(h.level)) fail(`OpenZFS's header has the invalid level ${h.level}`);
  const end = ZFS_HEADER + h.compressedLength;
  const buf = padded(src.subarray(0, end));
  const d = new Decoder(buf, new Uint8Array(dstSize), dstSize, false, "the logical size");
  // OpenZFS's decoder reads magicless frames until the length is used up.
  let pos = ZFS_HEADER;
  while (pos < end) pos = d.frame(pos, end);
  if (d.op !== dstSize) fail(`the block expands to ${d.op} bytes, not ${dstSize}`);
  return d.out;
}
