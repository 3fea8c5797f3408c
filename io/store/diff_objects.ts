/**
 * What `zsend diff` takes from the store: which objects may differ between two snapshots
 * (their object rows differ, or one lacks them), and whether one snapshot is an earlier one
 * of the other's filesystem (or of a filesystem it was cloned from), as `zfs diff` requires.
 *
 * @module
 */

import type { SnapshotRow, Store } from "./store.ts";

/**
 * The objects whose rows differ between two snapshots, in increasing order: an object only
 * one holds, or one whose type, bonus, spill block or slots differ. Rows are kept per snapshot
 * and a block's id is its content, so equal rows are equal dnodes. In raw (encrypted)
 * snapshots a bonus is sealed with its dnode block's parameters, so every object of a dnode
 * block whose parameters differ is taken too.
 *
 * @param store the open store
 * @param from the earlier snapshot's id
 * @param to the later snapshot's id
 */
export function changedObjects(store: Store, from: number, to: number): number[] {
  const rows = store.stmt(
    `SELECT object FROM (
       SELECT a.object FROM objects a WHERE a.snapshot = :x AND NOT EXISTS (
         SELECT 1 FROM objects b WHERE b.snapshot = :y AND b.object = a.object
         AND b.type = a.type AND b.bonustype = a.bonustype AND b.bonuslen = a.bonuslen
         AND b.dn_slots = a.dn_slots AND b.bonus = a.bonus AND b.spill_block IS a.spill_block)
       UNION
       SELECT b.object FROM objects b WHERE b.snapshot = :y AND NOT EXISTS (
         SELECT 1 FROM objects a WHERE a.snapshot = :x AND a.object = b.object)
       UNION
       SELECT o.object FROM objects o JOIN object_ranges r ON r.snapshot = o.snapshot
         AND o.object >= r.firstobj AND o.object < r.firstobj + r.numslots
       WHERE o.snapshot IN (:x, :y) AND NOT EXISTS (
         SELECT 1 FROM object_ranges q WHERE q.snapshot = (CASE WHEN o.snapshot = :x THEN :y
         ELSE :x END) AND q.firstobj = r.firstobj AND q.numslots = r.numslots AND q.meta = r.meta)
     ) ORDER BY object`,
  ).all({ x: from, y: to }) as { object: number }[];
  return rows.map((r) => r.object);
}

/**
 * Whether `from` is an earlier snapshot of `to`'s filesystem, or of one it was cloned from
 * (`dsl_dataset_is_before`): snapshots of one dataset are kept in the order they were taken.
 */
export function isEarlierSnapshot(store: Store, from: SnapshotRow, to: SnapshotRow): boolean {
  let at: SnapshotRow | null = to;
  const seen = new Set<number>();
  while (at !== null && !seen.has(at.dataset)) {
    seen.add(at.dataset);
    if (at.dataset === from.dataset) return from.id < at.id || (from.id === at.id && at !== to);
    const ds = store.datasets().find((d) => d.id === at!.dataset);
    at = ds?.origin == null ? null : store.snapshot(ds.origin);
  }
  return false;
}
