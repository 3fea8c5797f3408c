/**
 * Volume images: `zsend image send` of sparse random images (full and incremental), checked by
 * `zsend verify`, record by record against the sender's rules, and by `zsend image recv`
 * making the same bytes with the same holes; loop devices as source and target where the
 * machine allows. zfs-fuse cannot create volumes, so these are round trips and format facts.
 */

import { assert, assertEquals, assertGreater, assertLessOrEqual, assertMatch } from "@std/assert";
import { DRR, FEATURE, OBJSET_TYPE } from "../core/stream/constants.ts";
import { readRecords, type StreamRecord } from "../core/stream/reader.ts";
import { type DrrBegin, type DrrWrite, featureFlags } from "../core/stream/record.ts";
import {
  BlockBitmap,
  dnodeLevels,
  VolumeReceiver,
  type VolumeStep,
  volumeSteps,
  volumeStream,
} from "../core/send/volume.ts";
import { verifyStream } from "../core/stream/verify.ts";
import { StreamWriter } from "../core/stream/writer.ts";
import { readGuidFile, receiveImage, sendImage } from "../io/image.ts";
import { ROOT, skipNote, ZFS_FUSE_DIR } from "./_fixtures.ts";
import { freshUnavailable } from "./_fresh.ts";
import { runZsend, runZsendToFile, zsendCommand } from "./_run.ts";
import { sh, TestPool } from "./helpers/zfs_pool.ts";
import { xorshift32 } from "./helpers/prng.ts";
import { concat } from "@std/bytes";

const MiB = 1 << 20;
const BS = 16384;

// --- helpers ---------------------------------------------------------------------------------

const prng = xorshift32;

function randomBytes(rand: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  const words = new Uint32Array(out.buffer, 0, n >>> 2);
  for (let i = 0; i < words.length; i++) words[i] = rand();
  for (let i = words.length * 4; i < n; i++) out[i] = rand() & 255;
  return out;
}

function pwrite(path: string, data: Uint8Array, offset: number): void {
  using f = Deno.openSync(path, { write: true });
  f.seekSync(offset, Deno.SeekMode.Start);
  let done = 0;
  while (done < data.length) done += f.writeSync(data.subarray(done));
}

/** Whether two files (or devices) hold the same bytes; the first differing offset if not. */
async function firstDifference(a: string, b: string): Promise<number | null> {
  using fa = await Deno.open(a);
  using fb = await Deno.open(b);
  const x = new Uint8Array(4 * MiB), y = new Uint8Array(4 * MiB);
  for (let at = 0;;) {
    const n = await readFull(fa, x), m = await readFull(fb, y);
    const k = Math.min(n, m);
    for (let i = 0; i < k; i++) if (x[i] !== y[i]) return at + i;
    if (n !== m) return at + k;
    if (n === 0) return null;
    at += n;
  }
}

async function readFull(f: Deno.FsFile, buf: Uint8Array): Promise<number> {
  let done = 0;
  while (done < buf.length) {
    const n = await f.read(buf.subarray(done));
    if (n === null) break;
    done += n;
  }
  return done;
}

/** The 16 KiB blocks of a file that are not all zeros. */
function dataBlocks(path: string, bs = BS): number[] {
  const out: number[] = [];
  using f = Deno.openSync(path);
  const buf = new Uint8Array(bs);
  for (let i = 0;; i++) {
    let done = 0;
    while (done < bs) {
      const n = f.readSync(buf.subarray(done));
      if (n === null) break;
      done += n;
    }
    if (done === 0) return out;
    if (buf.subarray(0, done).some((b) => b !== 0)) out.push(i);
  }
}

function beginOf(r: StreamRecord | undefined): DrrBegin {
  if (r?.header.type !== DRR.BEGIN) throw new Error("not a BEGIN");
  return r.header;
}

function writeOf(r: StreamRecord | undefined): DrrWrite {
  if (r?.header.type !== DRR.WRITE) throw new Error("not a WRITE");
  return r.header;
}

async function records(bytes: Uint8Array): Promise<StreamRecord[]> {
  return await Array.fromAsync(readRecords([bytes]));
}

function describe(r: StreamRecord): string {
  const h = r.header;
  switch (h.type) {
    case DRR.OBJECT:
      return `OBJECT ${h.object} ${h.object_type} ${h.blksz}`;
    case DRR.FREE:
      return `FREE ${h.object} ${h.offset} ${h.length === (1n << 64n) - 1n ? -1 : h.length}`;
    case DRR.FREEOBJECTS:
      return `FREEOBJECTS ${h.firstobj} ${h.numobjs}`;
    case DRR.WRITE:
      return `WRITE ${h.object} ${h.offset}`;
    default:
      return `TYPE ${h.type}`;
  }
}

