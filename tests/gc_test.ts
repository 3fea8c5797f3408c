/**
 * `zsend gc`: after destroys, the packs shrink and every snapshot left sends and extracts the
 * same bytes; a kill -9 at any moment of a gc (at each step, and at random times of a long one)
 * leaves every snapshot intact, and the next gc completes the job.
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { createHash } from "node:crypto";
import { ZFS_FUSE_DIR } from "./_fixtures.ts";
import { copyDir, runZsend, runZsendKilledAfter } from "./_run.ts";
import {
  assertSameOutputs,
  bytesUnder,
  packsDigest,
  snapshotOutputs,
} from "./helpers/snapshot_outputs.ts";
import { storeFingerprint } from "./helpers/store_fingerprint.ts";
import { Store } from "../io/store/store.ts";
import { fixtureStore } from "./helpers/fixture_store.ts";

const F = (name: string) => `${ZFS_FUSE_DIR}/${name}.zstream`;

async function ok(args: string[], env: Record<string, string> = {}) {
  const r = await runZsend(args, { env });
  assertEquals(r.code, 0, `zsend ${args.join(" ")}: ${r.stderr}`);
  return r;
}

/** bk/fs@s1..s3 and bk/clone@c1, then bk/fs@s1 and the clone destroyed. */
async function destroyedStore(): Promise<{ store: string; before: Record<string, string> }> {
  const store = await fixtureStore({ prefix: "zsend-gc-" });
  const before = await snapshotOutputs(store);
  await ok(["destroy", store, "bk/clone"]);
  await ok(["destroy", store, "bk/fs@s1"]);
  return { store, before };
}

/** The bytes `gc -p`-less output says it gives back, exactly (from `list --space -p`). */
async function unusedBytes(store: string): Promise<number> {
  const r = await ok(["list", "--space", "-p", store]);
  return Number(/ in pack files, (\d+) unused/.exec(r.stdout)![1]);
}

function packBytes(store: string): number {
  return bytesUnder(`${store}/packs`);
}

const DESTROYED = ["bk/fs@s1", "bk/clone@c1"];

Deno.test("gc after destroy: the packs shrink, the snapshots left send and extract the same", async () => {
  const { store, before } = await destroyedStore();
  const unused = await unusedBytes(store);
  assert(unused > 0, "the destroys left unused bytes in the packs");
  // -n changes nothing and says what gc would give back.
  const fp = storeFingerprint(store);
  const digest = await packsDigest(store);
  const n = await ok(["gc", "-n", "-v", store]);
  assertMatch(n.stdout, /^would rewrite pack 1: /m);
  assertEquals(storeFingerprint(store), fp);
  assertEquals(await packsDigest(store), digest);
  const size = packBytes(store);
  const v = await ok(["gc", "-v", store]);
  assertMatch(v.stdout, /^rewrote pack 1: .*\nwrote pack 2: /m);
  assertEquals(packBytes(store), size - unused, v.stdout);
  assertEquals(await unusedBytes(store), 0);
  assertEquals(storeFingerprint(store), fp);
  assertSameOutputs(await snapshotOutputs(store), before, DESTROYED);
  // Nothing left to do; a receive appends to the new pack and reads back.
  const again = await ok(["gc", "-v", store]);
  assertMatch(again.stdout, /gave back 0B\)\n$/);
  await ok(["recv", store, "bk/clone", F("clone-s2-c1.clone")]);
  assertSameOutputs(await snapshotOutputs(store), before, ["bk/fs@s1"]);
});

Deno.test("gc killed at each step leaves every snapshot intact; the next gc completes", async (t) => {
  const clean = await destroyedStore();
  await ok(["gc", clean.store]);
  const cleanSize = packBytes(clean.store);
  for (const point of ["copying", "copied", "switched"]) {
    await t.step(point, async () => {
      const { store, before } = await destroyedStore();
      const fp = storeFingerprint(store);
      const r = await runZsend(["gc", store], { env: { ZSEND_GC_FAULT: point } });
      assertEquals(r.code, 137, `gc was not killed at ${point}: ${r.stderr}`);
      assertEquals(storeFingerprint(store), fp);
      assertSameOutputs(await snapshotOutputs(store), before, DESTROYED);
      // What the killed gc left (a new pack the index does not know, or the old one) goes now.
      await ok(["gc", store]);
      assertEquals(storeFingerprint(store), fp);
      assertEquals(packBytes(store), cleanSize);
      assertEquals([...Deno.readDirSync(`${store}/packs`)].length, 1);
    });
  }
});

/** An image of `size` bytes, half random 64 KiB blocks and half zeros. */
function image(size: number, seed: number): Uint8Array {
  const data = new Uint8Array(size);
  let x = seed >>> 0;
  const rand = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  for (let at = 0; at < size; at += 65536) {
    if (rand() < 0.5) crypto.getRandomValues(data.subarray(at, at + 65536).subarray(0, 65536));
  }
  return data;
}

