/**
 * The receive rules that OpenZFS 2.3 streams need (issue 9): resuming streams are refused and
 * leave nothing, redacted snapshots stay redacted (stored, listed, refused or named by
 * extract and cat, sent with REDACTED, `redact_snaps` and REDACT records), the `-L` rules of
 * `receive_object` and `recv_check_large_blocks`, and the ZPL generation in SA bonus buffers.
 *
 * Streams are built here (ZPL 4 with the test builder, BEGIN fields and nvlists as OpenZFS
 * writes them) or taken from OpenZFS's own test files when ZSEND_OPENZFS_FIXTURES has them.
 */

import { assert, assertEquals, assertMatch, assertStringIncludes, assertThrows } from "@std/assert";
import { DatabaseSync } from "node:sqlite";
import { deflateSync } from "node:zlib";
import { openzfsDir, unpackBz2 } from "./_fixtures.ts";
import { runZsend } from "./_run.ts";
import { storeFingerprint } from "./helpers/store_fingerprint.ts";
import { type ObjectSpec, znodeBonus, ZplStreamBuilder } from "./helpers/zpl_stream_builder.ts";
import {
  type BeginDetails,
  beginDetails,
  type KnownSnapshot,
  planBegin,
  ReceiveRefused,
  type TargetState,
} from "../core/receive/begin_plan.ts";
import { BACKUP_MAGIC, BEGIN_FLAG, DRR, FEATURE, HDRTYPE } from "../core/stream/constants.ts";
import { encodeNvlist, nv } from "../core/stream/nvlist.ts";
import { readRecords } from "../core/stream/reader.ts";
import { znodeGeneration } from "../core/receive/receive.ts";
import { type DrrBegin, makeVersioninfo, type RecordInit } from "../core/stream/record.ts";
import { StreamWriter } from "../core/stream/writer.ts";
import { concat } from "@std/bytes";
import { listJson } from "./helpers/list_json.ts";

const ozfs = openzfsDir();
const enc = new TextEncoder();
const K128 = 128 * 1024;
const M1 = 1024 * 1024;

interface Rec {
  rec: RecordInit;
  payload?: Uint8Array;
}

interface BeginInit {
  toname: string;
  toguid: bigint;
  fromguid?: bigint;
  features?: number;
  nvlist?: Uint8Array;
}

/** A substream: BEGIN (with its nvlist), the records, END, checksummed as OpenZFS does. */
function substream(b: BeginInit, recs: Rec[]): Uint8Array {
  const w = new StreamWriter();
  const chunks: Uint8Array[] = [];
  chunks.push(...w.begin({
    magic: BACKUP_MAGIC,
    versioninfo: makeVersioninfo(HDRTYPE.SUBSTREAM, b.features ?? 0),
    creation_time: 1_700_000_000n,
    objset_type: 2,
    flags: 4,
    toguid: b.toguid,
    fromguid: b.fromguid ?? 0n,
    toname: b.toname,
  }, b.nvlist));
  for (const r of recs) chunks.push(...w.write({ toguid: b.toguid, ...r.rec }, r.payload));
  chunks.push(...w.end(b.toguid));
  return concat(chunks);
}

/** OBJECT (and a FREE past its end) of an object as the builder has it. */
function objectRecs(o: ObjectSpec, fields: Partial<RecordInit> = {}): Rec[] {
  const bonuslen = o.bonuslen ?? o.bonus.length;
  const payload = new Uint8Array(Math.ceil(bonuslen / 8) * 8);
  payload.set(o.bonus.subarray(0, payload.length));
  const blkids = [...o.blocks.keys()].map(Number).sort((a, b) => a - b);
  const maxblkid = BigInt(blkids[blkids.length - 1] ?? 0);
  return [{
    rec: {
      type: DRR.OBJECT,
      object: BigInt(o.object),
      object_type: o.type,
      bonustype: o.bonustype,
      blksz: o.blksz,
      bonuslen,
      checksumtype: 7,
      compress: 2,
      maxblkid,
      ...fields,
    } as RecordInit,
    ...(payload.length > 0 ? { payload } : {}),
  }, {
    rec: {
      type: DRR.FREE,
      object: BigInt(o.object),
      offset: (maxblkid + 1n) * BigInt(o.blksz),
      length: 0xFFFF_FFFF_FFFF_FFFFn,
    },
  }];
}

/** One uncompressed WRITE. */
function write(o: ObjectSpec, offset: number, data: Uint8Array): Rec {
  return {
    rec: {
      type: DRR.WRITE,
      object: BigInt(o.object),
      object_type: o.type,
      offset: BigInt(offset),
      logical_size: BigInt(data.length),
      checksumtype: 7,
    },
    payload: data,
  };
}

/** A whole object: OBJECT, FREE, a WRITE per block. */
function objectWithData(o: ObjectSpec): Rec[] {
  const recs = objectRecs(o);
  const ids = [...o.blocks.keys()].map(Number).sort((a, b) => a - b);
  for (const id of ids) {
    const data = new Uint8Array(o.blksz);
    data.set(o.blocks.get(id)!.subarray(0, o.blksz));
    recs.push(write(o, id * o.blksz, data));
  }
  return recs;
}

/** Every object of a builder, in order, as a full stream's records. */
function allObjects(b: ZplStreamBuilder, skip: number[] = []): Rec[] {
  return b.objects().filter((o) => !skip.includes(Number(o.object))).flatMap(objectWithData);
}

