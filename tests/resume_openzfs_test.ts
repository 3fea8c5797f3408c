/**
 * Resume tokens against real OpenZFS 2.3 (the corpus of tests/_openzfs.ts): `zsend token` prints
 * what OpenZFS 2.3.2's own `zstream token` prints, for the kernel's token and for zsend's; `zsend
 * verify --resume-token` of the cut stream agrees with the token the kernel kept for the same
 * bytes; random cuts of streams with every token field follow the kernel's rule.
 */

import { assert, assertEquals } from "@std/assert";
import { DRR, RECORD_SIZE } from "../core/constants.ts";
import { DATA_TYPE, decodeNvlist, nvlistGet } from "../core/nvlist.ts";
import { readRecords, type StreamRecord } from "../core/reader.ts";
import { findResumePoint } from "../core/resume_point.ts";
import {
  decodeResumeToken,
  encodeResumeToken,
  type ResumeState,
  resumeState,
} from "../core/resume_token.ts";
import { bestFletcher4 } from "../io/native/fletcher4_native.ts";
import { ROOT } from "./_fixtures.ts";
import { corpusFile, corpusStream, corpusUnavailable, openzfsCorpus } from "./_openzfs.ts";
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
    assertEquals(o.resume.end, Number(ours.bytes) + RECORD_SIZE);
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
