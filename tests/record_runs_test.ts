/**
 * Runs of records: `zs_fletcher4_records` (every native implementation) against its
 * TypeScript twin `foldRecords`, both against `StreamWriter.writeEncoded` record by record;
 * the walk of a volume in spans against the walk block by block; volume streams in runs
 * against the same streams record by record; `Device.scanBlocks`
 * (native) against the Deno backend and `preadBlocks`; the content guid's hash against
 * `node:crypto`. Seeded: set `ZSEND_TEST_SEED` to replay a failure.
 */

import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { concat } from "@std/bytes";
import { createHash } from "node:crypto";
import { DRR, RECORD_SIZE } from "../core/stream/constants.ts";
import { Fletcher4, fletcher4, tsFletcher4 } from "../core/checksum/fletcher4.ts";
import { foldRecords } from "../core/checksum/fletcher4_records.ts";
import { type Checksum, encodeRecord } from "../core/stream/record.ts";
import {
  BlockBitmap,
  dnodeLevels,
  type VolumeBlocks,
  volumeSpans,
  type VolumeStep,
  volumeSteps,
  volumeStream,
} from "../core/send/volume.ts";
import { RUN_RECORDS } from "../core/send/volume_runs.ts";
import {
  isPayloadRef,
  isPayloadRun,
  type PayloadRun,
  StreamWriter,
} from "../core/stream/writer.ts";
import { GuidHash } from "../io/guid_hash.ts";
import { Device } from "../io/native/device.ts";
import { envVar, nativeLoadError } from "../io/native/ffi.ts";
import {
  nativeFletcher4,
  nativeImplementations,
  withNativeImplementation,
} from "../io/native/fletcher4_native.ts";
import { mulberry32 } from "./helpers/prng.ts";

