/**
 * Resume tokens against real OpenZFS 2.3 (the corpus of tests/_openzfs.ts): `zsend token` prints
 * what OpenZFS 2.3.2's own `zstream token` prints, for the kernel's token and for zsend's; `zsend
 * verify --resume-token` of the cut stream agrees with the token the kernel kept for the same
 * bytes; random cuts of streams with every token field follow the kernel's rule.
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { DRR, FEATURE, RECORD_SIZE } from "../core/stream/constants.ts";
import { DATA_TYPE, decodeNvlist, nvlistGet } from "../core/stream/nvlist.ts";
import { readRecords, type StreamRecord } from "../core/stream/reader.ts";
import { findResumePoint } from "../core/resume/resume_point.ts";
import {
  decodeResumeToken,
  encodeResumeToken,
  type ResumeState,
  resumeState,
} from "../core/resume/resume_token.ts";
import { bestFletcher4 } from "../io/native/fletcher4_native.ts";
import { ROOT } from "./_fixtures.ts";
import {
  corpusFile,
  corpusManifest,
  corpusStream,
  corpusUnavailable,
  openzfsCorpus,
  runGuest,
  vmUnavailable,
} from "./_openzfs.ts";
import { manifestDiff } from "./helpers/tree_manifest.ts";
import { runZsend } from "./_run.ts";
import { expectedPoint } from "./helpers/resume_oracle.ts";

const why = corpusUnavailable();

/** `zstream token TOKEN` of OpenZFS 2.3.2's userland on this host. */
async function zstreamToken(token: string): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command("bash", {
    args: [`${ROOT}scripts/openzfs/zstream_token.sh`, token],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

async function expectSameText(token: string, what: string): Promise<void> {
  const ours = await runZsend(["token", token]);
  const theirs = await zstreamToken(token);
  assertEquals(theirs.code, 0, `zstream token of ${what}: ${theirs.err}`);
  assertEquals(ours.code, 0, `zsend token of ${what}: ${ours.stderr}`);
  assertEquals(ours.stdout, theirs.out, `zsend token and zstream token of ${what}`);
}

function kernelToken(): string {
  return Deno.readTextFileSync(corpusFile("fs-a.resume-token.txt")).trim();
}

Deno.test({
  name: "OpenZFS 2.3: zsend token prints what zstream token prints, for the kernel's token",
  ignore: why !== null,
  async fn() {
    await expectSameText(kernelToken(), "the kernel's token");
    // A corrupt token: both refuse it with the same words.
    const bad = kernelToken().replace(/-([0-9a-f])/, (_, d) => `-${d === "0" ? "1" : "0"}`);
    const ours = await runZsend(["token", bad]);
    const theirs = await zstreamToken(bad);
    assertEquals([ours.code, theirs.code], [1, 1]);
    assertEquals(ours.stderr, theirs.err);
  },
});

Deno.test({
  name: "OpenZFS 2.3: zstream token reads zsend's tokens, every field, as zsend token does",
  ignore: why !== null,
  async fn() {
    const all: ResumeState = {
      object: 0xffffffffffffn,
      offset: 0xfffffffffffe0000n,
      bytes: 98765432109876n,
      toguid: 0xfedcba9876543210n,
      toname: "pool/with space/and-more_.:x@snap",
      fromguid: 0x0123456789abcdefn,
      largeblockok: true,
      embedok: true,
      compressok: true,
      rawok: true,
      redactSnaps: [1n, 0xffffffffffffffffn],
      bookRedactSnaps: [42n],
    };
    await expectSameText(encodeResumeToken(all), "a token with every field");
    await expectSameText(
      encodeResumeToken({ ...resumeState(decodeResumeToken(kernelToken()).nvlist) }),
      "zsend's copy of the kernel's token",
    );
  },
});

Deno.test({
  name: "OpenZFS 2.3: verify --resume-token of the cut stream agrees with the kernel's token",
  ignore: why !== null,
  async fn() {
    const cut = corpusStream("fs-a.cut").file;
    const size = (await Deno.stat(cut)).size;
    const r = await runZsend(["verify", "--resume-token", "--json", cut]);
    assertEquals(r.code, 1, r.stderr);
    const o = JSON.parse(r.stdout);
    const ours = resumeState(decodeResumeToken(o.resume_token).nvlist);
    const kernel = resumeState(decodeResumeToken(kernelToken()).nvlist);
    // What does not depend on where the cut fell must be equal: the snapshot, the source, the
    // stream's features.
    assertEquals(
      { ...ours, object: 0n, offset: 0n, bytes: 0n },
      { ...kernel, object: 0n, offset: 0n, bytes: 0n },
    );
    // The kernel saves the position once per transaction group, so its token may name an
    // earlier record than the last one the cut left whole, never a later one; zsend names the
    // last one whose bytes and the header after it (whose checksum covers them) are in the file.
    const before = (a: ResumeState, b: ResumeState) =>
      a.object < b.object || (a.object === b.object && a.offset <= b.offset);
    assert(before(kernel, ours), `the kernel resumes at ${kernel.object}/${kernel.offset}`);
    assert(kernel.bytes <= ours.bytes);
    assert(Number(ours.bytes) + RECORD_SIZE + RECORD_SIZE <= size, "past the cut");
    assertEquals(o.resume.end, String(Number(ours.bytes) + RECORD_SIZE));
    // ... and when the last record is whole (this corpus: the cut falls in the next WRITE's
    // payload), the kernel applied it too: the tokens say the same but for their zlib bytes.
    if (kernel.bytes === ours.bytes) assertEquals(ours, kernel);
    // The stream that `zfs send -t` made from the kernel's token starts where the token says.
    const resumed = corpusStream("fs-a.resume").file;
    for await (const rec of readRecords((await Deno.open(resumed)).readable)) {
      const nvl = decodeNvlist(rec.payload);
      assertEquals(nvlistGet(nvl, "resume_object", DATA_TYPE.UINT64), kernel.object);
      assertEquals(nvlistGet(nvl, "resume_offset", DATA_TYPE.UINT64), kernel.offset);
      break;
    }
    // That stream cut before its first record: the position stays where it resumed from.
    const head = (await Deno.readFile(resumed)).subarray(0, 500);
    const scan = await findResumePoint([head]);
    assertEquals([scan.point?.state.object, scan.point?.state.offset], [
      kernel.object,
      kernel.offset,
    ]);
    assertEquals(scan.point?.recordIndex, -1);
  },
});

/** splitmix64 from the corpus's seed: cut positions repeat with the corpus. */
function positions(seed: string, n: number, size: number): number[] {
  let s = BigInt(seed || "1");
  const out: number[] = [];
  const M = (1n << 64n) - 1n;
  for (let i = 0; i < n; i++) {
    s = (s + 0x9e3779b97f4a7c15n) & M;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
    z ^= z >> 31n;
    out.push(RECORD_SIZE + Number(z % BigInt(size - RECORD_SIZE)));
  }
  return out;
}

Deno.test({
  name: "OpenZFS 2.3: 20 random cuts of streams with every token field follow the kernel's rule",
  ignore: why !== null,
  async fn() {
    const seed = openzfsCorpus().seed;
    const cases: [string, number, Partial<ResumeState>][] = [
      ["clone-b-c1.Lec", 7, { largeblockok: true, embedok: true, compressok: true }],
      ["enc-gcm-e1.raw", 7, { rawok: true, compressok: true }],
      ["fs-c.redactLec", 6, { largeblockok: true, embedok: true, compressok: true }],
    ];
    const tokens: string[] = [];
    for (const [name, n, flags] of cases) {
      const bytes = await Deno.readFile(corpusStream(name).file);
      const records: StreamRecord[] = [];
      for await (const r of readRecords([bytes])) records.push(r);
      const begin = records[0]!.header;
      if (begin.type !== DRR.BEGIN) throw new Error(`${name}: no BEGIN`);
      let redact: bigint[] | undefined;
      if (records[0]!.payload.length > 0) {
        redact = nvlistGet(
          decodeNvlist(records[0]!.payload),
          "redact_snaps",
          DATA_TYPE.UINT64_ARRAY,
        );
      }
      for (const cut of positions(`${seed}${n}`, n, bytes.length)) {
        const scan = await findResumePoint([bytes.subarray(0, cut)], {
          fletcher4: bestFletcher4(),
        });
        const p = scan.point!;
        const want = expectedPoint(records, cut);
        assertEquals(
          {
            object: p.state.object,
            offset: p.state.offset,
            bytes: p.state.bytes,
            index: p.recordIndex,
          },
          want,
          `${name} cut at ${cut}`,
        );
        const expected: ResumeState = {
          object: want.object,
          offset: want.offset,
          bytes: want.bytes,
          toguid: begin.toguid,
          toname: begin.toname,
          largeblockok: false,
          embedok: false,
          compressok: false,
          rawok: false,
          ...flags,
        };
        if (begin.fromguid !== 0n) expected.fromguid = begin.fromguid;
        if (redact !== undefined) expected.redactSnaps = redact;
        assertEquals(p.state, expected, `${name} cut at ${cut}`);
        tokens.push(encodeResumeToken(p.state));
      }
    }
    assertEquals(tokens.length, 20);
    for (const t of tokens.slice(0, 3).concat(tokens.slice(7, 8), tokens.slice(14, 15))) {
      await expectSameText(t, "a token of a random cut");
    }
  },
});

Deno.test({
  name:
    "OpenZFS 2.3 guest: zfs send -t takes zsend's tokens of cut streams, and the rest completes the receive",
  ignore: why !== null || vmUnavailable() !== null,
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "zsend-resume-vm-" });
    try {
      // Two cuts: the corpus's cut of a full `send -c`, and a cut of an incremental `-L -e -c`.
      const incr = await Deno.readFile(corpusStream("fs-a-b.Lec").file);
      await Deno.writeFile(
        `${work}/ab.cut.zstream`,
        incr.subarray(0, Math.floor(incr.length * 0.45)),
      );
      const cuts: [string, string, string][] = [
        ["a", corpusStream("fs-a.cut").file, "fs@a"],
        ["ab", `${work}/ab.cut.zstream`, "fs@b"],
      ];
      const ours = new Map<string, ResumeState>();
      for (const [name, file] of cuts) {
        const r = await runZsend(["verify", "--resume-token", file]);
        assertEquals(r.code, 1, r.stderr);
        await Deno.writeTextFile(`${work}/${name}.token`, r.stdout.trim());
        ours.set(name, resumeState(decodeResumeToken(r.stdout.trim()).nvlist));
      }
      assertEquals(ours.get("ab")!.fromguid, openzfsCorpus().snapshots.get("fs@a")!.guid);
      const plan = [
        "recv fs fs-a.c.zstream",
        "recv fs fs-a-b.Lec.zstream",
        "token a a.token",
        "token ab ab.token",
        "send-t a a.token",
        "send-t ab ab.token",
        "cut part fs-a.cut.zstream",
        "resume part a",
        "manifest part@a part-a",
        "recv part2 fs-a.c.zstream",
        // The incremental cut is only cut, not resumed: the real zfs receive -s of the rest
        // of this -L -e -c incremental (made by zfs send -t) hung OpenZFS 2.3.2 in the guest
        // for some cuts (seen at an OBJECT record's position), even with the kernel's own
        // position equal to zsend's; the full stream's cut below is resumed.
        "cut part2 ab.cut.zstream",
      ];
      await Deno.writeTextFile(`${work}/plan.txt`, plan.join("\n") + "\n");
      const { out } = await runGuest(`${ROOT}scripts/openzfs/guest/resume.sh`, [
        `${work}/plan.txt`,
        `${ROOT}scripts/lib_tree.sh`,
        corpusStream("fs-a.c").file,
        corpusStream("fs-a-b.Lec").file,
        corpusStream("fs-a.cut").file,
        `${work}/ab.cut.zstream`,
        `${work}/a.token`,
        `${work}/ab.token`,
      ]);
      const results = (await Deno.readTextFile(`${out}/results.txt`)).trim().split("\n");
      const status = (step: string) => results.find((l) => l.split(":")[0]!.endsWith(step));
      for (const step of ["recv fs fs-a.c.zstream", "recv fs fs-a-b.Lec.zstream"]) {
        assert(status(step)?.startsWith("ok "), `${step}: ${status(step)}`);
      }
      for (const [name, , snap] of cuts) {
        const token = (await Deno.readTextFile(`${work}/${name}.token`)).trim();
        const mine = ours.get(name)!;
        // zstream token with the real /dev/zfs reads zsend's token as zsend does.
        assert(status(`token ${name} ${name}.token`)?.startsWith("ok "), status(`token ${name}`));
        const text = await Deno.readTextFile(`${out}/${name}.zstream-token.txt`);
        assertEquals((await runZsend(["token", token])).stdout, text);
        // The real sender takes it and starts where it says, with the original stream's flags.
        const sent = status(`send-t ${name} ${name}.token`);
        assert(sent?.startsWith("ok "), `zfs send -t of zsend's token: ${sent}`);
        const v = await runZsend(["verify", `${out}/${name}.zstream`]);
        if (name === "a") assertEquals(v.code, 0, v.stderr);
        else if (v.code !== 0) {
          // OpenZFS 2.3.2's zfs send -t of a cut -L -e -c incremental has been seen to write a
          // WRITE_EMBEDDED whose logical size exceeds its length, which its own receive then
          // hangs on: zsend's verify says so rather than pass it.
          assertMatch(v.stderr, /WRITE_EMBEDDED logical size \d+ exceeds length/);
          console.log(
            `${name}: zsend verify refuses OpenZFS's resuming stream: ${v.stderr.trim()}`,
          );
        }
        for await (const rec of readRecords((await Deno.open(`${out}/${name}.zstream`)).readable)) {
          const h = rec.header;
          if (h.type !== DRR.BEGIN) throw new Error("no BEGIN");
          assertEquals([h.toguid, h.fromguid, h.toname], [
            mine.toguid,
            mine.fromguid ?? 0n,
            mine.toname,
          ]);
          const nvl = decodeNvlist(rec.payload);
          assertEquals(nvlistGet(nvl, "resume_object", DATA_TYPE.UINT64), mine.object);
          assertEquals(nvlistGet(nvl, "resume_offset", DATA_TYPE.UINT64), mine.offset);
          const f = (h.versioninfo >> 2n) & ((1n << 56n) - 1n);
          assert((f & BigInt(FEATURE.RESUMING)) !== 0n);
          assertEquals((f & BigInt(FEATURE.EMBED_DATA)) !== 0n, mine.embedok);
          assertEquals((f & BigInt(FEATURE.COMPRESSED)) !== 0n, mine.compressok);
          break;
        }
        // The kernel's own receive of the same cut bytes: its position is never past zsend's;
        // when it is the same (it synced the last record), the rest that zfs send -t made from
        // zsend's token completes it, and the tree is the snapshot's.
        const target = name === "a" ? "part" : "part2";
        const kt = (await Deno.readTextFile(`${out}/${target}.kernel-token.txt`)).trim();
        const kernel = resumeState(decodeResumeToken(kt).nvlist);
        assertEquals(
          { ...kernel, object: 0n, offset: 0n, bytes: 0n },
          { ...mine, object: 0n, offset: 0n, bytes: 0n },
        );
        assert(
          kernel.object < mine.object ||
            (kernel.object === mine.object && kernel.offset <= mine.offset),
          `${name}: the kernel is at ${kernel.object}/${kernel.offset}, zsend at ${mine.object}/${mine.offset}`,
        );
        const resumed = status(`resume ${target} ${name}`);
        if (name === "a" && kernel.object === mine.object && kernel.offset === mine.offset) {
          assertEquals(kernel.bytes, mine.bytes);
          assert(resumed?.startsWith("ok "), `${name}: ${resumed}`);
          const diff = manifestDiff(
            await Deno.readTextFile(corpusManifest(snap)),
            await Deno.readTextFile(`${out}/${target}-${snap.split("@")[1]}.manifest.txt`),
            10,
          );
          assertEquals(diff, [], `${name}: the resumed tree differs from ${snap}`);
        } else {
          console.log(
            `${name}: not resumed (kernel at ${kernel.object}/${kernel.offset}, zsend at ` +
              `${mine.object}/${mine.offset}): ${resumed ?? "the rest is not received here"}`,
          );
        }
      }
      await Deno.remove(out, { recursive: true });
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});
