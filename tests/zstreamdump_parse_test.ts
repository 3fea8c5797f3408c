/**
 * The zstreamdump text parser (tests/helpers/zstreamdump.ts) on every shipped dump: the records
 * it finds add up to what zstreamdump's own SUMMARY says, record type by record type.
 * Also OpenZFS's `zstream dump -v` texts (`*-new.dump.bz2`) when ZSEND_OPENZFS_FIXTURES (or
 * ../shared/fixtures/openzfs) is there, and a few hand-written texts for the odd cases.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  countByType,
  type DumpRecord,
  num,
  type ParsedDump,
  parseZstreamdump,
  str,
} from "./helpers/zstreamdump.ts";

const FIXTURES = new URL("./fixtures/zfs-fuse/", import.meta.url);
const dumpNames = [...Deno.readDirSync(FIXTURES)]
  .map((e) => e.name)
  .filter((n) => n.endsWith(".dump.txt"))
  .sort();

/** The fields each record type of zfs-fuse's zstreamdump prints. */
const FIELDS: Record<string, string[]> = {
  BEGIN: [
    "hdrtype",
    "features",
    "magic",
    "creation_time",
    "type",
    "flags",
    "toguid",
    "fromguid",
    "toname",
  ],
  OBJECT: ["object", "type", "bonustype", "blksz", "bonuslen"],
  FREEOBJECTS: ["firstobj", "numobjs"],
  WRITE: ["object", "type", "checksum type", "offset", "length", "props"],
  WRITE_BYREF: [
    "object",
    "checksum type",
    "props",
    "offset",
    "length",
    "toguid",
    "refguid",
    "refobject",
    "refoffset",
  ],
  FREE: ["object", "offset", "length"],
  END: ["checksum"],
};

function sum(values: Iterable<bigint>): bigint {
  let s = 0n;
  for (const v of values) s += v;
  return s;
}

/**
 * Checks a parsed dump against its own SUMMARY. `uncounted` are the record types the tool
 * counts in no SUMMARY line (zfs-fuse: WRITE_BYREF).
 */
function checkAgainstSummary(dump: ParsedDump, uncounted: readonly string[]): void {
  assertEquals(dump.messages, [], "lines that are neither records nor summary");
  const summary = dump.summary;
  if (summary === null) throw new Error("no SUMMARY");
  const parsed = countByType(dump.records);
  for (const [type, count] of summary.counts) {
    assertEquals(parsed.get(type) ?? 0n, count, `${type} records`);
  }
  for (const [type, count] of parsed) {
    if (summary.counts.has(type)) continue;
    assert(uncounted.includes(type), `${count} ${type} records that the SUMMARY does not count`);
  }
  assertEquals(sum(summary.counts.values()), summary.totalRecords, "Total records = the sum");
  const counted = dump.records.filter((r) => !uncounted.includes(r.type)).length;
  assertEquals(BigInt(counted), summary.totalRecords, "Total records = the records parsed");

  // Every compound BEGIN brings one END more (the compound stream's own).
  const begins = dump.records.filter((r) => r.type === "BEGIN");
  const compound = begins.filter((r) => num(r, "hdrtype") === 2n).length;
  assertEquals(parsed.get("END") ?? 0n, BigInt(begins.length + compound), "END records");
  for (const b of begins) assertEquals(num(b, "magic"), 0x2F5BACBACn);
}

function checkFields(records: readonly DumpRecord[]): void {
  for (const r of records) {
    const want = FIELDS[r.type];
    assert(want !== undefined, `line ${r.line}: unexpected record type ${r.type}`);
    assertEquals([...r.fields.keys()], want, `line ${r.line}: ${r.type} fields`);
    for (const [name, value] of r.fields) {
      if (r.type === "BEGIN" && name === "toname") continue;
      if (r.type === "END") {
        assert(Array.isArray(value) && value.length === 4, `line ${r.line}: END checksum`);
      } else {
        assertEquals(typeof value, "bigint", `line ${r.line}: ${r.type} ${name}`);
      }
    }
  }
}

Deno.test("zstreamdump parse: the shipped zfs-fuse dumps are there", () => {
  assert(dumpNames.length >= 7, `only ${dumpNames.length} dumps in ${FIXTURES.pathname}`);
});

