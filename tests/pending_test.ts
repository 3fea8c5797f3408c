/**
 * RecordSender: the kernel's pending-op aggregation (dump_free, dump_freeobjects, dump_redact
 * and the flush in every other dump_*), record by record, and a replay of real streams.
 */

import { assertEquals, assertThrows } from "@std/assert";
import { OBJECT_END, RecordSender } from "../core/stream/pending.ts";
import { readRecords } from "../core/stream/reader.ts";
import { StreamWriter } from "../core/stream/writer.ts";
import type { DrrRecord } from "../core/stream/record.ts";
import { DRR } from "../core/stream/constants.ts";
import { isZeroChecksum } from "../core/checksum/fletcher4.ts";
import { openzfsDir, skipNote, unpackBz2, ZFS_FUSE_DIR } from "./_fixtures.ts";
import { concat } from "@std/bytes";

const TOGUID = 0x1234n;
const MAX = OBJECT_END;

/** One line per record between BEGIN and END, e.g. `FREE 1 0 1536`. */
function describe(h: DrrRecord): string {
  switch (h.type) {
    case DRR.FREE:
      return `FREE ${h.object} ${h.offset} ${h.length === MAX ? "-1" : h.length}`;
    case DRR.FREEOBJECTS:
      return `FREEOBJECTS ${h.firstobj} ${h.numobjs}`;
    case DRR.REDACT:
      return `REDACT ${h.object} ${h.offset} ${h.length}`;
    case DRR.OBJECT:
      return `OBJECT ${h.object}`;
    case DRR.WRITE:
      return `WRITE ${h.object} ${h.offset}`;
    default:
      return `TYPE ${h.type}`;
  }
}

/** The sender's calls, each collecting what it writes. */
interface Ops {
  free(object: bigint, offset: bigint, length: bigint): void;
  freeObjects(first: bigint, count: bigint): void;
  redact(object: bigint, offset: bigint, length: bigint): void;
  write(rec: Parameters<RecordSender["write"]>[0], payload?: Uint8Array): void;
}

/**
 * Runs `ops` between a BEGIN and END, decodes the bytes (every checksum checked), and returns
 * the records in between. Every record must carry the BEGIN's toguid.
 */
async function send(ops: (s: Ops) => void, options: { maxObject?: bigint } = {}) {
  const s = new RecordSender(new StreamWriter(), options);
  const chunks: Uint8Array[] = [];
  chunks.push(...s.begin({ toname: "p/fs@s", toguid: TOGUID, objset_type: 2 }));
  ops({
    free: (o, off, len) => void chunks.push(...s.free(o, off, len)),
    freeObjects: (f, n) => void chunks.push(...s.freeObjects(f, n)),
    redact: (o, off, len) => void chunks.push(...s.redact(o, off, len)),
    write: (rec, payload) => void chunks.push(...s.write(rec, payload)),
  });
  chunks.push(...s.end());
  const out: string[] = [];
  for await (const r of readRecords(chunks)) {
    const h = r.header;
    if (h.type === DRR.BEGIN || h.type === DRR.END) continue;
    if ("toguid" in h) assertEquals(h.toguid, TOGUID, describe(h));
    out.push(describe(h));
  }
  return out;
}

const object = (s: Ops, n: bigint) =>
  s.write({ type: DRR.OBJECT, object: n, object_type: 19, blksz: 512, toguid: TOGUID });
const write = (s: Ops, n: bigint, off: bigint) =>
  s.write(
    {
      type: DRR.WRITE,
      object: n,
      object_type: 19,
      offset: off,
      logical_size: 512n,
      toguid: TOGUID,
    },
    new Uint8Array(512),
  );

Deno.test("RecordSender.free() merges contiguous ranges of one object", async () => {
  assertEquals(
    await send((s) => {
      s.free(1n, 0n, 512n);
      s.free(1n, 512n, 512n);
      s.free(1n, 1024n, 3072n);
    }),
    ["FREE 1 0 4096"],
  );
});

