/**
 * `recv -s`, resuming streams and `recv -A`, on streams built here: a stream cut at every
 * stretch of bytes (and damaged) keeps a partial receive whose token is what
 * `findResumePoint` (verify --resume-token) says; the partial receive is no snapshot; the rest
 * of the stream as `zfs send -t` would make it (RESUMING, resume_object/resume_offset, the
 * records from the resume point on) completes it into the snapshot a whole receive makes; a
 * resuming stream that does not match is refused with what was expected; without -s nothing
 * changes.
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { receiveStream } from "../io/receive.ts";
import { Store } from "../io/store/store.ts";
import { findResumePoint, type ResumePoint } from "../core/resume/resume_point.ts";
import { decodeResumeToken, encodeResumeToken, resumeState } from "../core/resume/resume_token.ts";
import { StreamVerifier } from "../core/stream/verify.ts";
import { DRR, FEATURE } from "../core/stream/constants.ts";
import { StreamError } from "../core/stream/errors.ts";
import { ZplStreamBuilder } from "./helpers/zpl_stream_builder.ts";
import { resumingStream } from "./helpers/resuming_stream.ts";
import { storeFingerprint } from "./helpers/store_fingerprint.ts";
import { pattern, records, recv, tmpStore } from "./helpers/resume_stores.ts";
import { runZsend } from "./_run.ts";
import { partialReceives, snapshotNames } from "./helpers/list_json.ts";

/** A small file system: a few files of several 512-byte blocks. */
function fsStream(): Uint8Array {
  const b = new ZplStreamBuilder({ toname: "src/fs@s1", toguid: 0x5151n });
  for (let i = 0; i < 4; i++) {
    b.file(4 + i, pattern(512 * (3 + i), i + 1));
    b.entry(3, `f${i}`, 4 + i);
  }
  return b.stream();
}

function partials(dir: string) {
  const store = Store.open(dir);
  try {
    return store.partialReceives();
  } finally {
    store.close();
  }
}

async function expectedPoint(bytes: Uint8Array): Promise<ResumePoint | null> {
  const v = new StreamVerifier();
  const scan = await findResumePoint([bytes], { check: (r) => v.check(r) });
  assert(scan.fault !== null);
  return scan.point;
}

Deno.test("recv -s: every cut keeps verify's resume point; the rest completes the snapshot", async () => {
  const whole = fsStream();
  const all = await records(whole);
  const ref = await tmpStore();
  assertEquals(await recv(ref, whole, false), null);
  const want = storeFingerprint(ref, { meta: false });
  assertEquals(Object.keys(want), ["bk/fs@s1"]);
  let completed = 0;
  // Every 127th byte, and the bytes around each record boundary.
  const cuts = new Set<number>();
  for (let at = 320; at < whole.length; at += 127) cuts.add(at);
  for (const r of all.slice(1)) for (const d of [-1, 0, 1, 312]) cuts.add(r.offset + d);
  for (const at of [...cuts].filter((c) => c > 312 && c < whole.length).sort((a, b) => a - b)) {
    const cut = whole.subarray(0, at);
    const dir = await tmpStore();
    const e = await recv(dir, cut, true);
    assert(e instanceof StreamError, `cut at ${at}: ${e}`);
    const point = (await expectedPoint(cut))!;
    assert(point !== null, `cut at ${at}`);
    const [p, ...more] = partials(dir);
    assertEquals(more, []);
    assertEquals(p?.token, encodeResumeToken(point.state), `cut at ${at}: the token`);
    // Invisible as a snapshot.
    assertEquals(storeFingerprint(dir, { meta: false }), {});
    // The rest, as zfs send -t makes it, completes it.
    assertEquals(await recv(dir, resumingStream(all, point), true), null, `cut at ${at}`);
    assertEquals(partials(dir), []);
    assertEquals(storeFingerprint(dir, { meta: false }), want, `cut at ${at}: resumed`);
    completed++;
    await Deno.remove(dir.replace(/\/store$/, ""), { recursive: true });
  }
  assert(completed > 50, String(completed));
  await Deno.remove(ref.replace(/\/store$/, ""), { recursive: true });
});

