/**
 * `zsend dump -v` against the exact output of the newest OpenZFS `zstream dump -v`.
 */

import { assertEquals } from "@std/assert";
import { openzfsDir, skipNote, unpackBz2 } from "./_fixtures.ts";
import { runZsend } from "./_run.ts";

const dir = openzfsDir();
if (dir === null) skipNote("OpenZFS dump comparisons", "../shared/fixtures/openzfs is absent");

const PAIRS: [string, string][] = [
  ["leadtbn", "little-endian-all-drr-types-base-NATIVE"],
  ["leadtbx", "little-endian-all-drr-types-base-XDR"],
  ["leadtin", "little-endian-all-drr-types-incr-NATIVE"],
  ["leadtix", "little-endian-all-drr-types-incr-XDR"],
  ["lelp", "little-endian-long-payloads"],
  ["d", "decompress"],
];

for (const [abbrev, stream] of PAIRS) {
  Deno.test({
    name: `zsend dump -v equals zstream dump -v of ${stream}`,
    ignore: dir === null,
    async fn() {
      const expected = await Deno.readTextFile(await unpackBz2(`${dir}/${abbrev}-new.dump.bz2`));
      const input = await unpackBz2(`${dir}/${stream}.zsend.bz2`);
      const r = await runZsend(["dump", "-v", input]);
      assertEquals(r.stderr, "");
      assertEquals(r.code, 0);
      assertEquals(r.stdout, expected);
    },
  });
}
