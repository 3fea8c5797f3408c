/**
 * Hostile filesystems end to end, as a user meets them: a stream written with the encoder
 * (`tests/helpers/zpl_stream_builder.ts`, a ZPL version 4 filesystem), `zsend recv` into a
 * fresh store, `zsend extract` into a fresh DIR inside a fresh parent directory, each in a
 * child process with a time limit.
 *
 * Every case must end with a clear error or a warning naming the entry, no crash (no uncaught
 * exception or stack trace), no hang, no giant allocation, and nothing created or changed
 * outside DIR: the parent directory's listing and a sentinel file in it, a planted directory in
 * the temporary directory that symlinks point at, and a planted name that `../..` would reach
 * are all checked before and after.
 *
 * Exit status: `zsend extract` exits 1 whenever it left an entry out or could not write one
 * (the report names each), 0 when it wrote the whole tree; `zsend recv` exits 1 when it refuses
 * a stream; `zsend cat` exits 1 on anything it cannot give. A ZPL lie that the reader cannot
 * tell from a legitimate file (a znode size shorter than the data, a symlink size shorter than
 * the bytes stored) is extracted as the znode says, with exit 0, as ZFS itself would show it.
 *
 * Tests marked KNOWN BUG fail until the code named there is fixed.
 */

import { assert, assertEquals, assertNotEquals, assertStringIncludes } from "@std/assert";
import { type RunResult, runZsend, zsendCommand } from "./_run.ts";
import {
  concat,
  DEFAULT_TIME,
  direntValue,
  DT,
  OT,
  S_IFMT,
  znodeBonus,
  ZplStreamBuilder,
} from "./helpers/zpl_stream_builder.ts";
import { DRR, FEATURE } from "../core/stream/constants.ts";
import { StreamWriter } from "../core/stream/writer.ts";

const enc = new TextEncoder();
const isRoot = Deno.uid() === 0;

/** Seconds a single zsend run may take before it counts as a hang. */
const TIME_LIMIT = 20;

// ------------------------------------------------------------------------------------------
// Running zsend, and watching the world outside DIR
// ------------------------------------------------------------------------------------------

/** `zsend ARGS` in a child process, killed after `limit` seconds (exit 124 then). */
function zsend(args: string[], limit = TIME_LIMIT): Promise<RunResult> {
  return runZsend(args, { cmd: ["timeout", "-k", "5", String(limit), ...zsendCommand()] });
}

function plain(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, "");
}

/** No hang, no uncaught exception, no stack trace, no panic. */
function assertNoCrash(r: RunResult, what: string): void {
  const err = plain(r.stderr);
  assertNotEquals(r.code, 124, `${what}: timed out (a hang)\n${err}`);
  assertNotEquals(r.code, 137, `${what}: killed after its time limit (a hang)\n${err}`);
  assert(!/Uncaught|panicked|RUST_BACKTRACE/.test(err), `${what}: crashed:\n${err}`);
  assert(!/^\s+at .*(file:|ext:|<anonymous>)/m.test(err), `${what}: stack trace:\n${err}`);
}

/** The places a case sets up and checks. */
interface Env {
  /** The fresh parent directory; DIR is `parent/out`. */
  parent: string;
  /** Where the tree goes (does not exist before extract). */
  dir: string;
  /** The temporary directory that holds `parent`. */
  tmpRoot: string;
  /** An empty directory in `tmpRoot`, which hostile symlinks point at: it must stay empty. */
  plantDir: string;
  /** A name in `tmpRoot` that must not come to exist (`DIR/../../<plantBase>`). */
  plantName: string;
  plantBase: string;
}

/** What a case did. */
interface Outcome {
  env: Env;
  recv: RunResult;
  /** Null when recv refused the stream. */
  extract: RunResult | null;
  /** Extract's stderr without colours. */
  stderr: string;
}

const SENTINEL = "the sentinel outside DIR: zsend must not touch it\n";

/** Every path below `root` (not following symlinks) with its type, mode, size, mtime, target. */
async function listing(root: string, skipTop: string | null = null): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(rel === "" ? root : `${root}/${rel}`)) {
      const path = rel === "" ? e.name : `${rel}/${e.name}`;
      if (rel === "" && e.name === skipTop) continue;
      const st = await Deno.lstat(`${root}/${path}`);
      const kind = st.isSymlink ? "l" : st.isDirectory ? "d" : st.isFile ? "f" : "o";
      const target = st.isSymlink ? ` -> ${await Deno.readLink(`${root}/${path}`)}` : "";
      out.push(
        `${path} ${kind} ${st.mode?.toString(8)} ${st.size} ${st.mtime?.getTime()}${target}`,
      );
      if (st.isDirectory) await walk(path);
    }
  };
  await walk("");
  return out.sort();
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function makeEnv(): Promise<Env> {
  const parent = await Deno.makeTempDir({ prefix: "zsend-hx-" });
  const tmpRoot = parent.slice(0, parent.lastIndexOf("/"));
  const plantDir = await Deno.makeTempDir({ prefix: "zsend-hx-plant-" });
  const plantBase = `zsend-hx-planted-${crypto.randomUUID()}`;
  await Deno.writeTextFile(`${parent}/sentinel.txt`, SENTINEL);
  await Deno.mkdir(`${parent}/outside`);
  await Deno.writeTextFile(`${parent}/outside/victim.txt`, SENTINEL);
  return {
    parent,
    dir: `${parent}/out`,
    tmpRoot,
    plantDir,
    plantName: `${tmpRoot}/${plantBase}`,
    plantBase,
  };
}

/**
 * Builds a stream with `build`, receives it into a fresh store, extracts it into a fresh DIR,
 * checks that nothing outside DIR changed and that nothing crashed, then lets `check` look at
 * the outcome; everything is removed afterwards.
 */
