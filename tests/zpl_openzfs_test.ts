/**
 * The ZPL layer against streams made by modern OpenZFS (ZPL version 5: system attributes in
 * bonus buffers and spill blocks, SA xattrs, embedded LZ4 blocks, LZ4-compressed writes,
 * dedup WRITE_BYREF across the substreams of a `-R` stream, 16 MiB blocks, redaction, zstd).
 *
 * The streams are OpenZFS's own test files, read in place from ZSEND_OPENZFS_FIXTURES (default
 * `../shared/fixtures/openzfs`) and never copied into the repository; the tests skip, saying
 * so, when the folder is absent (and fail under CI=true).
 *
 * What the trees must hold comes from OpenZFS: `fs.tar.gz` is the tree of the dedup stream;
 * the other streams were made by `tests/zfs-tests/tests/functional/zstream/
 * test-stream-creation-scripts/` (files of one lorem paragraph repeated and joined by blank
 * lines, xattrs `user.<adjective>-<noun>` of exactly 1024 value bytes per file, `small` holding
 * "very small\n", `to-be-redacted` of mode 0400 holding "password\n" and redacted).
 */

import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { openzfsDir, skipNote, unpackBz2 } from "./_fixtures.ts";
import { manifestOfDirectory, manifestOfFilesystem, sortManifest } from "./helpers/manifest.ts";
import { type MemoryView, receiveFull, receiveStream } from "./helpers/memory_view.ts";
import { type WalkEntry, ZplFilesystem } from "../core/zpl/fs.ts";

const dir = openzfsDir();
if (dir === null) {
  skipNote("ZPL tests on OpenZFS streams", "no OpenZFS fixtures (set ZSEND_OPENZFS_FIXTURES)");
}

async function stream(name: string): Promise<Uint8Array> {
  return await Deno.readFile(await unpackBz2(`${dir}/${name}.zsend.bz2`));
}

async function walkAll(fs: ZplFilesystem): Promise<WalkEntry[]> {
  return await Array.fromAsync(fs.walk());
}

/** What gen-lorem-files.py writes: one paragraph, repeated, joined by blank lines, then "\n". */
function assertLorem(text: string, what: string): void {
  assert(text.endsWith("\n"), `${what} does not end with a newline`);
  const paras = text.slice(0, -1).split("\n\n");
  assert(paras.length >= 1 && paras[0]!.length > 20, `${what}: no paragraph`);
  assert(paras.every((p) => p === paras[0]), `${what} is not one paragraph repeated`);
  assertMatch(paras[0]!, /^[A-Z][A-Za-z ,.?]+$/, `${what}: not lorem text`);
}

const ignore = dir === null;

