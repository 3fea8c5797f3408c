/**
 * Progress of the long verbs. Not on a terminal (a pipe here): plain lines, no `\r` and no
 * escape codes, only with `--progress` (or `-v` where `-v` is the verb's own verbosity of
 * progress), nothing otherwise. On a terminal (a pseudo-terminal made by `script`): one line
 * redrawn with `\r` and cleared to its end. The line's text and `zfs send -v`/`-P`'s estimate
 * lines as units.
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { ZFS_FUSE_DIR } from "./_fixtures.ts";
import { runZsendOk, zsendCommand } from "./_run.ts";
import { formatProgress, Progress } from "../io/progress.ts";
import { estimateLines, niceNumber } from "../core/send/verbose.ts";

const F = (name: string) => `${ZFS_FUSE_DIR}/${name}.zstream`;
/** Plain lines as often as they come, so that a short run shows some. */
const FAST = { ZSEND_PROGRESS_INTERVAL_MS: "0" };
// deno-lint-ignore no-control-regex
const CONTROL = /[\r\x1b]/;

const ok = (args: string[], env: Record<string, string> = {}) => runZsendOk(args, { env });

/** The progress lines of a run's stderr (those that start with the verb's label). */
function progressLines(stderr: string, label: string): string[] {
  return stderr.split("\n").filter((l) => l.startsWith(label));
}

Deno.test("formatProgress() says bytes, total, percent, count, rate and time left", () => {
  const MiB = 2 ** 20;
  assertEquals(
    formatProgress({ bytes: 10 * MiB, total: 40 * MiB, records: 7, elapsedMs: 4000 }),
    "10.0 MiB of 40.0 MiB (25%), 7 records, 2.5 MiB/s, 12s left",
  );
  assertEquals(
    formatProgress({ bytes: 3 * MiB, total: null, records: 12, count: "files", elapsedMs: 1000 }),
    "3.0 MiB, 12 files, 3.0 MiB/s",
  );
  assertEquals(
    formatProgress({ bytes: 5, total: 5, elapsedMs: 1000 }),
    "5 B of 5 B (100%), 5 B/s",
  );
  assertEquals(
    formatProgress({ bytes: 100 * MiB, total: 100 * MiB * 200, elapsedMs: 1000 }),
    "100.0 MiB of 19.5 GiB (0%), 100.0 MiB/s, 3m19s left",
  );
});

Deno.test("Progress: a terminal gets one line redrawn, a pipe plain lines", () => {
  const term: string[] = [];
  const t = new Progress(100, { mode: "terminal", write: (s) => term.push(s), interval: 0 });
  t.update(50, 3);
  t.update(60, 4);
  t.done();
  assertEquals(term.length, 3);
  assert(term[0]!.startsWith("\r50 B of 100 B (50%), 3 records") && term[0]!.endsWith("\x1b[K"));
  assertEquals(term[2], "\n");
  const plain: string[] = [];
  const p = new Progress(null, { mode: "lines", write: (s) => plain.push(s), interval: 0 });
  p.update(10);
  p.done(20);
  p.done(30);
  assertEquals(plain.length, 2);
  assertMatch(plain[0]!, /^10 B, [\d.]+ [KM]?i?B\/s\n$/);
  assertMatch(plain[1]!, /^20 B, [\d.]+ [KM]?i?B\/s\n$/);
  // Within the interval nothing is drawn; a short run on a terminal leaves no line at all.
  const quiet: string[] = [];
  const q = new Progress(100, { mode: "terminal", write: (s) => quiet.push(s) });
  q.update(1);
  q.done();
  assertEquals(quiet, []);
});

Deno.test("niceNumber() and estimateLines() write what zfs send -v and -P write", () => {
  assertEquals(niceNumber(0, true), "0B");
  assertEquals(niceNumber(1023, true), "1023B");
  assertEquals(niceNumber(1024, false), "1K");
  assertEquals(niceNumber(1536, true), "1.50K");
  assertEquals(niceNumber(5 * 2 ** 30 + 2 ** 29, true), "5.50G");
  assertEquals(niceNumber(100 * 2 ** 20 + 1, true), "100M");
  const parts = [
    { to: "tank/fs@a", from: null, bytes: 1310720 },
    { to: "tank/fs@b", from: "a", bytes: 700 },
  ];
  assertEquals(
    estimateLines(parts, { parsable: false, compound: true }),
    "full send of tank/fs@a estimated size is 1.25M\n" +
      "send from @a to tank/fs@b estimated size is 700B\n" +
      "total estimated size is 1.25M\n",
  );
  assertEquals(
    estimateLines(parts, { parsable: true, compound: true }),
    "full\ttank/fs@a\t1310720\nincremental\ta\ttank/fs@b\t700\nsize\t1311420\n",
  );
  assertEquals(
    estimateLines([{ to: "tank/fs@b", from: "tank/fs@a", bytes: 900 }], {
      parsable: false,
      compound: false,
    }),
    "send from tank/fs@a to tank/fs@b estimated size is 900B\ntotal estimated size is 900\n",
  );
});