async function hostile(
  build: (env: Env) => ZplStreamBuilder | Uint8Array,
  check: (o: Outcome) => void | Promise<void>,
): Promise<void> {
  const env = await makeEnv();
  const work = await Deno.makeTempDir({ prefix: "zsend-hx-work-" });
  try {
    const built = build(env);
    const stream = built instanceof Uint8Array ? built : built.stream();
    const file = `${work}/in.zstream`;
    await Deno.writeFile(file, stream);
    const before = await listing(env.parent);
    const recv = await zsend(["recv", `${work}/store`, "t/fs", file]);
    assertNoCrash(recv, "zsend recv");
    let extract: RunResult | null = null;
    if (recv.code === 0) {
      extract = await zsend(["extract", `${work}/store`, "t/fs@s1", env.dir]);
      assertNoCrash(extract, "zsend extract");
    }
    // Nothing outside DIR was created or changed.
    assertEquals(await listing(env.parent, "out"), before, "the parent directory changed");
    assertEquals(await Deno.readTextFile(`${env.parent}/sentinel.txt`), SENTINEL);
    assertEquals(await Deno.readTextFile(`${env.parent}/outside/victim.txt`), SENTINEL);
    assertEquals(await listing(env.plantDir), [], "something was written into the planted dir");
    assertEquals(await exists(env.plantName), false, `${env.plantName} was created`);
    await check({ env, recv, extract, stderr: plain(extract?.stderr ?? "") });
  } finally {
    for (const p of [env.parent, env.plantDir, env.plantName, work]) {
      await Deno.remove(p, { recursive: true }).catch(() => {});
    }
  }
}

/** The extract ran and exited with `code`. */
function extracted(o: Outcome, code: number): RunResult {
  assertEquals(o.recv.code, 0, `recv: ${o.recv.stderr}`);
  const x = o.extract!;
  assertEquals(x.code, code, `extract exit status; stderr:\n${o.stderr}`);
  return x;
}

/** The stderr line about `path` (as the report prints it: `./a/b`), which must exist. */
function lineAbout(o: Outcome, path: string, ...words: string[]): string {
  const lines = o.stderr.split("\n").filter((l) => l.startsWith(`zsend extract: ${path}: `));
  assert(lines.length > 0, `no error about ${path} in:\n${o.stderr}`);
  for (const w of words) {
    assert(
      lines.some((l) => l.includes(w)),
      `the error about ${path} does not say ${JSON.stringify(w)}:\n${lines.join("\n")}`,
    );
  }
  return lines[0]!;
}

/** DIR's tree (paths below DIR, sorted), each with its kind. */
async function tree(o: Outcome): Promise<string[]> {
  return (await listing(o.env.dir)).map((l) => {
    const [path, kind] = l.split(" ");
    return `${path} ${kind}`;
  });
}

// ------------------------------------------------------------------------------------------
// The builder is right: a benign stream extracts to the expected tree
// ------------------------------------------------------------------------------------------

Deno.test("benign: a built ZPL v4 stream extracts to exactly the tree it describes", async () => {
  await hostile(() => {
    const b = new ZplStreamBuilder();
    b.file(4, enc.encode("hello\n"), { links: 2, mtime: DEFAULT_TIME + 60 });
    b.entry(3, "hello.txt", 4).entry(3, "hard", 4);
    b.dir(5, 3, { mode: S_IFMT.DIR | 0o750 });
    b.entry(3, "sub", 5);
    b.symlink(6, "hello.txt");
    b.entry(3, "link", 6);
    // A sparse file: 4 KiB blocks 0 and 2, a hole between.
    const sparse = new Uint8Array(3 * 4096);
    sparse.fill(7, 0, 4096);
    sparse.fill(9, 8192);
    b.file(7, sparse, {}, 4096);
    b.entry(5, "sparse.bin", 7);
    b.symlink(8, "x".repeat(100)); // too long for the bonus: stored in data block 0
    b.entry(5, "longlink", 8);
    b.fifo(9);
    b.entry(3, "fifo", 9);
    b.file(10, enc.encode("owned\n"), { uid: 1234, gid: 5678, mode: S_IFMT.REG | 0o600 });
    b.entry(3, "owned", 10);
    b.file(11, enc.encode("ünï\n"));
    b.entry(3, "ünïcödé", 11);
    // A fat ZAP directory of 20 files.
    b.dir(12, 3, {}, { fat: true });
    b.entry(3, "fat", 12);
    for (let i = 0; i < 20; i++) {
      b.file(100 + i, enc.encode(`file ${i}\n`));
      b.entry(12, `f${String(i).padStart(2, "0")}`, 100 + i);
    }
    b.file(13, new Uint8Array(0));
    b.entry(3, "empty", 13);
    return b;
  }, async (o) => {
    extracted(o, 0);
    const unexpected = o.stderr.split("\n").filter((l) => l !== "" && !l.includes(": note: "));
    assertEquals(unexpected, []);
    const d = o.env.dir;
    const fat = Array.from({ length: 20 }, (_, i) => `fat/f${String(i).padStart(2, "0")} f`);
    assertEquals(
      await tree(o),
      [
        "empty f",
        "fat d",
        ...fat,
        "fifo o",
        "hard f",
        "hello.txt f",
        "link l",
        "owned f",
        "sub d",
        "sub/longlink l",
        "sub/sparse.bin f",
        "ünïcödé f",
      ].sort(),
    );
    assertEquals(await Deno.readTextFile(`${d}/hello.txt`), "hello\n");
    const hello = await Deno.lstat(`${d}/hello.txt`);
    assertEquals((await Deno.lstat(`${d}/hard`)).ino, hello.ino);
    assertEquals(hello.nlink, 2);
    assertEquals(hello.mode! & 0o7777, 0o644);
    assertEquals(hello.mtime!.getTime(), (DEFAULT_TIME + 60) * 1000);
    assertEquals(await Deno.readLink(`${d}/link`), "hello.txt");
    assertEquals(await Deno.readLink(`${d}/sub/longlink`), "x".repeat(100));
    assertEquals((await Deno.lstat(`${d}/sub`)).mode! & 0o7777, 0o750);
    assertEquals((await Deno.lstat(`${d}/sub`)).mtime!.getTime(), DEFAULT_TIME * 1000);
    const sparse = await Deno.readFile(`${d}/sub/sparse.bin`);
    assertEquals(sparse.length, 3 * 4096);
    assertEquals([sparse[0], sparse[4095], sparse[4096], sparse[8191], sparse[8192]], [
      7,
      7,
      0,
      0,
      9,
    ]);
    assert((await Deno.lstat(`${d}/sub/sparse.bin`)).blocks! * 512 <= 8192, "the hole was filled");
    assert((await Deno.lstat(`${d}/fifo`)).isFifo);
    const owned = await Deno.lstat(`${d}/owned`);
    assertEquals(owned.mode! & 0o7777, 0o600);
    if (isRoot) assertEquals([owned.uid, owned.gid], [1234, 5678]);
    assertEquals(await Deno.readTextFile(`${d}/ünïcödé`), "ünï\n");
    assertEquals(await Deno.readTextFile(`${d}/fat/f07`), "file 7\n");
    assertEquals((await Deno.lstat(`${d}/empty`)).size, 0);
  });
});

