/**
 * The buffers the kernel copies into or out of start at aligned addresses: the reader's (from a
 * file natively, from a file through Deno, from a pipe), the pack writer's, the image reader's,
 * and the outputs' (text, bytes, redup). Some CPUs copy several times slower into a buffer 16
 * bytes past a page boundary, where a plain large `Uint8Array` lands; these tests keep that
 * from coming back unnoticed.
 */

import { assert, assertEquals } from "@std/assert";
import {
  addressOf,
  alignedBytes,
  alignMethod,
  CACHE_LINE,
  misalignment,
  PAGE_SIZE,
} from "../io/aligned_buffer.ts";
import { openStreamInput, readerChunks } from "../io/source.ts";
import { NO_MMAP_ENV } from "../io/mapped_source.ts";
import { PackSet } from "../io/store/packs.ts";
import { ChunkOutput, SyncChunkOutput, TextOutput } from "../io/output.ts";
import { pipeChunks } from "../cli/redup.ts";
import { scanImage } from "../io/image.ts";
import { loadNative, NO_NATIVE_ENV } from "../io/native/ffi.ts";

/**
 * The buffers given to the native library's reads and writes, by symbol, while `recording`:
 * its asynchronous symbols cannot be replaced, so the library is loaded through a wrapper
 * (before anything loads it: loading is lazy).
 */
const seen = new Map<string, Uint8Array[]>();
let recording = false;
const dlopen = Deno.dlopen;
const WATCHED = ["zs_pread_async", "zs_pwrite_async", "zs_pread_blocks_async"];
// deno-lint-ignore no-explicit-any
(Deno as any).dlopen = (path: string | URL, symbols: Deno.ForeignLibraryInterface) => {
  const lib = dlopen(path, symbols);
  const wrapped: Record<string, unknown> = { ...lib.symbols };
  for (const name of WATCHED) {
    const orig = lib.symbols[name] as (...args: unknown[]) => unknown;
    if (orig === undefined) continue;
    wrapped[name] = (...args: unknown[]) => {
      if (recording) seen.set(name, [...(seen.get(name) ?? []), args[1] as Uint8Array]);
      return orig(...args);
    };
  }
  return { symbols: wrapped, close: () => lib.close() };
};

/** The native calls' buffers while `fn` runs. */
async function nativeBuffers(fn: () => Promise<void>): Promise<Map<string, Uint8Array[]>> {
  seen.clear();
  recording = true;
  try {
    await fn();
  } finally {
    recording = false;
  }
  return new Map(seen);
}

/** How far past a multiple of `align` each view starts (the test needs --allow-ffi). */
function offsets(views: ArrayBufferView[], align: number): number[] {
  return views.map((v) => {
    const m = misalignment(v, align);
    if (m === null) throw new Error("the test needs --allow-ffi to tell addresses");
    return m;
  });
}

function allZero(xs: number[]): boolean {
  return xs.every((x) => x === 0);
}

/** Replaces a method of `obj` while `fn` runs. */
async function patched<T extends object, K extends keyof T>(
  obj: T,
  key: K,
  wrap: (orig: T[K]) => T[K],
  fn: () => Promise<void>,
): Promise<void> {
  const orig = obj[key];
  obj[key] = wrap(orig);
  try {
    await fn();
  } finally {
    obj[key] = orig;
  }
}

async function tempFile(bytes: number): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "zsend-align-" });
  const data = new Uint8Array(bytes);
  for (let i = 0; i < data.length; i += 4096) data[i] = i & 0xff;
  await Deno.writeFile(path, data);
  return path;
}

Deno.test("alignedBytes() gives page-aligned large and cache-line-aligned small buffers, every way", () => {
  assertEquals(alignMethod(), "address");
  for (const method of ["address", "wasm-memory"] as const) {
    for (const size of [64 << 10, (4 << 20) + 1, 8 << 20]) {
      const b = alignedBytes(size, { method, align: PAGE_SIZE });
      assertEquals(b.length, size);
      assertEquals(misalignment(b, PAGE_SIZE), 0, `${method} ${size}`);
    }
  }
  for (const size of [1, 312, 4096, 100_000]) {
    assertEquals(misalignment(alignedBytes(size), CACHE_LINE), 0, `${size}`);
  }
  // The slow case it exists for: V8's large buffers are not page-aligned here.
  const plain = new Uint8Array(4 << 20);
  assert(addressOf(plain) !== null);
  assertEquals(alignedBytes(0).length, 0);
});

