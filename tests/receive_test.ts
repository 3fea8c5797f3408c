/**
 * Receiving into a store: chains of real streams, refusals, and all-or-nothing under damage
 * and under kill -9.
 */

import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { ZFS_FUSE_DIR } from "./_fixtures.ts";
import { copyDir, runZsend, runZsendKilledAfter } from "./_run.ts";
import { storeFingerprint } from "./helpers/store_fingerprint.ts";
import { freshStreams, freshUnavailable } from "./_fresh.ts";
import { snapshotNames } from "./helpers/list_json.ts";

const F = (name: string) => `${ZFS_FUSE_DIR}/${name}.zstream`;

async function tempStore(): Promise<string> {
  return `${await Deno.makeTempDir({ prefix: "zsend-store-" })}/store`;
}

async function recv(store: string, target: string, stream: string, ...flags: string[]) {
  return await runZsend(["recv", ...flags, store, target, stream]);
}

async function listNames(store: string): Promise<string[]> {
  return await snapshotNames(store);
}

Deno.test("zsend recv takes full, incremental, clone, -I, -D and -R streams of zfs-fuse", async () => {
  const store = await tempStore();
  for (
    const [target, stream, flags] of [
      ["bk/fs", "fs-s1.full", []],
      ["bk/fs", "fs-s1-s2.incr", []],
      ["bk/fs", "fs-s2-s3.incr", []],
      ["bk/clone", "clone-s2-c1.clone", []],
      ["dd/fs", "fs-s2.dedup", []],
      ["rep", "fs-r1.replicate", ["-d"]],
      ["ii/fs", "fs-s1.full", []],
      ["ii/fs", "fs-s1-s3.incrI", []],
    ] as [string, string, string[]][]
  ) {
    const r = await recv(store, target, F(stream), ...flags);
    assertEquals(r.code, 0, `${stream}: ${r.stderr}`);
  }
  assertEquals(await listNames(store), [
    "bk/clone@c1",
    "bk/fs@s1",
    "bk/fs@s2",
    "bk/fs@s3",
    "dd/fs@s2",
    "ii/fs@s1",
    "ii/fs@s2",
    "ii/fs@s3",
    "rep/fs@s1",
    "rep/fs@s2",
    "rep/fs@s3",
    "rep/fs@r1",
    "rep/fs/child@r1",
  ]);
  // Snapshots share what they did not change: the store holds about the unique blocks.
  const space = await runZsend(["list", "--space", "-p", store]);
  const stored = Number(/, (\d+) stored \(each block once\)/.exec(space.stdout)![1]);
  const streams = (await Deno.stat(F("fs-s1.full"))).size +
    (await Deno.stat(F("fs-s1-s2.incr"))).size +
    (await Deno.stat(F("fs-s2-s3.incr"))).size;
  assert(stored < streams, `${stored} stored for ${streams} of streams`);
  // The same snapshots reached by other routes hold the same content.
  const fp = storeFingerprint(store, { meta: false });
  assertEquals(fp["rep/fs@s3"], fp["bk/fs@s3"]);
  assertEquals(fp["ii/fs@s3"], fp["bk/fs@s3"]);
  assertEquals(fp["dd/fs@s2"], fp["bk/fs@s2"]);
});

Deno.test("zsend recv refuses what zfs receive refuses, and leaves the store as it was", async () => {
  const store = await tempStore();
  assertEquals((await recv(store, "bk/fs", F("fs-s1.full"))).code, 0);
  const before = storeFingerprint(store);
  const cases: [string, string, RegExp][] = [
    ["bk/fs", F("fs-s2-s3.incr"), /incremental source .* does not exist/],
    ["bk/fs", F("fs-s1.full"), /already received/],
    ["bk/other", F("fs-s1-s2.incr"), /does not exist/],
    ["bk/cl", F("clone-s2-c1.clone"), /origin snapshot .* is not in the store/],
  ];
  for (const [target, stream, why] of cases) {
    const r = await recv(store, target, stream);
    assertEquals(r.code, 1, `${stream} into ${target}`);
    assert(why.test(r.stderr), r.stderr);
    assertEquals(storeFingerprint(store), before);
  }
  // An incremental whose source is not the latest snapshot: refused, then -F rolls back.
  assertEquals((await recv(store, "bk/fs", F("fs-s1-s2.incr"))).code, 0);
  assertEquals((await recv(store, "bk/fs", F("fs-s2-s3.incr"))).code, 0);
  const three = storeFingerprint(store);
  const refused = await recv(store, "bk/fs", F("fs-s1-s2.incr"));
  assertEquals(refused.code, 1);
  assert(/already received|does not match/.test(refused.stderr), refused.stderr);
  assertEquals(storeFingerprint(store), three);
});

