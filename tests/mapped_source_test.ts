/**
 * A regular file read as mapped windows gives the same bytes, records and verdicts as read
 * with `pread`: across window edges, at an end that is not page-aligned, for a file that grows
 * while it is read; anything but a regular file is left to reads.
 */

import { assert, assertEquals } from "@std/assert";
import { mappedChunks, NO_MMAP_ENV } from "../io/mapped_source.ts";
import { BufferLeases } from "../io/buffer_leases.ts";
import { cString, loadNative, type NativeLib } from "../io/native/ffi.ts";
import { openStreamInput } from "../io/source.ts";
import { readRecordBatches } from "../core/stream/reader.ts";
import { verifyStream } from "../core/stream/verify.ts";
import { ROOT } from "./_fixtures.ts";
import { Fletcher4 } from "../core/checksum/fletcher4.ts";
import { nativeFletcher4 } from "../io/native/fletcher4_native.ts";

const EXAMPLE = `${ROOT}examples/fs-s1.full.zstream`;

function native(): NativeLib {
  const lib = loadNative();
  if (lib === null) throw new Error("the test needs the native library and --allow-ffi");
  return lib;
}

/** Runs `fn` with `ZSEND_NO_MMAP` set to `value` (or unset). */
async function withMmapEnv(value: string | undefined, fn: () => Promise<void>): Promise<void> {
  const old = Deno.env.get(NO_MMAP_ENV);
  if (value === undefined) Deno.env.delete(NO_MMAP_ENV);
  else Deno.env.set(NO_MMAP_ENV, value);
  try {
    await fn();
  } finally {
    if (old === undefined) Deno.env.delete(NO_MMAP_ENV);
    else Deno.env.set(NO_MMAP_ENV, old);
  }
}

