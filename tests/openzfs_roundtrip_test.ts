/**
 * zsend's own streams, made from stores that real OpenZFS 2.3 streams filled, taken by the real
 * OpenZFS 2.3 `zfs receive` in the QEMU guest (scripts/openzfs/guest/receive.sh); the received
 * snapshots, mounted there, equal the originals (manifest and xattrs), volumes byte for byte.
 * One guest boot receives every stream of the plan.
 */

import { assert, assertEquals } from "@std/assert";
import {
  corpusFile,
  corpusManifest,
  corpusStream,
  corpusUnavailable,
  openzfsCorpus,
  receiveInGuest,
  vmUnavailable,
} from "./_openzfs.ts";
import { runZsend } from "./_run.ts";
import { guestTreeDiff } from "./helpers/corpus_tree.ts";

const why = corpusUnavailable() ?? vmUnavailable();
const S = (name: string) => corpusStream(name).file;

async function ok(args: string[]): Promise<string> {
  const r = await runZsend(args);
  assertEquals(r.code, 0, `zsend ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** One stream zsend writes for the guest, what the guest does with it, and what must hold. */
interface Case {
  /** The stream's file name in the guest's /in. */
  file: string;
  /** zsend's arguments; the stream is its stdout. */
  zsend: string[];
  /** `zfs receive` flags ("-" for none, commas between) and target below the guest's pool. */
  recv: [flags: string, target: string];
}
/** A snapshot in the guest that must equal a corpus snapshot (filesystem or volume). */
interface Check {
  guest: string;
  key: string;
  image?: boolean;
}

Deno.test({
  name: "zsend send of stores filled by OpenZFS 2.3 streams: real zfs receive takes each, " +
    "the mounted result equals the original",
  ignore: why !== null,
  async fn() {
    const corpus = openzfsCorpus();
    const work = await Deno.makeTempDir({ prefix: "zsend-rt-" });
    const store = (n: string) => `${work}/${n}`;
    // Stores as users fill them: with and without large blocks, -R, a volume, raw, codecs.
    const L = store("large");
    for (const s of ["fs-a.Lec", "fs-a-b.Lec", "fs-b-c.Lec"]) await ok(["recv", L, "oz/fs", S(s)]);
    await ok(["recv", L, "oz/clone", S("clone-b-c1.Lec")]);
    const P = store("plain");
    for (const s of ["fs-a.full", "fs-a-b.incr", "fs-b-c.incr"]) {
      await ok(["recv", P, "oz/fs", S(s)]);
    }
    await ok(["recv", P, "oz/plain", S("plain-p1.full")]);
    await ok(["recv", P, "oz/spill", S("spill-s1.full")]);
    await ok(["recv", P, "oz/spill", S("spill-s1-s2.incr")]);
    const R = store("rep");
    await ok(["recv", "-d", R, "rep", S("fs-r.RLec")]);
    const V = store("vol");
    await ok(["recv", V, "oz/vol", S("vol-v1.full")]);
    await ok(["recv", V, "oz/vol", S("vol-v1-v2.incr")]);
    const E = store("enc");
    await ok(["recv", E, "oz/enc", S("enc-gcm-e1.raw")]);
    await ok(["recv", E, "oz/enc", S("enc-gcm-e1-e2.raw")]);
    await ok(["recv", E, "oz/encvol", S("encvol-ev1.raw")]);
    const C = store("comp");
    const comps = [...corpus.snapshots.keys()].filter((k) => k.startsWith("comp-"));
    for (const k of comps) {
      const ds = k.split("@")[0]!;
      await ok(["recv", C, `oz/${ds}`, S(`${ds}.c`)]);
    }

    const cases: Case[] = [
      { file: "l-a", zsend: ["send", L, "oz/fs@a"], recv: ["-", "l/fs"] },
      { file: "l-ab", zsend: ["send", "-i", "@a", L, "oz/fs@b"], recv: ["-", "l/fs"] },
      { file: "l-bc", zsend: ["send", "-i", "@b", L, "oz/fs@c"], recv: ["-", "l/fs"] },
      {
        file: "l-clone",
        zsend: ["send", "-i", "oz/fs@b", L, "oz/clone@c1"],
        recv: ["-", "l/clone"],
      },
      { file: "p-a", zsend: ["send", P, "oz/fs@a"], recv: ["-", "p/fs"] },
      { file: "p-ac", zsend: ["send", "-I", "@a", P, "oz/fs@c"], recv: ["-", "p/fs"] },
      { file: "p-plain", zsend: ["send", P, "oz/plain@p1"], recv: ["-", "p/plain"] },
      { file: "p-spill1", zsend: ["send", P, "oz/spill@s1"], recv: ["-", "p/spill"] },
      {
        file: "p-spill12",
        zsend: ["send", "-i", "@s1", P, "oz/spill@s2"],
        recv: ["-", "p/spill"],
      },
      { file: "r-R", zsend: ["send", "-R", R, "rep/fs@r"], recv: ["-d", "r"] },
      // -R with -i and with -I onto a base that -R sent.
      { file: "ri-a", zsend: ["send", "-R", R, "rep/fs@a"], recv: ["-d", "ri"] },
      { file: "ri-ar", zsend: ["send", "-R", "-i", "@a", R, "rep/fs@r"], recv: ["-d", "ri"] },
      { file: "rii-a", zsend: ["send", "-R", R, "rep/fs@a"], recv: ["-d", "rii"] },
      { file: "rii-ar", zsend: ["send", "-R", "-I", "@a", R, "rep/fs@r"], recv: ["-d", "rii"] },
      // The large-block store as stored (without the flags, above, its blocks go out split
      // and decompressed).
      { file: "lx-a", zsend: ["send", "-L", "-e", "-c", L, "oz/fs@a"], recv: ["-", "lx/fs"] },
      {
        file: "lx-ab",
        zsend: ["send", "-L", "-e", "-c", "-i", "@a", L, "oz/fs@b"],
        recv: ["-", "lx/fs"],
      },
      {
        file: "lx-bc",
        zsend: ["send", "-L", "-e", "-c", "-i", "@b", L, "oz/fs@c"],
        recv: ["-", "lx/fs"],
      },
      { file: "v-1", zsend: ["send", V, "oz/vol@v1"], recv: ["-", "v/vol"] },
      { file: "v-12", zsend: ["send", "-i", "@v1", V, "oz/vol@v2"], recv: ["-", "v/vol"] },
      {
        file: "i-1",
        zsend: ["image", "send", "--name", "x/vol@v1", corpusFile("vol-v1.img")],
        recv: ["-", "i/vol"],
      },
      { file: "e-1", zsend: ["send", E, "oz/enc@e1"], recv: ["-", "e"] },
      { file: "e-12", zsend: ["send", "-i", "@e1", E, "oz/enc@e2"], recv: ["-", "e"] },
      { file: "ev-1", zsend: ["send", E, "oz/encvol@ev1"], recv: ["-", "ev"] },
    ];
    for (const k of comps) {
      const ds = k.split("@")[0]!;
      cases.push({ file: `c-${ds}`, zsend: ["send", C, `oz/${k}`], recv: ["-", `c/${ds}`] });
      // -c: the blocks as the compressed stream brought them (without it, decompressed).
      cases.push({
        file: `cc-${ds}`,
        zsend: ["send", "-c", C, `oz/${k}`],
        recv: ["-", `cc/${ds}`],
      });
    }
    const checks: Check[] = [
      { guest: "l/fs@a", key: "fs@a" },
      { guest: "l/fs@b", key: "fs@b" },
      { guest: "l/fs@c", key: "fs@c" },
      { guest: "l/clone@c1", key: "clone@c1" },
      { guest: "p/fs@a", key: "fs@a" },
      { guest: "p/fs@b", key: "fs@b" },
      { guest: "p/fs@c", key: "fs@c" },
      { guest: "p/plain@p1", key: "plain@p1" },
      { guest: "p/spill@s1", key: "spill@s1" },
      { guest: "p/spill@s2", key: "spill@s2" },
      { guest: "r/fs@a", key: "fs@a" },
      { guest: "r/fs@c", key: "fs@c" },
      { guest: "r/fs@r", key: "fs@r" },
      { guest: "r/fs/child@r", key: "fs/child@r" },
      { guest: "ri/fs@r", key: "fs@r" },
      { guest: "ri/fs/child@r", key: "fs/child@r" },
      { guest: "rii/fs@c", key: "fs@c" },
      { guest: "rii/fs@r", key: "fs@r" },
      { guest: "rii/fs/child@r", key: "fs/child@r" },
      { guest: "lx/fs@a", key: "fs@a" },
      { guest: "lx/fs@b", key: "fs@b" },
      { guest: "lx/fs@c", key: "fs@c" },
      { guest: "v/vol@v1", key: "vol@v1", image: true },
      { guest: "v/vol@v2", key: "vol@v2", image: true },
      { guest: "i/vol@v1", key: "vol@v1", image: true },
      { guest: "e@e1", key: "enc-gcm@e1" },
      { guest: "e@e2", key: "enc-gcm@e2" },
      { guest: "ev@ev1", key: "encvol@ev1", image: true },
      ...comps.map((k) => ({ guest: `c/${k}`, key: k })),
      ...comps.map((k) => ({ guest: `cc/${k}`, key: k })),
    ];

    const inputs: string[] = [];
    const plan: string[] = ["# made by tests/openzfs_roundtrip_test.ts"];
    const parents = new Set<string>();
    for (const c of cases) {
      const path = `${work}/${c.file}.zstream`;
      const r = await runZsend(c.zsend);
      assertEquals(r.code, 0, `zsend ${c.zsend.join(" ")}: ${r.stderr}`);
      await Deno.writeFile(path, r.stdoutBytes);
      inputs.push(path);
      // zfs receive wants the parent of a new dataset to exist.
      const parent = c.recv[0].includes("-d")
        ? c.recv[1]
        : c.recv[1].split("/").slice(0, -1).join("/");
      if (parent !== "" && !parents.has(parent)) {
        parents.add(parent);
        plan.push(`mkdir ${parent}`);
      }
      plan.push(`recv ${c.recv[0]} ${c.recv[1]} ${c.file}.zstream`);
    }
    plan.push("load-key e", "load-key ev");
    for (const c of checks) {
      plan.push(`${c.image ? "image" : "manifest"} ${c.guest} ${c.guest.replace(/[\/@]/g, "-")}`);
    }
    plan.push("list");
    const { out, results } = await receiveInGuest(work, plan, inputs);
    // Every refusal and every difference, gathered, so that one run shows them all.
    const problems = results.filter((l) => !l.startsWith("ok "));
    const received = new Set(
      results.filter((l) => l.startsWith("ok manifest ") || l.startsWith("ok image "))
        .map((l) => l.split(" ")[2]),
    );
    for (const c of checks) {
      const name = c.guest.replace(/[\/@]/g, "-");
      if (!received.has(c.guest)) continue; // its refusal is among the problems already
      if (c.image) {
        const got = await Deno.readFile(`${out}/${name}.img`);
        const want = await Deno.readFile(corpusManifest(c.key));
        if (got.length !== want.length || !got.every((b, i) => b === want[i])) {
          problems.push(`${c.guest}: the volume differs from ${c.key}`);
        }
        continue;
      }
      problems.push(...await guestTreeDiff(`${out}/${name}.manifest.txt`, c.key, c.guest));
    }
    assertEquals(problems, [], `the real zfs receive refused or differs:\n${problems.join("\n")}`);
    assert(results.length >= cases.length + checks.length);
    await Deno.remove(work, { recursive: true });
    await Deno.remove(out, { recursive: true });
  },
});
