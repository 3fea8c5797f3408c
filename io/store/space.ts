/**
 * Space accounting of a store: what each snapshot refers to, what only it holds, and what
 * the packs hold in all.
 *
 * @module
 */

import type { Store } from "./store.ts";

/** Bytes per snapshot and for the whole store. */
export interface StoreSpace {
  /** Stored bytes of every block a snapshot refers to (each block once), by snapshot id. */
  referenced: Map<number, number>;
  /** Stored bytes of blocks no other snapshot refers to, by snapshot id. */
  unique: Map<number, number>;
  totals: {
    blocks: number;
    /** Bytes of distinct blocks that some snapshot uses. */
    stored_bytes: number;
    /** Bytes in pack files (committed). */
    pack_bytes: number;
    /** Pack bytes no snapshot uses (left by destroyed snapshots). */
    unused_bytes: number;
    /** Sum over snapshots of what each refers to. */
    logical_bytes: number;
  };
}

/** Computes the space of every snapshot and of the store. */
export function storeSpace(store: Store): StoreSpace {
  const referenced = new Map<number, number>();
  const unique = new Map<number, number>();
  for (
    const r of store.db.prepare(
      `SELECT m.snapshot AS s, sum(b.length) AS n FROM
       (SELECT DISTINCT snapshot, block FROM block_map WHERE block IS NOT NULL
        UNION SELECT snapshot, spill_block FROM objects WHERE spill_block IS NOT NULL) m
       JOIN blocks b ON b.id = m.block GROUP BY m.snapshot`,
    ).all() as { s: number; n: number }[]
  ) referenced.set(r.s, r.n);
  for (
    const r of store.db.prepare(
      `WITH uses AS (SELECT DISTINCT snapshot, block FROM block_map WHERE block IS NOT NULL
        UNION SELECT snapshot, spill_block FROM objects WHERE spill_block IS NOT NULL),
       single AS (SELECT block, min(snapshot) AS s FROM uses GROUP BY block HAVING count(*) = 1)
       SELECT single.s AS s, sum(b.length) AS n FROM single JOIN blocks b ON b.id = single.block
       GROUP BY single.s`,
    ).all() as { s: number; n: number }[]
  ) unique.set(r.s, r.n);
  const used = store.db.prepare(
    `SELECT count(*) AS c, coalesce(sum(length), 0) AS n FROM blocks WHERE id IN
     (SELECT block FROM block_map UNION SELECT spill_block FROM objects)`,
  ).get() as { c: number; n: number };
  const packs = store.db.prepare("SELECT coalesce(sum(committed), 0) AS n FROM packs").get() as {
    n: number;
  };
  let logical = 0;
  for (const n of referenced.values()) logical += n;
  return {
    referenced,
    unique,
    totals: {
      blocks: used.c,
      stored_bytes: used.n,
      pack_bytes: packs.n,
      unused_bytes: packs.n - used.n,
      logical_bytes: logical,
    },
  };
}
