/**
 * The block codecs: round trips through small encoders written here (LZ4, LZJB, ZLE) and
 * through the platform's zlib (`CompressionStream("deflate")`), corrupted and random input,
 * and dispatch by compression number. Real ZFS data (embedded LZ4 blocks, LZ4-compressed
 * writes) is decoded by the ZPL tests.
 */

import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  adler32,
  compressionName,
  decompressBlock,
  gzipDecompress,
  lz4Decompress,
  lz4DecompressBlock,
  lzjbDecompress,
  ZIO_COMPRESS,
  zleDecompress,
} from "../core/compress/mod.ts";
import { xorshift32 } from "./helpers/prng.ts";

// ------------------------------------------------------------------------------------------
// Inputs
// ------------------------------------------------------------------------------------------

const rng = xorshift32;

function randomBytes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = r() & 0xff;
  return out;
}

function samples(): [string, Uint8Array][] {
  const text = new TextEncoder().encode(
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(300),
  );
  const runs = new Uint8Array(4096);
  for (let i = 0; i < runs.length; i++) runs[i] = (i >> 7) & 1 ? 0 : i & 0xff;
  const mixed = new Uint8Array(20000);
  mixed.set(randomBytes(3000, 7), 0);
  mixed.set(text.subarray(0, 9000), 5000);
  mixed.set(randomBytes(100, 9), 19000);
  return [
    ["empty", new Uint8Array(0)],
    ["one byte", new Uint8Array([42])],
    ["five bytes", new Uint8Array([1, 2, 3, 4, 5])],
    ["zeros 512", new Uint8Array(512)],
    ["zeros 128K", new Uint8Array(131072)],
    ["text", text],
    ["runs", runs],
    ["random 1000", randomBytes(1000, 1)],
    ["random 70000", randomBytes(70000, 2)],
    ["mixed", mixed],
    ["aaaa", new Uint8Array(300).fill(0x61)],
  ];
}

// ------------------------------------------------------------------------------------------
// Encoders used only to make test vectors
// ------------------------------------------------------------------------------------------

/** A greedy LZ4 block encoder that keeps the format's end rules (last 5 bytes literals). */
function lz4EncodeBlock(src: Uint8Array): Uint8Array {
  const out: number[] = [];
  const table = new Map<number, number>();
  const n = src.length;
  const matchLimit = n - 12; // a match must start at least 12 bytes before the end
  const lastLiterals = n - 5; // and end at least 5 bytes before it
  let anchor = 0;
  let i = 0;
  const pushLength = (len: number) => {
    while (len >= 255) {
      out.push(255);
      len -= 255;
    }
    out.push(len);
  };
  while (i < matchLimit) {
    const key = src[i]! | (src[i + 1]! << 8) | (src[i + 2]! << 16) | (src[i + 3]! << 24);
    const cand = table.get(key);
    table.set(key, i);
    if (cand === undefined || i - cand > 65535) {
      i++;
      continue;
    }
    let len = 4;
    while (i + len < lastLiterals && src[cand + len] === src[i + len]) len++;
    const lit = i - anchor;
    const ml = len - 4;
    out.push((Math.min(lit, 15) << 4) | Math.min(ml, 15));
    if (lit >= 15) pushLength(lit - 15);
    for (let k = anchor; k < i; k++) out.push(src[k]!);
    const off = i - cand;
    out.push(off & 0xff, off >> 8);
    if (ml >= 15) pushLength(ml - 15);
    i += len;
    anchor = i;
  }
  const lit = n - anchor;
  out.push(Math.min(lit, 15) << 4);
  if (lit >= 15) pushLength(lit - 15);
  for (let k = anchor; k < n; k++) out.push(src[k]!);
  return new Uint8Array(out);
}

/** ZFS framing: the big-endian length, the block, then padding to a multiple of 512. */
function lz4EncodeZfs(src: Uint8Array): Uint8Array {
  const block = lz4EncodeBlock(src);
  const size = Math.ceil((block.length + 4) / 512) * 512;
  const out = new Uint8Array(size);
  new DataView(out.buffer).setUint32(0, block.length, false);
  out.set(block, 4);
  return out;
}