Deno.test("recv -s: a damaged payload is not applied; the resume point is before it", async () => {
  const whole = fsStream();
  const all = await records(whole);
  const ref = await tmpStore();
  await recv(ref, whole, false);
  const want = storeFingerprint(ref, { meta: false });
  for (const r of all.filter((r) => r.header.type === DRR.WRITE)) {
    const bad = whole.slice();
    bad[r.offset + 312 + 7]! ^= 1;
    const dir = await tmpStore();
    const e = await recv(dir, bad, true);
    assert(e instanceof StreamError);
    const point = (await expectedPoint(bad))!;
    assert(point.recordIndex < r.index);
    const [p] = partials(dir);
    assertEquals(p?.token, encodeResumeToken(point.state));
    // The damaged block is not in the partial receive.
    const store = Store.open(dir);
    const h = r.header as { object: bigint; offset: bigint };
    const row = store.db.prepare(
      "SELECT 1 FROM block_map WHERE snapshot = ? AND object = ? AND offset = ?",
    ).get(p!.id, Number(h.object), Number(h.offset));
    store.close();
    assertEquals(row, undefined, `the damaged record ${r.index} was applied`);
    assertEquals(await recv(dir, resumingStream(all, point), true), null);
    assertEquals(storeFingerprint(dir, { meta: false }), want, `damage in record ${r.index}`);
    await Deno.remove(dir.replace(/\/store$/, ""), { recursive: true });
  }
});

Deno.test("recv -s: a resuming stream that does not match is refused with what was expected; recv -A drops the partial receive", async () => {
  const whole = fsStream();
  const all = await records(whole);
  const dir = await tmpStore();
  const cut = whole.subarray(0, all[all.length - 3]!.offset + 400);
  await recv(dir, cut, true);
  const point = (await expectedPoint(cut))!;
  const before = partials(dir);
  assertEquals(before.length, 1);
  // Another snapshot's stream.
  let e = await recv(dir, resumingStream(all, point, 0x7777n), true);
  assert(e instanceof StreamError);
  assertMatch(e!.message, /cannot resume: the stream is of snapshot 7777/);
  assertMatch(
    e!.message,
    new RegExp(`expects .* snapshot 5151 \\(full\\) resuming at object ${point.state.object}`),
  );
  // A raw stream onto a partial receive that is not raw.
  e = await recv(dir, resumingStream(all, point, undefined, FEATURE.RAW), true);
  assert(e instanceof StreamError);
  assertMatch(e!.message, /raw/); // (the BEGIN rules may say so first)
  assertEquals(partials(dir), before);
  // From further on than what was kept.
  const later = { ...point, state: { ...point.state, offset: point.state.offset + 512n } };
  e = await recv(dir, resumingStream(all, later), true);
  assert(e instanceof StreamError);
  assertMatch(e!.message, /after what was kept/);
  // A whole stream onto the partial state.
  e = await recv(dir, whole, false);
  assert(e instanceof StreamError);
  assertMatch(e!.message, /partially-complete state/);
  assertEquals(partials(dir), before);
  // recv -A drops it; then the whole stream goes in.
  const a = await runZsend(["recv", "-A", dir, "bk/fs"]);
  assertEquals(a.code, 0, a.stderr);
  assertEquals(partials(dir), []);
  const again = await runZsend(["recv", "-A", dir, "bk/fs"]);
  assertEquals(again.code, 1);
  assertMatch(again.stderr, /does not have any resumable receive state/);
  assertEquals(await recv(dir, whole, false), null);
  assertEquals(Object.keys(storeFingerprint(dir)), ["bk/fs@s1"]);
  await Deno.remove(dir.replace(/\/store$/, ""), { recursive: true });
});

