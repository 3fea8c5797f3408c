/**
 * `zsend send -L`, `-e`, `-c` as `zfs send` has them, on a store filled from a stream with
 * large blocks, embedded blocks and compressed blocks (lz4, gzip, zle, lzjb): without the flags
 * the stream carries none of them (large blocks split into 128 KiB WRITEs, everything
 * decompressed) and real zfs-fuse (pool v23) takes it; with all three it is the stored data
 * again. And the OpenZFS `-L` fixture sent without `-L`.
 */

import { assert, assertEquals } from "@std/assert";
import { deflateSync } from "node:zlib";
import { decompressBlock } from "../core/compress/mod.ts";
import { DRR, FEATURE, HDRTYPE } from "../core/stream/constants.ts";
import { makeVersioninfo } from "../core/stream/record.ts";
import { StreamWriter } from "../core/stream/writer.ts";
import { openzfsDir, skipNote, unpackBz2 } from "./_fixtures.ts";
import { freshUnavailable } from "./_fresh.ts";
import { runZsend } from "./_run.ts";
import { manifestOfDirectory } from "./helpers/manifest.ts";
import { mulberry32 } from "./helpers/prng.ts";
import { storeFingerprint } from "./helpers/store_fingerprint.ts";
import { dumpRecords, type FlatRecord } from "./helpers/dump_json.ts";
import { TestPool } from "./helpers/zfs_pool.ts";
import { concat, ZplStreamBuilder } from "./helpers/zpl_stream_builder.ts";

const KiB = 1024, MiB = 1024 * 1024;
const LZJB = 3, GZIP_6 = 10, ZLE = 14, LZ4 = 15;

// Encoders for the test data: each handles the data made below (periodic, or zero runs), and
// makes what ZFS's decoders take.

/** LZ4 as ZFS stores it (4-byte big-endian length, then the block) of data with period `p`. */
function lz4Periodic(data: Uint8Array, p: number): Uint8Array {
  const n = data.length;
  const lengthBytes = (v: number) => {
    const out: number[] = [];
    for (; v >= 255; v -= 255) out.push(255);
    out.push(v);
    return out;
  };
  const m = n - p - 5; // one match of the period, the last 5 bytes literal
  assert(m >= 4 && p <= 0xFFFF);
  const block = [
    (Math.min(p, 15) << 4) | Math.min(m - 4, 15),
    ...(p >= 15 ? lengthBytes(p - 15) : []),
    ...data.subarray(0, p),
    p & 0xFF,
    p >> 8,
    ...(m - 4 >= 15 ? lengthBytes(m - 4 - 15) : []),
    5 << 4,
    ...data.subarray(n - 5),
  ];
  return new Uint8Array([
    block.length >>> 24,
    (block.length >>> 16) & 0xFF,
    (block.length >>> 8) & 0xFF,
    block.length & 0xFF,
    ...block,
  ]);
}

/** LZJB of data with period `p` (at most 1023): `p` literals, then matches of 66 bytes. */
function lzjbPeriodic(data: Uint8Array, p: number): Uint8Array {
  assert(p <= 1023);
  const out: number[] = [];
  let mapAt = -1, bit = 8;
  const item = (match: boolean, bytes: number[]) => {
    if (bit === 8) {
      mapAt = out.length;
      out.push(0);
      bit = 0;
    }
    if (match) out[mapAt]! |= 1 << bit;
    bit++;
    out.push(...bytes);
  };
  let i = 0;
  for (; i < p; i++) item(false, [data[i]!]);
  while (i < data.length) {
    const len = Math.min(66, data.length - i);
    if (len < 3) {
      item(false, [data[i]!]);
      i++;
      continue;
    }
    item(true, [((len - 3) << 2) | (p >> 8), p & 0xFF]);
    i += len;
  }
  return new Uint8Array(out);
}

