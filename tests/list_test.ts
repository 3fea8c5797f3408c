/**
 * `zsend list` as `zfs list`: types, -r, -H, -p, -o, -s/-S, the JSON shape, zfs's number and
 * date formats; guids and creation times checked against what zfs-fuse's and OpenZFS 2.3's
 * streams carry.
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { ZFS_FUSE_DIR } from "./_fixtures.ts";
import { runZsend } from "./_run.ts";
import { corpusFile, corpusUnavailable, openzfsCorpus } from "./_openzfs.ts";
import { listJson } from "./helpers/list_json.ts";
import { niceBytes, zfsDate } from "../cli/zfs_format.ts";
import { PROPERTIES } from "../cli/list_props.ts";
import { fixtureStore } from "./helpers/fixture_store.ts";

const F = (name: string) => `${ZFS_FUSE_DIR}/${name}.zstream`;

async function ok(args: string[]) {
  const r = await runZsend(args);
  assertEquals(r.code, 0, `zsend ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** bk/fs@s1..s3, the clone bk/clone@c1, and the -R stream as rep/fs and rep/fs/child. */
let made: Promise<string> | null = null;
function store(): Promise<string> {
  made ??= (async () => {
    return await fixtureStore({ prefix: "zsend-list-", replicate: true });
  })();
  return made;
}

/** toguid and creation_time of each BEGIN in a zfs-fuse fixture's zstreamdump text. */
async function fixtureSnapshots(name: string): Promise<{ guid: bigint; creation: number }[]> {
  const text = await Deno.readTextFile(`${ZFS_FUSE_DIR}/${name}.dump.txt`);
  const out = [];
  for (const m of text.matchAll(/creation_time = (\w+)\n.*\n.*\n\ttoguid = (\w+)/g)) {
    if (m[2] !== "0") out.push({ guid: BigInt(`0x${m[2]}`), creation: parseInt(m[1]!, 16) });
  }
  return out;
}

Deno.test("niceBytes() prints sizes as zfs_nicebytes does", () => {
  const cases: [number, string][] = [
    [0, "0B"],
    [512, "512B"],
    [1023, "1023B"],
    [1024, "1K"],
    [1536, "1.50K"],
    [10239, "10.0K"], // zfs's own example: 9.999K is printed with one decimal
    [131072, "128K"],
    [1152, "1.12K"], // 1.125 exactly: printf rounds a tie to even
    [1168, "1.14K"],
    [1572864, "1.50M"],
    [123456789, "118M"],
    [1048575, "1024K"],
    [5 * 2 ** 40, "5T"],
  ];
  for (const [n, want] of cases) assertEquals(niceBytes(n), want, String(n));
});

Deno.test("zfsDate() prints as zfs list prints creation", () => {
  const d = zfsDate(1796553596);
  assertMatch(d, /^(Sun|Mon|Tue|Wed|Thu|Fri|Sat) [A-Z][a-z]{2} [ \d]\d [ \d]\d:\d\d \d{4}$/);
  const t = new Date(1796553596 * 1000);
  assert(
    d.endsWith(` ${t.getFullYear()}`) && d.includes(`:${String(t.getMinutes()).padStart(2, "0")} `),
  );
});

Deno.test("list shows filesystems and volumes; -t snapshot|all the snapshots, depth first", async () => {
  const s = await store();
  const text = await ok(["list", s]);
  const lines = text.trimEnd().split("\n");
  assertMatch(lines[0]!, /^NAME +USED +REFER +CREATION +ORIGIN$/);
  assertEquals(lines.slice(1).map((l) => l.split(/ +/)[0]), [
    "bk/clone",
    "bk/fs",
    "rep/fs",
    "rep/fs/child",
  ]);
  assertMatch(lines[1]!, / bk\/fs@s2$/);
  // Sizes as zfs prints them, right-aligned.
  for (const l of lines.slice(1)) {
    assertMatch(l, /^\S+ +\d+(\.\d+)?[BKMGT] {2,}\d+(\.\d+)?[BKMGT] {2}/);
  }
  const all = (await ok(["list", "-H", "-o", "name,type", "-t", "all", s])).trimEnd().split("\n");
  assertEquals(all, [
    "bk/clone\tfilesystem",
    "bk/clone@c1\tsnapshot",
    "bk/fs\tfilesystem",
    "bk/fs@s1\tsnapshot",
    "bk/fs@s2\tsnapshot",
    "bk/fs@s3\tsnapshot",
    "rep/fs\tfilesystem",
    "rep/fs@s1\tsnapshot",
    "rep/fs@s2\tsnapshot",
    "rep/fs@s3\tsnapshot",
    "rep/fs@r1\tsnapshot",
    "rep/fs/child\tfilesystem",
    "rep/fs/child@r1\tsnapshot",
  ]);
  const snaps = await ok(["list", "-H", "-o", "name", "-t", "snap", s]);
  assertEquals(snaps.split("\n").filter((l) => !l.includes("@")), [""]);
  // -r DATASET: it and its descendants; DATASET alone: it; -t snapshot DATASET: its snapshots.
  assertEquals(await ok(["list", "-H", "-o", "name", "-r", s, "rep/fs"]), "rep/fs\nrep/fs/child\n");
  assertEquals(await ok(["list", "-H", "-o", "name", s, "rep/fs"]), "rep/fs\n");
  // recv -d made no row for the pool: its name stands for what is below it.
  assertEquals(await ok(["list", "-H", "-o", "name", s, "rep"]), "rep/fs\nrep/fs/child\n");
  assertEquals(
    await ok(["list", "-H", "-o", "name", "-t", "snapshot", s, "rep/fs/child"]),
    "rep/fs/child@r1\n",
  );
  assertEquals(await ok(["list", "-H", "-o", "name,origin", s, "bk/fs@s2"]), "bk/fs@s2\t-\n");
});

