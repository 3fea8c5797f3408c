/**
 * Stream bytes from files and standard input, in large chunks at page-aligned addresses (see
 * `aligned_buffer.ts`: the kernel's copy into a misaligned buffer is much slower on some CPUs).
 *
 * @module
 */

import { alignedBytes } from "./aligned_buffer.ts";
import type { BufferLeases } from "./buffer_leases.ts";
import { cString, loadNative, type NativeLib } from "./native/ffi.ts";
import { mappedChunks, mappingDisabled } from "./mapped_source.ts";

/** Default chunk size: large enough that most payloads lie within one chunk. */
export const CHUNK_SIZE = 4 << 20;

/** Where bytes can be read from (`Deno.stdin`, an open file, ...). */
export interface ByteReader {
  read(p: Uint8Array): Promise<number | null>;
}

/** Options of {@linkcode readerChunks}. */
export interface ChunkOptions {
  /** Bytes per chunk (4 MiB). */
  chunkSize?: number;
  /**
   * Refill one buffer instead of allocating one per chunk: much faster and smaller, but each
   * chunk (and any view into it) is valid only until the next is asked for. For consumers
   * that are done with a record before reading the next (verify, dump, recv).
   */
  reuse?: boolean;
  /**
   * With `reuse`: buffers a writer may hold after the chunk is done with (a receive writes
   * payloads straight from them); a buffer is filled again only once no write holds it.
   */
  leases?: BufferLeases;
}

/** Buffers in a ring with leases: enough that one lent to a write is rarely waited for. */
const LENT_RING = 4;

/**
 * The buffers a reader takes turns with: two (one read into while the consumer works on the
 * other), or {@linkcode LENT_RING} registered with leases, each handed out again only once it
 * is free.
 */
class BufferRing {
  #bufs: Uint8Array[];
  #next = 0;
  #leases: BufferLeases | undefined;

  constructor(chunkSize: number, leases: BufferLeases | undefined) {
    this.#leases = leases;
    this.#bufs = Array.from({ length: leases ? LENT_RING : 2 }, () => alignedBytes(chunkSize));
    for (const b of this.#bufs) leases?.register(b.buffer);
  }

  async next(): Promise<Uint8Array> {
    const buf = this.#bufs[this.#next]!;
    this.#next = (this.#next + 1) % this.#bufs.length;
    await this.#leases?.free(buf.buffer);
    return buf;
  }
}

const EMPTY = new Uint8Array(0);

/**
 * Reads a file (or any reader) to its end, in chunks of `chunkSize` bytes (the last may be
 * shorter). Each chunk is a new buffer unless `reuse` is set.
 *
 * @example
 * ```ts
 * import { readerChunks } from "./source.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeFile(path, new Uint8Array(10).fill(7));
 * using file = await Deno.open(path);
 * const chunks = await Array.fromAsync(readerChunks(file, 4));
 * await Deno.remove(path);
 * if (chunks.map((c) => c.length).join() !== "4,4,2") throw new Error();
 * ```
 */
export async function* readerChunks(
  reader: ByteReader,
  options: ChunkOptions | number = {},
): AsyncGenerator<Uint8Array> {
  const opts = typeof options === "number" ? { chunkSize: options } : options;
  const chunkSize = opts.chunkSize ?? CHUNK_SIZE;
  if (!opts.reuse) {
    for (;;) {
      const buf = alignedBytes(chunkSize);
      const n = await fill(reader, buf);
      if (n > 0) yield buf.subarray(0, n);
      if (n < chunkSize) return;
    }
  }
  // While the consumer works on one buffer, the next chunk is read into another, so the
  // kernel's copy overlaps the checksums.
  const ring = new BufferRing(chunkSize, opts.leases);
  const readNext = async () => {
    const buf = await ring.next();
    return buf.subarray(0, await fill(reader, buf));
  };
  let pending = readNext();
  for (;;) {
    const chunk = await pending;
    if (chunk.length === 0) return;
    pending = chunk.length < chunkSize ? Promise.resolve(EMPTY) : readNext();
    yield chunk;
  }
}

/** The native library, when it is loaded and Deno lets this process read `path`. */
function readAheadLibrary(path: string): NativeLib | null {
  try {
    if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") return null;
  } catch {
    return null;
  }
  return loadNative();
}

/**
 * A file read one chunk ahead of the consumer, on a native thread: a regular file as mapped
 * windows (`mapped_source.ts`), anything else with `pread`, the kernel's copy of chunk N+1
 * running while JavaScript checks chunk N. Two buffers take turns; a chunk is valid until the
 * next is asked for.
 */
async function* readAhead(
  lib: NativeLib,
  path: string,
  chunkSize: number,
  leases: BufferLeases | undefined,
): AsyncGenerator<Uint8Array> {
  const fd = lib.symbols.zs_open(cString(path), 0, 0);
  if (fd < 0) {
    // Let Deno say what is wrong, with its own error class.
    using file = await Deno.open(path);
    yield* readerChunks(file, { chunkSize, reuse: true, ...(leases ? { leases } : {}) });
    return;
  }
  let pending: Promise<Uint8Array> | null = null;
  try {
    // A regular file is mapped rather than copied.
    if (!mappingDisabled()) {
      const options = { chunkSize, ...(leases ? { leases, slots: LENT_RING } : {}) };
      if (yield* mappedChunks(lib, fd, path, options)) return;
    }
    const ring = new BufferRing(chunkSize, leases);
    let offset = 0;
    const readNext = async (): Promise<Uint8Array> => {
      const buf = await ring.next();
      const at = offset;
      const n = Number(await lib.symbols.zs_pread_async(fd, buf, BigInt(buf.length), BigInt(at)));
      if (n < 0) throw new Deno.errors.BadResource(`reading ${path}: errno ${-n}`);
      offset = at + n;
      return buf.subarray(0, n);
    };
    pending = readNext();
    for (;;) {
      const chunk = await pending;
      pending = null;
      if (chunk.length === 0) return;
      pending = readNext();
      yield chunk;
    }
  } finally {
    // A read still running must not land in a closed descriptor's buffer after we go.
    await pending?.catch(() => {});
    lib.symbols.zs_close(fd);
  }
}

/** Reads until `buf` is full or the input ends; returns the bytes read. */
async function fill(reader: ByteReader, buf: Uint8Array): Promise<number> {
  let filled = 0;
  while (filled < buf.length) {
    const n = await reader.read(buf.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled;
}

/**
 * The bytes of a stream named on the command line: a path, or `-` (or nothing) for stdin.
 * Refuses a terminal as input, as `zstream` does.
 */
export async function* openStreamInput(
  path: string | undefined,
  options: ChunkOptions = {},
): AsyncGenerator<Uint8Array> {
  if (path === undefined || path === "-") {
    if (Deno.stdin.isTerminal()) {
      throw new TypeError(
        "the stream cannot be read from a terminal: name a file or take input from a pipe",
      );
    }
    yield* readerChunks(Deno.stdin, options);
    return;
  }
  if (options.reuse) {
    const lib = readAheadLibrary(path);
    if (lib !== null) {
      yield* readAhead(lib, path, options.chunkSize ?? CHUNK_SIZE, options.leases);
      return;
    }
  }
  using file = await Deno.open(path);
  yield* readerChunks(file, options);
}