/** ZLE: zero runs as one byte each, other bytes as literal runs. */
function zle(data: Uint8Array): Uint8Array {
  const out: number[] = [];
  let i = 0;
  while (i < data.length) {
    let z = 0;
    while (i + z < data.length && data[i + z] === 0 && z < 192) z++;
    if (z > 0) {
      out.push(z - 1 + 64);
      i += z;
      continue;
    }
    let l = 0;
    while (i + l < data.length && data[i + l] !== 0 && l < 64) l++;
    out.push(l - 1, ...data.subarray(i, i + l));
    i += l;
  }
  return new Uint8Array(out);
}

/** `len` bytes repeating a random pattern of `p` bytes. */
function periodic(len: number, p: number, seed: number): Uint8Array {
  const r = mulberry32(seed);
  const out = new Uint8Array(len);
  for (let i = 0; i < p; i++) out[i] = 1 + Math.floor(r() * 255);
  for (let i = p; i < len; i++) out[i] = out[i - p]!;
  return out;
}

function random(len: number, seed: number): Uint8Array {
  const r = mulberry32(seed);
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = Math.floor(r() * 256);
  return out;
}

/** How the stream stores one block. */
type Stored = { codec: number; bytes: Uint8Array } | { embedded: number; bytes: Uint8Array };

/**
 * The files of the test filesystem at @s1 or @s2 (the second 1 MiB block of big.bin and the
 * embedded block of tiny-lz4 rewritten): name, object, block size, blocks and how each is
 * stored.
 */
function files(version: 1 | 2 = 1) {
  const sparse = new Uint8Array(128 * KiB);
  sparse.set(random(4000, 9), 20_000);
  sparse.set(random(3000, 10), 90_000);
  const big0 = random(MiB, 1), big1 = periodic(MiB, 1000, version === 1 ? 2 : 12);
  const odd = periodic(300_032, 777, 3); // one block of a size that is no power of two
  const lz4 = periodic(128 * KiB, 500, 4), lzjb = periodic(128 * KiB, 900, 5);
  const e1 = periodic(512, 20, version === 1 ? 6 : 16), e2 = periodic(512, 24, 7);
  return [
    // Two 1 MiB blocks, the first stored plain, the second lz4.
    {
      name: "big.bin",
      object: 4,
      blksz: MiB,
      blocks: [
        { codec: 0, bytes: big0 },
        { codec: LZ4, bytes: lz4Periodic(big1, 1000) },
      ] as Stored[],
      content: concat([big0, big1]),
    },
    {
      name: "odd.bin",
      object: 5,
      blksz: 300_032,
      blocks: [{ codec: GZIP_6, bytes: new Uint8Array(deflateSync(odd)) }] as Stored[],
      content: odd.subarray(0, 300_000),
    },
    {
      name: "codecs.bin",
      object: 6,
      blksz: 128 * KiB,
      blocks: [
        { codec: LZ4, bytes: lz4Periodic(lz4, 500) },
        { codec: ZLE, bytes: zle(sparse) },
        { codec: LZJB, bytes: lzjbPeriodic(lzjb, 900) },
      ] as Stored[],
      content: concat([lz4, sparse, lzjb]),
    },
    {
      name: "tiny-lz4",
      object: 7,
      blksz: 512,
      blocks: [{ embedded: LZ4, bytes: lz4Periodic(e1, 20) }] as Stored[],
      content: e1,
    },
    {
      name: "tiny-lzjb",
      object: 8,
      blksz: 512,
      blocks: [{ embedded: LZJB, bytes: lzjbPeriodic(e2, 24) }] as Stored[],
      content: e2.subarray(0, 500),
    },
  ];
}

const S1_GUID = 0x1234_5678_9ABC_DEFn, S2_GUID = 0x2222_3333_4444_5555n;

