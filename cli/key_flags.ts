/**
 * `--key-file PATH` and `--passphrase-file PATH`: what opens a raw (encrypted) snapshot. The
 * key or passphrase is read here and kept in memory only. (Apart from ./keys.ts, which opens
 * snapshots, so that a verb that only reads a stream does not load the store.)
 *
 * @module
 */

import type { KeyMaterial } from "../core/crypto/keys.ts";
import { UsageError } from "./common.ts";

/** The flags' names, for `parseArgs`' `string`. */
export const KEY_FLAGS = ["key-file", "passphrase-file"] as const;

/** Usage text of the flags. */
export const KEY_USAGE = "[--key-file PATH | --passphrase-file PATH]";

/**
 * The key material the flags name, or null when neither is given. A key file holds a raw
 * (32-byte) or hex (64 digits) key, or a passphrase; a passphrase file a passphrase, its one
 * trailing newline dropped (as `zfs load-key` reads it).
 */
export function keyMaterial(
  flags: { "key-file"?: string | undefined; "passphrase-file"?: string | undefined },
): KeyMaterial | null {
  const keyFile = flags["key-file"];
  const passFile = flags["passphrase-file"];
  if (keyFile !== undefined && passFile !== undefined) {
    throw new UsageError("give --key-file or --passphrase-file, not both");
  }
  const path = keyFile ?? passFile;
  if (path === undefined) return null;
  if (path === "") {
    throw new UsageError(`--${keyFile !== undefined ? "key" : "passphrase"}-file needs a PATH`);
  }
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UsageError(`no such key file: ${path}`);
    if (e instanceof Deno.errors.IsADirectory) throw new UsageError(`${path} is a directory`);
    throw e;
  }
  if (keyFile !== undefined) return { kind: "key", bytes };
  return { kind: "passphrase", text: new TextDecoder().decode(bytes).replace(/\n$/, "") };
}