// ------------------------------------------------------------------------------------------
// Names
// ------------------------------------------------------------------------------------------

Deno.test("names: '..', '.', 'a/b', '../../x', empty, NUL and a 300-byte name are refused", async () => {
  const long = "n".repeat(300);
  await hostile((env) => {
    const b = new ZplStreamBuilder();
    b.file(4, enc.encode("bad\n"));
    b.dir(6, 3);
    b.file(7, enc.encode("inner\n"));
    b.entry(6, "inner", 7);
    b.file(5, enc.encode("ok\n"));
    b.file(8, enc.encode("long\n"));
    b.entry(3, "..", 6) // a directory: nothing may be made of its contents
      .entry(3, ".", 4)
      .entry(3, "a/b", 4)
      .entry(3, `../../${env.plantBase}`, 4)
      .entry(3, "", 4)
      .entry(3, new Uint8Array([0x78, 0, 0x79]), 4)
      .entry(3, long, 8)
      .entry(3, "ok.txt", 5);
    return b; // names like these need a fat ZAP: the builder makes one
  }, async (o) => {
    // Exit 1: entries were left out.
    extracted(o, 1);
    lineAbout(o, "./..", `directory entry "..": the name is '..'`);
    lineAbout(o, "./.", `directory entry ".": the name is '.'`);
    lineAbout(o, "./a/b", `directory entry "a/b": the name holds '/'`);
    lineAbout(o, `./../../${o.env.plantBase}`, "the name holds '/'");
    lineAbout(o, "./", `directory entry "": the name is empty`);
    lineAbout(o, "./x\0y", `directory entry "x\\u0000y": the name holds a NUL byte`);
    // 300 bytes is a legal ZFS name (with long names) but not a Linux one: the write fails.
    lineAbout(o, `./${long}`, "too long");
    assertEquals(await tree(o), ["ok.txt f"]);
    assertEquals(await Deno.readTextFile(`${o.env.dir}/ok.txt`), "ok\n");
  });
});

// ------------------------------------------------------------------------------------------
// Symlinks and what tries to write through them
// ------------------------------------------------------------------------------------------

Deno.test("symlinks: a second entry of the same name (directory, file, hard link) is refused", async () => {
  await hostile((env) => {
    const b = new ZplStreamBuilder();
    // d1: esc -> the planted dir, then a directory also named esc holding a file.
    b.dir(10, 3).entry(3, "d1", 10);
    b.symlink(11, env.plantDir);
    b.dir(12, 10);
    b.file(13, enc.encode("pwn\n"));
    b.entry(12, "pwn", 13);
    b.entry(10, "esc", 11).entry(10, "esc", 12);
    // d2: the directory first, then a symlink up -> .. of the same name.
    b.dir(14, 3).entry(3, "d2", 14);
    b.dir(15, 14);
    b.file(16, enc.encode("inside\n"));
    b.entry(15, "pwn", 16);
    b.symlink(17, "..");
    b.entry(14, "up", 15).entry(14, "up", 17);
    // d3: s -> .., then a hard-linked file (two names: t and s).
    b.dir(18, 3).entry(3, "d3", 18);
    b.symlink(19, "..");
    b.file(20, enc.encode("linked\n"), { links: 2 });
    b.entry(18, "s", 19).entry(18, "t", 20).entry(18, "s", 20);
    // d4: a symlink with two names (links 2): the second name is a hard link to the symlink.
    b.dir(21, 3).entry(3, "d4", 21);
    b.symlink(22, env.plantDir, { links: 2 });
    b.entry(21, "l1", 22).entry(21, "l2", 22);
    return b;
  }, async (o) => {
    // Exit 1: the duplicates were left out.
    extracted(o, 1);
    lineAbout(o, "./d1/esc", "the name appears twice");
    lineAbout(o, "./d2/up", "the name appears twice");
    lineAbout(o, "./d3/s", "the name appears twice");
    const d = o.env.dir;
    assertEquals(await tree(o), [
      "d1 d",
      "d1/esc l",
      "d2 d",
      "d2/up d",
      "d2/up/pwn f",
      "d3 d",
      "d3/s l",
      "d3/t f",
      "d4 d",
      "d4/l1 l",
      "d4/l2 l",
    ]);
    assertEquals(await Deno.readLink(`${d}/d1/esc`), o.env.plantDir);
    assertEquals(await Deno.readLink(`${d}/d4/l2`), o.env.plantDir);
    assertEquals(
      (await Deno.lstat(`${d}/d4/l1`)).ino,
      (await Deno.lstat(`${d}/d4/l2`)).ino,
      "l2 is a hard link of the symlink itself",
    );
  });
});

