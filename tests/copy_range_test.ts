/**
 * `Device.copyRange` and `copyRangeAsync` (how extract copies blocks out of packs): the same
 * bytes whether the offsets line up within a page (copy_file_range) or not (writes from the
 * source mapped a window at a time), large and small, and a clear error, with nothing claimed,
 * when the source ends before the range.
 */

import { assert, assertEquals, assertThrows } from "@std/assert";
import { Device } from "../io/native/device.ts";
import { xorshift32 } from "./helpers/prng.ts";

function bytes(n: number, seed: number): Uint8Array {
  const next = xorshift32(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = next() & 0xFF;
  return out;
}

Deno.test("copyRange: the same bytes at offsets that line up and that do not", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zsend-copy-" });
  try {
    const src = bytes(3 << 20, 7);
    await Deno.writeFile(`${dir}/src`, src);
    // [source offset, length, destination offset]: misaligned by 2048 as a pack's blocks, by
    // odd amounts, across window boundaries, aligned, and below the mapped minimum.
    const cases: [number, number, number][] = [
      [2048, (1 << 20) + 4096, 0],
      [1, (2 << 20) + 5, 3],
      [4096, 1 << 20, 0],
      [100, 70_000, 8192],
      [5, 1000, 0],
    ];
    for (const native of [true, false]) {
      for (const [from, length, to] of cases) {
        for (const async of [false, true]) {
          const out = `${dir}/out`;
          using s = Device.open(`${dir}/src`, { native });
          using d = Device.open(out, { write: true, createNew: true, native });
          if (async) await d.copyRangeAsync(s, from, length, to);
          else d.copyRange(s, from, length, to);
          const got = await Deno.readFile(out);
          const what = `native ${native}, async ${async}: ${from} ${length} ${to}`;
          assertEquals(got.length, to + length, what);
          assert(got.subarray(0, to).every((b) => b === 0), what);
          assertEquals(got.subarray(to), src.subarray(from, from + length), what);
          d.close();
          await Deno.remove(out);
        }
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("copyRange: a source that ends before the range is an error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zsend-copy-" });
  try {
    await Deno.writeFile(`${dir}/src`, bytes(200_000, 3));
    using s = Device.open(`${dir}/src`);
    using d = Device.open(`${dir}/out`, { write: true, createNew: true });
    assertThrows(() => d.copyRange(s, 2048, 300_000, 0), RangeError, "ends before byte 302048");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