Deno.test("RecordSender.free() writes the pending range before a gap, or another object", async () => {
  assertEquals(
    await send((s) => {
      s.free(1n, 0n, 512n);
      s.free(1n, 1024n, 512n); // a gap
      s.free(2n, 1536n, 512n); // where the last ended, but another object
      s.free(2n, 1024n, 512n); // before the pending one: no merge backwards
    }),
    ["FREE 1 0 512", "FREE 1 1024 512", "FREE 2 1536 512", "FREE 2 1024 512"],
  );
});

Deno.test("RecordSender.free() of length -1 goes out at once, and nothing merges into it", async () => {
  assertEquals(
    await send((s) => {
      s.free(1n, 4096n, MAX);
      s.free(1n, 4096n, 512n); // would continue it if it were pending
      s.free(1n, 4608n, 512n);
    }),
    ["FREE 1 4096 -1", "FREE 1 4096 1024"],
  );
  // Without a pending record the -1 FREE is written by the call itself.
  const s = new RecordSender();
  assertEquals(s.free(3n, 0n, -1n).length, 1);
  assertEquals(s.pending, null);
});

Deno.test("RecordSender.free() of length -1 that continues the pending range folds into it", async () => {
  // dump_free: the aggregation branch sets length to UINT64_MAX and returns: still pending.
  const s = new RecordSender();
  s.free(1n, 0n, 512n);
  assertEquals(s.free(1n, 512n, MAX), []);
  assertEquals(s.pending?.type, DRR.FREE);
  assertEquals(
    await send((s) => {
      s.free(1n, 0n, 512n);
      s.free(1n, 512n, MAX);
      s.free(1n, 4096n, 512n); // 0 + UINT64_MAX is not 4096: no merge
    }),
    ["FREE 1 0 -1", "FREE 1 4096 512"],
  );
  // The C sums wrap: a pending range of length -1 ends (mod 2^64) one byte before it starts,
  // so a range starting there merges, and the length wraps too.
  assertEquals(
    await send((s) => {
      s.free(1n, 4096n, MAX);
      s.free(1n, 0n, 512n);
      s.free(1n, 0n, 512n);
    }),
    ["FREE 1 4096 -1", "FREE 1 0 512", "FREE 1 0 512"],
  );
  const w = new RecordSender();
  w.free(1n, 1n << 63n, 1n << 63n); // ends exactly at 2^64: overflows, pending, length -1
  w.free(1n, (1n << 63n) - 1n, 512n);
  const p = w.pending;
  assertEquals(p?.type === DRR.FREE ? [p.offset, p.length] : null, [1n << 63n, 511n]);
});

Deno.test("RecordSender.free() of length -1 after a pending range elsewhere writes both", async () => {
  assertEquals(
    await send((s) => {
      s.free(1n, 0n, 512n);
      s.free(1n, 8192n, MAX);
      s.free(1n, 512n, 512n); // the pending slot is empty now: a new pending range
    }),
    ["FREE 1 0 512", "FREE 1 8192 -1", "FREE 1 512 512"],
  );
});

Deno.test("RecordSender.free() whose end overflows 2^64 becomes length -1 and stays pending", async () => {
  const top = 1n << 64n;
  const s = new RecordSender();
  assertEquals(s.free(1n, top - 512n, 1024n), []); // overflows, but length was not -1
  const p = s.pending;
  assertEquals(p?.type === DRR.FREE ? p.length : null, MAX);
  assertEquals(
    await send((s) => {
      s.free(1n, top - 512n, 1024n);
      s.free(2n, 0n, 512n);
    }),
    [`FREE 1 ${top - 512n} -1`, "FREE 2 0 512"],
  );
  // Overflow while merging: the merged range runs to the end.
  assertEquals(
    await send((s) => {
      s.free(1n, 0n, 512n);
      s.free(1n, 512n, top - 100n);
      s.free(1n, 1n << 40n, 512n);
    }),
    ["FREE 1 0 -1", `FREE 1 ${1n << 40n} 512`],
  );
  // A merged range that ends just below 2^64 keeps its exact length.
  assertEquals(
    await send((s) => {
      s.free(1n, 0n, top - 1024n);
      s.free(1n, top - 1024n, 512n);
    }),
    [`FREE 1 0 ${top - 512n}`],
  );
});