function spec(b: ZplStreamBuilder, object: number): ObjectSpec {
  return b.objects().find((o) => Number(o.object) === object)!;
}

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

async function tmp(prefix: string): Promise<string> {
  return await Deno.makeTempDir({ prefix });
}

async function file(bytes: Uint8Array): Promise<string> {
  const path = `${await tmp("zsend-rules-")}/s.zstream`;
  await Deno.writeFile(path, bytes);
  return path;
}

interface Listed {
  name: string;
  redacted: string[] | null;
  redacted_ranges: boolean;
  large_blocks: boolean;
}

async function list(store: string): Promise<Listed[]> {
  return (await listJson(store)).filter((r) => r.type === "snapshot").map((r) => {
    const rs = r.properties.redact_snaps as string[] | null;
    return {
      name: r.name,
      redacted: rs === null ? null : rs.map((g) => BigInt(g).toString(16)),
      redacted_ranges: r.properties.redacted_ranges === "yes",
      large_blocks: r.properties.large_blocks === "yes",
    };
  });
}

// ------------------------------------------------------------------------------------------
// Resuming streams
// ------------------------------------------------------------------------------------------

Deno.test("zsend recv refuses a resuming stream (zfs send -t), stores nothing; verify passes it", async () => {
  const b = new ZplStreamBuilder({ toname: "src/fs@s1", toguid: 0x5151n });
  b.file(4, pattern(2048, 1));
  b.entry(3, "f", 4);
  const full = await file(b.stream());
  // What `zfs send -t` makes after an interrupted `zfs receive -s`: RESUMING, and where to
  // go on in the BEGIN nvlist; the records start at the resume point.
  const nvlist = encodeNvlist(
    nv.list(nv.uint64("resume_object", 4n), nv.uint64("resume_offset", 1024n)),
    { encoding: "native" },
  );
  const o4 = spec(b, 4);
  const resuming = await file(substream(
    { toname: "src/fs@s1", toguid: 0x5151n, features: FEATURE.RESUMING, nvlist },
    [...objectRecs(o4), write(o4, 1024, pattern(1024, 2))],
  ));
  assertEquals((await runZsend(["verify", "--quiet", resuming])).code, 0);

  const store = `${await tmp("zsend-store-")}/store`;
  const r = await runZsend(["recv", store, "bk/fs", resuming]);
  assertEquals(r.code, 1, r.stderr);
  assertMatch(r.stderr, /cannot receive resume stream: 'bk\/fs' has no partially received state/);
  assertStringIncludes(r.stderr, "from object 4 offset 1024");
  // Nothing stored: a store made by this receive is taken back, or holds no snapshot.
  if (await Deno.stat(store).then(() => true, () => false)) assertEquals(await list(store), []);

  // Onto a dataset that holds an earlier snapshot: refused too, the store as it was.
  assertEquals((await runZsend(["recv", store, "bk/fs", full])).code, 0);
  const before = storeFingerprint(store);
  const incr = await file(substream({
    toname: "src/fs@s2",
    toguid: 0x5252n,
    fromguid: 0x5151n,
    features: FEATURE.RESUMING,
    nvlist,
  }, objectRecs(o4)));
  const r2 = await runZsend(["recv", store, "bk/fs", incr]);
  assertEquals(r2.code, 1);
  assertMatch(r2.stderr, /cannot receive resume stream/);
  assertEquals(storeFingerprint(store), before);
  assertEquals((await list(store)).map((s) => s.name), ["bk/fs@s1"]);
});

// ------------------------------------------------------------------------------------------
// Redacted streams
// ------------------------------------------------------------------------------------------

/**
 * A redacted full stream of a filesystem with three files of four 512-byte blocks: `open`
 * whole, `secret` with blocks 0..2 redacted by one REDACT record, `tail` with block 3 only.
 */
function redactedFs(): { b: ZplStreamBuilder; stream: Uint8Array } {
  const b = new ZplStreamBuilder({ toname: "src/fs@red", toguid: 0xAEDn });
  b.file(4, pattern(2048, 3));
  b.file(5, pattern(2048, 4));
  b.file(6, pattern(2048, 5));
  b.entry(3, "open", 4);
  b.entry(3, "secret", 5);
  b.entry(3, "tail", 6);
  // A REDACT of a size that is not a multiple of the block size (a large block sent without
  // -L, whose OBJECT says 128 KiB): the range is kept as it came.
  b.file(7, pattern(700, 6));
  b.entry(3, "odd", 7);
  const recs = allObjects(b, [5, 6, 7]);
  const o5 = spec(b, 5), o6 = spec(b, 6);
  recs.push(...objectRecs(o5), {
    rec: { type: DRR.REDACT, object: 5n, offset: 0n, length: 1536n },
  }, write(o5, 1536, o5.blocks.get(3)!.slice()));
  recs.push(...objectRecs(o6), write(o6, 0, o6.blocks.get(0)!.slice()), {
    rec: { type: DRR.REDACT, object: 6n, offset: 512n, length: 1536n },
  });
  recs.push(...objectRecs(spec(b, 7)), {
    rec: { type: DRR.REDACT, object: 7n, offset: 0n, length: 700n },
  });
  const nvlist = encodeNvlist(nv.list(nv.uint64Array("redact_snaps", [0xC1n, 0xC2n])), {
    encoding: "native",
  });
  const stream = substream({
    toname: "src/fs@red",
    toguid: 0xAEDn,
    features: FEATURE.REDACTED,
    nvlist,
  }, recs);
  return { b, stream };
}

