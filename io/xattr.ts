/**
 * Extended attributes on extracted files, through the native library (Deno has no xattr API).
 *
 * @module
 */

import { cString, loadNative } from "./native/ffi.ts";

/** Why an attribute could not be set, or null when it was. */
export type XattrResult = null | "unavailable" | string;

const EOPNOTSUPP = 95;

/**
 * Sets one extended attribute on `path` without following a symlink there.
 *
 * @returns null when set; "unavailable" when the native library is not loaded; else the
 * system's reason (e.g. "not supported by the target filesystem")
 * @example
 * ```ts
 * import { setXattr } from "./xattr.ts";
 * const f = await Deno.makeTempFile();
 * const r = setXattr(f, "user.zsend-test", new TextEncoder().encode("v"));
 * await Deno.remove(f);
 * if (r !== null && typeof r !== "string") throw new Error();
 * ```
 */
export function setXattr(path: string, name: string, value: Uint8Array): XattrResult {
  const lib = loadNative();
  if (lib === null) return "unavailable";
  const rc = lib.symbols.zs_lsetxattr(cString(path), cString(name), value, value.length);
  if (rc === 0) return null;
  if (-rc === EOPNOTSUPP) return "not supported by the target filesystem";
  const p = lib.symbols.zs_strerror(-rc);
  return p === null ? `errno ${-rc}` : Deno.UnsafePointerView.getCString(p);
}