Deno.test("RecordSender.freeObjects() merges contiguous ranges", async () => {
  assertEquals(
    await send((s) => {
      s.freeObjects(3n, 1n);
      s.freeObjects(4n, 1n);
      s.freeObjects(5n, 27n);
      s.freeObjects(64n, 64n); // a gap
      s.freeObjects(128n, 32n);
      s.freeObjects(100n, 1n); // backwards
    }),
    ["FREEOBJECTS 3 29", "FREEOBJECTS 64 96", "FREEOBJECTS 100 1"],
  );
});

Deno.test("RecordSender.freeObjects() clamps to maxobj, and drops ranges past it untouched", async () => {
  assertEquals(
    await send((s) => {
      s.freeObjects(3n, 1n);
      s.freeObjects(4n, 1000n); // clamped to 4..31, merged
      s.freeObjects(32n, 32n); // at maxobj: dropped; the pending record stays
      s.freeObjects(1n << 20n, 1n << 30n); // past it: dropped
    }, { maxObject: 32n }),
    ["FREEOBJECTS 3 29"],
  );
  // A dropped range does not flush a pending FREE either (dump_freeobjects returns first).
  const s = new RecordSender(undefined, { maxObject: 32n });
  s.free(1n, 0n, 512n);
  assertEquals(s.freeObjects(40n, 8n), []);
  assertEquals(s.pending?.type, DRR.FREE);
  // first + count wraps: C compares the wrapped sum, so nothing is clamped.
  assertEquals(
    await send((s) => s.freeObjects(5n, MAX), { maxObject: 32n }),
    [`FREEOBJECTS 5 ${MAX}`],
  );
  // No maxobj (0): nothing clamped.
  assertEquals(await send((s) => s.freeObjects(40n, 1n << 40n)), [
    `FREEOBJECTS 40 ${1n << 40n}`,
  ]);
});

Deno.test("RecordSender: FREE and FREEOBJECTS flush each other", async () => {
  assertEquals(
    await send((s) => {
      s.free(1n, 0n, 512n);
      s.freeObjects(3n, 2n);
      s.freeObjects(5n, 1n);
      s.free(1n, 512n, 512n); // continues the first FREE, but it is gone
      s.free(1n, 1024n, 512n);
      s.freeObjects(6n, 1n); // continues the first FREEOBJECTS, which is gone too
    }),
    ["FREE 1 0 512", "FREEOBJECTS 3 3", "FREE 1 512 1024", "FREEOBJECTS 6 1"],
  );
});

Deno.test("RecordSender: OBJECT and WRITE flush the pending range and break merging", async () => {
  assertEquals(
    await send((s) => {
      object(s, 1n);
      s.free(1n, 8192n, MAX); // dump_dnode: free past the end, at once
      s.free(1n, 0n, 512n);
      write(s, 1n, 512n);
      s.free(1n, 1024n, 512n);
      s.free(1n, 1536n, 512n);
      object(s, 2n);
      s.freeObjects(3n, 1n);
      write(s, 2n, 0n);
      s.freeObjects(4n, 1n); // continues 3..3, but a WRITE came between
      object(s, 5n);
      s.free(5n, 0n, 512n);
    }),
    [
      "OBJECT 1",
      "FREE 1 8192 -1",
      "FREE 1 0 512",
      "WRITE 1 512",
      "FREE 1 1024 1024",
      "OBJECT 2",
      "FREEOBJECTS 3 1",
      "WRITE 2 0",
      "FREEOBJECTS 4 1",
      "OBJECT 5",
      "FREE 5 0 512",
    ],
  );
});

Deno.test("RecordSender.redact() merges like FREE and flushes the others", async () => {
  assertEquals(
    await send((s) => {
      s.redact(2n, 0n, 4096n);
      s.redact(2n, 4096n, 4096n);
      s.free(2n, 8192n, 512n);
      s.redact(2n, 8704n, 512n);
      write(s, 3n, 0n);
    }),
    ["REDACT 2 0 8192", "FREE 2 8192 512", "REDACT 2 8704 512", "WRITE 3 0"],
  );
});