Deno.test("a redacted snapshot stays redacted: list, extract, cat, and send again", async () => {
  const { stream } = redactedFs();
  const path = await file(stream);
  const store = `${await tmp("zsend-store-")}/store`;
  assertEquals((await runZsend(["recv", store, "bk/fs", path])).code, 0);
  const [s] = await list(store);
  assertEquals([s!.redacted, s!.redacted_ranges], [["c1", "c2"], true]);
  const text = await runZsend(["list", "-t", "all", store]);
  assertMatch(text.stdout, /^NAME .* RSNAPS +RRANGES$/m);
  assertMatch(text.stdout, /^bk\/fs@red .* 193,194 +yes$/m);

  // extract writes what is whole and names each redacted file, with a failing exit.
  const dir = `${await tmp("zsend-x-")}/tree`;
  const x = await runZsend(["extract", "-q", store, "bk/fs@red", dir]);
  assertEquals(x.code, 1);
  assertMatch(x.stderr, /\.\/secret: .*redacted: bytes 0\.\.1536 were left out/);
  assertMatch(x.stderr, /\.\/tail: .*redacted: bytes 512\.\.2048 were left out/);
  assertMatch(x.stderr, /\.\/odd: .*redacted: bytes 0\.\.700 were left out/);
  assertEquals(await Deno.readFile(`${dir}/open`), pattern(2048, 3));

  // cat refuses before it writes a byte.
  const c = await runZsend(["cat", store, "bk/fs@red", "/secret"]);
  assertEquals([c.code, c.stdoutBytes.length], [1, 0]);
  assertStringIncludes(c.stderr, "redacted");
  assertEquals(
    (await runZsend(["cat", store, "bk/fs@red", "/open"])).stdoutBytes,
    pattern(2048, 3),
  );

  // send: REDACTED, redact_snaps, and the REDACT records (aggregated as dump_redact does).
  const sent = await runZsend(["send", store, "bk/fs@red"]);
  assertEquals(sent.code, 0, sent.stderr);
  const recs = await Array.fromAsync(readRecords([sent.stdoutBytes]));
  const begin = recs[0]!.header as { type: number; versioninfo: bigint };
  assert((begin.versioninfo >> 2n) & BigInt(FEATURE.REDACTED), "REDACTED feature");
  const nvl = new TextDecoder("latin1").decode(recs[0]!.payload);
  assertStringIncludes(nvl, "redact_snaps");
  const redacts = recs.filter((r) => r.header.type === DRR.REDACT).map((r) => {
    const h = r.header as { object: bigint; offset: bigint; length: bigint };
    return [h.object, h.offset, h.length];
  });
  assertEquals(redacts, [[5n, 0n, 1536n], [6n, 512n, 1536n], [7n, 0n, 700n]]);
  // ... and that stream received again is the same redacted snapshot.
  const again = `${await tmp("zsend-store-")}/store`;
  const back = await runZsend(["recv", again, "bk/fs", "-"], { stdin: sent.stdoutBytes });
  assertEquals(back.code, 0, back.stderr);
  assertEquals((await list(again))[0]!.redacted, ["c1", "c2"]);
});

Deno.test("incrementals onto a redacted snapshot follow redact_check; written blocks stop being redacted", async () => {
  const { b, stream } = redactedFs();
  const store = `${await tmp("zsend-store-")}/store`;
  assertEquals((await runZsend(["recv", store, "bk/fs", await file(stream)])).code, 0);
  const before = storeFingerprint(store);
  const o5 = spec(b, 5);
  const fill = [...objectRecs(o5), write(o5, 512, pattern(512, 9)), {
    // Part of a redacted block freed: the rest of it stays redacted.
    rec: { type: DRR.FREE, object: 5n, offset: 1100n, length: 100n },
  }];
  // Neither redacted, nor from the redaction bookmark, nor of a snapshot it is redacted
  // against: refused (EINVAL of redact_check).
  const stranger = await file(substream({
    toname: "src/fs@s2",
    toguid: 0x99n,
    fromguid: 0xAEDn,
  }, fill));
  const r = await runZsend(["recv", store, "bk/fs", stranger]);
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /redacted .*one of those snapshots/);
  assertEquals(storeFingerprint(store), before);
  // Redacted with respect to a snapshot the base is not redacted against: refused.
  const wider = await file(substream({
    toname: "src/fs@s2",
    toguid: 0x99n,
    fromguid: 0xAEDn,
    features: FEATURE.REDACTED,
    nvlist: encodeNvlist(nv.list(nv.uint64Array("redact_snaps", [0xC1n, 0xC3n]))),
  }, fill));
  assertMatch((await runZsend(["recv", store, "bk/fs", wider])).stderr, /subset/);
  // An incremental of one of the snapshots it is redacted against: taken; the block it
  // writes is data again, the other redacted blocks stay redacted.
  const c1 = await file(substream({ toname: "src/fs@c1", toguid: 0xC1n, fromguid: 0xAEDn }, fill));
  const ok = await runZsend(["recv", store, "bk/fs", c1]);
  assertEquals(ok.code, 0, ok.stderr);
  const snaps = await list(store);
  assertEquals(snaps.map((s) => [s.name, s.redacted, s.redacted_ranges]), [
    ["bk/fs@red", ["c1", "c2"], true],
    ["bk/fs@c1", null, true],
  ]);
  const c = await runZsend(["cat", store, "bk/fs@c1", "/secret"]);
  assertEquals(c.code, 1);
  assertMatch(c.stderr, /bytes 0\.\.512, 1024\.\.1536 were left out/);
  // Not redacted, yet with redacted ranges: it cannot be sent as either.
  const s = await runZsend(["send", store, "bk/fs@c1"]);
  assertEquals(s.code, 1);
  assertStringIncludes(s.stderr, "has redacted ranges but no redaction list");
});

