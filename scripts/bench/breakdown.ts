/**
 * Where `zsend verify`'s time goes: one stage of its read path per run, in a child of its own
 * (so each has its own peak RSS), timing only the stage's loop.
 *
 *   deno run -A scripts/bench/breakdown.ts STAGE FILE
 *
 * prints `{"stage": ..., "seconds": ..., "bytes": ...}`. Stages, each adding to the one before:
 *
 * - `noop`: nothing (deno startup and this module's imports)
 * - `read-reuse`: read the file into one reused, page-aligned 4 MiB buffer (the floor for
 *   reading in Deno)
 * - `read-fresh`: `io/source.ts` `openStreamInput()` without `reuse`, a fresh 4 MiB buffer
 *   per chunk (as redup and image read)
 * - `read-ahead`: `openStreamInput()` with `reuse` and `ZSEND_NO_MMAP=1`, as verify reads a
 *   file that cannot be mapped: two buffers, the next chunk read by `pread` on a native thread
 *   while this one is looked at
 * - `mapped`: `openStreamInput()` with `reuse`, as verify reads a file: 3 MiB windows, each
 *   mapped while the one before is looked at and its pages read in on a native thread, no copy
 *   (`io/mapped_source.ts`); the loop touches no byte, so this is the main thread's share only
 * - `mapped-f4`: the same plus native fletcher-4 over every chunk: the floor of verify (the
 *   bytes in front of the checksum, and the checksum)
 * - `records`: `core/stream/reader.ts` `readRecords()` with checksums (parse + fletcher-4 + take)
 * - `verify`: `core/stream/verify.ts` `verifyStream()`, everything `zsend verify` does after startup
 *
 * @module
 */

import { alignedBytes } from "../../io/aligned_buffer.ts";
import { openStreamInput } from "../../io/source.ts";
import { NO_MMAP_ENV } from "../../io/mapped_source.ts";
import { readRecords } from "../../core/stream/reader.ts";
import { verifyStream } from "../../core/stream/verify.ts";
import { Fletcher4 } from "../../core/checksum/fletcher4.ts";
import { bestFletcher4 } from "../../io/native/fletcher4_native.ts";

/** The stages, in order. */
export const STAGES = [
  "noop",
  "read-reuse",
  "read-fresh",
  "read-ahead",
  "mapped",
  "mapped-f4",
  "records",
  "verify",
];

/** What each stage is, for the report. */
export const STAGE_LABEL: Record<string, string> = {
  "noop": "deno startup + imports, no work",
  "read-reuse": "read file, one reused page-aligned 4 MiB buffer",
  "read-fresh": "read file, fresh 4 MiB chunk each (io/source.ts, no reuse)",
  "read-ahead": "read file with native pread one chunk ahead, two buffers (ZSEND_NO_MMAP=1)",
  "mapped": "map file as verify does: 3 MiB windows, the next read in on a native thread",
  "mapped-f4": "... + native fletcher-4 over every chunk",
  "records": "readRecords(): parse + checksum (core/stream/reader.ts)",
  "verify": "verifyStream(): all of verify (core/stream/verify.ts)",
};

/** Runs one stage; returns the bytes or records it went through. */
export async function stage(name: string, path: string): Promise<number> {
  let n = 0;
  switch (name) {
    case "noop":
      return 0;
    case "read-reuse": {
      using file = await Deno.open(path);
      const buf = alignedBytes(4 << 20);
      for (;;) {
        const got = await file.read(buf);
        if (got === null) return n;
        n += got;
      }
    }
    case "read-fresh":
      for await (const c of openStreamInput(path)) n += c.length;
      return n;
    case "read-ahead":
      Deno.env.set(NO_MMAP_ENV, "1");
      for await (const c of openStreamInput(path, { reuse: true })) n += c.length;
      return n;
    case "mapped":
      for await (const c of openStreamInput(path, { reuse: true })) n += c.length;
      return n;
    case "mapped-f4": {
      const ck = new Fletcher4(bestFletcher4());
      for await (const c of openStreamInput(path, { reuse: true })) {
        ck.update(c, true);
        n += c.length;
      }
      return n;
    }
    case "records": {
      const input = openStreamInput(path, { reuse: true });
      const options = { fletcher4: bestFletcher4(), reuseSpans: true };
      for await (const r of readRecords(input, options)) {
        n = r.offset + r.raw.length + r.payload.length;
      }
      return n;
    }
    case "verify":
      return (await verifyStream(openStreamInput(path, { reuse: true }), {
        fletcher4: bestFletcher4(),
        reuseSpans: true,
      })).bytes;
  }
  throw new TypeError(`unknown stage ${name}: one of ${STAGES.join(", ")}`);
}

if (import.meta.main) {
  const [name, path] = Deno.args;
  if (name === undefined || path === undefined) {
    console.error("usage: deno run -A scripts/bench/breakdown.ts STAGE FILE");
    Deno.exit(2);
  }
  const t0 = performance.now();
  const bytes = await stage(name, path);
  const seconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ stage: name, seconds, bytes }));
}
