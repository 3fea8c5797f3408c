/**
 * Arguments checked before a verb starts: a stream FILE that is a file, a STORE that is a
 * store, names that ZFS would take. Each refusal is one line that names the argument and
 * what was expected: a {@linkcode UsageError} (exit 2) for an argument of the wrong kind, a
 * `Deno.errors.NotFound` (exit 1) for one that does not exist.
 *
 * @module
 */

import { type NameKind, nameProblem, quoteName } from "../core/receive/names.ts";
import { UsageError } from "./common.ts";

/**
 * Refuses an empty path: joined with the names below it, it would put them under `/` (an
 * extract of the snapshot's tree into the root directory, a store's packs in `/packs`).
 */
function notEmpty(path: string, label: string, expected: string): void {
  if (path === "") throw new UsageError(`${label} is an empty string: expected ${expected}`);
}

function statOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    if (e instanceof Deno.errors.NotADirectory) return null;
    throw e;
  }
}

/**
 * Checks a stream input: `undefined` and `-` are stdin; anything else must exist and must not
 * be a directory (a file, a fifo, a device).
 *
 * @param path the argument as given
 * @param label how the usage line calls it (`FILE`)
 * @returns the argument, unchanged
 */
export function streamInputArg(path: string | undefined, label = "FILE"): string | undefined {
  if (path === undefined || path === "-") return path;
  notEmpty(path, label, "a stream file, or - for stdin");
  const st = statOrNull(path);
  if (st === null) throw new Deno.errors.NotFound(`${label} '${path}': no such file`);
  if (st.isDirectory) {
    throw new UsageError(
      `${label} '${path}' is a directory: expected a stream file, or - for stdin`,
    );
  }
  return path;
}

/**
 * Refuses a directory where a file or a device is meant (an image); a path that does not
 * exist yet is let through.
 *
 * @param path the argument as given
 * @param label how the usage line calls it (`IMAGE`)
 * @returns the argument, unchanged
 */
export function notDirectoryArg(path: string, label: string): string {
  notEmpty(path, label, "a file or a device");
  if (statOrNull(path)?.isDirectory) {
    throw new UsageError(`${label} '${path}' is a directory: expected a file or a device`);
  }
  return path;
}

/** What {@linkcode storeArg} found. */
export type StoreState = "store" | "absent" | "empty";

/**
 * Checks a STORE argument: a directory holding a zsend store, or, with `create`, a directory
 * that does not exist yet or is empty. Never a file, never a directory holding other things.
 *
 * @param path the argument as given
 * @param options `create`: the verb makes the store on first use (`recv`)
 * @returns `store` when one is there; `absent` or `empty` (only with `create`)
 */
export function storeArg(path: string, options: { create?: boolean } = {}): StoreState {
  notEmpty(path, "STORE", "a zsend store directory");
  const st = statOrNull(path);
  if (st === null) {
    if (options.create) return "absent";
    throw new Deno.errors.NotFound(`STORE '${path}': no such directory`);
  }
  if (!st.isDirectory) {
    throw new UsageError(`STORE '${path}' is not a directory: expected a zsend store directory`);
  }
  const index = statOrNull(`${path}/index.sqlite`);
  if (index?.isFile) {
    if (index.size > 0 && !isSqlite(`${path}/index.sqlite`)) {
      throw new TypeError(`STORE '${path}': its index.sqlite is not an SQLite database (damaged?)`);
    }
    return "store";
  }
  let empty = true;
  for (const _ of Deno.readDirSync(path)) {
    empty = false;
    break;
  }
  if (empty && options.create) return "empty";
  if (empty) throw new Deno.errors.NotFound(`STORE '${path}' is an empty directory, not a store`);
  throw new UsageError(
    `STORE '${path}' is a directory that is not a zsend store` +
      (options.create ? " and not empty: expected a store, an empty or a new directory" : ""),
  );
}

/** Whether a file starts as every SQLite database does. */
function isSqlite(path: string): boolean {
  const magic = new TextEncoder().encode("SQLite format 3\0");
  const head = new Uint8Array(magic.length);
  using f = Deno.openSync(path);
  let got = 0;
  while (got < head.length) {
    const n = f.readSync(head.subarray(got));
    if (n === null) break;
    got += n;
  }
  return got === head.length && head.every((b, i) => b === magic[i]);
}

/**
 * The first directory of `path` that does not exist (the one a `mkdir -p` of `path` makes
 * first), or `null` when `path` exists.
 *
 * @param path a path that may not exist yet
 * @returns the highest missing directory on the way to `path`
 */
export function firstMissing(path: string): string | null {
  if (statOrNull(path) !== null) return null;
  let missing = path;
  for (;;) {
    const parent = missing.replace(/\/+[^/]+\/*$/, "");
    if (parent === "" || parent === missing || statOrNull(parent) !== null) return missing;
    missing = parent;
  }
}

/**
 * Checks an output directory (`extract`'s DIR): new, or an empty directory.
 *
 * @param path the argument as given
 * @param label how the usage line calls it (`DIR`)
 * @returns the argument, unchanged
 */
export function outputDirArg(path: string, label = "DIR"): string {
  notEmpty(path, label, "a new or empty directory");
  const st = statOrNull(path);
  if (st === null) return path;
  if (!st.isDirectory) {
    throw new UsageError(
      `${label} '${path}' exists and is not a directory: expected a new or empty directory`,
    );
  }
  for (const _ of Deno.readDirSync(path)) {
    throw new UsageError(`${label} '${path}' is not empty: expected a new or empty directory`);
  }
  return path;
}

/**
 * Checks a name given on the command line as OpenZFS would (`zfs_namecheck.c`).
 *
 * @param name the argument as given
 * @param kind what it must name
 * @param label how the usage line calls it (`TARGET`, `DATASET@SNAP`)
 * @param options `lookup`: the name is looked for in a store, not made
 * @returns the name, unchanged
 */
export function nameArg(
  name: string,
  kind: NameKind,
  label: string,
  options: { lookup?: boolean } = {},
): string {
  // A name only looked up may hold the `%` of names ZFS made itself: a store can hold them.
  const why = nameProblem(name, kind, { internal: options.lookup === true });
  if (why !== null) {
    throw new UsageError(`${label} '${quoteName(name)}' is not a valid ${kind} name: ${why}`);
  }
  return name;
}
