/**
 * Volumes through the store: an image as a volume stream into `zsend recv`, out again with
 * `zsend extract --image` (holes kept, only changed blocks written when the target holds the
 * older snapshot), and incrementals sent against a stored snapshot with `--from-store`.
 */

import { assert, assertEquals } from "@std/assert";
import { runZsend } from "./_run.ts";
import { listJson } from "./helpers/list_json.ts";

const MiB = 1 << 20;

/** A sparse image: random 16 KiB blocks here and there, holes elsewhere. */
async function makeImage(path: string, size: number, seed: number): Promise<Uint8Array> {
  const data = new Uint8Array(size);
  let x = seed >>> 0;
  const rand = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  for (let b = 0; b < size / 16384; b++) {
    if (rand() < 0.3) {
      crypto.getRandomValues(data.subarray(b * 16384, (b + 1) * 16384).subarray(0, 16384 / 2));
    }
  }
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  for (let off = 0; off < size; off += 16384) {
    const block = data.subarray(off, off + 16384);
    if (block.some((v) => v !== 0)) {
      await f.seek(off, Deno.SeekMode.Start);
      await f.write(block);
    }
  }
  await f.truncate(size);
  f.close();
  return data;
}

async function ok(args: string[], stdin?: Uint8Array): Promise<Uint8Array> {
  const r = await runZsend(args, stdin === undefined ? {} : { stdin });
  assertEquals(r.code, 0, `zsend ${args.join(" ")}: ${r.stderr}`);
  return r.stdoutBytes;
}

Deno.test("a volume goes into the store and out to an image, incrementally too", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zsend-vol-" });
  const store = `${dir}/store`;
  const a = await makeImage(`${dir}/a.img`, 8 * MiB, 1);
  const full = await ok(["image", "send", "--name", "tank/vol@a", `${dir}/a.img`]);
  await ok(["recv", store, "bk/vol", "-"], full);
  const list = await listJson(store);
  assertEquals(list.map((r) => [r.name, r.type]), [["bk/vol", "volume"], ["bk/vol@a", "snapshot"]]);

  await ok(["extract", "-q", store, "bk/vol@a", "--image", `${dir}/out.img`]);
  assertEquals(await Deno.readFile(`${dir}/out.img`), a);
  const st = await Deno.stat(`${dir}/out.img`);
  assert(st.blocks !== null && st.blocks * 512 < 8 * MiB * 0.5, `holes kept: ${st.blocks} blocks`);

  // A changed copy, sent against the stored snapshot, received as an incremental.
  const b = a.slice();
  b.fill(7, 16384 * 3, 16384 * 4);
  b.fill(0, 0, 16384 * 3);
  const fb = await Deno.open(`${dir}/b.img`, { write: true, create: true });
  await fb.write(b);
  fb.close();
  const incr = await ok([
    "image",
    "send",
    "--from-store",
    store,
    "bk/vol@a",
    "--name",
    "tank/vol@b",
    `${dir}/b.img`,
  ]);
  const dump = new TextDecoder().decode(await ok(["dump", "-v", "-"], incr));
  const writes = dump.split("\n").filter((l) => l.startsWith("WRITE ")).length;
  assert(writes <= 2, `only the changed blocks: ${writes} WRITE records\n${dump}`);
  await ok(["recv", store, "bk/vol", "-"], incr);
  // The image holds @a (its guid sidecar says so): only what changed is written.
  const r = await runZsend(["extract", store, "bk/vol@b", "--image", `${dir}/out.img`]);
  assertEquals(r.code, 0, r.stderr);
  assert(/only changes/.test(r.stdout), r.stdout);
  assertEquals(await Deno.readFile(`${dir}/out.img`), b);
  await Deno.remove(dir, { recursive: true });
});