/**
 * A 256 MiB sparse image: random extents (some not block-aligned, one a few bytes), a region of
 * written zeros (allocated, but all zero), and holes everywhere else.
 */
async function makeImage(path: string, seed: number): Promise<void> {
  await Deno.writeFile(path, new Uint8Array(0));
  await Deno.truncate(path, 256 * MiB);
  const rand = prng(seed);
  for (let i = 0; i < 24; i++) {
    const len = 4096 + (rand() % (2 * MiB));
    const at = rand() % (256 * MiB - len);
    pwrite(path, randomBytes(rand, len), at);
  }
  pwrite(path, randomBytes(rand, 4 * BS), 256 * MiB - 4 * BS); // the last blocks
  pwrite(path, new Uint8Array([1, 2, 3]), 100 * MiB + 7777); // a few bytes in a hole
  pwrite(path, new Uint8Array(3 * MiB), 200 * MiB); // zeros, allocated
}

const tmp = await Deno.makeTempDir({ prefix: "zsend-image-" });
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(tmp, { recursive: true });
  } catch { /* already gone */ }
});

// --- the walk over the block tree ------------------------------------------------------------

/**
 * The kernel's rules with explicit birth times (dmu_traverse.c, send_cb, dump_free), written
 * independently of volumeSteps: blocks with data in the old image were born in txg 1, blocks
 * that differ in txg 2 (a block that became zero is a hole born then), blocks never written
 * have birth 0; an indirect block's birth is its children's latest; a block pointer is visited
 * when its birth is 0 or after the source; the records then merge as dump_free merges them.
 */
function kernelFrees(
  count: number,
  oldCount: number,
  dataNew: Set<number>,
  dataOld: Set<number>,
  incremental: boolean,
): string[] {
  const extent = incremental ? Math.max(count, oldCount) : count;
  const levels = dnodeLevels(extent - 1);
  const maxblkid = count - 1;
  const birth = new Int32Array(extent);
  for (let b = 0; b < extent; b++) {
    const n = dataNew.has(b), o = incremental && dataOld.has(b);
    const changed = incremental ? n !== o : n;
    birth[b] = changed ? 2 : o ? 1 : 0;
  }
  const fromTxg = incremental ? 1 : 0;
  const out: [string, number, number][] = [];
  const visit = (level: number, start: number) => {
    const span = 1024 ** level;
    let b = 0, hole = true;
    for (let i = start; i < Math.min(start + span, extent); i++) {
      b = Math.max(b, birth[i]!);
      if (dataNew.has(i)) hole = false;
    }
    if (b !== 0 && b <= fromTxg) return; // traverse_visitbp
    if (hole || level === 0) {
      if (start > maxblkid) return; // send_cb: past maxblkid, not metadata
      out.push(hole ? ["F", start, start + span] : ["W", start, start + 1]);
      return;
    }
    for (let i = 0; i < 1024; i++) visit(level - 1, start + i * (span / 1024));
  };
  for (let j = 0; j < 3; j++) visit(levels - 1, j * 1024 ** (levels - 1));
  // dump_free: contiguous frees merge; a write breaks them.
  const merged: string[] = [];
  let pending: [number, number] | null = null;
  for (const [k, a, z] of out) {
    if (k === "F") {
      if (pending !== null && pending[1] === a) pending[1] = z;
      else {
        if (pending !== null) merged.push(`F${pending[0]}-${pending[1]}`);
        pending = [a, z];
      }
    } else {
      if (pending !== null) merged.push(`F${pending[0]}-${pending[1]}`);
      pending = null;
      merged.push(`W${a}`);
    }
  }
  if (pending !== null) merged.push(`F${pending[0]}-${pending[1]}`);
  return merged;
}

function mergedSteps(steps: Iterable<VolumeStep>): string[] {
  const out: string[] = [];
  let pending: [number, number] | null = null;
  for (const s of steps) {
    if (s.kind === "free") {
      if (pending !== null && pending[1] === s.from) pending[1] = s.to;
      else {
        if (pending !== null) out.push(`F${pending[0]}-${pending[1]}`);
        pending = [s.from, s.to];
      }
    } else {
      if (pending !== null) out.push(`F${pending[0]}-${pending[1]}`);
      pending = null;
      out.push(`W${s.block}`);
    }
  }
  if (pending !== null) out.push(`F${pending[0]}-${pending[1]}`);
  return out;
}

