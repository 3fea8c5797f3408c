/**
 * Space accounting of a store: what each snapshot refers to, what only it holds, and what
 * the packs hold in all.
 *
 * @module
 */

import type { Store } from "./store.ts";

/** Every use of a block: by a snapshot's block map (with its logical size) or as a spill block. */
const USES = `SELECT snapshot, block, lsize FROM block_map WHERE block IS NOT NULL
  UNION ALL SELECT snapshot, spill_block AS block, NULL AS lsize FROM objects
  WHERE spill_block IS NOT NULL`;

/** Bytes as the packs keep them (`stored`) and as the blocks read (`logical`, uncompressed). */
export interface Bytes {
  stored: number;
  logical: number;
}

/** Bytes of the whole store. */
export interface StoreSpace {
  totals: {
    blocks: number;
    /** Bytes of distinct blocks that some snapshot uses. */
    stored_bytes: number;
    /** Sum over snapshots of what each refers to. */
    logical_bytes: number;
  };
}

/** Computes the space of the store: its used blocks, and what its snapshots refer to. */
export function storeSpace(store: Store): StoreSpace {
  const used = store.db.prepare(
    `SELECT count(*) AS c, coalesce(sum(length), 0) AS n FROM blocks WHERE id IN
     (SELECT block FROM block_map UNION SELECT spill_block FROM objects)`,
  ).get() as { c: number; n: number };
  const referenced = store.db.prepare(
    `SELECT coalesce(sum(b.length), 0) AS n FROM
     (SELECT DISTINCT snapshot, block FROM block_map WHERE block IS NOT NULL
      UNION SELECT snapshot, spill_block FROM objects WHERE spill_block IS NOT NULL) m
     JOIN blocks b ON b.id = m.block`,
  ).get() as { n: number };
  return { totals: { blocks: used.c, stored_bytes: used.n, logical_bytes: referenced.n } };
}

/**
 * What each snapshot row holds alone (what destroying only it would release), for every row
 * at once: one pass over the block maps instead of one per snapshot. Rows holding nothing alone
 * are absent.
 */
export function uniqueByRow(store: Store): Map<number, Bytes> {
  const out = new Map<number, Bytes>();
  const rows = store.stmt(
    `WITH uses AS (${USES}),
     single AS (SELECT block, min(snapshot) AS s, max(lsize) AS lsize FROM uses GROUP BY block
       HAVING min(snapshot) = max(snapshot))
     SELECT single.s AS s, sum(b.length) AS n, sum(coalesce(single.lsize, b.length)) AS l
     FROM single JOIN blocks b ON b.id = single.block GROUP BY single.s`,
  ).all() as { s: number; n: number; l: number }[];
  for (const r of rows) out.set(r.s, { stored: r.n, logical: r.l });
  return out;
}

/**
 * What removing these snapshot rows (snapshots and partial receives) would release: the blocks
 * that no other row uses, each counted once. Reads only.
 *
 * @param ids snapshot row ids
 */
export function freedBy(store: Store, ids: number[]): Bytes {
  if (ids.length === 0) return { stored: 0, logical: 0 };
  const r = store.stmt(
    `WITH gone(id) AS (SELECT value FROM json_each(?)),
     uses AS (${USES}),
     freed AS (SELECT block, max(lsize) AS lsize FROM uses GROUP BY block
       HAVING min(snapshot IN (SELECT id FROM gone)) = 1)
     SELECT coalesce(sum(b.length), 0) AS n, coalesce(sum(coalesce(f.lsize, b.length)), 0) AS l
     FROM freed f JOIN blocks b ON b.id = f.block`,
  ).get(JSON.stringify(ids)) as { n: number; l: number };
  return { stored: r.n, logical: r.l };
}

/**
 * What one snapshot row refers to: its distinct blocks' stored bytes, and the logical bytes of
 * every block of its files (a block that several files hold counts for each, as ZFS counts
 * `logicalreferenced`) and of its spill blocks.
 */
export function referencedBy(store: Store, id: number): Bytes {
  const stored = store.stmt(
    `SELECT coalesce(sum(length), 0) AS n FROM blocks WHERE id IN
     (SELECT block FROM block_map WHERE snapshot = ?1 AND block IS NOT NULL
      UNION SELECT spill_block FROM objects WHERE snapshot = ?1 AND spill_block IS NOT NULL)`,
  ).get(id) as { n: number };
  const logical = store.stmt(
    `SELECT (SELECT coalesce(sum(lsize), 0) FROM block_map WHERE snapshot = ?1 AND kind IN (0, 1))
     + (SELECT coalesce(sum(b.length), 0) FROM objects o JOIN blocks b ON b.id = o.spill_block
        WHERE o.snapshot = ?1) AS n`,
  ).get(id) as { n: number };
  return { stored: stored.n, logical: logical.n };
}

/**
 * ZFS's `written` of a snapshot: the stored bytes of the blocks it refers to that `previous`
 * (the dataset's snapshot before it, or a clone's origin) does not; all it refers to when
 * there is none.
 */
export function writtenSince(store: Store, id: number, previous: number | null): number {
  const r = store.stmt(
    `SELECT coalesce(sum(length), 0) AS n FROM blocks WHERE id IN
     (SELECT block FROM block_map WHERE snapshot = ?1 AND block IS NOT NULL
      UNION SELECT spill_block FROM objects WHERE snapshot = ?1 AND spill_block IS NOT NULL)
     AND id NOT IN
     (SELECT block FROM block_map WHERE snapshot = ?2 AND block IS NOT NULL
      UNION SELECT spill_block FROM objects WHERE snapshot = ?2 AND spill_block IS NOT NULL)`,
  ).get(id, previous ?? -1) as { n: number };
  return r.n;
}