for (const name of dumpNames) {
  Deno.test(`zstreamdump parse: ${name} adds up to its SUMMARY`, () => {
    const dump = parseZstreamdump(Deno.readTextFileSync(new URL(name, FIXTURES)));
    checkAgainstSummary(dump, ["WRITE_BYREF"]);
    checkFields(dump.records);
    const summary = dump.summary!;

    // zfs-fuse's "Total write size" is the WRITE payloads; "Total stream length" the file's.
    const writes = dump.records.filter((r) => r.type === "WRITE").map((r) => num(r, "length"));
    assertEquals(summary.totals.get("write size"), sum(writes), "Total write size");
    const stream = new URL(name.replace(/\.dump\.txt$/, ".zstream"), FIXTURES);
    assertEquals(summary.totals.get("stream length"), BigInt(Deno.statSync(stream).size));

    // The nvlist of a compound BEGIN is kept as text, not taken for records.
    for (const r of dump.records) {
      if (r.nvlist !== undefined) {
        assertEquals(r.type, "BEGIN");
        assertEquals(num(r, "hdrtype"), 2n);
        assert(r.nvlist.startsWith("nvlist version: 0\n"), `line ${r.line}: nvlist text`);
      }
    }
  });
}

Deno.test("zstreamdump parse: field values of fs-s1.full", () => {
  const dump = parseZstreamdump(Deno.readTextFileSync(new URL("fs-s1.full.dump.txt", FIXTURES)));
  const begin = dump.records[0]!;
  assertEquals(begin.type, "BEGIN");
  assertEquals(num(begin, "toguid"), 0xbe1557e4eedde745n);
  assertEquals(num(begin, "creation_time"), 0x6b055bdfn);
  assertEquals(num(begin, "flags"), 0n);
  assertEquals(str(begin, "toname"), "fx1/fs@s1");
  assertEquals(begin.nvlist, undefined);
  const first = dump.records[1]!;
  assertEquals([first.type, num(first, "firstobj"), num(first, "numobjs")], [
    "FREEOBJECTS",
    0n,
    1n,
  ]);
  const free = dump.records.find((r) => r.type === "FREE" && num(r, "length") === -1n);
  assert(free !== undefined, "a FREE to the end of an object (length -1)");
  const write = dump.records.find((r) => r.type === "WRITE")!;
  assertEquals(num(write, "checksum type"), 7n);
  assertEquals(num(write, "props"), 0x200000000n);
  const end = dump.records.at(-1)!;
  assertEquals(end.type, "END");
  assertEquals(end.fields.get("checksum"), [
    0xb8bee5eff1d9n,
    0xfd9c860b07d03f3cn,
    0x6e43e6b870070a3en,
    0xd870406cff0a56a5n,
  ]);
  assertEquals(dump.summary!.totalRecords, 177n);
});

Deno.test("zstreamdump parse: WRITE_BYREF of fs-s2.dedup over four lines", () => {
  const dump = parseZstreamdump(Deno.readTextFileSync(new URL("fs-s2.dedup.dump.txt", FIXTURES)));
  const byref = dump.records.filter((r) => r.type === "WRITE_BYREF");
  assert(byref.length > 0);
  const r = byref[0]!;
  assertEquals(num(r, "object"), 57n);
  assertEquals(num(r, "checksum type"), 8n);
  assertEquals(num(r, "props"), 0x200ff00ffn);
  assertEquals(num(r, "offset"), 0n);
  assertEquals(num(r, "length"), 131072n);
  assertEquals(num(r, "toguid"), 0x20fe4e7a2bb42a9n);
  assertEquals(num(r, "refguid"), 0x20fe4e7a2bb42a9n);
  assertEquals(num(r, "refobject"), 56n);
  assertEquals(num(r, "refoffset"), 0n);
});

Deno.test("zstreamdump parse: the nvlist of fs-r1.replicate", () => {
  const text = Deno.readTextFileSync(new URL("fs-r1.replicate.dump.txt", FIXTURES));
  const dump = parseZstreamdump(text);
  const outer = dump.records[0]!;
  assertEquals(num(outer, "hdrtype"), 2n);
  if (outer.nvlist === undefined) throw new Error("no nvlist after the compound BEGIN");
  assert(outer.nvlist.includes("\ttosnap = r1\n"));
  assert(outer.nvlist.includes("name = fx1/fs/child"));
  assert(outer.nvlist.endsWith("\t(end fss)"), "trailing blank lines are not part of it");
  assertEquals(dump.records[1]!.type, "END", "the compound BEGIN's own END follows the nvlist");
  assertEquals(dump.records.at(-1)!.fields.get("checksum"), [0n, 0n, 0n, 0n]);
});

