/**
 * `zfs diff`'s lines (OpenZFS 2.3 `libzfs_diff.c`): `[CTIME\t]TYPE\t[FILETYPE\t]PATH`, where
 * CTIME is `%10lld.%09lld`, FILETYPE one of `B C / | @ = F ?` (`-F`), PATH the mountpoint then
 * the path; a rename `OLD -> NEW` (`OLD\tNEW` with `-H`); a change of the link count
 * `M\t...PATH\t(+1)`. Every byte of a path that is not printable ASCII, a space or a backslash
 * is written `\ooo` with four octal digits (`\0040` for a space), unless `-h` asks for the
 * bytes as they are.
 *
 * @module
 */

import { concat } from "@std/bytes";
import type { DiffChange } from "./diff.ts";
import { S_IF } from "./znode.ts";

/** How lines are written: `zfs diff`'s flags, and the mountpoint paths start at. */
export interface DiffFormat {
  /** `-F`: the file type after the change type. */
  classify?: boolean;
  /** `-H`: a rename's two paths separated by a tab. */
  scripted?: boolean;
  /** `-t`: the change time first. */
  timestamped?: boolean;
  /** `-h`: names as they are, no escapes. */
  noMangle?: boolean;
  /** What paths start with (a mountpoint of `/` is empty, as zfs diff makes it). */
  mountpoint: Uint8Array;
}

const enc = new TextEncoder();

/**
 * `zfs diff -F`'s letter for a mode's file type.
 *
 * @example
 * ```ts
 * import { fileTypeChar } from "./diff_format.ts";
 * if (fileTypeChar(0o100644) !== "F" || fileTypeChar(0o40755) !== "/") throw new Error();
 * if (fileTypeChar(0o120777) !== "@" || fileTypeChar(0) !== "?") throw new Error();
 * ```
 */
export function fileTypeChar(mode: number): string {
  switch (mode & S_IF.MT) {
    case S_IF.BLK:
      return "B";
    case S_IF.CHR:
      return "C";
    case S_IF.DIR:
      return "/";
    case S_IF.FIFO:
      return "|";
    case S_IF.LNK:
      return "@";
    case S_IF.SOCK:
      return "=";
    case S_IF.REG:
      return "F";
    default:
      return "?";
  }
}

/**
 * A path's bytes as `zfs diff` writes them: printable ASCII but space and backslash as it is,
 * every other byte `\` and four octal digits.
 *
 * @example
 * ```ts
 * import { escapePath } from "./diff_format.ts";
 * const e = escapePath(new TextEncoder().encode("a b\\é\n"));
 * if (new TextDecoder().decode(e) !== "a\\0040b\\0134\\0303\\0251\\0012") throw new Error();
 * ```
 */
export function escapePath(bytes: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (const c of bytes) {
    if (c > 0x20 && c !== 0x5C && c < 0x7F) out.push(c);
    else out.push(0x5C, ...enc.encode(c.toString(8).padStart(4, "0")));
  }
  return new Uint8Array(out);
}

/**
 * One change as the line `zfs diff` prints for it, with its newline.
 *
 * @example
 * ```ts
 * import { formatChange } from "./diff_format.ts";
 * const te = new TextEncoder();
 * const line = formatChange(
 *   {
 *     type: "R", object: 9, path: te.encode("/a b"), newPath: te.encode("/c"),
 *     stat: { mode: 0o100644, gen: 5n, links: 1n, ctime: { sec: 1700000000, nsec: 5 } },
 *   },
 *   { mountpoint: te.encode("/tank/fs"), classify: true, timestamped: true },
 * );
 * const want = "1700000000.000000005\tR\tF\t/tank/fs/a\\0040b -> /tank/fs/c\n";
 * if (new TextDecoder().decode(line) !== want) throw new Error(new TextDecoder().decode(line));
 * ```
 */
export function formatChange(c: DiffChange, f: DiffFormat): Uint8Array {
  const parts: Uint8Array[] = [];
  const text = (s: string) => parts.push(enc.encode(s));
  const path = (p: Uint8Array) => {
    parts.push(f.noMangle ? f.mountpoint : escapePath(f.mountpoint));
    parts.push(f.noMangle ? p : escapePath(p));
  };
  if (f.timestamped) {
    text(
      `${String(c.stat.ctime.sec).padStart(10)}.${String(c.stat.ctime.nsec).padStart(9, "0")}\t`,
    );
  }
  text(`${c.type}\t`);
  if (f.classify) text(`${fileTypeChar(c.stat.mode)}\t`);
  path(c.path);
  if (c.type === "R" && c.newPath !== undefined) {
    text(f.scripted ? "\t" : " -> ");
    path(c.newPath);
  }
  if (c.linkDelta !== undefined) text(`\t(${c.linkDelta > 0 ? "+" : ""}${c.linkDelta})`);
  text("\n");
  return concat(parts);
}

/**
 * The mountpoint as `zfs diff` puts it before paths: `/` becomes empty (no double slash).
 *
 * @example
 * ```ts
 * import { mountpointPrefix } from "./diff_format.ts";
 * if (mountpointPrefix("/").length !== 0 || mountpointPrefix("/mnt/x").length !== 6) {
 *   throw new Error();
 * }
 * ```
 */
export function mountpointPrefix(mountpoint: string): Uint8Array {
  return enc.encode(mountpoint === "/" ? "" : mountpoint);
}
