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
 * zsend's stream and OpenZFS's for the same token give the same `zstream dump -v` records (the
 * BEGIN, its nvlist, each OBJECT, WRITE, WRITE_EMBEDDED, SPILL, OBJECT_RANGE, FREEOBJECTS) but
 * for these differences, which whole streams have too (send_openzfs_test.ts):
 * - FREE records (and so the END checksum and the SUMMARY's counts): the store does not keep a
 *   dnode's last block id, so zsend frees a file's range past its end from its last block where
 *   OpenZFS frees from the dnode's own last block id; a receiver takes both alike;
 * - an embedded spill block (here object 6180 of fs@a): OpenZFS sends it as a WRITE or
 *   WRITE_EMBEDDED at block id -2 (offset 2^64 - 2 * length) and its OBJECT without
 *   DRR_OBJECT_SPILL, zsend as a SPILL record of its data with the flag;
 * - a small block that the guest's receive stored embedded (its dataset compresses what an
 *   uncompressed WRITE brings, and a block that then fits in a block pointer is kept there;
 *   which blocks do depends on the random corpus): OpenZFS sends it as a WRITE with checksum
 *   OFF and no key, or with `-e` as a WRITE_EMBEDDED, where zsend sends the block as the store
 *   received it; the lines compare by object, offset and size, and the trees are compared too;
 * - an incremental: OpenZFS sends every object of a dnode block that changed, and blocks
 *   written again with the same content, and frees each slot of a freed large dnode; zsend
 *   sends what differs and frees a freed object's first slot. There every record zsend sends,
 *   OpenZFS sent, every object it frees OpenZFS frees, and both start with the same record,
 *   but where OpenZFS starts with the resume object's OBJECT and zsend, whose store shows that
 *   object unchanged, sends no OBJECT of it and starts past it (a random corpus, seed
 *   583860723, had one).
 */

import { assert, assertEquals } from "@std/assert";
import { ROOT } from "./_fixtures.ts";
import { decodeNvlist, nvlistToJson } from "../core/stream/nvlist.ts";
import { readRecords } from "../core/stream/reader.ts";
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

/** The name of zsend's `send -L -e -c` of fs@a, made by the guest test from its store. */
const ZSEND_LEC = "fs-a.zsend-Lec";

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
    // zsend's own -L -e -c stream of fs@a, not OpenZFS's: OpenZFS 2.3.2 sends an embedded spill
    // block as a WRITE_EMBEDDED at block id -2 and its OBJECT without the spill flag
    // (openzfs#18239), so the kernel's receive of its own stream loses a long symlink's target
    // where the cut falls after that object, whatever the resuming stream does.
    target: "lec",
    stream: ZSEND_LEC,
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

/**
 * The lines of a dump up to its SUMMARY, without FREE records and END's checksum, the records of
 * the embedded spill blocks OpenZFS sends at block id -2 (`spills`, found in OpenZFS's dump)
 * left out and their OBJECT records' flags masked (see the module's comment).
 */
function comparable(text: string, spills: Set<string>, embedded: Set<string>): string[] {
  const lines = text.slice(0, text.indexOf("SUMMARY:")).split("\n");
  return lines.filter((l) => {
    if (/^FREE object = |^END checksum = /.test(l)) return false;
    const w = /^(?:WRITE|WRITE_EMBEDDED) object = (\d+) .*offset = (\d+) /.exec(l);
    if (w !== null && BigInt(w[2]!) >= 1n << 63n) return false;
    const spill = /^SPILL block for object = (\d+) /.exec(l);
    return spill === null || !spills.has(spill[1]!);
  }).map((l) => {
    const o = /^OBJECT object = (\d+) /.exec(l);
    if (o !== null && spills.has(o[1]!)) return l.replace(/ flags = \d+ /, " flags = * ");
    const block = blockOf(l);
    return block !== null && embedded.has(block.key)
      ? `DATA object = ${block.object} offset = ${block.offset} size = ${block.size} (embedded)`
      : l;
  });
}

/** The block a WRITE or WRITE_EMBEDDED line is of, or null. */
function blockOf(
  line: string,
): { key: string; object: string; offset: string; size: string } | null {
  const m =
    /^(?:WRITE|WRITE_EMBEDDED) object = (\d+) .*?offset = (\d+) (?:logical_size|length) = (\d+) /
      .exec(line);
  return m === null ? null : { key: `${m[1]}:${m[2]}`, object: m[1]!, offset: m[2]!, size: m[3]! };
}

/**
 * Blocks OpenZFS's pool holds embedded: sent as WRITE_EMBEDDED, or as a WRITE with checksum OFF
 * and no key (an embedded block pointer has no checksum to send).
 */
