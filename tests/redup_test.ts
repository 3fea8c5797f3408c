/**
 * redup: dedup streams of zfs-fuse and OpenZFS as plain ones, checked record by record, by
 * `zsend verify`, by `zsend recv`, and by a real `zfs receive` whose mounted tree must equal the
 * snapshot's manifest.
 */

import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { DRR, FEATURE, HDRTYPE } from "../core/stream/constants.ts";
import { StreamError } from "../core/stream/errors.ts";
import { readRecordBatches, readRecords, type StreamRecord } from "../core/stream/reader.ts";
import { featureFlags, makeVersioninfo } from "../core/stream/record.ts";
import { fletcher4 } from "../core/checksum/fletcher4.ts";
import {
  MemoryRedupIndex,
  redupByReference,
  type RedupIndex,
  redupRecords,
} from "../core/transform/redup.ts";
import { transcodeRecords } from "../core/transform/transcode.ts";
import { verifyStream } from "../core/stream/verify.ts";
import { StreamWriter } from "../core/stream/writer.ts";
import { DiskRedupIndex } from "../io/redup_index.ts";
import { openzfsDir, skipNote, unpackBz2, ZFS_FUSE_DIR } from "./_fixtures.ts";
import { freshStreams, freshUnavailable } from "./_fresh.ts";
import { runZsend, zsendCommand } from "./_run.ts";
import { manifestDiff, treeManifest } from "./helpers/tree_manifest.ts";
import { TestPool } from "./helpers/zfs_pool.ts";
import { concat } from "@std/bytes";
import { snapshotNames } from "./helpers/list_json.ts";

const DEDUP_BITS = BigInt(FEATURE.DEDUP | FEATURE.DEDUPPROPS);

async function records(bytes: Uint8Array): Promise<StreamRecord[]> {
  return await Array.fromAsync(readRecords([bytes]));
}

async function redupWith(bytes: Uint8Array, index: RedupIndex): Promise<Uint8Array> {
  return concat(await Array.fromAsync(redupRecords(readRecords([bytes]), index)));
}

/** {@linkcode redupByReference}'s output with every payload reference read from `bytes`. */
async function redupByReferenceWith(bytes: Uint8Array, index: RedupIndex): Promise<Uint8Array> {
  const out: Uint8Array[] = [];
  const sink = {
    write: (b: Uint8Array) => out.push(b.slice()),
    writeRange: (at: number, n: number) => out.push(bytes.slice(at, at + n)),
  };
  await redupByReference(readRecordBatches([bytes], { payloadChecksums: true }), index, sink);
  return concat(out);
}

/** `zsend redup FILE`, checked to succeed; the output's bytes. */
async function redupCli(path: string): Promise<Uint8Array> {
  const r = await runZsend(["redup", path]);
  assertEquals(r.code, 0, r.stderr);
  return r.stdoutBytes;
}

/**
 * Checks a redup against its input, record by record: the same number of records; each
 * WRITE_BYREF now the WRITE it named, with that WRITE's fields and payload and its own object,
 * offset and toguid; every BEGIN without DEDUP/DEDUPPROPS; everything else the same; the
 * checksum style kept; and the whole verifies.
 */
