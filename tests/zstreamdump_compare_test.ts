/**
 * `zsend dump --json` against what zfs-fuse's `zstreamdump -v` printed for the same stream,
 * field by field and record by record: the shipped fixtures and fresh streams from real zfs-fuse.
 */

import { assert, assertEquals } from "@std/assert";
import { type DumpRecord, type DumpValue, parseZstreamdump } from "./helpers/zstreamdump.ts";
import { ZFS_FUSE_DIR, zfsFuseStreams } from "./_fixtures.ts";
import { freshStreams, freshUnavailable } from "./_fresh.ts";
import { runZsend } from "./_run.ts";

type Json = Record<string, unknown>;

/** zstreamdump's name of a field -> ours, per record type. */
const FIELD_NAMES: Record<string, Record<string, string>> = {
  BEGIN: { type: "objset_type" },
  OBJECT: { type: "object_type" },
  WRITE: {
    type: "object_type",
    "checksum type": "checksumtype",
    length: "logical_size",
    props: "key_prop",
  },
  WRITE_BYREF: { "checksum type": "checksumtype", props: "key_prop" },
};
const HEX = new Set([
  "magic",
  "features",
  "toguid",
  "fromguid",
  "refguid",
  "key_prop",
  "creation_time",
]);

function ours(rec: Json, name: string): DumpValue {
  const v = rec[name];
  if (name === "checksum") return (v as string[]).map((w) => BigInt("0x" + w));
  if (typeof v === "string" && name === "toname") return v;
  if (HEX.has(name) && typeof v === "string") return BigInt("0x" + v);
  return BigInt(v as number | string);
}

function compareRecord(dump: DumpRecord, json: Json, where: string): void {
  assertEquals(json.record, dump.type, `${where}: record type`);
  const names = FIELD_NAMES[dump.type] ?? {};
  for (const [printed, value] of dump.fields) {
    const name = names[printed] ?? printed;
    assert(name in json, `${where}: no field ${name} (zstreamdump printed '${printed}')`);
    let mine = ours(json, name);
    // zstreamdump prints FREE's length as a signed number.
    if (dump.type === "FREE" && name === "length") mine = BigInt.asIntN(64, mine as bigint);
    if (name === "creation_time" && typeof json[name] === "number") {
      mine = BigInt(json[name] as number);
    }
    assertEquals(mine, value, `${where}: ${dump.type} ${printed}`);
  }
}

async function compare(stream: string, dumpFile: string): Promise<void> {
  const dump = parseZstreamdump(await Deno.readTextFile(dumpFile));
  const r = await runZsend(["dump", "--json", stream]);
  assertEquals(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as Json);
  const summary = lines.pop()!.summary as Json;
  assertEquals(lines.length, dump.records.length, "record count");
  lines.forEach((json, i) => compareRecord(dump.records[i]!, json, `${stream} record ${i}`));
  const s = dump.summary!;
  const types = summary.types as Record<string, { records: number; payload_bytes: number }>;
  for (const [type, count] of s.counts) assertEquals(BigInt(types[type]!.records), count, type);
  // zfs-fuse leaves WRITE_BYREF out of its total.
  assertEquals(
    BigInt(summary.total_records as number) - BigInt(types.WRITE_BYREF!.records),
    s.totalRecords,
  );
  const writeSize = s.totals.get("write size");
  if (writeSize !== undefined) assertEquals(BigInt(types.WRITE!.payload_bytes), writeSize);
  assertEquals(BigInt(summary.stream_length as number), s.totals.get("stream length"));
}

for (const name of zfsFuseStreams()) {
  Deno.test(`zsend dump --json equals zstreamdump -v of the fixture ${name}`, async () => {
    await compare(`${ZFS_FUSE_DIR}/${name}.zstream`, `${ZFS_FUSE_DIR}/${name}.dump.txt`);
  });
}

const why = freshUnavailable();
Deno.test({
  name: "fresh zfs-fuse streams verify, and zsend dump --json equals zstreamdump -v",
  ignore: why !== null,
  async fn(t) {
    const fresh = await freshStreams();
    for (const s of fresh.info.streams) {
      await t.step(s.file, async () => {
        const path = `${fresh.dir}/${s.file}`;
        const v = await runZsend(["verify", path]);
        assertEquals(v.code, 0, `${s.file} (seed ${fresh.info.seed}): ${v.stderr}`);
        await compare(path, `${fresh.dir}/${s.dump}`);
      });
    }
  },
});
if (why !== null) console.log(`SKIPPED fresh zfs-fuse stream comparisons: ${why}`);
