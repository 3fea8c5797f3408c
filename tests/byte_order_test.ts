/**
 * The other byte order: every stream re-encoded big-endian (and back) dumps and verifies the
 * same as the original.
 */

import { assert, assertEquals } from "@std/assert";
import { readRecords } from "../core/stream/reader.ts";
import { transcodeRecords } from "../core/transform/transcode.ts";
import { verifyStream } from "../core/stream/verify.ts";
import { formatRecord } from "../core/stream/dump.ts";
import { bestFletcher4 } from "../io/native/fletcher4_native.ts";
import { openzfsDir, unpackBz2, ZFS_FUSE_DIR, zfsFuseStreams } from "./_fixtures.ts";
import { runZsend } from "./_run.ts";
import { concat } from "@std/bytes";

const engine = bestFletcher4();

async function transcode(bytes: Uint8Array, littleEndian: boolean): Promise<Uint8Array> {
  const chunks = await Array.fromAsync(
    transcodeRecords(readRecords([bytes], { fletcher4: engine }), littleEndian, engine),
  );
  return concat(chunks);
}

/** dump -v text with the checksum values taken out (they differ with the byte order). */
async function dumpText(bytes: Uint8Array): Promise<string> {
  let text = "";
  for await (const r of readRecords([bytes], { fletcher4: engine })) {
    text += formatRecord(r, { allRecords: true });
  }
  return text.replace(/^END checksum = .*$/gm, "END checksum = ...");
}

const inputs: [string, () => Promise<Uint8Array>][] = zfsFuseStreams().map((n) => [
  n,
  () => Deno.readFile(`${ZFS_FUSE_DIR}/${n}.zstream`),
]);
const dir = openzfsDir();
if (dir !== null) {
  for (
    const n of [
      "little-endian-all-drr-types-incr-XDR",
      "little-endian-all-drr-types-base-NATIVE",
      "dedup",
    ]
  ) {
    inputs.push([n, async () => Deno.readFile(await unpackBz2(`${dir}/${n}.zsend.bz2`))]);
  }
}

for (const [name, load] of inputs) {
  Deno.test(`transcodeRecords() big-endian ${name} dumps and verifies like the original`, async () => {
    const le = await load();
    const be = await transcode(le, false);
    assertEquals(be.length, le.length);
    const beFirst = await readRecords([be]).next();
    assert(!beFirst.value!.littleEndian, "the copy is big-endian");
    const a = await verifyStream([le], { fletcher4: engine });
    const b = await verifyStream([be], { fletcher4: engine });
    assertEquals(b, a);
    assertEquals(await dumpText(be), await dumpText(le));
    // And back again gives the original bytes.
    assertEquals(await transcode(be, true), le);
  });
}

Deno.test("zsend dump and verify take a big-endian stream from stdin", async () => {
  const le = await Deno.readFile(`${ZFS_FUSE_DIR}/fs-s1.full.zstream`);
  const be = await transcode(le, false);
  const v = await runZsend(["verify", "-"], { stdin: be });
  assertEquals(v.code, 0, v.stderr);
  const d1 = await runZsend(["dump", "-v", "-"], { stdin: be });
  const d2 = await runZsend(["dump", "-v", "-"], { stdin: le });
  const strip = (s: string) => s.replace(/^END checksum = .*$/gm, "");
  assertEquals(strip(d1.stdout), strip(d2.stdout));
  const bad = be.slice();
  bad[5000]! ^= 4;
  const v2 = await runZsend(["verify", "-"], { stdin: bad });
  assertEquals(v2.code, 1);
});