Deno.test("volumeSteps() walks the block tree as the kernel's traversal rules do", () => {
  const rand = prng(42);
  for (let trial = 0; trial < 60; trial++) {
    const count = 1 + rand() % (trial < 30 ? 40 : 5000);
    const oldCount = trial % 3 === 0 ? 1 + rand() % 5000 : count;
    const density = [0, 0.001, 0.05, 0.5, 1][trial % 5]!;
    const pick = (n: number) => {
      const s = new Set<number>();
      for (let b = 0; b < n; b++) if (rand() / 2 ** 32 < density) s.add(b);
      // Runs, so that whole indirect blocks are holes or full.
      if (n > 1500 && rand() % 2 === 0) { for (let b = 1024; b < 2048; b++) s.delete(b); }
      return s;
    };
    const dataNew = pick(count);
    // The old image: random, or the new one with a tenth of its blocks different.
    const dataOld = trial % 2 === 0 ? pick(oldCount) : new Set(
      [...dataNew].filter((b) => b < oldCount && rand() % 10 !== 0).concat([rand() % oldCount]),
    );
    for (const incremental of [false, true]) {
      const data = new BlockBitmap(count);
      for (const b of dataNew) data.set(b);
      const extent = incremental ? Math.max(count, oldCount) : count;
      let changed = data;
      if (incremental) {
        changed = new BlockBitmap(extent);
        for (let b = 0; b < extent; b++) {
          if (dataNew.has(b) !== (b < oldCount && dataOld.has(b))) changed.set(b);
        }
      }
      const ours = mergedSteps(
        volumeSteps({ count, data, changed, levels: dnodeLevels(extent - 1) }),
      );
      const theirs = kernelFrees(count, oldCount, dataNew, dataOld, incremental);
      assertEquals(ours, theirs, `trial ${trial} count ${count} incremental ${incremental}`);
    }
  }
});

Deno.test("volumeStream(): the records of a zvol send, in the sender's order", async () => {
  // 4 blocks of 512 (2 levels): data in block 1 only.
  const data = new BlockBitmap(4);
  data.set(1);
  const chunks = [...volumeStream(
    { toname: "p/v@a", toguid: 0x77n, blockSize: 512, creationTime: 1234n },
    { count: 4, data, changed: data },
    () => new Uint8Array(512).fill(0xab),
  )];
  const rs = await records(concat(chunks));
  const begin = beginOf(rs[0]);
  assertEquals(begin.objset_type, OBJSET_TYPE.ZVOL);
  assertEquals(begin.flags, 4 | 8); // FREERECORDS | SPILL_BLOCK, as dmu_send sets them
  assertEquals(featureFlags(begin.versioninfo), 0n);
  assertEquals(begin.creation_time, 1234n);
  assertEquals(rs.slice(1, -1).map(describe), [
    "OBJECT 1 23 512",
    "FREE 1 2048 -1",
    "FREE 1 0 512",
    "WRITE 1 512",
    "FREE 1 1024 1024",
    "OBJECT 2 24 512",
    "FREE 2 512 -1",
    "WRITE 2 0",
    "FREE 2 512 1024",
    "FREEOBJECTS 3 29",
  ]);
  const w = writeOf(rs[4]);
  assertEquals([w.object_type, w.checksumtype, w.compressiontype], [23, 7, 0]);
  assertEquals(w.key_prop, 0x200000000n); // lsize 512, psize 512, compression off
  assertEquals(rs[4]!.payload, new Uint8Array(512).fill(0xab));
  const zap = rs[8]!;
  assertEquals(writeOf(zap).checksumtype, 2); // as an embedded block is sent without -e
  assertEquals(
    new DataView(zap.payload.buffer, zap.payload.byteOffset).getBigUint64(64, true),
    2048n,
  );
  await verifyStream(chunks);
  // Large blocks need the feature, as zfs send -L sets it.
  const big = new BlockBitmap(2);
  big.set(0);
  const large = [...volumeStream({ toname: "p/v@b", toguid: 1n, blockSize: MiB }, {
    count: 2,
    data: big,
    changed: big,
  }, () => new Uint8Array(MiB).fill(1))];
  const lb = beginOf((await records(concat(large)))[0]);
  assertEquals(featureFlags(lb.versioninfo), BigInt(FEATURE.LARGE_BLOCKS));
  await verifyStream(large);
});

