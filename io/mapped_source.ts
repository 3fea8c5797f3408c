/**
 * A regular file's bytes as windows mapped into memory by the native library (`zs_map_window`):
 * the reader checks the page cache's own pages instead of a copy of them. The kernel's copy
 * into a buffer costs about as much CPU as all the rest of `verify`; mapping costs a fraction.
 *
 * Slots of address space take turns, as the buffers of a read-ahead do. Without leases, a
 * thread of the native library's maps each window ahead of the consumer (`zs_map_async`), into
 * the slot the consumer was last done with, reads its pages in, and takes the fletcher-4 of
 * each page from the window's end. The consumer's own native fletcher-4 of a payload in that
 * window folds those page sums in instead of reading the pages, and reads only the pages not
 * summed yet (see "Page sums" in zsend_native.c). So the page-table work (mapping and
 * unmapping) and most of the checksum run beside the consumer's work, on the second core, and
 * the consumer's thread never waits for the process's mmap lock.
 *
 * A chunk is valid until the next is asked for, as with refilled buffers. A receive, whose pack
 * writes hold payloads in the windows, has a ring of slots with leases (and lets go of a window
 * only by mapping the next over it). A slot is always mapped (the file's pages, or zeros once
 * let go of), so a view kept too long reads other bytes, never faults. A window's pages count
 * in the resident set only while it is mapped.
 *
 * @module
 */

import type { BufferLeases } from "./buffer_leases.ts";
import { envVar, type NativeLib } from "./native/ffi.ts";

/** Windows start at multiples of this: a multiple of every page size (4 KiB to 64 KiB). */
const WINDOW_ALIGN = 1 << 16;

/**
 * The largest window without leases: two are resident at once (the one checked and the one
 * mapped ahead), which keeps `verify` under its 64 MiB goal (60.5 MiB; two of 4 MiB measured 64.3
 * MiB, and smaller windows took longer).
 */
const AHEAD_WINDOW = 2 << 20;

/**
 * Slots of the ring without leases: the window checked and one mapped ahead. A third measured
 * the same time and 3 MiB more peak memory.
 */
const AHEAD_SLOTS = 2;

/**
 * The environment variable that, set to `1`, makes files be read instead of mapped (to compare
 * the two; the results are the same).
 *
 * @example
 * ```ts
 * import { NO_MMAP_ENV } from "./mapped_source.ts";
 * if (NO_MMAP_ENV !== "ZSEND_NO_MMAP") throw new Error();
 * ```
 */
export const NO_MMAP_ENV = "ZSEND_NO_MMAP";

/** Whether `ZSEND_NO_MMAP=1` asks for reads instead of mapped windows. */
export function mappingDisabled(): boolean {
  return envVar(NO_MMAP_ENV) === "1";
}

/** Reserved address space of finished readers, by library and length, for the next reader. */
const spares = new WeakMap<NativeLib, Map<number, Deno.PointerObject[]>>();

function spare(lib: NativeLib, length: number): Deno.PointerObject[] {
  let byLength = spares.get(lib);
  if (byLength === undefined) spares.set(lib, byLength = new Map());
  let list = byLength.get(length);
  if (list === undefined) byLength.set(length, list = []);
  return list;
}

/** The files mapped by this process, each with the library's fault count when it began. */
const watched: { lib: NativeLib; path: string; faults: bigint }[] = [];

/**
 * The path of a file mapped by this process that shrank while it was read, or null. Bytes read
 * after that were zeros: a stream error found in them is really this.
 *
 * @example
 * ```ts
 * import { shrunkWhileMapped } from "./mapped_source.ts";
 * if (shrunkWhileMapped() !== null) throw new Error("nothing was mapped yet");
 * ```
 */
export function shrunkWhileMapped(): string | null {
  const hit = watched.find((w) => w.lib.symbols.zs_map_faults() !== w.faults);
  return hit?.path ?? null;
}

/** Options of {@linkcode mappedChunks}. */
export interface MappedOptions {
  /** Bytes per window (rounded up to {@linkcode WINDOW_ALIGN}). */
  chunkSize: number;
  /**
   * Windows a writer may hold after the chunk is done with (a receive writes payloads straight
   * from them): `slots` windows then take turns, each mapped again only once no write holds
   * it, and one still held at the end is left mapped (its write reads the file's own pages).
   */
  leases?: BufferLeases;
  /** Windows that take turns with leases (2 at least, and without leases). */
  slots?: number;
}

/**
 * Yields the bytes of the open file `fd` from its start, in windows of `chunkSize` bytes; the
 * last may be shorter. Returns `false` without yielding anything when the file cannot be
 * mapped (not a regular file, no address space, the first window refused): the caller then
 * reads it. The size is taken again at each window, so a file that grows while it is read is
 * followed to its end, as reads would.
 *
 * @param lib the native library
 * @param fd a file open for reading, positioned anywhere (windows map by offset)
 * @param path for error messages
 * @param options window size, leases
 * @returns whether the file was read to its end this way
 */
