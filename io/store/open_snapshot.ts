/**
 * Finds a stored snapshot by `DATASET@SNAP` and opens it for reading.
 *
 * @module
 */

import type { KeyMaterial } from "../../core/crypto/keys.ts";
import type { SnapshotView } from "../../core/receive/snapshot_view.ts";
import { BlockCrypt } from "../../core/crypto/block.ts";
import { nativeAead } from "../native/aead_native.ts";
import {
  checkObjsetMac,
  type CryptInfo,
  cryptInfo,
  DecryptedSnapshotView,
  unlockSnapshot,
} from "./crypt_view.ts";
import { StoreSnapshotView } from "./snapshot_view.ts";
import { Store } from "./store.ts";

/** An open store and one of its snapshots. */
export interface OpenSnapshot {
  store: Store;
  view: StoreSnapshotView;
}

/**
 * Opens `name` (`DATASET@SNAP`) in the store at `dir`.
 *
 * @throws `Deno.errors.NotFound` naming what is missing
 */
export function openSnapshot(dir: string, name: string): OpenSnapshot {
  if (!name.includes("@")) throw new TypeError(`'${name}' is not a snapshot (DATASET@SNAP)`);
  const store = Store.open(dir);
  const row = store.snapshotByName(name);
  if (row === null) {
    const known = store.datasets().flatMap((d) =>
      store.snapshots(d.id).map((s) => `${d.name}@${s.name}`)
    );
    store.close();
    throw new Deno.errors.NotFound(
      `no snapshot ${name} in ${dir}` +
        (known.length
          ? ` (it has ${known.slice(0, 5).join(", ")}${known.length > 5 ? ", ..." : ""})`
          : ""),
    );
  }
  store.beginRead();
  return { store, view: new StoreSnapshotView(store, row) };
}

/**
 * Opens `name` as {@linkcode openSnapshot} does; a raw (encrypted) snapshot needs `material`
 * (the user's key or passphrase) and is read through its keys, unwrapped here: a wrong key is
 * refused (`WrongKey`) before the caller writes anything. Without `material` a raw snapshot
 * is refused with a message that says what to give (unless `ask` gives it: a prompt); with
 * it, a snapshot that is not raw is read as it is.
 */
export async function openSnapshotView(
  dir: string,
  name: string,
  given: KeyMaterial | null,
  ask?: (info: CryptInfo) => Promise<KeyMaterial | null>,
): Promise<{ store: Store; view: SnapshotView; stored: StoreSnapshotView }> {
  const { store, view } = openSnapshot(dir, name);
  try {
    if (!view.raw) return { store, view, stored: view };
    let material = given;
    const info = cryptInfo(view);
    if (material === null && ask !== undefined && info !== null) material = await ask(info);
    if (material === null) {
      throw new TypeError(
        `${name} is encrypted (a raw send${
          info ? `, ${info.suite}, keyformat ${info.keyformat}` : ""
        }): give --key-file PATH or --passphrase-file PATH`,
      );
    }
    // The key, then the objset MAC: the tree of dnode blocks is authentic before any is read.
    const crypt = new BlockCrypt(await unlockSnapshot(view, material), nativeAead());
    await checkObjsetMac(view, crypt);
    return { store, view: new DecryptedSnapshotView(view, crypt), stored: view };
  } catch (e) {
    store.close();
    throw e;
  }
}