// --- 256 MiB images through the command line -------------------------------------------------

const SRC = `${tmp}/src.img`;
const DST = `${tmp}/dst.img`;
const NEW = `${tmp}/new.img`;

Deno.test("zsend image send | verify | image recv: 256 MiB sparse image, same bytes, same holes", async () => {
  await makeImage(SRC, 7);
  const want = dataBlocks(SRC);
  const send = await runZsend(["image", "send", "-v", "--name", "tank/vm@one", SRC]);
  assertEquals(send.code, 0, send.stderr);
  const stream = send.stdoutBytes;
  await Deno.writeFile(`${tmp}/full.zstream`, stream);
  const v = await runZsend(["verify", `${tmp}/full.zstream`]);
  assertEquals(v.code, 0, v.stderr + v.stdout);
  const rs = await records(stream);
  const writes = rs.filter((r) => r.header.type === DRR.WRITE && r.header.object === 1n);
  assertEquals(writes.map((r) => Number((r.header as { offset: bigint }).offset) / BS), want);
  // No FREE of object 1 covers a data block; every other block is covered by one.
  const covered = new Uint8Array(256 * MiB / BS);
  for (const r of rs) {
    const h = r.header;
    if (h.type !== DRR.FREE || h.object !== 1n || h.length === (1n << 64n) - 1n) continue;
    for (let b = Number(h.offset) / BS; b < Number(h.offset + h.length) / BS; b++) {
      if (b < covered.length) covered[b] = 1;
    }
  }
  for (const b of want) assertEquals(covered[b], 0, `block ${b} is data`);
  assertEquals(covered.reduce((a, x) => a + x, 0) + want.length, covered.length);

  const recv = await runZsend(["image", "recv", "-v", DST, `${tmp}/full.zstream`]);
  assertEquals(recv.code, 0, recv.stderr);
  assertEquals(await firstDifference(SRC, DST), null);
  // Holes kept: the copy holds exactly its data blocks (the zeros the source had written are
  // holes now).
  const src = await Deno.stat(SRC), dst = await Deno.stat(DST);
  const dataBytes = want.length * BS;
  assertLessOrEqual(dataBytes, dst.blocks! * 512);
  assertLessOrEqual(dst.blocks! * 512, dataBytes + MiB);
  assertGreater(src.blocks! * 512, dst.blocks! * 512 + 2 * MiB);
  assertEquals(dst.size, 256 * MiB);
  const side = readGuidFile(`${DST}.zsend-guid`)!;
  assertEquals(side.name, "tank/vm@one");
  assertEquals(side.volsize, 256 * MiB);
  // The same bytes give the same stream (guids from the content), whatever the file's mtime.
  await Deno.utime(SRC, 1, 1);
  const again = await sendImage(SRC, { blockSize: BS, name: "tank/vm@one" });
  assertEquals(again.toguid, side.guid);
});

