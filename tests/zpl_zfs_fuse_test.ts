/**
 * The ZPL layer against streams made by real zfs-fuse (pool version 23, ZPL version 4: znode
 * bonus buffers, micro ZAPs; fresh streams add a fat-ZAP directory of 3000 entries, devices,
 * a fifo, UTF-8 names): each received into memory must walk to exactly the tree that the
 * snapshot held, as listed in its manifest (path, type, mode, owner, size, links, mtime,
 * SHA-256, symlink target, device numbers).
 */

import { assert, assertEquals, assertRejects } from "@std/assert";
import { IN_CI, skipNote, ZFS_FUSE_DIR } from "./_fixtures.ts";
import { manifestOfFilesystem, parseManifest } from "./helpers/manifest.ts";
import { type MemoryView, receiveFull, receiveStream } from "./helpers/memory_view.ts";
import { ZplError } from "../core/zpl/znode.ts";
import { ZplFilesystem } from "../core/zpl/fs.ts";

async function expectedLines(path: string): Promise<string[]> {
  const text = await Deno.readTextFile(path);
  parseManifest(text); // every line must parse
  return text.split("\n").filter((l) => l !== "");
}

async function fixtureView(name: string): Promise<MemoryView> {
  return await receiveFull([await Deno.readFile(`${ZFS_FUSE_DIR}/${name}.zstream`)]);
}

async function pathOf(fs: ZplFilesystem, path: string): Promise<number> {
  for await (const w of fs.walk()) if (w.path === path) return w.inode.object;
  throw new Error(`${path} not found`);
}

Deno.test("ZplFilesystem: zfs-fuse fs-s1.full.zstream is exactly fs-s1.manifest.txt", async () => {
  const fs = await ZplFilesystem.open(await fixtureView("fs-s1.full"));
  assertEquals(fs.version, 4);
  assertEquals(fs.saTable, null);
  assertEquals(
    await manifestOfFilesystem(fs),
    await expectedLines(`${ZFS_FUSE_DIR}/fs-s1.manifest.txt`),
  );
});

Deno.test("ZplFilesystem: zfs-fuse fs-s2.dedup.zstream (WRITE_BYREF) is exactly fs-s2.manifest.txt", async () => {
  const fs = await ZplFilesystem.open(await fixtureView("fs-s2.dedup"));
  assertEquals(
    await manifestOfFilesystem(fs),
    await expectedLines(`${ZFS_FUSE_DIR}/fs-s2.manifest.txt`),
  );
});

Deno.test("ZplFilesystem: the full substream of zfs-fuse fs-r1.replicate.zstream is fs@s1", async () => {
  const views = await receiveStream([
    await Deno.readFile(`${ZFS_FUSE_DIR}/fs-r1.replicate.zstream`),
  ], {
    incremental: "skip",
  });
  assertEquals(views.map((v) => v.toname), ["fx1/fs@s1", "fx1/fs/child@r1"]);
  const fs = await ZplFilesystem.open(views[0]!);
  assertEquals(
    await manifestOfFilesystem(fs),
    await expectedLines(`${ZFS_FUSE_DIR}/fs-s1.manifest.txt`),
  );
  const child = await ZplFilesystem.open(views[1]!);
  const names = [];
  for await (const w of child.walk()) names.push(w.path);
  assertEquals(names, [".", "./c.txt"]);
});

Deno.test("ZplFilesystem: fs-s1 details: holes, symlink storage, hard links, modes, times", async () => {
  const view = await fixtureView("fs-s1.full");
  const fs = await ZplFilesystem.open(view);

  // The 5 MiB sparse file: one 4-byte piece at its end, nothing for the holes.
  const sparse = await fs.stat(await pathOf(fs, "./sparse"));
  assertEquals(sparse.size, 5242884);
  const pieces = await Array.fromAsync(fs.readFile(sparse.object));
  assertEquals(pieces.map((p) => [p.offset, p.data.length]), [[5242880, 4]]);

  // A short target lives in the bonus, a 200-byte one in data block 0.
  const short = await fs.stat(await pathOf(fs, "./docs/link-to-hello"));
  assertEquals((await view.object(short.object))!.bonuslen, 264 + 12);
  assertEquals(await fs.readlink(short.object), "../hello.txt");
  const long = await fs.stat(await pathOf(fs, "./longlink"));
  assertEquals((await view.object(long.object))!.bonuslen, 264);
  assertEquals(await fs.readlink(long.object), "t".repeat(200));

  // The hard link: one object, two names, two links; its mtime is 2001-02-03 04:05:06 UTC.
  const a = await pathOf(fs, "./hello.txt");
  assertEquals(await pathOf(fs, "./docs/hardlink"), a);
  const hello = await fs.stat(a);
  assertEquals(hello.links, 2);
  assertEquals(hello.mtime.sec, Date.UTC(2001, 1, 3, 4, 5, 6) / 1000);
  assertEquals(new TextDecoder().decode(await fs.readAll(a)).length, 13);

  const empty = await fs.stat(await pathOf(fs, "./empty"));
  assertEquals([empty.kind, empty.perm, empty.mode], ["dir", 0o1777, 0o41777]);
  const small = await fs.stat(await pathOf(fs, "./docs/deep/deeper/small.bin"));
  assertEquals([small.uid, small.gid], [1001, 2002]);
  assertEquals((await fs.stat(fs.root())).parent, fs.root());
  assertEquals(await fs.xattrs(a), []);

  // Wrong kinds are refused.
  await assertRejects(() => fs.readlink(a), ZplError, "not a symlink");
  await assertRejects(() => fs.readdir(a), ZplError, "not a directory");
  await assertRejects(
    () => Array.fromAsync(fs.readFile(fs.root())),
    ZplError,
    "not a regular file",
  );
  await assertRejects(() => fs.stat(999), ZplError, "does not exist");
});