/** The chunks of `path` as `mappedChunks` gives them (copied), and what it returned. */
async function mapped(path: string, chunkSize: number, onChunk?: (i: number) => void) {
  const lib = native();
  const fd = lib.symbols.zs_open(cString(path), 0, 0);
  assert(fd >= 0);
  try {
    const chunks: Uint8Array[] = [];
    const it = mappedChunks(lib, fd, path, { chunkSize });
    for (;;) {
      const r = await it.next();
      if (r.done) return { chunks, whole: r.value };
      chunks.push(r.value.slice());
      onChunk?.(chunks.length);
    }
  } finally {
    lib.symbols.zs_close(fd);
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

Deno.test("mappedChunks() gives a file's bytes in windows, up to an end that is not page-aligned", async () => {
  const path = await Deno.makeTempFile({ prefix: "zsend-map-" });
  try {
    const data = new Uint8Array(3 * 65536 + 4099).map((_, i) => (i * 7919) >> 5);
    await Deno.writeFile(path, data);
    const { chunks, whole } = await mapped(path, 65536);
    assert(whole);
    assertEquals(chunks.map((c) => c.length), [65536, 65536, 65536, 4099]);
    assertEquals(concat(chunks), data);
    // An empty file: nothing, read to its end.
    await Deno.writeFile(path, new Uint8Array(0));
    const empty = await mapped(path, 65536);
    assertEquals([empty.chunks.length, empty.whole], [0, true]);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("mappedChunks() follows a file that grows while it is read", async () => {
  const path = await Deno.makeTempFile({ prefix: "zsend-map-" });
  try {
    const first = new Uint8Array(65536 + 100).fill(1);
    const more = new Uint8Array(70000).fill(2);
    await Deno.writeFile(path, first);
    const { chunks } = await mapped(path, 65536, (i) => {
      if (i === 1) Deno.writeFileSync(path, more, { append: true });
    });
    assertEquals(concat(chunks), concat([first, more]));
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("mappedChunks() leaves anything but a regular file to reads, and lets go of its window", async () => {
  const lib = native();
  const fd = lib.symbols.zs_open(cString("/dev/zero"), 0, 0);
  assert(fd >= 0);
  try {
    const it = mappedChunks(lib, fd, "/dev/zero", { chunkSize: 65536 });
    assertEquals(await it.next(), { done: true, value: false });
  } finally {
    lib.symbols.zs_close(fd);
  }
  // A view kept past its time reads zeros once the window is let go of, and never faults.
  const path = await Deno.makeTempFile({ prefix: "zsend-map-" });
  try {
    await Deno.writeFile(path, new Uint8Array(5000).fill(7));
    const pfd = lib.symbols.zs_open(cString(path), 0, 0);
    let kept: Uint8Array = new Uint8Array(0);
    for await (const c of mappedChunks(lib, pfd, path, { chunkSize: 65536 })) kept = c;
    lib.symbols.zs_close(pfd);
    assertEquals(kept.length, 5000);
    assert(kept.every((b) => b === 0));
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("openStreamInput() maps a file, and the records and verdict are those of reads", async () => {
  const whole = await Deno.readFile(EXAMPLE);
  const records = async (chunks: AsyncIterable<Uint8Array> | Uint8Array[]) => {
    const out: [number[], number[]][] = [];
    for await (const batch of readRecordBatches(chunks, { reuseSpans: true })) {
      for (const r of batch) out.push([[...r.raw], [...r.payload]]);
    }
    return out;
  };
  const want = await records([whole]);
  for (const env of [undefined, "1"]) {
    await withMmapEnv(env, async () => {
      // Small windows, so that headers and payloads span them.
      const source = openStreamInput(EXAMPLE, { reuse: true, chunkSize: 65536 });
      assertEquals(await records(source), want, `${NO_MMAP_ENV}=${env}`);
      const report = await verifyStream(openStreamInput(EXAMPLE, { reuse: true }), {
        reuseSpans: true,
      });
      assertEquals(report.bytes, whole.length);
    });
  }
});

Deno.test("mappedChunks() with leases maps a window again only once no write holds it", async () => {
  const lib = native();
  const path = await Deno.makeTempFile({ prefix: "zsend-map-" });
  try {
    const data = new Uint8Array(4 * 65536).map((_, i) => 1 + (i >> 16));
    await Deno.writeFile(path, data);
    const fd = lib.symbols.zs_open(cString(path), 0, 0);
    const leases = new BufferLeases();
    const it = mappedChunks(lib, fd, path, { chunkSize: 65536, leases, slots: 3 });
    const chunk = async () => (await it.next()).value as Uint8Array;
    const first = await chunk();
    const release = leases.hold(first.buffer);
    const second = await chunk();
    assertEquals([first[0], second[0]], [1, 2]);
    // The fourth window is mapped ahead where the first is, held: the third waits for it, and
    // the first stays whole meanwhile.
    let third: Uint8Array | null = null;
    const next = chunk().then((c) => void (third = c));
    await new Promise((r) => setTimeout(r, 50));
    assertEquals([third, first.every((b) => b === 1)], [null, true]);
    release();
    await next;
    assertEquals(third![0], 3);
    // Held at the end: left mapped (the file's bytes); a window not held is let go of.
    const hold = leases.hold(third!.buffer);
    assertEquals((await chunk())[0], 4);
    assertEquals(await it.next(), { done: true, value: true });
    assert(third!.every((b) => b === 3));
    assert(second.every((b) => b === 0));
    hold();
    lib.symbols.zs_close(fd);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("a file that shrinks under its mapped windows is an error naming it, not a crash", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zsend-mapped-shrink-" });
  const path = `${dir}/stream`;
  try {
    const size = 8 << 20;
    const bytes = new Uint8Array(size).fill(0x5a);
    await Deno.writeFile(path, bytes);
    let seen = 0;
    let zeros = 0;
    const lib = native();
    const fd = lib.symbols.zs_open(cString(path), 0, 0);
    assert(fd >= 0);
    let error: unknown = null;
    try {
      // The file is cut while the first window is read: its pages past the new end fault.
      for await (const chunk of mappedChunks(lib, fd, path, { chunkSize: 1 << 20 })) {
        if (seen === 0) await Deno.truncate(path, 4096);
        for (let i = 0; i < chunk.length; i += 4096) if (chunk[i] === 0) zeros++;
        seen++;
      }
    } catch (e) {
      error = e;
    } finally {
      lib.symbols.zs_close(fd);
    }
    assert(error instanceof Deno.errors.BadResource, String(error));
    assert(String(error).includes(path) && String(error).includes("shrank"), String(error));
    assert(zeros > 0, "the pages past the new end read as zeros");
    // The first window lost its pages past the new end too: the error comes before the next.
    assertEquals(seen, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fletcher-4 inside mapped windows equals TypeScript's, from page sums or not", async () => {
  // The prefetch thread sums the pages of each window mapped ahead; native fletcher-4 of a range
  // in a window then folds those sums in. Ranges at every alignment, across page edges, with
  // the sums all there (after a wait), partly there or not yet there, must give TypeScript's
  // result; and the sums must really have been used.
  const lib = native();
  const engine = nativeFletcher4()!;
  const path = await Deno.makeTempFile({ prefix: "zsend-pagesums-" });
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  try {
    const data = new Uint8Array(11 * 1024 * 1024 + 4100);
    for (let i = 0; i < data.length; i++) data[i] = (rand() * 256) | 0;
    await Deno.writeFile(path, data);
    const fd = lib.symbols.zs_open(cString(path), 0, 0);
    assert(fd >= 0);
    const before = lib.symbols.zs_page_sums_used();
    let ranges = 0;
    try {
      let window = 0;
      for await (const chunk of mappedChunks(lib, fd, path, { chunkSize: 2 << 20 })) {
        if (window++ % 3 !== 2) await new Promise((r) => setTimeout(r, 30));
        for (let i = 0; i < 40; i++) {
          const from = (rand() * chunk.length) | 0;
          const len = Math.min(chunk.length - from, (rand() * 300_000) | 0) &
            ~(i % 2 === 0 ? 3 : 0);
          const piece = chunk.subarray(from, from + len);
          const little = i % 5 !== 4;
          const ts = new Fletcher4();
          ts.update(piece, little);
          const nat = new Fletcher4(engine);
          nat.update(piece, little);
          assertEquals(nat.value(), ts.value(), `window ${window} [${from}, +${len}) le=${little}`);
          ranges++;
        }
      }
    } finally {
      lib.symbols.zs_close(fd);
    }
    assertEquals(ranges, 40 * 6);
    assert(lib.symbols.zs_page_sums_used() > before, "no page sum was used");
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("mappedChunks() left early with windows still being mapped ahead, then read again", async () => {
  // Windows are mapped ahead on the library's thread; a consumer that stops early must leave
  // nothing mapping into the slots that the next reader takes over.
  const path = await Deno.makeTempFile({ prefix: "zsend-map-" });
  try {
    const data = new Uint8Array(10 * 65536 + 333).map((_, i) => (i * 131) >> 3);
    await Deno.writeFile(path, data);
    for (const stopAfter of [1, 2, 5]) {
      const lib = native();
      const fd = lib.symbols.zs_open(cString(path), 0, 0);
      const seen: Uint8Array[] = [];
      for await (const c of mappedChunks(lib, fd, path, { chunkSize: 65536 })) {
        seen.push(c.slice());
        if (seen.length === stopAfter) break;
      }
      lib.symbols.zs_close(fd);
      assertEquals(concat(seen), data.subarray(0, stopAfter * 65536));
      const { chunks, whole } = await mapped(path, 65536);
      assert(whole);
      assertEquals(concat(chunks), data);
    }
  } finally {
    await Deno.remove(path);
  }
});