/**
 * A ZPL v4 filesystem as `zfs send -L -e -c` of a modern pool would send it: LARGE_BLOCKS,
 * EMBED_DATA, COMPRESSED and LZ4 with the blocks stored as {@linkcode files} says; @s1 full,
 * or @s2 as an incremental from @s1 (the two rewritten blocks and their objects).
 */
function modernStream(version: 1 | 2 = 1): Uint8Array {
  const b = new ZplStreamBuilder({
    toname: `src/fs@s${version}`,
    toguid: version === 1 ? S1_GUID : S2_GUID,
  });
  for (const f of files(version)) {
    b.file(f.object, new Uint8Array(0), { size: f.content.length });
    b.change(f.object, (o) => o.blksz = f.blksz);
    b.entry(3, f.name, f.object);
  }
  b.file(9, new TextEncoder().encode("plain\n"));
  b.entry(3, "plain.txt", 9);
  const stored = new Map(files(version).map((f) => [f.object, f]));
  const changedObject = (object: number) => version === 1 || object === 4 || object === 7;
  const changed = (object: number, block: number) =>
    changedObject(object) && (version === 1 || object !== 4 || block === 1);
  const w = new StreamWriter({ littleEndian: true });
  const chunks: Uint8Array[] = [];
  const features = FEATURE.LARGE_BLOCKS | FEATURE.EMBED_DATA | FEATURE.COMPRESSED | FEATURE.LZ4;
  chunks.push(...w.begin({
    versioninfo: makeVersioninfo(HDRTYPE.SUBSTREAM, features),
    creation_time: 1_700_000_000n,
    objset_type: 2,
    toguid: b.toguid,
    fromguid: version === 1 ? 0n : S1_GUID,
    toname: b.toname,
  }));
  for (const o of b.objects()) {
    const f = stored.get(Number(o.object));
    if (!changedObject(Number(o.object))) continue;
    const payload = new Uint8Array(Math.ceil(o.bonus.length / 8) * 8);
    payload.set(o.bonus);
    chunks.push(...w.write({
      type: DRR.OBJECT,
      object: BigInt(o.object),
      object_type: o.type,
      bonustype: o.bonustype,
      blksz: o.blksz,
      bonuslen: o.bonus.length,
      checksumtype: 7,
      compress: 0, // inherit, as OpenZFS dnodes say (zfs-fuse knows no codec 15 here)
      toguid: b.toguid,
    }, payload));
    if (f === undefined) {
      for (const [id, data] of o.blocks) {
        const block = new Uint8Array(o.blksz);
        block.set(data);
        chunks.push(...w.write({
          type: DRR.WRITE,
          object: BigInt(o.object),
          object_type: o.type,
          offset: BigInt(Number(id) * o.blksz),
          logical_size: BigInt(o.blksz),
          toguid: b.toguid,
          checksumtype: 7,
        }, block));
      }
      continue;
    }
    f.blocks.forEach((s, i) => {
      if (!changed(f.object, i)) return;
      const offset = BigInt(i * f.blksz);
      if ("embedded" in s) {
        const padded = new Uint8Array(Math.ceil(s.bytes.length / 8) * 8);
        padded.set(s.bytes);
        chunks.push(...w.write({
          type: DRR.WRITE_EMBEDDED,
          object: BigInt(o.object),
          offset,
          length: BigInt(f.blksz),
          toguid: b.toguid,
          compression: s.embedded,
          etype: 0,
          lsize: f.blksz,
          psize: s.bytes.length,
        }, padded));
        return;
      }
      chunks.push(...w.write({
        type: DRR.WRITE,
        object: BigInt(o.object),
        object_type: o.type,
        offset,
        logical_size: BigInt(f.blksz),
        toguid: b.toguid,
        checksumtype: 7,
        compressiontype: s.codec,
        compressed_size: BigInt(s.codec === 0 ? 0 : s.bytes.length),
      }, s.bytes));
    });
  }
  chunks.push(...w.end(b.toguid));
  return concat(chunks);
}

