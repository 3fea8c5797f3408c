/**
 * `--key-file PATH` and `--passphrase-file PATH`: what opens a raw (encrypted) snapshot. The
 * key or passphrase is read here and kept in memory only.
 *
 * @module
 */

import type { KeyMaterial } from "../core/crypto/keys.ts";
import type { SnapshotView } from "../core/receive/snapshot_view.ts";
import type { CryptInfo } from "../io/store/crypt_view.ts";
import { openSnapshotView } from "../io/store/open_snapshot.ts";
import type { Store } from "../io/store/store.ts";
import { nameArg, storeArg } from "./args.ts";
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

/**
 * Asks for the passphrase (or hex key) of a raw snapshot on the terminal, without echo, as
 * `zfs load-key` prompts; null when stdin is not a terminal (the caller then says to give
 * `--key-file` or `--passphrase-file`). A raw key cannot be typed.
 */
export async function promptKey(name: string, info: CryptInfo): Promise<KeyMaterial | null> {
  let terminal = false;
  try {
    terminal = Deno.stdin.isTerminal();
  } catch {
    return null;
  }
  if (!terminal || info.keyformat === "raw") return null;
  const what = info.keyformat === "hex" ? "hex key" : "passphrase";
  const enc = new TextEncoder();
  const bytes: number[] = [];
  // No echo from before the prompt is shown: what is typed after it is never seen.
  Deno.stdin.setRaw(true);
  try {
    await Deno.stderr.write(enc.encode(`Enter ${what} for '${name}': `));
    const buf = new Uint8Array(1);
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null || buf[0] === 0x0d || buf[0] === 0x0a) break;
      if (buf[0] === 0x03) throw new UsageError("interrupted");
      if (buf[0] === 0x7f || buf[0] === 0x08) bytes.pop();
      else bytes.push(buf[0]!);
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(enc.encode("\n"));
  }
  const typed = new Uint8Array(bytes);
  return info.keyformat === "hex"
    ? { kind: "key", bytes: typed }
    : { kind: "passphrase", text: new TextDecoder().decode(typed) };
}

/**
 * Opens the snapshot that a verb's STORE and DATASET@SNAP arguments name, with the key that
 * its flags give (or that is typed at the prompt): the arguments are checked first.
 */
export function openSnapshotArgs(
  storeDir: string,
  name: string,
  flags: { "key-file"?: string | undefined; "passphrase-file"?: string | undefined },
): Promise<{ store: Store; view: SnapshotView }> {
  storeArg(storeDir);
  nameArg(name, "snapshot", "DATASET@SNAP", { lookup: true });
  return openSnapshotView(storeDir, name, keyMaterial(flags), (info) => promptKey(name, info));
}
