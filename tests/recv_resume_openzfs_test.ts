/**
 * `zsend recv -s` against real OpenZFS 2.3 (the corpus of tests/_openzfs.ts): a cut stream
 * kept as a partial receive whose token is the one `verify --resume-token` gives for the same
 * bytes (and, for the corpus's own cut, the kernel's); the kernel's `zfs send -t` stream then
 * completes it into the snapshot, whose tree equals the corpus manifest.
 *
 * fs-a.cut.zstream is a prefix of fs-a.c.zstream (both `zfs send -c` of fs@a), and
 * fs-a.resume.zstream is `zfs send -t` of the kernel's token for that cut. So any cut of
 * fs-a.c.zstream at or after the kernel's resume point is completed by fs-a.resume.zstream
 * too (the resuming stream sends everything from its position on: it may start before what
 * zsend kept, never after); a cut before it is refused, naming what the partial receive
 * expects.
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { decodeResumeToken, encodeResumeToken, resumeState } from "../core/resume/resume_token.ts";
import { findResumePoint } from "../core/resume/resume_point.ts";
import { readRecords, type StreamRecord } from "../core/stream/reader.ts";
import { StreamVerifier } from "../core/stream/verify.ts";
import { resumingStream } from "./helpers/resuming_stream.ts";
import { corpusFile, corpusManifest, corpusStream, corpusUnavailable } from "./_openzfs.ts";
import { manifestDiff, treeManifest } from "./helpers/tree_manifest.ts";
import { runZsend } from "./_run.ts";
import { partialReceives, snapshotNames } from "./helpers/list_json.ts";

const why = corpusUnavailable();
const S = (name: string) => corpusStream(name).file;

async function ok(args: string[]): Promise<string> {
  const r = await runZsend(args);
  assertEquals(r.code, 0, `zsend ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** The partial receives `list --json` shows, by dataset. */
function partials(
  store: string,
): Promise<{ name: string; receive_resume_token: string; stream_bytes: string }[]> {
  return partialReceives(store);
}

/** Extracts `snap` and compares it with the corpus manifest of fs@a. */
function expectFsA(store: string, snap: string, what: string): Promise<void> {
  return expectTree(store, snap, "fs@a", what);
}

/** Extracts `snap` and compares it with the corpus manifest of `key`. */
async function expectTree(store: string, snap: string, key: string, what: string): Promise<void> {
  const dir = `${await Deno.makeTempDir({ prefix: "zsend-rsx-" })}/tree`;
  try {
    await ok(["extract", "-q", store, snap, dir]);
    const diff = manifestDiff(
      await Deno.readTextFile(corpusManifest(key)),
      await treeManifest(dir),
      30,
    );
    assertEquals(diff, [], `${what}:\n${diff.join("\n")}`);
  } finally {
    await Deno.remove(dir.replace(/\/tree$/, ""), { recursive: true });
  }
}

/** A partial receive is no snapshot: list, ls, extract and send do not see it. */
async function expectInvisible(store: string, snap: string): Promise<void> {
  assertEquals(await snapshotNames(store), [], "a partial receive is listed as a snapshot");
  for (
    const args of [
      ["ls", store, snap],
      ["extract", store, snap, `${store}.x`],
      ["send", store, snap],
    ]
  ) {
    const r = await runZsend(args);
    assertEquals(r.code, 1, `zsend ${args.join(" ")} of a partial receive: ${r.stderr}`);
    assertEquals(r.stdout, "", `zsend ${args.join(" ")} wrote something`);
  }
}