Deno.test("an incremental that fills every redacted block is whole, and is sent with redact_from_snaps", async () => {
  const { b, stream } = redactedFs();
  const redPath = await file(stream);
  const store = `${await tmp("zsend-store-")}/store`;
  assertEquals((await runZsend(["recv", store, "bk/fs", redPath])).code, 0);
  const o5 = spec(b, 5), o6 = spec(b, 6), o7 = spec(b, 7);
  const fill = await file(substream({ toname: "src/fs@c2", toguid: 0xC2n, fromguid: 0xAEDn }, [
    ...objectRecs(o5),
    ...[0, 1, 2].map((i) => write(o5, i * 512, o5.blocks.get(i)!.slice())),
    ...objectRecs(o6),
    ...[1, 2, 3].map((i) => write(o6, i * 512, o6.blocks.get(i)!.slice())),
    ...objectRecs(o7),
    ...[0, 1].map((i) => {
      const block = new Uint8Array(512);
      block.set(o7.blocks.get(i)!);
      return write(o7, i * 512, block);
    }),
  ]));
  const got = await runZsend(["recv", store, "bk/fs", fill]);
  assertEquals(got.code, 0, got.stderr);
  const snaps = await list(store);
  assertEquals(snaps[1]!.redacted, null);
  assertEquals(snaps[1]!.redacted_ranges, false);
  const dir = `${await tmp("zsend-x-")}/tree`;
  assertEquals((await runZsend(["extract", "-q", store, "bk/fs@c2", dir])).code, 0);
  assertEquals(await Deno.readFile(`${dir}/secret`), pattern(2048, 4));
  assertEquals(await Deno.readFile(`${dir}/tail`), pattern(2048, 5));
  // Sent from the redacted snapshot: no REDACTED, but redact_from_snaps, as dmu_send.c does;
  // a store holding the same redacted snapshot takes it, and the result is whole.
  const sent = await runZsend(["send", "-i", "red", store, "bk/fs@c2"]);
  assertEquals(sent.code, 0, sent.stderr);
  const recs = await Array.fromAsync(readRecords([sent.stdoutBytes]));
  const begin = recs[0]!.header as { versioninfo: bigint };
  assertEquals((begin.versioninfo >> 2n) & BigInt(FEATURE.REDACTED), 0n);
  assertStringIncludes(new TextDecoder("latin1").decode(recs[0]!.payload), "redact_from_snaps");
  const other = `${await tmp("zsend-store-")}/store`;
  assertEquals((await runZsend(["recv", other, "x/fs", redPath])).code, 0);
  const r = await runZsend(["recv", other, "x/fs", "-"], { stdin: sent.stdoutBytes });
  assertEquals(r.code, 0, r.stderr);
  const cat = await runZsend(["cat", other, "x/fs@c2", "/secret"]);
  assertEquals(cat.stdoutBytes, pattern(2048, 4));
});

Deno.test("store: a schema 2 store is migrated: its redacted ranges and large blocks are found", async () => {
  const store = `${await tmp("zsend-store-")}/store`;
  assertEquals((await runZsend(["recv", store, "bk/fs", await file(redactedFs().stream)])).code, 0);
  const db = new DatabaseSync(`${store}/index.sqlite`);
  db.exec(
    `ALTER TABLE snapshots DROP COLUMN redact_snaps; ALTER TABLE snapshots DROP COLUMN
     redacted_ranges; ALTER TABLE snapshots DROP COLUMN large_blocks;
     UPDATE meta SET value = '2' WHERE key = 'schema'`,
  );
  db.close();
  const [s] = await list(store);
  // Which snapshots it was redacted against was not kept: none known, still redacted.
  assertEquals([s!.redacted, s!.redacted_ranges, s!.large_blocks], [[], true, false]);
  assertEquals((await runZsend(["cat", store, "bk/fs@red", "/secret"])).code, 1);
});

Deno.test("a redacted volume is not written as an image", async () => {
  const image = `${await tmp("zsend-img-")}/vol.img`;
  await Deno.writeFile(image, pattern(4 * 8192, 11));
  const made = await runZsend([
    "image",
    "send",
    "--name",
    "p/vol@s",
    "--block-size",
    "8192",
    image,
  ]);
  assertEquals(made.code, 0, made.stderr);
  // The same stream, redacted: block 1 of the volume's data object left out.
  const w = new StreamWriter();
  const chunks: Uint8Array[] = [];
  for await (const r of readRecords([made.stdoutBytes])) {
    const h = r.header as unknown as RecordInit & {
      object?: bigint;
      offset?: bigint;
      toguid: bigint;
      versioninfo: bigint;
    };
    if (h.type === DRR.BEGIN) {
      const { payloadlen: _, ...fields } = h as typeof h & { payloadlen: number };
      chunks.push(...w.begin(
        { ...fields, versioninfo: h.versioninfo | (BigInt(FEATURE.REDACTED) << 2n) } as never,
        encodeNvlist(nv.list(nv.uint64Array("redact_snaps", [7n])), { encoding: "native" }),
      ));
    } else if (h.type === DRR.END) chunks.push(...w.end(h.toguid));
    else if (h.type === DRR.WRITE && h.object === 1n && h.offset === 8192n) {
      chunks.push(
        ...w.write({
          type: DRR.REDACT,
          object: 1n,
          offset: 8192n,
          length: 8192n,
          toguid: h.toguid,
        }),
      );
    } else chunks.push(...w.write(h, r.payload.length > 0 ? r.payload : undefined));
  }
  const store = `${await tmp("zsend-store-")}/store`;
  // image recv refuses it (REDACT), writing nothing.
  const img = `${await tmp("zsend-img-")}/direct.img`;
  const direct = await runZsend(["image", "recv", img, await file(concat(chunks))]);
  assertEquals(direct.code, 1);
  await Deno.stat(img).then(() => assert(false, "an image was written"), () => {});
  const r = await runZsend(["recv", store, "bk/vol", await file(concat(chunks))]);
  assertEquals(r.code, 0, r.stderr);
  const out = `${await tmp("zsend-img-")}/out.img`;
  const x = await runZsend(["extract", store, "bk/vol@s", "--image", out]);
  assertEquals(x.code, 1);
  assertMatch(x.stderr, /volume is redacted/);
  await Deno.stat(out).then(() => assert(false, "an image was written"), () => {});
});