Deno.test("kill -9 at random times of a long gc: the snapshot left sends the same", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zsend-gc-kill-" });
  const MiB = 1 << 20;
  const a = image(64 * MiB, 1);
  const b = a.slice();
  b.set(image(32 * MiB, 2).subarray(0, 32 * MiB), 16 * MiB);
  await Deno.writeFile(`${dir}/a.img`, a);
  await Deno.writeFile(`${dir}/b.img`, b);
  const base = `${dir}/base`;
  const full = await ok(["image", "send", "--name", "t/vol@a", `${dir}/a.img`]);
  await Deno.writeFile(`${dir}/a.zs`, full.stdoutBytes);
  const incr = await ok([
    "image",
    "send",
    "--from",
    `${dir}/a.img`,
    "--name",
    "t/vol@b",
    `${dir}/b.img`,
  ]);
  await Deno.writeFile(`${dir}/b.zs`, incr.stdoutBytes);
  await ok(["recv", base, "bk/vol", `${dir}/a.zs`]);
  await ok(["recv", base, "bk/vol", `${dir}/b.zs`]);
  await ok(["destroy", base, "bk/vol@a"]);
  const sent = async (store: string) => {
    const r = await ok(["send", store, "bk/vol@b"]);
    return createHash("sha256").update(r.stdoutBytes).digest("hex");
  };
  const want = await sent(base);
  const fp = storeFingerprint(base);
  // How long a whole gc takes here, to spread the kills over it.
  const probe = `${dir}/probe`;
  await copyDir(base, probe);
  const t0 = performance.now();
  await ok(["gc", probe]);
  const span = performance.now() - t0;
  const cleanSize = packBytes(probe);
  assert(cleanSize < packBytes(base), "the gc gave nothing back");
  let killed = 0;
  for (let i = 0; i < 8; i++) {
    const work = `${dir}/w${i}`;
    await copyDir(base, work);
    const delay = span * (0.15 + 0.8 * Math.random());
    const code = await runZsendKilledAfter(["gc", work], delay);
    if (code !== 0) killed++;
    assertEquals(storeFingerprint(work), fp, `kill after ${delay.toFixed(0)} ms`);
    assertEquals(await sent(work), want, `kill after ${delay.toFixed(0)} ms`);
    await ok(["gc", work]);
    assertEquals(packBytes(work), cleanSize, `kill after ${delay.toFixed(0)} ms`);
    assertEquals(await sent(work), want);
    await Deno.remove(work, { recursive: true });
  }
  console.log(`a whole gc took ${span.toFixed(0)} ms here; ${killed} of 8 runs were killed`);
  assert(killed > 0, `no gc was killed in the middle (a gc takes ${span.toFixed(0)} ms)`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("gc unlinks the old packs only once readers that started before are done", async () => {
  const { store } = await destroyedStore();
  const reader = Store.open(store); // holds the readers' lock, as a running extract does
  let done = false;
  const gc = runZsend(["gc", store]).then((r) => {
    done = true;
    return r;
  });
  try {
    // The gc writes its new pack and switches the index, then waits.
    for (
      let i = 0;
      i < 100 && !Deno.readDirSync(`${store}/packs`).some((e) => e.name === "000002.pack");
      i++
    ) {
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 1000));
    assertEquals(done, false, "gc finished while a reader held the store");
    assert(
      Deno.statSync(`${store}/packs/000001.pack`).size > 0,
      "the old pack went under a reader",
    );
  } finally {
    reader.close();
  }
  const r = await gc;
  assertEquals(r.code, 0, r.stderr);
  assertEquals([...Deno.readDirSync(`${store}/packs`)].map((e) => e.name), ["000002.pack"]);
});

Deno.test("gc refuses to copy a block that does not match its hash, and changes nothing", async () => {
  const { store } = await destroyedStore();
  const s = Store.open(store);
  const at = s.stmt("SELECT pack, offset, length FROM blocks ORDER BY length DESC LIMIT 1")
    .get() as { pack: number; offset: number; length: number };
  s.close();
  const path = `${store}/packs/${String(at.pack).padStart(6, "0")}.pack`;
  const bytes = await Deno.readFile(path);
  bytes[at.offset + (at.length >> 1)]! ^= 0x40;
  await Deno.writeFile(path, bytes);
  const fp = storeFingerprint(store);
  const digest = await packsDigest(store);
  const r = await runZsend(["gc", store]);
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /^zsend gc: block \d+ \(pack 1, offset \d+\) does not match its hash/);
  assertEquals(storeFingerprint(store), fp);
  assertEquals(await packsDigest(store), digest);
});
