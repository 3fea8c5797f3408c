/**
 * `send -t TOKEN` and `send --saved` on streams built here: for a stream cut anywhere, the
 * token `recv -s` keeps, sent from a store holding the snapshot, completes the partial receive
 * into the snapshot a whole receive makes; the resuming stream is the whole stream's records
 * from the resume point on (the resume object's OBJECT and FREE past its end again, its data
 * from the block holding the offset); `send --saved` of a partial receive, received with
 * `recv -s` into another store, keeps the same token there; tokens the store cannot answer are
 * refused with what is missing.
 */

import { assert, assertEquals, assertMatch, assertThrows } from "@std/assert";
import { concat } from "@std/bytes";
import { sendStream } from "../io/send.ts";
import { sendResumeStream, sendSavedStream } from "../io/send_resume.ts";
import { Store } from "../io/store/store.ts";
import {
  decodeResumeToken,
  encodeResumeToken,
  type ResumeState,
  resumeState,
} from "../core/resume/resume_token.ts";
import { resumeStart } from "../core/send/resume_sender.ts";
import type { StreamRecord } from "../core/stream/reader.ts";
import { DRR, FEATURE } from "../core/stream/constants.ts";
import { DATA_TYPE, decodeNvlist, nvlistGet } from "../core/stream/nvlist.ts";
import { type DrrBegin, featureFlags, hasFeature } from "../core/stream/record.ts";
import type { StreamChunk } from "../core/stream/writer.ts";
import { OT, ZplStreamBuilder } from "./helpers/zpl_stream_builder.ts";
import { storeFingerprint } from "./helpers/store_fingerprint.ts";
import { dropStore, pattern, records, recv, tmpStore } from "./helpers/resume_stores.ts";
import { runZsend } from "./_run.ts";

/** Files of several blocks, and a sparse object with holes inside and past its data. */
function fsStream(): Uint8Array {
  const b = new ZplStreamBuilder({ toname: "src/fs@s1", toguid: 0x5151n });
  for (let i = 0; i < 4; i++) {
    b.file(4 + i, pattern(512 * (3 + i), i + 1));
    b.entry(3, `f${i}`, 4 + i);
  }
  b.raw({
    object: 40,
    type: OT.PLAIN_FILE_CONTENTS,
    bonustype: 0,
    bonus: new Uint8Array(0),
    blksz: 4096,
    maxblkid: 9n,
    blocks: new Map([[0, pattern(4096, 9)], [3, pattern(4096, 10)], [4, pattern(4096, 11)]]),
  });
  return b.stream();
}

/** A stream's bytes; each chunk copied as it comes (the writer may reuse its buffers). */
const bytesOf = (chunks: Iterable<StreamChunk>) =>
  concat(Array.from(chunks, (c) => (c as Uint8Array).slice()));

function withStore<T>(dir: string, f: (s: Store) => T): T {
  const store = Store.open(dir);
  try {
    return f(store);
  } finally {
    store.close();
  }
}

/** What a store that received `bytes` whole holds. */
async function wholeReceive(bytes: Uint8Array): Promise<Record<string, string>> {
  const dir = await tmpStore();
  assertEquals(await recv(dir, bytes, false), null);
  const out = storeFingerprint(dir, { meta: false });
  await dropStore(dir);
  return out;
}

const tokenOf = (dir: string) => withStore(dir, (s) => s.partialReceives()[0]?.token ?? null);
const stateOf = (token: string) => resumeState(decodeResumeToken(token).nvlist);

/** What a record is, for comparing a resuming stream's records with the whole stream's. */
function shape(r: StreamRecord): string {
  const h = r.header as unknown as Record<string, unknown>;
  return `${r.header.type}/${h.object}/${h.offset}/${h.length}/${r.payload.length}`;
}