/** A small seeded generator (mulberry32): the same cuts on every run. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6D2B79F5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function kernelState() {
  const token = Deno.readTextFileSync(corpusFile("fs-a.resume-token.txt")).trim();
  return resumeState(decodeResumeToken(token).nvlist);
}

Deno.test({
  name: "OpenZFS 2.3: recv -s of the kernel's cut, then its zfs send -t stream, gives fs@a",
  ignore: why !== null,
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "zsend-rs-" });
    const store = `${work}/store`;
    try {
      const cut = await runZsend(["recv", "-s", store, "oz/fs", S("fs-a.cut")]);
      assertEquals(cut.code, 1, cut.stderr);
      assertMatch(cut.stderr, /kept a partial receive of oz\/fs@a/);
      const [p, ...more] = await partials(store);
      assertEquals(more, []);
      assertEquals(p!.name, "oz/fs");
      // zsend's resume point for these bytes is the kernel's own (same nvlist; the hex may
      // differ, zsend compresses with its own deflate).
      const mine = resumeState(decodeResumeToken(p!.receive_resume_token).nvlist);
      assertEquals(mine, kernelState(), "zsend's partial receive and the kernel's token");
      const verified = await runZsend(["verify", "--resume-token", S("fs-a.cut")]);
      assertEquals(verified.stdout.trim(), p!.receive_resume_token);
      await expectInvisible(store, "oz/fs@a");
      // Without -s a new full stream onto the partial state is refused, the state kept.
      const again = await runZsend(["recv", store, "oz/fs", S("fs-a.c")]);
      assertEquals(again.code, 1);
      assertMatch(again.stderr, /partially-complete state/);
      assertEquals((await partials(store)).length, 1);
      const done = await runZsend(["recv", "-v", "-s", store, "oz/fs", S("fs-a.resume")]);
      assertEquals(done.code, 0, done.stderr);
      assertEquals(await partials(store), []);
      assertEquals(await snapshotNames(store), ["oz/fs@a"]);
      await expectFsA(store, "oz/fs@a", "fs-a.cut + fs-a.resume");
      // The completed snapshot goes out as a whole stream that verifies.
      const sent = await runZsend(["send", store, "oz/fs@a"]);
      assertEquals(sent.code, 0, sent.stderr);
      const v = await runZsend(["verify", "--quiet", "-"], { stdin: sent.stdoutBytes });
      assertEquals(v.code, 0, v.stderr);
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name: "OpenZFS 2.3: recv -s of fs-a.c cut and damaged at random bytes keeps verify's token; " +
    "fs-a.resume completes the cuts at or after its position, is refused before it",
  ignore: why !== null,
  async fn() {
    const whole = await Deno.readFile(S("fs-a.c"));
    const cutLength = (await Deno.stat(S("fs-a.cut"))).size;
    const kernel = kernelState();
    const next = rng(20261206);
    // Cuts on both sides of the kernel's position, and two damaged streams.
    const cases: { name: string; bytes: Uint8Array }[] = [];
    for (let i = 0; i < 3; i++) {
      const at = 400 + Math.floor(next() * (cutLength - 400));
      cases.push({ name: `cut at ${at}`, bytes: whole.subarray(0, at) });
    }
    for (let i = 0; i < 3; i++) {
      const at = cutLength + Math.floor(next() * (whole.length - cutLength - 1000));
      cases.push({ name: `cut at ${at}`, bytes: whole.subarray(0, at) });
    }
    for (let i = 0; i < 2; i++) {
      const at = 400 + Math.floor(next() * (whole.length - 1000));
      const bytes = whole.slice();
      bytes[at]! ^= 0x10;
      cases.push({ name: `byte ${at} damaged`, bytes });
    }
    const work = await Deno.makeTempDir({ prefix: "zsend-rsc-" });
    const seen = { completed: 0, refused: 0 };
    try {
      for (const [i, c] of cases.entries()) {
        const file = `${work}/case.zstream`;
        await Deno.writeFile(file, c.bytes);
        const store = `${work}/store${i}`;
        const r = await runZsend(["recv", "-s", store, "oz/fs", file]);
        assertEquals(r.code, 1, `${c.name}: ${r.stderr}`);
        const [p, ...more] = await partials(store);
        assert(p !== undefined, `${c.name}: no partial receive kept: ${r.stderr}`);
        assertEquals(more, []);
        const verified = await runZsend(["verify", "--resume-token", file]);
        assertEquals(verified.code, 1);
        assertEquals(
          p!.receive_resume_token,
          verified.stdout.trim(),
          `${c.name}: recv -s keeps what verify --resume-token says`,
        );
        await expectInvisible(store, "oz/fs@a");
        const mine = resumeState(decodeResumeToken(p!.receive_resume_token).nvlist);
        const atOrAfter = mine.object > kernel.object ||
          (mine.object === kernel.object && mine.offset >= kernel.offset);
        const resumed = await runZsend(["recv", "-s", store, "oz/fs", S("fs-a.resume")]);
        if (atOrAfter) {
          assertEquals(resumed.code, 0, `${c.name}: ${resumed.stderr}`);
          seen.completed++;
          assertEquals(await partials(store), []);
          await expectFsA(store, "oz/fs@a", `${c.name} + fs-a.resume`);
        } else {
          assertEquals(resumed.code, 1, `${c.name}: a resume from later was taken`);
          seen.refused++;
          assertMatch(
            resumed.stderr,
            new RegExp(`resuming at object ${mine.object} offset ${mine.offset} or before`),
          );
          // Still there, still the same; recv -A drops it and the whole stream goes in.
          assertEquals((await partials(store))[0], p);
          await ok(["recv", "-A", store, "oz/fs"]);
          assertEquals(await partials(store), []);
          const none = await runZsend(["recv", "-A", store, "oz/fs"]);
          assertEquals(none.code, 1);
          if (i === 0) {
            await ok(["recv", store, "oz/fs", S("fs-a.c")]);
            await expectFsA(store, "oz/fs@a", `${c.name}, dropped, then fs-a.c`);
          }
        }
        await Deno.remove(store, { recursive: true }).catch(() => {});
      }
      assert(seen.completed >= 3 && seen.refused >= 3, JSON.stringify(seen));
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name: "OpenZFS 2.3: recv -s of fs-a-b.incr cut at random bytes, then the rest from its resume " +
    "point (as zfs send -t sends it, made from the whole stream), gives fs@b; fs@a stays",
  ignore: why !== null,
  async fn() {
    const whole = await Deno.readFile(S("fs-a-b.incr"));
    const all: StreamRecord[] = [];
    for await (const r of readRecords([whole])) all.push({ ...r, payload: r.payload.slice() });
    const next = rng(12061205);
    const work = await Deno.makeTempDir({ prefix: "zsend-rsi-" });
    try {
      for (let i = 0; i < 3; i++) {
        const at = 400 + Math.floor(next() * (whole.length - 400));
        const cut = whole.subarray(0, at);
        const store = `${work}/store${i}`;
        await ok(["recv", store, "oz/fs", S("fs-a.full")]);
        await Deno.writeFile(`${work}/cut`, cut);
        const r = await runZsend(["recv", "-s", store, "oz/fs", `${work}/cut`]);
        assertEquals(r.code, 1, r.stderr);
        const [p] = await partials(store);
        const v = new StreamVerifier();
        const point = (await findResumePoint([cut], { check: (x) => v.check(x) })).point!;
        assertEquals(p?.receive_resume_token, encodeResumeToken(point.state), `cut at ${at}`);
        assert(point.state.fromguid !== undefined);
        // fs@a is untouched and the only snapshot.
        assertEquals(await snapshotNames(store), ["oz/fs@a"]);
        await expectFsA(store, "oz/fs@a", `fs@a beside the partial receive (cut at ${at})`);
        // An incremental onto the partial state is refused.
        const other = await runZsend(["recv", store, "oz/fs", S("fs-a-b.incr")]);
        assertEquals(other.code, 1);
        assertMatch(other.stderr, /partially-complete state/);
        await Deno.writeFile(`${work}/rest`, resumingStream(all, point));
        const done = await runZsend(["recv", "-s", store, "oz/fs", `${work}/rest`]);
        assertEquals(done.code, 0, `cut at ${at}: ${done.stderr}`);
        assertEquals(await partials(store), []);
        await expectTree(store, "oz/fs@b", "fs@b", `fs-a-b.incr cut at ${at}, resumed`);
        await expectFsA(store, "oz/fs@a", `fs@a after the resumed fs@b (cut at ${at})`);
        await Deno.remove(store, { recursive: true });
      }
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});