// Names that are not UTF-8 all decode to U+FFFD, so two different names can land on one path.
// BUG (fixed in io/extract.ts): extract went on into a directory it had failed to make (here
// because a symlink of the same decoded name was there first), so the directory's files were
// written through the symlink: `\xfe -> ..` plus a directory `\xff` holding PWNED wrote
// PWNED next to DIR; a hard-linked file whose first name collided was linked to the symlink.
Deno.test("symlinks: names that decode alike cannot write through a symlink (U+FFFD collision)", async () => {
  await hostile((env) => {
    const b = new ZplStreamBuilder();
    b.symlink(4, "..");
    b.dir(5, 3);
    b.file(6, enc.encode("pwned\n"));
    b.entry(5, "PWNED", 6);
    b.entry(3, new Uint8Array([0xFE]), 4).entry(3, new Uint8Array([0xFF]), 5);
    // The same into the planted directory, one level down, with a subdirectory too.
    b.dir(10, 3).entry(3, "d", 10);
    b.symlink(11, env.plantDir);
    b.dir(12, 10);
    b.dir(13, 12);
    b.file(14, enc.encode("pwned\n"));
    b.entry(13, "PWNED2", 14).entry(12, "deeper", 13).entry(12, "PWNED", 14);
    b.entry(10, new Uint8Array([0x61, 0xFE]), 11).entry(10, new Uint8Array([0x61, 0xFF]), 12);
    // A hard-linked file whose first name collides with a symlink: its second name must not
    // become a link to the symlink.
    b.dir(20, 3).entry(3, "h", 20);
    b.symlink(21, "..");
    b.file(22, enc.encode("hard\n"), { links: 2 });
    b.entry(20, new Uint8Array([0xFE]), 21).entry(20, new Uint8Array([0xFF]), 22);
    b.entry(20, new Uint8Array([0xFF, 0x7A]), 22); // sorts after both: its second name
    return b;
  }, async (o) => {
    // Exit 1: the colliding entries could not be written.
    extracted(o, 1);
    lineAbout(o, "./\uFFFD", "exists");
    lineAbout(o, "./d/a\uFFFD", "exists");
    lineAbout(o, "./h/\uFFFD", "exists");
    const d = o.env.dir;
    assertEquals(await Deno.readLink(`${d}/\uFFFD`), "..");
    assertEquals(await Deno.readLink(`${d}/d/a\uFFFD`), o.env.plantDir);
    const z = await Deno.lstat(`${d}/h/\uFFFDz`).catch(() => null);
    assert(z === null || z.isFile, "h/\uFFFDz is a hard link to the symlink");
    for (const line of await tree(o)) assert(!line.includes("PWNED"), line);
  });
});

// Small files are made in batches on another thread while the walk goes on: a later entry at
// the same decoded path must still find the first one there, whole, as when each file was made
// in turn, and the rest of the batch must be whole too (mode, set-id bits, times, holes).
Deno.test("files: names that decode alike: the first small file holds the path, whole", async () => {
  await hostile(() => {
    const b = new ZplStreamBuilder();
    b.file(4, enc.encode("first\n"), { mode: S_IFMT.REG | 0o4751, mtime: 1_600_000_000 });
    b.file(5, enc.encode("second\n"));
    b.dir(6, 3);
    b.file(7, enc.encode("inside\n"));
    b.entry(6, "x", 7);
    b.symlink(8, "..");
    const holes = new Uint8Array(4096);
    holes.set(enc.encode("head"), 0);
    b.file(9, holes, { mtime: 1_500_000_000 });
    b.file(10, new Uint8Array(1024), { mode: S_IFMT.REG | 0o600 });
    b.entry(3, new Uint8Array([0xF0]), 4).entry(3, new Uint8Array([0xF1]), 5);
    b.entry(3, new Uint8Array([0xF2]), 6).entry(3, new Uint8Array([0xF3]), 8);
    b.entry(3, "holes", 9).entry(3, "zeros", 10);
    return b;
  }, async (o) => {
    extracted(o, 1);
    // One line each for the second file, the directory and the symlink, in the walk's order.
    const about = o.stderr.split("\n").filter((l) => l.startsWith("zsend extract: ./\uFFFD: "));
    assertEquals(about.length, 3, o.stderr);
    assertStringIncludes(about[0]!, "open");
    assertStringIncludes(about[1]!, "its contents left out");
    assertStringIncludes(about[2]!, "symlink");
    const d = o.env.dir;
    assertEquals(
      await listing(d),
      [
        "holes f 100644 4096 1500000000000",
        `zeros f 100600 1024 ${DEFAULT_TIME * 1000}`,
        "\uFFFD f 104751 6 1600000000000",
      ].sort(),
    );
    assertEquals(await Deno.readTextFile(`${d}/\uFFFD`), "first\n");
    const got = await Deno.readFile(`${d}/holes`);
    assertEquals(new TextDecoder().decode(got.subarray(0, 4)), "head");
    assert(got.subarray(4).every((x) => x === 0));
    assert(o.extract!.stdout.includes("3 files"), o.extract!.stdout);
  });
});

// ------------------------------------------------------------------------------------------
// Cycles
// ------------------------------------------------------------------------------------------