Deno.test({
  name: "OpenZFS's redacted stream (zfs send -ce --redact) is stored and sent as redacted",
  ignore: ozfs === null,
  async fn() {
    const path = await unpackBz2(`${ozfs}/little-endian-all-drr-types-base-NATIVE.zsend.bz2`);
    const store = `${await tmp("zsend-store-")}/store`;
    assertEquals((await runZsend(["recv", store, "t/fs", path])).code, 0);
    const [s] = await list(store);
    assertEquals([s!.redacted, s!.redacted_ranges], [["964950de82b7d299"], true]);
    const sent = await runZsend(["send", store, "t/fs@baseline"]);
    const recs = await Array.fromAsync(readRecords([sent.stdoutBytes]));
    const orig = await Array.fromAsync(readRecords([await Deno.readFile(path)]));
    const redacts = (rs: typeof recs) =>
      rs.filter((r) => r.header.type === DRR.REDACT).map((r) => {
        const h = r.header as { object: bigint; offset: bigint; length: bigint };
        return `${h.object} ${h.offset} ${h.length}`;
      });
    assertEquals(redacts(recs), redacts(orig));
    assertEquals(recs[0]!.payload, orig[0]!.payload); // the same native nvlist
  },
});

// ------------------------------------------------------------------------------------------
// -L (large blocks)
// ------------------------------------------------------------------------------------------

Deno.test("an -L incremental onto a base received without -L keeps the file's blocks (receive_object)", async () => {
  // The base: a 384 KiB file in 128 KiB blocks, as `zfs send` without -L splits 1 MiB records.
  const b = new ZplStreamBuilder({ toname: "src/fs@s1", toguid: 0x11n });
  const old = pattern(3 * K128, 7);
  b.file(4, old, { gen: 42 }, K128);
  b.entry(3, "big", 4);
  const store = `${await tmp("zsend-store-")}/store`;
  assertEquals((await runZsend(["recv", store, "bk/fs", await file(b.stream())])).code, 0);

  // `zfs send -L -e -c -i`: the same file (same generation), now one 1 MiB record, compressed.
  const now = new Uint8Array(M1);
  now.set(pattern(3 * K128 + 100, 8));
  const o4 = spec(b, 4);
  const n = new ZplStreamBuilder({ toname: "src/fs@s2", toguid: 0x22n });
  n.file(4, now.subarray(0, 3 * K128 + 100), { gen: 42 }, M1);
  const packed = new Uint8Array(deflateSync(now));
  const incr = substream({
    toname: "src/fs@s2",
    toguid: 0x22n,
    fromguid: 0x11n,
    features: FEATURE.LARGE_BLOCKS | FEATURE.COMPRESSED,
  }, [
    ...objectRecs({ ...spec(n, 4), object: 4 }, { maxblkid: 0n }),
    {
      rec: {
        type: DRR.WRITE,
        object: 4n,
        object_type: o4.type,
        offset: 0n,
        logical_size: BigInt(M1),
        checksumtype: 7,
        compressiontype: 10, // gzip-6
        compressed_size: BigInt(packed.length),
      },
      payload: packed,
    },
  ]);
  const r = await runZsend(["recv", store, "bk/fs", await file(incr)]);
  assertEquals(r.code, 0, r.stderr);
  const c = await runZsend(["cat", store, "bk/fs@s2", "/big"]);
  assertEquals(c.code, 0, c.stderr);
  assertEquals(c.stdoutBytes, now.subarray(0, 3 * K128 + 100));
  const snaps = await list(store);
  // The 1 MiB record went into 128 KiB blocks: no large block was written.
  assertEquals(snaps.map((s) => s.large_blocks), [false, false]);
  // So a plain incremental may follow.
  const plain = substream({ toname: "src/fs@s3", toguid: 0x33n, fromguid: 0x22n }, []);
  assertEquals((await runZsend(["recv", store, "bk/fs", await file(plain)])).code, 0);
  // The file's blocks are 128 KiB ones: what send gives back is in 128 KiB WRITEs.
  const sent = await runZsend(["send", store, "bk/fs@s2"]);
  const writes = (await Array.fromAsync(readRecords([sent.stdoutBytes])))
    .filter((x) => x.header.type === DRR.WRITE && (x.header as { object: bigint }).object === 4n)
    .map((x) => Number((x.header as { logical_size: bigint }).logical_size));
  assertEquals(writes, [K128, K128, K128, K128]);
});

