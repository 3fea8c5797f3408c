/**
 * The native helper library (`build/libzsend_native.so`, built from `io/native/zsend_native.c`
 * by `deno task build-native`), loaded lazily through Deno FFI.
 *
 * Nothing happens at import. The first call to {@linkcode loadNative} tries, in order, the path
 * in the environment variable `ZSEND_NATIVE_LIB` (when `--allow-env` covers it) and
 * `build/libzsend_native.so` next to this source tree; when `--allow-ffi` is not granted or
 * nothing loads, it returns `null` (and {@linkcode nativeLoadError} says why) so that callers
 * fall back to TypeScript quietly. Permissions are queried, never requested, so there is no
 * prompt.
 *
 * @module
 */

/**
 * The symbols of `libzsend_native.so`, with their C prototypes.
 *
 * @example
 * ```ts
 * import { NATIVE_SYMBOLS } from "./ffi.ts";
 * if (NATIVE_SYMBOLS.zs_pread.result !== "i64") throw new Error();
 * ```
 */
export const NATIVE_SYMBOLS = {
  /**
   * `void zs_fletcher4_native(uint64_t *state, const uint8_t *buf, uint32_t len)`: words in
   * host order. `len` is 32-bit because a u64 argument would be a BigInt (an allocation and a
   * slower call) on every call; split larger buffers at a multiple of 4.
   */
  zs_fletcher4_native: { parameters: ["buffer", "buffer", "u32"], result: "void" },
  /** `void zs_fletcher4_byteswap(uint64_t *state, const uint8_t *buf, uint32_t len)` */
  zs_fletcher4_byteswap: { parameters: ["buffer", "buffer", "u32"], result: "void" },
  /**
   * `void zs_fletcher4_blocks(uint64_t *out, const uint8_t *buf, uint32_t len, uint32_t bs)`:
   * the fletcher-4 (from zero, little-endian words) of each whole `bs`-byte block of `buf`,
   * four u64 each
   */
  zs_fletcher4_blocks: { parameters: ["buffer", "buffer", "u32", "u32"], result: "void" },
  /**
   * `void zs_fletcher4_records(uint64_t *state, uint8_t *headers, uint32_t count,
   * const uint64_t *sums, uint32_t payload_len, uint32_t flags)`: `count` 312-byte records
   * into a running checksum, each header's trailing checksum written, each payload folded in
   * from its own fletcher-4 (`sums`, four u64 a record); flags: 1 byteswapped words, 2 zeros
   * for the record checksums
   */
  /**
   * `void zs_fletcher4_append(uint64_t *state, const uint64_t *ck, uint32_t len)`: `len` bytes
   * folded in from their own fletcher-4 `ck` (as `Fletcher4.append`)
   */
  zs_fletcher4_append: { parameters: ["buffer", "buffer", "u32"], result: "void" },
  zs_fletcher4_records: {
    parameters: ["buffer", "buffer", "u32", "buffer", "u32", "u32"],
    result: "void",
  },
  /**
   * `int64_t zs_pread_blocks(int32_t fd, uint8_t *buf, uint32_t want, uint32_t len,
   * uint64_t off, uint64_t *out, uint32_t bs)`: `want` bytes read at `off`, zeros up to `len`,
   * then `zs_fletcher4_blocks` of the `len` bytes; bytes read or -errno. On a thread of its own
   * (a promise), so that two chunks are read and checksummed at once.
   */
  zs_pread_blocks_async: {
    name: "zs_pread_blocks",
    parameters: ["i32", "buffer", "u32", "u32", "u64", "buffer", "u32"],
    result: "i64",
    nonblocking: true,
  },
  /**
   * `int64_t zs_scan_blocks(int32_t fd, uint32_t want, uint32_t len, uint64_t off,
   * uint64_t *out, uint32_t bs)`: `zs_pread_blocks` without giving the bytes back (read
   * through a small buffer, each piece checksummed while in cache); on a thread of its own
   */
  zs_scan_blocks_async: {
    name: "zs_scan_blocks",
    parameters: ["i32", "u32", "u32", "u64", "buffer", "u32"],
    result: "i64",
    nonblocking: true,
  },
  /** `int32_t zs_memeq(const uint8_t *a, const uint8_t *b, uint32_t len)`: 1 when equal */
  zs_memeq: { parameters: ["buffer", "buffer", "u32"], result: "i32" },
  /** `const char *zs_fletcher4_impl(void)`: "avx512", "avx2", "sse2" or "scalar" */
  zs_fletcher4_impl: { parameters: [], result: "pointer" },
  /** `int zs_fletcher4_select(const char *name)`: 0, or -1 if unknown / unsupported */
  zs_fletcher4_select: { parameters: ["buffer"], result: "i32" },
  /**
   * `void zs_blake3(const uint8_t *buf, uint32_t len, uint8_t *out32)`: the BLAKE3 hash (32
   * bytes) of `buf`. BLAKE3 cannot be resumed from a split, so larger inputs go to TypeScript.
   */
  zs_blake3: { parameters: ["buffer", "u32", "buffer"], result: "void" },
  /** `const char *zs_blake3_impl(void)`: "avx512", "avx2", "sse41" or "scalar" */
  zs_blake3_impl: { parameters: [], result: "pointer" },
  /** `int zs_blake3_select(const char *name)`: 0, or -1 if unknown / unsupported */
  zs_blake3_select: { parameters: ["buffer"], result: "i32" },
  /** `int32_t zs_open(const char *path, uint32_t flags, uint32_t mode)`: fd or -errno */
  zs_open: { parameters: ["buffer", "u32", "u32"], result: "i32" },
  /** `const char *zs_strerror(int32_t err)`: strerror(err) */
  zs_strerror: { parameters: ["i32"], result: "pointer" },
  /** `int32_t zs_close(int32_t fd)`: 0 or -errno */
  zs_close: { parameters: ["i32"], result: "i32" },
  /** `int32_t zs_fsync(int32_t fd)`: 0 or -errno */
  zs_fsync: { parameters: ["i32"], result: "i32" },
  /** `int64_t zs_size(int32_t fd)`: bytes (BLKGETSIZE64 for block devices) or -errno */
  zs_size: { parameters: ["i32"], result: "i64" },
  /** `int64_t zs_pread(int32_t fd, uint8_t *buf, uint64_t len, uint64_t off)`: bytes or -errno */
  zs_pread: { parameters: ["i32", "buffer", "u64", "u64"], result: "i64" },
  /**
   * `zs_pread` on a thread of its own (a promise): reads the next chunk of a stream while the
   * JavaScript thread checks the one before.
   */
  zs_pread_async: {
    name: "zs_pread",
    parameters: ["i32", "buffer", "u64", "u64"],
    result: "i64",
    nonblocking: true,
  },
  /**
   * `uint8_t *zs_map_reserve(uint64_t len)`: `len` bytes of address space, mapped to zeros
   * (no memory until read); NULL on error
   */
  zs_map_reserve: { parameters: ["u64"], result: "pointer" },
  /**
   * `int64_t zs_map_window(uint8_t *slot, uint64_t slot_len, int32_t fd, uint64_t off,
   * uint32_t populate)`: the bytes of a regular file from `off` (page-aligned) mapped into the
   * slot, at most `slot_len`, their pages read in when `populate` is set, zeros over the rest;
   * the bytes mapped (0 at the end), -ENODEV for a file that is not regular, or -errno. fd -1
   * maps zeros over the slot.
   */
  zs_map_window: { parameters: ["pointer", "u64", "i32", "u64", "u32"], result: "i64" },
  /**
   * `int32_t zs_prefetch(uint8_t *addr, uint64_t len)`: the pages of the range read in on a
   * thread of the library's (a window mapped ahead of the reader); 0 or -errno
   */
  zs_prefetch: { parameters: ["pointer", "u64"], result: "i32" },
  /**
   * `int64_t zs_map_async(uint8_t *slot, uint64_t slot_len, int32_t fd, uint64_t off)`: what
   * `zs_map_window` does, on the library's thread, over a slot the reader is done with, then
   * its pages read in and summed there; a ticket for `zs_map_wait` (> 0), or -errno when it
   * cannot be asked (map it with `zs_map_window` then)
   */
  zs_map_async: { parameters: ["pointer", "u64", "i32", "u64"], result: "i64" },
  /**
   * `int64_t zs_map_wait(uint32_t ticket)`: waits until that window is mapped; the bytes
   * mapped (as `zs_map_window` returns them), or -errno
   */
  zs_map_wait: { parameters: ["u32"], result: "i64" },
  /**
   * `uint64_t zs_page_sums_used(void)`: pages that `zs_fletcher4_native` folded in from the
   * sums the prefetch thread took, instead of reading them (for tests)
   */
  zs_page_sums_used: { parameters: [], result: "u64" },
  /**
   * `uint64_t zs_map_faults(void)`: the SIGBUS faults taken in the library's mappings since
   * the process began (a mapped file shrank: the pages read as zeros instead of killing it)
   */
  zs_map_faults: { parameters: [], result: "u64" },
  /**
   * `int32_t zs_lsetxattr(const char *path, const char *name, const uint8_t *value,
   * uint32_t len)`: 0 or -errno; never follows a symlink at the end of the path
   */
  zs_lsetxattr: { parameters: ["buffer", "buffer", "buffer", "u32"], result: "i32" },
  /** `int64_t zs_pwrite(int32_t fd, const uint8_t *buf, uint64_t len, uint64_t off)` */
  zs_pwrite: { parameters: ["i32", "buffer", "u64", "u64"], result: "i64" },
  /**
   * `zs_pwrite` on a thread of its own (a promise): a store's pack bytes written while the
   * receive goes on (the buffer is the caller's until it settles)
   */
  zs_pwrite_async: {
    name: "zs_pwrite",
    parameters: ["i32", "buffer", "u64", "u64"],
    result: "i64",
    nonblocking: true,
  },
  /**
   * `int64_t zs_copy_range(int32_t in_fd, uint64_t in_off, int32_t out_fd, uint64_t out_off,
   * uint64_t len)`: `len` bytes copied between files in the kernel (copy_file_range), through a
   * buffer where it cannot; `len` or -errno
   */
  zs_copy_range: { parameters: ["i32", "u64", "i32", "u64", "u64"], result: "i64" },
  /** `zs_copy_range` on a thread of its own (a promise) */
  zs_copy_range_async: {
    name: "zs_copy_range",
    parameters: ["i32", "u64", "i32", "u64", "u64"],
    result: "i64",
    nonblocking: true,
  },
  /**
   * `int32_t zs_pbkdf2_sha1(const uint8_t *pass, uint32_t pass_len, const uint8_t *salt,
   * uint32_t salt_len, uint32_t iters, uint8_t *out, uint32_t out_len)`: PBKDF2-HMAC-SHA1 with
   * the CPU's SHA extensions; 0, -ENOSYS without them, -EINVAL
   */
  zs_pbkdf2_sha1: {
    parameters: ["buffer", "u32", "buffer", "u32", "u32", "buffer", "u32"],
    result: "i32",
  },
  /** `int32_t zs_open_blocks_available(void)`: 1 when libcrypto can be loaded for it */
  zs_open_blocks_available: { parameters: [], result: "i32" },
  /**
   * `int64_t zs_open_blocks(int32_t in_fd, int32_t out_fd, const uint8_t *desc, uint32_t n,
   * uint32_t mode, uint32_t key_len)`: `n` sealed blocks (96-byte descriptors) read, opened
   * with AES-GCM (mode 0) or AES-CCM (1) and written; 0, i + 1 when block i fails its tag, or
   * -errno
   */
  zs_open_blocks: {
    parameters: ["i32", "i32", "buffer", "u32", "u32", "u32"],
    result: "i64",
  },
  /** `zs_open_blocks` on a thread of its own (a promise) */
  zs_open_blocks_async: {
    name: "zs_open_blocks",
    parameters: ["i32", "i32", "buffer", "u32", "u32", "u32"],
    result: "i64",
    nonblocking: true,
  },
  /** `int32_t zs_ftruncate(int32_t fd, uint64_t len)`: 0 or -errno */
  zs_ftruncate: { parameters: ["i32", "u64"], result: "i32" },
  /**
   * `int64_t zs_pwritev(int32_t fd, const uint64_t *iov, uint32_t count, uint64_t off)`: the
   * `count` buffers of `iov` (address and length pairs) written one after another at `off`, on
   * a thread of its own (a promise); bytes written or -errno
   */
  zs_pwritev_async: {
    name: "zs_pwritev",
    parameters: ["i32", "buffer", "u32", "u64"],
    result: "i64",
    nonblocking: true,
  },
  /** `zs_fsync` on a thread of its own (a promise) */
  zs_fsync_async: { name: "zs_fsync", parameters: ["i32"], result: "i32", nonblocking: true },
  /**
   * `int64_t zs_sendfile(int32_t out_fd, int32_t in_fd, uint64_t off, uint64_t len)`: `len`
   * bytes of `in_fd` from `off` to `out_fd`, in the kernel; `len` or -errno (-EINVAL, -ENOSYS:
   * `out_fd` does not take it and nothing was written)
   */
  zs_sendfile: { parameters: ["i32", "i32", "u64", "u64"], result: "i64" },
  /**
   * `int32_t zs_send_records(int32_t out_fd, int32_t in_fd, const uint8_t *headers,
   * uint32_t header_len, uint32_t count, const double *offsets, uint32_t payload_len,
   * uint64_t *done)`: each header, then its payload from `in_fd` at `offsets[i]` by
   * `zs_sendfile`; 0 or -errno (-EINVAL, -ENOSYS: the output refused a payload's sendfile),
   * `*done` the bytes written
   */
  zs_send_records: {
    parameters: ["i32", "i32", "buffer", "u32", "u32", "buffer", "u32", "buffer"],
    result: "i32",
  },
  /**
   * `int32_t zs_utimens(const char *path, int64_t asec, uint32_t ansec, int64_t msec,
   * uint32_t mnsec, uint32_t nofollow)`: a path's times to the nanosecond (a symlink's own with
   * `nofollow`); 0 or -errno
   */
  zs_utimens: { parameters: ["buffer", "i64", "u32", "i64", "u32", "u32"], result: "i32" },
  /**
   * `int32_t zs_pipe_grow(int32_t fd, int32_t size)`: a pipe's buffer grown to at least
   * `size` bytes; its size or -errno (not a pipe, over the system's limit)
   */
  zs_pipe_grow: { parameters: ["i32", "i32"], result: "i32" },
  /**
   * `int32_t zs_write_pieces(int32_t out_fd, int32_t in_fd, const uint8_t *mem,
   * uint64_t mem_len, const double *pieces, uint32_t count, uint64_t *done)`: `count` pieces,
   * each (at, length): bytes of `in_fd` at `at` when it is 0 or more, else of `mem` at
   * `-(at + 1)`, written to `out_fd` in order (writev from `in_fd` mapped, or sendfile); 0 or
   * -errno (-EIO: `in_fd` ends before a piece does), `*done` the bytes written
   */
  zs_write_pieces: {
    parameters: ["i32", "i32", "buffer", "u64", "buffer", "u32", "buffer"],
    result: "i32",
  },
  /**
   * `int64_t zs_copy_data(int32_t in_fd, uint64_t in_off, int32_t out_fd, uint64_t out_off,
   * uint64_t len)`: `zs_copy_range`, but a range whose offsets lie differently within a page
   * goes by writes from the source mapped a window at a time (cheaper than copy_file_range's
   * pipe there); `len` or -errno (-EIO when `in_fd` ends first)
   */
  zs_copy_data: { parameters: ["i32", "u64", "i32", "u64", "u64"], result: "i64" },
  /** `zs_copy_data` on a thread of its own (a promise) */
  zs_copy_data_async: {
    name: "zs_copy_data",
    parameters: ["i32", "u64", "i32", "u64", "u64"],
    result: "i64",
    nonblocking: true,
  },
  /**
   * `int32_t zs_write_files(const double *desc, uint32_t count, const char *paths,
   * const uint8_t *data, int32_t *out)`: small files each made new and whole (created, runs
   * copied or written, length, owner, mode, times), three int32 a file into `out` (errno, the
   * step, errno of removing it); the count that failed. On a thread of its own (a promise).
   */
  zs_write_files_async: {
    name: "zs_write_files",
    parameters: ["buffer", "u32", "buffer", "buffer", "buffer"],
    result: "i32",
    nonblocking: true,
  },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * Flags for `zs_open` (the same on every OS, unlike `O_*`).
 *
 * @example
 * ```ts
 * import { ZS_O } from "./ffi.ts";
 * if ((ZS_O.WRITE | ZS_O.CREATE) !== 3) throw new Error();
 * ```
 */
export const ZS_O = { WRITE: 1, CREATE: 2, TRUNC: 4, EXCL: 8 } as const;

/**
 * The loaded library.
 *
 * @example
 * ```ts
 * import { loadNative, type NativeLib } from "./ffi.ts";
 * const lib: NativeLib | null = loadNative();
 * if (lib !== null && typeof lib.symbols.zs_fsync !== "function") throw new Error();
 * ```
 */
export type NativeLib = Deno.DynamicLibrary<typeof NATIVE_SYMBOLS>;

/**
 * The environment variable that names the library to load instead of the default.
 *
 * @example
 * ```ts
 * import { NATIVE_LIB_ENV } from "./ffi.ts";
 * if (NATIVE_LIB_ENV !== "ZSEND_NATIVE_LIB") throw new Error();
 * ```
 */
export const NATIVE_LIB_ENV = "ZSEND_NATIVE_LIB";

/**
 * Where the library is built, relative to this file.
 *
 * @example
 * ```ts
 * import { DEFAULT_NATIVE_LIB } from "./ffi.ts";
 * if (!DEFAULT_NATIVE_LIB.href.endsWith("/build/libzsend_native.so")) throw new Error();
 * ```
 */
export const DEFAULT_NATIVE_LIB: URL = new URL("../../build/libzsend_native.so", import.meta.url);

let tried = false;
let lib: NativeLib | null = null;
let loadError: string | null = null;

function granted(desc: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(desc).state === "granted";
  } catch {
    return false;
  }
}

