/**
 * Resume tokens without OpenZFS: the codec against a token the real kernel made (inlined), the
 * zlib compressor against zlib's inflater, libzfs's faults, and the resume point of a stream cut
 * at every byte against the kernel's rule, worked out here independently.
 */

import { assert, assertEquals, assertMatch, assertThrows } from "@std/assert";
import { concat } from "@std/bytes";
import { zlibCompress } from "../core/compress/deflate.ts";
import { gzipDecompress } from "../core/compress/gzip.ts";
import { DRR, FEATURE, RECORD_SIZE } from "../core/stream/constants.ts";
import { fletcher4 } from "../core/checksum/fletcher4.ts";
import { DATA_TYPE, decodeNvlist, encodeNvlist, nv } from "../core/stream/nvlist.ts";
import { readRecords } from "../core/stream/reader.ts";
import { makeVersioninfo } from "../core/stream/record.ts";
import { findResumePoint } from "../core/resume/resume_point.ts";
import {
  decodeResumeToken,
  dumpNvlistText,
  encodeResumeToken,
  type ResumeState,
  resumeState,
  ResumeTokenError,
} from "../core/resume/resume_token.ts";
import { StreamVerifier } from "../core/stream/verify.ts";
import { StreamWriter } from "../core/stream/writer.ts";
import { runZsend } from "./_run.ts";
import { expectedPoint } from "./helpers/resume_oracle.ts";

/** The receive_resume_token of a `zfs receive -s` cut short, by OpenZFS 2.3.2's kernel. */
const KERNEL_TOKEN = "1-e6d243981-d0-789c636064000310a500c4ec50360710e72765a526973030040940d460c8" +
  "a7a515a7968064b8e0f26c48f2499525a9c540dac3a90aabfe92fcf4d2cc140686e01ab7b52265b79391e539c1f2" +
  "7989b9a90c0c55c9fa69c50e8960fddc0c08f726e7e71614a51617e76733c001004585191a";

/** What OpenZFS 2.3.2's `zstream token` printed for it. */
const KERNEL_TEXT = "     object: 4178\n     offset: 655360\n     bytes: 8012360\n" +
  "     toguid: 7195474660833000531\n     toname: 'zc/fs@a'\n     compressok\n";