async function ok(args: string[], stdin?: Uint8Array): Promise<Uint8Array> {
  const r = await runZsend(args, stdin === undefined ? {} : { stdin });
  assertEquals(r.code, 0, `zsend ${args.join(" ")}: ${r.stderr}`);
  return r.stdoutBytes;
}

type Rec = FlatRecord;

/** The records of a stream, from `dump --json` (of a file: its output is larger than a pipe). */
async function records(stream: Uint8Array): Promise<Rec[]> {
  const file = await Deno.makeTempFile({ prefix: "zsend-sf-" });
  await Deno.writeFile(file, stream);
  const out = new TextDecoder().decode(await ok(["dump", "--json", file]));
  await Deno.remove(file);
  return dumpRecords(out);
}

const features = (rs: Rec[]) => BigInt(rs[0]!.features);
const count = (rs: Rec[], type: string) => rs.filter((r) => r.record === type).length;

/** A store holding src/fs@s1 from {@linkcode modernStream}. */
async function modernStore(): Promise<string> {
  const store = `${await Deno.makeTempDir({ prefix: "zsend-sf-" })}/s`;
  await ok(["recv", store, "src/fs", "-"], modernStream());
  return store;
}

/** The tree of a snapshot in a store, as extracted. */
async function extracted(store: string, snap: string): Promise<string[]> {
  const dir = `${await Deno.makeTempDir({ prefix: "zsend-sf-" })}/x`;
  await ok(["extract", store, snap, dir]);
  return await manifestOfDirectory(dir);
}

Deno.test("zsend send -L -e -c: each flag keeps its kind of block as stored, and BEGIN says so", async () => {
  const store = await modernStore();
  // The files are what the stream holds.
  for (const f of files()) {
    assertEquals(await ok(["cat", store, "src/fs@s1", `/${f.name}`]), f.content, f.name);
  }
  const want = await extracted(store, "src/fs@s1");
  const L = FEATURE.LARGE_BLOCKS, E = FEATURE.EMBED_DATA, C = FEATURE.COMPRESSED;
  const cases: [string[], number][] = [
    [[], 0],
    [["-L"], L],
    [["-e"], E | FEATURE.LZ4],
    [["-c"], C | FEATURE.LZ4],
    [["-L", "-e", "-c"], L | E | C | FEATURE.LZ4],
  ];
  for (const [flags, feats] of cases) {
    const what = `send ${flags.join(" ") || "(no flags)"}`;
    const stream = await ok(["send", ...flags, store, "src/fs@s1"]);
    await ok(["verify", "-"], stream);
    const rs = await records(stream);
    assertEquals(features(rs), BigInt(feats), what);
    const writes = rs.filter((r) => r.record === "WRITE");
    const objects = rs.filter((r) => r.record === "OBJECT");
    const large = flags.includes("-L"), embed = flags.includes("-e");
    const compressed = flags.includes("-c");
    // -L: blocks over 128 KiB whole, OBJECT with the real block size; else split as OpenZFS
    // splits them, 128 KiB at a time (the odd 300032-byte block: 128 + 128 + 37888 bytes),
    // checksum OFF (2) and no key.
    const big = objects.find((o) => o.object === "4")!,
      odd = objects.find((o) => o.object === "5")!;
    assertEquals([big.blksz, odd.blksz], large ? [MiB, 300_032] : [128 * KiB, 128 * KiB], what);
    const oddWrites = writes.filter((w) => w.object === "5");
    assertEquals(
      oddWrites.map((w) => [Number(w.offset), Number(w.logical_size)]),
      large ? [[0, 300_032]] : [[0, 131072], [131072, 131072], [262144, 37888]],
      what,
    );
    if (!large) {
      assert(writes.every((w) => Number(w.logical_size) <= 128 * KiB), what);
      const split = [...oddWrites, ...writes.filter((w) => w.object === "4")];
      assertEquals(
        split.filter((w) => w.checksumtype !== 2 || w.key_prop !== "0" || w.compressiontype !== 0),
        [],
        what,
      );
    }
    // -e: the two embedded blocks as WRITE_EMBEDDED; else WRITEs of 512 bytes.
    assertEquals(count(rs, "WRITE_EMBEDDED"), embed ? 2 : 0, what);
    const tiny = writes.filter((w) => w.object === "7" || w.object === "8");
    assertEquals(tiny.map((w) => w.logical_size), embed ? [] : ["512", "512"], what);
    // -c: compressed blocks as stored, with their codec (the large ones only with -L too).
    const codecs = writes.filter((w) => w.compressiontype !== 0)
      .map((w) => `${w.object}:${w.offset}:${w.compressiontype}`);
    assertEquals(
      codecs,
      compressed
        ? [
          ...(large ? [`4:${MiB}:${LZ4}`, `5:0:${GZIP_6}`] : []),
          `6:0:${LZ4}`,
          `6:131072:${ZLE}`,
          `6:262144:${LZJB}`,
        ]
        : [],
      what,
    );
    // Whatever went out, the same files come back.
    const back = `${await Deno.makeTempDir({ prefix: "zsend-sf-" })}/s`;
    await ok(["recv", back, "src/fs", "-"], stream);
    assertEquals(await extracted(back, "src/fs@s1"), want, what);
    if (flags.length === 3) {
      assertEquals(storeFingerprint(back), storeFingerprint(store), "-L -e -c: as stored");
    }
  }
});

