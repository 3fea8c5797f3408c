/**
 * The Zstandard decoder: round trips of many inputs through Debian's `zstd` tool (levels 1 to
 * 22, long windows, with and without checksums, several and skippable frames), truncated and
 * bit-flipped frames, OpenZFS's block header, and the zstd blocks of an OpenZFS
 * `zfs send -cw` stream.
 */

import { assert, assertEquals, assertMatch, assertThrows } from "@std/assert";
import {
  decompressBlock,
  xxhash64,
  zfsZstdHeader,
  ZIO_COMPRESS,
  zstdDecompress,
  zstdDecompressFrames,
} from "../core/compress/mod.ts";
import { readRecords } from "../core/stream/reader.ts";
import { DRR } from "../core/stream/constants.ts";
import { IN_CI, openzfsDir, skipNote, unpackBz2 } from "./_fixtures.ts";
import { runZsend } from "./_run.ts";
import { xorshift32 } from "./helpers/prng.ts";

// ------------------------------------------------------------------------------------------
// Inputs and the zstd tool
// ------------------------------------------------------------------------------------------

function randomBytes(n: number, seed: number): Uint8Array {
  const r = xorshift32(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = r() & 0xff;
  return out;
}

/** Words drawn with a skewed distribution: compresses like prose, with literals to code. */
function textLike(n: number, seed: number): Uint8Array {
  const r = xorshift32(seed);
  const words = [
    "the",
    "of",
    "stream",
    "block",
    "snapshot",
    "zfs",
    "receive",
    "object",
    "dataset",
    "checksum",
    "and",
    "a",
    "pool",
    "record",
    "Lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet,",
    "consectetur.",
  ];
  const out = new Uint8Array(n);
  const enc = new TextEncoder();
  let o = 0;
  while (o < n) {
    const w = words[Math.min(r() % 20, r() % 20)]!;
    const { written } = enc.encodeInto(w + (r() % 13 === 0 ? "\n" : " "), out.subarray(o));
    o += written;
  }
  return out;
}

/** Runs of bytes and short repeated patterns with a little noise. */
function repetitive(n: number, seed: number): Uint8Array {
  const r = xorshift32(seed);
  const out = new Uint8Array(n);
  let o = 0;
  while (o < n) {
    const kind = r() % 3;
    const len = Math.min(n - o, 1 + (r() % 3000));
    if (kind === 0) {
      out.fill(r() & 0xff, o, o + len);
    } else if (kind === 1) {
      const period = 1 + (r() % 40);
      for (let k = 0; k < len; k++) out[o + k] = o + k - period >= 0 ? out[o + k - period]! : k;
    } else {
      for (let k = 0; k < len; k++) out[o + k] = r() % 4 === 0 ? r() & 0xff : 0x41 + (k % 7);
    }
    o += len;
  }
  return out;
}

const hasZstd = (() => {
  try {
    return new Deno.Command("zstd", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();
if (!hasZstd) {
  if (IN_CI) throw new Error("the zstd tool is missing (scripts/setup.sh installs it)");
  skipNote("zstd round trips", "no zstd tool (apt-get install zstd)");
}

/** Compresses `data` with the zstd tool and the given arguments (one thread). */
async function zstd(data: Uint8Array, args: string[]): Promise<Uint8Array> {
  const child = new Deno.Command("zstd", {
    args: ["-q", "-c", "-T1", ...args, "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writing = (async () => {
    const w = child.stdin.getWriter();
    await w.write(data);
    await w.close();
  })();
  const [out] = await Promise.all([child.output(), writing]);
  if (!out.success) {
    throw new Error(`zstd ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return out.stdout;
}

function assertSameBytes(got: Uint8Array, want: Uint8Array, what: string): void {
  assertEquals(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) throw new Error(`${what}: first difference at byte ${i}`);
  }
}

/** An error the decoder may throw for bad data: a built-in class and a message saying so. */
function assertCleanError(e: unknown, what: string): void {
  assert(
    e instanceof SyntaxError || e instanceof RangeError || e instanceof TypeError,
    `${what}: ${e}`,
  );
  assertMatch((e as Error).message, /^Cannot decompress the zstd (data|block): /, what);
}

// ------------------------------------------------------------------------------------------
// XXH64
// ------------------------------------------------------------------------------------------

Deno.test("xxhash64() matches the published XXH64 values", () => {
  const enc = new TextEncoder();
  assertEquals(xxhash64(new Uint8Array(0)), 0xef46db3751d8e999n);
  assertEquals(xxhash64(enc.encode("a")), 0xd24ec4f1a98c6e5bn);
  assertEquals(xxhash64(enc.encode("abc")), 0x44bc2cf5ad770999n);
  assertEquals(
    xxhash64(enc.encode("Nobody inspects the spammish repetition")),
    0xfbcea83c8a378bf1n,
  );
});

// ------------------------------------------------------------------------------------------
// Round trips through the zstd tool
// ------------------------------------------------------------------------------------------

const KiB = 1024, MiB = 1024 * 1024;

const small: [string, Uint8Array][] = [
  ["empty", new Uint8Array(0)],
  ["1 byte", new Uint8Array([0x5a])],
  ["random 1000", randomBytes(1000, 1)],
  ["text 5000", textLike(5000, 2)],
  ["repetitive 20000", repetitive(20000, 3)],
  ["zeros 128 KiB", new Uint8Array(128 * KiB)],
  ["text 128 KiB", textLike(128 * KiB, 4)],
  ["random 128 KiB", randomBytes(128 * KiB, 5)],
  ["repetitive 128 KiB + 1", repetitive(128 * KiB + 1, 6)],
];
const large: [string, Uint8Array][] = [
  ["text 1 MiB", textLike(MiB, 7)],
  ["repetitive 1 MiB", repetitive(MiB, 8)],
  ["random 1 MiB", randomBytes(MiB, 9)],
];

Deno.test({
  name: "zstdDecompressFrames() round-trips small inputs at levels 1, 3, 9, 19 and --ultra -22",
  ignore: !hasZstd,
  async fn() {
    for (const [name, data] of small) {
      for (const level of [["-1"], ["-3"], ["-9"], ["-19"], ["--ultra", "-22"]]) {
        const z = await zstd(data, level);
        assertSameBytes(zstdDecompressFrames(z), data, `${name} ${level.join(" ")}`);
      }
    }
  },
});

Deno.test({
  name: "zstdDecompressFrames() round-trips 1 MiB inputs with and without checksums, --long",
  ignore: !hasZstd,
  async fn() {
    for (const [name, data] of large) {
      for (
        const args of [["-1"], ["-3", "--no-check"], ["-9"], ["-19", "--no-check"], [
          "-3",
          "--long=27",
        ]]
      ) {
        const z = await zstd(data, args);
        assertSameBytes(zstdDecompressFrames(z), data, `${name} ${args.join(" ")}`);
      }
    }
  },
});

Deno.test({
  name:
    "zstdDecompressFrames() round-trips 16 MiB, past the default window (with and without --long)",
  ignore: !hasZstd,
  async fn() {
    const data = new Uint8Array(16 * MiB);
    data.set(textLike(6 * MiB, 10), 0);
    data.set(randomBytes(2 * MiB, 11), 6 * MiB);
    data.set(repetitive(4 * MiB, 12), 8 * MiB);
    // The last 4 MiB repeat the first: only a long window reaches back that far.
    data.copyWithin(12 * MiB, 0, 4 * MiB);
    for (const args of [["-3"], ["-1", "--no-check"], ["-3", "--long=27"], ["--fast=3"]]) {
      const z = await zstd(data, args);
      assertSameBytes(zstdDecompressFrames(z), data, `16 MiB ${args.join(" ")}`);
    }
  },
});

Deno.test({
  name: "zstdDecompressFrames() decodes concatenated and skippable frames",
  ignore: !hasZstd,
  async fn() {
    const a = textLike(70000, 13), b = repetitive(50000, 14);
    const za = await zstd(a, ["-3"]), zb = await zstd(b, ["-19", "--no-check"]);
    const skip = new Uint8Array([0x53, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
    const all = new Uint8Array(za.length + skip.length + zb.length + skip.length);
    all.set(za, 0);
    all.set(skip, za.length);
    all.set(zb, za.length + skip.length);
    all.set(skip, za.length + skip.length + zb.length);
    const want = new Uint8Array(a.length + b.length);
    want.set(a, 0);
    want.set(b, a.length);
    assertSameBytes(zstdDecompressFrames(all), want, "two frames and two skippable ones");
    assertSameBytes(zstdDecompressFrames(skip), new Uint8Array(0), "only a skippable frame");
    // Without a content size in the header (streamed input) the output grows as it goes.
    const streamed = await zstd(a, ["-3", "--no-content-size"]);
    assertSameBytes(zstdDecompressFrames(streamed), a, "no content size");
  },
});

Deno.test({
  name: "zstdDecompressFrames() keeps to maxSize and refuses dictionaries by id",
  ignore: !hasZstd,
  async fn() {
    const data = textLike(100000, 15);
    const z = await zstd(data, ["-3"]);
    assertThrows(() => zstdDecompressFrames(z, { maxSize: 99999 }), RangeError, "99999");
    const streamed = await zstd(data, ["-3", "--no-content-size"]);
    assertThrows(() => zstdDecompressFrames(streamed, { maxSize: 50000 }), RangeError, "50000");
    assertEquals(zstdDecompressFrames(z, { maxSize: 100000 }).length, 100000);
    // A frame header with a 1-byte dictionary id of 7.
    const dict = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x21, 7, 1, 0, 0]);
    assertThrows(() => zstdDecompressFrames(dict), TypeError, "dictionary 7");
  },
});

// ------------------------------------------------------------------------------------------
// Damage
// ------------------------------------------------------------------------------------------

Deno.test({
  name: "zstdDecompressFrames() fails cleanly on every truncation and on bit flips",
  ignore: !hasZstd,
  async fn() {
    const inputs: [string, Uint8Array][] = [
      ["text -19", await zstd(textLike(40000, 16), ["-19"])],
      ["repetitive -3", await zstd(repetitive(40000, 17), ["-3"])],
      ["random -1", await zstd(randomBytes(3000, 18), ["-1"])],
      ["text -1 no check", await zstd(textLike(40000, 19), ["-1", "--no-check"])],
    ];
    const r = xorshift32(99);
    for (const [name, z] of inputs) {
      const whole = zstdDecompressFrames(z);
      for (let n = 1; n < z.length; n++) {
        try {
          zstdDecompressFrames(z.subarray(0, n));
          throw new Error(`${name}: truncated to ${n} bytes, it decoded`);
        } catch (e) {
          assertCleanError(e, `${name} truncated to ${n}`);
        }
      }
      let caught = 0;
      const flips = 1500;
      for (let k = 0; k < flips; k++) {
        const bad = z.slice();
        const bit = r() % (bad.length * 8);
        bad[bit >>> 3]! ^= 1 << (bit & 7);
        try {
          const out = zstdDecompressFrames(bad, { maxSize: 4 * MiB });
          assert(out.length <= 4 * MiB);
          if (name.includes("no check")) continue;
          // With a checksum a flip that decodes must have decoded the same bytes (it hit a
          // bit nothing reads) -- or a flip in the checksum itself would have failed.
          assertSameBytes(out, whole, `${name} flip ${bit}`);
        } catch (e) {
          assertCleanError(e, `${name} flip at bit ${bit}`);
          caught++;
        }
      }
      if (!name.includes("no check")) {
        assert(caught > flips / 2, `${name}: only ${caught} of ${flips} flips caught`);
      }
    }
  },
});

Deno.test("zstdDecompressFrames() refuses hostile headers without large allocations", () => {
  const magic = [0x28, 0xb5, 0x2f, 0xfd];
  // Single segment with an 8-byte content size of 2^40, then nothing.
  assertThrows(
    () => zstdDecompressFrames(new Uint8Array([...magic, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0])),
    RangeError,
    "holds 1099511627776 bytes",
  );
  // Window log 41.
  assertThrows(
    () => zstdDecompressFrames(new Uint8Array([...magic, 0x00, 0xf8, 1, 0, 0])),
    RangeError,
    "window",
  );
  // Reserved bit, reserved block type, block past the window.
  assertThrows(() => zstdDecompressFrames(new Uint8Array([...magic, 0x08, 0])), SyntaxError);
  assertThrows(
    () => zstdDecompressFrames(new Uint8Array([...magic, 0x00, 0x00, 0x07, 0, 0])),
    SyntaxError,
    "reserved type 3",
  );
  // Window 1 KiB, an RLE block claiming 2 KiB.
  assertThrows(
    () => zstdDecompressFrames(new Uint8Array([...magic, 0x00, 0x00, 0x03, 0x40, 0, 0x61])),
    SyntaxError,
    "block size limit",
  );
  // Garbage after a frame, and a bad magic.
  assertThrows(() => zstdDecompressFrames(new Uint8Array([1, 2, 3])), SyntaxError, "not a frame");
  assertThrows(() => zstdDecompressFrames(new Uint8Array([1, 2, 3, 4])), SyntaxError, "magic");
  // Many RLE blocks of 128 KiB each: the output limit stops them, not memory.
  const blocks = [];
  // RLE blocks of 128 KiB of "a" (header 0x100002; the last one with bit 0 set).
  for (let i = 0; i < 200; i++) blocks.push(0x02, 0x00, 0x10, 0x61);
  blocks[blocks.length - 4] = 0x03;
  const many = new Uint8Array([...magic, 0x00, 0x38, ...blocks]);
  assertThrows(() => zstdDecompressFrames(many, { maxSize: 1 * MiB }), RangeError, "limit");
  assertEquals(zstdDecompressFrames(many).length, 200 * 128 * KiB);
});

// ------------------------------------------------------------------------------------------
// OpenZFS's block format
// ------------------------------------------------------------------------------------------

/**
 * Makes a ZFS zstd block from a standard frame: header, the frame without magic, padding.
 * `oldBigEndian` writes the version/level word as older OpenZFS did on big-endian machines.
 */
function zfsBlock(frame: Uint8Array, level: number, psize: number, oldBigEndian = false) {
  const body = frame.subarray(4);
  const out = new Uint8Array(Math.max(psize, 8 + body.length));
  new DataView(out.buffer).setUint32(0, body.length);
  const version = 10507; // 1.5.7
  if (oldBigEndian) {
    out.set([0, (version >> 8) & 0xff, version & 0xff, level], 4);
  } else {
    out.set([level, 0, (version >> 8) & 0xff, version & 0xff], 4);
  }
  out.set(body, 8);
  out.fill(0xee, 8 + body.length);
  return out;
}

Deno.test({
  name: "decompressBlock(ZSTD) reads OpenZFS's header, the magicless frame, and ignores padding",
  ignore: !hasZstd,
  async fn() {
    for (const [name, data] of small.slice(1)) {
      const frame = await zstd(data, ["-3", "--no-check"]);
      const block = zfsBlock(frame, 3, ((frame.length + 4 + 511) >> 9) << 9);
      assertSameBytes(decompressBlock(ZIO_COMPRESS.ZSTD, block, data.length), data, name);
      const be = zfsBlock(frame, 123, 0, true);
      assertSameBytes(
        zstdDecompress(be, data.length),
        data,
        `${name}, old big-endian header layout`,
      );
    }
    const data = textLike(40000, 20);
    const block = zfsBlock(await zstd(data, ["-9"]), 9, 0);
    assertEquals(zfsZstdHeader(block).level, 9);
    assertEquals(zfsZstdHeader(block).version, 10507);
    assertThrows(() => zstdDecompress(block, 39999), RangeError, "logical size");
    assertThrows(() => zstdDecompress(block, 40001), SyntaxError, "40000 bytes, not 40001");
    const lying = block.slice();
    new DataView(lying.buffer).setUint32(0, block.length - 7);
    assertThrows(() => zstdDecompress(lying, 40000), SyntaxError, "only");
    const short = block.slice();
    new DataView(short.buffer).setUint32(0, block.length - 9);
    assertThrows(() => zstdDecompress(short, 40000), SyntaxError);
    for (const level of [0, 20, 102, 124, 255]) {
      const bad = block.slice();
      bad[4] = level;
      assertThrows(() => zstdDecompress(bad, 40000), SyntaxError, `invalid level ${level}`);
    }
    assertThrows(() => zstdDecompress(block.subarray(0, 7), 40000), SyntaxError, "too short");
    assertThrows(() => zstdDecompress(block, -1), RangeError);
  },
});

const fixtures = openzfsDir();
if (fixtures === null) {
  skipNote("zstd blocks of OpenZFS streams", "no OpenZFS fixtures (set ZSEND_OPENZFS_FIXTURES)");
}

Deno.test({
  name: "decompressBlock(ZSTD) expands every zstd WRITE of OpenZFS decompress.zsend to lsize",
  ignore: fixtures === null,
  async fn() {
    const bytes = await Deno.readFile(await unpackBz2(`${fixtures}/decompress.zsend.bz2`));
    let blocks = 0;
    for await (const r of readRecords([bytes])) {
      const h = r.header;
      if (h.type !== DRR.WRITE || h.compressiontype !== ZIO_COMPRESS.ZSTD) continue;
      const lsize = Number(h.logical_size);
      const header = zfsZstdHeader(r.payload);
      assertEquals(r.payload.length, Number(h.compressed_size));
      assert(header.compressedLength + 8 <= r.payload.length);
      assert(header.level >= 1 && header.level <= 19, `level ${header.level}`);
      assert(header.version >= 10400, `version ${header.version}`);
      const data = decompressBlock(h.compressiontype, r.payload, lsize);
      assertEquals(data.length, lsize);
      // The files hold lorem text, then zeros to the end of the block.
      const text = new TextDecoder().decode(data).replace(/\0+$/, "");
      assertMatch(text.slice(0, 200), /^[A-Za-z ,.?\n]+$/);
      // Cut anywhere, the frame fails cleanly.
      for (let n = 8; n < header.compressedLength + 8; n += 7) {
        const cut = r.payload.slice(0, n);
        new DataView(cut.buffer).setUint32(0, n - 8);
        try {
          zstdDecompress(cut, lsize);
          throw new Error(`cut to ${n} bytes, it decoded`);
        } catch (e) {
          assertCleanError(e, `cut to ${n}`);
        }
      }
      blocks++;
    }
    assertEquals(blocks, 4);
  },
});

Deno.test({
  name: "zsend recv, extract and cat of OpenZFS decompress.zsend give its zstd files whole",
  ignore: fixtures === null,
  async fn() {
    const stream = await unpackBz2(`${fixtures}/decompress.zsend.bz2`);
    const work = await Deno.makeTempDir({ prefix: "zsend-zstd-" });
    try {
      const recv = await runZsend(["recv", `${work}/store`, "test/fs", stream]);
      assertEquals(recv.code, 0, recv.stderr);
      const x = await runZsend([
        "extract",
        `${work}/store`,
        "test/fs@decompression",
        `${work}/out`,
      ]);
      assertEquals(x.code, 0, x.stderr);
      const names = [];
      for await (const e of Deno.readDir(`${work}/out`)) names.push(e.name);
      assertEquals(names.length, 3);
      for (const name of names) {
        const text = await Deno.readTextFile(`${work}/out/${name}`);
        // gen-lorem-files.py: one paragraph, repeated, joined by blank lines, then "\n".
        const paras = text.slice(0, -1).split("\n\n");
        assert(paras.length > 1 && paras.every((p) => p === paras[0]), name);
        assertMatch(paras[0]!, /^[A-Z][A-Za-z ,.?]+$/, name);
        const cat = await runZsend(["cat", `${work}/store`, "test/fs@decompression", name]);
        assertEquals(cat.code, 0, cat.stderr);
        assertEquals(cat.stdout, text, `cat ${name}`);
      }
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});
