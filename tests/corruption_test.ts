/**
 * Every corruption of a good stream is caught by verify, naming a record that can see it:
 * bit flips anywhere, truncation, swapped records, a lying length.
 */

import { assert, assertEquals } from "@std/assert";
import { DRR, RECORD_SIZE } from "../core/stream/constants.ts";
import { StreamError } from "../core/stream/errors.ts";
import { readRecords, type StreamRecord } from "../core/stream/reader.ts";
import { encodeRecord } from "../core/stream/record.ts";
import { verifyStream } from "../core/stream/verify.ts";
import { bestFletcher4 } from "../io/native/fletcher4_native.ts";
import { openzfsDir, unpackBz2, ZFS_FUSE_DIR, zfsFuseStreams } from "./_fixtures.ts";
import { runZsend } from "./_run.ts";
import { mulberry32 } from "./helpers/prng.ts";

const engine = bestFletcher4();

/** Numbers in [0, 1) from a seed, so a failure can be replayed. */
function prng(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 2 ** 32;
}

const SEED = Number(Deno.env.get("ZSEND_SEED") ?? Date.now() % 100000);
console.log(`corruption tests: ZSEND_SEED=${SEED}`);

interface Layout {
  records: {
    offset: number;
    end: number;
    type: number;
    closer: number;
    header: StreamRecord["header"];
  }[];
  recordChecksums: boolean;
  littleEndian: boolean;
}

/** Where each record lies, and which END closes its substream. */
async function layoutOf(bytes: Uint8Array): Promise<Layout> {
  const records: Layout["records"] = [];
  let recordChecksums = false;
  let littleEndian = true;
  const open: number[] = [];
  for await (const r of readRecords([bytes], { fletcher4: engine })) {
    littleEndian = r.littleEndian;
    const end = r.offset + RECORD_SIZE + r.payload.length;
    records.push({ offset: r.offset, end, type: r.header.type, closer: -1, header: r.header });
    if (r.header.type !== DRR.BEGIN && r.header.record_checksum[0] !== 0n) recordChecksums = true;
    if (r.header.type === DRR.END) {
      for (const i of open) records[i]!.closer = r.index;
      open.length = 0;
      records[r.index]!.closer = r.index;
    } else open.push(r.index);
  }
  return { records, recordChecksums, littleEndian };
}