async function checkRedup(input: Uint8Array, output: Uint8Array): Promise<number> {
  const before = await records(input);
  const after = await records(output);
  assertEquals(after.length, before.length);
  const written = new Map<string, StreamRecord>();
  let replaced = 0;
  for (let i = 0; i < before.length; i++) {
    const a = before[i]!, b = after[i]!;
    assertEquals(b.littleEndian, a.littleEndian);
    const ha = a.header, hb = b.header;
    const style = (r: StreamRecord) => r.header.record_checksum.some((w) => w !== 0n);
    if (ha.type !== DRR.BEGIN) assertEquals(style(b), style(a), `record ${i} checksum style`);
    if (ha.type === DRR.BEGIN && hb.type === DRR.BEGIN) {
      assertEquals(featureFlags(hb.versioninfo) & DEDUP_BITS, 0n);
      assertEquals(hb.versioninfo, ha.versioninfo & ~(DEDUP_BITS << 2n));
      assertEquals({ ...hb, versioninfo: 0n }, { ...ha, versioninfo: 0n });
      assertEquals(b.payload, a.payload, "the compound header's nvlist is left as it is");
    } else if (ha.type === DRR.WRITE_BYREF) {
      assertEquals(hb.type, DRR.WRITE, `record ${i}`);
      const ref = written.get(`${ha.refguid}/${ha.refobject}/${ha.refoffset}`);
      if (ref === undefined) throw new Error(`record ${i}: no WRITE for the reference`);
      const { record_checksum: _1, ...want } = {
        ...ref.header,
        object: ha.object,
        offset: ha.offset,
        toguid: ha.toguid,
      };
      const { record_checksum: _2, ...got } = hb;
      assertEquals(got, want, `record ${i}`);
      assertEquals(b.payload, ref.payload, `record ${i} payload`);
      replaced++;
    } else {
      const { record_checksum: _1, ...x } = ha;
      const { record_checksum: _2, ...y } = hb;
      if (ha.type === DRR.END) {
        assertEquals({ ...y, checksum: null }, { ...x, checksum: null }, `record ${i}`);
      } else assertEquals(y, x, `record ${i}`);
      assertEquals(b.payload, a.payload, `record ${i} payload`);
      if (ha.type === DRR.WRITE) written.set(`${ha.toguid}/${ha.object}/${ha.offset}`, a);
    }
  }
  assert(!after.some((r) => r.header.type === DRR.WRITE_BYREF));
  await verifyStream([output]);
  return replaced;
}

Deno.test("zsend redup: zfs-fuse fs-s2.dedup becomes a plain stream that verifies", async () => {
  const path = `${ZFS_FUSE_DIR}/fs-s2.dedup.zstream`;
  const input = await Deno.readFile(path);
  const output = await redupCli(path);
  assertEquals(await checkRedup(input, output), 2);
  const v = await runZsend(["verify", "-"], { stdin: output });
  assertEquals(v.code, 0, v.stderr + v.stdout);
  assertMatch(v.stdout, /END checksums only/); // old stream: no record checksums made up
  // From a pipe (blocks spooled to a temporary file) the bytes are the same.
  const piped = await runZsend(["redup", "-v"], { stdin: input });
  assertEquals(piped.code, 0, piped.stderr);
  assertEquals(piped.stdoutBytes, output);
  assertMatch(piped.stderr, /2 WRITE_BYREF replaced.*bytes spooled/);
  // Into a file (headers and payloads gathered by writev from the input mapped), without
  // mappings (sendfile), and without the native library (payloads read), the same bytes.
  const out = await Deno.makeTempFile();
  try {
    for (const env of [{}, { ZSEND_NO_MMAP: "1" }, { ZSEND_NO_NATIVE: "1" }]) {
      const [exe, ...pre] = zsendCommand();
      const sh = await new Deno.Command("sh", {
        args: ["-c", 'exec "$@" > "$OUT"', "sh", exe!, ...pre, "redup", path],
        env: { ...env, OUT: out },
      }).output();
      assertEquals(sh.code, 0, new TextDecoder().decode(sh.stderr));
      assertEquals(await Deno.readFile(out), output, JSON.stringify(env));
    }
  } finally {
    await Deno.remove(out);
  }
  // A plain stream goes through unchanged.
  const plain = await Deno.readFile(`${ZFS_FUSE_DIR}/fs-s1.full.zstream`);
  assertEquals(await redupCli(`${ZFS_FUSE_DIR}/fs-s1.full.zstream`), plain);
});

Deno.test("zsend redup: OpenZFS's compound dedup stream; zsend recv -d takes the result", async () => {
  const dir = openzfsDir();
  if (dir === null) return skipNote("OpenZFS dedup.zsend", "no OpenZFS fixtures");
  const path = await unpackBz2(`${dir}/dedup.zsend.bz2`);
  const input = await Deno.readFile(path);
  const output = await redupCli(path);
  // 51 references, 8 of them from test/fs/subfs into the earlier substream of test/fs.
  assertEquals(await checkRedup(input, output), 51);
  const report = await verifyStream([output]);
  assertEquals(report.snapshots, ["test/fs@snap", "test/fs/subfs@snap"]);
  assert(report.compound && report.recordChecksums);
  const v = await runZsend(["verify", "-"], { stdin: output });
  assertEquals(v.code, 0, v.stderr + v.stdout);
  const store = `${await Deno.makeTempDir({ prefix: "zsend-redup-" })}/store`;
  try {
    const r = await runZsend(["recv", "-d", store, "pool"], { stdin: output });
    assertEquals(r.code, 0, r.stderr);
    const names = await snapshotNames(store);
    assertEquals(names.sort(), ["pool/fs/subfs@snap", "pool/fs@snap"]);
  } finally {
    await Deno.remove(store.slice(0, -"/store".length), { recursive: true });
  }
});

