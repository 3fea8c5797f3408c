/**
 * BLAKE3 through the native library, and the choice between it and TypeScript.
 *
 * @module
 */

import { blake3 } from "../../core/checksum/blake3.ts";
import { loadNative, nativeDisabled, type NativeLib } from "./ffi.ts";
import { implementationSwitch } from "./implementations.ts";

/** The most bytes per native call (the length is a u32; BLAKE3 cannot be split naively). */
const MAX_CALL = 0xffffffff;

const implementations = implementationSwitch({
  names: ["avx512", "avx2", "sse41", "scalar"],
  current: (lib) => lib.symbols.zs_blake3_impl(),
  select: (lib, name) => lib.symbols.zs_blake3_select(name),
});

function makeHash(lib: NativeLib): (data: Uint8Array) => Uint8Array {
  const fn = lib.symbols.zs_blake3;
  return (data: Uint8Array): Uint8Array => {
    if (data.byteLength > MAX_CALL) return blake3(data);
    const out = new Uint8Array(32);
    fn(data, data.byteLength, out);
    return out;
  };
}

let hash: ((data: Uint8Array) => Uint8Array) | null | undefined;

/**
 * The native BLAKE3 (32-byte hash; the implementation in use follows
 * {@linkcode withBlake3Implementation}), or `null` when the library is not loaded. Ignores
 * `ZSEND_NO_NATIVE`; see {@linkcode bestBlake3}. Inputs over 2^32 - 1 bytes are hashed in
 * TypeScript.
 *
 * @example
 * ```ts
 * import { nativeBlake3 } from "./blake3_native.ts";
 * import { blake3 } from "../../core/checksum/blake3.ts";
 * const data = new Uint8Array(5000).map((_, i) => i * 7);
 * const native = nativeBlake3(); // null without --allow-ffi or a built library
 * if (native !== null && String(native(data)) !== String(blake3(data))) {
 *   throw new Error("native and TypeScript disagree");
 * }
 * ```
 */
export function nativeBlake3(): ((data: Uint8Array) => Uint8Array) | null {
  if (hash === undefined) {
    const lib = loadNative();
    hash = lib === null ? null : makeHash(lib);
  }
  return hash;
}

/**
 * The fastest BLAKE3 available: native when loaded and `ZSEND_NO_NATIVE` is not `1`, else
 * the TypeScript {@linkcode blake3}.
 *
 * @example
 * ```ts
 * import { bestBlake3 } from "./blake3_native.ts";
 * const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
 * const digest = hex(bestBlake3()(new Uint8Array(0)));
 * if (digest !== "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262") {
 *   throw new Error(digest);
 * }
 * ```
 */
export function bestBlake3(): (data: Uint8Array) => Uint8Array {
  if (nativeDisabled()) return blake3;
  return nativeBlake3() ?? blake3;
}

/**
 * The native BLAKE3 implementations this CPU can run, best first (empty without the library).
 *
 * @example
 * ```ts
 * import { blake3Implementations } from "./blake3_native.ts";
 * const impls = blake3Implementations();
 * if (impls.length > 0 && impls.at(-1) !== "scalar") throw new Error();
 * ```
 */
export function blake3Implementations(): string[] {
  return implementations.list();
}

/**
 * Runs `fn` with the native BLAKE3 switched to implementation `name` (for tests and
 * benchmarks; the switch is process-wide), then switches back. Returns `false` without calling
 * `fn` when the library is not loaded or the CPU cannot run `name`.
 *
 * @example
 * ```ts
 * import { nativeBlake3, withBlake3Implementation } from "./blake3_native.ts";
 * let ran = false;
 * const ok = withBlake3Implementation("scalar", () => {
 *   ran = nativeBlake3() !== null;
 * });
 * if (ok !== ran) throw new Error();
 * ```
 */
export function withBlake3Implementation(name: string, fn: () => void): boolean {
  return implementations.with(name, fn);
}