function embeddedBlocks(text: string): Set<string> {
  const out = new Set<string>();
  for (const l of text.split("\n")) {
    const block = blockOf(l);
    if (block === null) continue;
    if (l.startsWith("WRITE_EMBEDDED ") || / checksum type = 2 .* props = 0 /.test(l)) {
      out.add(block.key);
    }
  }
  return out;
}

/** Objects whose spill block OpenZFS's dump sends at block id -2. */
function spillObjects(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/^(?:WRITE|WRITE_EMBEDDED) object = (\d+) .*offset = (\d+) /gm)) {
    if (BigInt(m[2]!) >= 1n << 63n) out.add(m[1]!);
  }
  return out;
}

/** Where zsend's dump differs from OpenZFS's beyond the module comment's differences. */
function dumpDiff(realText: string, mineText: string, incremental: boolean): string[] {
  const spills = spillObjects(realText), embedded = embeddedBlocks(realText);
  const real = comparable(realText, spills, embedded);
  const mine = comparable(mineText, spills, embedded);
  if (!incremental) return lineDiff(real, mine);
  // Both resume where the token says: the same BEGIN, and the same first record, unless
  // OpenZFS's is the OBJECT of the resume object that zsend does not send at all (unchanged,
  // resent by OpenZFS because its dnode block changed), and zsend's first comes after it.
  const first = (l: string[]) => l.findIndex((x) => /^[A-Z_]+ (object|firstobj)/.test(x));
  const out = lineDiff(real.slice(0, first(real)), mine.slice(0, first(mine)));
  const [realFirst, mineFirst] = [real[first(real)] ?? "", mine[first(mine)] ?? ""];
  const objectOf = (l: string) => BigInt(/ (?:object|firstobj) = (\d+)/.exec(l)?.[1] ?? "-1");
  const resent = /^OBJECT object = (\d+) /.exec(realFirst);
  if (
    realFirst !== mineFirst &&
    (resent === null || mine.some((l) => l.startsWith(`OBJECT object = ${resent[1]} `)) ||
      objectOf(mineFirst) <= BigInt(resent[1]!))
  ) {
    out.push(`first record:\n  OpenZFS: ${realFirst}\n  zsend:   ${mineFirst}`);
  }
  const sent = new Set(real);
  for (const l of mine) {
    if (!sent.has(l) && !l.startsWith("FREEOBJECTS")) {
      out.push(`zsend sends what OpenZFS did not: ${l}`);
    }
  }
  // OpenZFS frees each slot of a freed large dnode, zsend the object's first: every object
  // zsend frees, OpenZFS frees.
  const freed = (lines: string[]) => {
    const objects = new Set<bigint>();
    for (const l of lines) {
      const m = /^FREEOBJECTS firstobj = (\d+) numobjs = (\d+)/.exec(l);
      if (m === null) continue;
      for (let o = BigInt(m[1]!); o < BigInt(m[1]!) + BigInt(m[2]!); o++) objects.add(o);
    }
    return objects;
  };
  const theirs = freed(real);
  for (const o of freed(mine)) if (!theirs.has(o)) out.push(`zsend frees ${o}, OpenZFS not`);
  return out.slice(0, 12);
}

/** The payload of a stream's BEGIN record (its nvlist). */
async function beginPayload(file: string): Promise<Uint8Array> {
  const f = await Deno.open(file);
  try {
    for await (const r of readRecords(f.readable)) return r.payload.slice();
  } finally {
    try {
      f.close();
    } catch { /* closed by the reader */ }
  }
  throw new Error(`${file} has no BEGIN`);
}