Deno.test("long verbs: plain progress lines with --progress, nothing without, no control codes", async () => {
  const base = await Deno.makeTempDir({ prefix: "zsend-progress-" });
  try {
    const store = `${base}/store`;
    const stream = F("fs-s1.full");
    const size = (await Deno.stat(stream)).size;
    const image = `${base}/vm.img`;
    await Deno.writeFile(
      image,
      crypto.getRandomValues(new Uint8Array(65536)).map((b, i) => i < 40000 ? b : 0),
    );
    await Deno.writeFile(`${base}/vm.zstream`, (await ok(["image", "send", image])).stdoutBytes);
    const runs: [string[], string][] = [
      [["verify", "--progress", stream], "zsend verify: "],
      [["dump", "--progress", stream], "zsend dump: "],
      [["recv", "--progress", store, "t/fs", stream], "zsend recv: "],
      [["redup", "--progress", F("fs-s2.dedup")], "zsend redup: "],
      [["send", "--progress", store, "t/fs@s1"], "zsend send: "],
      [["extract", "-q", "--progress", store, "t/fs@s1", `${base}/tree`], "zsend extract: "],
      [["image", "send", "--progress", image], "zsend image send: "],
      [
        ["image", "recv", "--progress", `${base}/copy.img`, `${base}/vm.zstream`],
        "zsend image recv: ",
      ],
    ];
    for (const [args, label] of runs) {
      const r = await ok(args, FAST);
      const lines = progressLines(r.stderr, label);
      assert(lines.length > 0, `${args[0]} --progress: no progress line in ${r.stderr}`);
      assert(!CONTROL.test(r.stderr), `${args[0]}: control codes on a pipe: ${r.stderr}`);
      // The last line has the whole count: an input file's size, what send wrote.
      const last = lines[lines.length - 1]!;
      if (args[0] === "verify" || args[0] === "dump" || args[0] === "recv") {
        assertMatch(last, new RegExp(`^${label}${(size / 1024).toFixed(1)} KiB of `));
        assertMatch(last, /\(100%\)/);
      }
      if (args[0] === "send") {
        assertEquals(last.slice(label.length).split(",")[0], fmt(r.stdoutBytes.length));
      }
    }
    // Without --progress (and not on a terminal): not a byte on stderr.
    for (
      const args of [
        ["verify", "--quiet", stream],
        ["dump", stream],
        ["redup", F("fs-s2.dedup")],
        ["send", store, "t/fs@s1"],
      ]
    ) {
      const r = await ok(args, FAST);
      assertEquals(r.stderr, "", `${args.join(" ")} printed on stderr`);
    }
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

function hasScript(): boolean {
  try {
    return new Deno.Command("script", { args: ["--version"] }).outputSync().success;
  } catch {
    return false;
  }
}

function fmt(n: number): string {
  return n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`;
}

Deno.test("send -v and -P: zfs send's estimate lines, on stdout with -n, exact sizes", async () => {
  const base = await Deno.makeTempDir({ prefix: "zsend-progress-" });
  try {
    const store = `${base}/store`;
    for (const s of ["fs-s1.full", "fs-s1-s2.incr", "fs-s2-s3.incr"]) {
      await ok(["recv", store, "t/fs", F(s)]);
    }
    const full = await ok(["send", store, "t/fs@s1"]);
    const n = await ok(["send", "-n", "-P", store, "t/fs@s1"]);
    assertEquals(
      n.stdout,
      `full\tt/fs@s1\t${full.stdoutBytes.length}\nsize\t${full.stdoutBytes.length}\n`,
    );
    assertEquals(n.stderr, "");
    const v = await ok(["send", "-n", "-v", "-i", "@s1", store, "t/fs@s3"]);
    assertMatch(
      v.stdout,
      /^send from t\/fs@s1 to t\/fs@s3 estimated size is \d+(\.\d+)?[BKM]\ntotal estimated size is \d+(\.\d+)?[KM]?\n$/,
    );
    // -I: one line per snapshot, short source names; the sizes add up to the substreams'.
    const i = await ok(["send", "-n", "-P", "-I", "s1", store, "t/fs@s3"]);
    const rows = i.stdout.trim().split("\n").map((l) => l.split("\t"));
    assertEquals(rows.map((r) => r.slice(0, 3).join(" ")), [
      "incremental s1 t/fs@s2",
      "incremental s2 t/fs@s3",
      `size ${Number(rows[0]![3]) + Number(rows[1]![3])}`,
    ]);
    const one = await ok(["send", "-i", "s1", store, "t/fs@s2"]);
    assertEquals(Number(rows[0]![3]), one.stdoutBytes.length);
    // Without -n the lines go to stderr and the stream to stdout, the same bytes as without -v.
    const sent = await ok(["send", "-v", "-i", "s1", store, "t/fs@s2"]);
    assertEquals(sent.stdoutBytes, one.stdoutBytes);
    assertMatch(sent.stderr, /^send from t\/fs@s1 to t\/fs@s2 estimated size is /);
    assert(!CONTROL.test(sent.stderr), sent.stderr);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test({
  name: "on a terminal: one line redrawn with \\r, cleared to its end",
  ignore: !hasScript(),
  async fn() {
    // script(1) gives the child a pseudo-terminal for stdin, stdout and stderr.
    const cmd = [...zsendCommand(), "verify", F("fs-r1.replicate")]
      .map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
    const out = await new Deno.Command("script", {
      args: ["-qec", cmd, "/dev/null"],
      env: { ZSEND_PROGRESS_INTERVAL_MS: "0" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assertEquals(out.code, 0, text);
    assertMatch(text, /OK: \d+ records/);
    // deno-lint-ignore no-control-regex
    assertMatch(text, /\rzsend verify: [^\r\n]*\(100%\)[^\r\n]*\x1b\[K/);
  },
});