/** The records of a whole stream that `zfs send -t` sends again from `s` on (dmu_send.c). */
function expectedRest(all: StreamRecord[], s: ResumeState, blksz: number): string[] {
  const start = resumeStart(s.offset, blksz);
  return all.filter((r) => {
    const h = r.header as unknown as { object: bigint; offset: bigint };
    switch (r.header.type) {
      case DRR.OBJECT:
      case DRR.SPILL:
        return h.object >= s.object;
      case DRR.WRITE:
      case DRR.WRITE_EMBEDDED:
        return h.object > s.object || (h.object === s.object && h.offset >= start);
      default:
        return false;
    }
  }).map(shape);
}

const DATA = new Set<number>([DRR.OBJECT, DRR.SPILL, DRR.WRITE, DRR.WRITE_EMBEDDED]);

Deno.test("send -t: every cut's token, sent from a store with the snapshot, completes the receive", async () => {
  const ref = await tmpStore();
  assertEquals(await recv(ref, fsStream(), false), null);
  // zsend's own stream of the snapshot is what gets cut.
  const whole = withStore(ref, (s) => bytesOf(sendStream(s, "bk/fs@s1")));
  const want = await wholeReceive(whole);
  const all = await records(whole);
  const blksz = new Map<bigint, number>();
  for (const r of all) {
    if (r.header.type === DRR.OBJECT) blksz.set(r.header.object, r.header.blksz);
  }
  const cuts = new Set<number>();
  for (let at = 320; at < whole.length; at += 433) cuts.add(at);
  for (const r of all.slice(1)) for (const d of [-1, 312]) cuts.add(r.offset + d);
  let completed = 0;
  const points = new Set<string>();
  for (const at of [...cuts].filter((c) => c > 312 && c < whole.length).sort((a, b) => a - b)) {
    const dir = await tmpStore();
    assert(await recv(dir, whole.subarray(0, at), true) !== null, `cut at ${at}`);
    const token = tokenOf(dir)!;
    const state = stateOf(token);
    points.add(`${state.object}/${state.offset}`);
    const rest = withStore(ref, (s) => bytesOf(sendResumeStream(s, state)));
    const got = await records(rest);
    // BEGIN: the snapshot, RESUMING, the position in its nvlist.
    const begin = got[0]!.header as DrrBegin;
    assertEquals(begin.type, DRR.BEGIN);
    assert(hasFeature(featureFlags(begin.versioninfo), FEATURE.RESUMING));
    assertEquals(begin.toguid, 0x5151n);
    const nvl = decodeNvlist(got[0]!.payload);
    assertEquals(nvlistGet(nvl, "resume_object", DATA_TYPE.UINT64), state.object);
    assertEquals(nvlistGet(nvl, "resume_offset", DATA_TYPE.UINT64), state.offset);
    assertEquals(got[got.length - 1]!.header.type, DRR.END);
    // The records are the whole stream's from the resume point on.
    assertEquals(
      got.filter((r) => DATA.has(r.header.type)).map(shape),
      expectedRest(all, state, blksz.get(state.object)!),
      `cut at ${at}`,
    );
    // No FREE or FREEOBJECTS before the resume point.
    for (const r of got) {
      const h = r.header as unknown as { object: bigint; firstobj: bigint };
      if (r.header.type === DRR.FREE) assert(h.object >= state.object);
      if (r.header.type === DRR.FREEOBJECTS) assert(h.firstobj >= state.object);
    }
    assertEquals(await recv(dir, rest, true), null, `cut at ${at}: the rest`);
    assertEquals(storeFingerprint(dir, { meta: false }), want, `cut at ${at}: resumed`);
    completed++;
    await dropStore(dir);
  }
  assert(completed > 40, String(completed));
  // The cuts resumed inside objects (offset > 0), at OBJECT records, and in the sparse one.
  assert([...points].some((p) => !p.endsWith("/0")), [...points].join());
  assert([...points].some((p) => p.startsWith("40/")), [...points].join());
  await dropStore(ref);
});