Deno.test("an -L incremental of a one-block file larger than 128 KiB onto its split base", async () => {
  // Without -L, a file of one 200192-byte block went out as OBJECT blksz 128 KiB, a 128 KiB
  // WRITE and a 69120-byte one (dump_dnode and do_dump split it so).
  const b = new ZplStreamBuilder({ toname: "src/fs@s1", toguid: 0x11n });
  b.file(4, pattern(200000, 1), { gen: 8 }, K128);
  b.entry(3, "one", 4);
  const o4 = spec(b, 4);
  const old = pattern(200192, 1);
  const base = substream({ toname: "src/fs@s1", toguid: 0x11n }, [
    ...allObjects(b, [4]),
    ...objectRecs(o4),
    write(o4, 0, old.slice(0, K128)),
    write(o4, K128, old.slice(K128)),
  ]);
  const store = `${await tmp("zsend-store-")}/store`;
  assertEquals((await runZsend(["recv", store, "bk/fs", await file(base)])).code, 0);
  // With -L: the block as it is, 200192 bytes, into the kept 128 KiB blocks.
  const now = pattern(200192, 2);
  const incr = substream({
    toname: "src/fs@s2",
    toguid: 0x22n,
    fromguid: 0x11n,
    features: FEATURE.LARGE_BLOCKS,
  }, [...objectRecs({ ...o4, blksz: 200192 }, { maxblkid: 0n }), write(o4, 0, now)]);
  const r = await runZsend(["recv", store, "bk/fs", await file(incr)]);
  assertEquals(r.code, 0, r.stderr);
  const c = await runZsend(["cat", store, "bk/fs@s2", "/one"]);
  assertEquals(c.stdoutBytes, now.subarray(0, 200000));
});

Deno.test("a plain incremental onto an -L base is refused as OpenZFS refuses it", async () => {
  const b = new ZplStreamBuilder({ toname: "src/fs@s1", toguid: 0x11n });
  b.file(4, pattern(2 * M1, 3), { gen: 5 }, M1);
  b.entry(3, "big", 4);
  const full = substream(
    { toname: "src/fs@s1", toguid: 0x11n, features: FEATURE.LARGE_BLOCKS },
    allObjects(b),
  );
  const store = `${await tmp("zsend-store-")}/store`;
  assertEquals((await runZsend(["recv", store, "bk/fs", await file(full)])).code, 0);
  assertEquals((await list(store))[0]!.large_blocks, true);
  const before = storeFingerprint(store);
  const o4 = spec(b, 4);
  const split = { ...o4, blksz: K128 };
  const plain = substream({ toname: "src/fs@s2", toguid: 0x22n, fromguid: 0x11n }, [
    ...objectRecs(split),
    write(split, 0, pattern(K128, 4)),
  ]);
  const r = await runZsend(["recv", store, "bk/fs", await file(plain)]);
  assertEquals(r.code, 1);
  assertStringIncludes(
    r.stderr,
    "cannot receive incremental stream: incremental send stream requires -L (--large-block), " +
      "to match previous receive.",
  );
  assertEquals(storeFingerprint(store), before);
  // With -L it goes in.
  const withL = substream({
    toname: "src/fs@s2",
    toguid: 0x22n,
    fromguid: 0x11n,
    features: FEATURE.LARGE_BLOCKS,
  }, [...objectRecs(o4), write(o4, 0, pattern(M1, 4))]);
  assertEquals((await runZsend(["recv", store, "bk/fs", await file(withL)])).code, 0);
});

Deno.test({
  name: "OpenZFS's -L stream (16 MiB records) marks the snapshot as holding large blocks",
  ignore: ozfs === null,
  async fn() {
    const path = await unpackBz2(`${ozfs}/little-endian-long-payloads.zsend.bz2`);
    const store = `${await tmp("zsend-store-")}/store`;
    const r = await runZsend(["recv", store, "t/fs", path]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals((await list(store)).map((s) => s.large_blocks), [true]);
  },
});

Deno.test("znodeGeneration() reads ZPL_GEN of SA bonus buffers as zpl_get_file_info does", () => {
  const sa = (le: boolean, hdrWords: number) => {
    const b = new Uint8Array(hdrWords * 8 + 64);
    const v = new DataView(b.buffer);
    v.setUint32(0, 0x2F505A, le);
    v.setUint16(4, (hdrWords << 10) | 2, le);
    v.setBigUint64(hdrWords * 8 + 16, 0x1234n, le);
    return b;
  };
  assertEquals(znodeGeneration(44, sa(true, 1), true), 0x1234n);
  assertEquals(znodeGeneration(44, sa(false, 2), true), 0x1234n);
  assertEquals(znodeGeneration(44, new Uint8Array(64), true), 0n); // not yet filled in
  assertEquals(znodeGeneration(44, enc.encode("not an SA buffer"), true), null);
  assertEquals(znodeGeneration(19, new Uint8Array(64), true), null);
});

// ------------------------------------------------------------------------------------------
// Device numbers
// ------------------------------------------------------------------------------------------

Deno.test("zsend ls shows device numbers of ZPL 4 znodes as zfs-fuse stored them (glibc dev_t)", async () => {
  const b = new ZplStreamBuilder({ toname: "src/fs@s1", toguid: 0x77n });
  b.raw({
    object: 4,
    type: 19,
    bonustype: 17,
    bonus: znodeBonus({ mode: 0o20666, rdev: 0x103 }),
    blksz: 512,
    blocks: new Map(),
  });
  b.raw({
    object: 5,
    type: 19,
    bonustype: 17,
    bonus: znodeBonus({ mode: 0o60660, rdev: 0x801 }),
    blksz: 512,
    blocks: new Map(),
  });
  b.entry(3, "null", 4);
  b.entry(3, "sda1", 5);
  const store = `${await tmp("zsend-store-")}/store`;
  assertEquals((await runZsend(["recv", store, "bk/fs", await file(b.stream())])).code, 0);
  const r = await runZsend(["ls", store, "bk/fs@s1", "/"]);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stdout, /^crw-rw-rw- .* 1, 3 .* null$/m);
  assertMatch(r.stdout, /^brw-rw---- .* 8, 1 .* sda1$/m);
});

