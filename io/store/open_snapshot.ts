/**
 * Finds a stored snapshot by `DATASET@SNAP` and opens it for reading.
 *
 * @module
 */

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