Deno.test("zsend image send --from: only the changed blocks, and recv applies them", async () => {
  await Deno.copyFile(SRC, NEW);
  const rand = prng(99);
  const changedBlocks = new Set<number>();
  // Rewritten data blocks, a few bytes changed in one, new data in holes.
  for (const b of [0, 37, 4000, 9000, 16383]) {
    pwrite(NEW, randomBytes(rand, BS), b * BS);
    changedBlocks.add(b);
  }
  pwrite(NEW, new Uint8Array([0x55]), 100 * MiB + 7777);
  changedBlocks.add(Math.floor((100 * MiB + 7777) / BS));
  // Data blocks zeroed: they become FREEs, not WRITEs.
  const before = new Set(dataBlocks(SRC));
  const zeroed = [...before].filter((b) => !changedBlocks.has(b)).slice(3, 6);
  for (const b of zeroed) pwrite(NEW, new Uint8Array(BS), b * BS);

  const send = await runZsend(["image", "send", "--from", SRC, "--name", "tank/vm@two", NEW]);
  assertEquals(send.code, 0, send.stderr);
  const rs = await records(send.stdoutBytes);
  const begin = beginOf(rs[0]);
  assertEquals(begin.fromguid, readGuidFile(`${DST}.zsend-guid`)!.guid);
  const writes = rs.filter((r) => r.header.type === DRR.WRITE && r.header.object === 1n);
  assertEquals(
    writes.map((r) => Number((r.header as { offset: bigint }).offset) / BS),
    [...changedBlocks].sort((a, b) => a - b),
  );
  // The size did not change: object 2's ZAP is not sent again.
  assert(!rs.some((r) => r.header.type === DRR.WRITE && r.header.object === 2n));
  await verifyStream([send.stdoutBytes]);

  const recv = await runZsend(["image", "recv", "-v", DST], { stdin: send.stdoutBytes });
  assertEquals(recv.code, 0, recv.stderr);
  assertEquals(await firstDifference(NEW, DST), null);
  assertEquals(readGuidFile(`${DST}.zsend-guid`)!.name, "tank/vm@two");
  // Twice is once too many: the image now holds @two.
  const twice = await runZsend(["image", "recv", DST], { stdin: send.stdoutBytes });
  assertEquals(twice.code, 1);
  assertMatch(twice.stderr, /incremental stream from guid [0-9a-f]+, but the image holds/);
  // A full stream onto it needs -F.
  const full = await Deno.readFile(`${tmp}/full.zstream`);
  const noF = await runZsend(["image", "recv", DST], { stdin: full });
  assertEquals(noF.code, 1);
  assertMatch(noF.stderr, /add -F/);
  const withF = await runZsend(["image", "recv", "-F", DST], { stdin: full });
  assertEquals(withF.code, 0, withF.stderr);
  assertEquals(await firstDifference(SRC, DST), null);
  // And an incremental onto an image with no guid file needs -g.
  await Deno.remove(`${DST}.zsend-guid`);
  const noBase = await runZsend(["image", "recv", DST], { stdin: send.stdoutBytes });
  assertEquals(noBase.code, 1);
  assertMatch(noBase.stderr, /guid is not known/);
  const g = begin.fromguid.toString(16);
  const withG = await runZsend(["image", "recv", "-g", `0x${g}`, DST], {
    stdin: send.stdoutBytes,
  });
  assertEquals(withG.code, 0, withG.stderr);
  assertEquals(await firstDifference(NEW, DST), null);
});

Deno.test("zsend image send: payloads the kernel copies or maps from the image (pipe, file) equal those read", async () => {
  const memory = { ZSEND_NO_NATIVE: "1" };
  for (const args of [["--name", "tank/vm@one", SRC], ["--from", SRC, "--name", "t/v@2", NEW]]) {
    const read = await runZsend(["image", "send", ...args], { env: memory });
    assertEquals(read.code, 0, read.stderr);
    await verifyStream([read.stdoutBytes]);
    const piped = await runZsend(["image", "send", ...args]);
    assertEquals(piped.code, 0, piped.stderr);
    assertEquals(piped.stdoutBytes, read.stdoutBytes, `pipe: ${args.join(" ")}`);
    // Into a file: gathered from the image mapped (writev), and by sendfile.
    const file = await runZsendToFile(["image", "send", ...args]);
    assertEquals(file, read.stdoutBytes, `file: ${args.join(" ")}`);
    const sent = await runZsendToFile(["image", "send", ...args], { ZSEND_NO_MMAP: "1" });
    assertEquals(sent, read.stdoutBytes, `file, sendfile: ${args.join(" ")}`);
  }
});