Deno.test("RecordSender.end() writes the pending record before END; write() refuses BEGIN", () => {
  const s = new RecordSender();
  s.begin({ toname: "p/fs@s", toguid: 1n, objset_type: 2 });
  s.free(1n, 0n, 512n);
  const out = s.end();
  assertEquals(out.map((c) => c[0]), [DRR.FREE, DRR.END]);
  assertEquals(s.pending, null);
  assertThrows(() => s.write({ type: DRR.BEGIN }), TypeError);
});

/**
 * Replays a stream through RecordSender, as the kernel's traversal would call it: every FREE
 * (but those of length -1) cut into up to eight pieces and every FREEOBJECTS into single
 * objects (up to 64 of them), then, before each END, FREEOBJECTS of everything past `maxObject` (which the clamp
 * must drop). The aggregation must put the pieces back together: the same records, the same
 * checksums, the same bytes.
 */
async function replay(bytes: Uint8Array, maxObject: bigint): Promise<Uint8Array> {
  const records = await Array.fromAsync(readRecords([bytes]));
  // Old streams (zfs-fuse) carry no record checksums; new ones carry them in every record.
  const checked = records.some((r) =>
    r.header.type !== DRR.BEGIN && r.header.type !== DRR.END &&
    !isZeroChecksum(r.header.record_checksum)
  );
  const s = new RecordSender(
    new StreamWriter({ littleEndian: records[0]!.littleEndian, recordChecksums: checked }),
    { maxObject },
  );
  const out: Uint8Array[] = [];
  for (const r of records) {
    const h = r.header;
    if (h.type === DRR.BEGIN) out.push(...s.begin(h, r.payload));
    else if (h.type === DRR.FREE) {
      if (h.length === MAX) out.push(...s.free(h.object, h.offset, h.length));
      else {
        const piece = h.length / 8n || h.length;
        let at = 0n;
        while (at < h.length) {
          const n = h.length - at < 2n * piece ? h.length - at : piece;
          out.push(...s.free(h.object, h.offset + at, n));
          at += n;
        }
      }
    } else if (h.type === DRR.FREEOBJECTS) {
      // Single objects, the first 64 of them; the rest in one piece.
      const singles = h.numobjs < 64n ? h.numobjs : 64n;
      for (let i = 0n; i < singles; i++) out.push(...s.freeObjects(h.firstobj + i, 1n));
      if (h.numobjs > singles) {
        out.push(...s.freeObjects(h.firstobj + singles, h.numobjs - singles));
      }
    } else if (h.type === DRR.REDACT) out.push(...s.redact(h.object, h.offset, h.length));
    else if (h.type === DRR.END) {
      if (maxObject > 0n) out.push(...s.freeObjects(maxObject, (1n << 48n) - maxObject));
      out.push(...s.end());
    } else out.push(...s.write(h, r.payload));
  }
  return concat(out);
}

Deno.test("RecordSender replays OpenZFS full streams byte for byte", async (t) => {
  const dir = openzfsDir();
  if (dir === null) return skipNote("OpenZFS replay", "no OpenZFS fixtures");
  // maxobj = 32 * (meta-dnode maxblkid + 1): where each stream's last FREEOBJECTS ends.
  for (
    const [name, maxObject] of [
      ["little-endian-long-payloads", 160n],
      ["decompress", 160n],
      ["little-endian-all-drr-types-base-NATIVE", 160n],
    ] as const
  ) {
    await t.step(name, async () => {
      const bytes = await Deno.readFile(await unpackBz2(`${dir}/${name}.zsend.bz2`));
      const again = await replay(bytes, maxObject);
      assertEquals(again.length, bytes.length);
      assertEquals(again, bytes);
    });
  }
});

Deno.test("RecordSender replays zfs-fuse streams byte for byte", async () => {
  for (const name of ["fs-s1.full", "fs-s1-s2.incr", "fs-s2-s3.incr", "clone-s2-c1.clone"]) {
    const bytes = await Deno.readFile(`${ZFS_FUSE_DIR}/${name}.zstream`);
    const again = await replay(bytes, 0n);
    assertEquals(again, bytes, name);
  }
});
