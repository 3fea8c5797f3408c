/**
 * `zsend diff` on snapshots made by real zfs-fuse 0.7 (the shipped fixtures: ZPL 4 znodes,
 * micro ZAP directories), which has no `zfs diff` of its own: what diff says must agree with the
 * manifests of the two snapshots (read from the mounted snapshots when the fixtures were made).
 * Every removed, added, renamed or modified path is accounted for, and every line names paths
 * that the snapshots hold. Also the command line: `-h` is a flag, usage errors, wrong order.
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { ZFS_FUSE_DIR } from "./_fixtures.ts";
import { runZsend, runZsendOk } from "./_run.ts";

const F = (name: string) => `${ZFS_FUSE_DIR}/${name}`;

const ok = async (args: string[]): Promise<string> => (await runZsendOk(args)).stdout;

/** A manifest: path (without `./`) -> its line's fields after the path. */
function manifest(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const [path, ...rest] = line.split(" ");
    m.set(path!.replace(/^\.\//, "/"), rest);
  }
  return m;
}

interface Line {
  type: string;
  kind: string;
  path: string;
  newPath?: string;
}

/** `diff -F -H -h --mountpoint /m` lines, paths without the mountpoint. */
function parse(text: string): Line[] {
  return text.split("\n").filter((l) => l !== "").map((l) => {
    const [type, kind, path, extra] = l.split("\t");
    const strip = (p: string) => p.replace(/^\/m(?=\/|$)/, "") || "/";
    const line: Line = { type: type!, kind: kind!, path: strip(path!) };
    if (type === "R") line.newPath = strip(extra!);
    return line;
  });
}

const under = (path: string, dirs: string[]) => dirs.some((d) => path.startsWith(d + "/"));

function check(lines: Line[], from: Map<string, string[]>, to: Map<string, string[]>): void {
  const root = (p: string) => p === "/";
  for (const l of lines) {
    if (l.type === "-") assert(root(l.path) || from.has(l.path), `- ${l.path} not in the earlier`);
    if (l.type === "+") assert(to.has(l.path), `+ ${l.path} not in the later snapshot`);
    if (l.type === "M") {
      assert(root(l.path) || from.has(l.path) || to.has(l.path), `M ${l.path} in neither`);
    }
    if (l.type === "R") {
      assert(from.has(l.path), `R from ${l.path}, not in the earlier snapshot`);
      assert(to.has(l.newPath!), `R to ${l.newPath}, not in the later snapshot`);
    }
    const fields = (l.type === "-" ? from : to).get(l.newPath ?? l.path);
    if (fields !== undefined) {
      const want = { f: "F", d: "/", l: "@", p: "|", s: "=", c: "C", b: "B" }[fields[0]!];
      assertEquals(l.kind, want, `the file type of ${l.path}`);
    }
  }
  const of = (t: string) => new Set(lines.filter((l) => l.type === t).map((l) => l.path));
  const removed = of("-");
  const added = of("+");
  const touched = new Set([...of("M"), ...of("+"), ...lines.flatMap((l) => l.newPath ?? [])]);
  const movedFrom = lines.filter((l) => l.type === "R").map((l) => l.path);
  const movedTo = lines.filter((l) => l.type === "R").map((l) => l.newPath!);
  for (const [path, fields] of from) {
    if (!to.has(path)) {
      assert(
        removed.has(path) || movedFrom.includes(path) || under(path, movedFrom),
        `${path} is gone, and diff does not say so`,
      );
    } else if (fields.join(" ") !== to.get(path)!.join(" ") && fields[0] !== "d") {
      // A file with other names may be reported under one of them.
      const links = Number(to.get(path)![5] ?? 1);
      assert(touched.has(path) || links > 1, `${path} changed, and diff does not say so`);
    }
  }
  for (const path of to.keys()) {
    if (!from.has(path)) {
      assert(
        added.has(path) || movedTo.includes(path) || under(path, movedTo),
        `${path} is new, and diff does not say so`,
      );
    }
  }
}

Deno.test({
  name: "diff of zfs-fuse snapshots agrees with their manifests",
  async fn() {
    const base = await Deno.makeTempDir({ prefix: "zsend-diff-" });
    const store = `${base}/store`;
    try {
      for (const s of ["fs-s1.full", "fs-s1-s2.incr", "fs-s2-s3.incr"]) {
        await ok(["recv", store, "t/fs", F(`${s}.zstream`)]);
      }
      const m = async (s: string) => manifest(await Deno.readTextFile(F(`fs-${s}.manifest.txt`)));
      for (const [a, b] of [["s1", "s2"], ["s2", "s3"], ["s1", "s3"]] as const) {
        const text = await ok([
          "diff",
          "-F",
          "-H",
          "-h",
          "--mountpoint",
          "/m",
          store,
          `t/fs@${a}`,
          `t/fs@${b}`,
        ]);
        const lines = parse(text);
        assert(lines.length > 0, `${a} -> ${b}: no change?`);
        check(lines, await m(a), await m(b));
      }
      // DATASET alone is its latest snapshot; the default mountpoint is /DATASET.
      assertEquals(
        await ok(["diff", store, "t/fs@s2", "t/fs"]),
        await ok(["diff", "--mountpoint", "/t/fs", store, "t/fs@s2", "t/fs@s3"]),
      );
      // -t: the change time first, as zfs diff prints it.
      for (const l of (await ok(["diff", "-t", store, "t/fs@s1", "t/fs@s2"])).trim().split("\n")) {
        assertMatch(l, /^ *-?\d+\.\d{9}\t[-+MR]\t\/t\/fs\//);
      }
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

Deno.test({
  name: "diff refuses what zfs diff refuses, in one line",
  async fn() {
    const base = await Deno.makeTempDir({ prefix: "zsend-diff-" });
    const store = `${base}/store`;
    try {
      for (const s of ["fs-s1.full", "fs-s1-s2.incr"]) {
        await ok(["recv", store, "t/fs", F(`${s}.zstream`)]);
      }
      const later = await runZsend(["diff", store, "t/fs@s2", "t/fs@s1"]);
      assertEquals(later.code, 1);
      assertMatch(later.stderr, /^zsend diff: t\/fs@s2 is not an earlier snapshot of t\/fs@s1/);
      const missing = await runZsend(["diff", store, "t/fs@s1", "t/fs@nope"]);
      assertEquals(missing.code, 1);
      assertMatch(missing.stderr, /no snapshot t\/fs@nope/);
      const usage = await runZsend(["diff", store, "t/fs@s1"]);
      assertEquals(usage.code, 2);
      assertMatch(usage.stderr, /diff takes STORE/);
      const mp = await runZsend(["diff", "--mountpoint", "rel", store, "t/fs@s1", "t/fs@s2"]);
      assertEquals(mp.code, 2);
      // -h is a flag of diff's (names as they are), --help its help.
      assertEquals((await runZsend(["diff", "-h", store, "t/fs@s1", "t/fs@s2"])).code, 0);
      const help = await runZsend(["diff", "--help"]);
      assertEquals(help.code, 0);
      assertMatch(help.stdout, /^usage: zsend diff /);
      assertMatch(help.stdout, /\n {2}-h +names as they are/);
      for (const r of [later, missing, usage, mp]) {
        assert(!r.stderr.includes("    at "), `a stack trace: ${r.stderr}`);
      }
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});