Deno.test("zstreamdump parse: hand-written odd cases", () => {
  const text = [
    "BEGIN record",
    "\thdrtype = 2",
    "\tfeatures = 4",
    "\tmagic = 2f5bacbac",
    "\tcreation_time = 0",
    "\ttype = 0",
    "\tflags = 0x4",
    "\ttoguid = 0",
    "\tfromguid = 0",
    "\ttoname = pool/a b@snap",
    "",
    "END checksum = 1/2/3/4",
    "BEGIN record",
    "\thdrtype = 1",
    "\tfeatures = 4",
    "\tmagic = 2f5bacbac",
    "\tcreation_time = 5f",
    "\ttype = 2",
    "\tflags = 0x0",
    "\ttoguid = ffffffffffffffff",
    "\tfromguid = 0",
    "\ttoname = pool/a b@snap",
    "",
    "FREE object = 3 offset = 512 length = -1",
    "SPILL object = 3 length = 512",
    "Expected checksum differs from checksum in stream.",
    "Expected checksum = a/b/c/d",
    "END checksum = 0/0/0/0",
    "END checksum = 0/0/0/0",
    "SUMMARY:",
    "\tTotal DRR_BEGIN records = 2",
    "\tTotal DRR_END records = 3",
    "\tTotal DRR_FREE records = 1",
    "\tTotal records = 6",
    "\tTotal write size = 0 (0x0)",
    "",
  ].join("\n");
  const dump = parseZstreamdump(text);
  assertEquals(dump.records.map((r) => r.type), [
    "BEGIN",
    "END",
    "BEGIN",
    "FREE",
    "SPILL",
    "END",
    "END",
  ]);
  assertEquals(dump.records[0]!.nvlist, undefined, "a compound BEGIN without an nvlist");
  assertEquals(str(dump.records[0]!, "toname"), "pool/a b@snap");
  assertEquals(num(dump.records[0]!, "features"), 4n);
  assertEquals(num(dump.records[2]!, "toguid"), 0xffffffffffffffffn);
  assertEquals(num(dump.records[2]!, "creation_time"), 0x5fn);
  assertEquals(num(dump.records[3]!, "length"), -1n);
  assertEquals(num(dump.records[4]!, "length"), 512n);
  assertEquals(dump.records[5]!.expectedChecksum, [0xan, 0xbn, 0xcn, 0xdn]);
  assertEquals(dump.records[6]!.expectedChecksum, undefined);
  checkAgainstSummary(dump, ["SPILL"]);

  assertThrows(() => parseZstreamdump("SUMMARY:\n\tsomething else\n"));
  assertThrows(() => parseZstreamdump("FREE object = 1 offset\n"));
  const odd = parseZstreamdump("INVALID record found: type 0x1f\nAborting.\n");
  assertEquals(odd.records, []);
  assertEquals(odd.messages.map((m) => m.text), ["INVALID record found: type 0x1f", "Aborting."]);
});

// OpenZFS's `zstream dump -v`: a newer text, one line a record, counts with byte totals.
const openzfs = (() => {
  let dir = Deno.env.get("ZSEND_OPENZFS_FIXTURES");
  dir ??= new URL("../../shared/fixtures/openzfs", import.meta.url).pathname;
  try {
    return [...Deno.readDirSync(dir)]
      .map((e) => e.name)
      .filter((n) => n.endsWith("-new.dump.bz2"))
      .sort()
      .map((n) => `${dir}/${n}`);
  } catch {
    return null;
  }
})();
if (openzfs === null) {
  if (Deno.env.get("CI") === "true") {
    Deno.test("zstreamdump parse: OpenZFS dumps", () => {
      throw new Error("OpenZFS fixtures absent in CI (set ZSEND_OPENZFS_FIXTURES)");
    });
  } else {
    console.log("SKIPPED zstreamdump parse of OpenZFS dumps: ../shared/fixtures/openzfs absent");
  }
} else {
  for (const path of openzfs) {
    Deno.test(`zstreamdump parse: OpenZFS ${path.split("/").pop()} adds up to its SUMMARY`, async () => {
      const out = await new Deno.Command("bzip2", { args: ["-dc", path] }).output();
      assert(out.success, `bzip2 -dc ${path}`);
      const dump = parseZstreamdump(new TextDecoder().decode(out.stdout));
      checkAgainstSummary(dump, []);
      for (const r of dump.records) {
        if (r.type === "WRITE") assertEquals(typeof r.fields.get("props"), "bigint");
        if (r.type === "SPILL") assertEquals(typeof r.fields.get("object"), "bigint");
      }
      const bytes = dump.summary!.bytes;
      assert(bytes.size > 0, "OpenZFS counts bytes per record type");
    });
  }
}