const SEED = Number(envVar("ZSEND_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 32)) >>> 0;
const CI = envVar("CI") === "true";
const native = nativeFletcher4();

function randomBytes(next: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = next() & 0xff;
  return out;
}

function randomSums(next: () => number, n: number): BigUint64Array {
  const out = new BigUint64Array(n);
  const halves = new Uint32Array(out.buffer);
  for (let i = 0; i < halves.length; i++) halves[i] = next();
  return out;
}

/** `count` random records whose type is WRITE in the given byte order. */
function randomHeaders(next: () => number, count: number, le: boolean): Uint8Array {
  const h = randomBytes(next, count * RECORD_SIZE);
  const v = new DataView(h.buffer);
  for (let i = 0; i < count; i++) v.setUint32(i * RECORD_SIZE, DRR.WRITE, le);
  return h;
}

/** A test that needs the native library: ignored without it, failed without it under CI. */
function nativeTest(name: string, fn: () => void | Promise<void>): void {
  Deno.test({
    name: native === null && !CI ? `${name} (ignored: native library not loaded)` : name,
    ignore: native === null && !CI,
    fn: () => {
      if (native === null) {
        throw new Error(`CI=true needs the native library: ${nativeLoadError()}`);
      }
      return fn();
    },
  });
}

/** Payload lengths a run may have: none, small, odd (trailing bytes ignored), the largest. */
function randomLength(next: () => number, trial: number): number {
  const pick = [0, 512, 16384, 1 << 24, 0xffffffff, 4099, 3];
  return trial < pick.length ? pick[trial]! : next() % (1 << 20);
}

// --- the fold ----------------------------------------------------------------------------------

Deno.test("foldRecords() equals StreamWriter.writeEncoded record by record", () => {
  const next = mulberry32(SEED);
  for (let trial = 0; trial < 40; trial++) {
    const le = trial % 2 === 0;
    const recordChecksums = trial % 3 !== 0;
    const count = next() % 40;
    const len = randomLength(next, trial);
    const headers = randomHeaders(next, count, le);
    const sums = randomSums(next, count * 4);
    const begin = { toname: "p/v@s", toguid: BigInt(next()), objset_type: 3 };
    // Record by record, each payload by reference.
    const one = new StreamWriter({ littleEndian: le, recordChecksums });
    const bytes: Uint8Array[] = [...one.begin(begin)];
    for (let i = 0; i < count; i++) {
      const [a, b, c, d] = sums.subarray(i * 4, i * 4 + 4);
      const ref = { length: len, fletcher4: [a!, b!, c!, d!] as Checksum, place: i };
      const out = one.writeEncoded(headers.slice(i * RECORD_SIZE, (i + 1) * RECORD_SIZE), ref);
      bytes.push(out[0] as Uint8Array);
    }
    // The same records as one run, from the state after the same BEGIN.
    const start = new Fletcher4();
    start.update(bytes[0]!, le);
    const state = new Uint32Array(start.halves);
    const run = headers.slice();
    foldRecords(state, run, sums, len, le, recordChecksums);
    const at = `seed ${SEED} trial ${trial} le ${le} len ${len}`;
    assertEquals(run, concat(bytes.slice(1)), at);
    assertEquals([...new BigUint64Array(state.buffer)], one.checksum, at);
  }
});

nativeTest("zs_fletcher4_records: native = TypeScript on random runs, every implementation", () => {
  const next = mulberry32(SEED ^ 1);
  const trials = Array.from({ length: 60 }, (_, trial) => {
    const le = trial % 2 === 0;
    const count = trial === 0 ? 0 : next() % (trial < 30 ? 20 : 2000);
    // Headers at an odd offset: nothing needs them aligned.
    const off = trial % 5 === 4 ? 1 : 0;
    const headers = randomHeaders(next, count + 1, le).subarray(off, off + count * RECORD_SIZE);
    return {
      le,
      rc: trial % 3 !== 1,
      len: randomLength(next, trial),
      state: new Uint32Array(randomSums(next, 4).buffer),
      headers,
      sums: randomSums(next, count * 4),
    };
  });
  const want = trials.map((t) => {
    const state = t.state.slice(), headers = t.headers.slice();
    foldRecords(state, headers, t.sums, t.len, t.le, t.rc);
    return { state, headers };
  });
  for (const impl of nativeImplementations()) {
    const ran = withNativeImplementation(impl, () => {
      trials.forEach((t, i) => {
        const state = t.state.slice(), headers = t.headers.slice();
        native!.updateRecords!(state, headers, t.sums, t.len, t.le, t.rc);
        const at = `${impl} seed ${SEED} trial ${i} len ${t.len} le ${t.le} rc ${t.rc}`;
        assertEquals(state, want[i]!.state, at);
        assertEquals(headers, want[i]!.headers, at);
      });
    });
    assert(ran, `cannot select ${impl}`);
  }
});

Deno.test("StreamWriter.writeRun(): both engines, one stream; bad runs are refused", () => {
  const next = mulberry32(SEED ^ 2);
  const engines = [tsFletcher4, ...(native === null ? [] : [native])];
  const results = engines.map((engine) => {
    const w = new StreamWriter({ fletcher4: engine });
    const r = mulberry32(SEED ^ 3);
    const headers = randomHeaders(r, 300, true);
    const run = w.writeRun(headers, randomSums(r, 1200), 16384, new Float64Array(300), "img");
    assertEquals(run.length, 300 * (RECORD_SIZE + 16384));
    assert(isPayloadRun(run) && !isPayloadRef(run));
    return { headers: run.headers, checksum: w.checksum };
  });
  for (const r of results) assertEquals(r, results[0]);
  const w = new StreamWriter();
  const h = randomHeaders(next, 2, true);
  assertThrows(() => w.writeRun(h, new BigUint64Array(8), 512, new Float64Array(1), 0), RangeError);
  assertThrows(() => w.writeRun(h, new BigUint64Array(4), 512, new Float64Array(2), 0), RangeError);
  assertThrows(
    () => w.writeRun(h.subarray(1), new BigUint64Array(8), 512, new Float64Array(2), 0),
    RangeError,
  );
  new DataView(h.buffer).setUint32(RECORD_SIZE, DRR.END, true);
  assertThrows(() => w.writeRun(h, new BigUint64Array(8), 512, new Float64Array(2), 0), TypeError);
});

// --- volume streams in runs --------------------------------------------------------------------

/** The walk as volumeSteps made it before spans: one generator per block (the reference). */
function* stepsOneByOne(blocks: VolumeBlocks): Generator<VolumeStep> {
  const { count, data, changed } = blocks;
  const levels = blocks.levels ?? dnodeLevels(count - 1);
  const extent = Math.max(count, changed.size);
  function* visit(level: number, start: number): Generator<VolumeStep> {
    if (start > count - 1) return;
    const end = start + 1024 ** level;
    if (!data.any(start, end)) {
      yield { kind: "free", from: start, to: end };
      return;
    }
    if (!changed.any(start, Math.min(end, extent))) return;
    if (level === 0) {
      yield { kind: "write", block: start };
      return;
    }
    for (let i = 0; i < 1024; i++) yield* visit(level - 1, start + i * 1024 ** (level - 1));
  }
  for (let j = 0; j < 3; j++) yield* visit(levels - 1, j * 1024 ** (levels - 1));
}

Deno.test("volumeSpans(): the walk volumeSteps takes block by block, in spans", () => {
  const next = mulberry32(SEED ^ 7);
  for (let trial = 0; trial < 80; trial++) {
    const count = 1 + (next() % (trial < 40 ? 50 : 8000));
    const extent = trial % 3 === 0 ? count + (next() % 3000) : count;
    const data = new BlockBitmap(count);
    const changed = extent === count && trial % 2 === 0 ? data : new BlockBitmap(extent);
    const density = [0.02, 0.5, 0.97, 1][trial % 4]!;
    for (let b = 0; b < extent; b++) {
      if (b < count && next() / 2 ** 32 < density) data.set(b);
      if (changed !== data && next() % 3 !== 0) changed.set(b);
    }
    const blocks = { count, data, changed, levels: dnodeLevels(extent - 1) };
    const want = [...stepsOneByOne(blocks)];
    const at = `seed ${SEED} trial ${trial} count ${count} extent ${extent}`;
    assertEquals([...volumeSteps(blocks)], want, at);
    // WRITE spans join only where an indirect block of 1024 ends (or where there is none).
    const spans = [...volumeSpans(blocks)];
    for (let i = 1; i < spans.length; i++) {
      const [a, b] = [spans[i - 1]!, spans[i]!];
      const joined = a.kind === "write" && b.kind === "write" && a.to === b.from;
      assert(!joined || b.from % 1024 === 0 || blocks.levels === 1, at);
    }
  }
});

/** A volume in memory: `count` blocks, some zero, and which changed (all, or some). */
function volume(next: () => number, count: number, bs: number, incremental: boolean) {
  const bytes = new Uint8Array(count * bs);
  const data = new BlockBitmap(count);
  const changed = incremental ? new BlockBitmap(count) : data;
  for (let i = 0; i < count; i++) {
    // Long stretches of data (runs past RUN_RECORDS) and of zeros (FREEs), and odd ones.
    const zero = i % 3000 >= 2200 || next() % 50 === 0;
    if (!zero) {
      bytes[i * bs + (next() % bs)] = 1 + (next() % 255);
      data.set(i);
    }
    if (incremental && (zero || next() % 4 !== 0)) changed.set(i);
  }
  const checksums = new BigUint64Array(count * 4);
  for (let i = 0; i < count; i++) {
    checksums.set(fletcher4(bytes.subarray(i * bs, (i + 1) * bs), true), i * 4);
  }
  const blocks: VolumeBlocks = { count, data, changed };
  return { bytes, blocks, checksums };
}

Deno.test("volumeStream() in runs gives the bytes it gives record by record", () => {
  const next = mulberry32(SEED ^ 4);
  const engines = [tsFletcher4, ...(native === null ? [] : [native])];
  for (
    const [count, bs, incremental] of [[7000, 512, false], [5000, 4096, true], [
      3,
      512,
      false,
    ]] as const
  ) {
    const { bytes, blocks, checksums } = volume(next, count, bs, incremental);
    const options = {
      toname: "p/v@b",
      toguid: 9n,
      ...(incremental ? { fromguid: 8n } : {}),
      blockSize: bs,
    };
    const read = (b: number) => bytes.slice(b * bs, (b + 1) * bs);
    const want = concat([...volumeStream(options, blocks, read)]);
    for (const engine of engines) {
      const parts: Uint8Array[] = [];
      let runs = 0;
      for (
        const c of volumeStream({ ...options, fletcher4: engine }, blocks, read, {
          checksums,
          place: "volume",
        })
      ) {
        if (c instanceof Uint8Array) {
          parts.push(c);
          continue;
        }
        assert(isPayloadRun(c), "only runs and bytes");
        const run = c as PayloadRun<string>;
        assertEquals(run.place, "volume");
        runs++;
        assert(run.offsets.length <= RUN_RECORDS);
        run.offsets.forEach((o, i) => {
          parts.push(run.headers.subarray(i * RECORD_SIZE, (i + 1) * RECORD_SIZE));
          parts.push(bytes.subarray(o, o + run.payloadLength));
        });
      }
      assert(count < 10 || runs > count / RUN_RECORDS, `${runs} runs`);
      assertEquals(concat(parts), want, `seed ${SEED} ${engine.name} ${count} x ${bs}`);
    }
  }
});

Deno.test("volumeStream() in runs: little-endian streams only", () => {
  const data = new BlockBitmap(1);
  data.set(0);
  const stream = volumeStream(
    { toname: "p/v@a", toguid: 1n, blockSize: 512, littleEndian: false },
    { count: 1, data, changed: data },
    () => new Uint8Array(512),
    { checksums: new BigUint64Array(4), place: null },
  );
  assertThrows(() => [...stream], RangeError, "little-endian");
  // The template is what a WRITE of object 1 encodes to.
  assertEquals(encodeRecord({ type: DRR.WRITE } as never, true).length, RECORD_SIZE);
});

// --- the scan ----------------------------------------------------------------------------------

nativeTest("Device.scanBlocks(): native = Deno backend = preadBlocks", async () => {
  const next = mulberry32(SEED ^ 5);
  const path = await Deno.makeTempFile({ prefix: "zsend-scan-" });
  try {
    const size = (3 << 20) + 4096 * 3;
    await Deno.writeFile(path, randomBytes(next, size));
    using fast = Device.open(path, { native: true });
    using slow = Device.open(path, { native: false });
    for (let trial = 0; trial < 40; trial++) {
      const bs = [512, 4096, 16384, 256 << 10, 1 << 20][trial % 5]!;
      const blocks = 1 + (next() % Math.max(1, Math.floor((4 << 20) / bs)));
      const length = blocks * bs;
      const offset = (next() % 800) * 4096;
      // Past the end of the file: fewer bytes read, zeros after them.
      const want = trial % 4 === 0 ? length : Math.min(length, next() % (length + 1));
      const got: BigUint64Array[] = [];
      const counts: number[] = [];
      for (const dev of [fast, slow]) {
        const out = new BigUint64Array(blocks * 4);
        counts.push(await dev.scanBlocks(want, length, offset, out, bs));
        got.push(out);
      }
      const ref = new BigUint64Array(blocks * 4);
      counts.push(await slow.preadBlocks(new Uint8Array(length), want, offset, ref, bs));
      got.push(ref);
      const at = `seed ${SEED} trial ${trial} bs ${bs} want ${want} at ${offset}`;
      assertEquals(counts, Array(3).fill(Math.max(0, Math.min(want, size - offset))), at);
      assertEquals(got[0], ref, at);
      assertEquals(got[1], ref, at);
    }
    await assertRejects(() => fast.scanBlocks(2, 1, 0, new BigUint64Array(4), 1), RangeError);
  } finally {
    await Deno.remove(path);
  }
});

// --- the content guid --------------------------------------------------------------------------

Deno.test("GuidHash: kept and streamed, the SHA-256 of node:crypto", async () => {
  const next = mulberry32(SEED ^ 6);
  for (const blocks of [1, 7, 1000]) {
    const bs = 4096, volsize = blocks * bs;
    const sums = randomSums(next, blocks * 4);
    const h = createHash("sha256");
    h.update("zsend-volume-guid-v2");
    const head = new DataView(new ArrayBuffer(16));
    head.setBigUint64(0, BigInt(bs), true);
    head.setBigUint64(8, BigInt(volsize), true);
    h.update(new Uint8Array(head.buffer));
    h.update(new Uint8Array(sums.buffer));
    const d = h.digest();
    const want = new DataView(d.buffer, d.byteOffset, 8).getBigUint64(0, true) || 1n;
    for (const keep of [true, false]) {
      const g = await GuidHash.open(bs, volsize, keep);
      for (let i = 0; i < blocks;) {
        const n = Math.min(blocks - i, 1 + (next() % 300));
        g.blocks(sums.subarray(i * 4, (i + n) * 4));
        i += n;
      }
      assertEquals(await g.guid(), want, `seed ${SEED} ${blocks} blocks, keep ${keep}`);
      assertEquals(g.kept === null ? null : [...g.kept], keep ? [...sums] : null);
    }
  }
});