Deno.test("recv without -s: a cut stream leaves nothing, as before", async () => {
  const whole = fsStream();
  const dir = await tmpStore();
  const e = await recv(dir, whole.subarray(0, whole.length - 100), false);
  assert(e instanceof StreamError);
  assertEquals(partials(dir), []);
  assertEquals(storeFingerprint(dir), {});
  await Deno.remove(dir.replace(/\/store$/, ""), { recursive: true });
});

Deno.test("recv -s, cut: the CLI says what it kept; list shows the partial receive and its token", async () => {
  const whole = fsStream();
  const work = await Deno.makeTempDir({ prefix: "zsend-rs-cli-" });
  const file = `${work}/cut.zstream`;
  await Deno.writeFile(file, whole.subarray(0, whole.length - 600));
  const r = await runZsend(["recv", "-s", `${work}/store`, "bk/fs", file]);
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /kept a partial receive of bk\/fs@s1 .*receive_resume_token 1-/);
  const token = (await runZsend(["verify", "--resume-token", file])).stdout.trim();
  const l = await runZsend(["list", "-H", "-o", "name,receive_resume_token", `${work}/store`]);
  assertEquals(l.code, 0);
  assertEquals(l.stdout, `bk/fs\t${token}\n`);
  assertEquals(await snapshotNames(`${work}/store`), []);
  assertEquals((await partialReceives(`${work}/store`))[0]!.receive_resume_token, token);
  // The CLI's token decodes as OpenZFS's.
  const t = await runZsend(["token", token]);
  assertEquals(t.code, 0);
  assertMatch(t.stdout, /toname: 'src\/fs@s1'/);
  await Deno.remove(work, { recursive: true });
});

Deno.test("store: a schema 3 store (no partial receives) is migrated; recv -s works in it", async () => {
  const { DatabaseSync } = await import("node:sqlite");
  const whole = fsStream();
  const dir = await tmpStore();
  assertEquals(await recv(dir, whole, false), null);
  const db = new DatabaseSync(`${dir}/index.sqlite`);
  db.exec(
    "ALTER TABLE snapshots DROP COLUMN resume_token; UPDATE meta SET value = '3' WHERE key = 'schema'",
  );
  db.close();
  const want = storeFingerprint(dir);
  assertEquals(Object.keys(want), ["bk/fs@s1"]);
  const store = Store.open(dir);
  const schema = store.db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as {
    value: string;
  };
  store.close();
  assertEquals(schema.value, "4");
  const b = new ZplStreamBuilder({ toname: "src/other@s1", toguid: 0x6161n });
  b.file(4, pattern(4096, 9));
  b.entry(3, "g", 4);
  const other = b.stream();
  const s = Store.open(dir);
  await assertRejectsStream(() =>
    receiveStream(s, [other.subarray(0, other.length - 700)], {
      target: "bk/other",
      resumable: true,
    })
  );
  s.close();
  assertEquals(partials(dir).map((p) => p.datasetName), ["bk/other"]);
  assertEquals(storeFingerprint(dir), want);
  await Deno.remove(dir.replace(/\/store$/, ""), { recursive: true });
});

async function assertRejectsStream(f: () => Promise<unknown>): Promise<void> {
  try {
    await f();
  } catch (e) {
    assert(e instanceof StreamError, String(e));
    return;
  }
  throw new Error("no error");
}

