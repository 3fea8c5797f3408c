/**
 * The manifest of a mounted tree as the text of a fixture's `*.manifest.txt`, and a comparison
 * that shows where two manifests part.
 *
 * The lines come from `manifestOfDirectory` in `./manifest.ts` (one walker for the whole test
 * suite, written to the format of `/work/shared/fixtures/README.md` and
 * `scripts/make_streams.sh`); this module adds the file's exact text (one line a path, a
 * newline after each) and a readable difference.
 *
 * @module
 */

import { manifestOfDirectory } from "./manifest.ts";

/**
 * The manifest of everything under `dir` (not `dir` itself), byte for byte as
 * `make_streams.sh` writes a `*.manifest.txt`.
 *
 * @example
 * ```ts
 * import { treeManifest } from "./tree_manifest.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/d`);
 * await Deno.chmod(`${dir}/d`, 0o1777);
 * const text = await treeManifest(dir);
 * await Deno.remove(dir, { recursive: true });
 * if (!/^\.\/d d 1777 \d+ \d+\n$/.test(text)) throw new Error(text);
 * ```
 */
export async function treeManifest(dir: string): Promise<string> {
  const lines = await manifestOfDirectory(dir);
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}

/**
 * What differs between two manifests, as `-` lines (only in `expected`) and `+` lines (only in
 * `actual`), at most `limit` of them; empty when they are equal.
 *
 * @example
 * ```ts
 * import { manifestDiff } from "./tree_manifest.ts";
 * const d = manifestDiff("./a d 755 0 0\n./b d 755 0 0\n", "./a d 755 0 0\n./b d 700 0 0\n");
 * if (d.join("|") !== "- ./b d 755 0 0|+ ./b d 700 0 0") throw new Error(d.join("|"));
 * ```
 */
export function manifestDiff(expected: string, actual: string, limit = 20): string[] {
  const want = new Set(expected.split("\n").filter((l) => l !== ""));
  const got = new Set(actual.split("\n").filter((l) => l !== ""));
  const out: string[] = [];
  for (const l of want) if (!got.has(l)) out.push(`- ${l}`);
  for (const l of got) if (!want.has(l)) out.push(`+ ${l}`);
  if (out.length === 0 && expected !== actual) out.push("(same lines, different order or spacing)");
  return out.slice(0, limit);
}
