/**
 * `zsend destroy` on stores filled with zfs-fuse's streams: what it destroys, what it refuses
 * as `zfs destroy` refuses it, and that the snapshots left read and send exactly as before.
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { ZFS_FUSE_DIR } from "./_fixtures.ts";
import { runZsend } from "./_run.ts";
import { listJson, partialReceives, snapshotNames } from "./helpers/list_json.ts";
import { assertSameOutputs, packsDigest, snapshotOutputs } from "./helpers/snapshot_outputs.ts";
import { storeFingerprint } from "./helpers/store_fingerprint.ts";
import { niceBytes } from "../cli/zfs_format.ts";
import { fixtureStore } from "./helpers/fixture_store.ts";

const F = (name: string) => `${ZFS_FUSE_DIR}/${name}.zstream`;

async function ok(args: string[]) {
  const r = await runZsend(args);
  assertEquals(r.code, 0, `zsend ${args.join(" ")}: ${r.stderr}`);
  return r;
}

async function refused(args: string[], why: RegExp) {
  const r = await runZsend(args);
  assertEquals(r.code, 1, `zsend ${args.join(" ")} was not refused: ${r.stdout}`);
  assertMatch(r.stderr, why);
  assertEquals(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
}

/** bk/fs@s1..s3 and the clone bk/clone@c1 of bk/fs@s2. */
function chainStore(): Promise<string> {
  return fixtureStore({ prefix: "zsend-destroy-" });
}

/** The -R stream: rep/fs@s1..s3, r1 and rep/fs/child@r1. */
async function treeStore(): Promise<string> {
  const store = `${await Deno.makeTempDir({ prefix: "zsend-destroy-" })}/store`;
  await ok(["recv", "-d", store, "rep", F("fs-r1.replicate")]);
  return store;
}

/** `list -p -o used` of one snapshot or dataset. */
async function used(store: string, name: string): Promise<number> {
  const r = await ok(["list", "-H", "-p", "-o", "used", store, name]);
  return Number(r.stdout.trim());
}

Deno.test("destroy -n touches nothing and says what destroy would do", async () => {
  const store = await chainStore();
  const fp = storeFingerprint(store);
  const packs = await packsDigest(store);
  const unique = await used(store, "bk/fs@s1");
  assert(unique > 0, "bk/fs@s1 holds blocks of its own");
  const n = await ok(["destroy", "-n", store, "bk/fs@s1"]);
  assertEquals(n.stdout, `would destroy bk/fs@s1\nwould reclaim ${niceBytes(unique)}\n`);
  const p = await ok(["destroy", "-n", "-p", store, "bk/fs@s1"]);
  assertEquals(p.stdout, `destroy\tbk/fs@s1\nreclaim\t${unique}\n`);
  assertEquals(storeFingerprint(store), fp);
  assertEquals(await packsDigest(store), packs);
});

Deno.test("destroy of a snapshot: the later ones and the clone read and send as before", async () => {
  const store = await chainStore();
  const before = await snapshotOutputs(store);
  const unique = await used(store, "bk/fs@s1");
  const v = await ok(["destroy", "-v", store, "bk/fs@s1"]);
  assertMatch(v.stdout, new RegExp(`^will destroy bk/fs@s1\nwill reclaim ${niceBytes(unique)}\n`));
  assertEquals(await snapshotNames(store), ["bk/clone@c1", "bk/fs@s2", "bk/fs@s3"]);
  assertSameOutputs(await snapshotOutputs(store), before, ["bk/fs@s1"]);
  // The blocks only s1 held are gone from the index: nothing refers to a missing block.
  const blocks = await runZsend(["gc", "-n", "-v", store]);
  assertMatch(blocks.stdout, /would give back [1-9]/);
  // The newest snapshot too: s2 keeps what it shared with it.
  await ok(["destroy", store, "bk/fs@s3"]);
  assertSameOutputs(await snapshotOutputs(store), before, ["bk/fs@s1", "bk/fs@s3"]);
});