// ------------------------------------------------------------------------------------------
// planBegin: the BEGIN checks in isolation
// ------------------------------------------------------------------------------------------

Deno.test("planBegin(): resume, redact_check and recv_check_large_blocks as dmu_recv.c has them", () => {
  const snap = (name: string, guid: bigint, extra: Partial<KnownSnapshot> = {}) => ({
    dataset: "bk/fs",
    name,
    guid,
    ...extra,
  });
  const datasets: Record<string, KnownSnapshot[]> = {
    "bk/fs": [snap("red", 0xAEDn, { redactSnaps: [0xC1n, 0xC2n] })],
    "bk/big": [{ ...snap("s1", 0xB1n, { largeBlocks: true }), dataset: "bk/big" }],
    "bk": [{ ...snap("top", 0xB0n, { largeBlocks: true }), dataset: "bk" }],
  };
  const state: TargetState = {
    dataset: (n) => datasets[n] ? { objsetType: 2, snapshots: datasets[n]! } : null,
    snapshotByGuid: (g) => Object.values(datasets).flat().find((s) => s.guid === g) ?? null,
  };
  const begin = (fromguid: bigint, toguid: bigint, features = 0, flags = 0) =>
    ({
      fromguid,
      toguid,
      flags,
      objset_type: 2,
      versioninfo: makeVersioninfo(HDRTYPE.SUBSTREAM, features),
    }) as DrrBegin;
  const details = (d: Partial<BeginDetails> = {}): BeginDetails => ({
    redactSnaps: null,
    redactFromSnaps: null,
    resumeObject: null,
    resumeOffset: null,
    ...d,
  });
  const refused = (f: () => unknown, msg: string) => assertThrows(f, ReceiveRefused, msg);

  refused(
    () => planBegin(begin(0n, 5n, FEATURE.RESUMING), "new/fs", "s", state, false, details()),
    "cannot receive resume stream: 'new/fs' has no partially received state",
  );
  refused(
    () => planBegin(begin(0n, 5n, FEATURE.REDACTED), "new/fs", "s", state, false, details()),
    "without redact_snaps",
  );
  // Onto the redacted snapshot: of one of its redaction snapshots, yes; of another, no.
  assertEquals(planBegin(begin(0xAEDn, 0xC2n), "bk/fs", "c2", state, false).kind, "incremental");
  refused(() => planBegin(begin(0xAEDn, 0x77n), "bk/fs", "x", state, false), "one of those");
  // From its redaction bookmark (redact_from_snaps): when compatible.
  const fromBook = (snaps: bigint[]) => details({ redactFromSnaps: snaps });
  assertEquals(
    planBegin(begin(0xAEDn, 0x77n), "bk/fs", "x", state, false, fromBook([0xC1n])).kind,
    "incremental",
  );
  refused(
    () => planBegin(begin(0xAEDn, 0x77n), "bk/fs", "x", state, false, fromBook([0xC3n])),
    "redaction bookmark",
  );
  // Redacted itself: with respect to a subset of the base's.
  const red = (snaps: bigint[]) => details({ redactSnaps: snaps });
  const redBegin = begin(0xAEDn, 0x77n, FEATURE.REDACTED);
  assertEquals(planBegin(redBegin, "bk/fs", "x", state, false, red([0xC2n])).kind, "incremental");
  refused(() => planBegin(redBegin, "bk/fs", "x", state, false, red([0xC2n, 0xC9n])), "subset");
  // A clone of the redacted snapshot follows the same rule.
  refused(
    () => planBegin(begin(0xAEDn, 0x77n, 0, BEGIN_FLAG.CLONE), "bk/c", "x", state, false),
    "cannot receive new filesystem stream: invalid backup stream",
  );
  // -L: onto a snapshot whose dataset holds large blocks, only LARGE_BLOCKS streams; for a
  // clone, the kernel looks at the parent filesystem ("bk" here).
  refused(
    () => planBegin(begin(0xB1n, 0x78n), "bk/big", "s2", state, false),
    "incremental send stream requires -L (--large-block), to match previous receive.",
  );
  assertEquals(
    planBegin(begin(0xB1n, 0x78n, FEATURE.LARGE_BLOCKS), "bk/big", "s2", state, false).kind,
    "incremental",
  );
  refused(
    () => planBegin(begin(0xB1n, 0x79n, 0, BEGIN_FLAG.CLONE), "bk/clone", "s", state, false),
    "requires -L",
  );
  assertEquals(
    planBegin(begin(0xB1n, 0x79n, 0, BEGIN_FLAG.CLONE), "other/clone", "s", state, false).kind,
    "clone",
  );
});