Deno.test("list -p -o guid,creation: the guids and creation times the streams carry", async () => {
  const s = await store();
  const want = [
    ...await fixtureSnapshots("fs-s1.full"),
    ...await fixtureSnapshots("fs-s1-s2.incr"),
    ...await fixtureSnapshots("fs-s2-s3.incr"),
  ];
  const got = await ok(["list", "-H", "-p", "-o", "guid,creation", "-t", "snapshot", s, "bk/fs"]);
  assertEquals(got, want.map((w) => `${w.guid}\t${w.creation}\n`).join(""));
  // Text mode: the date as zfs prints it, the guid in decimal as zfs prints it.
  const text = await ok(["list", "-H", "-o", "guid,creation", s, "bk/fs@s1"]);
  assertEquals(text, `${want[0]!.guid}\t${zfsDate(want[0]!.creation)}\n`);
});

Deno.test("list --json: one object of datasets, zfs's names, u64 as strings, guids 0x-hex", async () => {
  const s = await store();
  const out = JSON.parse(await ok(["list", "--json", "-t", "all", s]));
  assertEquals(Object.keys(out), ["datasets"]);
  const names = PROPERTIES.map((p) => p.name).filter((n) => n !== "name" && n !== "type");
  for (const d of out.datasets) {
    assertEquals(Object.keys(d), ["name", "type", "properties"]);
    assertEquals(Object.keys(d.properties), names, d.name);
    const p = d.properties;
    for (const k of ["used", "referenced", "written", "logicalreferenced", "creation"]) {
      assertMatch(p[k], /^(0|[1-9]\d*)$/, `${d.name} ${k}`);
    }
    if (d.type === "snapshot") {
      assertMatch(p.guid, /^0x[0-9a-f]{16}$/);
      assertEquals([p.origin, p.logicalused, p.keyformat], [null, null, null]);
    } else {
      assertEquals(p.guid, null);
      assertMatch(p.logicalused, /^\d+$/);
    }
    assertEquals([p.encryption, p.keystatus, p.redact_snaps], ["off", "none", null]);
  }
  const c1 = out.datasets.find((d: { name: string }) => d.name === "bk/clone@c1");
  assertEquals(c1.properties.guid, "0x19ae76b59316b832");
  assertEquals(c1.properties.fromguid, "0x020fe4e7a2bb42a9");
  const clone = out.datasets.find((d: { name: string }) => d.name === "bk/clone");
  assertEquals(clone.properties.origin, "bk/fs@s2");
  // -o chooses the properties.
  const one = JSON.parse(await ok(["list", "--json", "-o", "name,refer,guid", s, "bk/fs@s1"]));
  assertEquals(Object.keys(one.datasets[0].properties), ["referenced", "guid"]);
  assertEquals(one.datasets[0].properties.guid, "0xbe1557e4eedde745");
});

