/**
 * `zsend send -t` against real OpenZFS 2.3 (the QEMU guest of tests/_openzfs.ts): a real
 * `zfs receive -s` fed a cut stream (plain at two cuts, `-L -e -c`, an incremental, a raw
 * encrypted one) keeps a `receive_resume_token`; `zsend send -t` of that token from a store
 * holding the snapshot makes the rest, which a real `zfs receive -s` takes and completes into a
 * tree equal to the snapshot's manifest (raw: the key loaded first). The guest runs twice:
 * first to cut the receives and make OpenZFS's own `zfs send -t` of each token, then (after
 * zsend made its streams) to cut again, check that the kernel keeps the same token, and resume
 * with zsend's streams.
 *
 * zsend's stream and OpenZFS's for the same token give the same `zstream dump -v` text but for
 * the FREE records (and so the END checksum and the counts of records and bytes): the store
 * does not keep a dnode's last block id, so zsend frees a file's range past its end from its
 * last block where OpenZFS frees from the dnode's own last block id (send_openzfs_test.ts
 * compares whole streams the same way); a receiver takes both alike.
 */

import { assert, assertEquals } from "@std/assert";
import { ROOT } from "./_fixtures.ts";
import {
  attrsDiff,
  attrsOfManifest,
  corpusFile,
  corpusManifest,
  corpusStream,
  corpusUnavailable,
  openzfsCorpus,
  runGuest,
  vmUnavailable,
} from "./_openzfs.ts";
import { manifestDiff, treeManifest } from "./helpers/tree_manifest.ts";
import { runZsend } from "./_run.ts";

const noCorpus = corpusUnavailable();
const why = noCorpus ?? vmUnavailable();

/** One cut receive in the guest. */
interface Case {
  /** The guest dataset below zc that the cut receive goes to. */
  target: string;
  /** The corpus stream that is cut. */
  stream: string;
  /** Where it is cut, as a share of its length. */
  share: number;
  /** A stream the target gets whole first (the incremental's base), or null. */
  base: string | null;
  /** The corpus snapshot it completes to (its manifest), and its name in the guest. */
  key: string;
  snap: string;
  /** The zsend store that answers its token. */
  store: "fs" | "raw";
}

const CASES: Case[] = [
  {
    target: "p1",
    stream: "fs-a.full",
    share: 0.4,
    base: null,
    key: "fs@a",
    snap: "a",
    store: "fs",
  },
  {
    target: "p2",
    stream: "fs-a.full",
    share: 0.8,
    base: null,
    key: "fs@a",
    snap: "a",
    store: "fs",
  },
  {
    target: "lec",
    stream: "fs-a.Lec",
    share: 0.5,
    base: null,
    key: "fs@a",
    snap: "a",
    store: "fs",
  },
  {
    target: "inc",
    stream: "fs-a-b.incr",
    share: 0.55,
    base: "fs-a.full",
    key: "fs@b",
    snap: "b",
    store: "fs",
  },
  {
    target: "raw",
    stream: "enc-gcm-e1.raw",
    share: 0.5,
    base: null,
    key: "enc-gcm@e1",
    snap: "e1",
    store: "raw",
  },
];