const sameBytes = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((x, i) => x === b[i]);
const big = (_: string, v: unknown) => typeof v === "bigint" ? v.toString() : v;

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
    const file = (name: string) =>
      name === ZSEND_LEC ? `${work}/${name}.zstream` : corpusStream(name).file;
    // On the host: stores holding the snapshots (zsend's -L -e -c stream of fs@a from one).
    const stores = { fs: `${work}/fs-store`, raw: `${work}/raw-store` };
    await ok(["recv", stores.fs, "zc/fs", file("fs-a.Lec")]);
    await ok(["recv", stores.fs, "zc/fs", file("fs-a-b.Lec")]);
    await ok(["recv", stores.raw, "zc/enc-gcm", file("enc-gcm-e1.raw")]);
    const lec = await runZsend(["send", "-L", "-e", "-c", stores.fs, "zc/fs@a"]);
    assertEquals(lec.code, 0, lec.stderr);
    await Deno.writeFile(file(ZSEND_LEC), lec.stdoutBytes);
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

    // On the host: zsend's stream of each token, and its dump against the dump of OpenZFS's
    // stream for the same token.
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
      // The BEGIN nvlist (zstream dump does not print it): the same pairs, packed alike.
      const [realBegin, mineBegin] = [
        await beginPayload(`${run1.out}/real-${c.target}.zstream`),
        await beginPayload(ours),
      ];
      if (!sameBytes(realBegin, mineBegin)) {
        problems.push(
          `${c.target}: BEGIN nvlist differs: OpenZFS ${
            JSON.stringify(nvlistToJson(decodeNvlist(realBegin)), big)
          }, zsend ${JSON.stringify(nvlistToJson(decodeNvlist(mineBegin)), big)}`,
        );
      }
      const diff = dumpDiff(
        await zstreamDump(`${run1.out}/real-${c.target}.zstream`),
        await zstreamDump(ours),
        c.base !== null,
      );
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
    // A store filled by a stream without -L holds a large-block file in 128 KiB blocks: zsend
    // resumes at the 128 KiB piece that holds the token's offset, where OpenZFS resends the
    // whole large block from its start (blkid = offset / the dataset's block size). The pieces
    // before zsend's first are ones the receiver kept: those lines of OpenZFS's are left out.
    const first = /^WRITE object = (\d+) .*offset = (\d+) /m.exec(
      mine.slice(mine.indexOf("\nWRITE ")),
    );
    const skipped = (l: string) => {
      const w = /^WRITE object = (\d+) .*offset = (\d+) /.exec(l);
      return first !== null && w !== null && w[1] === first[1] &&
        BigInt(w[2]!) < BigInt(first[2]!) &&
        BigInt(w[2]!) % 131072n === 0n && BigInt(first[2]!) - BigInt(w[2]!) < 16n << 20n;
    };
    const realKept = real.split("\n").filter((l) => !skipped(l)).join("\n");
    assertEquals(dumpDiff(realKept, mine, false), []);
    assertEquals(
      await beginPayload(`${work}/ours.zstream`),
      await beginPayload(corpusStream("fs-a.resume").file),
    );
    // The FREE records aside, the very same records: the difference is theirs alone.
    // (Not an empty comparison: the resuming stream carries data.)
    assert(/^WRITE /m.test(real) && /^WRITE /m.test(mine));
    await Deno.remove(work, { recursive: true });
  },
});

/** The token of a store's partial receive, and its fields as `zsend token --json` gives them. */
async function partialToken(store: string): Promise<{ token: string; fields: Fields }> {
  const j = JSON.parse(await ok(["list", "-o", "name,receive_resume_token", "--json", store]));
  type Row = { properties: { receive_resume_token: string | null } };
  const token = (j.datasets as Row[]).map((d) => d.properties.receive_resume_token)
    .find((t) => t !== null);
  if (token === undefined || token === null) throw new Error(`no partial receive in ${store}`);
  return { token, fields: JSON.parse(await ok(["token", "--json", token])) };
}

type Fields = Record<string, unknown>;

/**
 * `recv -s` of the cut stream `cut` into store `work/a`, `send --saved` of it received with
 * `recv -s` into `work/b`; the two partial receives' token fields, and b's token.
 */
async function savedElsewhere(
  work: string,
  dataset: string,
  cut: string,
): Promise<{ b: string; want: Fields; got: Fields; token: string }> {
  const a = `${work}/a`, b = `${work}/b`;
  assertEquals((await runZsend(["recv", "-s", a, dataset, cut])).code, 1);
  const saved = await runZsend(["send", "--saved", a, dataset]);
  assertEquals(saved.code, 0, saved.stderr);
  await Deno.writeFile(`${work}/saved.zstream`, saved.stdoutBytes);
  assertEquals((await runZsend(["recv", "-s", b, dataset, `${work}/saved.zstream`])).code, 1);
  const got = await partialToken(b);
  return { b, want: (await partialToken(a)).fields, got: got.fields, token: got.token };
}

Deno.test({
  name: "OpenZFS 2.3: send --saved of a partial receive of the corpus's cut keeps its position " +
    "in another store, and OpenZFS's own zfs send -t completes it there",
  ignore: noCorpus !== null,
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "zsend-saved-corpus-" });
    const { b, want, got } = await savedElsewhere(work, "zc/fs", corpusStream("fs-a.cut").file);
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
    const full = `${work}/full`;
    const { b, want, got, token } = await savedElsewhere(
      work,
      "zc/enc-gcm",
      `${work}/cut.zstream`,
    );
    assert(got.rawok === true);
    assertEquals({ ...got, bytes: 0, checksum: "" }, { ...want, bytes: 0, checksum: "" });
    await ok(["recv", full, "zc/enc-gcm", raw]);
    const rest = await runZsend(["send", "-t", token, full]);
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
