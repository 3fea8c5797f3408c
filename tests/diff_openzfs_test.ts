/**
 * `zsend diff` against real `zfs diff` of OpenZFS 2.3: the guest (scripts/openzfs/guest/
 * corpus.sh) ran `zfs diff`, plain, `-FHt` and some with `-F`, `-h`, `-t`, `-H`, between the
 * snapshots its streams carry (creates, deletes, rewrites, renames across directories, hard
 * links, xattr changes in SA and in xattr directories, type changes, names with spaces, tabs,
 * newlines, control bytes and UTF-8, a file on the delete queue, a clone, an encrypted
 * dataset). Here the streams go into one store and zsend's text must equal zfs diff's, line
 * for line and in the same order (both go object by object).
 */

import { assert, assertEquals } from "@std/assert";
import {
  type CorpusDiff,
  corpusFile,
  corpusStream,
  corpusUnavailable,
  openzfsCorpus,
} from "./_openzfs.ts";
import { runZsend, runZsendOk } from "./_run.ts";

const why = corpusUnavailable();
const S = (name: string) => corpusStream(name).file;
const PASS = () => ["--passphrase-file", corpusFile("passphrase.txt")];

const ok = async (args: string[]): Promise<string> => (await runZsendOk(args)).stdout;

/** A store that holds every snapshot the corpus diffs, as oz/DATASET@SNAP. */
async function storeOfCorpus(): Promise<string> {
  const store = `${await Deno.makeTempDir({ prefix: "zsend-diff-" })}/store`;
  await ok(["recv", "-d", store, "oz", S("fs-r.R")]);
  await ok(["recv", store, "oz/clone", S("clone-b-c1.clone")]);
  await ok(["recv", store, "oz/spill", S("spill-s1.full")]);
  await ok(["recv", store, "oz/spill", S("spill-s1-s2.incr")]);
  await ok(["recv", store, "oz/enc-gcm", S("enc-gcm-e1.raw")]);
  await ok(["recv", store, "oz/enc-gcm", S("enc-gcm-e1-e2.raw")]);
  for (const s of ["diffs-d1.full", "diffs-d1-d2.incr", "diffs-d2-d3.incr"]) {
    await ok(["recv", store, "oz/diffs", S(s)]);
  }
  return store;
}

function args(store: string, d: CorpusDiff): string[] {
  const key = d.to.startsWith("enc-") ? PASS() : [];
  const flags = d.flags === "" ? [] : [d.flags];
  return [
    "diff",
    ...flags,
    "--mountpoint",
    d.mountpoint,
    ...key,
    store,
    `oz/${d.from}`,
    `oz/${d.to}`,
  ];
}

Deno.test({
  name: "zsend diff equals OpenZFS 2.3's zfs diff, line for line, with every flag",
  ignore: why !== null || (openzfsCorpus().diffs.length === 0),
  async fn(t) {
    const store = await storeOfCorpus();
    try {
      const diffs = openzfsCorpus().diffs;
      let lines = 0;
      // zfs diff in the emulated guest takes minutes for thousands of files (each path a scan
      // of its directory); the corpus gives each 5 minutes and records 124 for one cut short.
      const cut = diffs.filter((d) => d.status === 124);
      for (const d of cut) {
        console.log(`zfs diff ${d.flags} ${d.from} ${d.to}: cut short in the guest`);
      }
      assert(diffs.length - cut.length >= 15, `only ${diffs.length - cut.length} whole zfs diffs`);
      for (const d of diffs.filter((d) => d.status !== 124)) {
        await t.step(`${d.name} ${d.flags || "(no flags)"}`, async () => {
          assertEquals(d.status, 0, `zfs diff ${d.flags} ${d.from} ${d.to} failed in the guest`);
          const want = await Deno.readTextFile(d.file);
          const got = await ok(args(store, d));
          assertEquals(got.split("\n"), want.split("\n"), `zsend ${args(store, d).join(" ")}`);
          lines += want.split("\n").length - 1;
        });
      }
      console.log(`${diffs.length - cut.length} zfs diff outputs, ${lines} lines, all equal`);
    } finally {
      await Deno.remove(store.replace(/\/store$/, ""), { recursive: true });
    }
  },
});

Deno.test({
  name: "zsend diff of an encrypted snapshot without its key is refused with a clear message",
  ignore: why !== null || (openzfsCorpus().diffs.length === 0),
  async fn() {
    const store = `${await Deno.makeTempDir({ prefix: "zsend-diff-" })}/store`;
    try {
      await ok(["recv", store, "oz/enc-gcm", S("enc-gcm-e1.raw")]);
      await ok(["recv", store, "oz/enc-gcm", S("enc-gcm-e1-e2.raw")]);
      const r = await runZsend(["diff", store, "oz/enc-gcm@e1", "oz/enc-gcm"]);
      assertEquals(r.code, 1, r.stderr);
      assertEquals(r.stdout, "");
      assertEquals(
        r.stderr.trim().split("\n").length,
        1,
        `one line, no stack trace: ${r.stderr}`,
      );
      assert(/encrypted.*--key-file PATH or --passphrase-file PATH/.test(r.stderr), r.stderr);
      const wrong = await Deno.makeTempFile();
      await Deno.writeTextFile(wrong, "not the passphrase");
      const w = await runZsend([
        "diff",
        "--passphrase-file",
        wrong,
        store,
        "oz/enc-gcm@e1",
        "oz/enc-gcm",
      ]);
      assertEquals(w.code, 1, w.stderr);
      assert(/wrong/.test(w.stderr), w.stderr);
      await Deno.remove(wrong);
    } finally {
      await Deno.remove(store.replace(/\/store$/, ""), { recursive: true });
    }
  },
});