Deno.test("recv -s: a resuming stream cut again keeps a partial receive whose bytes add up, and resumes again", async () => {
  const whole = fsStream();
  const all = await records(whole);
  const ref = await tmpStore();
  await recv(ref, whole, false);
  const want = storeFingerprint(ref, { meta: false });
  const dir = await tmpStore();
  const first = whole.subarray(0, all[6]!.offset + 100);
  await recv(dir, first, true);
  const p1 = (await expectedPoint(first))!;
  const rest = resumingStream(all, p1);
  const restRecords = await records(rest);
  // Cut the resuming stream in the payload of a late record.
  const second = rest.subarray(0, restRecords[restRecords.length - 4]!.offset + 330);
  const e = await recv(dir, second, true);
  assert(e instanceof StreamError);
  const p2 = (await expectedPoint(second))!;
  assert(p2.recordIndex > 0);
  const [kept] = partials(dir);
  // The kernel counts the bytes of the receive it resumed too.
  const state = { ...p2.state, bytes: p2.state.bytes + p1.state.bytes };
  assertEquals(kept?.token, encodeResumeToken(state));
  assertEquals(kept?.streamBytes, Number(state.bytes));
  // The rest of the original stream from the new point completes it.
  const byPosition = all.findIndex((r) =>
    r.index > 0 && r.header.type === restRecords[p2.recordIndex]!.header.type &&
    (r.header as { object?: bigint }).object === p2.state.object &&
    (r.header.type !== DRR.WRITE || (r.header as { offset: bigint }).offset === p2.state.offset)
  );
  assert(byPosition > 0);
  assertEquals(
    await recv(dir, resumingStream(all, { ...p2, recordIndex: byPosition }), true),
    null,
  );
  assertEquals(storeFingerprint(dir, { meta: false }), want);
  await Deno.remove(dir.replace(/\/store$/, ""), { recursive: true });
  await Deno.remove(ref.replace(/\/store$/, ""), { recursive: true });
});

Deno.test("recv -s: a resuming stream without resume_object/resume_offset is refused", async () => {
  const whole = fsStream();
  const all = await records(whole);
  const dir = await tmpStore();
  const cut = whole.subarray(0, all[5]!.offset + 100);
  await recv(dir, cut, true);
  const point = (await expectedPoint(cut))!;
  const stream = resumingStream(all, point);
  // Drop the nvlist: the BEGIN's payload length to 0 breaks checksums; make one without it.
  const recs = await records(stream);
  const { StreamWriter } = await import("../core/stream/writer.ts");
  const w = new StreamWriter();
  const b = recs[0]!.header as import("../core/stream/record.ts").DrrBegin;
  const chunks = [...w.begin({ ...b, payloadlen: 0 } as never)];
  for (const r of recs.slice(1, -1)) {
    chunks.push(...w.write(r.header as never, r.payload.length > 0 ? r.payload : undefined));
  }
  chunks.push(...w.end(b.toguid));
  const e = await recv(dir, concatAll(chunks), true);
  assert(e instanceof StreamError, String(e));
  assertMatch(e!.message, /lacks resume_object or resume_offset/);
  assertEquals(partials(dir).length, 1);
  await Deno.remove(dir.replace(/\/store$/, ""), { recursive: true });
});

function concatAll(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  chunks.reduce((at, c) => (out.set(c, at), at + c.length), 0);
  return out;
}

Deno.test("recv -s: checkpoints commit what was applied while the stream goes on; a crash keeps the last one, resumable", async () => {
  const whole = fsStream();
  const all = await records(whole);
  const ref = await tmpStore();
  await recv(ref, whole, false);
  const want = storeFingerprint(ref, { meta: false });
  for (const stop of [all[4]!.offset + 20, all[9]!.offset + 400, whole.length - 200]) {
    const dir = await tmpStore();
    const store = Store.open(dir, { create: true });
    // A source that dies (as a process killed between two checkpoints would stop).
    const dying = async function* (): AsyncGenerator<Uint8Array> {
      for (let at = 0; at < stop; at += 97) {
        yield whole.slice(at, Math.min(at + 97, stop));
        await Promise.resolve();
      }
      throw new TypeError("killed");
    };
    let err: unknown = null;
    let reported = "";
    try {
      await receiveStream(store, dying(), {
        target: "bk/fs",
        resumable: true,
        checkpointMs: 0,
        onPartial: (p) => reported = p.token,
      });
    } catch (e) {
      err = e;
    }
    store.close();
    assert(err instanceof TypeError, String(err));
    const [p, ...more] = partials(dir);
    assertEquals(more, []);
    assert(p !== undefined, `stop at ${stop}: no checkpoint kept`);
    assertEquals(reported, p!.token);
    assertEquals(storeFingerprint(dir, { meta: false }), {});
    const state = resumeState(decodeResumeToken(p!.token).nvlist);
    // The checkpoint is no later than what a cut at the same byte keeps.
    const cutPoint = (await expectedPoint(whole.subarray(0, stop)))!;
    assert(
      state.object < cutPoint.state.object ||
        (state.object === cutPoint.state.object && state.offset <= cutPoint.state.offset),
    );
    const index = all.findIndex((r) =>
      r.index > 0 &&
      ((r.header.type === DRR.OBJECT && state.offset === 0n) || r.header.type === DRR.WRITE) &&
      (r.header as { object: bigint }).object === state.object &&
      (r.header.type === DRR.OBJECT || (r.header as { offset: bigint }).offset === state.offset)
    );
    const point = { state, recordIndex: index < 0 ? -1 : index, end: 0 };
    assertEquals(await recv(dir, resumingStream(all, point), true), null, `stop at ${stop}`);
    assertEquals(storeFingerprint(dir, { meta: false }), want, `stop at ${stop}`);
    await Deno.remove(dir.replace(/\/store$/, ""), { recursive: true });
  }
  await Deno.remove(ref.replace(/\/store$/, ""), { recursive: true });
});

