/**
 * `zsend send`: what it writes verifies, goes back into a zsend store unchanged, and is taken
 * by the real `zfs receive` (zfs-fuse) to give the same trees as the source.
 */

import { assert, assertEquals } from "@std/assert";
import { ZFS_FUSE_DIR } from "./_fixtures.ts";
import { freshStreams, freshUnavailable } from "./_fresh.ts";
import { runZsend, runZsendToFile } from "./_run.ts";
import { DatabaseSync } from "node:sqlite";
import { createHash } from "node:crypto";
import { blake3 } from "../core/checksum/blake3.ts";
import { Store } from "../io/store/store.ts";
import { manifestOfDirectory } from "./helpers/manifest.ts";
import { storeFingerprint } from "./helpers/store_fingerprint.ts";
import { dumpRecords } from "./helpers/dump_json.ts";
import { guidJson } from "../core/stream/json.ts";
import { TestPool } from "./helpers/zfs_pool.ts";

const F = (n: string) => `${ZFS_FUSE_DIR}/${n}.zstream`;
const M = (n: string) => `${ZFS_FUSE_DIR}/${n}.manifest.txt`;

async function ok(args: string[]): Promise<string> {
  const r = await runZsend(args);
  assertEquals(r.code, 0, `zsend ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

async function send(args: string[]): Promise<Uint8Array> {
  const r = await runZsend(["send", ...args]);
  assertEquals(r.code, 0, `zsend send ${args.join(" ")}: ${r.stderr}`);
  return r.stdoutBytes;
}

/** A store holding every zfs-fuse fixture snapshot. */
async function fixtureStore(): Promise<string> {
  const store = `${await Deno.makeTempDir({ prefix: "zsend-s-" })}/s`;
  await ok(["recv", store, "bk/fs", F("fs-s1.full")]);
  await ok(["recv", store, "bk/fs", F("fs-s1-s2.incr")]);
  await ok(["recv", store, "bk/fs", F("fs-s2-s3.incr")]);
  await ok(["recv", store, "bk/clone", F("clone-s2-c1.clone")]);
  await ok(["recv", "-d", store, "rep", F("fs-r1.replicate")]);
  return store;
}

/** A store with bk/fs@s1..s3 and a clone of bk/fs@s2 below it, bk/fs/kid@s3. */
async function kidStore(): Promise<{ store: string; guid: bigint }> {
  const store = `${await Deno.makeTempDir({ prefix: "zsend-s-" })}/s`;
  await ok(["recv", store, "bk/fs", F("fs-s1.full")]);
  await ok(["recv", store, "bk/fs", F("fs-s1-s2.incr")]);
  await ok(["recv", store, "bk/fs", F("fs-s2-s3.incr")]);
  await ok(["recv", store, "bk/fs/kid@s3", F("clone-s2-c1.clone")]);
  const s = Store.open(store);
  const guid = s.snapshotByName("bk/fs/kid@s3")!.guid;
  s.close();
  return { store, guid };
}

async function verifies(bytes: Uint8Array, what: string): Promise<void> {
  const r = await runZsend(["verify", "-"], { stdin: bytes });
  assertEquals(r.code, 0, `${what}: ${r.stderr}`);
}

Deno.test("zsend send: full, -i, -I, -R, -D and clone streams verify and receive back unchanged", async () => {
  const store = await fixtureStore();
  const back = `${await Deno.makeTempDir({ prefix: "zsend-s-" })}/s`;
  const streams: [string[], string, string[]][] = [
    [["bk/fs@s1"], "x/fs", []],
    [["-i", "s1", "bk/fs@s2"], "x/fs", []],
    [["-i", "@s2", "bk/fs@s3"], "x/fs", []],
    [["-i", "bk/fs@s2", "bk/clone@c1"], "x/clone", []],
    [["-D", "bk/fs@s2"], "d/fs", []],
    [["bk/fs@s1"], "i/fs", []],
    [["-I", "s1", "bk/fs@s3"], "i/fs", []],
    [["-R", "rep/fs@r1"], "r", ["-d"]],
  ];
  for (const [args, target, flags] of streams) {
    const bytes = await send([store, ...args]);
    await verifies(bytes, args.join(" "));
    const r = await runZsend(["recv", ...flags, back, target, "-"], { stdin: bytes });
    assertEquals(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
  }
  const a = storeFingerprint(store, { meta: false }), b = storeFingerprint(back, { meta: false });
  assertEquals(b["x/fs@s1"], a["bk/fs@s1"]);
  assertEquals(b["x/fs@s2"], a["bk/fs@s2"]);
  assertEquals(b["x/fs@s3"], a["bk/fs@s3"]);
  assertEquals(b["x/clone@c1"], a["bk/clone@c1"]);
  assertEquals(b["d/fs@s2"], a["bk/fs@s2"]);
  assertEquals(b["i/fs@s3"], a["bk/fs@s3"]);
  assertEquals(b["r/fs@r1"], a["rep/fs@r1"]);
  assertEquals(b["r/fs/child@r1"], a["rep/fs/child@r1"]);
  // -D really deduplicates: the copy of new.bin goes as WRITE_BYREF.
  const dump =
    (await runZsend(["dump", "-v", "-"], { stdin: await send(["-D", store, "bk/fs@s2"]) })).stdout;
  assert(/Total DRR_WRITE_BYREF records = [1-9]/.test(dump), dump.slice(-600));
});

type Json = Record<string, unknown>;

/** The records of a stream as `dump --json` gives them. */
async function dumpJson(bytes: Uint8Array): Promise<Json[]> {
  const r = await runZsend(["dump", "--json", "-"], { stdin: bytes });
  assertEquals(r.code, 0, r.stderr);
  return dumpRecords(r.stdout);
}

/** Each substream of a compound stream as `from -> toname` (`full` without a fromguid). */
function substreams(records: Json[], guids: Map<string, string>): string[] {
  return records.filter((r) => r.record === "BEGIN" && r.substream !== 0).map((r) =>
    `${r.fromguid === guidJson(0n) ? "full" : guids.get(r.fromguid as string)} -> ${r.toname}`
  );
}

Deno.test("zsend send -R -i / -R -I: each dataset from the fromsnap, a dataset without it in full", async () => {
  const store = await fixtureStore();
  const s = Store.open(store);
  const guids = new Map<string, string>();
  const guid: Record<string, bigint> = {};
  for (const d of s.datasets()) {
    for (const snap of s.snapshots(d.id)) {
      guids.set(guidJson(snap.guid), `${d.name}@${snap.name}`);
      guid[`${d.name}@${snap.name}`] = snap.guid;
    }
  }
  s.close();
  // -R -i: one incremental s2 -> r1 (s3 is left out), the child (no s2) in full.
  const ri = await send(["-R", "-i", "@s2", store, "rep/fs@r1"]);
  await verifies(ri, "-R -i @s2");
  const riRecords = await dumpJson(ri);
  assertEquals(substreams(riRecords, guids), [
    "rep/fs@s2 -> rep/fs@r1",
    "full -> rep/fs/child@r1",
  ]);
  // The nvlist: fromsnap and tosnap; every snapshot up to r1 in `snaps`; the child's
  // parentfromsnap is its parent's fromsnap, the top's 0.
  const nvl = riRecords[0]!.nvlist as Json;
  assertEquals([nvl.fromsnap, nvl.tosnap], ["s2", "r1"]);
  const fss = Object.values(nvl.fss as Record<string, Json>);
  assertEquals(fss.map((f) => [f.name, f.parentfromsnap]), [
    ["rep/fs", guidJson(0n)],
    ["rep/fs/child", guidJson(guid["rep/fs@s2"]!)],
  ]);
  assertEquals(Object.keys(fss[0]!.snaps as Json), ["s1", "s2", "s3", "r1"]);
  assertEquals(await send(["-R", "-i", "rep/fs@s2", store, "rep/fs@r1"]), ri);
  // -R -I: every snapshot from s2 on.
  const rI = await send(["-R", "-I", "s2", store, "rep/fs@r1"]);
  await verifies(rI, "-R -I s2");
  assertEquals(substreams(await dumpJson(rI), guids), [
    "rep/fs@s2 -> rep/fs@s3",
    "rep/fs@s3 -> rep/fs@r1",
    "full -> rep/fs/child@r1",
  ]);
  // -R alone: as zfs-fuse's own -R, the child's parentfromsnap is its parent's tosnap.
  const full = await dumpJson(await send(["-R", store, "rep/fs@r1"]));
  const theirs = await dumpJson(await Deno.readFile(F("fs-r1.replicate")));
  const parents = (rs: Json[]) =>
    Object.values((rs[0]!.nvlist as Json).fss as Record<string, Json>).map((f) =>
      String(f.parentfromsnap)
    );
  assertEquals(parents(full), parents(theirs));
  assertEquals(
    substreams(full, guids),
    substreams(theirs, guids).map((x) => x.replace("fx1/", "rep/")),
  );

  // Round trips: into a store that holds the base (s1, s2, by -R of s2, which leaves out the
  // child: it has no s2), each gives the source's snapshots.
  for (
    const [flag, want] of [["-i", ["s1", "s2", "r1"]], ["-I", ["s1", "s2", "s3", "r1"]]] as const
  ) {
    const back = `${await Deno.makeTempDir({ prefix: "zsend-s-" })}/s`;
    const base = await send(["-R", store, "rep/fs@s2"]);
    let r = await runZsend(["recv", "-d", back, "x", "-"], { stdin: base });
    assertEquals(r.code, 0, r.stderr);
    r = await runZsend(["recv", "-d", back, "x", "-"], { stdin: flag === "-i" ? ri : rI });
    assertEquals(r.code, 0, `-R ${flag}: ${r.stderr}`);
    const b = Store.open(back);
    const names = b.snapshots(b.datasetByName("x/fs")!.id).map((x) => x.name);
    b.close();
    assertEquals(names, [...want], flag);
    const a = storeFingerprint(store, { meta: false }),
      got = storeFingerprint(back, { meta: false });
    assertEquals(got["x/fs@r1"], a["rep/fs@r1"], flag);
    assertEquals(got["x/fs/child@r1"], a["rep/fs/child@r1"], flag);
    if (flag === "-I") assertEquals(got["x/fs@s3"], a["rep/fs@s3"]);
  }

  // A clone in the tree: with -i its origin (an intermediate snapshot) is sent too, and the
  // clone, which has no fromsnap, goes as a clone stream of it.
  const kid = await kidStore();
  const withClone = await send(["-R", "-i", "@s1", kid.store, "bk/fs@s3"]);
  await verifies(withClone, "-R -i @s1 with a clone");
  const kidGuids = new Map([...guids, [guidJson(kid.guid), "bk/fs/kid@s3"]]);
  assertEquals(
    substreams(await dumpJson(withClone), kidGuids).map((x) => x.replaceAll("rep/fs", "bk/fs")),
    ["bk/fs@s1 -> bk/fs@s2", "bk/fs@s2 -> bk/fs@s3", "bk/fs@s2 -> bk/fs/kid@s3"],
  );
  const kidBack = `${await Deno.makeTempDir({ prefix: "zsend-s-" })}/s`;
  await ok(["recv", "-d", kidBack, "x", F("fs-s1.full")]);
  const r = await runZsend(["recv", "-d", kidBack, "x", "-"], { stdin: withClone });
  assertEquals(r.code, 0, r.stderr);
  const kb = storeFingerprint(kidBack, { meta: false });
  const ka = storeFingerprint(kid.store, { meta: false });
  assertEquals(kb["x/fs/kid@s3"], ka["bk/fs/kid@s3"]);
  assertEquals(kb["x/fs@s3"], ka["bk/fs@s3"]);

  // Refused as zfs send refuses them.
  for (
    const [args, message] of [
      [["-R", "-i", "@r1", store, "rep/fs@r1"], /not earlier/],
      [["-R", "-i", "bk/fs@s1", store, "rep/fs@r1"], /same filesystem/],
      [["-R", "-i", "@nope", store, "rep/fs@r1"], /not in the store/],
    ] as const
  ) {
    const r = await runZsend(["send", ...args]);
    assert(r.code !== 0 && message.test(r.stderr), `${args.join(" ")}: ${r.stderr}`);
  }
});

async function sendToFile(args: string[], env: Record<string, string> = {}) {
  return await runZsendToFile(["send", ...args], env);
}

Deno.test("zsend send: payloads the kernel copies from the packs (pipe, file) equal those read through memory", async () => {
  const store = await fixtureStore();
  // Every block of these little-endian streams keeps its fletcher-4 in the store.
  const db = new DatabaseSync(`${store}/index.sqlite`);
  const counts = db.prepare("SELECT count(*) AS n, count(f4) AS f FROM blocks").get() as {
    n: number;
    f: number;
  };
  db.close();
  assert(counts.n > 0);
  assertEquals(counts.f, counts.n);
  const memory = { ZSEND_NO_NATIVE: "1" };
  for (const args of [["bk/fs@s1"], ["-i", "s1", "bk/fs@s2"], ["-D", "bk/fs@s2"]]) {
    const r = await runZsend(["send", store, ...args], { env: memory });
    assertEquals(r.code, 0, r.stderr);
    const viaMemory = r.stdoutBytes;
    await verifies(viaMemory, args.join(" "));
    assertEquals(await send([store, ...args]), viaMemory, `pipe: ${args.join(" ")}`);
    assertEquals(await sendToFile([store, ...args]), viaMemory, `file: ${args.join(" ")}`);
    assertEquals(await sendToFile([store, ...args], memory), viaMemory);
  }
});

Deno.test("store: a schema 1 store (no fletcher-4 per block) is migrated and sends the same stream", async () => {
  const store = `${await Deno.makeTempDir({ prefix: "zsend-s-" })}/s`;
  await ok(["recv", store, "bk/fs", F("fs-s1.full")]);
  const before = await send([store, "bk/fs@s1"]);
  const db = new DatabaseSync(`${store}/index.sqlite`);
  db.exec("ALTER TABLE blocks DROP COLUMN f4; UPDATE meta SET value = '1' WHERE key = 'schema'");
  db.close();
  assertEquals(await send([store, "bk/fs@s1"]), before);
  await ok(["recv", store, "bk/fs", F("fs-s1-s2.incr")]);
  const db2 = new DatabaseSync(`${store}/index.sqlite`);
  const schema = db2.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as {
    value: string;
  };
  const withF4 = db2.prepare("SELECT count(f4) AS f FROM blocks").get() as { f: number };
  db2.close();
  assertEquals(schema.value, "4");
  assert(withF4.f > 0, "blocks received after the migration keep their fletcher-4");
  await verifies(await send([store, "-i", "s1", "bk/fs@s2"]), "-i s1 s2 after migration");
});

Deno.test("store: blocks are keyed by BLAKE3, and a store that keys them by SHA-256 goes on so", async () => {
  const keyed = async (hash: string | null) => {
    const dir = await Deno.makeTempDir({ prefix: "zsend-s-" });
    const store = `${dir}/s`;
    if (hash !== null) {
      // A store made before BLAKE3: it says SHA-256 before its first block.
      Store.open(store, { create: true }).close();
      const db = new DatabaseSync(`${store}/index.sqlite`);
      db.prepare("UPDATE meta SET value = ? WHERE key = 'block_hash'").run(hash);
      db.close();
    }
    await ok(["recv", store, "bk/fs", F("fs-s1.full")]);
    await ok(["recv", store, "bk/fs", F("fs-s1-s2.incr")]);
    const s = Store.open(store);
    const rows = s.db.prepare("SELECT id, hash FROM blocks").all() as {
      id: number;
      hash: Uint8Array;
    }[];
    for (const r of rows) {
      const bytes = s.blockBytes(r.id);
      const want = hash === "sha256" ? createHash("sha256").update(bytes).digest() : blake3(bytes);
      assertEquals(new Uint8Array(r.hash), new Uint8Array(want), `block ${r.id}`);
    }
    assertEquals(s.blockHash, hash ?? "blake3");
    s.close();
    return store;
  };
  const b3 = await keyed(null), old = await keyed("sha256");
  // -D keys blocks by SHA-256 whatever the store keys them by: the same stream from both.
  const fromB3 = await send(["-D", b3, "bk/fs@s2"]);
  assertEquals(await send(["-D", old, "bk/fs@s2"]), fromB3);
  await verifies(fromB3, "-D from a BLAKE3 store");
  assertEquals(storeFingerprint(b3), storeFingerprint(old));
});

Deno.test("zsend send of a received full stream differs from zfs-fuse's only where the senders differ", async () => {
  const store = await fixtureStore();
  const mine = await send([store, "bk/fs@s1"]);
  const records = async (bytes: Uint8Array) =>
    dumpRecords((await runZsend(["dump", "--json", "-"], { stdin: bytes })).stdout);
  const theirs = await records(await Deno.readFile(F("fs-s1.full")));
  const ours = await records(mine);
  const key = (r: Record<string, unknown>, fields: string[]) =>
    fields.map((f) => `${f}=${r[f]}`).join(" ");
  const OBJECT = [
    "object",
    "object_type",
    "bonustype",
    "blksz",
    "bonuslen",
    "checksumtype",
    "compress",
    "payload_size",
  ];
  const WRITE = [
    "object",
    "object_type",
    "offset",
    "logical_size",
    "checksumtype",
    "key_prop",
    "payload_size",
  ];
  const pick = (rs: Record<string, unknown>[], type: string, fields: string[]) =>
    rs.filter((r) => r.record === type).map((r) => key(r, fields)).sort();
  // The same objects with the same bonus buffers, the same blocks with the same data.
  assertEquals(pick(ours, "OBJECT", OBJECT), pick(theirs, "OBJECT", OBJECT));
  assertEquals(pick(ours, "WRITE", WRITE), pick(theirs, "WRITE", WRITE));
  const begin = (rs: Record<string, unknown>[]) =>
    key(rs[0]!, ["toguid", "fromguid", "creation_time", "objset_type", "features"]);
  assertEquals(begin(ours), begin(theirs));
  // Differences, each a rule of the seed's sender that the old one lacked:
  // 1. every record carries its own checksum (the old sender: only END);
  assert(ours.slice(1).every((r) => r.record_checksum.some((w: string) => w !== "0")));
  assert(theirs.slice(1, -1).every((r) => r.record_checksum.every((w: string) => w === "0")));
  // 2. records go object by object (OBJECT, its FREE past the end, its data), where the old
  //    sender wrote a whole block of 32 dnodes' OBJECT records before their data;
  const firstWrite = (rs: Record<string, unknown>[]) => rs.findIndex((r) => r.record === "WRITE");
  const objectsBefore = (rs: Record<string, unknown>[]) =>
    rs.slice(0, firstWrite(rs)).filter((r) => r.record === "OBJECT").length;
  assertEquals(objectsBefore(ours), 1);
  assert(objectsBefore(theirs) > 1);
  // 3. FREEOBJECTS never names object 0 (the meta dnode) and stops at the last dnode block
  //    (dump_freeobjects' maxobj), where the old sender freed from 0 and up to 2^48.
  const fo = (rs: Record<string, unknown>[]) => rs.filter((r) => r.record === "FREEOBJECTS");
  assert(
    fo(ours).every((r) => r.firstobj !== "0" && Number(r.firstobj) + Number(r.numobjs) <= 2 ** 20),
  );
  assert(fo(theirs).some((r) => r.firstobj === "0"));
});

const why = freshUnavailable();

async function treeOf(pool: TestPool, dataset: string): Promise<string[]> {
  const at = await pool.mount(dataset);
  try {
    return await manifestOfDirectory(at);
  } finally {
    await pool.unmount(dataset);
  }
}

function manifestLines(text: string): string[] {
  return text.trimEnd().split("\n");
}

Deno.test({
  name: "real zfs receive takes what zsend send writes: the fixture chain, -I, -R, -D and a clone",
  ignore: why !== null,
  async fn(t) {
    const store = await fixtureStore();
    const pool = await TestPool.create();
    try {
      await t.step("full s1, -i s1 s2, -i s2 s3", async () => {
        await pool.receive("fs", await send([store, "bk/fs@s1"]));
        assertEquals(await treeOf(pool, "fs"), manifestLines(await Deno.readTextFile(M("fs-s1"))));
        await pool.receive("fs", await send([store, "-i", "s1", "bk/fs@s2"]));
        assertEquals(await treeOf(pool, "fs"), manifestLines(await Deno.readTextFile(M("fs-s2"))));
        await pool.receive("fs", await send([store, "-i", "s2", "bk/fs@s3"]));
        assertEquals(await treeOf(pool, "fs"), manifestLines(await Deno.readTextFile(M("fs-s3"))));
      });
      await t.step("clone of s2", async () => {
        await pool.receive("clone", await send([store, "-i", "bk/fs@s2", "bk/clone@c1"]));
        assertEquals(
          await treeOf(pool, "clone"),
          manifestLines(await Deno.readTextFile(M("clone-c1"))),
        );
      });
      await t.step("-I s1 s3", async () => {
        await pool.receive("ifs", await send([store, "bk/fs@s1"]));
        await pool.receive("ifs", await send([store, "-I", "s1", "bk/fs@s3"]));
        assertEquals(await treeOf(pool, "ifs"), manifestLines(await Deno.readTextFile(M("fs-s3"))));
      });
      await t.step("-D s2", async () => {
        await pool.receive("dfs", await send([store, "-D", "bk/fs@s2"]));
        assertEquals(await treeOf(pool, "dfs"), manifestLines(await Deno.readTextFile(M("fs-s2"))));
      });
      await t.step("-R r1", async () => {
        await pool.createDataset("rep");
        await pool.receive("rep", await send([store, "-R", "rep/fs@r1"]), ["-d"]);
        const snaps = await pool.snapshots();
        for (const s of ["rep/fs@s1", "rep/fs@s2", "rep/fs@s3", "rep/fs@r1", "rep/fs/child@r1"]) {
          assert(snaps.includes(s), `${s} not in ${snaps.join(", ")}`);
        }
      });
      await t.step("-R -i s2 r1 and -R -I s2 r1 onto -R s2", async () => {
        const extracted = async (snap: string) => {
          const dir = `${await Deno.makeTempDir({ prefix: "zsend-s-" })}/x`;
          await ok(["extract", store, snap, dir]);
          return await manifestOfDirectory(dir);
        };
        for (const [flag, parent] of [["-i", "repi"], ["-I", "repI"]] as const) {
          await pool.createDataset(parent);
          await pool.receive(parent, await send([store, "-R", "rep/fs@s2"]), ["-d"]);
          await pool.receive(parent, await send([store, "-R", flag, "s2", "rep/fs@r1"]), ["-d"]);
          const snaps = (await pool.snapshots()).filter((x) => x.startsWith(`${parent}/`));
          const want = flag === "-i" ? ["s1", "s2", "r1"] : ["s1", "s2", "s3", "r1"];
          assertEquals(
            snaps.sort(),
            [
              ...want.map((x) => `${parent}/fs@${x}`),
              `${parent}/fs/child@r1`,
            ].sort(),
          );
          assertEquals(
            await treeOf(pool, `${parent}/fs/child`),
            await extracted("rep/fs/child@r1"),
          );
          assertEquals(await treeOf(pool, `${parent}/fs`), await extracted("rep/fs@r1"));
        }
      });
      await t.step("-R -i s1 s3 with a clone of s2 below", async () => {
        const kid = await kidStore();
        await pool.createDataset("repk");
        await pool.receive("repk", await send([kid.store, "-R", "bk/fs@s1"]), ["-d"]);
        await pool.receive("repk", await send([kid.store, "-R", "-i", "s1", "bk/fs@s3"]), ["-d"]);
        const snaps = (await pool.snapshots()).filter((x) => x.startsWith("repk/"));
        assertEquals(snaps.sort(), ["repk/fs/kid@s3", "repk/fs@s1", "repk/fs@s2", "repk/fs@s3"]);
        assertEquals(
          await treeOf(pool, "repk/fs/kid"),
          manifestLines(await Deno.readTextFile(M("clone-c1"))),
        );
        // The clone's mountpoint is inherited below its parent's: leave its tree out there.
        assertEquals(
          (await treeOf(pool, "repk/fs")).filter((l) => !l.startsWith("./kid")),
          manifestLines(await Deno.readTextFile(M("fs-s3"))),
        );
      });
    } finally {
      await pool.destroy();
    }
  },
});

Deno.test({
  name: "real zfs receive takes zsend send of fresh zfs-fuse snapshots, identical to the source",
  ignore: why !== null,
  async fn() {
    const fresh = await freshStreams();
    const store = `${await Deno.makeTempDir({ prefix: "zsend-s-" })}/s`;
    await ok(["recv", store, "bk/fs", `${fresh.dir}/full-a.zstream`]);
    await ok(["recv", store, "bk/fs", `${fresh.dir}/incr-a-b.zstream`]);
    await ok(["recv", store, "bk/fs", `${fresh.dir}/incr-b-c.zstream`]);
    const man = (key: string) =>
      Deno.readTextFile(`${fresh.dir}/${fresh.info.snapshots[key]!.manifest}`).then(manifestLines);
    const pool = await TestPool.create();
    try {
      await pool.receive("fs", await send([store, "bk/fs@a"]));
      assertEquals(await treeOf(pool, "fs"), await man("fs@a"), `seed ${fresh.info.seed}`);
      await pool.receive("fs", await send([store, "-i", "a", "bk/fs@b"]));
      assertEquals(await treeOf(pool, "fs"), await man("fs@b"), `seed ${fresh.info.seed}`);
      await pool.receive("fs", await send([store, "-i", "b", "bk/fs@c"]));
      assertEquals(await treeOf(pool, "fs"), await man("fs@c"), `seed ${fresh.info.seed}`);
    } finally {
      await pool.destroy();
    }
  },
});
if (why !== null) console.log(`SKIPPED sends into real zfs receive: ${why}`);