Deno.test("zsend send -i without -L -e -c: a rewritten large block goes out split, onto a base sent so", async () => {
  const store = await modernStore();
  await ok(["recv", store, "src/fs", "-"], modernStream(2));
  for (const f of files(2)) {
    assertEquals(await ok(["cat", store, "src/fs@s2", `/${f.name}`]), f.content, f.name);
  }
  const incr = await ok(["send", "-i", "s1", store, "src/fs@s2"]);
  await ok(["verify", "-"], incr);
  const rs = await records(incr);
  assertEquals(features(rs), 0n);
  assertEquals(
    rs.filter((r) => r.record === "WRITE" && r.object === "4").map((
      r,
    ) => [Number(r.offset), Number(r.logical_size)]),
    Array.from({ length: 8 }, (_, i) => [MiB + i * 128 * KiB, 128 * KiB]),
  );
  assertEquals(
    rs.filter((r) => r.record === "WRITE" && r.object === "7").map((r) => r.logical_size),
    ["512"],
  );
  assertEquals(rs.filter((r) => r.record === "OBJECT").map((r) => [r.object, r.blksz]), [
    ["4", 128 * KiB],
    ["7", 512],
  ]);
  const want = await extracted(store, "src/fs@s2");
  for (const flags of [[], ["-L", "-e", "-c"]]) {
    const back = `${await Deno.makeTempDir({ prefix: "zsend-sf-" })}/s`;
    await ok(["recv", back, "src/fs", "-"], await ok(["send", ...flags, store, "src/fs@s1"]));
    await ok(
      ["recv", back, "src/fs", "-"],
      await ok(["send", ...flags, "-i", "s1", store, "src/fs@s2"]),
    );
    assertEquals(await extracted(back, "src/fs@s2"), want, flags.join(" "));
    if (flags.length > 0) {
      assertEquals(
        storeFingerprint(back, { meta: false }),
        storeFingerprint(store, { meta: false }),
      );
    }
  }
});

