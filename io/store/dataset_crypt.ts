/**
 * The encryption hierarchy of a store's raw datasets: which is its own encryption root and
 * which inherits the key of an encrypted ancestor (as a raw `-R` stream said), and the
 * keylocation an encryption root came with. `list` names each raw dataset's encryption root;
 * `send -R` of raw datasets says it again in its header, as `zfs send -R -w` does.
 *
 * @module
 */

import type { FsCrypt } from "../../core/receive/replication_crypt.ts";
import type { Store } from "./store.ts";

/** Records what a raw receive says of dataset `id`'s encryption (replacing what was known). */
export function setDatasetCrypt(store: Store, id: number, facts: FsCrypt): void {
  store.stmt(
    "INSERT OR REPLACE INTO dataset_crypt (dataset, encroot, keylocation) VALUES (?, ?, ?)",
  ).run(id, facts.encroot ? 1 : 0, facts.keylocation);
}

/** Whether dataset `id` holds raw snapshots. */
export function datasetIsRaw(store: Store, id: number): boolean {
  return store.stmt(
    `SELECT 1 AS x FROM snapshots s JOIN snapshot_crypt c ON c.snapshot = s.id
     WHERE s.dataset = ? LIMIT 1`,
  ).get(id) !== undefined;
}

/**
 * The encryption facts of a raw dataset (its own root, unless a raw `-R` stream said it
 * inherits); null when it holds no raw snapshot.
 */
export function datasetCrypt(store: Store, id: number): FsCrypt | null {
  if (!datasetIsRaw(store, id)) return null;
  const r = store.stmt("SELECT encroot, keylocation FROM dataset_crypt WHERE dataset = ?").get(
    id,
  ) as { encroot: number; keylocation: string | null } | undefined;
  return r === undefined
    ? { encroot: true, keylocation: null }
    : { encroot: r.encroot !== 0, keylocation: r.keylocation };
}

/**
 * The name of the encryption root of raw dataset `name`: itself, or the nearest encrypted
 * ancestor in the store that is a root; null when the dataset is not raw.
 */
export function encryptionRoot(store: Store, name: string): string | null {
  let d = store.datasetByName(name);
  if (d === null || datasetCrypt(store, d.id) === null) return null;
  for (;;) {
    if (datasetCrypt(store, d.id)!.encroot || !d.name.includes("/")) return d.name;
    const parent = store.datasetByName(d.name.slice(0, d.name.lastIndexOf("/")));
    if (parent === null || datasetCrypt(store, parent.id) === null) return d.name;
    d = parent;
  }
}