/**
 * Reads an environment variable if `--allow-env` covers it; never prompts, never throws.
 *
 * @example
 * ```ts
 * import { envVar } from "./ffi.ts";
 * const v = envVar("ZSEND_SURELY_UNSET_VARIABLE");
 * if (v !== undefined) throw new Error();
 * ```
 */
export function envVar(name: string): string | undefined {
  if (!granted({ name: "env", variable: name })) return undefined;
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/**
 * Set to `1` to make `bestFletcher4()` and `Device.open()` use TypeScript only.
 *
 * @example
 * ```ts
 * import { NO_NATIVE_ENV } from "./ffi.ts";
 * if (NO_NATIVE_ENV !== "ZSEND_NO_NATIVE") throw new Error();
 * ```
 */
export const NO_NATIVE_ENV = "ZSEND_NO_NATIVE";

/**
 * Whether `ZSEND_NO_NATIVE=1` asks for the TypeScript paths (unreadable env counts as no).
 *
 * @example
 * ```ts
 * import { nativeDisabled } from "./ffi.ts";
 * if (typeof nativeDisabled() !== "boolean") throw new Error();
 * ```
 */
export function nativeDisabled(): boolean {
  return envVar(NO_NATIVE_ENV) === "1";
}

/**
 * What a stream reader calls (verify, dump): bound when the library is opened. Deno makes a
 * call stub for each bound symbol, which for all of them took 7 ms and 1.5 MiB at every start;
 * the others are bound together on first use.
 */
const FIRST_SYMBOLS = [
  "zs_fletcher4_native",
  "zs_fletcher4_byteswap",
  "zs_fletcher4_records",
  "zs_fletcher4_append",
  "zs_fletcher4_impl",
  "zs_fletcher4_select",
  "zs_open",
  "zs_close",
  "zs_map_reserve",
  "zs_map_window",
  "zs_prefetch",
  "zs_map_async",
  "zs_map_wait",
  "zs_map_faults",
] as const satisfies readonly (keyof typeof NATIVE_SYMBOLS)[];

/**
 * The library at `path`, its {@linkcode FIRST_SYMBOLS} bound now and each other symbol on its
 * first use (a verb pays for the few it calls: `redup` binds 4 more in well under 1 ms, where
 * binding all the others took 5 ms).
 */
function openLazily(path: string | URL): NativeLib {
  const first = Deno.dlopen(
    path,
    Object.fromEntries(FIRST_SYMBOLS.map((n) => [n, NATIVE_SYMBOLS[n]])) as Pick<
      typeof NATIVE_SYMBOLS,
      typeof FIRST_SYMBOLS[number]
    >,
  );
  const more: { close(): void }[] = [];
  const symbols: Record<string, unknown> = { ...first.symbols };
  for (const name of Object.keys(NATIVE_SYMBOLS) as (keyof typeof NATIVE_SYMBOLS)[]) {
    if (name in symbols) continue;
    Object.defineProperty(symbols, name, {
      configurable: true,
      enumerable: true,
      get() {
        const one = Deno.dlopen(path, { [name]: NATIVE_SYMBOLS[name] });
        more.push(one);
        const f = (one.symbols as Record<string, unknown>)[name];
        // From now on a plain property: no getter on the call path.
        Object.defineProperty(symbols, name, { value: f });
        return f;
      },
    });
  }
  return {
    symbols,
    close() {
      first.close();
      for (const one of more) one.close();
    },
  } as unknown as NativeLib;
}

function message(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0]!;
}