Deno.test("redupRecords(): the disk index, from a file or spooled, and memory agree", async () => {
  const dir = openzfsDir();
  const paths = [`${ZFS_FUSE_DIR}/fs-s2.dedup.zstream`];
  if (dir !== null) paths.push(await unpackBz2(`${dir}/dedup.zsend.bz2`));
  for (const path of paths) {
    const input = await Deno.readFile(path);
    const memory = await redupWith(input, new MemoryRedupIndex());
    {
      using fromFile = DiskRedupIndex.create({ source: path });
      assertEquals(await redupWith(input, fromFile), memory);
      assertEquals(fromFile.spooledBytes, 0);
    }
    {
      // Payloads by where they lie in the file: located by the index, or (a memory index)
      // given as bytes.
      using located = DiskRedupIndex.create({ source: path });
      assertEquals(await redupByReferenceWith(input, located), memory);
      assertEquals(await redupByReferenceWith(input, new MemoryRedupIndex()), memory);
    }
    using spooled = DiskRedupIndex.create();
    assertEquals(await redupWith(input, spooled), memory);
    assert(spooled.spooledBytes > 0);
  }
});

Deno.test("redupRecords() keeps a big-endian stream big-endian", async () => {
  const input = await Deno.readFile(`${ZFS_FUSE_DIR}/fs-s2.dedup.zstream`);
  const be = concat(await Array.fromAsync(transcodeRecords(readRecords([input]), false)));
  const out = await redupWith(be, new MemoryRedupIndex());
  assertEquals((await records(out))[0]!.littleEndian, false);
  await checkRedup(be, out);
  // The same as converting the little-endian result.
  const le = await redupWith(input, new MemoryRedupIndex());
  assertEquals(out, concat(await Array.fromAsync(transcodeRecords(readRecords([le]), false))));
});

/** A compound dedup stream: a WRITE in @a, then references from @b into @a and into @b. */
function compoundDedup(refs: { guid: bigint; object: bigint; offset: bigint }[]): Uint8Array {
  const w = new StreamWriter();
  const dedup = BigInt(FEATURE.DEDUP | FEATURE.DEDUPPROPS);
  const block = (n: number) => new Uint8Array(4096).fill(n);
  const write = (guid: bigint, object: bigint, offset: bigint, n: number) =>
    w.write({
      type: DRR.WRITE,
      object,
      object_type: 19,
      offset,
      logical_size: 4096n,
      toguid: guid,
      checksumtype: 8,
      flags: 1,
      key_prop: 0x8000700007n,
    }, block(n));
  const obj = (guid: bigint, object: bigint) =>
    w.write({ type: DRR.OBJECT, object, object_type: 19, blksz: 4096, toguid: guid });
  return concat([
    ...w.begin({
      toname: "p/fs@b",
      versioninfo: makeVersioninfo(HDRTYPE.COMPOUNDSTREAM, dedup),
    }),
    ...w.end(0n),
    ...w.begin({
      toname: "p/fs@a",
      toguid: 0xaan,
      objset_type: 2,
      versioninfo: makeVersioninfo(HDRTYPE.SUBSTREAM, dedup),
    }),
    ...obj(0xaan, 8n),
    ...write(0xaan, 8n, 0n, 1),
    ...write(0xaan, 8n, 4096n, 2),
    ...w.end(),
    ...w.begin({
      toname: "p/fs@b",
      toguid: 0xbbn,
      fromguid: 0xaan,
      objset_type: 2,
      versioninfo: makeVersioninfo(HDRTYPE.SUBSTREAM, dedup),
    }),
    ...obj(0xbbn, 9n),
    ...write(0xbbn, 9n, 0n, 3),
    ...refs.flatMap((r, i) =>
      w.write({
        type: DRR.WRITE_BYREF,
        object: 9n,
        offset: 4096n * BigInt(i + 1),
        length: 4096n,
        toguid: 0xbbn,
        refguid: r.guid,
        refobject: r.object,
        refoffset: r.offset,
        checksumtype: 8,
        flags: 1,
      })
    ),
    ...w.end(),
    ...w.finalEnd(),
  ]);
}