Deno.test("recv -s: kill -9 while the stream goes on leaves the last checkpoint, resumable", async () => {
  const { zsendCommand } = await import("./_run.ts");
  const { DatabaseSync } = await import("node:sqlite");
  // Larger than the reader's 4 MiB chunks, so that records are applied while stdin is open.
  const b = new ZplStreamBuilder({ toname: "src/fs@s1", toguid: 0x5151n });
  for (let i = 0; i < 6; i++) {
    b.file(4 + i, pattern(2 << 20, i + 1), {}, 131072);
    b.entry(3, `f${i}`, 4 + i);
  }
  const whole = b.stream();
  const all = await records(whole);
  const ref = await tmpStore();
  await recv(ref, whole, false);
  const want = storeFingerprint(ref, { meta: false });
  const dir = await tmpStore();
  const [exe, ...pre] = zsendCommand();
  const child = new Deno.Command(exe!, {
    args: [...pre, "recv", "-s", dir, "bk/fs", "-"],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
    env: { ZSEND_RECV_CHECKPOINT_MS: "0" },
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(whole.subarray(0, 9 << 20));
  // Wait for a checkpoint to be committed, then kill the receive.
  let seen = false;
  for (let i = 0; i < 200 && !seen; i++) {
    await new Promise((r) => setTimeout(r, 100));
    try {
      const db = new DatabaseSync(`${dir}/index.sqlite`, { readOnly: true });
      try {
        seen = db.prepare("SELECT 1 FROM snapshots WHERE resume_token IS NOT NULL").get() !==
          undefined;
      } finally {
        db.close();
      }
    } catch {
      // not made yet, or busy
    }
  }
  assert(seen, "no checkpoint was committed");
  child.kill("SIGKILL");
  await child.status;
  await w.close().catch(() => {});
  const [p, ...more] = partials(dir);
  assertEquals(more, []);
  assertEquals(storeFingerprint(dir, { meta: false }), {});
  const state = resumeState(decodeResumeToken(p!.token).nvlist);
  const index = all.findIndex((r) =>
    r.index > 0 &&
    ((r.header.type === DRR.OBJECT && state.offset === 0n) || r.header.type === DRR.WRITE) &&
    (r.header as { object: bigint }).object === state.object &&
    (r.header.type === DRR.OBJECT || (r.header as { offset: bigint }).offset === state.offset)
  );
  const point = { state, recordIndex: index < 0 ? -1 : index, end: 0 };
  assertEquals(await recv(dir, resumingStream(all, point), true), null);
  assertEquals(storeFingerprint(dir, { meta: false }), want);
  await Deno.remove(dir.replace(/\/store$/, ""), { recursive: true });
  await Deno.remove(ref.replace(/\/store$/, ""), { recursive: true });
});