Deno.test({
  name: "ZplFilesystem: OpenZFS dedup.zsend (-R -D) extracts to exactly fs.tar.gz",
  ignore,
  async fn() {
    const views = await receiveStream([await stream("dedup")]);
    assertEquals(views.map((v) => v.toname), ["test/fs@snap", "test/fs/subfs@snap"]);
    const parent = await ZplFilesystem.open(views[0]!);
    const child = await ZplFilesystem.open(views[1]!);
    assertEquals([parent.version, child.version], [5, 5]);
    assert(parent.saTable !== null);

    // The child is mounted at subfs: its files appear under ./subfs, its root is ./subfs.
    const childRoot = await child.stat(child.root());
    const parentLines = await manifestOfFilesystem(parent);
    const subfs = parentLines.find((l) => l.startsWith("./subfs d "));
    assertEquals(
      subfs,
      `./subfs d ${childRoot.perm.toString(8)} ${childRoot.uid} ${childRoot.gid}`,
    );
    const ours = sortManifest([
      ...parentLines,
      ...await manifestOfFilesystem(child, { prefix: "./subfs" }),
    ]);

    const tmp = await Deno.makeTempDir({ prefix: "zpl-tar-" });
    try {
      const tar = await new Deno.Command("tar", {
        args: ["-xzf", `${dir}/fs.tar.gz`, "-C", tmp, "--numeric-owner"],
        stderr: "piped",
      }).output();
      assert(tar.success, new TextDecoder().decode(tar.stderr));
      let theirs = await manifestOfDirectory(`${tmp}/fs`);
      let mine = ours;
      if (Deno.uid() !== 0) {
        // Only root can give extracted files their owners: compare the rest.
        const noOwner = (l: string) => l.replace(/^(\S+ \S+ \S+) \d+ \d+/, "$1 - -");
        theirs = theirs.map(noOwner);
        mine = mine.map(noOwner);
      }
      assertEquals(mine, theirs);
      assertEquals(ours.length, 15);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

for (const variant of ["NATIVE", "XDR"]) {
  Deno.test({
    name: `ZplFilesystem: OpenZFS all-drr-types-base-${variant} (SA spill, SA xattrs, embedded, ` +
      "LZ4 writes, redaction)",
    ignore,
    async fn() {
      const view: MemoryView = await receiveFull([
        await stream(`little-endian-all-drr-types-base-${variant}`),
      ]);
      const fs = await ZplFilesystem.open(view);
      assertEquals(fs.version, 5);
      const entries = await walkAll(fs);
      const names = entries.slice(1).map((e) => e.path.slice(2));
      assertEquals(names.length, 5);
      const lorem = names.filter((n) => n !== "small" && n !== "to-be-redacted");
      assertEquals(lorem.length, 3);
      for (const e of entries.slice(1)) {
        const name = e.path.slice(2);
        const i = e.inode;
        assertEquals([i.kind, i.links, i.uid, i.gid], ["file", 1, 0, 0], name);
        assert(i.sa, `${name}: attributes not in SA`);
        if (name === "small") {
          assertEquals(new TextDecoder().decode(await fs.readAll(i.object)), "very small\n");
          assertEquals(i.perm, 0o644);
          assertEquals(await fs.xattrs(i.object), []);
        } else if (name === "to-be-redacted") {
          assertEquals([i.perm, i.size], [0o400, 9]);
          await assertRejects(() => fs.readAll(i.object), TypeError, "redacted");
        } else {
          assertMatch(name, /^[a-z]+-[a-z]+(-\d+)?$/);
          assert(i.size >= 2048, `${name}: ${i.size} bytes`);
          assertLorem(new TextDecoder().decode(await fs.readAll(i.object)), name);
          // The xattrs overflow the bonus: the spill block holds part of the attributes.
          assert((await view.object(i.object))!.spill !== null, `${name} has no spill block`);
          const xattrs = await fs.xattrs(i.object);
          assert(xattrs.length >= 5, `${name}: ${xattrs.length} xattrs`);
          let total = 0;
          for (const x of xattrs) {
            assertEquals(x.source, "sa");
            assertMatch(x.name, /^user\.[a-z]+-[a-z]+(-\d+)?$/);
            assertMatch(new TextDecoder().decode(x.value), /^[ -~]*$/, x.name);
            total += x.value.length;
          }
          assertEquals(total, 1024, `${name}: xattr value bytes`);
        }
      }
    },
  });
}

Deno.test({
  name: "ZplFilesystem: OpenZFS decompress.zsend: zstd-compressed files read whole",
  ignore,
  async fn() {
    const fs = await ZplFilesystem.open(await receiveFull([await stream("decompress")]));
    const files = (await walkAll(fs)).slice(1);
    assertEquals(files.length, 3);
    for (const f of files) {
      assertEquals(f.inode.kind, "file");
      const data = await fs.readAll(f.inode.object);
      assertEquals(data.length, f.inode.size);
      assertLorem(new TextDecoder().decode(data), f.path);
    }
  },
});

Deno.test({
  name: "ZplFilesystem: OpenZFS long-payloads (16 MiB blocks) reads whole files",
  ignore,
  async fn() {
    const view = await receiveFull([await stream("little-endian-long-payloads")]);
    const fs = await ZplFilesystem.open(view);
    const files = (await walkAll(fs)).slice(1);
    assertEquals(files.length, 3);
    const sizes = files.map((f) => f.inode.size).sort((a, b) => a - b);
    assert(sizes[0]! >= 20000 && sizes[0]! < 30000, `${sizes}`);
    assert(sizes[1]! >= 8500000 && sizes[1]! < 8600000, `${sizes}`);
    assert(sizes[2]! >= 24500000 && sizes[2]! < 24600000, `${sizes}`);
    let sawLargeBlock = false;
    for (const f of files) {
      const info = (await view.object(f.inode.object))!;
      if (info.blksz === 16 * 1024 * 1024) sawLargeBlock = true;
      assertLorem(new TextDecoder().decode(await fs.readAll(f.inode.object)), f.path);
    }
    assert(sawLargeBlock, "no 16 MiB block");
  },
});