Deno.test("cycles: entries back to the root, an ancestor, itself, and a directory linked twice", async () => {
  await hostile(() => {
    const b = new ZplStreamBuilder();
    b.file(4, enc.encode("hello\n"));
    b.entry(3, "hello", 4);
    b.entry(3, "loop", 3); // the root again
    b.dir(20, 3).entry(3, "a", 20);
    b.dir(21, 20).entry(20, "b", 21);
    b.entry(21, "up", 20); // an ancestor
    b.entry(21, "self", 21); // itself
    b.entry(21, "top", 3, DT.DIR);
    b.dir(22, 3).entry(3, "twice1", 22).entry(3, "twice2", 22).entry(21, "twice3", 22);
    b.file(23, enc.encode("in twice\n"));
    b.entry(22, "f", 23);
    return b;
  }, async (o) => {
    // Exit 1: the cycles were left out.
    extracted(o, 1);
    lineAbout(o, "./loop", "directory reached again at ./loop (first at .)");
    lineAbout(o, "./a/b/up", "reached again", "(first at ./a)");
    lineAbout(o, "./a/b/self", "reached again", "(first at ./a/b)");
    lineAbout(o, "./a/b/top", "reached again", "(first at .)");
    lineAbout(o, "./twice2", "reached again", "(first at ./a/b/twice3)");
    lineAbout(o, "./twice1", "reached again", "(first at ./a/b/twice3)");
    assertEquals(await tree(o), [
      "a d",
      "a/b d",
      "a/b/twice3 d",
      "a/b/twice3/f f",
      "hello f",
    ]);
  });
});

// ------------------------------------------------------------------------------------------
// Entries naming the wrong objects
// ------------------------------------------------------------------------------------------

Deno.test("objects: missing, not ZPL, type disagreeing with the mode, object 0, no type", async () => {
  await hostile(() => {
    const b = new ZplStreamBuilder();
    b.file(4, enc.encode("ok\n"));
    b.entry(3, "ok", 4);
    b.entry(3, "missing", 999, DT.REG);
    b.entry(3, "master", 1, DT.DIR); // the master node: a ZAP without a znode
    b.entry(3, "queue", 2, DT.REG); // the delete queue
    b.file(30, enc.encode("a file\n"));
    b.entry(3, "says-dir", 30, DT.DIR);
    b.dir(31, 3);
    b.entry(3, "says-link", 31, DT.LNK);
    b.file(32, enc.encode("no type\n"), { mode: 0o644 });
    b.entry(3, "no-type", 32, 0);
    // A znode saying directory on a plain-file object, with a file "inside" (its data).
    b.raw({
      object: 33,
      type: OT.PLAIN_FILE_CONTENTS,
      bonustype: OT.ZNODE,
      bonus: znodeBonus({ mode: S_IFMT.DIR | 0o755, size: 3 }),
      blksz: 512,
      blocks: new Map(),
    });
    b.entry(3, "dir-on-file-object", 33, DT.DIR);
    b.entry(3, "object-0", 0, DT.REG, (8n << 60n) | (1n << 48n)); // masks to object 0
    return b;
  }, async (o) => {
    // Exit 1: entries were left out.
    extracted(o, 1);
    lineAbout(o, "./missing", "object 999", "does not exist");
    lineAbout(o, "./master", "object 1", "bonus type 0 holds no ZPL attributes");
    lineAbout(o, "./queue", "object 2", "bonus type 0 holds no ZPL attributes");
    lineAbout(o, "./says-dir", `directory entry "says-dir"`, "the entry says dir");
    lineAbout(o, "./says-link", "the entry says symlink, the file is a dir");
    lineAbout(o, "./no-type", "names no file type");
    lineAbout(o, "./dir-on-file-object", "a directory of object type 19");
    lineAbout(o, "./object-0", "names object 0");
    assertEquals(await tree(o), ["dir-on-file-object d", "ok f"]);
  });
});

Deno.test("objects: a root that is missing, not a directory, or with a short bonus", async () => {
  for (
    const [what, build, words] of [
      ["missing root", (b: ZplStreamBuilder) => b.master.splice(1, 1, ["ROOT", 999n]), [
        "object 999",
        "does not exist",
      ]],
      ["root is a file", (b: ZplStreamBuilder) => b.file(3, enc.encode("x")), ["the root is a"]],
      ["root with a short bonus", (b: ZplStreamBuilder) =>
        b.change(3, (s) => {
          s.bonus = s.bonus.slice(0, 100);
        }), ["bonus of 100 bytes is too short"]],
    ] as const
  ) {
    await hostile(() => {
      const b = new ZplStreamBuilder();
      b.file(4, enc.encode("x\n"));
      b.entry(3, "x", 4);
      if (what === "root with a short bonus") {
        // Turn the built root directory into a raw object, then shorten its bonus.
        const root = b.objects().find((s) => Number(s.object) === 3)!;
        b.raw(root);
      }
      build(b);
      return b;
    }, async (o) => {
      // Exit 1: nothing could be extracted.
      extracted(o, 1);
      lineAbout(o, ".", ...words);
      assertEquals(await tree(o), [], what);
    });
  }
});

// ------------------------------------------------------------------------------------------
// Data that cannot be decoded
// ------------------------------------------------------------------------------------------