/** The index of the record that holds byte `pos`. */
function recordAt(layout: Layout, pos: number): number {
  let lo = 0, hi = layout.records.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (layout.records[mid]!.offset <= pos) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

async function expectFault(bytes: Uint8Array, what: string): Promise<StreamError> {
  try {
    await verifyStream([bytes], { fletcher4: engine });
  } catch (e) {
    if (e instanceof StreamError) return e;
    throw new Error(`${what}: not a StreamError: ${e}`);
  }
  throw new Error(`${what}: verify passed a damaged stream`);
}

/** The records that can first see damage in record k: itself, the next, or its END. */
function detectors(layout: Layout, k: number): { first: number; last: number } {
  const rec = layout.records[k]!;
  const last = layout.recordChecksums && rec.type !== DRR.END
    ? Math.min(k + 1, layout.records.length - 1)
    : Math.max(rec.closer, k);
  return { first: k, last: layout.recordChecksums ? last : Math.max(rec.closer, k) };
}

async function streams(): Promise<[string, Uint8Array][]> {
  const out: [string, Uint8Array][] = [];
  for (const name of zfsFuseStreams()) {
    out.push([name, await Deno.readFile(`${ZFS_FUSE_DIR}/${name}.zstream`)]);
  }
  const dir = openzfsDir();
  if (dir !== null) {
    for (const name of ["little-endian-all-drr-types-incr-XDR", "dedup", "decompress"]) {
      out.push([name, await Deno.readFile(await unpackBz2(`${dir}/${name}.zsend.bz2`))]);
    }
  }
  return out;
}

const STREAMS = await streams();

for (const [name, good] of STREAMS) {
  Deno.test(`verify() catches bit flips anywhere in ${name}`, async () => {
    const layout = await layoutOf(good);
    const rand = prng(SEED ^ good.length);
    for (let i = 0; i < 250; i++) {
      const pos = Math.floor(rand() * good.length);
      const bit = Math.floor(rand() * 8);
      const bad = good.slice();
      bad[pos]! ^= 1 << bit;
      const e = await expectFault(bad, `flip of bit ${bit} at byte ${pos} (seed ${SEED})`);
      const k = recordAt(layout, pos);
      const { first, last } = detectors(layout, k);
      assert(
        e.index >= first && e.index <= last,
        `flip at byte ${pos} (record ${k}) was reported at record ${e.index}: ${e.message} ` +
          `(seed ${SEED})`,
      );
    }
  });

  Deno.test(`verify() catches truncation of ${name} at any length`, async () => {
    const layout = await layoutOf(good);
    const rand = prng(SEED ^ 0x5151 ^ good.length);
    const cuts = [0, 1, RECORD_SIZE - 1, RECORD_SIZE, good.length - 1, good.length - RECORD_SIZE];
    for (let i = 0; i < 60; i++) cuts.push(Math.floor(rand() * good.length));
    for (const cut of cuts) {
      const e = await expectFault(good.subarray(0, cut), `truncation at ${cut}`);
      assert(/truncated|empty stream/.test(e.fault), `truncation at ${cut}: ${e.message}`);
      const expected = cut >= good.length ? layout.records.length : recordAt(layout, cut);
      const boundary = layout.records.some((r) => r.offset === cut);
      assertEquals(e.index, boundary ? recordAt(layout, cut) : expected, e.message);
    }
  });

  Deno.test(`verify() catches two swapped records in ${name}`, async () => {
    const layout = await layoutOf(good);
    const rand = prng(SEED ^ 0x77 ^ good.length);
    let tried = 0;
    for (let i = 0; i < 200 && tried < 20; i++) {
      const k = 1 + Math.floor(rand() * (layout.records.length - 3));
      const a = layout.records[k]!, b = layout.records[k + 1]!;
      const first = good.subarray(a.offset, a.end), second = good.subarray(b.offset, b.end);
      if (first.length === second.length && first.every((x, j) => x === second[j])) continue;
      const bad = good.slice();
      bad.set(second, a.offset);
      bad.set(first, a.offset + second.length);
      const e = await expectFault(bad, `swap of records ${k} and ${k + 1}`);
      const closer = Math.max(layout.records[k + 1]!.closer, k + 1);
      assert(e.index >= k && e.index <= closer, `swap at ${k}: ${e.message}`);
      tried++;
    }
  });

  Deno.test(`verify() catches a lying length in ${name}`, async () => {
    const layout = await layoutOf(good);
    const writes = layout.records.map((r, i) => [r, i] as const).filter(([r]) =>
      r.type === DRR.WRITE || r.type === DRR.OBJECT || r.type === DRR.WRITE_EMBEDDED
    );
    const rand = prng(SEED ^ 0x1e ^ good.length);
    for (let i = 0; i < Math.min(10, writes.length); i++) {
      const [rec, k] = writes[Math.floor(rand() * writes.length)]!;
      const h = { ...rec.header };
      if (h.type === DRR.WRITE) h.logical_size += 512n;
      else if (h.type === DRR.OBJECT) h.bonuslen += 8;
      else if (h.type === DRR.WRITE_EMBEDDED) h.psize += 8;
      const bad = good.slice();
      bad.set(encodeRecord(h, layout.littleEndian).subarray(0, 280), rec.offset);
      const e = await expectFault(bad, `lying length in record ${k}`);
      // With record checksums the record itself fails; without, the misread that follows can
      // fail anywhere after it.
      if (layout.recordChecksums) assertEquals(e.index, k, e.message);
      else assert(e.index >= k, `record ${k}: ${e.message}`);
    }
  });
}

Deno.test("zsend verify exits 1 naming the record, and never crashes, on a damaged stream", async () => {
  const [name, good] = STREAMS[0]!;
  const bad = good.slice();
  bad[RECORD_SIZE * 3 + 40]! ^= 0x10;
  const r = await runZsend(["verify", "-"], { stdin: bad });
  assertEquals(r.code, 1, `${name}: ${r.stderr}`);
  assert(/^record \d+ \([A-Z_]+ at byte \d+\): /.test(r.stderr), r.stderr);
  const ok = await runZsend(["verify", "--quiet", "-"], { stdin: good });
  assertEquals(ok.code, 0, ok.stderr);
  const usage = await runZsend(["verify", "--bogus"]);
  assertEquals(usage.code, 2);
});
