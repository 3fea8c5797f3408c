/**
 * The properties a store keeps for each dataset: those a `-R` or `-p` stream's header carried
 * for it (its locally set properties on the sender, XDR-encoded as they came). `list -o` shows
 * them; `send -R` and `send -p` send them back in their header.
 *
 * @module
 */

import { decodeNvlist, type NvList } from "../../core/stream/nvlist.ts";
import type { Store } from "./store.ts";

/** Records the properties a stream gave dataset `id` (replacing what was kept). */
export function setDatasetProps(store: Store, id: number, props: Uint8Array): void {
  store.stmt("INSERT OR REPLACE INTO dataset_props (dataset, props) VALUES (?, ?)").run(
    id,
    props,
  );
}

/** The properties kept for dataset `id`, or null when no stream gave any. */
export function datasetProps(store: Store, id: number): NvList | null {
  const r = store.stmt("SELECT props FROM dataset_props WHERE dataset = ?").get(id) as
    | { props: Uint8Array }
    | undefined;
  return r === undefined ? null : decodeNvlist(r.props);
}

/**
 * A kept property's value as `zfs get` prints it (a string, or a number's decimal digits);
 * null when dataset `id` has no such property.
 */
export function datasetProp(store: Store, id: number, name: string): string | null {
  const props = datasetProps(store, id);
  const p = props?.pairs.find((q) => q.name === name);
  if (p === undefined) return null;
  // A received property may come as an nvlist with its value under "value".
  const v = typeof p.value === "object" && p.value !== null && "pairs" in p.value
    ? (p.value as NvList).pairs.find((q) => q.name === "value")?.value
    : p.value;
  return v === undefined || typeof v === "object" ? null : String(v);
}

/** The names of every property kept for any dataset of the store. */
export function keptPropertyNames(store: Store): Set<string> {
  const names = new Set<string>();
  const rows = store.stmt("SELECT props FROM dataset_props").all() as { props: Uint8Array }[];
  for (const r of rows) for (const p of decodeNvlist(r.props).pairs) names.add(p.name);
  return names;
}
