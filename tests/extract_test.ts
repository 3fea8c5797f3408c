/**
 * Receive, then extract: every snapshot, written to disk by `zsend extract`, equals the tree
 * the snapshot held (path, type, mode, owner, size, link count, mtime, content, symlink
 * target). Real streams only: the zfs-fuse fixtures, fresh zfs-fuse streams, OpenZFS's dedup
 * stream against its tar.
 */

import { assert, assertEquals } from "@std/assert";
import { openzfsDir, unpackBz2, ZFS_FUSE_DIR } from "./_fixtures.ts";
import { freshStreams, freshUnavailable } from "./_fresh.ts";
import { runZsend } from "./_run.ts";
import { manifestOfDirectory } from "./helpers/manifest.ts";
import { snapshotNames } from "./helpers/list_json.ts";

const isRoot = Deno.uid() === 0;

async function tmp(prefix: string): Promise<string> {
  return await Deno.makeTempDir({ prefix });
}

async function ok(args: string[]): Promise<string> {
  const r = await runZsend(args);
  assertEquals(r.code, 0, `zsend ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

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

async function expectTree(store: string, snap: string, manifestFile: string): Promise<void> {
  const dir = `${await tmp("zsend-x-")}/tree`;
  await ok(["extract", "-q", store, snap, dir]);
  const want = (await Deno.readTextFile(manifestFile)).trimEnd().split("\n");
  const got = await manifestOfDirectory(dir);
  assertEquals(comparable(got), comparable(want), `${snap} vs ${manifestFile}`);
  await Deno.remove(dir, { recursive: true });
}

Deno.test("zsend extract of every zfs-fuse fixture snapshot equals its manifest", async () => {
  const store = `${await tmp("zsend-s-")}/s`;
  const F = (n: string) => `${ZFS_FUSE_DIR}/${n}.zstream`;
  await ok(["recv", store, "bk/fs", F("fs-s1.full")]);
  await ok(["recv", store, "bk/fs", F("fs-s1-s2.incr")]);
  await ok(["recv", store, "bk/fs", F("fs-s2-s3.incr")]);
  await ok(["recv", store, "bk/clone", F("clone-s2-c1.clone")]);
  await ok(["recv", store, "dd/fs", F("fs-s2.dedup")]);
  await ok(["recv", "-d", store, "rep", F("fs-r1.replicate")]);
  await ok(["recv", store, "ii/fs", F("fs-s1.full")]);
  await ok(["recv", store, "ii/fs", F("fs-s1-s3.incrI")]);
  const M = (n: string) => `${ZFS_FUSE_DIR}/${n}.manifest.txt`;
  for (
    const [snap, manifest] of [
      ["bk/fs@s1", "fs-s1"],
      ["bk/fs@s2", "fs-s2"],
      ["bk/fs@s3", "fs-s3"],
      ["bk/clone@c1", "clone-c1"],
      ["dd/fs@s2", "fs-s2"],
      ["rep/fs@s1", "fs-s1"],
      ["rep/fs@s3", "fs-s3"],
      ["ii/fs@s2", "fs-s2"],
      ["ii/fs@s3", "fs-s3"],
    ]
  ) await expectTree(store, snap!, M(manifest!));
  // cat and ls agree with the tree.
  const cat = await runZsend(["cat", store, "bk/fs@s1", "/hello.txt"]);
  assertEquals(cat.code, 0, cat.stderr);
  const ls = await ok(["ls", store, "bk/fs@s1", "/"]);
  assert(ls.includes(" hello.txt"), ls);
});

Deno.test("zsend extract --stream works from stream files without a store", async () => {
  const dir = `${await tmp("zsend-x-")}/tree`;
  await ok([
    "extract",
    "-q",
    "--stream",
    `${ZFS_FUSE_DIR}/fs-s1.full.zstream`,
    `${ZFS_FUSE_DIR}/fs-s1-s2.incr.zstream`,
    dir,
  ]);
  const want = (await Deno.readTextFile(`${ZFS_FUSE_DIR}/fs-s2.manifest.txt`)).trimEnd().split(
    "\n",
  );
  assertEquals(comparable(await manifestOfDirectory(dir)), comparable(want));
});

const why = freshUnavailable();
Deno.test({
  name: "fresh zfs-fuse streams received and extracted equal the mounted snapshots",
  ignore: why !== null,
  async fn(t) {
    const fresh = await freshStreams();
    const store = `${await tmp("zsend-s-")}/s`;
    const S = (n: string) => `${fresh.dir}/${n}`;
    await ok(["recv", store, "bk/fs", S("full-a.zstream")]);
    await ok(["recv", store, "bk/fs", S("incr-a-b.zstream")]);
    await ok(["recv", store, "bk/fs", S("incr-b-c.zstream")]);
    await ok(["recv", store, "bk/clone", S("clone-b-c1.zstream")]);
    await ok(["recv", store, "dd/fs", S("dedup-b.zstream")]);
    await ok(["recv", "-d", store, "rep", S("replicate-r.zstream")]);
    const man = (key: string) => `${fresh.dir}/${fresh.info.snapshots[key]!.manifest}`;
    for (
      const [snap, key] of [
        ["bk/fs@a", "fs@a"],
        ["bk/fs@b", "fs@b"],
        ["bk/fs@c", "fs@c"],
        ["bk/clone@c1", "clone@c1"],
        ["dd/fs@b", "fs@b"],
        ["rep/fs@r", "fs@r"],
        ["rep/fs/child@r", "fs/child@r"],
      ]
    ) {
      await t.step(snap!, () => expectTree(store, snap!, man(key!)));
    }
  },
});
if (why !== null) console.log(`SKIPPED fresh-stream extraction: ${why}`);

const ozfs = openzfsDir();
Deno.test({
  name: "OpenZFS dedup.zsend received with -d extracts to the tree of fs.tar.gz",
  ignore: ozfs === null,
  async fn() {
    const stream = await unpackBz2(`${ozfs}/dedup.zsend.bz2`);
    const store = `${await tmp("zsend-s-")}/s`;
    await ok(["recv", "-d", store, "pool", stream]);
    const list = await snapshotNames(store);
    assert(list.includes("pool/fs@snap") && list.includes("pool/fs/subfs@snap"), list.join());
    const tarDir = await tmp("zsend-tar-");
    const untar = await new Deno.Command("tar", {
      args: ["-xzf", `${ozfs}/fs.tar.gz`, "-C", tarDir],
    })
      .output();
    assert(untar.success);
    // The tar holds fs/ with subfs/ inside; the snapshot of fs has subfs as an empty mount point.
    const out = `${await tmp("zsend-x-")}`;
    await ok(["extract", "-q", store, "pool/fs@snap", `${out}/fs`]);
    await ok(["extract", "-q", store, "pool/fs/subfs@snap", `${out}/subfs`]);
    const roots = [...Deno.readDirSync(tarDir)].map((e) => e.name);
    const top = roots.length === 1 ? `${tarDir}/${roots[0]}` : tarDir;
    const contentOnly = (lines: string[]) =>
      lines.filter((l) => / f /.test(l)).map((l) => {
        const f = l.split(" ");
        return `${f[0]} ${f[5]} ${f[8]}`;
      });
    const want = contentOnly(await manifestOfDirectory(top));
    const got = [
      ...contentOnly(await manifestOfDirectory(`${out}/fs`)),
      ...contentOnly(await manifestOfDirectory(`${out}/subfs`)).map((l) =>
        l.replace(/^\.\//, "./subfs/")
      ),
    ].sort();
    assertEquals(got, want.sort());
  },
});

Deno.test({
  name: "zsend extract applies SA extended attributes of an OpenZFS snapshot",
  ignore: ozfs === null,
  async fn() {
    const stream = await unpackBz2(`${ozfs}/little-endian-all-drr-types-base-NATIVE.zsend.bz2`);
    const store = `${await tmp("zsend-s-")}/s`;
    await ok(["recv", store, "t/fs", stream]);
    const dir = `${await tmp("zsend-x-")}/tree`;
    // One file there was redacted from the stream: extract reports it and goes on.
    const r = await runZsend(["extract", "-q", store, "t/fs@baseline", dir]);
    assert(/redacted/.test(r.stderr), r.stderr);
    // What the ZPL reader lists, as `name=length` per file, against what the files now carry.
    const listed = new TextDecoder().decode(
      (await new Deno.Command("python3", {
        args: [
          "-c",
          "import os,sys\nfor f in sorted(os.listdir(sys.argv[1])):\n p=os.path.join(sys.argv[1],f)\n" +
          " print(f, ' '.join(sorted(x+'='+str(len(os.getxattr(p,x))) for x in os.listxattr(p))))",
          dir,
        ],
        stdout: "piped",
      }).output()).stdout,
    ).trim().split("\n");
    const withXattrs = listed.filter((l) => l.includes("user."));
    assert(withXattrs.length >= 3, listed.join("\n"));
    for (const line of withXattrs) {
      // Every value the stream holds is there, none empty.
      assert(
        line.split(" ").slice(1).every((x) => /^user\.[a-z-]+=\d+$/.test(x) && !x.endsWith("=0")),
        line,
      );
    }
  },
});