Deno.test("beginDetails() reads redact_snaps, redact_from_snaps and the resume point", () => {
  const d = beginDetails(encodeNvlist(nv.list(
    nv.uint64Array("redact_snaps", [1n, 2n]),
    nv.uint64Array("redact_from_snaps", []),
    nv.uint64("resume_object", 9n),
    nv.uint64("resume_offset", 4096n),
  )));
  assertEquals(d, {
    redactSnaps: [1n, 2n],
    redactFromSnaps: [],
    resumeObject: 9n,
    resumeOffset: 4096n,
  });
  assertThrows(() => beginDetails(new Uint8Array([1, 2, 3])));
});

// ------------------------------------------------------------------------------------------
// A spill block sent as WRITE_EMBEDDED (OpenZFS 2.2/2.3 with -e, OpenZFS issue 18239)
// ------------------------------------------------------------------------------------------

/** ZLE as ZFS writes it (n = 64): literal runs of up to 64 bytes, zero runs of up to 192. */
function zle(data: Uint8Array): Uint8Array {
  const out: number[] = [];
  let i = 0;
  while (i < data.length) {
    let j = i;
    if (data[i] === 0) {
      while (j < data.length && data[j] === 0 && j - i < 192) j++;
      out.push(64 + (j - i) - 1);
    } else {
      while (j < data.length && data[j] !== 0 && j - i < 64) j++;
      out.push(j - i - 1, ...data.subarray(i, j));
    }
    i = j;
  }
  return new Uint8Array(out);
}

Deno.test("a spill block sent as WRITE_EMBEDDED at DMU_SPILL_BLKID is kept as the spill block", async () => {
  const b = new ZplStreamBuilder({ toname: "src/fs@s1", toguid: 0x5Bn });
  b.file(4, pattern(1000, 6));
  b.entry(3, "f", 4);
  const spill = new Uint8Array(512);
  spill.set(enc.encode("a spill block: SA header and a long symlink target " + "x".repeat(40)));
  const packed = zle(spill);
  assert(packed.length <= 112, `${packed.length} bytes do not embed`);
  const payload = new Uint8Array(Math.ceil(packed.length / 8) * 8);
  payload.set(packed);
  const spillOffset = ((1n << 64n) - 2n) * 512n & ((1n << 64n) - 1n);
  const stream = substream(
    { toname: "src/fs@s1", toguid: 0x5Bn, features: FEATURE.EMBED_DATA },
    [...allObjects(b), {
      rec: {
        type: DRR.WRITE_EMBEDDED,
        object: 4n,
        offset: spillOffset,
        length: 512n,
        compression: 14, // ZLE
        etype: 0,
        lsize: 512,
        psize: packed.length,
      },
      payload,
    }],
  );
  const path = await file(stream);
  assertEquals((await runZsend(["verify", "--quiet", path])).code, 0);
  const store = `${await tmp("zsend-store-")}/store`;
  const r = await runZsend(["recv", store, "bk/fs", path]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals((await runZsend(["cat", store, "bk/fs@s1", "/f"])).stdoutBytes, pattern(1000, 6));
  // Sent again, it is what the sender meant: a SPILL record with the block, no data there.
  const sent = await runZsend(["send", store, "bk/fs@s1"]);
  assertEquals(sent.code, 0, sent.stderr);
  const recs = await Array.fromAsync(readRecords([sent.stdoutBytes]));
  const spills = recs.filter((x) => x.header.type === DRR.SPILL);
  assertEquals(spills.length, 1);
  assertEquals((spills[0]!.header as { object: bigint }).object, 4n);
  assertEquals(spills[0]!.payload, spill);
  assertEquals(recs.filter((x) => x.header.type === DRR.WRITE_EMBEDDED).length, 0);
});

Deno.test("zsend image recv refuses a resuming volume stream and writes nothing", async () => {
  const image = `${await tmp("zsend-img-")}/vol.img`;
  await Deno.writeFile(image, pattern(4 * 8192, 12));
  const made = await runZsend([
    "image",
    "send",
    "--name",
    "p/vol@s",
    "--block-size",
    "8192",
    image,
  ]);
  assertEquals(made.code, 0, made.stderr);
  const w = new StreamWriter();
  const chunks: Uint8Array[] = [];
  let skipped = false;
  for await (const r of readRecords([made.stdoutBytes])) {
    const h = r.header as unknown as RecordInit & {
      object?: bigint;
      offset?: bigint;
      toguid: bigint;
      versioninfo: bigint;
    };
    if (h.type === DRR.BEGIN) {
      const { payloadlen: _, ...fields } = h as typeof h & { payloadlen: number };
      chunks.push(...w.begin(
        { ...fields, versioninfo: h.versioninfo | (BigInt(FEATURE.RESUMING) << 2n) } as never,
        encodeNvlist(
          nv.list(nv.uint64("resume_object", 1n), nv.uint64("resume_offset", 16384n)),
          { encoding: "native" },
        ),
      ));
    } else if (h.type === DRR.END) chunks.push(...w.end(h.toguid));
    else if (h.type === DRR.WRITE && h.object === 1n && h.offset! < 16384n) skipped = true;
    else chunks.push(...w.write(h, r.payload.length > 0 ? r.payload : undefined));
  }
  assert(skipped);
  const out = `${await tmp("zsend-img-")}/out.img`;
  const r = await runZsend(["image", "recv", out, await file(concat(chunks))]);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "cannot receive resume stream");
  await Deno.stat(out).then(() => assert(false, "an image was written"), () => {});
});