Deno.test("zsend recv of a damaged stream changes nothing; the good stream then succeeds", async () => {
  const store = await tempStore();
  assertEquals((await recv(store, "bk/fs", F("fs-s1.full"))).code, 0);
  const before = storeFingerprint(store);
  const good = await Deno.readFile(F("fs-s1-s2.incr"));
  for (const pos of [good.length >> 1, good.length - 400, 5000, good.length - 1]) {
    const bad = good.slice();
    bad[pos]! ^= 0x20;
    const r = await runZsend(["recv", store, "bk/fs", "-"], { stdin: bad });
    assertEquals(r.code, 1, `flip at ${pos}`);
    assert(/^zsend recv: record \d+ /.test(r.stderr), r.stderr);
    assertEquals(storeFingerprint(store), before, `flip at ${pos}`);
  }
  const truncated = await runZsend(["recv", store, "bk/fs", "-"], {
    stdin: good.subarray(0, 300000),
  });
  assertEquals(truncated.code, 1);
  assertEquals(storeFingerprint(store), before);
  const ok = await runZsend(["recv", store, "bk/fs", "-"], { stdin: good });
  assertEquals(ok.code, 0, ok.stderr);
  assertNotEquals(storeFingerprint(store), before);
});

Deno.test("zsend recv -n receives nothing", async () => {
  const store = await tempStore();
  assertEquals((await recv(store, "bk/fs", F("fs-s1.full"))).code, 0);
  const before = storeFingerprint(store);
  const r = await recv(store, "bk/fs", F("fs-s1-s2.incr"), "-n", "-v");
  assertEquals(r.code, 0, r.stderr);
  assert(r.stdout.includes("would receive"), r.stdout);
  assertEquals(storeFingerprint(store), before);
});

/** Starts a receive, kills it with SIGKILL after `ms`, and waits for it. */
function killDuring(store: string, stream: string, ms: number): Promise<number> {
  return runZsendKilledAfter(["recv", store, "big/fs", stream], ms);
}

const why = freshUnavailable();
Deno.test({
  name: "kill -9 at random points of a large receive leaves the store as it was",
  ignore: why !== null,
  async fn() {
    const fresh = await freshStreams();
    const base = await tempStore();
    const full = `${fresh.dir}/full-a.zstream`, incr = `${fresh.dir}/incr-a-b.zstream`;
    assertEquals((await runZsend(["recv", base, "big/fs", full])).code, 0);
    const before = storeFingerprint(base);
    // How long the incremental receive takes here, to spread the kills over it.
    const probe = `${base}-probe`;
    await copyDir(base, probe);
    const t0 = performance.now();
    assertEquals((await runZsend(["recv", probe, "big/fs", incr])).code, 0);
    const span = performance.now() - t0;
    const whole = storeFingerprint(probe);
    let killed = 0;
    for (let i = 0; i < 8; i++) {
      const work = `${base}-${i}`;
      await copyDir(base, work);
      const delay = span * (0.1 + 0.75 * Math.random());
      const code = await killDuring(work, incr, delay);
      const after = storeFingerprint(work);
      // Killed before its commit: nothing; after it (or not killed at all): the whole snapshot.
      if (code === 0 || JSON.stringify(after) === JSON.stringify(whole)) {
        assertEquals(after, whole);
        continue;
      }
      killed++;
      assertEquals(after, before, `kill after ${delay.toFixed(0)} ms (seed ${fresh.info.seed})`);
      const ok = await runZsend(["recv", work, "big/fs", incr]);
      assertEquals(ok.code, 0, ok.stderr);
    }
    assert(killed > 0, `no receive was killed in the middle (a receive takes ${span} ms)`);
  },
});
if (why !== null) console.log(`SKIPPED kill -9 receive test: ${why}`);
