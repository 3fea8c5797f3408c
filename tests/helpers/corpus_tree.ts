/**
 * Trees compared with the OpenZFS corpus's manifest of a snapshot (tree, xattrs and ACLs): one
 * that `zsend extract` writes, or one that the guest wrote the manifest of.
 */

import { assertEquals } from "@std/assert";
import { attrsDiff, attrsOfManifest, attrsOfTree, corpusManifest } from "../_openzfs.ts";
import { runZsend } from "../_run.ts";
import { manifestDiff, treeManifest } from "./tree_manifest.ts";

/** Extracts with `args` (STORE SNAPSHOT, keys) into a new DIR and compares it with `key`'s. */
export async function expectCorpusTree(args: string[], key: string): Promise<void> {
  const base = await Deno.makeTempDir({ prefix: "zsend-tree-" });
  const dir = `${base}/tree`;
  try {
    const r = await runZsend(["extract", "-q", ...args, dir]);
    assertEquals(r.code, 0, `zsend extract ${args.join(" ")}: ${r.stderr}`);
    const manifest = corpusManifest(key);
    const diff = manifestDiff(await Deno.readTextFile(manifest), await treeManifest(dir), 30);
    assertEquals(diff, [], `${key} vs ${manifest}:\n${diff.join("\n")}`);
    const attrs = attrsDiff(await attrsOfManifest(manifest), await attrsOfTree(dir));
    assertEquals(attrs, [], `xattrs and ACLs of ${key}:\n${attrs.join("\n")}`);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

/**
 * Where the tree the guest wrote `manifest` (and its xattrs and ACLs beside it) of differs from
 * the corpus's snapshot `key`: one line per difference, each led by `what`.
 */
export async function guestTreeDiff(
  manifest: string,
  key: string,
  what: string,
): Promise<string[]> {
  const want = corpusManifest(key);
  const diff = manifestDiff(await Deno.readTextFile(want), await Deno.readTextFile(manifest), 10);
  const attrs = attrsDiff(await attrsOfManifest(want), await attrsOfManifest(manifest));
  return [...diff, ...attrs].map((l) => `${what} vs ${key}: ${l}`);
}
