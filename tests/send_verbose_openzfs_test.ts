/**
 * `zsend send -n -v` and `-n -P` against OpenZFS 2.3's own `zfs send -n -v` and `-n -P` of the
 * same snapshots (the guest wrote them into the corpus): the same lines, in the same order, with
 * the same names; only the sizes differ (zfs estimates, zsend counts), so they are compared as
 * numbers with a unit of the form zfs prints.
 */

import { assert, assertEquals } from "@std/assert";
import { corpusFile, corpusStream, corpusUnavailable, openzfsCorpus } from "./_openzfs.ts";
import { runZsend } from "./_run.ts";

const why = corpusUnavailable();

/** The lines with each size as `SIZE` (checked to be a size zfs could print). */
function shape(text: string, parsable: boolean): string[] {
  return text.split("\n").filter((l) => l !== "").map((l) => {
    if (parsable) {
      const f = l.split("\t");
      assert(/^\d+$/.test(f[f.length - 1]!), `not a size in bytes: ${l}`);
      return [...f.slice(0, -1), "SIZE"].join("\t");
    }
    const m = /^(.* estimated size is )(\S+)$/.exec(l);
    if (m === null) throw new Error(`not an estimate line: ${l}`);
    assert(/^\d+(\.\d{1,2})?[BKMGTPE]?$/.test(m[2]!), `not a nicenum: ${m[2]}`);
    return `${m[1]}SIZE`;
  });
}

Deno.test({
  name: "send -n -v and -n -P print the lines OpenZFS 2.3's zfs send prints",
  ignore: why !== null,
  async fn(t) {
    const runs = openzfsCorpus().sendv;
    assert(runs.length >= 4, `only ${runs.length} zfs send -n -v runs in the corpus`);
    const base = await Deno.makeTempDir({ prefix: "zsend-sendv-" });
    const store = `${base}/store`;
    try {
      const r = await runZsend(["recv", "-d", store, "zc", corpusStream("fs-r.R").file]);
      assertEquals(r.code, 0, r.stderr);
      for (const run of runs) {
        await t.step(`zfs send ${run.args.join(" ")}`, async () => {
          const target = run.args[run.args.length - 1]!;
          for (const [flag, file] of [["-v", "sendv"], ["-P", "sendP"]] as const) {
            const want = await Deno.readTextFile(corpusFile(`${run.name}.${file}.txt`));
            const args = ["send", "-n", flag, ...run.args.slice(0, -1), store, target];
            const got = await runZsend(args);
            assertEquals(got.code, 0, `zsend ${args.join(" ")}: ${got.stderr}`);
            assertEquals(
              shape(got.stdout, flag === "-P"),
              shape(want, flag === "-P"),
              `zsend ${args.join(" ")}`,
            );
          }
        });
      }
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});