Deno.test("openStreamInput() and readerChunks() read into page-aligned buffers", async () => {
  const path = await tempFile((9 << 20) + 123);
  try {
    // A file mapped by the native library (verify, dump), read by it (recv, and any file with
    // ZSEND_NO_MMAP=1), read through Deno (image).
    const cases = [
      { options: { reuse: true }, noMmap: false, preads: 0, count: 5 }, // 2 MiB windows
      { options: { reuse: true }, noMmap: true, preads: 4, count: 3 },
      { options: {}, noMmap: false, preads: 0, count: 3 },
    ];
    for (const { options, noMmap, preads, count } of cases) {
      const chunks: Uint8Array[] = [];
      if (noMmap) Deno.env.set(NO_MMAP_ENV, "1");
      const native = await nativeBuffers(async () => {
        for await (const c of openStreamInput(path, options)) chunks.push(c);
      }).finally(() => Deno.env.delete(NO_MMAP_ENV));
      const what = JSON.stringify({ options, noMmap });
      assertEquals(chunks.length, count, what);
      assertEquals(offsets(chunks, PAGE_SIZE), new Array(count).fill(0), what);
      // The native reads ahead, into the same buffers.
      const reads = native.get("zs_pread_async") ?? [];
      assertEquals(reads.length, preads, what);
      assert(allZero(offsets(reads, PAGE_SIZE)));
    }
    // A pipe (stdin): the buffers the reads go into.
    const given: Uint8Array[] = [];
    let left = 5 << 20;
    const reader = {
      read(p: Uint8Array): Promise<number | null> {
        given.push(p);
        const n = Math.min(left, p.length, 1 << 16);
        left -= n;
        return Promise.resolve(n === 0 ? null : n);
      },
    };
    for await (const _ of readerChunks(reader, { reuse: true })) { /* reading is the point */ }
    // Each chunk's first read starts at the buffer's start (the rest continue a short read).
    const firsts = given.filter((p) => p.byteLength === 4 << 20);
    assert(firsts.length >= 2);
    assert(allZero(offsets(firsts, PAGE_SIZE)));
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("PackSet writes appended bytes from page-aligned buffers, natively and through Deno", async () => {
  const lib = loadNative();
  if (lib === null) throw new Error("the native library is not built (deno task build-native)");
  const append = async () => {
    const dir = await Deno.makeTempDir({ prefix: "zsend-align-packs-" });
    const packs = new PackSet(dir, [{ id: 1, committed: 0 }]);
    try {
      const block = new Uint8Array(131072 + 512).subarray(512);
      for (let i = 0; i < 200; i++) packs.append(block.subarray(0, 100_000 + i));
      await packs.flush();
    } finally {
      packs.close();
      await Deno.remove(dir, { recursive: true });
    }
  };
  const native = (await nativeBuffers(append)).get("zs_pwrite_async") ?? [];
  assert(native.length >= 2);
  assert(allZero(offsets(native, PAGE_SIZE)), `native: ${offsets(native, PAGE_SIZE)}`);

  const written: Uint8Array[] = [];
  Deno.env.set(NO_NATIVE_ENV, "1");
  try {
    await patched(
      Deno.FsFile.prototype,
      "writeSync",
      (orig) =>
        function (this: Deno.FsFile, p: Uint8Array) {
          written.push(p);
          return orig.call(this, p);
        },
      append,
    );
  } finally {
    Deno.env.delete(NO_NATIVE_ENV);
  }
  assert(written.length >= 2);
  // A short write continues past the start: only whole-buffer writes count here.
  const whole = written.filter((p) => p.byteLength >= 1 << 20);
  assert(allZero(offsets(whole, PAGE_SIZE)), `Deno: ${offsets(whole, PAGE_SIZE)}`);
});

Deno.test("scanImage() reads an image's blocks into page-aligned buffers", async () => {
  const lib = loadNative();
  if (lib === null) throw new Error("the native library is not built (deno task build-native)");
  const a = await tempFile(3 << 20);
  const b = await tempFile(3 << 20);
  let bufs: Uint8Array[] = [];
  try {
    bufs = (await nativeBuffers(async () => void await scanImage(b, 4096, a)))
      .get("zs_pread_blocks_async") ?? [];
  } finally {
    await Deno.remove(a);
    await Deno.remove(b);
  }
  assert(bufs.length >= 2);
  assert(allZero(offsets(bufs, PAGE_SIZE)), `${offsets(bufs, PAGE_SIZE)}`);
});

Deno.test("ChunkOutput, SyncChunkOutput, TextOutput and pipeChunks() write from aligned buffers", async () => {
  const got: Uint8Array[] = [];
  const writer = {
    write: (p: Uint8Array) => (got.push(p), Promise.resolve(p.length)),
    writeSync: (p: Uint8Array) => (got.push(p), p.length),
  };
  const small = new Uint8Array(1000).subarray(8);
  const out = new ChunkOutput(writer);
  for (let i = 0; i < 3000; i++) await out.write(small);
  await out.flush();
  const sync = new SyncChunkOutput(writer);
  for (let i = 0; i < 3000; i++) sync.write(small);
  sync.flush();
  const text = new TextOutput(writer);
  for (let i = 0; i < 20_000; i++) await text.print(`record ${i}: étendue\n`);
  await text.flush();
  await pipeChunks(Array.from({ length: 3000 }, () => small), writer);
  assert(got.length >= 10);
  // Each buffer's first write starts at its start; a short write would continue past it.
  assert(allZero(offsets(got, CACHE_LINE)), `${offsets(got, CACHE_LINE)}`);
  const large = got.filter((p) => p.byteLength >= 256 << 10);
  assert(allZero(offsets(large, PAGE_SIZE)));
});

Deno.test("without --allow-ffi, large buffers are the bytes of a WebAssembly.Memory, and reads work", async () => {
  const path = await tempFile((5 << 20) + 7);
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  const source = new URL("../io/source.ts", import.meta.url).href;
  const aligned = new URL("../io/aligned_buffer.ts", import.meta.url).href;
  await Deno.writeTextFile(
    script,
    `import { openStreamInput } from "${source}";
import { alignMethod } from "${aligned}";
const sizes = [];
for await (const c of openStreamInput(Deno.args[0], { reuse: true })) {
  // A wasm memory's buffer is whole 64 KiB pages, the view at its start.
  if (c.byteOffset !== 0 || c.buffer.byteLength % 65536 !== 0) throw new Error("not wasm memory");
  sizes.push(c.length);
}
console.log(alignMethod(), sizes.join());`,
  );
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", `--allow-read=${path},${script}`, "--no-config", script, path],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    assert(out.success, new TextDecoder().decode(out.stderr));
    assertEquals(text, `wasm-memory ${4 << 20},${(1 << 20) + 7}`);
  } finally {
    await Deno.remove(path);
    await Deno.remove(script);
  }
});
