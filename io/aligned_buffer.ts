/**
 * Buffers at aligned addresses, for every buffer the kernel copies into or out of (stream
 * reads, pack writes, image reads, output to pipes and files).
 *
 * Some CPUs copy much slower into a user buffer whose address is not 64-byte aligned: on an
 * AMD EPYC (AVX2), `read()` of a file from the page cache into a buffer 16 bytes past a page
 * boundary took about 6 times as long as into the page boundary itself. glibc hands out large
 * blocks 16 bytes past a page boundary, and V8's large `ArrayBuffer`s come from there, so a
 * plain `new Uint8Array(4 << 20)` is the slow case.
 *
 * {@linkcode alignedBytes} allocates a little more and returns a view at an aligned address:
 *
 * - `address` (when Deno lets this process use `Deno.UnsafePointer.of`, i.e. with
 *   `--allow-ffi`): the view starts where the address is a multiple of the alignment;
 * - `wasm-memory` (without `--allow-ffi`): the bytes of a `WebAssembly.Memory`, whose base V8
 *   maps page-aligned, for buffers of at least one wasm page (64 KiB); its buffer cannot be
 *   transferred or detached, which none of the I/O paths do;
 * - `none`: a plain `Uint8Array`, where neither is possible (small buffers without
 *   `--allow-ffi`, WebAssembly disabled).
 *
 * @module
 */

/** A page: the alignment of buffers of {@linkcode PAGE_ALIGN_FROM} bytes or more. */
export const PAGE_SIZE = 4096;

/** A cache line: the alignment every buffer gets at least (where it can be told). */
export const CACHE_LINE = 64;

/** Buffers of at least this many bytes are page-aligned (costing at most 1.6 % more). */
export const PAGE_ALIGN_FROM = 256 << 10;

/** The size of a WebAssembly page. */
const WASM_PAGE = 64 << 10;

/** How {@linkcode alignedBytes} aligns a buffer. */
export type AlignMethod = "address" | "wasm-memory" | "none";

/** Options of {@linkcode alignedBytes}. */
export interface AlignedOptions {
  /**
   * The alignment, a power of two up to {@linkcode PAGE_SIZE}: {@linkcode PAGE_SIZE} for
   * buffers of {@linkcode PAGE_ALIGN_FROM} bytes or more, else {@linkcode CACHE_LINE}.
   */
  align?: number;
  /** How to align (default: {@linkcode alignMethod}); for tests and the bench's probe. */
  method?: AlignMethod;
}

let pointers: boolean | undefined;

/**
 * The address of a view's first byte, or `null` when this process may not know it (no
 * `--allow-ffi`), or the view is empty.
 *
 * @example
 * ```ts
 * import { addressOf } from "./aligned_buffer.ts";
 * const a = addressOf(new Uint8Array(16));
 * if (a !== null && typeof a !== "bigint") throw new Error();
 * ```
 */
export function addressOf(view: ArrayBufferView): bigint | null {
  if (pointers === false || view.byteLength === 0) return null;
  try {
    const p = Deno.UnsafePointer.of(view as Uint8Array<ArrayBuffer>);
    pointers = true;
    return p === null ? null : BigInt(Deno.UnsafePointer.value(p));
  } catch {
    // No --allow-ffi (NotCapable), or a runtime without FFI: ask once only.
    pointers = false;
    return null;
  }
}

/**
 * How far a view's first byte lies past a multiple of `align` (0 when aligned), or `null`
 * when its address cannot be told (see {@linkcode addressOf}).
 *
 * @param view the bytes
 * @param align a power of two
 * @example
 * ```ts
 * import { alignedBytes, misalignment } from "./aligned_buffer.ts";
 * const b = alignedBytes(1 << 20);
 * const m = misalignment(b, 4096);
 * if (m !== null && m !== 0) throw new Error(`${m}`);
 * ```
 */
export function misalignment(view: ArrayBufferView, align: number): number | null {
  const a = addressOf(view);
  return a === null ? null : Number(a % BigInt(align));
}

/**
 * How {@linkcode alignedBytes} aligns buffers in this process: `address` with `--allow-ffi`,
 * else `wasm-memory` where WebAssembly runs, else `none`.
 *
 * @example
 * ```ts
 * import { alignMethod } from "./aligned_buffer.ts";
 * if (!["address", "wasm-memory", "none"].includes(alignMethod())) throw new Error();
 * ```
 */
export function alignMethod(): AlignMethod {
  if (addressOf(PROBE) !== null) return "address";
  return typeof WebAssembly === "object" && typeof WebAssembly.Memory === "function"
    ? "wasm-memory"
    : "none";
}

const PROBE = new Uint8Array(1);

/**
 * A zeroed buffer of `size` bytes whose first byte is at an aligned address (see the module's
 * documentation for how, and when it cannot be). Its `buffer` may be larger than `size` and
 * the view may start past its beginning: take further views of the view, never of its
 * `buffer` from 0.
 *
 * @param size bytes
 * @param options the alignment, and how to get it
 * @returns a view of exactly `size` bytes
 * @example
 * ```ts
 * import { alignedBytes, misalignment } from "./aligned_buffer.ts";
 * const b = alignedBytes(4 << 20);
 * if (b.length !== 4 << 20 || b.some((x) => x !== 0)) throw new Error();
 * const small = alignedBytes(312);
 * const m = misalignment(small, 64);
 * if (m !== null && m !== 0) throw new Error();
 * ```
 */
export function alignedBytes(size: number, options: AlignedOptions = {}): Uint8Array<ArrayBuffer> {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new RangeError(`a buffer of ${size} bytes cannot be allocated`);
  }
  const align = options.align ?? (size >= PAGE_ALIGN_FROM ? PAGE_SIZE : CACHE_LINE);
  if (align < 1 || align > PAGE_SIZE || (align & (align - 1)) !== 0) {
    throw new RangeError(`alignment ${align}: a power of two up to ${PAGE_SIZE}`);
  }
  if (size === 0) return new Uint8Array(0);
  const method = options.method ?? alignMethod();
  if (method === "address") {
    const raw = new Uint8Array(size + align - 1);
    const off = misalignment(raw, align);
    if (off !== null) {
      const skip = off === 0 ? 0 : align - off;
      return raw.subarray(skip, skip + size);
    }
  } else if (method === "wasm-memory" && size >= WASM_PAGE) {
    try {
      const memory = new WebAssembly.Memory({ initial: Math.ceil(size / WASM_PAGE) });
      return new Uint8Array(memory.buffer as ArrayBuffer, 0, size);
    } catch {
      // WebAssembly disabled, or the address space reserved for it used up: plain memory.
    }
  }
  return new Uint8Array(size);
}
