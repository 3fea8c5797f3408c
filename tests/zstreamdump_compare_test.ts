/**
 * `zsend dump --json` against what zfs-fuse's `zstreamdump -v` printed for the same stream,
 * field by field and record by record: the shipped fixtures and fresh streams from real zfs-fuse.
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
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
/** A number field, or a u64 as a decimal string, or a guid as 0x and 16 hex digits. */
function big(v: unknown, name: string): bigint {
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  if (typeof v === "string" && /^(0|[1-9][0-9]*|0x[0-9a-f]{16})$/.test(v)) return BigInt(v);
  throw new Error(`${name}: ${JSON.stringify(v)} is neither a number, a decimal string nor a guid`);
}

const GUIDS = new Set(["toguid", "fromguid", "refguid"]);

function ours(fields: Json, name: string): DumpValue {
  const v = fields[name];
  if (name === "checksum") return (v as unknown[]).map((w) => big(w, name));
  if (name === "toname") return v as string;
  // Guids as 0x and 16 hex digits; every other u64 as a decimal string.
  if (GUIDS.has(name)) assertMatch(String(v), /^0x[0-9a-f]{16}$/, name);
  else if (typeof v === "string") assertMatch(v, /^(0|[1-9][0-9]*)$/, name);
  return big(v, name);
}

function compareRecord(dump: DumpRecord, json: Json, where: string): void {
  assertEquals(json.type, dump.type, `${where}: record type`);
  const fields = json.fields as Json;
  const names = FIELD_NAMES[dump.type] ?? {};
  for (const [printed, value] of dump.fields) {
    const name = names[printed] ?? printed;
    assert(name in fields, `${where}: no field ${name} (zstreamdump printed '${printed}')`);
    let mine = ours(fields, name);
    // zstreamdump prints FREE's length as a signed number.
    if (dump.type === "FREE" && name === "length") mine = BigInt.asIntN(64, mine as bigint);
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
  const types = summary.types as Record<string, { records: number; payload_bytes: string }>;
  for (const [type, count] of s.counts) {
    assertEquals(big(types[type]!.records, type), count, type);
  }
  // zfs-fuse leaves WRITE_BYREF out of its total.
  assertEquals(
    big(summary.records, "records") - big(types.WRITE_BYREF!.records, "byref"),
    s.totalRecords,
  );
  const writeSize = s.totals.get("write size");
  if (writeSize !== undefined) assertEquals(big(types.WRITE!.payload_bytes, "write"), writeSize);
  assertEquals(big(summary.bytes, "bytes"), s.totals.get("stream length"));
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