Deno.test("data: a file whose blocks cannot be decoded is removed, the rest written, failures counted", async () => {
  // OpenZFS's zstd header (c_len 5, level 3, version 1.5.7), then a frame whose only block has
  // the reserved type 3.
  const badZstd = new Uint8Array([0, 0, 0, 5, 3, 0, 0x29, 0x0b, 0x00, 0x38, 0x07, 0, 0, 0]);
  await hostile(() => {
    const b = new ZplStreamBuilder({ features: FEATURE.COMPRESSED | FEATURE.ZSTD });
    b.file(4, enc.encode("hello\n"));
    b.entry(3, "hello.txt", 4);
    // Blocks 0 and 2 are good, block 1 is not: the file must not be left short or empty.
    b.file(5, new Uint8Array(1536).fill(0x41), { mode: S_IFMT.REG | 0o644 });
    b.change(5, (o) => {
      o.blocks.delete(1);
      o.compressed = new Map([[1, { compression: 16, payload: badZstd }]]);
    });
    b.entry(3, "bad.txt", 5);
    // Two names of one bad file: both fail, neither is left.
    b.file(6, new Uint8Array(0), { links: 2, size: 512 });
    b.change(6, (o) => o.compressed = new Map([[0, { compression: 16, payload: badZstd }]]));
    b.entry(3, "twice-a", 6).entry(3, "twice-b", 6);
    b.file(7, enc.encode("after\n"));
    b.entry(3, "zz-after.txt", 7);
    return b;
  }, async (o) => {
    const x = extracted(o, 1);
    for (const path of ["./bad.txt", "./twice-a", "./twice-b"]) {
      lineAbout(o, path, "zstd", "reserved type 3");
    }
    assertEquals(await tree(o), ["hello.txt f", "zz-after.txt f"]);
    assertEquals(await Deno.readTextFile(`${o.env.dir}/hello.txt`), "hello\n");
    assertEquals(await Deno.readTextFile(`${o.env.dir}/zz-after.txt`), "after\n");
    assertStringIncludes(o.stderr, "zsend extract: 3 paths failed");
    assertStringIncludes(x.stdout, "2 files (12 bytes)");
    assertStringIncludes(x.stdout, ", 3 failed");
  });
});

// ------------------------------------------------------------------------------------------
// Lying sizes
// ------------------------------------------------------------------------------------------

Deno.test("sizes: a 2^52-byte file of one block neither writes nor allocates petabytes", async () => {
  const started = Date.now();
  await hostile(() => {
    const b = new ZplStreamBuilder();
    b.file(40, enc.encode("data at the start\n"), { size: 2n ** 52n });
    b.entry(3, "huge", 40);
    // The same size with its one block at the very end (maxblkid 2^43 - 1).
    b.file(41, new Uint8Array(0), { size: 2n ** 52n });
    b.change(41, (s) => s.blocks.set(2n ** 43n - 1n, enc.encode("data at the end\n")));
    b.entry(3, "huge-end", 41);
    b.file(42, enc.encode("ok\n"));
    b.entry(3, "ok", 42);
    return b;
  }, async (o) => {
    const x = o.extract!;
    // On file systems that cannot hold a 4 PiB file (ext4: 16 TiB) the entry fails with an
    // error naming it, exit 1; where they can (tmpfs, xfs, btrfs) it is a sparse file.
    for (const name of ["huge", "huge-end"]) {
      const st = await Deno.lstat(`${o.env.dir}/${name}`).catch(() => null);
      const sparse = st !== null && st.size === 2 ** 52;
      if (!sparse) lineAbout(o, `./${name}`);
      if (st !== null) assert(st.blocks! * 512 <= 1 << 20, `${name}: ${st.blocks} blocks`);
    }
    assertEquals(await Deno.readTextFile(`${o.env.dir}/ok`), "ok\n");
    assert(x.code === 0 || x.code === 1);
  });
  assert(Date.now() - started < 2 * TIME_LIMIT * 1000);
});

Deno.test("sizes: znode sizes shorter than the data, symlink sizes that lie, short bonuses", async () => {
  await hostile(() => {
    const b = new ZplStreamBuilder();
    // Three blocks of data, a size of 10: the file is what the size says.
    b.file(42, new Uint8Array(1536).fill(0x41), { size: 10 });
    b.entry(3, "short", 42);
    // Symlinks: longer than the inline bytes, longer than the block, shorter, zero, with NUL.
    b.symlink(43, "abcde", { size: 200 }, "bonus");
    b.entry(3, "lnk-long", 43);
    b.symlink(44, "abc", { size: 2n ** 40n }, "bonus");
    b.entry(3, "lnk-huge", 44);
    b.symlink(45, "abcdef", { size: 3 }, "bonus");
    b.entry(3, "lnk-short", 45);
    b.symlink(46, "", { size: 0 });
    b.entry(3, "lnk-empty", 46);
    b.symlink(47, new Uint8Array([0x61, 0, 0x62]));
    b.entry(3, "lnk-nul", 47);
    b.symlink(48, "y".repeat(100), { size: 600 }, "block");
    b.entry(3, "lnk-past-block", 48);
    // A bonus shorter than a znode, on a file and on a directory.
    b.file(49, enc.encode("short bonus\n"));
    b.change(49, (s) => {
      s.bonus = s.bonus.slice(0, 100);
    });
    b.entry(3, "short-bonus", 49, DT.REG);
    b.raw({
      object: 50,
      type: OT.DIRECTORY_CONTENTS,
      bonustype: OT.ZNODE,
      bonus: new Uint8Array(8),
      blksz: 512,
      blocks: new Map(),
    });
    b.entry(3, "short-bonus-dir", 50, DT.DIR);
    // A size beyond 2^53.
    b.file(51, enc.encode("x\n"), { size: 2n ** 60n });
    b.entry(3, "size-2^60", 51);
    return b;
  }, async (o) => {
    // Exit 1: some entries could not be made.
    extracted(o, 1);
    const d = o.env.dir;
    assertEquals(await Deno.readTextFile(`${d}/short`), "A".repeat(10));
    assertEquals(await Deno.readLink(`${d}/lnk-short`), "abc");
    lineAbout(o, "./lnk-long", "object 43", "hole");
    lineAbout(o, "./lnk-huge", "object 44", "1099511627776-byte target in a 512-byte block");
    lineAbout(o, "./lnk-empty");
    lineAbout(o, "./lnk-nul", "object 47", "NUL");
    lineAbout(o, "./lnk-past-block", "object 48", "600-byte target in a 512-byte block");
    lineAbout(o, "./short-bonus", "object 49", "bonus of 100 bytes is too short");
    lineAbout(o, "./short-bonus-dir", "object 50", "bonus of 8 bytes is too short");
    lineAbout(o, "./size-2^60", "object 51", "out of range");
    assertEquals(await tree(o), ["lnk-short l", "short f"]);
  });
});