Deno.test("send --saved: another store's recv -s of it keeps the same token; the rest completes it", async () => {
  const ref = await tmpStore();
  await recv(ref, fsStream(), false);
  const whole = withStore(ref, (s) => bytesOf(sendStream(s, "bk/fs@s1")));
  const want = await wholeReceive(whole);
  const all = await records(whole);
  let same = 0;
  for (const r of all.slice(2, -1)) {
    const at = r.offset + 100;
    const a = await tmpStore(), b = await tmpStore();
    await recv(a, whole.subarray(0, at), true);
    const token = tokenOf(a)!;
    const saved = withStore(a, (s) => bytesOf(sendSavedStream(s, "bk/fs", stateOf(token))));
    const got = await records(saved, true);
    // From the start, no RESUMING, no END.
    assert(!hasFeature(featureFlags((got[0]!.header as DrrBegin).versioninfo), FEATURE.RESUMING));
    assert(got.every((x) => x.header.type !== DRR.END));
    assert(await recv(b, saved, true) !== null);
    assertEquals(tokenOf(b), token, `cut at ${at}`);
    same++;
    const rest = withStore(ref, (s) => bytesOf(sendResumeStream(s, stateOf(tokenOf(b)!))));
    assertEquals(await recv(b, rest, true), null);
    assertEquals(storeFingerprint(b, { meta: false }), want, `cut at ${at}: resumed`);
    for (const d of [a, b]) await dropStore(d);
  }
  assert(same > 10, String(same));
  await dropStore(ref);
});

Deno.test("send -t: a token the store cannot answer is refused with what is missing", async () => {
  const ref = await tmpStore();
  await recv(ref, fsStream(), false);
  const base: ResumeState = {
    object: 5n,
    offset: 512n,
    bytes: 1000n,
    toguid: 0x5151n,
    toname: "src/fs@s1",
    largeblockok: false,
    embedok: false,
    compressok: false,
    rawok: false,
  };
  const refused = (s: ResumeState, re: RegExp) =>
    withStore(ref, (st) => {
      const e = assertThrows(() => [...sendResumeStream(st, s)], TypeError);
      assertMatch(e.message, re);
    });
  refused({ ...base, toguid: 0x77n }, /'src\/fs@s1' used in the initial send .* not in the store/);
  refused({ ...base, toguid: 0x77n, toname: "bk/fs@s1" }, /no longer the same snapshot/);
  refused({ ...base, fromguid: 0x99n }, /incremental source 0x99 no longer exists/);
  refused({ ...base, rawok: true }, /raw send \(rawok\) but bk\/fs@s1 is not encrypted/);
  refused({ ...base, redactSnaps: [1n] }, /not redacted with respect to/);
  withStore(ref, (st) => {
    const e = assertThrows(() => [...sendResumeStream(st, { ...base, object: 77n })], RangeError);
    assertMatch(e.message, /object 77 is not in bk\/fs@s1/);
  });
  // The CLI: usage errors, and the refusals as one line.
  const t = encodeResumeToken(base);
  const cases: [string[], number, RegExp][] = [
    [["send", "-t", t, "-i", "@a", ref], 2, /invalid flags combined with -t/],
    [["send", "-t", t, ref, "bk/fs@s1"], 2, /send -t TOKEN takes STORE/],
    [["send", "--saved", ref, "bk/fs@s1"], 2, /must name the dataset/],
    [["send", "--saved", "-c", ref, "bk/fs"], 2, /incompatible flags combined with --saved/],
    [["send", "--saved", ref, "bk/fs"], 1, /'bk\/fs' does not have any resumable receive state/],
    [["send", "-t", "1-0-0-", ref], 1, /resume token is corrupt/],
    [["send", "-t", encodeResumeToken({ ...base, fromguid: 0x99n }), ref], 1, /0x99/],
  ];
  for (const [args, code, re] of cases) {
    const r = await runZsend(args);
    assertEquals(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assertMatch(r.stderr, re);
    if (code === 1) assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
  // And a good one through the CLI is the library's stream.
  const r = await runZsend(["send", "-t", t, ref]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stdoutBytes, withStore(ref, (st) => bytesOf(sendResumeStream(st, base))));
  await dropStore(ref);
});