async function inflateWithZlib(z: Uint8Array): Promise<Uint8Array> {
  const s = new Blob([z as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("deflate"),
  );
  return new Uint8Array(await new Response(s).arrayBuffer());
}

Deno.test("decodeResumeToken() reads the kernel's token as zstream token prints it", () => {
  const d = decodeResumeToken(KERNEL_TOKEN);
  assertEquals([d.version, d.checksum, d.packedLength], [1, 0xe6d243981n, 0xd0]);
  assertEquals(dumpNvlistText(d.nvlist), KERNEL_TEXT);
  assertEquals(resumeState(d.nvlist), {
    object: 4178n,
    offset: 655360n,
    bytes: 8012360n,
    toguid: 7195474660833000531n,
    toname: "zc/fs@a",
    largeblockok: false,
    embedok: false,
    compressok: true,
    rawok: false,
  });
});

Deno.test("encodeResumeToken() packs the nvlist byte for byte as the kernel does", () => {
  const d = decodeResumeToken(KERNEL_TOKEN);
  const kernelPacked = gzipDecompress(d.compressed, d.packedLength);
  // The kernel packs NATIVE (fnvlist_pack); our encoder gives the same bytes for its pairs.
  assertEquals(encodeNvlist(d.nvlist, { encoding: "native" }), kernelPacked);
  const ours = encodeResumeToken(resumeState(d.nvlist));
  const back = decodeResumeToken(ours);
  assertEquals(back.packedLength, d.packedLength);
  assertEquals(dumpNvlistText(back.nvlist), KERNEL_TEXT);
  // Only the compressed bytes may differ (zlib level 6 against our fixed-Huffman encoder).
  assertMatch(ours, /^1-[0-9a-f]+-d0-789c[0-9a-f]+$/);
});

Deno.test("encodeResumeToken() writes every field in the kernel's order", () => {
  const s: ResumeState = {
    object: 2n ** 48n - 1n,
    offset: 2n ** 64n - 512n,
    bytes: 123456789012n,
    toguid: 0xffffffffffffffffn,
    toname: "pool/a b-c_d.e:f@snap",
    fromguid: 1n,
    largeblockok: true,
    embedok: true,
    compressok: true,
    rawok: true,
    redactSnaps: [5n, 0x8000000000000000n],
    bookRedactSnaps: [],
  };
  const d = decodeResumeToken(encodeResumeToken(s));
  assertEquals(d.nvlist.pairs.map((p) => p.name), [
    "fromguid",
    "object",
    "offset",
    "bytes",
    "toguid",
    "toname",
    "largeblockok",
    "embedok",
    "compressok",
    "rawok",
    "redact_snaps",
    "book_redact_snaps",
  ]);
  assertEquals(resumeState(d.nvlist), s);
  assertEquals(
    dumpNvlistText(d.nvlist),
    "     fromguid: 1\n     object: 281474976710655\n     offset: 18446744073709551104\n" +
      "     bytes: 123456789012\n     toguid: 18446744073709551615\n" +
      "     toname: 'pool/a b-c_d.e:f@snap'\n     largeblockok\n     embedok\n" +
      "     compressok\n     rawok\n     redact_snaps[0]: 5\n" +
      "     redact_snaps[1]: 9223372036854775808\n",
  );
});

Deno.test("decodeResumeToken() fails as libzfs does", () => {
  const good = encodeResumeToken({
    object: 1n,
    offset: 0n,
    bytes: 0n,
    toguid: 7n,
    toname: "p/fs@a",
    largeblockok: false,
    embedok: false,
    compressok: false,
    rawok: false,
  });
  const [, ck, len, hex] = good.split("-") as [string, string, string, string];
  const cases: [string, string][] = [
    ["", "invalid format"],
    ["1-abc", "invalid format"],
    ["x-1-2-00", "invalid format"],
    [`2-${ck}-${len}-${hex}`, "invalid version 2"],
    [`1-${ck}-${len}-${hex.slice(0, 10)}zz${hex.slice(12)}`, "payload is not hex-encoded"],
    [`1-${(BigInt(`0x${ck}`) + 1n).toString(16)}-${len}-${hex}`, "incorrect checksum"],
    [`1-${ck}-${(parseInt(len, 16) + 1).toString(16)}-${hex}`, "decompression failed"],
    ["1-0-4-00", "decompression failed"],
  ];
  for (const [t, why] of cases) {
    const e = assertThrows(() => decodeResumeToken(t), ResumeTokenError);
    assertEquals(e.message, `resume token is corrupt (${why})`, t);
  }
  // A zlib stream of something that is not an nvlist.
  const junk = new Uint8Array([9, 9, 9, 9, 1, 2, 3, 4]);
  const z = zlibCompress(junk);
  const hexOf = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const t = `1-${fletcher4(z, true)[0].toString(16)}-8-${hexOf(z)}`;
  assertEquals(
    assertThrows(() => decodeResumeToken(t), ResumeTokenError).message,
    "resume token is corrupt (nvlist_unpack failed)",
  );
  // libzfs ignores an odd last digit, and takes upper-case hex.
  assertEquals(
    decodeResumeToken(`${good.toUpperCase()}f`).packedLength,
    decodeResumeToken(good).packedLength,
  );
});

Deno.test("zlibCompress() output inflates with zlib to the input", async () => {
  let seed = 12345;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
  const inputs: Uint8Array[] = [
    new Uint8Array(0),
    new Uint8Array([42]),
    new Uint8Array(100_000),
    Uint8Array.from({ length: 70_000 }, () => rand()),
    Uint8Array.from(
      { length: 70_000 },
      (_, i) => "abcdefgh"[(i * 7 + (i >> 9)) % 8]!.charCodeAt(0),
    ),
    encodeNvlist(nv.list(nv.uint64("object", 4178n), nv.string("toname", "zc/fs@a")), {
      encoding: "native",
    }),
  ];
  for (const input of inputs) {
    const z = zlibCompress(input);
    assertEquals(await inflateWithZlib(z), input);
    assertEquals(gzipDecompress(z, input.length), input);
  }
  assert(zlibCompress(new Uint8Array(100_000)).length < 1000, "runs of zeros compress");
});

Deno.test("dumpNvlistText() prints every type as libnvpair's dump_nvlist", () => {
  const text = dumpNvlistText(nv.list(
    nv.booleanValue("bv", false),
    nv.byte("by", 255),
    nv.int8("i8", -5),
    nv.uint8("u8", 200),
    nv.int16("i16", -300),
    nv.uint16("u16", 60000),
    nv.int32("i32", -70000),
    nv.uint32("u32", 4000000000),
    nv.int64("i64", -(2n ** 63n)),
    nv.uint64("u64", 2n ** 64n - 1n),
    nv.int8Array("i8a", [-1, 2]),
    nv.uint8Array("u8a", new Uint8Array([1])),
    nv.stringArray("sa", ["x", "y"]),
    nv.nvlist("sub", nv.list(nv.boolean("flag"))),
    nv.nvlistArray("arr", [nv.list(nv.uint64("a", 1n))]),
    nv.hrtime("hr", 5n),
    nv.double("d", 1.5),
  ));
  assertEquals(
    text,
    [
      "     bv: false",
      "     by: 255",
      "     i8: -5",
      "     u8: 200",
      "     i16: -300",
      "     u16: 60000",
      "     i32: -70000",
      "     u32: 4000000000",
      "     i64: -9223372036854775808",
      "     u64: 18446744073709551615",
      "     i8a[0]: -1",
      "     i8a[1]: 2",
      "     u8a[0]: 1",
      "     sa[0]: 'x'",
      "     sa[1]: 'y'",
      "     sub:",
      "         flag",
      "     arr[0]:",
      "         a: 1",
      "bad config type 18 for hr",
      "bad config type 27 for d",
      "",
    ].join("\n"),
  );
});

// ---------------------------------------------------------------------------------------------
// The resume point of a cut stream
// ---------------------------------------------------------------------------------------------

/** A small stream with every kind of record a resume point can and cannot be. */
function sampleStream(features: number): Uint8Array {
  const w = new StreamWriter();
  const g = 0x1234n;
  const obj = (object: bigint, bonus: number) =>
    w.write({
      type: DRR.OBJECT,
      object,
      object_type: 19,
      bonustype: 44,
      blksz: 4096,
      bonuslen: bonus,
      toguid: g,
    }, new Uint8Array(Math.ceil(bonus / 8) * 8).fill(3));
  const write = (object: bigint, offset: bigint) =>
    w.write({
      type: DRR.WRITE,
      object,
      object_type: 19,
      offset,
      logical_size: 4096n,
      toguid: g,
    }, new Uint8Array(4096).fill(Number(offset >> 12n) + 1));
  return concat([
    ...w.begin({
      toname: "pool/fs@s2",
      toguid: g,
      fromguid: 0x99n,
      objset_type: 2,
      versioninfo: makeVersioninfo(1, BigInt(features)),
      flags: 4,
    }),
    ...w.write({ type: DRR.FREEOBJECTS, firstobj: 0n, numobjs: 2n, toguid: g }),
    ...obj(2n, 168),
    ...w.write({ type: DRR.FREE, object: 2n, offset: 8192n, length: -1n, toguid: g }),
    ...write(2n, 0n),
    ...write(2n, 4096n),
    ...w.write({
      type: DRR.WRITE_EMBEDDED,
      object: 2n,
      offset: 8192n,
      length: 4096n,
      toguid: g,
      compression: 2,
      etype: 0,
      lsize: 64,
      psize: 64,
    }, new Uint8Array(64).fill(9)),
    ...obj(3n, 0),
    ...w.write({ type: DRR.FREE, object: 3n, offset: 0n, length: -1n, toguid: g }),
    ...obj(4n, 8),
    ...write(4n, 0n),
    ...w.write({ type: DRR.FREEOBJECTS, firstobj: 5n, numobjs: 27n, toguid: g }),
    ...w.end(),
  ]);
}

Deno.test("findResumePoint() follows the kernel's rule at every cut of a stream", async () => {
  const features = FEATURE.EMBED_DATA | FEATURE.LARGE_BLOCKS | FEATURE.COMPRESSED;
  const bytes = sampleStream(features);
  const records = await Array.fromAsync(readRecords([bytes]));
  for (let cut = RECORD_SIZE; cut < bytes.length; cut++) {
    const v = new StreamVerifier();
    const scan = await findResumePoint([bytes.subarray(0, cut)], { check: (r) => v.check(r) });
    assert(scan.fault !== null, `cut ${cut}: no fault`);
    const p = scan.point!;
    const want = expectedPoint(records, cut);
    assertEquals(
      {
        object: p.state.object,
        offset: p.state.offset,
        bytes: p.state.bytes,
        index: p.recordIndex,
      },
      want,
      `cut at ${cut}`,
    );
    assertEquals(p.state.toguid, 0x1234n);
    assertEquals(p.state.fromguid, 0x99n);
    assertEquals(p.state.toname, "pool/fs@s2");
    assertEquals(
      [p.state.largeblockok, p.state.embedok, p.state.compressok, p.state.rawok],
      [true, true, true, false],
    );
  }
  const whole = await findResumePoint([bytes]);
  assertEquals([whole.fault, whole.point], [null, null]);
});

Deno.test("findResumePoint() stops at a damaged header: its record's predecessor is not applied", async () => {
  const bytes = sampleStream(0);
  const records = await Array.fromAsync(readRecords([bytes]));
  // Damage the checksum of the header after the second WRITE (the WRITE_EMBEDDED).
  const k = records.findIndex((r) => r.header.type === DRR.WRITE_EMBEDDED);
  const bad = bytes.slice();
  bad[records[k]!.offset + 290]! ^= 1;
  const scan = await findResumePoint([bad]);
  assertEquals(scan.fault?.index, k);
  // Record k - 1 (WRITE 2@4096) is not covered; k - 2 (WRITE 2@0) is the last applied.
  assertEquals([scan.point?.state.object, scan.point?.state.offset], [2n, 0n]);
  assertEquals(scan.point?.recordIndex, k - 2);
  assertEquals([scan.point?.state.embedok, scan.point?.state.compressok], [false, false]);
});

Deno.test("zsend token prints the kernel's token as zstream token does; --json too", async () => {
  const r = await runZsend(["token", KERNEL_TOKEN]);
  assertEquals([r.code, r.stdout, r.stderr], [0, KERNEL_TEXT, ""]);
  const j = await runZsend(["token", "--json", KERNEL_TOKEN]);
  assertEquals(j.code, 0, j.stderr);
  assertEquals(JSON.parse(j.stdout), {
    version: 1,
    checksum: "61960632705",
    packed_length: 208,
    object: "4178",
    offset: "655360",
    bytes: "8012360",
    toguid: "0x63db7614ad467c53",
    toname: "zc/fs@a",
    compressok: true,
  });
  const bad = await runZsend(["token", KERNEL_TOKEN.replace("e6d", "e6e")]);
  assertEquals(bad.code, 1);
  assertEquals(
    bad.stderr,
    "Unable to parse resume token: resume token is corrupt (incorrect checksum)\n",
  );
  assertEquals((await runZsend(["token"])).code, 2);
});

Deno.test("zsend verify --resume-token prints the token of a cut stream on stdout", async () => {
  const bytes = sampleStream(FEATURE.EMBED_DATA);
  const records = await Array.fromAsync(readRecords([bytes]));
  const dir = await Deno.makeTempDir({ prefix: "zsend-resume-" });
  try {
    const cut = records[6]!.offset + 400; // inside the payload of the record after WRITE 2@4096
    await Deno.writeFile(`${dir}/cut`, bytes.subarray(0, cut));
    const r = await runZsend(["verify", "--resume-token", `${dir}/cut`]);
    assertEquals(r.code, 1);
    const want = expectedPoint(records, cut);
    assertEquals(want.index, 5);
    const s = resumeState(decodeResumeToken(r.stdout.trim()).nvlist);
    assertEquals([s.object, s.offset, s.bytes], [want.object, want.offset, want.bytes]);
    assertMatch(r.stderr, /truncated/);
    assertMatch(r.stderr, /resume pool\/fs@s2 at object 2 offset 4096/);
    const j = await runZsend(["verify", "--resume-token", "--json", `${dir}/cut`]);
    const o = JSON.parse(j.stdout);
    assertEquals([j.code, o.ok, o.resume_token, o.resume.after_index], [
      1,
      false,
      r.stdout.trim(),
      5,
    ]);
    assertEquals(o.resume.end, String(records[5]!.offset + 312 + records[5]!.payload.length));
    await Deno.writeFile(`${dir}/whole`, bytes);
    const w = await runZsend(["verify", "--resume-token", `${dir}/whole`]);
    assertEquals([w.code, w.stdout], [0, ""]);
    // Nothing to resume when the BEGIN itself is cut.
    await Deno.writeFile(`${dir}/begin`, bytes.subarray(0, 100));
    const b = await runZsend(["verify", "--resume-token", `${dir}/begin`]);
    assertEquals([b.code, b.stdout], [1, ""]);
    assertMatch(b.stderr, /nothing to resume/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resumeState() needs the fields zfs send -t needs", () => {
  const packed = encodeNvlist(nv.list(nv.uint64("object", 1n)), { encoding: "native" });
  const list = decodeNvlist(packed);
  assertThrows(() => resumeState(list), ResumeTokenError, "no uint64 offset");
  assertEquals(list.pairs[0]?.type, DATA_TYPE.UINT64);
});