export async function* mappedChunks(
  lib: NativeLib,
  fd: number,
  path: string,
  options: MappedOptions,
): AsyncGenerator<Uint8Array, boolean> {
  const { leases } = options;
  const size = leases ? options.chunkSize : Math.min(options.chunkSize, AHEAD_WINDOW);
  const slotLen = Math.ceil(size / WINDOW_ALIGN) * WINDOW_ALIGN;
  const count = leases ? Math.max(2, options.slots ?? 2) : AHEAD_SLOTS;
  const reserved = count * slotLen;
  const base = spare(lib, reserved).pop() ?? lib.symbols.zs_map_reserve(BigInt(reserved));
  if (base === null) return false;
  const slots = Array.from({ length: count }, (_, i) => {
    const ptr = Deno.UnsafePointer.offset(base, i * slotLen)!;
    const bytes = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(ptr, slotLen));
    leases?.register(bytes.buffer);
    return { ptr, bytes };
  });
  let turn = 0;
  let offset = 0;
  const watch = { lib, path, faults: lib.symbols.zs_map_faults() };
  watched.push(watch);
  /** A file that shrank under a window read zeros there (not a crash): not to be trusted. */
  const checkFaults = () => {
    if (lib.symbols.zs_map_faults() !== watch.faults) {
      throw new Deno.errors.BadResource(
        `reading ${path}: the file shrank while it was read (near byte ${offset})`,
      );
    }
  };
  /** Maps the window from `offset` into the next slot: the chunk, or -errno. */
  const mapNext = async (populate: boolean): Promise<Uint8Array | number> => {
    const slot = slots[turn]!;
    turn = (turn + 1) % count;
    await leases?.free(slot.bytes.buffer);
    const at = offset - (offset % WINDOW_ALIGN);
    const n = Number(
      lib.symbols.zs_map_window(slot.ptr, BigInt(slotLen), fd, BigInt(at), populate ? 1 : 0),
    );
    if (n < 0) return n;
    // Read in on the library's thread while the window before is checked.
    if (!populate && n > 0) lib.symbols.zs_prefetch(slot.ptr, BigInt(n));
    const chunk = slot.bytes.subarray(Math.min(offset - at, n), n);
    offset += chunk.length;
    return chunk;
  };
  try {
    // A window already mapped, that the loop below starts from (else it maps one itself).
    let mapped: Uint8Array | null = null;
    if (!leases) {
      // Whole windows mapped ahead on the library's thread: window i (at i * slotLen) goes into
      // slot i % count as soon as the reader is done with the window before it there. At the
      // first window that is not whole (the end, or a file that grew or shrank meanwhile) the
      // loop below takes over, from that window as it was mapped when it holds bytes (the
      // windows after it take the size again), else from its start.
      const first = Number(lib.symbols.zs_map_window(slots[0]!.ptr, BigInt(slotLen), fd, 0n, 1));
      if (first < 0) return false;
      let i = 0, n = first;
      if (first === slotLen) {
        const tickets: number[] = [];
        const ask = (i: number) => {
          const slot = slots[i % count]!;
          tickets[i % count] = Number(
            lib.symbols.zs_map_async(slot.ptr, BigInt(slotLen), fd, BigInt(i * slotLen)),
          );
        };
        for (let i = 1; i < count; i++) ask(i);
        while (n === slotLen) {
          offset = i * slotLen;
          checkFaults();
          yield slots[i % count]!.bytes;
          checkFaults();
          ask(i + count);
          i++;
          const t = tickets[i % count]!;
          // A ticket that could not be had (t < 0) hands over to the loop below.
          n = t > 0 ? Number(lib.symbols.zs_map_wait(t)) : t;
        }
        for (const t of tickets) if (t > 0) lib.symbols.zs_map_wait(t);
      }
      offset = i * slotLen;
      if (n > 0) {
        mapped = slots[i % count]!.bytes.subarray(0, n);
        offset += n;
        turn = (i + 1) % count;
      }
    }
    let chunk = mapped ?? await mapNext(true);
    if (typeof chunk === "number") {
      // Bytes handed out already cannot be read again from the start.
      if (offset === 0) return false;
      throw new Deno.errors.BadResource(`reading ${path}: mapping it failed (errno ${-chunk})`);
    }
    for (;;) {
      if (chunk.length === 0) return true;
      // The next window is mapped before this one is handed out, as a read-ahead reads.
      const next = await mapNext(false);
      checkFaults();
      yield chunk;
      checkFaults();
      if (typeof next === "number") {
        throw new Deno.errors.BadResource(`reading ${path}: mapping it failed (errno ${-next})`);
      }
      chunk = next;
    }
  } finally {
    // Only a file that did shrink stays watched (for shrunkWhileMapped): the list stays short
    // however many files a process reads.
    if (lib.symbols.zs_map_faults() === watch.faults) watched.splice(watched.indexOf(watch), 1);
    let held = false;
    for (const s of slots) {
      // A write still holding a window reads from it: that one stays mapped.
      if (leases?.held(s.bytes.buffer)) held = true;
      else lib.symbols.zs_map_window(s.ptr, BigInt(slotLen), -1, 0n, 0);
    }
    // The next reader of this size takes the slots again (they stay mapped: a view kept too
    // long reads zeros), unless a write still holds one.
    if (!held) spare(lib, reserved).push(base);
  }
}
