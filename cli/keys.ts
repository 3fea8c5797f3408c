/**
 * Opening a raw (encrypted) snapshot with the key that `--key-file`/`--passphrase-file` give
 * (./key_flags.ts) or that the terminal is asked for.
 *
 * @module
 */

import type { KeyMaterial } from "../core/crypto/keys.ts";
import type { SnapshotView } from "../core/receive/snapshot_view.ts";
import type { CryptInfo } from "../io/store/crypt_view.ts";
import { openSnapshotView } from "../io/store/open_snapshot.ts";
import type { Store } from "../io/store/store.ts";
import { keyMaterial } from "./key_flags.ts";
import { nameArg, storeArg } from "./args.ts";
import { UsageError } from "./common.ts";

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
