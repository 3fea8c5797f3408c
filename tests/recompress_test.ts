/**
 * recompress without OpenZFS: every codec on a stream built here (the data survives, payloads
 * padded to 512 bytes, plain where compression saves nothing), the feature flags as OpenZFS
 * master sets them, raw streams and zstd refused; the compressors against random inputs.
 */

import { assertEquals, assertRejects } from "@std/assert";
import { concat } from "@std/bytes";
import { compressBlock } from "../core/compress/encode.ts";
import { decompressBlock, ZIO_COMPRESS } from "../core/compress/mod.ts";
import { DRR, FEATURE } from "../core/stream/constants.ts";
import { StreamError } from "../core/stream/errors.ts";
import { readRecords } from "../core/stream/reader.ts";
import {
  type DrrRecord,
  type DrrWrite,
  featureFlags,
  makeVersioninfo,
} from "../core/stream/record.ts";
import { recompressedFeatures, recompressRecords } from "../core/transform/recompress.ts";
import { verifyStream } from "../core/stream/verify.ts";
import { StreamWriter } from "../core/stream/writer.ts";
import { runZsend } from "./_run.ts";

const G = 5n;

function asWrite(h: DrrRecord): DrrWrite {
  if (h.type !== DRR.WRITE) throw new Error(`record type ${h.type} is not a WRITE`);
  return h;
}
let seed = 99;
const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
const TEXT = Uint8Array.from({ length: 8192 }, (_, i) => "zfs send stream "[i % 16]!.charCodeAt(0));
const NOISE = Uint8Array.from({ length: 8192 }, () => rand());

function sample(features: number): Uint8Array {
  const w = new StreamWriter();
  const lz4Text = compressBlock(ZIO_COMPRESS.LZ4, TEXT)!;
  const stored = concat([lz4Text, new Uint8Array(512 - (lz4Text.length % 512))]);
  return concat([
    ...w.begin({
      toname: "p/fs@s",
      toguid: G,
      objset_type: 2,
      versioninfo: makeVersioninfo(1, BigInt(features)),
    }),
    ...w.write({
      type: DRR.OBJECT,
      object: 2n,
      object_type: 19,
      bonustype: 0,
      blksz: 8192,
      toguid: G,
    }),
    ...w.write({
      type: DRR.WRITE,
      object: 2n,
      object_type: 19,
      offset: 0n,
      logical_size: 8192n,
      toguid: G,
      compressiontype: ZIO_COMPRESS.LZ4,
      compressed_size: BigInt(stored.length),
    }, stored),
    ...w.write(
      {
        type: DRR.WRITE,
        object: 2n,
        object_type: 19,
        offset: 8192n,
        logical_size: 8192n,
        toguid: G,
      },
      NOISE,
    ),
    ...w.end(),
  ]);
}

Deno.test("recompressRecords() stores every WRITE with the codec, or plain when it saves nothing", async () => {
  const input = sample(FEATURE.COMPRESSED | FEATURE.LZ4);
  for (
    const codec of [
      ZIO_COMPRESS.OFF,
      ZIO_COMPRESS.LZJB,
      ZIO_COMPRESS.GZIP_1,
      ZIO_COMPRESS.GZIP_9,
      ZIO_COMPRESS.ZLE,
      ZIO_COMPRESS.LZ4,
    ]
  ) {
    const out = concat(await Array.fromAsync(recompressRecords(readRecords([input]), codec)));
    await verifyStream([out]);
    const recs = await Array.fromAsync(readRecords([out]));
    const t = asWrite(recs[2]!.header);
    const n = asWrite(recs[3]!.header);
    if (codec === ZIO_COMPRESS.OFF || codec === ZIO_COMPRESS.ZLE) {
      // ZLE saves nothing on text without zeros.
      assertEquals([t.compressiontype, t.compressed_size, recs[2]!.payload], [0, 0n, TEXT]);
    } else {
      assertEquals(t.compressiontype, codec);
      assertEquals(recs[2]!.payload.length % 512, 0);
      assertEquals(t.compressed_size, BigInt(recs[2]!.payload.length));
      assertEquals(decompressBlock(codec, recs[2]!.payload, 8192), TEXT);
    }
    // Noise does not compress: stored plain.
    assertEquals([n.compressiontype, recs[3]!.payload], [0, NOISE]);
    const begin = recs[0]!.header;
    if (begin.type !== DRR.BEGIN) throw new Error("no BEGIN");
    assertEquals(
      featureFlags(begin.versioninfo),
      recompressedFeatures(BigInt(FEATURE.COMPRESSED | FEATURE.LZ4), codec),
    );
  }
});

Deno.test("recompressedFeatures() sets the flags as OpenZFS master does", () => {
  const C = BigInt(FEATURE.COMPRESSED), L = BigInt(FEATURE.LZ4), Z = BigInt(FEATURE.ZSTD);
  const E = BigInt(FEATURE.EMBED_DATA);
  assertEquals(recompressedFeatures(C | L | Z, ZIO_COMPRESS.OFF), 0n);
  assertEquals(recompressedFeatures(C | L | E, ZIO_COMPRESS.OFF), L | E);
  assertEquals(recompressedFeatures(0n, ZIO_COMPRESS.GZIP_6), C);
  assertEquals(recompressedFeatures(0n, ZIO_COMPRESS.LZJB), C);
  assertEquals(recompressedFeatures(0n, ZIO_COMPRESS.ZLE), C);
  assertEquals(recompressedFeatures(0n, ZIO_COMPRESS.LZ4), C | L);
  assertEquals(recompressedFeatures(0n, ZIO_COMPRESS.ZSTD), C | Z);
});

Deno.test("recompressRecords() refuses raw streams and zstd", async () => {
  const raw = sample(FEATURE.RAW);
  const e = await assertRejects(
    () => Array.fromAsync(recompressRecords(readRecords([raw]), ZIO_COMPRESS.LZ4)),
    StreamError,
  );
  assertEquals(e.fault, "recompress does not take raw (encrypted) streams");
  await assertRejects(
    () => Array.fromAsync(recompressRecords(readRecords([sample(0)]), ZIO_COMPRESS.ZSTD)),
    TypeError,
  );
  const r = await runZsend(["recompress", "zstd"], { stdin: sample(0) });
  assertEquals(r.code, 2);
  const ok = await runZsend(["recompress", "-l", "9", "gzip"], { stdin: sample(0) });
  assertEquals(ok.code, 0, ok.stderr);
  const recs = await Array.fromAsync(readRecords([ok.stdoutBytes]));
  assertEquals(asWrite(recs[2]!.header).compressiontype, ZIO_COMPRESS.GZIP_9);
});

Deno.test("compressBlock() output decodes to the input for every codec", () => {
  for (let t = 0; t < 200; t++) {
    const n = [0, 1, 5, 12, 13, 17, 512, 4096, 131072][t % 9]!;
    const kind = t % 4;
    const d = Uint8Array.from(
      { length: n },
      (_, i) =>
        kind === 0
          ? rand()
          : kind === 1
          ? (rand() < 40 ? rand() : 0)
          : kind === 2
          ? (i % 97) & (rand() & 1 ? 0xff : 0)
          : 0,
    );
    for (const c of [ZIO_COMPRESS.LZJB, ZIO_COMPRESS.GZIP_1, ZIO_COMPRESS.ZLE, ZIO_COMPRESS.LZ4]) {
      assertEquals(decompressBlock(c, compressBlock(c, d)!, n), d, `codec ${c}, ${n} bytes`);
    }
  }
});
