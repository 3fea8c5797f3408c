/**
 * A native primitive that has several implementations (SIMD widths) chosen at run time, and
 * the switch between them that tests and benchmarks use: which ones this CPU runs, and
 * running code with one of them selected.
 *
 * @module
 */

import { cString, loadNative, type NativeLib } from "./ffi.ts";

/** The library's pair of calls for one primitive. */
export interface ImplementationCalls {
  /** The names the library knows, best first. */
  names: readonly string[];
  /** The `const char *` name of the implementation in use. */
  current(lib: NativeLib): Deno.PointerValue;
  /** Selects one by name: 0, or -1 when unknown or unsupported by the CPU. */
  select(lib: NativeLib, name: Uint8Array<ArrayBuffer>): number;
}

/** The switch of one primitive. */
export interface ImplementationSwitch {
  /** The implementation in use ("unknown" if the library does not say). */
  current(lib: NativeLib): string;
  /** The implementations this CPU can run, best first (empty without the library). */
  list(): string[];
  /**
   * Runs `fn` with implementation `name` selected (process-wide), then selects the previous
   * one again; false without calling `fn` when the library is not loaded or the CPU cannot
   * run `name`.
   */
  with(name: string, fn: () => void): boolean;
}

/**
 * The switch of one primitive, from its calls.
 *
 * @example
 * ```ts
 * import { implementationSwitch } from "./implementations.ts";
 * const f4 = implementationSwitch({
 *   names: ["avx512", "avx2", "sse2", "scalar"],
 *   current: (lib) => lib.symbols.zs_fletcher4_impl(),
 *   select: (lib, name) => lib.symbols.zs_fletcher4_select(name),
 * });
 * const impls = f4.list();
 * if (impls.length > 0 && impls.at(-1) !== "scalar") throw new Error();
 * if (f4.with("no-such-implementation", () => {})) throw new Error();
 * ```
 */
export function implementationSwitch(calls: ImplementationCalls): ImplementationSwitch {
  const current = (lib: NativeLib): string => {
    const p = calls.current(lib);
    return p === null ? "unknown" : Deno.UnsafePointerView.getCString(p);
  };
  return {
    current,
    list(): string[] {
      const lib = loadNative();
      if (lib === null) return [];
      const was = current(lib);
      const out = calls.names.filter((name) => calls.select(lib, cString(name)) === 0);
      calls.select(lib, cString(was));
      return out;
    },
    with(name: string, fn: () => void): boolean {
      const lib = loadNative();
      if (lib === null) return false;
      const was = current(lib);
      if (calls.select(lib, cString(name)) !== 0) return false;
      try {
        fn();
      } finally {
        calls.select(lib, cString(was));
      }
      return true;
    },
  };
}
