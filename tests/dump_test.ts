/**
 * `zsend dump` and `zsend verify` as a user runs them: flags, stdin, JSON, damaged input.
 */

import { assert, assertEquals } from "@std/assert";
import { ZFS_FUSE_DIR } from "./_fixtures.ts";
import { runZsend } from "./_run.ts";

const FULL = `${ZFS_FUSE_DIR}/fs-s1.full.zstream`;

Deno.test("zsend dump without -v prints BEGIN, END and the SUMMARY only", async () => {
  const r = await runZsend(["dump", FULL]);
  assertEquals(r.code, 0, r.stderr);
  const lines = r.stdout.split("\n");
  assertEquals(lines[0], "BEGIN record");
  assert(!r.stdout.includes("OBJECT object"), "no OBJECT lines without -v");
  assert(/^END checksum = [0-9a-f]+\/[0-9a-f]+\/[0-9a-f]+\/[0-9a-f]+$/m.test(r.stdout));
  assert(/^\tTotal records = 177$/m.test(r.stdout), r.stdout);
  assert(/^\tTotal stream length = 692848 \(0xa9270\)$/m.test(r.stdout), r.stdout);
});

Deno.test("zsend dump -vv adds a checksum line per record, -d the payload bytes", async () => {
  const vv = await runZsend(["dump", "-vv", FULL]);
  assertEquals(vv.code, 0, vv.stderr);
  const records = vv.stdout.split("\n").filter((l) =>
    /^(OBJECT|FREE|FREEOBJECTS|WRITE|END) /.test(l)
  );
  const checksums = vv.stdout.split("\n").filter((l) => l.startsWith("    checksum = "));
  assertEquals(checksums.length, records.length);
  const d = await runZsend(["dump", "-d", FULL]);
  assertEquals(d.code, 0, d.stderr);
  // Hex in groups of four, then the bytes as ASCII, 16 bytes a line.
  assert(/^ [0-9a-f]{2} [0-9a-f]{2} [0-9a-f]{2} [0-9a-f]{2} {2}[0-9a-f]{2} /m.test(d.stdout));
});

Deno.test("zsend dump --json reads stdin and ends with a summary object", async () => {
  const r = await runZsend(["dump", "--json", "-"], { stdin: await Deno.readFile(FULL) });
  assertEquals(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
  assertEquals(lines.length, 178);
  assertEquals(lines[0].type, "BEGIN");
  assertEquals(lines[0].fields.toname, "fx1/fs@s1");
  assertEquals(lines[0].fields.toguid, "0xbe1557e4eedde745");
  // The record's place in the stream and its own offset field: both u64, decimal strings.
  const write = lines.find((l) => l.type === "WRITE");
  assertEquals([write.index, write.offset, write.fields.offset], [64, "27640", "0"]);
  assertEquals(lines.at(-1).summary.bytes, "692848");
});

Deno.test("zsend dump of a damaged stream prints up to the fault, then exits 1 naming it", async () => {
  const bytes = await Deno.readFile(FULL);
  const r = await runZsend(["dump", "-v", "-"], { stdin: bytes.subarray(0, 400000) });
  assertEquals(r.code, 1);
  assert(/^zsend dump: record \d+ \([A-Z_]+ at byte \d+\): truncated/.test(r.stderr), r.stderr);
  assert(r.stdout.includes("OBJECT object"), "the records before the fault were printed");
  assert(!r.stdout.includes("SUMMARY"));
});

Deno.test("zsend verify --json says ok, or the record, type and offset of the fault", async () => {
  const good = await runZsend(["verify", "--json", FULL]);
  assertEquals(good.code, 0);
  assertEquals(JSON.parse(good.stdout).ok, true);
  const bytes = (await Deno.readFile(FULL)).slice();
  bytes[312 * 2 + 8]! ^= 1;
  const bad = await runZsend(["verify", "--json", "-"], { stdin: bytes });
  assertEquals(bad.code, 1);
  const j = JSON.parse(bad.stdout);
  assertEquals(j.ok, false);
  assertEquals([j.error.kind, j.error.index, j.error.offset, j.error.type], [
    "stream",
    2,
    "624",
    "OBJECT",
  ]);
  assert(j.error.fault.length > 0 && bad.stderr.includes(j.error.fault), bad.stdout);
  const quiet = await runZsend(["verify", "--quiet", "-"], { stdin: bytes });
  assertEquals([quiet.code, quiet.stdout, quiet.stderr], [1, "", ""]);
  const usage = await runZsend(["verify", "a", "b"]);
  assertEquals(usage.code, 2);
});
