/**
 * Every verb fed bad arguments, as a new user types them: a directory where a stream FILE
 * goes, a file where a STORE goes, names ZFS refuses, missing arguments, unknown flags. Each
 * must end in one line that names the argument and what was expected, exit 2 for a usage
 * error and 1 for a failure, and never a stack trace.
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { ZFS_FUSE_DIR } from "./_fixtures.ts";
import { runZsend } from "./_run.ts";

const FULL = `${ZFS_FUSE_DIR}/fs-s1.full.zstream`;

/** One bad command line: its arguments, the status and the first line of stderr. */
type Case = [args: string[], code: 1 | 2, first: RegExp];

function cases(t: string): Case[] {
  const DIR = `${t}/dir`; // an empty directory
  const FILE = `${t}/file`; // a text file
  const STORE = `${t}/store`; // a store with a/fs@s1
  const OTHER = `${t}/other`; // a directory holding a file
  const NONE = `${t}/none`; // nothing there
  const OUT = `${t}/out`; // where an extract would go
  const DAMAGED = `${t}/damaged`; // a store whose index is not a database
  const isDir = (label: string) => new RegExp(`${label} '.*' is a directory: expected `);
  const notStore = /STORE '.*' is not a directory: expected a zsend store directory$/;
  const foreign = /STORE '.*' is a directory that is not a zsend store/;
  const badName = (label: string, why: string) =>
    new RegExp(`${label} '.*' is not a valid .* name: ${why}`);
  const unknown = (flag: string) => new RegExp(`unknown option ${flag}$`);
  return [
    // dump, verify, redup: FILE
    [["dump", DIR], 2, isDir("FILE")],
    [["dump", "--json", DIR], 2, isDir("FILE")],
    [["dump", NONE], 1, /FILE '.*': no such file$/],
    [["dump", "--bogus"], 2, unknown("--bogus")],
    [["dump", FULL, FULL], 2, /dump takes one stream: FILE or -$/],
    [["dump", FILE], 1, /^zsend dump: record 0 /],
    [["verify", DIR], 2, isDir("FILE")],
    [["verify", NONE], 1, /FILE '.*': no such file$/],
    [["verify", "-x"], 2, unknown("-x")],
    [["verify", FILE], 1, /^record 0 /],
    [["redup", DIR], 2, isDir("FILE")],
    [["redup", NONE], 1, /FILE '.*': no such file$/],
    [["redup", "--bogus"], 2, unknown("--bogus")],
    // recv: STORE TARGET FILE
    [["recv"], 2, /recv takes STORE TARGET \[FILE\|-\]$/],
    [["recv", `${t}/new`], 2, /recv takes STORE TARGET/],
    [["recv", FILE, "a/fs", FULL], 2, notStore],
    [["recv", OTHER, "a/fs", FULL], 2, foreign],
    [["recv", `${t}/new`, "a/fs", DIR], 2, isDir("FILE")],
    [["recv", `${t}/new`, "a/fs", NONE], 1, /FILE '.*': no such file$/],
    [["recv", `${t}/new`, "tank/new@a@b", FULL], 2, badName("TARGET", "more than one '@'")],
    [["recv", `${t}/new`, "bad#name", FULL], 2, badName("TARGET", "invalid character '#'")],
    [["recv", `${t}/new`, "x".repeat(300), FULL], 2, badName("TARGET", "too long")],
    [["recv", `${t}/new`, "tank//fs", FULL], 2, badName("TARGET", "empty component")],
    [["recv", `${t}/new`, "/tank", FULL], 2, badName("TARGET", "leading '/'")],
    [["recv", `${t}/new`, "", FULL], 2, badName("TARGET", "empty name")],
    [["recv", `${t}/new`, "tank/fs/", FULL], 2, badName("TARGET", "trailing '/'")],
    [["recv", `${t}/new`, "tank/../fs", FULL], 2, badName("TARGET", "component '..'")],
    [["recv", "-d", `${t}/new`, "tank/fs@s", FULL], 2, badName("TARGET", "'@' in a dataset")],
    [["recv", "-d", "-e", `${t}/new`, "a/fs", FULL], 2, /-d and -e exclude each other$/],
    [["recv", "--bogus", `${t}/new`, "a/fs", FULL], 2, unknown("--bogus")],
    // list: STORE
    [["list"], 2, /list takes a STORE$/],
    [["list", "-o", "name,bogus", STORE], 2, /bad property list: invalid property 'bogus'$/],
    [["list", "-t", "fish", STORE], 2, /invalid type 'fish': expected filesystem, volume, /],
    [["list", "-s", "bogus", STORE], 2, /invalid sort property 'bogus'$/],
    [["list", "--json", "--space", STORE], 2, /--space adds the store's totals as text/],
    [["list", STORE, "a/none"], 1, /^zsend list: cannot open 'a\/none': dataset does not exist$/],
    [["list", STORE, "a/fs@none"], 1, /cannot open 'a\/fs@none': snapshot does not exist$/],
    [["list", STORE, "a//fs"], 2, badName("DATASET", "empty component")],
    // destroy: STORE DATASET[@SNAP]
    [["destroy", STORE], 2, /destroy takes STORE and one DATASET or DATASET@SNAP$/],
    [["destroy", FILE, "a/fs@s1"], 2, notStore],
    [["destroy", NONE, "a/fs@s1"], 1, /STORE '.*': no such directory$/],
    [["destroy", STORE, "a/fs@s1@x"], 2, badName("DATASET@SNAP", "more than one '@'")],
    [["destroy", STORE, "a/fs@s1,,s2"], 2, /'' is not a snapshot, nor FIRST%LAST$/],
    [
      ["destroy", STORE, "a/none"],
      1,
      /^zsend destroy: cannot open 'a\/none': dataset does not exist$/,
    ],
    [["destroy", STORE, "a/fs@none"], 1, /could not find any snapshots to destroy/],
    [["destroy", "-x", STORE, "a/fs"], 2, unknown("-x")],
    // gc: STORE
    [["gc"], 2, /gc takes one STORE$/],
    [["gc", FILE], 2, notStore],
    [["gc", "--threshold", "0", STORE], 2, /--threshold '0': expected a percentage in \(0, 100\]$/],
    [["gc", "--threshold", "abc", STORE], 2, /--threshold 'abc': expected a percentage/],
    [["list", FILE], 2, notStore],
    [["list", OTHER], 2, foreign],
    [["list", DIR], 1, /STORE '.*' is an empty directory, not a store$/],
    [["list", NONE], 1, /STORE '.*': no such directory$/],
    [["list", "--bogus", STORE], 2, unknown("--bogus")],
    // An empty path (refused before anything could be written under /; the verbs that write
    // are checked in process, in cli_args_unit_test.ts).
    [["list", ""], 2, /STORE is an empty string: expected a zsend store directory$/],
    [["ls", "", "a/fs@s1"], 2, /STORE is an empty string/],
    [["verify", ""], 2, /FILE is an empty string: expected a stream file, or - for stdin$/],
    [["recv", `${t}/new`, "a/fs", ""], 2, /FILE is an empty string/],
    // ls, cat: STORE DATASET@SNAP [PATH]
    [["ls", FILE, "a/fs@s1"], 2, notStore],
    [["ls", NONE, "a/fs@s1"], 1, /STORE '.*': no such directory$/],
    [["ls", STORE], 2, /ls takes STORE DATASET@SNAP \[PATH\]$/],
    [["ls", STORE, "a/fs"], 2, badName("DATASET@SNAP", "no '@'")],
    [["ls", STORE, "a/fs@s1@s2"], 2, badName("DATASET@SNAP", "more than one '@'")],
    [["ls", STORE, "a/fs@nope"], 1, /no snapshot a\/fs@nope in .* \(it has a\/fs@s1\)$/],
    [["ls", STORE, "a/fs@s1", "/nope"], 1, /nope/],
    [["ls", "-x", STORE, "a/fs@s1"], 2, unknown("-x")],
    [["cat", FILE, "a/fs@s1", "/hello.txt"], 2, notStore],
    [["cat", STORE, "a/fs@s1"], 2, /cat takes STORE DATASET@SNAP PATH$/],
    [["cat", STORE, "a//fs@s1", "/hello.txt"], 2, badName("DATASET@SNAP", "empty component")],
    [["cat", STORE, "a/fs@s1", "/"], 1, /\/ is a dir, not a file$/],
    [["cat", "--bogus", STORE, "a/fs@s1", "/hello.txt"], 2, unknown("--bogus")],
    // extract
    [["extract"], 2, /extract takes STORE DATASET@SNAP DIR$/],
    [["extract", FILE, "a/fs@s1", OUT], 2, notStore],
    [["extract", OTHER, "a/fs@s1", OUT], 2, foreign],
    [["extract", STORE, "a/fs@s1"], 2, /extract takes STORE DATASET@SNAP DIR$/],
    [["extract", STORE, "a/f#s@s1", OUT], 2, badName("DATASET@SNAP", "invalid character '#'")],
    [["extract", STORE, "a/fs@s9", OUT], 1, /no snapshot a\/fs@s9/],
    [["extract", STORE, "a/fs@s1", OTHER], 2, /DIR '.*' is not empty: expected a new or empty/],
    [["extract", STORE, "a/fs@s1", FILE], 2, /DIR '.*' exists and is not a directory/],
    [["extract", "--stream", FULL, OTHER], 2, /DIR '.*' is not empty/],
    [["list", DAMAGED], 1, /STORE '.*': its index.sqlite is not an SQLite database/],
    [["recv", DAMAGED, "a/fs", FULL], 1, /STORE '.*': its index.sqlite is not an SQLite/],
    [["extract", "--image", DIR, STORE, "a/fs@s1"], 2, isDir("--image PATH\\|DEVICE")],
    [["extract", "--image", "", STORE, "a/fs@s1"], 2, /--image needs a PATH or a DEVICE$/],
    [["extract", "--stream"], 2, /extract --stream takes FILE\.\.\. DIR/],
    [["extract", "--stream", DIR, OUT], 2, isDir("FILE")],
    [["extract", "--stream", NONE, OUT], 1, /FILE '.*': no such file$/],
    [["extract", "--stream", "--snapshot", "a@b@c", FULL, OUT], 2, badName("--snapshot NAME", "")],
    [["extract", "--snapshot", "s1", STORE, "a/fs@s1", OUT], 2, /--snapshot goes with --stream/],
    [["extract", "--bogus"], 2, unknown("--bogus")],
    // send
    [["send"], 2, /send takes STORE DATASET@SNAP$/],
    [["send", FILE, "a/fs@s1"], 2, notStore],
    [["send", NONE, "a/fs@s1"], 1, /STORE '.*': no such directory$/],
    [["send", STORE, "a/fs"], 2, badName("DATASET@SNAP", "no '@'")],
    [["send", "-i", "s#1", STORE, "a/fs@s1"], 2, badName("-i SNAP", "invalid character '#'")],
    [["send", "-I", "", STORE, "a/fs@s1"], 2, /-I needs a snapshot/],
    [["send", "-i", "@s1", "-I", "@s1", STORE, "a/fs@s1"], 2, /-i and -I exclude each other$/],
    [["send", STORE, "a/fs@nope"], 1, /nope/],
    [["send", "--bogus", STORE, "a/fs@s1"], 2, unknown("--bogus")],
    // image
    [["image"], 2, /image needs send or recv$/],
    [["image", "bogus"], 2, /unknown: image bogus$/],
    [["image", "send"], 2, /image send takes one IMAGE$/],
    [["image", "send", DIR], 2, isDir("IMAGE")],
    [["image", "send", NONE], 1, /none/],
    [["image", "recv", DIR], 2, isDir("IMAGE\\|DEVICE")],
    [["image", "recv", `${t}/img`, DIR], 2, isDir("STREAM")],
    [["image", "send", "--from-store", FILE, "a/vol@s1", `${t}/img`], 2, notStore],
    [["image", "send", "--bogus", `${t}/img`], 2, unknown("--bogus")],
    // the dispatcher
    [["bogus"], 2, /^zsend: unknown verb 'bogus'$/],
  ];
}

Deno.test("every verb answers bad arguments in one line, with status 2 or 1, no stack trace", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "zsend-args-" });
  try {
    await Deno.mkdir(`${tmp}/dir`);
    await Deno.mkdir(`${tmp}/other`);
    await Deno.writeTextFile(`${tmp}/other/notes.txt`, "mine\n");
    await Deno.writeTextFile(`${tmp}/file`, "not a stream, not a store\n".repeat(40));
    await Deno.mkdir(`${tmp}/damaged`);
    await Deno.writeTextFile(`${tmp}/damaged/index.sqlite`, "not a database\n");
    const recv = await runZsend(["recv", `${tmp}/store`, "a/fs", FULL]);
    assertEquals(recv.code, 0, recv.stderr);
    for (const [args, code, first] of cases(tmp)) {
      const shown = args.map((a) => a.replace(tmp, "T")).join(" ").slice(0, 80);
      await t.step(shown, async () => {
        const r = await runZsend(args);
        assert(!/^\s+at /m.test(r.stderr), `a stack trace:\n${r.stderr}`);
        assert(!r.stderr.includes("Uncaught"), r.stderr);
        assertEquals(r.code, code, r.stderr);
        const line = r.stderr.split("\n")[0]!;
        assertMatch(line, first);
        if (code === 2 && args[0] !== "bogus") assertMatch(r.stderr, /\nusage: zsend /);
      });
    }
    // Nothing of the refused commands was made.
    for (const name of ["new", "none", "out", "img"]) {
      await assertMissing(`${tmp}/${name}`);
    }
    assertEquals([...Deno.readDirSync(`${tmp}/dir`)].length, 0);
    assertEquals([...Deno.readDirSync(`${tmp}/other`)].map((e) => e.name), ["notes.txt"]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

async function assertMissing(path: string): Promise<void> {
  try {
    await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  throw new Error(`${path} was made`);
}

const VERBS = [
  "dump",
  "verify",
  "recv",
  "list",
  "destroy",
  "gc",
  "redup",
  "image",
  "extract",
  "ls",
  "cat",
  "send",
  "token",
  "drop-record",
  "decompress",
  "recompress",
];

Deno.test("-h, --help and help VERB print the verb's help to stdout, with status 0", async (t) => {
  for (const verb of VERBS) {
    await t.step(verb, async () => {
      const runs = [["help", verb], [verb, "-h"], [verb, "--help"], [verb, "x", "--help"]];
      const outs: string[] = [];
      for (const args of runs) {
        const r = await runZsend(args);
        assertEquals(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
        assertEquals(r.stderr, "", args.join(" "));
        assertMatch(r.stdout, new RegExp(`^usage: zsend ${verb} `));
        outs.push(r.stdout);
      }
      assert(outs.every((o) => o === outs[0]), verb);
      // Every flag the usage line names is explained below it.
      if (verb !== "image") {
        const text = outs[0]!;
        const usage = text.slice(0, text.indexOf("\n\n"));
        const body = text.slice(usage.length);
        for (const flag of new Set(usage.match(/(?<=[\[ |])--?[A-Za-z][a-z-]*/g) ?? [])) {
          assertMatch(body, new RegExp(`\\n  (-\\w, )?${flag}\\b`), `${verb} ${flag}`);
        }
      }
    });
  }
});

Deno.test("zsend --version, help, and no arguments", async () => {
  const v = await runZsend(["--version"]);
  assertEquals(v.code, 0);
  assertMatch(v.stdout, /^zsend \d+\.\d+\.\d+ \(deno \d+\.\d+\.\d+\)\n$/);
  const help = await runZsend(["help"]);
  assertEquals(help.code, 0);
  assertMatch(help.stdout, /^zsend: ZFS send streams without ZFS\n/);
  const none = await runZsend([]);
  assertEquals(none.code, 2);
  assertEquals(none.stdout, "");
  assertEquals(none.stderr, help.stdout);
  const bad = await runZsend(["help", "bogus"]);
  assertEquals(bad.code, 2);
  assertMatch(bad.stderr, /^zsend help: unknown verb 'bogus'\n/);
});
