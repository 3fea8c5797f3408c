/**
 * Dataset and snapshot names, checked by the rules OpenZFS applies (`zfs_namecheck.c`): a
 * name ZFS would refuse is refused here too, so that everything a store holds can be named
 * again by `ls`, `extract` and `send`, and received by a real `zfs receive`.
 *
 * The rules: components of letters, digits and `-_.: ` (and `%`, which ZFS keeps for its own
 * temporary names, in names read from streams only) separated by `/`; no empty component, no
 * leading or trailing `/`, no component `.` or `..`; at most one `@` (snapshot) and no `#`
 * (bookmark) in a dataset or snapshot name, and no `/` after the `@`; the whole name shorter
 * than {@linkcode MAX_NAME_LEN} bytes; fewer than {@linkcode MAX_NESTING} `/` before the `@`.
 *
 * @module
 */

/** `ZFS_MAX_DATASET_NAME_LEN`: a whole name must be shorter than this, in bytes. */
export const MAX_NAME_LEN = 256;

/** `zfs_max_dataset_nesting`: a dataset may have fewer `/` than this. */
export const MAX_NESTING = 50;

/** What a name must be. */
export type NameKind = "dataset" | "snapshot" | "dataset or snapshot";

/** Options of {@linkcode nameProblem}. */
export interface NameCheckOptions {
  /**
   * The name comes from a stream or a store, not from a user: `%` is allowed (ZFS makes such
   * names itself; a user may not).
   */
  internal?: boolean;
}

function isNameChar(c: string): boolean {
  return (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") ||
    c === "-" || c === "_" || c === "." || c === ":" || c === " ";
}

function describe(c: string): string {
  const code = c.codePointAt(0)!;
  return code < 0x20 || code === 0x7f
    ? `U+${code.toString(16).toUpperCase().padStart(4, "0")}`
    : `'${c}'`;
}

/**
 * Why `name` is not a valid name of the given kind, or `null` when it is.
 *
 * @param name the name to check
 * @param kind `dataset` (no `@`), `snapshot` (exactly one `@`), or either
 * @param options {@linkcode NameCheckOptions}
 * @returns a short reason (`empty component`, `invalid character '#'`, ...) or `null`
 *
 * @example
 * ```ts
 * import { nameProblem } from "./names.ts";
 * if (nameProblem("tank/fs@monday", "snapshot") !== null) throw new Error();
 * if (nameProblem("tank/new@a@b", "snapshot") !== "more than one '@'") throw new Error();
 * if (nameProblem("tank//fs", "dataset") !== "empty component") throw new Error();
 * ```
 */
export function nameProblem(
  name: string,
  kind: NameKind,
  options: NameCheckOptions = {},
): string | null {
  if (name === "") return "empty name";
  const bytes = new TextEncoder().encode(name).length;
  if (bytes >= MAX_NAME_LEN) {
    return `too long (${bytes} bytes; ZFS takes at most ${MAX_NAME_LEN - 1})`;
  }
  if (name.startsWith("/")) return "leading '/'";
  if (name.endsWith("/")) return "trailing '/'";
  let delimiter = "";
  let start = 0;
  for (let i = 0; i <= name.length; i++) {
    const c = name[i];
    if (c !== undefined && c !== "/" && c !== "@" && c !== "#") continue;
    const component = name.slice(start, i);
    if (c === "@" || c === "#") {
      if (c === "#") return "invalid character '#' (it marks a bookmark)";
      if (delimiter !== "") return "more than one '@'";
      delimiter = c;
    } else if (c === "/" && delimiter !== "") {
      return "'/' after '@'";
    }
    if (component === "") return "empty component";
    // OpenZFS checks this only where a component ends at `/` or the end; a dataset part
    // `.` before `@` would still name a dataset it refuses, so it is refused here too.
    if (component === "." || component === "..") return `component '${component}'`;
    for (const ch of component) {
      if (isNameChar(ch)) continue;
      if (ch === "%" && options.internal) continue;
      return `invalid character ${describe(ch)}`;
    }
    start = i + 1;
  }
  if (kind === "dataset" && delimiter === "@") return "'@' in a dataset name";
  if (kind === "snapshot" && delimiter === "") return "no '@' (expected DATASET@SNAP)";
  const at = name.indexOf("@");
  const depth = [...(at < 0 ? name : name.slice(0, at))].filter((c) => c === "/").length;
  if (depth >= MAX_NESTING) {
    return `nested too deep (${depth} levels; ZFS takes ${MAX_NESTING - 1})`;
  }
  return null;
}

/**
 * Throws a `TypeError` when `name` is not a valid name of the given kind.
 *
 * @param name the name to check
 * @param kind `dataset`, `snapshot`, or either
 * @param options {@linkcode NameCheckOptions}
 * @throws `TypeError`: `invalid snapshot name 'a@b@c': more than one '@'`
 *
 * @example
 * ```ts
 * import { checkName } from "./names.ts";
 * checkName("tank/fs", "dataset");
 * let message = "";
 * try {
 *   checkName("bad#name", "dataset");
 * } catch (e) {
 *   message = (e as TypeError).message;
 * }
 * if (!message.startsWith("invalid dataset name 'bad#name'")) throw new Error(message);
 * ```
 */
export function checkName(name: string, kind: NameKind, options: NameCheckOptions = {}): void {
  const why = nameProblem(name, kind, options);
  if (why !== null) {
    const what = kind === "dataset or snapshot" ? "dataset or snapshot" : kind;
    throw new TypeError(`invalid ${what} name '${quoteName(name)}': ${why}`);
  }
}

/**
 * A name as a message quotes it: control characters escaped, a very long name shortened.
 *
 * @param name any string given as a name
 * @returns at most 63 printable characters
 *
 * @example
 * ```ts
 * import { quoteName } from "./names.ts";
 * if (quoteName("a\x1bb") !== "a\\x1bb") throw new Error();
 * if (quoteName("x".repeat(300)).length !== 63) throw new Error();
 * ```
 */
export function quoteName(name: string): string {
  // deno-lint-ignore no-control-regex
  const safe = name.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`);
  return safe.length > 80 ? `${safe.slice(0, 40)}...${safe.slice(-20)}` : safe;
}