/**
 * Loads the native library once; `null` when it is not available (see
 * {@linkcode nativeLoadError}). Later calls return the same result.
 *
 * @example
 * ```ts
 * import { loadNative, nativeLoadError } from "./ffi.ts";
 * const lib = loadNative();
 * // Either it loaded, or there is a message saying what was tried.
 * if ((lib === null) !== (nativeLoadError() !== null)) throw new Error();
 * ```
 */
export function loadNative(): NativeLib | null {
  if (tried) return lib;
  tried = true;
  const attempts: string[] = [];
  const candidates: (string | URL)[] = [];
  const override = envVar(NATIVE_LIB_ENV);
  if (override) candidates.push(override);
  else attempts.push(`$${NATIVE_LIB_ENV} (not set or not readable)`);
  candidates.push(DEFAULT_NATIVE_LIB);
  for (const path of candidates) {
    const shown = path instanceof URL
      ? (path.protocol === "file:" ? decodeURIComponent(path.pathname) : path.href)
      : `${path} (from $${NATIVE_LIB_ENV})`;
    if (path instanceof URL && path.protocol !== "file:") {
      attempts.push(`${shown}: not a local file`);
      continue;
    }
    const ffiPath = path instanceof URL ? decodeURIComponent(path.pathname) : path;
    if (!granted({ name: "ffi", path: ffiPath })) {
      attempts.push(`${shown}: --allow-ffi not granted`);
      continue;
    }
    try {
      lib = openLazily(path);
      loadError = null;
      return lib;
    } catch (e) {
      attempts.push(`${shown}: ${message(e)}`);
    }
  }
  loadError = `zsend native library not loaded; tried ${attempts.join("; ")}. ` +
    `Build it with \`deno task build-native\`, or set ${NATIVE_LIB_ENV} to its path.`;
  return null;
}

/**
 * Why the native library did not load, or `null` if it did (or was not tried yet).
 *
 * @example
 * ```ts
 * import { loadNative, nativeLoadError } from "./ffi.ts";
 * const why = loadNative() === null ? nativeLoadError()! : "";
 * if (why !== "" && !why.includes("ZSEND_NATIVE_LIB")) throw new Error(why);
 * ```
 */
export function nativeLoadError(): string | null {
  return loadError;
}

/**
 * A NUL-terminated UTF-8 copy of `s`, for `const char *` parameters.
 *
 * @example
 * ```ts
 * import { cString } from "./ffi.ts";
 * const c = cString("é");
 * if (c.length !== 3 || c[2] !== 0) throw new Error();
 * ```
 */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  if (bytes.includes(0)) throw new TypeError("string contains a NUL byte");
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}
