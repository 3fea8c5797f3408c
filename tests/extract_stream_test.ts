/**
 * `zsend extract --stream`: which snapshot several streams make, and that the summary says
 * it. Real streams only: the zfs-fuse fixtures (full, `-I`, `-R`).
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { ZFS_FUSE_DIR } from "./_fixtures.ts";
import { runZsend } from "./_run.ts";
import { manifestOfDirectory } from "./helpers/manifest.ts";

const F = (n: string) => `${ZFS_FUSE_DIR}/${n}.zstream`;
const isRoot = Deno.uid() === 0;

/** Lines of a manifest, with owners dropped when not root (they cannot be applied then). */
function comparable(lines: string[]): string[] {
  if (isRoot) return lines;
  return lines.map((l) => {
    const f = l.split(" ");
    f[3] = "-";
    f[4] = "-";
    return f.join(" ");
  });
}

async function manifest(name: string): Promise<string[]> {
  return (await Deno.readTextFile(`${ZFS_FUSE_DIR}/${name}.manifest.txt`)).trimEnd().split("\n");
}

/** Runs `extract --stream ARGS... DIR`; returns its summary line and the tree's manifest. */
async function extractStreams(args: string[]): Promise<{ line: string; tree: string[] }> {
  const dir = `${await Deno.makeTempDir({ prefix: "zsend-xs-" })}/tree`;
  try {
    const r = await runZsend(["extract", "--stream", ...args, dir]);
    assertEquals(r.code, 0, r.stderr);
    return { line: r.stdout.trim(), tree: await manifestOfDirectory(dir) };
  } finally {
    await Deno.remove(dir.slice(0, -5), { recursive: true });
  }
}

Deno.test("extract --stream of a full and an -I stream gives the last snapshot, s3", async () => {
  const { line, tree } = await extractStreams([F("fs-s1.full"), F("fs-s1-s3.incrI")]);
  assertMatch(line, /^fx1\/fs@s3 \(the last snapshot the streams make\) -> /);
  assertEquals(comparable(tree), comparable(await manifest("fs-s3")));
});

Deno.test("extract --stream --snapshot takes SNAP, @SNAP and the stream's full name", async () => {
  const files = [F("fs-s1.full"), F("fs-s1-s3.incrI")];
  for (const name of ["s2", "@s2", "fx1/fs@s2"]) {
    const { line, tree } = await extractStreams(["--snapshot", name, ...files]);
    assertMatch(line, /^fx1\/fs@s2 -> /);
    assertEquals(comparable(tree), comparable(await manifest("fs-s2")), name);
  }
  const { line, tree } = await extractStreams(["--snapshot", "s1", ...files]);
  assertMatch(line, /^fx1\/fs@s1 -> /);
  assertEquals(comparable(tree), comparable(await manifest("fs-s1")));
});

Deno.test("extract --stream of the -R stream gives its top dataset's last snapshot, r1", async () => {
  const { line, tree } = await extractStreams([F("fs-r1.replicate")]);
  assertMatch(line, /^fx1\/fs@r1 \(the last snapshot the streams make\) -> /);
  // The same tree as r1 received into a store and extracted from there.
  const tmp = await Deno.makeTempDir({ prefix: "zsend-xs-" });
  try {
    assertEquals((await runZsend(["recv", "-d", `${tmp}/s`, "rep", F("fs-r1.replicate")])).code, 0);
    const x = await runZsend(["extract", "-q", `${tmp}/s`, "rep/fs@r1", `${tmp}/t`]);
    assertEquals(x.code, 0, x.stderr);
    assertEquals(tree, await manifestOfDirectory(`${tmp}/t`));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  const child = await extractStreams(["--snapshot", "fx1/fs/child@r1", F("fs-r1.replicate")]);
  assertMatch(child.line, /^fx1\/fs\/child@r1 -> .*: 1 files/);
});

Deno.test("extract --stream --snapshot of a snapshot the streams do not make fails", async () => {
  const dir = `${await Deno.makeTempDir({ prefix: "zsend-xs-" })}/tree`;
  const r = await runZsend(["extract", "--stream", "--snapshot", "s9", F("fs-s1.full"), dir]);
  assertEquals(r.code, 1);
  assertMatch(
    r.stderr,
    /^zsend extract: --snapshot s9: the streams make no such snapshot \(they make fx1\/fs@s1\)\n$/,
  );
  assert(!r.stderr.includes("    at "));
});