Deno.test("zsend image send: outputs that refuse sendfile, a closed pipe, an image that shrinks", async () => {
  const img = `${tmp}/edges.img`;
  const rand = prng(17);
  await Deno.writeFile(img, new Uint8Array(0));
  await Deno.truncate(img, 64 * MiB);
  pwrite(img, randomBytes(rand, 40 * MiB), 3 * MiB);
  const args = ["image", "send", "--name", "t/v@e", img];
  const read = await runZsend(args, { env: { ZSEND_NO_NATIVE: "1" } });
  assertEquals(read.code, 0, read.stderr);
  // O_APPEND: the first payload's sendfile fails with EINVAL after its header went out, and
  // the rest goes through memory.
  const out = `${tmp}/edges.out`;
  await Deno.writeTextFile(out, "before\n");
  const [exe, ...pre] = zsendCommand();
  const appended = await new Deno.Command("sh", {
    args: ["-c", 'out="$1"; shift; exec "$@" >> "$out"', "sh", out, exe!, ...pre, ...args],
    stderr: "piped",
  }).output();
  assertEquals(appended.code, 0, new TextDecoder().decode(appended.stderr));
  assertEquals(
    await Deno.readFile(out),
    concat([new TextEncoder().encode("before\n"), read.stdoutBytes]),
  );
  // A reader that goes away: quiet, exit 0 (as cat into head).
  const child = new Deno.Command(exe!, {
    args: [...pre, ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .spawn();
  const reader = child.stdout.getReader();
  await reader.read();
  await reader.cancel();
  const [status, stderr] = await Promise.all([child.status, new Response(child.stderr).text()]);
  assertEquals([status.code, stderr], [0, ""]);
  // The image cut short after the scan: the copy from it says so.
  const cutImg = `${tmp}/edges-cut.img`;
  const code = `
    import { sendImage } from "${ROOT}io/image.ts";
    import { writeStreamOutput } from "${ROOT}io/stream_output.ts";
    const plan = await sendImage("${cutImg}", { blockSize: 16384, payloadRefs: true });
    Deno.truncateSync("${cutImg}", 20 * 1024 * 1024);
    writeStreamOutput(plan.chunks);`;
  for (const env of [{}, { ZSEND_NO_NATIVE: "1" }]) {
    await Deno.copyFile(img, cutImg);
    const cut = await new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      env,
      stdout: "null",
      stderr: "piped",
    }).output();
    assertEquals(cut.code, 1);
    assertMatch(new TextDecoder().decode(cut.stderr), /edges-cut\.img ends before byte 20987904/);
  }
});

Deno.test("image send/recv: volumes that grow and shrink, other block sizes", async () => {
  const a = `${tmp}/grow-a.img`, b = `${tmp}/grow-b.img`, c = `${tmp}/grow-c.img`;
  const out = `${tmp}/grow-out.img`;
  const rand = prng(5);
  await Deno.writeFile(a, new Uint8Array(0));
  await Deno.truncate(a, 3 * MiB);
  pwrite(a, randomBytes(rand, 5000), 100000);
  pwrite(a, randomBytes(rand, 512), 3 * MiB - 512);
  await Deno.copyFile(a, b);
  await Deno.truncate(b, 5 * MiB);
  pwrite(b, randomBytes(rand, 70000), 4 * MiB);
  await Deno.copyFile(b, c);
  await Deno.truncate(c, MiB);
  for (const bs of [512, 4096, 128 * 1024]) {
    await Deno.remove(out).catch(() => {});
    await Deno.remove(`${out}.zsend-guid`).catch(() => {});
    const steps: [string, string | undefined][] = [[a, undefined], [b, a], [c, b]];
    for (const [image, from] of steps) {
      const plan = await sendImage(image, { blockSize: bs, ...(from ? { from } : {}) });
      const chunks = [...plan.chunks] as Uint8Array[];
      await verifyStream(chunks);
      const rs = await records(concat(chunks));
      // The ZAP (object 2, block 0) is sent with every size change.
      assertEquals(
        rs.some((r) => r.header.type === DRR.WRITE && r.header.object === 2n),
        from === undefined || plan.scan.sizeChanged,
      );
      await receiveImage(readRecords(chunks), out);
      assertEquals(await firstDifference(image, out), null, `${image} at block size ${bs}`);
    }
  }
});

Deno.test("image recv refuses what is not one volume; image send refuses a bad block size", async () => {
  const img = `${tmp}/refuse.img`;
  await Deno.writeFile(img, new Uint8Array(0));
  // A filesystem stream.
  const fs = await runZsend(["image", "recv", img, `${ZFS_FUSE_DIR}/fs-s1.full.zstream`]);
  assertEquals(fs.code, 1);
  assertMatch(fs.stderr, /not a volume stream: the objset type is 2/);
  // A compound stream.
  const rr = await runZsend(["image", "recv", img, `${ZFS_FUSE_DIR}/fs-r1.replicate.zstream`]);
  assertEquals(rr.code, 1);
  assertMatch(rr.stderr, /compound stream/);
  // Records that would free the volume's objects.
  const w = new StreamWriter();
  const bad = [
    ...w.begin({ toname: "p/v@a", toguid: 3n, objset_type: OBJSET_TYPE.ZVOL }),
    ...w.write({ type: DRR.FREEOBJECTS, firstobj: 0n, numobjs: 32n, toguid: 3n }),
    ...w.end(),
  ];
  const rx = new VolumeReceiver();
  let fault = "";
  try {
    for await (const r of readRecords(bad)) rx.accept(r);
  } catch (e) {
    fault = (e as Error).message;
  }
  assertMatch(fault, /free the volume's own objects/);
  // A block size no volume can have.
  const size = await runZsend(["image", "send", "--block-size", "1000", img]);
  assertEquals(size.code, 1);
  assertMatch(size.stderr, /block size 1000 is not a power of two/);
});

Deno.test("image recv writes embedded, compressed-off and by-reference blocks", async () => {
  const out = `${tmp}/embedded.img`;
  const w = new StreamWriter();
  const toguid = 9n;
  const small = new Uint8Array(104).fill(0x5a);
  const block = new Uint8Array(4096).fill(0x33);
  const prop = new Uint8Array(512);
  const pv = new DataView(prop.buffer);
  pv.setBigUint64(0, 0x8000000000000003n, true);
  pv.setBigUint64(64, 16384n, true);
  prop.set(new TextEncoder().encode("size"), 78);
  const stream = [
    ...w.begin({
      toname: "p/v@e",
      toguid,
      objset_type: OBJSET_TYPE.ZVOL,
      versioninfo: 1n | (BigInt(FEATURE.EMBED_DATA) << 2n),
    }),
    ...w.write({ type: DRR.OBJECT, object: 1n, object_type: 23, blksz: 4096, toguid }),
    ...w.write({ type: DRR.FREE, object: 1n, offset: 16384n, length: (1n << 64n) - 1n, toguid }),
    ...w.write({
      type: DRR.WRITE_EMBEDDED,
      object: 1n,
      offset: 0n,
      length: 4096n,
      toguid,
      compression: 2,
      lsize: 104,
      psize: 104,
    }, small),
    ...w.write({
      type: DRR.WRITE,
      object: 1n,
      object_type: 23,
      offset: 4096n,
      logical_size: 4096n,
      toguid,
    }, block),
    ...w.write({
      type: DRR.WRITE_BYREF,
      object: 1n,
      offset: 12288n,
      length: 4096n,
      toguid,
      refguid: toguid,
      refobject: 1n,
      refoffset: 4096n,
    }),
    ...w.write({ type: DRR.OBJECT, object: 2n, object_type: 24, blksz: 512, toguid }),
    ...w.write({
      type: DRR.WRITE,
      object: 2n,
      object_type: 24,
      offset: 0n,
      logical_size: 512n,
      toguid,
    }, prop),
    ...w.end(),
  ];
  const got = await receiveImage(readRecords(stream), out);
  assertEquals(got.finalSize, 16384);
  const bytes = await Deno.readFile(out);
  const want = new Uint8Array(16384);
  want.set(small, 0);
  want.set(block, 4096);
  want.set(block, 12288);
  assertEquals(bytes, want);
});

// --- loop devices ----------------------------------------------------------------------------

async function losetup(file: string): Promise<string | null> {
  try {
    const out = await new Deno.Command("losetup", {
      args: ["-f", "--show", file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) return null;
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return null;
  }
}

async function detach(dev: string): Promise<void> {
  await new Deno.Command("losetup", { args: ["-d", dev], stderr: "null" }).output().catch(() => {});
}

Deno.test("image send from a loop device, image recv onto another one", async (t) => {
  const a = `${tmp}/loop-a.img`, b = `${tmp}/loop-b.img`, c = `${tmp}/loop-c.img`;
  const rand = prng(11);
  await Deno.writeFile(a, new Uint8Array(0));
  await Deno.truncate(a, 32 * MiB);
  for (let i = 0; i < 12; i++) pwrite(a, randomBytes(rand, 20000), (rand() % 31) * MiB);
  await Deno.writeFile(b, randomBytes(rand, 32 * MiB)); // the target starts full of garbage
  const src = await losetup(a);
  if (src === null) {
    console.log("SKIPPED loop devices: losetup -f --show failed (needs root and /dev/loop*)");
    return;
  }
  const dst = await losetup(b);
  if (dst === null) {
    await detach(src);
    console.log("SKIPPED loop devices: a second loop device could not be set up");
    return;
  }
  try {
    const guidFile = `${tmp}/loop.guid`;
    await t.step("full", async () => {
      const send = await runZsend(["image", "send", src]);
      assertEquals(send.code, 0, send.stderr);
      const noF = await runZsend(["image", "recv", dst], { stdin: send.stdoutBytes });
      assertEquals(noF.code, 1);
      assertMatch(noF.stderr, /add -F/);
      const recv = await runZsend(["image", "recv", "-F", "--guid-file", guidFile, dst], {
        stdin: send.stdoutBytes,
      });
      assertEquals(recv.code, 0, recv.stderr);
      assertEquals(await firstDifference(src, dst), null);
      assertEquals(await firstDifference(a, b), null);
    });
    await t.step("onto a device too small", async () => {
      const small = `${tmp}/loop-small.img`;
      await Deno.writeFile(small, new Uint8Array(4 * MiB));
      const tiny = await losetup(small);
      if (tiny === null) return;
      try {
        const send = await runZsend(["image", "send", src]);
        const recv = await runZsend(["image", "recv", "-F", tiny], { stdin: send.stdoutBytes });
        assertEquals(recv.code, 1);
        assertMatch(recv.stderr, /past the end of the device/);
      } finally {
        await detach(tiny);
      }
    });
    await t.step("incremental", async () => {
      // The next version: a copy of the source with changes, sent from a file against the
      // device it came from.
      await Deno.copyFile(a, c);
      pwrite(c, randomBytes(rand, 3 * BS), 5 * MiB);
      pwrite(c, new Uint8Array(2 * MiB), 0);
      const send = await runZsend(["image", "send", "--from", src, c]);
      assertEquals(send.code, 0, send.stderr);
      const recv = await runZsend(["image", "recv", "--guid-file", guidFile, dst], {
        stdin: send.stdoutBytes,
      });
      assertEquals(recv.code, 0, recv.stderr);
      assertEquals(await firstDifference(c, dst), null);
    });
  } finally {
    await detach(dst);
    await detach(src);
  }
});

// --- real ZFS: zfs-fuse receives volume streams (it cannot create volumes, but takes them) -----

const why = freshUnavailable();
if (why !== null) skipNote("volume streams against zfs-fuse", why);

Deno.test({
  name: "zfs receive (zfs-fuse) takes image send, full and incremental; its zfs send comes back",
  ignore: why !== null,
  async fn() {
    const a = `${tmp}/zfs-a.img`, b = `${tmp}/zfs-b.img`, back = `${tmp}/zfs-back.img`;
    const rand = prng(2024);
    await Deno.writeFile(a, new Uint8Array(0));
    await Deno.truncate(a, 8 * MiB);
    pwrite(a, randomBytes(rand, 100000), 300000);
    pwrite(a, randomBytes(rand, 8192), 8 * MiB - 8192);
    await Deno.copyFile(a, b);
    pwrite(b, randomBytes(rand, 20000), 5 * MiB);
    pwrite(b, new Uint8Array(2 * 8192), 40 * 8192); // data blocks zeroed
    await Deno.truncate(b, 12 * MiB); // the volume grows
    const pool = await TestPool.create();
    try {
      const vol = `${pool.name}/vol`;
      const full = await runZsend(["image", "send", "--block-size", "8K", "--name", `${vol}@a`, a]);
      assertEquals(full.code, 0, full.stderr);
      await pool.receive("vol", full.stdoutBytes);
      const props = await sh("zfs", ["get", "-Hp", "-o", "value", "volsize,volblocksize", vol]);
      assertEquals(props.trim().split("\n"), [`${8 * MiB}`, "8192"]);
      const incr = await runZsend([
        "image",
        "send",
        "--block-size",
        "8K",
        "--from",
        a,
        "--name",
        `${vol}@b`,
        b,
      ]);
      assertEquals(incr.code, 0, incr.stderr);
      await pool.receive("vol", incr.stdoutBytes);
      assertEquals(await pool.snapshots(), ["vol@a", "vol@b"]);
      const guid = await sh("zfs", ["get", "-Hp", "-o", "value", "guid", `${vol}@b`]);
      assertEquals(BigInt(guid.trim()), beginOf((await records(incr.stdoutBytes))[0]).toguid);
      // What zfs-fuse sends of the volumes it received, back onto an image: the same bytes.
      await sh("bash", ["-c", `zfs send ${vol}@a > ${tmp}/real-a.zs`]);
      await sh("bash", ["-c", `zfs send -i @a ${vol}@b > ${tmp}/real-b.zs`]);
      const r1 = await runZsend(["image", "recv", back, `${tmp}/real-a.zs`]);
      assertEquals(r1.code, 0, r1.stderr);
      assertEquals(await firstDifference(a, back), null);
      const r2 = await runZsend(["image", "recv", back, `${tmp}/real-b.zs`]);
      assertEquals(r2.code, 0, r2.stderr);
      assertEquals(await firstDifference(b, back), null);
    } finally {
      await pool.destroy();
    }
  },
});
