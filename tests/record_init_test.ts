/**
 * RecordInit is keyed by the record's type: a field the kind lacks is a type error (checked by
 * `deno check`/`deno test`, which fail on an unused `@ts-expect-error`), and the writer gives a
 * record without `toguid` its substream's.
 */

import { assertEquals } from "@std/assert";
import { DRR } from "../core/stream/constants.ts";
import { decodeRecord, encodeRecord, type RecordInit } from "../core/stream/record.ts";
import { readRecords } from "../core/stream/reader.ts";
import { StreamWriter } from "../core/stream/writer.ts";
import { verifyStream } from "../core/stream/verify.ts";

Deno.test("RecordInit: a misspelled field or one of another record kind is a type error", () => {
  const good: RecordInit[] = [
    { type: DRR.FREE, object: 3n, offset: 0n, length: 512n },
    { type: DRR.WRITE, object: 1n, offset: 0n, logical_size: 512n, compressiontype: 0 },
    { type: DRR.OBJECT, object: 2n, blksz: 512, bonuslen: 0, dn_slots: 1 },
    { type: DRR.FREEOBJECTS, firstobj: 1n, numobjs: 31n },
  ];
  const bad: RecordInit[] = [
    // @ts-expect-error FREE has no field `lenght`
    { type: DRR.FREE, object: 3n, lenght: 512n },
    // @ts-expect-error WRITE's size is `logical_size`; `length` is FREE's
    { type: DRR.WRITE, object: 1n, length: 512n },
    // @ts-expect-error OBJECT's block size is `blksz`
    { type: DRR.OBJECT, object: 2n, blocksize: 512 },
    // @ts-expect-error a u64 field takes a bigint, not a number
    { type: DRR.FREEOBJECTS, firstobj: 1, numobjs: 31n },
  ];
  // At run time the encoder writes the fields it knows and leaves the rest zero.
  const free = decodeRecord(encodeRecord(bad[0]!, true), true);
  assertEquals(free.type === DRR.FREE && [free.object, free.length], [3n, 0n]);
  assertEquals(good.length, bad.length);
});

Deno.test("StreamWriter.write() gives a record without toguid the BEGIN's, and verify agrees", async () => {
  const w = new StreamWriter();
  const bytes = [
    ...w.begin({ toname: "p/fs@a", toguid: 0xabcn, objset_type: 2 }),
    ...w.write({ type: DRR.FREEOBJECTS, firstobj: 1n, numobjs: 31n }),
    ...w.write({ type: DRR.FREE, object: 40n, offset: 0n, length: 512n, toguid: 0x55n }),
    ...w.end(),
  ];
  const guids = [];
  for await (const r of readRecords(bytes)) {
    guids.push(r.header.type === DRR.BEGIN ? -1n : r.header.toguid);
  }
  // An explicit toguid is kept as given (verify then names the mismatch).
  assertEquals(guids, [-1n, 0xabcn, 0x55n, 0xabcn]);
  const w2 = new StreamWriter();
  const whole = [
    ...w2.write({
      type: DRR.BEGIN,
      toname: "p/fs@b",
      toguid: 7n,
      objset_type: 2,
      magic: 0x2f5bacbacn,
      versioninfo: 1n,
    }),
    ...w2.write({ type: DRR.FREEOBJECTS, firstobj: 1n, numobjs: 31n }),
    ...w2.end(),
  ];
  assertEquals((await verifyStream(whole)).snapshots, ["p/fs@b"]);
});
