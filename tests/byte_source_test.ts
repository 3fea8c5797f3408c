/**
 * ByteSource and the reader with `reuseSpans`: bytes that span chunks go to one reused buffer,
 * and every record comes out the same as from one whole buffer.
 */

import { assertEquals } from "@std/assert";
import { ByteSource } from "../core/stream/byte_source.ts";
import { readRecordBatches } from "../core/stream/reader.ts";
import { verifyStream } from "../core/stream/verify.ts";
import { readerChunks } from "../io/source.ts";
import { ROOT } from "./_fixtures.ts";

const EXAMPLE = `${ROOT}examples/fs-s1.full.zstream`;

/** Each record's header bytes and payload, copied as it comes. */
async function records(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, reuse: boolean) {
  const out: [number[], number[]][] = [];
  for await (const batch of readRecordBatches(chunks, { reuseSpans: reuse })) {
    for (const r of batch) out.push([[...r.raw], [...r.payload]]);
  }
  return out;
}

Deno.test("ByteSource.take() with reuseSpans: bytes across chunks, in one reused buffer", async () => {
  const chunks = [new Uint8Array([1, 2]), new Uint8Array([3, 4, 5]), new Uint8Array([6, 7, 8])];
  const src = new ByteSource(chunks, { reuseSpans: true });
  const a = await src.take(4);
  assertEquals([...a], [1, 2, 3, 4]);
  const b = await src.take(3);
  assertEquals([...b], [5, 6, 7]);
  // The same memory as the first: valid only until the next read.
  assertEquals(a.buffer, b.buffer);
  assertEquals([...await src.take(5)], [8]);
  assertEquals(src.consumed, 8);
});

Deno.test("readRecordBatches() with reuseSpans over refilled chunks gives every record as from one buffer", async () => {
  const whole = await Deno.readFile(EXAMPLE);
  const want = await records([whole], false);
  // Odd chunk sizes, so that headers and payloads span chunks everywhere.
  for (const chunkSize of [4096 + 13, 65536 + 7, 131072 + 312]) {
    using file = await Deno.open(EXAMPLE);
    const got = await records(readerChunks(file, { chunkSize, reuse: true }), true);
    assertEquals(got, want, `chunks of ${chunkSize}`);
  }
  using file = await Deno.open(EXAMPLE);
  const report = await verifyStream(readerChunks(file, { chunkSize: 5000, reuse: true }), {
    reuseSpans: true,
  });
  assertEquals(report.bytes, whole.length);
});