Deno.test("zsend send without -c names a codec it cannot decompress, and -c sends the block as stored", async () => {
  // A block in a codec number the registry does not have (a zstd block until zstd lands
  // behaves the same way: its number names it).
  const stream = modernStream();
  const store = `${await Deno.makeTempDir({ prefix: "zsend-sf-" })}/s`;
  await ok(["recv", store, "src/fs", "-"], stream);
  const { Store } = await import("../io/store/store.ts");
  const s = Store.open(store);
  // Claim the stored lz4 block of codecs.bin is compressed with codec 99.
  const row = s.db.prepare("SELECT meta FROM block_map WHERE object = 6 AND offset = 0").get() as {
    meta: Uint8Array;
  };
  const meta = new Uint8Array(row.meta);
  meta[50] = 99;
  s.db.prepare("UPDATE block_map SET meta = ? WHERE object = 6 AND offset = 0").run(meta);
  s.close();
  const r = await runZsend(["send", store, "src/fs@s1"]);
  assertEquals(r.code, 1, r.stderr);
  assert(/object 6's block at 0.*compression 99.*-c/.test(r.stderr), r.stderr);
  const rs = await records(await ok(["send", "-c", store, "src/fs@s1"]));
  assert(rs.some((w) => w.record === "WRITE" && w.object === "6" && w.compressiontype === 99));
});

Deno.test("zsend send of a snapshot with LARGE_MICROZAP or LONGNAME: kept, and without -L refused as OpenZFS refuses it", async () => {
  const store = await modernStore();
  const { Store } = await import("../io/store/store.ts");
  const s = Store.open(store);
  const both = BigInt(FEATURE.LARGE_MICROZAP | FEATURE.LONGNAME);
  s.db.prepare("UPDATE snapshots SET features = ?").run(both.toString(16));
  s.close();
  const r = await runZsend(["send", store, "src/fs@s1"]);
  assertEquals(r.code, 1);
  assert(/large microzaps, need -L/.test(r.stderr), r.stderr);
  const rs = await records(await ok(["send", "-L", store, "src/fs@s1"]));
  assertEquals(features(rs), both | BigInt(FEATURE.LARGE_BLOCKS));
});

const lpDir = openzfsDir();
if (lpDir === null) skipNote("the OpenZFS long-payloads fixture sent without -L", "no fixtures");

Deno.test({
  name: "zsend send of the OpenZFS -L fixture without -L splits its 16 MiB blocks as OpenZFS does",
  ignore: lpDir === null,
  async fn() {
    const file = await unpackBz2(`${lpDir}/little-endian-long-payloads.zsend.bz2`);
    const store = `${await Deno.makeTempDir({ prefix: "zsend-sf-" })}/s`;
    await ok(["recv", store, "test/lp", file]);
    const plain = await ok(["send", store, "test/lp@long-payloads"]);
    await ok(["verify", "-"], plain);
    const rs = await records(plain);
    // SA_SPILL stays (a ZPL with system attributes); LARGE_BLOCKS goes.
    assertEquals(features(rs), BigInt(FEATURE.SA_SPILL));
    assert(rs.every((r) => r.record !== "OBJECT" || Number(r.blksz) <= 128 * KiB));
    assert(rs.every((r) => r.record !== "WRITE" || Number(r.logical_size) <= 128 * KiB));
    // The 8520704-byte block of object 128: 65 WRITEs of 128 KiB and one of 1024 bytes.
    const w128 = rs.filter((r) => r.record === "WRITE" && r.object === "128");
    assertEquals(w128.length, 66);
    assertEquals(w128.at(-1)!.logical_size, "1024");
    const back = `${await Deno.makeTempDir({ prefix: "zsend-sf-" })}/s`;
    await ok(["recv", back, "test/lp", "-"], plain);
    assertEquals(
      await extracted(back, "test/lp@long-payloads"),
      await extracted(store, "test/lp@long-payloads"),
    );
    // With -L the stream is the fixture's, record for record.
    const large = await records(await ok(["send", "-L", store, "test/lp@long-payloads"]));
    assertEquals(features(large), BigInt(FEATURE.SA_SPILL | FEATURE.LARGE_BLOCKS));
    const theirs = await records(await Deno.readFile(file));
    const shape = (r: Rec) =>
      r.record === "WRITE"
        ? `W ${r.object} ${r.offset} ${r.logical_size} ${r.key_cksum}`
        : r.record === "OBJECT"
        ? `O ${r.object} ${r.blksz}`
        : "";
    assertEquals(large.map(shape).filter((s) => s), theirs.map(shape).filter((s) => s));
  },
});

/** Whether the codec registry decompresses zstd (codec 16) yet. */
function zstdRegistered(): boolean {
  try {
    decompressBlock(16, new Uint8Array(16), 16);
    return true;
  } catch (e) {
    return !(e instanceof TypeError && /not implemented/.test(e.message));
  }
}

Deno.test({
  name: "zsend send of the OpenZFS zstd fixture: with -c -e as it came, without -c decompressed",
  ignore: lpDir === null,
  async fn() {
    const file = await unpackBz2(`${lpDir}/decompress.zsend.bz2`);
    const store = `${await Deno.makeTempDir({ prefix: "zsend-sf-" })}/s`;
    await ok(["recv", store, "test/z", file]);
    const snap = "test/z@decompression";
    const theirs = await records(await Deno.readFile(file));
    const asStored = await ok(["send", "-c", "-e", store, snap]);
    await ok(["verify", "-"], asStored);
    const ce = await records(asStored);
    assertEquals(features(ce), features(theirs));
    const blocks = (rs: Rec[]) =>
      rs.filter((r) => r.record.startsWith("WRITE")).map((r) =>
        `${r.record} ${r.object} ${r.offset} ${
          r.compressiontype ?? r.compression
        } ${r.payload_size}`
      );
    assertEquals(blocks(ce), blocks(theirs));
    // -e alone: the lz4 embedded blocks stay embedded, the zstd WRITEs go out decompressed.
    const r = await runZsend(["send", "-e", store, snap]);
    if (!zstdRegistered()) {
      assertEquals(r.code, 1);
      assert(/zstd/.test(r.stderr), r.stderr);
      return;
    }
    assertEquals(r.code, 0, r.stderr);
    const e = await records(r.stdoutBytes);
    assertEquals(features(e), BigInt(FEATURE.SA_SPILL | FEATURE.EMBED_DATA | FEATURE.LZ4));
    assert(e.every((w) => w.record !== "WRITE" || w.compressiontype === 0));
    const plain = await ok(["send", store, snap]);
    await ok(["verify", "-"], plain);
    const p = await records(plain);
    assertEquals(features(p), BigInt(FEATURE.SA_SPILL));
    assertEquals(count(p, "WRITE_EMBEDDED"), 0);
    assert(p.every((w) => w.record !== "WRITE" || w.compressiontype === 0));
    const back = `${await Deno.makeTempDir({ prefix: "zsend-sf-" })}/s`;
    await ok(["recv", back, "test/z", "-"], plain);
    assertEquals(await extracted(back, snap), await extracted(store, snap));
  },
});

const why = freshUnavailable();
if (why !== null) skipNote("zsend send without -L -e -c into real zfs-fuse", why);

Deno.test({
  name:
    "real zfs-fuse receives zsend send and send -i (no -L -e -c) of large, embedded, compressed blocks",
  ignore: why !== null,
  async fn() {
    const store = await modernStore();
    await ok(["recv", store, "src/fs", "-"], modernStream(2));
    const pool = await TestPool.create();
    try {
      const tree = async () => {
        const at = await pool.mount("fs");
        try {
          return await manifestOfDirectory(at);
        } finally {
          await pool.unmount("fs");
        }
      };
      await pool.receive("fs", await ok(["send", store, "src/fs@s1"]));
      assertEquals(await tree(), await extracted(store, "src/fs@s1"));
      await pool.receive("fs", await ok(["send", "-i", "s1", store, "src/fs@s2"]));
      assertEquals(await tree(), await extracted(store, "src/fs@s2"));
    } finally {
      await pool.destroy();
    }
  },
});