Deno.test("redupRecords() resolves references into earlier substreams by their guid", async () => {
  const input = compoundDedup([
    { guid: 0xaan, object: 8n, offset: 4096n },
    { guid: 0xbbn, object: 9n, offset: 0n },
    { guid: 0xaan, object: 8n, offset: 0n },
  ]);
  for (const index of [new MemoryRedupIndex(), DiskRedupIndex.create()]) {
    const out = await redupWith(input, index);
    if (index instanceof DiskRedupIndex) index.close();
    assertEquals(await checkRedup(input, out), 3);
    const writes = (await records(out)).filter((r) => r.header.type === DRR.WRITE);
    assertEquals(writes.map((r) => r.payload[0]), [1, 2, 3, 2, 3, 1]);
    const header = (await records(out))[0]!.header;
    assert(header.type === DRR.BEGIN && header.versioninfo === BigInt(HDRTYPE.COMPOUNDSTREAM));
  }
});

Deno.test("redupRecords() refuses a reference to a block nobody wrote", async () => {
  for (
    const ref of [
      { guid: 0xaan, object: 8n, offset: 8192n }, // past what @a wrote
      { guid: 0xccn, object: 8n, offset: 0n }, // a snapshot not in the stream
      { guid: 0xbbn, object: 9n, offset: 8192n }, // itself, later in the stream
    ]
  ) {
    const input = compoundDedup([ref]);
    const e = await assertRejects(
      () => redupWith(input, new MemoryRedupIndex()),
      StreamError,
      "which no earlier WRITE of the stream wrote",
    );
    assertEquals(e.type, DRR.WRITE_BYREF);
    using disk = DiskRedupIndex.create();
    await assertRejects(() => redupWith(input, disk), StreamError);
  }
  const path = await Deno.makeTempFile({ suffix: ".zstream" });
  await Deno.writeFile(path, compoundDedup([{ guid: 0xccn, object: 1n, offset: 0n }]));
  const r = await runZsend(["redup", path]);
  await Deno.remove(path);
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /record \d+ \(WRITE_BYREF at byte \d+\): WRITE_BYREF refers to/);
  // A damaged stream is refused before anything is made of it.
  const bad = await Deno.readFile(`${ZFS_FUSE_DIR}/fs-s2.dedup.zstream`);
  bad[bad.length - 400] = bad[bad.length - 400]! ^ 1;
  const d = await runZsend(["redup", "-"], { stdin: bad });
  assertEquals(d.code, 1);
  assertMatch(d.stderr, /checksum mismatch/);
  const badPath = await Deno.makeTempFile({ suffix: ".zstream" });
  await Deno.writeFile(badPath, bad);
  const f = await runZsend(["redup", badPath]);
  await Deno.remove(badPath);
  assertEquals(f.code, 1);
  assertMatch(f.stderr, /checksum mismatch/);
  assert(!f.stderr.includes("    at "), f.stderr);
});