Deno.test("list: used, referenced and written follow the blocks each snapshot holds", async () => {
  const s = await store();
  const rows = new Map(
    (await listJson(s)).map((r) => [r.name, r.properties as Record<string, string | null>]),
  );
  const n = (name: string, k: string) => Number(rows.get(name)![k]);
  // The first snapshot wrote all it refers to; a later one only what changed.
  assertEquals(n("bk/fs@s1", "written"), n("bk/fs@s1", "referenced"));
  assert(n("bk/fs@s3", "written") < n("bk/fs@s3", "referenced"));
  assert(n("bk/clone@c1", "written") < n("bk/clone@c1", "referenced"));
  // rep/fs repeats bk/fs's blocks: they are kept once, so neither holds them alone.
  assertEquals(n("bk/fs@s1", "used"), 0);
  assertEquals(n("rep/fs@s1", "referenced"), n("bk/fs@s1", "referenced"));
  // A dataset refers to what its newest snapshot refers to.
  assertEquals(n("bk/fs", "referenced"), n("bk/fs@s3", "referenced"));
  assertEquals(n("bk/fs", "written"), 0);
  // A copied file counts once in referenced and twice in logicalreferenced.
  assert(n("bk/fs@s2", "logicalreferenced") > n("bk/fs@s2", "referenced"));
  // -s and -S sort by value.
  const by = (await ok([
    "list",
    "-H",
    "-p",
    "-o",
    "referenced,name",
    "-t",
    "snapshot",
    "-s",
    "refer",
    "-S",
    "name",
    s,
  ]))
    .trimEnd().split("\n").map((l) => l.split("\t"));
  for (let i = 1; i < by.length; i++) {
    const [a, b] = [Number(by[i - 1]![0]), Number(by[i]![0])];
    assert(a < b || (a === b && by[i - 1]![1]! >= by[i]![1]!), `${by[i - 1]} before ${by[i]}`);
  }
});

Deno.test("list shows a partial receive's token, and a first receive cut short as a dataset", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zsend-list-" });
  const s = `${dir}/store`;
  const full = await Deno.readFile(F("fs-s1.full"));
  await Deno.writeFile(`${dir}/cut`, full.subarray(0, 300000));
  const r = await runZsend(["recv", "-s", s, "bk/new", `${dir}/cut`]);
  assertEquals(r.code, 1);
  const token = /receive_resume_token (\S+)/.exec(r.stderr)![1]!;
  const text = await ok(["list", s]);
  assertMatch(text, /^NAME +USED +REFER +CREATION +RESUMETOK\n/);
  assertMatch(text, new RegExp(`^bk/new .* ${token}\n$`, "m"));
  assertEquals(await ok(["list", "-H", "-o", "resumetok", s, "bk/new"]), `${token}\n`);
  const [row] = await listJson(s);
  assertEquals([row!.name, row!.type, row!.properties.receive_resume_token], [
    "bk/new",
    "filesystem",
    token,
  ]);
  assert(Number(row!.properties.referenced) > 0);
  assertEquals(row!.properties.stream_bytes, /, (\d+) bytes\)/.exec(r.stderr)![1]);
});

const why = corpusUnavailable();
Deno.test({
  name: "list of OpenZFS 2.3's streams: guids, creation, volumes, raw and redacted datasets",
  ignore: why !== null,
  async fn() {
    const corpus = openzfsCorpus();
    const s = `${await Deno.makeTempDir({ prefix: "zsend-list-oz-" })}/store`;
    await ok(["recv", "-d", s, "oz", corpusFile("fs-r.R.zstream")]);
    await ok(["recv", s, "oz/vol", corpusFile("vol-v1.full.zstream")]);
    await ok(["recv", s, "oz/vol", corpusFile("vol-v1-v2.incr.zstream")]);
    await ok(["recv", s, "oz/gcm", corpusFile("enc-gcm-e1.raw.zstream")]);
    await ok(["recv", s, "oz/red", corpusFile("fs-c.redact.zstream")]);
    const lines = (await ok(["list", "-H", "-p", "-o", "name,guid,creation", "-t", "snapshot", s]))
      .trimEnd().split("\n");
    for (const l of lines) {
      const [name, guid, creation] = l.split("\t");
      // The corpus names them below the guest's pool: fs@a, fs/child@r, enc-gcm@e1, ...
      const [dataset, snapName] = name!.split("@");
      const base = { "oz/gcm": "enc-gcm", "oz/red": "fs" }[dataset!] ?? dataset!.slice(3);
      const key = `${base}@${snapName}`;
      const snap = corpus.snapshots.get(key);
      assert(snap !== undefined, `${name} (${key}) is not in the corpus`);
      assertEquals([guid, creation], [String(snap!.guid), String(snap!.creation)], name);
    }
    const props = await ok(["list", "-H", "-o", "name,type,encryption,keyformat,keystatus", s]);
    assertMatch(props, /^oz\/gcm\tfilesystem\taes-256-gcm\tpassphrase\tunavailable$/m);
    assertMatch(props, /^oz\/vol\tvolume\toff\tnone\tnone$/m);
    const red = JSON.parse(await ok(["list", "--json", "-o", "redact_snaps,rranges", s, "oz/red"]));
    assert(Array.isArray(red.datasets[0].properties.redact_snaps), JSON.stringify(red));
    for (const g of red.datasets[0].properties.redact_snaps) assertMatch(g, /^0x[0-9a-f]{16}$/);
    // The default columns name what the rows hold.
    assertMatch(
      await ok(["list", s]),
      /^NAME +USED +REFER +CREATION +ENCRYPTION +KEYFORMAT +ENCROOT +RSNAPS/,
    );
  },
});
if (why !== null) console.log(`SKIPPED OpenZFS list test: ${why}`);