/** A greedy LZJB encoder: matches of 3..66 bytes up to 1023 bytes back. */
function lzjbEncode(src: Uint8Array): Uint8Array {
  const out: number[] = [];
  const table = new Map<number, number>();
  let mapAt = -1;
  let bit = 8;
  let i = 0;
  while (i < src.length) {
    if (bit === 8) {
      mapAt = out.length;
      out.push(0);
      bit = 0;
    }
    let matched = false;
    if (i + 3 <= src.length) {
      const key = src[i]! | (src[i + 1]! << 8) | (src[i + 2]! << 16);
      const cand = table.get(key);
      table.set(key, i);
      if (cand !== undefined && i - cand <= 1023) {
        let len = 3;
        while (len < 66 && i + len < src.length && src[cand + len] === src[i + len]) len++;
        const dist = i - cand;
        out[mapAt] = out[mapAt]! | (1 << bit);
        out.push(((len - 3) << 2) | (dist >> 8), dist & 0xff);
        i += len;
        matched = true;
      }
    }
    if (!matched) out.push(src[i++]!);
    bit++;
  }
  return new Uint8Array(out);
}

/** ZLE with n = 64: zero runs of up to 192, literal runs of up to 64 (zeros end them). */
function zleEncode(src: Uint8Array): Uint8Array {
  const out: number[] = [];
  let i = 0;
  while (i < src.length) {
    if (src[i] === 0) {
      let len = 0;
      while (i < src.length && src[i] === 0 && len < 192) {
        len++;
        i++;
      }
      out.push(len + 64 - 1);
    } else {
      const start = i;
      while (i < src.length && i - start < 64 && !(src[i] === 0 && src[i + 1] === 0)) i++;
      out.push(i - start - 1);
      for (let k = start; k < i; k++) out.push(src[k]!);
    }
  }
  return new Uint8Array(out);
}