Deno.test("destroy refuses what zfs destroy refuses, and changes nothing then", async () => {
  const chain = await chainStore();
  const tree = await treeStore();
  const fps = [storeFingerprint(chain), storeFingerprint(tree)];
  await refused(
    ["destroy", chain, "bk/fs@s2"],
    /^zsend destroy: cannot destroy 'bk\/fs@s2': snapshot has dependent clones: bk\/clone; /,
  );
  await refused(
    ["destroy", "-r", chain, "bk/fs"],
    /cannot destroy 'bk\/fs': filesystem has dependent clones \(bk\/fs@s2\): bk\/clone; /,
  );
  await refused(
    ["destroy", tree, "rep/fs"],
    /cannot destroy 'rep\/fs': filesystem has children; use '-r' to destroy the following datasets: rep\/fs\/child\n$/,
  );
  await refused(
    ["destroy", tree, "rep"],
    /cannot destroy 'rep': filesystem has children; use '-r' to destroy the following datasets: rep\/fs, rep\/fs\/child\n$/,
  );
  await refused(["destroy", chain, "bk/none"], /cannot open 'bk\/none': dataset does not exist\n$/);
  await refused(["destroy", chain, "bk/fs@none"], /could not find any snapshots to destroy/);
  await refused(["destroy", "-r", tree, "rep/fs@none"], /could not find any snapshots/);
  assertEquals([storeFingerprint(chain), storeFingerprint(tree)], fps);
});

Deno.test("destroy -r: a snapshot of every descendant; a dataset and its descendants", async () => {
  const store = await treeStore();
  const before = await snapshotOutputs(store);
  const r = await ok(["destroy", "-r", "-v", store, "rep/fs@r1"]);
  assertMatch(r.stdout, /^will destroy rep\/fs@r1\nwill destroy rep\/fs\/child@r1\nwill reclaim /);
  assertEquals(await snapshotNames(store), ["rep/fs@s1", "rep/fs@s2", "rep/fs@s3"]);
  assertSameOutputs(await snapshotOutputs(store), before, ["rep/fs@r1", "rep/fs/child@r1"]);
  // rep/fs/child has no snapshot left, still a dataset; -r takes it with its parent.
  assertEquals((await listJson(store)).map((x) => x.name), [
    "rep/fs",
    "rep/fs@s1",
    "rep/fs@s2",
    "rep/fs@s3",
    "rep/fs/child",
  ]);
  const all = await ok(["destroy", "-r", "-n", store, "rep"]);
  assertEquals(
    all.stdout.split("\n").slice(0, -2),
    [
      "would destroy rep/fs/child",
      "would destroy rep/fs@s1",
      "would destroy rep/fs@s2",
      "would destroy rep/fs@s3",
      "would destroy rep/fs",
    ],
  );
  await ok(["destroy", "-r", store, "rep"]);
  assertEquals(await listJson(store), []);
  // Every pack held only what was destroyed: destroy deleted them at once.
  const packs = [...Deno.readDirSync(`${store}/packs`)].map((e) =>
    Deno.statSync(`${store}/packs/${e.name}`).size
  );
  assertEquals(packs.reduce((a, b) => a + b, 0), 0, "pack bytes left");
});

Deno.test("destroy of ranges and lists of snapshots, as zfs destroy names them", async () => {
  const store = `${await Deno.makeTempDir({ prefix: "zsend-destroy-" })}/store`;
  await ok(["recv", store, "bk/fs", F("fs-s1.full")]);
  await ok(["recv", store, "bk/fs", F("fs-s1-s3.incrI")]);
  const would = async (spec: string) =>
    (await ok(["destroy", "-n", store, `bk/fs@${spec}`])).stdout.split("\n")
      .filter((l) => l.startsWith("would destroy ")).map((l) => l.slice(20));
  assertEquals(await would("%"), ["s1", "s2", "s3"]);
  assertEquals(await would("s2%"), ["s2", "s3"]);
  assertEquals(await would("%s2"), ["s1", "s2"]);
  assertEquals(await would("s1%s2,s3"), ["s1", "s2", "s3"]);
  assertEquals(await would("s3,s1,nope"), ["s1", "s3"]);
  await refused(["destroy", store, "bk/fs@s1%nope"], /could not find any snapshots to destroy/);
  const before = await snapshotOutputs(store);
  await ok(["destroy", store, "bk/fs@%s2"]);
  assertEquals(await snapshotNames(store), ["bk/fs@s3"]);
  assertSameOutputs(await snapshotOutputs(store), before, ["bk/fs@s1", "bk/fs@s2"]);
});

