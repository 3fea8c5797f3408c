/**
 * What a store gives out for its snapshots: for each, the bytes of `zsend send` (full, and
 * incremental from the snapshot before it) and the manifest of its extracted tree. Two equal
 * results mean every snapshot still reads and sends the same.
 *
 * @module
 */

import { assertEquals } from "@std/assert";
import { createHash } from "node:crypto";
import { runZsend } from "../_run.ts";
import { treeManifest } from "./tree_manifest.ts";
import { snapshotNames } from "./list_json.ts";

/**
 * Snapshot name -> sha256 of its full send and its extracted tree; `A -> B` -> sha256 of the
 * incremental send from A to B, for each snapshot and the one before it in its dataset.
 */
export async function snapshotOutputs(store: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const names = await snapshotNames(store);
  const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");
  for (const [i, name] of names.entries()) {
    const full = await runZsend(["send", store, name]);
    assertEquals(full.code, 0, `send ${name}: ${full.stderr}`);
    const before = names[i - 1];
    if (before !== undefined && before.split("@")[0] === name.split("@")[0]) {
      const incr = await runZsend(["send", "-i", before, store, name]);
      assertEquals(incr.code, 0, `send -i ${before} ${name}: ${incr.stderr}`);
      out[`${before} -> ${name}`] = sha(incr.stdoutBytes);
    }
    const dir = `${await Deno.makeTempDir({ prefix: "zsend-out-" })}/tree`;
    try {
      const x = await runZsend(["extract", "-q", store, name, dir]);
      assertEquals(x.code, 0, `extract ${name}: ${x.stderr}`);
      out[name] = sha(full.stdoutBytes) + " " + sha(await treeManifest(dir));
    } finally {
      await Deno.remove(dir.slice(0, -"/tree".length), { recursive: true });
    }
  }
  return out;
}

/**
 * Asserts that every output of `before` that does not involve the snapshots destroyed is in
 * `after`, the same.
 */
export function assertSameOutputs(
  after: Record<string, string>,
  before: Record<string, string>,
  destroyed: string[],
): void {
  const involves = (key: string) => key.split(" -> ").some((n) => destroyed.includes(n));
  const kept = Object.fromEntries(Object.entries(before).filter(([k]) => !involves(k)));
  const seen = Object.fromEntries(Object.entries(after).filter(([k]) => k in kept));
  assertEquals(seen, kept);
  assertEquals(Object.keys(after).filter((k) => !k.includes(" -> ") && !(k in kept)), []);
}

/** Bytes of every file under a directory (a store's packs, its index). */
export function bytesUnder(dir: string): number {
  let n = 0;
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    n += e.isDirectory ? bytesUnder(p) : e.isFile ? Deno.statSync(p).size : 0;
  }
  return n;
}

/** Each pack file's name and sha256: what a destroy -n or gc -n must leave as it was. */
export async function packsDigest(store: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of Deno.readDirSync(`${store}/packs`)) {
    out[e.name] = createHash("sha256").update(await Deno.readFile(`${store}/packs/${e.name}`))
      .digest("hex");
  }
  return out;
}