// ------------------------------------------------------------------------------------------
// Fresh streams from zfs-fuse (scripts/make_streams.sh), when the daemon runs.
// ------------------------------------------------------------------------------------------

const freshAvailable = (() => {
  try {
    return Deno.env.get("ZSEND_ZFS_FUSE") === "1";
  } catch {
    return false;
  }
})();
if (!freshAvailable) {
  skipNote(
    "ZPL tests on fresh zfs-fuse streams",
    "ZSEND_ZFS_FUSE is not 1 (run scripts/test.sh as root with /dev/fuse)",
  );
}

Deno.test({
  name: "ZplFilesystem: fresh zfs-fuse streams (fat ZAPs, devices, fifo) match their manifests",
  ignore: !freshAvailable && !IN_CI,
  sanitizeResources: false,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "zpl-fresh-" });
    try {
      const root = new URL("..", import.meta.url).pathname;
      const run = await new Deno.Command("bash", {
        args: [`${root}scripts/make_streams.sh`, out],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert(run.success, new TextDecoder().decode(run.stderr));
      const cases: [string, number, string][] = [
        ["full-a", 0, "fs-a"],
        ["dedup-b", 0, "fs-b"],
      ];
      for (const [stream, index, manifest] of cases) {
        const views = await receiveStream([await Deno.readFile(`${out}/${stream}.zstream`)]);
        const fs = await ZplFilesystem.open(views[index]!);
        assertEquals(
          await manifestOfFilesystem(fs),
          await expectedLines(`${out}/${manifest}.manifest.txt`),
          stream,
        );
      }
      // The recursive stream: fs@a is its first (full) substream, fs/child@r a full one too.
      const views = await receiveStream([await Deno.readFile(`${out}/replicate-r.zstream`)], {
        incremental: "skip",
      });
      const byName = new Map(
        views.map((v) => [v.toname.split("@")[1] + ":" + v.toname.includes("/child"), v]),
      );
      const fsA = await ZplFilesystem.open(byName.get("a:false")!);
      assertEquals(
        await manifestOfFilesystem(fsA),
        await expectedLines(`${out}/fs-a.manifest.txt`),
      );
      const child = await ZplFilesystem.open(byName.get("r:true")!);
      assertEquals(
        await manifestOfFilesystem(child),
        await expectedLines(`${out}/fs-child-r.manifest.txt`),
      );
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "ZplFilesystem: a zfs-fuse directory whose fat ZAP has an external pointer table",
  ignore: !freshAvailable && !IN_CI,
  sanitizeResources: false,
  async fn() {
    // 2^10 leaves fill the pointer table embedded in a 16 KiB header block; long names fill
    // leaves fast, so 60000 of them need more leaves and a pointer table block of its own.
    const count = 60000;
    const nameOf = (i: number) => `${String(i).padStart(6, "0")}-${"q".repeat(240)}`;
    const tmp = await Deno.makeTempDir({ prefix: "zpl-bigdir-" });
    const pool = `zplbig${Deno.pid}`;
    const sh = async (cmd: string) => {
      const out = await new Deno.Command("bash", { args: ["-c", cmd], stderr: "piped" }).output();
      if (!out.success) throw new Error(`${cmd}: ${new TextDecoder().decode(out.stderr)}`);
    };
    try {
      await sh(`truncate -s 1G ${tmp}/disk && zpool create -m none ${pool} ${tmp}/disk`);
      await sh(`zfs create -o mountpoint=${tmp}/mnt ${pool}/fs && mkdir ${tmp}/mnt/d`);
      for (let i = 0; i < count; i++) {
        (await Deno.open(`${tmp}/mnt/d/${nameOf(i)}`, { create: true, write: true })).close();
      }
      await sh(`zfs snapshot ${pool}/fs@x && zfs send ${pool}/fs@x > ${tmp}/x.zstream`);
      const view = await receiveFull([await Deno.readFile(`${tmp}/x.zstream`)]);
      await Deno.remove(`${tmp}/x.zstream`);
      const fs = await ZplFilesystem.open(view);
      const [d] = await fs.readdir(fs.root());
      const header = (await view.readBlock(d!.object, 0))!;
      const numblks = new DataView(header.buffer, header.byteOffset).getBigUint64(24, true);
      assert(numblks > 0n, "the pointer table is still embedded: make more entries");
      const names = (await fs.readdir(d!.object)).map((e) => e.name);
      assertEquals(names.length, count);
      for (let i = 0; i < count; i++) assertEquals(names[i], nameOf(i));
    } finally {
      // zfs-fuse can stay busy for a moment after a send: try again, as make_streams.sh does.
      await sh(
        `for i in $(seq 20); do zpool list ${pool} >/dev/null 2>&1 || exit 0; ` +
          `zpool destroy -f ${pool} 2>/dev/null && exit 0; sleep 0.5; done; exit 1`,
      );
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