Deno.test("destroy of a clone, then of its origin's dataset", async () => {
  const store = await chainStore();
  const before = await snapshotOutputs(store);
  await ok(["destroy", store, "bk/clone"]);
  assertEquals(await snapshotNames(store), ["bk/fs@s1", "bk/fs@s2", "bk/fs@s3"]);
  assertSameOutputs(await snapshotOutputs(store), before, ["bk/clone@c1"]);
  // Without children, DATASET alone takes its snapshots with it.
  await ok(["destroy", store, "bk/fs@s2"]);
  await ok(["destroy", store, "bk/fs"]);
  assertEquals(await listJson(store), []);
});

Deno.test("destroy and partial receives: the snapshot one grows from stays; the dataset takes it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zsend-destroy-" });
  const store = `${dir}/store`;
  await ok(["recv", store, "bk/fs", F("fs-s1.full")]);
  const incr = await Deno.readFile(F("fs-s1-s2.incr"));
  await Deno.writeFile(`${dir}/cut`, incr.subarray(0, 400000));
  assertEquals((await runZsend(["recv", "-s", store, "bk/fs", `${dir}/cut`])).code, 1);
  const [partial] = await partialReceives(store);
  assert(partial !== undefined, "no partial receive was kept");
  const full = await Deno.readFile(F("fs-s1.full"));
  await Deno.writeFile(`${dir}/cutfull`, full.subarray(0, 300000));
  assertEquals((await runZsend(["recv", "-s", store, "bk/new", `${dir}/cutfull`])).code, 1);
  const fp = storeFingerprint(store);
  await refused(
    ["destroy", store, "bk/fs@s1"],
    /cannot destroy 'bk\/fs@s1': snapshot has dependent clones: bk\/fs\/%recv \(the partial receive of bk\/fs@s2: zsend recv -A drops it\)/,
  );
  assertEquals(storeFingerprint(store), fp);
  // A first receive cut short is its dataset: destroying it drops the partial receive.
  const n = await ok(["destroy", "-n", store, "bk/new"]);
  assertMatch(n.stdout, /^would destroy bk\/new\nwould reclaim /);
  await ok(["destroy", store, "bk/new"]);
  assertEquals((await partialReceives(store)).map((p) => p.name), ["bk/fs"]);
  // The dataset goes with its snapshots and its partial receive (OpenZFS's hidden %recv).
  const v = await ok(["destroy", "-v", store, "bk/fs"]);
  assertMatch(
    v.stdout,
    /^will destroy bk\/fs@s1\nwill destroy bk\/fs\/%recv\nwill destroy bk\/fs\n/,
  );
  assertEquals(await listJson(store), []);
  assertEquals(await partialReceives(store), []);
});

Deno.test("destroy: what -n says it reclaims is list's used, and gc gives it back", async () => {
  const store = await chainStore();
  for (const snap of ["bk/fs@s1", "bk/fs@s3", "bk/clone@c1"]) {
    const u = await used(store, snap);
    const p = await ok(["destroy", "-n", "-p", store, snap]);
    assertMatch(p.stdout, new RegExp(`\nreclaim\t${u}\n$`), snap);
  }
  // A dataset's used is what destroying it (and its descendants) gives back.
  const u = await used(store, "bk/clone");
  const p = await ok(["destroy", "-n", "-p", store, "bk/clone"]);
  assertMatch(p.stdout, new RegExp(`\nreclaim\t${u}\n$`));
});