async function zlib(src: Uint8Array, format: CompressionFormat = "deflate"): Promise<Uint8Array> {
  const stream = new Blob([src as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream(format),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Feeds garbage and damaged vectors to a decoder: it must return or throw SyntaxError. */
function fuzz(
  name: string,
  decode: (src: Uint8Array, size: number) => Uint8Array,
  valid: [Uint8Array, number][],
): void {
  const r = rng(0xC0FFEE);
  let rejected = 0;
  for (let t = 0; t < 3000; t++) {
    let src: Uint8Array;
    let size: number;
    if (t % 2 === 0) {
      src = randomBytes(r() % 200, r());
      size = r() % 2000;
    } else {
      const [good, goodSize] = valid[r() % valid.length]!;
      src = good.slice();
      const flips = 1 + (r() % 4);
      for (let f = 0; f < flips && src.length > 0; f++) src[r() % src.length]! ^= 1 << (r() % 8);
      if (r() % 4 === 0) src = src.subarray(0, r() % (src.length + 1));
      size = r() % 3 === 0 ? r() % (goodSize + 10) : goodSize;
    }
    try {
      const out = decode(src, size);
      assertEquals(out.length, size, `${name}: wrong output size`);
    } catch (e) {
      if (!(e instanceof SyntaxError)) throw new Error(`${name}: ${e}`, { cause: e });
      rejected++;
    }
  }
  assert(rejected > 100, `${name}: only ${rejected} inputs rejected`);
}

// ------------------------------------------------------------------------------------------
// LZ4
// ------------------------------------------------------------------------------------------

Deno.test("lz4Decompress() round-trips ZFS-framed blocks", () => {
  for (const [name, data] of samples()) {
    const z = lz4EncodeZfs(data);
    assertEquals(lz4Decompress(z, data.length), data, name);
    assertEquals(decompressBlock(ZIO_COMPRESS.LZ4, z, data.length), data, name);
  }
});

Deno.test("lz4Decompress() refuses a bad prefix, a short block, a wrong size", () => {
  const data = samples()[5]![1];
  const z = lz4EncodeZfs(data);
  assertThrows(() => lz4Decompress(z.subarray(0, 3), data.length), SyntaxError, "too short");
  const lying = z.slice();
  new DataView(lying.buffer).setUint32(0, z.length, false);
  assertThrows(() => lz4Decompress(lying, data.length), SyntaxError, "only");
  assertThrows(() => lz4Decompress(z, data.length + 1), SyntaxError, "expands to");
  assertThrows(() => lz4Decompress(z, data.length - 1), SyntaxError);
  assertThrows(() => lz4Decompress(z, -1), RangeError);
  const cut = z.slice();
  const n = new DataView(cut.buffer).getUint32(0, false);
  new DataView(cut.buffer).setUint32(0, n - 1, false);
  assertThrows(() => lz4Decompress(cut, data.length), SyntaxError);
});

Deno.test("lz4DecompressBlock() refuses offsets before the start and offset 0", () => {
  // 1 literal, match offset 2 (only 1 byte of output so far)
  assertThrows(
    () => lz4DecompressBlock(new Uint8Array([0x10, 0x61, 2, 0, 0x10, 0x62]), 10),
    SyntaxError,
    "before the output's start",
  );
  assertThrows(
    () => lz4DecompressBlock(new Uint8Array([0x10, 0x61, 0, 0, 0x10, 0x62]), 10),
    SyntaxError,
    "offset 0",
  );
  // a block that ends with a match
  assertThrows(
    () => lz4DecompressBlock(new Uint8Array([0x10, 0x61, 1, 0]), 5),
    SyntaxError,
    "last sequence",
  );
  // long literal length whose extension bytes run off the end
  assertThrows(() => lz4DecompressBlock(new Uint8Array([0xF0, 255, 255]), 600), SyntaxError);
});

Deno.test("lz4Decompress() survives random and damaged input", () => {
  const valid = samples().map(([, d]) => [lz4EncodeZfs(d), d.length] as [Uint8Array, number]);
  fuzz("lz4", lz4Decompress, valid);
});

// ------------------------------------------------------------------------------------------
// LZJB
// ------------------------------------------------------------------------------------------

Deno.test("lzjbDecompress() round-trips", () => {
  for (const [name, data] of samples()) {
    const z = lzjbEncode(data);
    assertEquals(lzjbDecompress(z, data.length), data, name);
    // padding after the data is ignored
    const padded = new Uint8Array(z.length + 37);
    padded.set(z);
    assertEquals(decompressBlock(ZIO_COMPRESS.LZJB, padded, data.length), data, name);
  }
});

Deno.test("lzjbDecompress() refuses truncated input and matches before the start", () => {
  const data = samples()[5]![1];
  const z = lzjbEncode(data);
  assertThrows(() => lzjbDecompress(z.subarray(0, z.length - 2), data.length), SyntaxError);
  assertThrows(
    () => lzjbDecompress(new Uint8Array([0x02, 0x61, 0x00, 0x05, 0x62]), 5),
    SyntaxError,
    "before the start",
  );
});

Deno.test("lzjbDecompress() survives random and damaged input", () => {
  const valid = samples().map(([, d]) => [lzjbEncode(d), d.length] as [Uint8Array, number]);
  fuzz("lzjb", lzjbDecompress, valid);
});

// ------------------------------------------------------------------------------------------
// ZLE
// ------------------------------------------------------------------------------------------

Deno.test("zleDecompress() round-trips", () => {
  for (const [name, data] of samples()) {
    const z = zleEncode(data);
    assertEquals(zleDecompress(z, data.length), data, name);
    assertEquals(decompressBlock(ZIO_COMPRESS.ZLE, z, data.length), data, name);
  }
});

Deno.test("zleDecompress() refuses runs past either end and short output", () => {
  assertThrows(() => zleDecompress(new Uint8Array([5, 1, 2]), 6), SyntaxError, "end of the input");
  assertThrows(() => zleDecompress(new Uint8Array([100]), 10), SyntaxError, "output size");
  assertThrows(() => zleDecompress(new Uint8Array([0, 7]), 2), SyntaxError, "1 of 2");
  assertThrows(() => zleDecompress(new Uint8Array(1), 1, 0), RangeError);
});

Deno.test("zleDecompress() survives random and damaged input", () => {
  const valid = samples().map(([, d]) => [zleEncode(d), d.length] as [Uint8Array, number]);
  fuzz("zle", zleDecompress, valid);
});

// ------------------------------------------------------------------------------------------
// gzip (zlib)
// ------------------------------------------------------------------------------------------

Deno.test("gzipDecompress() reads what the platform's zlib writes, with padding after it", async () => {
  for (const [name, data] of samples()) {
    const z = await zlib(data);
    assertEquals(gzipDecompress(z, data.length), data, name);
    const padded = new Uint8Array(Math.ceil((z.length + 1) / 512) * 512);
    padded.set(z);
    for (let level = ZIO_COMPRESS.GZIP_1; level <= ZIO_COMPRESS.GZIP_9; level++) {
      assertEquals(decompressBlock(level, padded, data.length), data, `${name} level ${level}`);
    }
  }
});

Deno.test("gzipDecompress() reads stored, fixed and dynamic blocks", async () => {
  // incompressible data makes stored blocks; a few bytes make a fixed-code block
  const stored = randomBytes(100000, 3);
  assertEquals(gzipDecompress(await zlib(stored), stored.length), stored);
  const tiny = new TextEncoder().encode("abcabcabc");
  const zt = await zlib(tiny);
  assertEquals((zt[2]! >> 1) & 3, 1, "expected a fixed-code block");
  assertEquals(gzipDecompress(zt, tiny.length), tiny);
});

Deno.test("gzipDecompress() refuses bad headers, checksums, sizes and truncation", async () => {
  const data = samples()[5]![1];
  const z = await zlib(data);
  const badAdler = z.slice();
  badAdler[badAdler.length - 1]! ^= 1;
  assertThrows(() => gzipDecompress(badAdler, data.length), SyntaxError, "Adler-32");
  const badHeader = z.slice();
  badHeader[1]! ^= 1;
  assertThrows(() => gzipDecompress(badHeader, data.length), SyntaxError, "header check");
  assertThrows(() => gzipDecompress(z.subarray(0, z.length - 6), data.length), SyntaxError);
  assertThrows(() => gzipDecompress(z, data.length - 1), SyntaxError, "expands past");
  assertThrows(() => gzipDecompress(z, data.length + 1), SyntaxError, "expands to");
  const raw = await zlib(data, "deflate-raw");
  assertThrows(() => gzipDecompress(raw, data.length), SyntaxError);
  const gz = await zlib(data, "gzip");
  assertThrows(() => gzipDecompress(gz, data.length), SyntaxError, "not a zlib");
});

Deno.test("gzipDecompress() survives random and damaged input", async () => {
  const valid: [Uint8Array, number][] = [];
  for (const [, d] of samples()) valid.push([await zlib(d), d.length]);
  fuzz("gzip", gzipDecompress, valid);
});

Deno.test("adler32() matches the platform's zlib trailer", async () => {
  const data = samples()[9]![1];
  const z = await zlib(data);
  assertEquals(adler32(data), new DataView(z.buffer).getUint32(z.length - 4, false));
});

// ------------------------------------------------------------------------------------------
// Dispatch
// ------------------------------------------------------------------------------------------

Deno.test("decompressBlock() refuses 'on' and unknown codecs with TypeError naming them", () => {
  // zstd is a codec now: a block of zeros is refused as bad data (c_len 0, level 0).
  assertThrows(
    () => decompressBlock(ZIO_COMPRESS.ZSTD, new Uint8Array(64), 512),
    SyntaxError,
    "zstd",
  );
  assertThrows(() => decompressBlock(ZIO_COMPRESS.ON, new Uint8Array(64), 64), TypeError, "on");
  assertThrows(() => decompressBlock(77, new Uint8Array(64), 64), TypeError, "compression 77");
});

Deno.test("decompressBlock() copies OFF and INHERIT, zero-fills EMPTY", () => {
  const src = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  assertEquals(decompressBlock(ZIO_COMPRESS.OFF, src, 4), new Uint8Array([1, 2, 3, 4]));
  assertEquals(decompressBlock(ZIO_COMPRESS.INHERIT, src, 8), src);
  assertEquals(decompressBlock(ZIO_COMPRESS.EMPTY, src, 16), new Uint8Array(16));
  assertThrows(() => decompressBlock(ZIO_COMPRESS.OFF, src, 9), RangeError);
  assertThrows(() => decompressBlock(ZIO_COMPRESS.LZ4, src, 1.5), RangeError);
});

Deno.test("compressionName() names every codec", () => {
  assertEquals(compressionName(ZIO_COMPRESS.LZJB), "lzjb");
  assertEquals(compressionName(ZIO_COMPRESS.GZIP_1), "gzip-1");
  assertEquals(compressionName(ZIO_COMPRESS.ZLE), "zle");
  assertEquals(compressionName(ZIO_COMPRESS.ZSTD), "zstd");
});
