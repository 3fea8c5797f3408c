/**
 * Extracted times are the snapshot's to the nanosecond: every file, directory and symlink's
 * access and modification time, as `stat` reads them back, equals its znode's (`Deno.utimeSync`
 * kept milliseconds only). Small files are made in native batches, large ones and the rest
 * on the walk's thread: the example stream has both.
 */

import { assert, assertEquals } from "@std/assert";
import { ZplFilesystem } from "../core/zpl/fs.ts";
import { openSnapshot } from "../io/store/open_snapshot.ts";
import { loadNative } from "../io/native/ffi.ts";
import { ROOT } from "./_fixtures.ts";
import { runZsend } from "./_run.ts";

const EXAMPLE = `${ROOT}examples/fs-s1.full.zstream`;

Deno.test("extract sets every entry's times to the nanosecond", async () => {
  if (loadNative() === null) throw new Error("the native library is not built");
  const dir = await Deno.makeTempDir({ prefix: "zsend-times-" });
  try {
    const store = `${dir}/store`;
    const out = `${dir}/out`;
    assertEquals((await runZsend(["recv", store, "ex/fs", EXAMPLE])).code, 0);
    const r = await runZsend(["extract", store, "ex/fs@s1", out]);
    assertEquals(r.code, 0, r.stderr);

    const want = new Map<string, string>();
    const { store: opened, view } = openSnapshot(store, "ex/fs@s1");
    try {
      const fs = await ZplFilesystem.open(view);
      for await (const e of fs.walk()) {
        const t = (s: { sec: number; nsec: number }) =>
          `${s.sec}.${String(s.nsec).padStart(9, "0")}`;
        want.set(e.path, `${t(e.inode.atime)} ${t(e.inode.mtime)}`);
      }
    } finally {
      opened.close();
    }
    // stat prints each path's times with nine digits; %n is the path as given.
    const paths = [...want.keys()];
    const stat = await new Deno.Command("stat", {
      args: ["-c", "%n\t%.9X %.9Y", ...paths],
      cwd: out,
      stdout: "piped",
    }).output();
    assert(stat.success);
    const got = new Map(
      new TextDecoder().decode(stat.stdout).trim().split("\n").map((l) => {
        const [path, times] = l.split("\t") as [string, string];
        return [path, times];
      }),
    );
    let subMillisecond = 0;
    for (const [path, times] of want) {
      assertEquals(got.get(path), times, path);
      if (!/000000 /.test(times.split(" ")[1] + " ")) subMillisecond++;
    }
    // The check means something only if the snapshot's times have digits below a millisecond.
    assert(subMillisecond > 10, `only ${subMillisecond} entries have sub-millisecond times`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
