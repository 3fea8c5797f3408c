/**
 * fletcher-4 through the native library, and the choice between it and TypeScript.
 *
 * @module
 */

import { type Fletcher4Engine, tsFletcher4 } from "../../core/checksum/fletcher4.ts";
import { checkRun } from "../../core/checksum/fletcher4_records.ts";
import { loadNative, nativeDisabled, type NativeLib } from "./ffi.ts";
import { implementationSwitch } from "./implementations.ts";

const implementations = implementationSwitch({
  names: ["avx512", "avx2", "sse2", "scalar"],
  current: (lib) => lib.symbols.zs_fletcher4_impl(),
  select: (lib, name) => lib.symbols.zs_fletcher4_select(name),
});

/** `zs_fletcher4_records` flags: byteswapped words; zeros for the record checksums. */
const RECORDS_SWAP = 1, RECORDS_NO_CHECKSUM = 2;

/** The most bytes per native call (a u32, and a multiple of 4 so the words stay aligned). */
const MAX_CALL = 0xfffffffc;

function makeEngine(lib: NativeLib): Fletcher4Engine {
  const {
    zs_fletcher4_native: le,
    zs_fletcher4_byteswap: be,
    zs_fletcher4_records,
    zs_fletcher4_append,
  } = lib.symbols;
  const hostLittle = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  const sameOrder = hostLittle ? le : be;
  const swapped = hostLittle ? be : le;
  return {
    name: `native-${implementations.current(lib)}`,
    update(state: Uint32Array, data: Uint8Array, littleEndian: boolean): void {
      if (state.length < 8) throw new RangeError("fletcher-4 state needs 8 u32 halves");
      const fn = littleEndian ? sameOrder : swapped;
      const len = data.byteLength;
      if (len <= MAX_CALL) {
        if (len >= 4) fn(state, data, len);
        return;
      }
      for (let off = 0; off < len; off += MAX_CALL) {
        fn(state, data.subarray(off, Math.min(len, off + MAX_CALL)), Math.min(MAX_CALL, len - off));
      }
    },
    append(state: Uint32Array, ck: BigUint64Array, length: number): void {
      if (state.length < 8 || ck.length < 4) throw new RangeError("fletcher-4 needs 4 u64");
      zs_fletcher4_append(state, ck, length);
    },
    updateRecords(state, headers, sums, payloadLength, littleEndian, recordChecksums): void {
      if (state.length < 8) throw new RangeError("fletcher-4 state needs 8 u32 halves");
      const count = checkRun(headers, sums, payloadLength);
      if (count === 0) return;
      const flags = (littleEndian === hostLittle ? 0 : RECORDS_SWAP) |
        (recordChecksums ? 0 : RECORDS_NO_CHECKSUM);
      zs_fletcher4_records(state, headers, count, sums, payloadLength, flags);
    },
  };
}

let engine: Fletcher4Engine | null | undefined;

/**
 * The native fletcher-4 engine (named `native-<implementation>`, e.g. `native-avx2`), or
 * `null` when the library is not loaded. Ignores `ZSEND_NO_NATIVE`; see {@linkcode
 * bestFletcher4}.
 *
 * @example
 * ```ts
 * import { nativeFletcher4 } from "./fletcher4_native.ts";
 * import { fletcher4, tsFletcher4 } from "jsr:@zsend/zsend";
 * const data = new Uint8Array(1000).map((_, i) => i * 7);
 * const native = nativeFletcher4(); // null without --allow-ffi or a built library
 * const engine = native ?? tsFletcher4;
 * if (String(fletcher4(data, false, engine)) !== String(fletcher4(data, false))) {
 *   throw new Error("native and TypeScript disagree");
 * }
 * ```
 */
export function nativeFletcher4(): Fletcher4Engine | null {
  if (engine === undefined) {
    const lib = loadNative();
    engine = lib === null ? null : makeEngine(lib);
  }
  return engine;
}

/**
 * The fastest fletcher-4 available: native when loaded and `ZSEND_NO_NATIVE` is not `1`,
 * else {@linkcode tsFletcher4}.
 *
 * @example
 * ```ts
 * import { bestFletcher4, Fletcher4 } from "jsr:@zsend/zsend";
 * const f = new Fletcher4(bestFletcher4());
 * f.update(new Uint8Array([2, 0, 0, 0, 3, 0, 0, 0]), true);
 * const [a, b, c, d] = f.value();
 * if (a !== 5n || b !== 7n || c !== 9n || d !== 11n) throw new Error();
 * ```
 */
export function bestFletcher4(): Fletcher4Engine {
  if (nativeDisabled()) return tsFletcher4;
  return nativeFletcher4() ?? tsFletcher4;
}

/**
 * The native implementations this CPU can run, best first (empty without the library).
 *
 * @example
 * ```ts
 * import { nativeImplementations } from "./fletcher4_native.ts";
 * const impls = nativeImplementations();
 * if (impls.length > 0 && impls.at(-1) !== "scalar") throw new Error();
 * ```
 */
export function nativeImplementations(): string[] {
  return implementations.list();
}

/**
 * Runs `fn` with the native library switched to implementation `name` (for tests and
 * benchmarks; the switch is process-wide), then switches back. Returns `false` without calling
 * `fn` when the library is not loaded or the CPU cannot run `name`.
 *
 * @example
 * ```ts
 * import { nativeFletcher4, withNativeImplementation } from "./fletcher4_native.ts";
 * let ran = false;
 * const ok = withNativeImplementation("scalar", () => {
 *   ran = nativeFletcher4() !== null;
 * });
 * if (ok !== ran) throw new Error();
 * ```
 */
export function withNativeImplementation(name: string, fn: () => void): boolean {
  return implementations.with(name, fn);
}
