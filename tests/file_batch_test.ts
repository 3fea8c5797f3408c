/**
 * `FileBatches` (small files made whole by the native library on another thread): many
 * batches in flight at once while this thread makes garbage (so the collector runs while the
 * native calls read their buffers), every file whole afterwards: data from memory and from a
 * pack, holes, modes and times.
 */

import { assert, assertEquals } from "@std/assert";
import { FileBatches } from "../io/native/file_batch.ts";
import { xorshift32 } from "./helpers/prng.ts";

Deno.test({
  name: "FileBatches: many batches in flight while garbage is made, every file whole",
  ignore: FileBatches.open() === null,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "zsend-batch-" });
    try {
      const next = xorshift32(11);
      const pack = new Uint8Array(1 << 20);
      for (let i = 0; i < pack.length; i++) pack[i] = next() & 0xFF;
      await Deno.writeFile(`${dir}/pack`, pack);
      const batches = FileBatches.open(dir)!;
      const want = new Map<string, { bytes: Uint8Array; mode: number; mtime: number }>();
      const flushed: Promise<unknown>[] = [];
      let junk: unknown[] = [];
      for (let b = 0; b < 40; b++) {
        for (let f = 0; f < 50; f++) {
          const n = b * 50 + f;
          const path = `${dir}/f${n}`;
          const size = 1 + (next() % 9000);
          const bytes = new Uint8Array(size);
          // A run from the pack, then one from memory, then a hole to the end.
          const from = next() % (pack.length - 4096), a = Math.min(size, 1 + (next() % 4096));
          bytes.set(pack.subarray(from, from + a));
          const mem = new Uint8Array(Math.min(size - a, next() % 3000)).map(() => 1 + (n & 0x7F));
          bytes.set(mem, a);
          const mode = 0o600 | (n & 0o77);
          const mtime = 1_600_000_000 + n;
          batches.add({
            path,
            size,
            truncate: true,
            perm: mode,
            uid: 0,
            gid: 0,
            chown: false,
            atime: [mtime, 0],
            mtime: [mtime, 0],
            runs: [
              { source: `${dir}/pack`, from, length: a, to: 0 },
              ...(mem.length > 0 ? [{ data: mem, to: a }] : []),
            ],
          });
          want.set(path, { bytes, mode, mtime });
        }
        flushed.push(batches.flush());
        // Garbage, so that collections happen while the batches are written.
        for (let g = 0; g < 200; g++) junk.push(new Uint8Array(16 << 10));
        if (junk.length > 2000) junk = [];
      }
      const failures = (await Promise.all(flushed)).flat();
      await batches.close();
      assertEquals(failures, []);
      for (const [path, w] of want) {
        const st = await Deno.stat(path);
        assertEquals(st.mode! & 0o7777, w.mode, path);
        assertEquals(st.mtime!.getTime(), w.mtime * 1000, path);
        const got = await Deno.readFile(path);
        assert(got.length === w.bytes.length && got.every((x, i) => x === w.bytes[i]), path);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
