/**
 * A path's access and modification times to the nanosecond, as a snapshot holds them.
 * `Deno.utimeSync` keeps only milliseconds, and Deno has no `lutimes`; the native library's
 * `utimensat` keeps every digit, for a symlink's own times too.
 *
 * @module
 */

import type { Timespec } from "../../core/zpl/znode.ts";
import { cString, loadNative, nativeDisabled } from "./ffi.ts";
import { osError } from "./device.ts";

/**
 * Sets `path`'s times exactly (a symlink's own with `noFollow`).
 *
 * @returns false where the native library is not there (the caller then sets them its own way)
 * @example
 * ```ts
 * import { setTimes } from "./file_times.ts";
 * const path = Deno.makeTempFileSync();
 * if (setTimes(path, { sec: 1, nsec: 2 }, { sec: 1_700_000_000, nsec: 123_456_789 }, false)) {
 *   const out = new Deno.Command("stat", { args: ["-c", "%.9Y", path] }).outputSync();
 *   const text = new TextDecoder().decode(out.stdout).trim();
 *   if (text !== "1700000000.123456789") throw new Error(text);
 * }
 * Deno.removeSync(path);
 * ```
 */
export function setTimes(
  path: string,
  atime: Timespec,
  mtime: Timespec,
  noFollow: boolean,
): boolean {
  if (nativeDisabled()) return false;
  const lib = loadNative();
  if (lib === null) return false;
  const [as, ans] = normal(atime);
  const [ms, mns] = normal(mtime);
  const r = lib.symbols.zs_utimens(cString(path), as, ans, ms, mns, noFollow ? 1 : 0);
  if (r < 0) throw osError(lib, -r, `utimensat '${path}'`);
  return true;
}

/** Seconds and nanoseconds in 0..999999999 (damaged data may carry more nanoseconds). */
function normal(t: Timespec): [bigint, number] {
  const carry = Math.floor(t.nsec / 1e9);
  return [BigInt(t.sec) + BigInt(carry), t.nsec - carry * 1e9];
}