// ------------------------------------------------------------------------------------------
// Big numbers: maxblkid, FREE lengths, object numbers near 2^48
// ------------------------------------------------------------------------------------------

Deno.test("numbers: maxblkid 2^64-1, FREE to the end and of 2^63 bytes, objects near 2^48", async () => {
  const FAR = 2n ** 48n - 1n;
  await hostile(() => {
    const b = new ZplStreamBuilder();
    b.file(FAR, enc.encode("far away\n"));
    b.entry(3, "far", FAR);
    // Garbage in the entry's middle bits (48..59): the object is the low 48 bits.
    b.file(50, enc.encode("masked\n"));
    b.entry(3, "masked", 0, DT.REG, direntValue(50, DT.REG) | (0xABCn << 48n));
    b.file(51, enc.encode("maxblkid\n"));
    b.change(51, (s) => (s.maxblkid = 2n ** 64n - 1n));
    b.entry(3, "maxblkid", 51);
    // FREE of everything (length -1) after the data: a file of zeros, a hole.
    b.file(52, new Uint8Array(2048).fill(3));
    b.entry(3, "freed", 52);
    b.extra({ type: DRR.FREE, object: 52n, offset: 0n, length: 2n ** 64n - 1n });
    // FREE of 2^63 bytes from 512: only block 0 stays.
    b.file(53, new Uint8Array(2048).fill(4));
    b.entry(3, "freed-tail", 53);
    b.extra({ type: DRR.FREE, object: 53n, offset: 512n, length: 2n ** 63n });
    // A directory near the top too, holding a file.
    b.dir(FAR - 1n, 3).entry(3, "far-dir", FAR - 1n);
    b.entry(FAR - 1n, "inner", 50);
    return b;
  }, async (o) => {
    // Exit 0: all of it is legitimate.
    extracted(o, 0);
    const d = o.env.dir;
    assertEquals(await Deno.readTextFile(`${d}/far`), "far away\n");
    assertEquals(await Deno.readTextFile(`${d}/masked`), "masked\n");
    assertEquals(await Deno.readTextFile(`${d}/maxblkid`), "maxblkid\n");
    assertEquals(await Deno.readFile(`${d}/freed`), new Uint8Array(2048));
    assert((await Deno.lstat(`${d}/freed`)).blocks === 0, "the freed file is a hole");
    const tail = await Deno.readFile(`${d}/freed-tail`);
    assertEquals(tail, new Uint8Array(2048).fill(4, 0, 512));
    assertEquals(await Deno.readTextFile(`${d}/far-dir/inner`), "masked\n");
  });
});

Deno.test("numbers: recv refuses object 2^48 and FREE offsets past 2^53, with a clear error", async () => {
  for (
    const [what, change, words] of [
      [
        "object 2^48",
        (b: ZplStreamBuilder) => b.file(2n ** 48n, enc.encode("x")).entry(3, "x", 0, 0, 1n),
        ["OBJECT", "281474976710656", "outside valid range"],
      ],
      [
        "FREE at 2^60",
        (b: ZplStreamBuilder) =>
          b.file(4, enc.encode("x")).extra({
            type: DRR.FREE,
            object: 4n,
            offset: 2n ** 60n,
            length: 2n ** 62n,
          }),
        ["FREE", "beyond 2^53"],
      ],
    ] as const
  ) {
    await hostile(() => {
      const b = new ZplStreamBuilder();
      change(b);
      return b;
    }, (o) => {
      // Exit 1 from recv: the stream is refused, nothing is stored or extracted.
      assertEquals(o.recv.code, 1, what);
      assertEquals(o.extract, null);
      const err = plain(o.recv.stderr);
      for (const w of words) assertStringIncludes(err, w, what);
    });
  }
});