Deno.test("DiskRedupIndex finds every block among many, in order and out of order", async () => {
  const w = new StreamWriter();
  const chunks: Uint8Array[] = [...w.begin({ toname: "p/fs@s", toguid: 1n, objset_type: 2 })];
  const keys: [bigint, bigint, bigint][] = [];
  // Three runs: sorted (guid 1), sorted again from the start (guid 1), descending (guid 2).
  for (let i = 0; i < 6000; i++) keys.push([1n, BigInt(10 + (i >> 4)), BigInt((i & 15) * 512)]);
  for (let i = 0; i < 3000; i++) keys.push([1n, BigInt(5 + (i >> 3)), BigInt((i & 7) * 512)]);
  for (let i = 400; i > 0; i--) keys.push([2n, BigInt(i), 0n]);
  for (const [guid, object, offset] of keys) {
    const data = new Uint8Array(512);
    new DataView(data.buffer).setBigUint64(0, guid * 1000003n + object * 1009n + offset, true);
    chunks.push(...w.write({
      type: DRR.WRITE,
      object,
      object_type: 19,
      offset,
      logical_size: 512n,
      toguid: guid,
    }, data));
  }
  chunks.push(...w.end());
  const bytes = concat(chunks);
  const path = await Deno.makeTempFile();
  await Deno.writeFile(path, bytes);
  try {
    using fromFile = DiskRedupIndex.create({ source: path });
    using spooled = DiskRedupIndex.create();
    const memory = new MemoryRedupIndex();
    const added: [bigint, bigint, bigint][] = [];
    const same = (guid: bigint, object: bigint, offset: bigint) => {
      const want = memory.find(guid, object, offset)!;
      for (const index of [fromFile, spooled]) {
        const got = index.find(guid, object, offset);
        assertEquals(got?.header, want.header);
        assertEquals(got?.payload, want.payload);
      }
      const at = fromFile.locate(guid, object, offset)!;
      assertEquals(at.header, want.header);
      assertEquals(bytes.subarray(at.payloadOffset, at.payloadOffset + 512), want.payload);
      assertEquals(at.payloadChecksum, fletcher4(want.payload, true));
    };
    for await (const r of readRecords([bytes], { payloadChecksums: true })) {
      const h = r.header;
      if (h.type !== DRR.WRITE) continue;
      fromFile.add(r);
      spooled.add(r);
      memory.add(r);
      added.push([h.toguid, h.object, h.offset]);
      // Lookups between adds: keys in the unwritten buffer, in a page half on disk and half
      // in the buffer, and on pages written long ago.
      if (added.length % 97 === 0) {
        for (const back of [1, 2, 60, 65, 171, 500, 1025, 2731, 5000]) {
          const k = added[added.length - back];
          if (k !== undefined) same(...k);
        }
      }
    }
    assertEquals(fromFile.entries, keys.length);
    assert(fromFile.runs >= 3 && fromFile.runs < 410, `${fromFile.runs} runs`);
    // Every key, in a scrambled order, and keys that are not there.
    for (let i = 0; i < keys.length; i++) same(...keys[(i * 7919) % keys.length]!);
    for (const [guid, object, offset] of [[1n, 10n, 100n], [2n, 401n, 0n], [3n, 10n, 0n]]) {
      assertEquals(fromFile.find(guid!, object!, offset!), undefined);
      assertEquals(fromFile.locate(guid!, object!, offset!), undefined);
      assertEquals(spooled.find(guid!, object!, offset!), undefined);
    }
  } finally {
    await Deno.remove(path);
  }
});

// --- real ZFS: zfs-fuse receives what redup made ---------------------------------------------

const why = freshUnavailable();

async function receiveAndCompare(stream: Uint8Array, manifest: string): Promise<void> {
  const pool = await TestPool.create();
  try {
    await pool.receive("fs", stream);
    const at = await pool.mount("fs");
    const got = await treeManifest(at);
    const want = await Deno.readTextFile(manifest);
    assertEquals(manifestDiff(want, got), []);
    assertEquals(got, want);
    await pool.unmount("fs");
  } finally {
    await pool.destroy();
  }
}

Deno.test({
  name: "zfs receive (zfs-fuse) takes redup of fs-s2.dedup; the tree equals fs-s2.manifest",
  ignore: why !== null,
  async fn() {
    const out = await redupCli(`${ZFS_FUSE_DIR}/fs-s2.dedup.zstream`);
    await receiveAndCompare(out, `${ZFS_FUSE_DIR}/fs-s2.manifest.txt`);
  },
});

Deno.test({
  name: "zfs receive (zfs-fuse) takes redup of a fresh dedup-b; the tree equals its manifest",
  ignore: why !== null,
  async fn() {
    const fresh = await freshStreams();
    const path = `${fresh.dir}/dedup-b.zstream`;
    const input = await Deno.readFile(path);
    const out = await redupCli(path);
    assert((await checkRedup(input, out)) > 0, "a fresh dedup stream has references");
    await receiveAndCompare(out, `${fresh.dir}/${fresh.info.snapshots["fs@b"]!.manifest}`);
  },
});

if (why !== null) skipNote("redup against zfs-fuse", why);
