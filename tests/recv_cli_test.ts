/**
 * `zsend recv` at its edges: names as ZFS checks them (TARGET and the stream's own), `-n`
 * touching nothing, a first receive that fails taking back the store it made, a directory
 * that is not a store refused.
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { ZFS_FUSE_DIR } from "./_fixtures.ts";
import { runZsend } from "./_run.ts";

const F = (n: string) => `${ZFS_FUSE_DIR}/${n}.zstream`;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function entries(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

function noTrace(stderr: string): void {
  assert(!/^\s+at /m.test(stderr), stderr);
}

async function withTmp(fn: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "zsend-recv-cli-" });
  try {
    await fn(tmp);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** The full fixture with its BEGIN's toname replaced by one of the same length. */
async function renamed(toname: string): Promise<Uint8Array> {
  const bytes = await Deno.readFile(F("fs-s1.full"));
  const old = new TextEncoder().encode("fx1/fs@s1");
  const at = bytes.findIndex((_, i) => old.every((b, j) => bytes[i + j] === b));
  assert(at > 0 && at < 312 && toname.length === old.length);
  bytes.set(new TextEncoder().encode(toname), at);
  return bytes;
}

Deno.test("recv -n into a new STORE creates nothing and says would", async () => {
  await withTmp(async (tmp) => {
    const r = await runZsend(["recv", "-n", `${tmp}/s`, "a/fs", F("fs-s1.full")]);
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stdout, /^would receive full stream of a\/fs@s1 \(guid be1557e4eedde745\)/);
    assertEquals(await entries(tmp), []);
  });
});

Deno.test("recv -n -F says what it would destroy, and destroys nothing", async () => {
  await withTmp(async (tmp) => {
    const ok = async (args: string[]) => {
      const r = await runZsend(args);
      assertEquals(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      return r;
    };
    await ok(["recv", `${tmp}/a`, "a/fs", F("fs-s1.full")]);
    await ok(["recv", `${tmp}/a`, "a/fs", F("fs-s1-s3.incrI")]);
    const s1s3 = (await ok(["send", "-i", "@s1", `${tmp}/a`, "a/fs@s3"])).stdoutBytes;
    await Deno.writeFile(`${tmp}/s1s3`, s1s3);
    await ok(["recv", `${tmp}/b`, "a/fs", F("fs-s1.full")]);
    await ok(["recv", `${tmp}/b`, "a/fs", F("fs-s1-s2.incr")]);
    const before = (await ok(["list", "-t", "all", `${tmp}/b`])).stdout;
    const n = await ok(["recv", "-n", "-F", `${tmp}/b`, "a/fs", `${tmp}/s1s3`]);
    assertMatch(n.stdout, /^would destroy a\/fs@s2 \(rolled back by -F\)\nwould receive /);
    assertEquals((await ok(["list", "-t", "all", `${tmp}/b`])).stdout, before);
    const f = await ok(["recv", "-v", "-F", `${tmp}/b`, "a/fs", `${tmp}/s1s3`]);
    assertMatch(f.stdout, /^destroyed a\/fs@s2 \(rolled back by -F\)\nreceived /);
  });
});

Deno.test("a first recv that fails leaves no store behind", async () => {
  await withTmp(async (tmp) => {
    // An incremental without its source: refused at BEGIN.
    const r = await runZsend(["recv", `${tmp}/new`, "a/fs", F("fs-s1-s2.incr")]);
    assertEquals(r.code, 1);
    noTrace(r.stderr);
    assertEquals(await exists(`${tmp}/new`), false);
    // Nor the directories made on the way to it.
    const deep = await runZsend(["recv", `${tmp}/p/q/r`, "a/fs", F("fs-s1-s2.incr")]);
    assertEquals(deep.code, 1);
    assertEquals(await exists(`${tmp}/p`), false);
    // Into an empty directory: it stays, empty.
    await Deno.mkdir(`${tmp}/empty`);
    const e = await runZsend(["recv", `${tmp}/empty`, "a/fs", F("fs-s1-s2.incr")]);
    assertEquals(e.code, 1);
    assertEquals(await entries(`${tmp}/empty`), []);
    // A damaged stream (truncated) fails at its end: nothing stays either.
    const bytes = await Deno.readFile(F("fs-s1.full"));
    await Deno.writeFile(`${tmp}/cut`, bytes.subarray(0, bytes.length - 400));
    const c = await runZsend(["recv", `${tmp}/cut-store`, "a/fs", `${tmp}/cut`]);
    assertEquals(c.code, 1);
    assertEquals(await exists(`${tmp}/cut-store`), false);
    // Into an existing store, a failure leaves the store as it was.
    assertEquals((await runZsend(["recv", `${tmp}/s`, "a/fs", F("fs-s1.full")])).code, 0);
    const before = await entries(`${tmp}/s`);
    assertEquals((await runZsend(["recv", `${tmp}/s`, "b/fs", F("fs-s2-s3.incr")])).code, 1);
    assertEquals(await entries(`${tmp}/s`), before);
  });
});

Deno.test("recv refuses a directory that is neither empty nor a store", async () => {
  await withTmp(async (tmp) => {
    await Deno.mkdir(`${tmp}/home`);
    await Deno.writeTextFile(`${tmp}/home/notes.txt`, "mine\n");
    const r = await runZsend(["recv", `${tmp}/home`, "a/fs", F("fs-s1.full")]);
    assertEquals(r.code, 2);
    assertMatch(r.stderr, /^zsend recv: STORE '.*\/home' is a directory that is not a zsend store/);
    assertEquals(await entries(`${tmp}/home`), ["notes.txt"]);
  });
});

Deno.test("recv refuses a stream whose toname ZFS would refuse, and keeps nothing", async () => {
  await withTmp(async (tmp) => {
    for (
      const [toname, why] of [
        ["fx1/f#@s1", "invalid character '#'"],
        ["fx1@fs@s1", "more than one '@'"],
        ["fx1//f@s1", "empty component"],
        ["/fx1/f@s1", "leading '/'"],
        ["fx1/f*@s1", "invalid character '\\*'"],
      ]
    ) {
      await Deno.writeFile(`${tmp}/bad`, await renamed(toname!));
      for (const flags of [[], ["-d"], ["-e"]]) {
        const r = await runZsend(["recv", ...flags, `${tmp}/s`, "a/fs", `${tmp}/bad`]);
        assertEquals(r.code, 1, `${toname} ${flags}: ${r.stderr}`);
        assertMatch(
          r.stderr,
          new RegExp(
            `^zsend recv: record 0 \\(BEGIN at byte 0\\): the stream names its ` +
              `snapshot '${toname!.replace("*", "\\*")}': ${why}`,
          ),
        );
        noTrace(r.stderr);
        assertEquals(await exists(`${tmp}/s`), false);
      }
    }
  });
});

Deno.test("recv refuses a name that -d makes too long", async () => {
  await withTmp(async (tmp) => {
    const target = `t/${"x".repeat(248)}`;
    const r = await runZsend(["recv", "-d", `${tmp}/s`, target, F("fs-s1.full")]);
    assertEquals(r.code, 1, r.stderr);
    assertMatch(r.stderr, /cannot receive fx1\/fs@s1 as '.*': too long \(256 bytes/);
    assertEquals(await exists(`${tmp}/s`), false);
  });
});