async function ok(args: string[]): Promise<string> {
  const r = await runZsend(args);
  assertEquals(r.code, 0, `zsend ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

async function zstreamDump(file: string): Promise<string> {
  const r = await new Deno.Command("bash", {
    args: [`${ROOT}scripts/openzfs/tool.sh`, "zstream", "dump", "-v", file],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
  return new TextDecoder().decode(r.stdout);
}

/** The dump without what depends on the FREE records (see the module's comment). */
function withoutFrees(text: string): string[] {
  return text.split("\n").filter((l) =>
    !/^FREE object = /.test(l) && !/^END checksum = /.test(l) &&
    !/^\tTotal (DRR_FREE records|records|header overhead|stream length) = /.test(l)
  );
}

/** Lines of `a` and `b` that differ, at most `limit`, for the failure message. */
function lineDiff(a: string[], b: string[], limit = 12): string[] {
  const out: string[] = [];
  for (let i = 0; i < Math.max(a.length, b.length) && out.length < limit; i++) {
    if (a[i] !== b[i]) out.push(`line ${i + 1}:\n  OpenZFS: ${a[i]}\n  zsend:   ${b[i]}`);
  }
  return out;
}

Deno.test({
  name: "OpenZFS 2.3: zsend send -t of a real zfs receive -s's token completes it in the guest",
  ignore: why !== null,
  async fn() {
    const corpus = openzfsCorpus();
    const work = await Deno.makeTempDir({ prefix: "zsend-send-t-vm-" });
    const file = (name: string) => corpusStream(name).file;
    const cutAt = new Map<string, number>();
    for (const c of CASES) {
      cutAt.set(c.target, Math.floor((await Deno.stat(file(c.stream))).size * c.share));
    }
    const streams = [...new Set(CASES.flatMap((c) => [c.stream, c.base ?? c.stream]))];
    const common = [
      `${work}/plan.txt`,
      `${work}/passphrase.txt`,
      `${ROOT}scripts/lib_tree.sh`,
      `${ROOT}scripts/openzfs/guest/guest_lib.sh`,
    ];
    await Deno.writeTextFile(`${work}/passphrase.txt`, corpus.passphrase);
    const cuts = (c: Case) => [
      ...(c.base === null ? [] : [`recv ${c.target} ${c.base}.zstream`]),
      `cuthead ${c.target} ${c.stream}.zstream ${cutAt.get(c.target)}`,
    ];

    // Run 1: the sources (as the corpus's streams keep their guids), the cut receives, and
    // OpenZFS's own zfs send -t of each kernel token.
    const plan1 = [
      "recv fs fs-a.Lec.zstream",
      "recv fs fs-a-b.Lec.zstream",
      "recv enc-gcm enc-gcm-e1.raw.zstream",
      ...CASES.flatMap(cuts),
      ...CASES.map((c) => `send-t real-${c.target} ${c.target}.kernel-token.txt`),
    ];
    await Deno.writeTextFile(`${work}/plan.txt`, plan1.join("\n") + "\n");
    const inputs1 = [...streams, "fs-a.Lec", "fs-a-b.Lec", "enc-gcm-e1.raw"];
    const run1 = await runGuest(`${ROOT}scripts/openzfs/guest/resume.sh`, [
      ...common,
      ...[...new Set(inputs1)].map(file),
    ]);
    const results1 = (await Deno.readTextFile(`${run1.out}/results.txt`)).trim().split("\n");
    assertEquals(results1.filter((l) => !l.startsWith("ok ")), [], results1.join("\n"));

    // On the host: stores holding the snapshots, zsend's stream of each token, and its dump
    // against the dump of OpenZFS's stream for the same token.
    const stores = { fs: `${work}/fs-store`, raw: `${work}/raw-store` };
    await ok(["recv", stores.fs, "zc/fs", file("fs-a.Lec")]);
    await ok(["recv", stores.fs, "zc/fs", file("fs-a-b.Lec")]);
    await ok(["recv", stores.raw, "zc/enc-gcm", file("enc-gcm-e1.raw")]);
    const problems: string[] = [];
    const tokens: string[] = [];
    for (const c of CASES) {
      const token = (await Deno.readTextFile(`${run1.out}/${c.target}.kernel-token.txt`)).trim();
      await Deno.writeTextFile(`${work}/${c.target}.token`, token);
      tokens.push(`${work}/${c.target}.token`);
      const r = await runZsend(["send", "-t", token, stores[c.store]]);
      if (r.code !== 0) {
        problems.push(`${c.target}: zsend send -t refused: ${r.stderr}`);
        continue;
      }
      const ours = `${work}/zsend-${c.target}.zstream`;
      await Deno.writeFile(ours, r.stdoutBytes);
      await ok(["verify", ours]);
      const real = withoutFrees(await zstreamDump(`${run1.out}/real-${c.target}.zstream`));
      const mine = withoutFrees(await zstreamDump(ours));
      const diff = lineDiff(real, mine);
      if (diff.length > 0) {
        problems.push(`${c.target}: zstream dump -v differs:\n${diff.join("\n")}`);
      }
    }

    // Run 2: the same cuts again (the kernel must keep the same token), then zsend's streams.
    const plan2 = CASES.flatMap((c) => [
      ...cuts(c),
      `same-token ${c.target} ${c.target}.token`,
      `resume-in ${c.target} zsend-${c.target}.zstream`,
      ...(c.store === "raw" ? [`load-key ${c.target}`] : []),
      `manifest ${c.target}@${c.snap} ${c.target}`,
    ]);
    await Deno.writeTextFile(`${work}/plan.txt`, plan2.join("\n") + "\n");
    const run2 = await runGuest(`${ROOT}scripts/openzfs/guest/resume.sh`, [
      ...common,
      ...streams.map(file),
      ...tokens,
      ...CASES.map((c) => `${work}/zsend-${c.target}.zstream`),
    ]);
    const results2 = (await Deno.readTextFile(`${run2.out}/results.txt`)).trim().split("\n");
    problems.push(...results2.filter((l) => !l.startsWith("ok ")));
    for (const c of CASES) {
      if (!results2.includes(`ok manifest ${c.target}@${c.snap} ${c.target}`)) continue;
      const want = corpusManifest(c.key);
      const got = `${run2.out}/${c.target}.manifest.txt`;
      const diff = manifestDiff(await Deno.readTextFile(want), await Deno.readTextFile(got), 10);
      if (diff.length > 0) problems.push(`${c.target} vs ${c.key}:\n${diff.join("\n")}`);
      const attrs = attrsDiff(await attrsOfManifest(want), await attrsOfManifest(got));
      if (attrs.length > 0) problems.push(`${c.target} vs ${c.key}:\n${attrs.join("\n")}`);
    }
    assertEquals(problems, [], problems.join("\n"));
    assertEquals(results2.length, plan2.length);
    for (const d of [work, run1.out, run2.out]) await Deno.remove(d, { recursive: true });
  },
});

/** The token and the `zfs send -t` stream the corpus's guest made of its cut `zfs send -c`. */
const kernelToken = () => Deno.readTextFileSync(corpusFile("fs-a.resume-token.txt")).trim();

Deno.test({
  name: "OpenZFS 2.3: zsend send -t of the corpus's kernel token dumps as its zfs send -t does",
  ignore: noCorpus !== null,
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "zsend-send-t-corpus-" });
    await ok(["recv", `${work}/store`, "zc/fs", corpusStream("fs-a.c").file]);
    const r = await runZsend(["send", "-t", kernelToken(), `${work}/store`]);
    assertEquals(r.code, 0, r.stderr);
    await Deno.writeFile(`${work}/ours.zstream`, r.stdoutBytes);
    const real = await zstreamDump(corpusStream("fs-a.resume").file);
    const mine = await zstreamDump(`${work}/ours.zstream`);
    assertEquals(lineDiff(withoutFrees(real), withoutFrees(mine)), []);
    // The FREE records aside, the very same records: the difference is theirs alone.
    assert(real.split("\n").length > 1000);
    await Deno.remove(work, { recursive: true });
  },
});

Deno.test({
  name: "OpenZFS 2.3: send --saved of a partial receive of the corpus's cut keeps its position " +
    "in another store, and OpenZFS's own zfs send -t completes it there",
  ignore: noCorpus !== null,
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "zsend-saved-corpus-" });
    const a = `${work}/a`, b = `${work}/b`;
    const cut = await runZsend(["recv", "-s", a, "zc/fs", corpusStream("fs-a.cut").file]);
    assertEquals(cut.code, 1);
    const saved = await runZsend(["send", "--saved", a, "zc/fs"]);
    assertEquals(saved.code, 0, saved.stderr);
    await Deno.writeFile(`${work}/saved.zstream`, saved.stdoutBytes);
    const again = await runZsend(["recv", "-s", b, "zc/fs", `${work}/saved.zstream`]);
    assertEquals(again.code, 1);
    const state = async (store: string) => {
      const j = JSON.parse(await ok(["list", "--json", store]));
      const token = j.partial_receives[0].receive_resume_token as string;
      return JSON.parse(await ok(["token", "--json", token]));
    };
    const want = await state(a), got = await state(b);
    // The same position and snapshot. `bytes` differs by the FREE records the store cannot
    // make as OpenZFS made them (see the module's comment); a kernel's saved send differs
    // there too, as its receiver does not know the sender's last block ids either.
    assertEquals({ ...got, bytes: 0, checksum: "" }, { ...want, bytes: 0, checksum: "" });
    const kernel = JSON.parse(await ok(["token", "--json", kernelToken()]));
    assertEquals([got.object, got.offset], [kernel.object, kernel.offset]);
    await ok(["recv", "-s", b, "zc/fs", corpusStream("fs-a.resume").file]);
    await ok(["extract", b, "zc/fs@a", `${work}/tree`]);
    const diff = manifestDiff(
      await Deno.readTextFile(corpusManifest("fs@a")),
      await treeManifest(`${work}/tree`),
      10,
    );
    assertEquals(diff, []);
    await Deno.remove(work, { recursive: true });
  },
});

Deno.test({
  name: "OpenZFS 2.3: send --saved of a cut raw receive keeps it raw at its position in another " +
    "store; zsend send -t of its token from a raw store completes it to the snapshot's tree",
  ignore: noCorpus !== null,
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "zsend-saved-raw-" });
    const raw = corpusStream("enc-gcm-e1.raw").file;
    const whole = await Deno.readFile(raw);
    await Deno.writeFile(`${work}/cut.zstream`, whole.subarray(0, whole.length >> 1));
    const [a, b, full] = [`${work}/a`, `${work}/b`, `${work}/full`];
    assertEquals((await runZsend(["recv", "-s", a, "zc/enc-gcm", `${work}/cut.zstream`])).code, 1);
    const saved = await runZsend(["send", "--saved", a, "zc/enc-gcm"]);
    assertEquals(saved.code, 0, saved.stderr);
    await Deno.writeFile(`${work}/saved.zstream`, saved.stdoutBytes);
    assertEquals(
      (await runZsend(["recv", "-s", b, "zc/enc-gcm", `${work}/saved.zstream`])).code,
      1,
    );
    const token = async (store: string) =>
      JSON.parse(await ok(["list", "--json", store])).partial_receives[0]
        .receive_resume_token as string;
    const state = async (store: string) =>
      JSON.parse(await ok(["token", "--json", await token(store)]));
    const want = await state(a), got = await state(b);
    assert(got.rawok === true);
    assertEquals({ ...got, bytes: 0, checksum: "" }, { ...want, bytes: 0, checksum: "" });
    await ok(["recv", full, "zc/enc-gcm", raw]);
    const rest = await runZsend(["send", "-t", await token(b), full]);
    assertEquals(rest.code, 0, rest.stderr);
    await Deno.writeFile(`${work}/rest.zstream`, rest.stdoutBytes);
    await ok(["recv", "-s", b, "zc/enc-gcm", `${work}/rest.zstream`]);
    await Deno.writeTextFile(`${work}/pass`, openzfsCorpus().passphrase);
    await ok(["extract", "--passphrase-file", `${work}/pass`, b, "zc/enc-gcm@e1", `${work}/tree`]);
    const diff = manifestDiff(
      await Deno.readTextFile(corpusManifest("enc-gcm@e1")),
      await treeManifest(`${work}/tree`),
      10,
    );
    assertEquals(diff, []);
    await Deno.remove(work, { recursive: true });
  },
});
