/**
 * A regular file's bytes as windows mapped into memory by the native library (`zs_map_window`):
 * the reader checks the page cache's own pages instead of a copy of them. The kernel's copy
 * into a buffer costs about as much CPU as all the rest of `verify`; mapping costs a fraction.
 *
 * One slot of address space holds one window at a time, mapped again for the next chunk when
 * it is asked for (a chunk is valid until then, as with a refilled buffer). Mapping on the
 * calling thread measured less CPU and no more wall time than mapping one window ahead on a
 * native thread (each such call costs a hand-off), and one slot keeps half the pages resident.
 * A receive, whose pack writes hold payloads in the windows, has a ring of slots with leases.
 * The slot is always mapped (the file's pages, or zeros once let go of), so a view kept too
 * long reads other bytes, never faults. A window's pages count in the resident set only while
 * it is mapped.
 *
 * @module
 */

import type { BufferLeases } from "./buffer_leases.ts";
import { envVar, type NativeLib } from "./native/ffi.ts";

/** Windows start at multiples of this: a multiple of every page size (4 KiB to 64 KiB). */
const WINDOW_ALIGN = 1 << 16;

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
  /** Windows that take turns (1 without leases). */
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
  const slotLen = Math.ceil(options.chunkSize / WINDOW_ALIGN) * WINDOW_ALIGN;
  const count = leases ? Math.max(1, options.slots ?? 1) : 1;
  const base = lib.symbols.zs_map_reserve(BigInt(count * slotLen));
  if (base === null) return false;
  const slots = Array.from({ length: count }, (_, i) => {
    const ptr = Deno.UnsafePointer.offset(base, i * slotLen)!;
    const bytes = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(ptr, slotLen));
    leases?.register(bytes.buffer);
    return { ptr, bytes };
  });
  let turn = 0;
  try {
    for (let offset = 0;;) {
      const slot = slots[turn]!;
      turn = (turn + 1) % count;
      await leases?.free(slot.bytes.buffer);
      const at = offset - (offset % WINDOW_ALIGN);
      const n = Number(lib.symbols.zs_map_window(slot.ptr, BigInt(slotLen), fd, BigInt(at)));
      if (n < 0) {
        if (offset === 0) return false;
        throw new Deno.errors.BadResource(`reading ${path}: mapping it failed (errno ${-n})`);
      }
      const chunk = slot.bytes.subarray(Math.min(offset - at, n), n);
      if (chunk.length === 0) return true;
      offset += chunk.length;
      yield chunk;
    }
  } finally {
    for (const s of slots) {
      // A write still holding a window reads from it: that one stays mapped.
      if (!leases?.held(s.bytes.buffer)) {
        lib.symbols.zs_map_window(s.ptr, BigInt(slotLen), -1, 0n);
      }
    }
  }
}