// KNOWN BUG (core/receive/receive.ts, RecordApplier #freeObjects): FREEOBJECTS over a range holding an
// object near its far end walks the range one object number at a time (a sqlite lookup each):
// #noObjectsFrom only ends the loop when no object is left in the range, and never jumps to
// the next one. FREEOBJECTS(10, 2^48-2) in an incremental over a snapshot with objects 4 and
// 2^48-2 takes ~2^48 steps: recv hangs. Fix: step with nextObject, e.g.
// `for (let o = first; o !== null && o < last; o = t.nextObject(o + 1)) t.freeObject(o)`
// (falling back to o + 1 when the target has no nextObject).
Deno.test("numbers: FREEOBJECTS of 2^48 objects over a far object does not hang recv", async () => {
  const FAR = 2n ** 48n - 2n;
  const work = await Deno.makeTempDir({ prefix: "zsend-hx-work-" });
  try {
    const b = new ZplStreamBuilder();
    b.file(4, enc.encode("near\n")).entry(3, "near", 4);
    b.file(FAR, enc.encode("far\n")).entry(3, "far", FAR);
    await Deno.writeFile(`${work}/full.zstream`, b.stream());
    const w = new StreamWriter();
    const chunks = [
      ...w.begin({ toname: "src/fs@s2", toguid: 77n, fromguid: b.toguid, objset_type: 2 }),
      ...w.write({ type: DRR.FREEOBJECTS, firstobj: 10n, numobjs: FAR, toguid: 77n }),
      ...w.end(),
    ];
    await Deno.writeFile(`${work}/incr.zstream`, concat(chunks));
    const full = await zsend(["recv", `${work}/store`, "t/fs", `${work}/full.zstream`]);
    assertEquals(full.code, 0, full.stderr);
    const incr = await zsend(["recv", `${work}/store`, "t/fs", `${work}/incr.zstream`], 10);
    assertNoCrash(incr, "zsend recv of the incremental");
    assertEquals(incr.code, 0, incr.stderr);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

// ------------------------------------------------------------------------------------------
// cat and ls on a hostile snapshot
// ------------------------------------------------------------------------------------------

/** A snapshot with bad names, bad objects, a cycle and a bad symlink, received into a store. */
async function hostileStore(
  badLink = true,
): Promise<{ work: string; store: string; snap: string }> {
  const work = await Deno.makeTempDir({ prefix: "zsend-hx-work-" });
  const b = new ZplStreamBuilder();
  b.file(4, enc.encode("ok\n"));
  b.entry(3, "ok.txt", 4).entry(3, "..", 4).entry(3, "a/b", 4);
  b.entry(3, "missing", 999, DT.REG);
  b.entry(3, "master", 1, DT.REG);
  b.entry(3, "loop", 3);
  if (badLink) {
    b.symlink(5, "abc", { size: 200 }, "bonus");
    b.entry(3, "badlink", 5);
  }
  await Deno.writeFile(`${work}/in.zstream`, b.stream());
  const r = await zsend(["recv", `${work}/store`, "t/fs", `${work}/in.zstream`]);
  assertEquals(r.code, 0, r.stderr);
  return { work, store: `${work}/store`, snap: "t/fs@s1" };
}

// Bad entries elsewhere in a directory must not stop a lookup of a good one (core/zpl/path.ts
// threw the first bad entry's error for any name; fixed there).
Deno.test("cat: good files of a hostile directory come out; bad paths fail cleanly", async () => {
  const { work, store, snap } = await hostileStore();
  try {
    const ok = await zsend(["cat", store, snap, "/ok.txt"]);
    assertNoCrash(ok, "cat /ok.txt");
    assertEquals([ok.code, ok.stdout], [0, "ok\n"], ok.stderr);
    const loop = await zsend(["cat", store, snap, "/loop/loop/ok.txt"]);
    assertEquals([loop.code, loop.stdout], [0, "ok\n"], loop.stderr);
    for (
      const [path, words] of [
        ["/..", ["'..' is not allowed"]],
        ["/a/b", ["/a", "no such file"]],
        ["/nothing", ["/nothing", "no such file"]],
        ["/loop", ["is a dir"]],
      ] as const
    ) {
      const r = await zsend(["cat", store, snap, path]);
      assertNoCrash(r, `cat ${path}`);
      assertEquals(r.code, 1, `cat ${path}: ${r.stderr}`);
      assertEquals(r.stdout, "");
      for (const w of words) assertStringIncludes(plain(r.stderr), w, `cat ${path}`);
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

// KNOWN BUG (cli.ts, run(), the catch at lines 59-77): ZplError, ZapError and DirEntryError
// are SyntaxErrors, which run() neither reports nor maps to an exit status: it rethrows them,
// so `zsend cat`/`ls` (and `extract` when the master node is bad) die with "error: Uncaught
// (in promise) ZplError" and a stack trace. Fix: treat `e instanceof SyntaxError` like
// TypeError/RangeError there (warn `zsend VERB: message`, return 1).
// And cli/ls.ts stats and reads the symlink target of each entry (lines 68, 76-77) outside
// any per-entry handling, so one bad entry ends the listing: `ls` should warn per entry (as it
// does for readdir's faults), list the rest and exit 1 at the end, as GNU ls does.
Deno.test("cat and ls: entries naming missing or non-ZPL objects fail cleanly (no stack trace)", async () => {
  const { work, store, snap } = await hostileStore();
  try {
    for (
      const [args, words] of [
        [["cat", store, snap, "/missing"], ["object 999", "does not exist"]],
        [["cat", store, snap, "/master"], ["object 1", "bonus type 0"]],
        [["cat", store, snap, "/badlink"], ["symlink"]],
        [["ls", store, snap, "/missing"], ["object 999"]],
        [["ls", store, snap, "/badlink"], ["object 5", "hole"]],
        [["ls", store, snap], ["missing", "master"]],
        [["ls", "-R", store, snap], ["object 5", "hole"]],
      ] as const
    ) {
      const what = `zsend ${args.join(" ")}`;
      const r = await zsend([...args]);
      assertNoCrash(r, what);
      assertEquals(r.code, 1, `${what}: ${r.stderr}`);
      for (const w of words) assertStringIncludes(plain(r.stderr), w, what);
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("ls -R: a hostile tree is listed with a warning per bad entry, no crash", async () => {
  const { work, store, snap } = await hostileStore(false);
  try {
    const r = await zsend(["ls", "-R", store, snap]);
    assertNoCrash(r, "ls -R");
    const err = plain(r.stderr);
    for (const w of ["./..: ", "./a/b: ", "./missing: ", "./master: ", "./loop: "]) {
      assertStringIncludes(err, `zsend ls: ${w}`);
    }
    assertStringIncludes(r.stdout, "./ok.txt");
    // Exit status: 0 today although entries were left out (GNU ls says 1); either is clean.
    assert(r.code === 0 || r.code === 1, `exit ${r.code}`);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

// KNOWN BUG (cli.ts, as above): a master node without ROOT (or a ROOT beyond 2^48) makes
// ZplFilesystem.open throw a ZplError, which `zsend extract` does not catch.
Deno.test("extract: a master node without ROOT or with ROOT 2^48 fails cleanly", async () => {
  for (const root of [null, 2n ** 48n + 3n]) {
    await hostile(() => {
      const b = new ZplStreamBuilder();
      b.master.splice(1, 1, ...(root === null ? [] : [["ROOT", root] as [string, bigint]]));
      return b;
    }, async (o) => {
      // Exit 1: nothing can be extracted.
      assertEquals(o.recv.code, 0);
      assertEquals(o.extract!.code, 1, o.stderr);
      assertStringIncludes(o.stderr, root === null ? "no ROOT" : "ROOT");
      assertEquals(await exists(o.env.dir) ? await tree(o) : [], []);
    });
  }
});
