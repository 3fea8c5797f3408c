/**
 * A fingerprint of everything a store shows: its snapshots and, for each, every object row
 * and the bytes of every block it refers to. Two equal fingerprints mean nothing visible
 * changed.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { Store } from "../../io/store/store.ts";

/**
 * Snapshot name -> sha256 of its content. With `meta: false`, the blocks' record metadata
 * (checksum type, dedup key, ...) is left out, so that the same data sent by different
 * routes (a dedup stream, an incremental chain) compares equal.
 */
export function storeFingerprint(
  dir: string,
  options: { meta?: boolean } = {},
): Record<string, string> {
  const store = Store.open(dir);
  try {
    const out: Record<string, string> = {};
    for (const d of store.datasets()) {
      for (const s of store.snapshots(d.id)) {
        const h = createHash("sha256");
        if (options.meta !== false) {
          h.update(`${s.guid} ${s.fromguid} ${s.creationTime} ${d.origin}\n`);
        }
        const objects = store.db.prepare(
          "SELECT * FROM objects WHERE snapshot = ? ORDER BY object",
        );
        objects.setReadBigInts(true);
        for (const o of objects.all(s.id) as Record<string, unknown>[]) {
          const { snapshot: _s, spill_block, ...rest } = o;
          h.update(
            JSON.stringify(
              rest,
              (_k, v) =>
                typeof v === "bigint"
                  ? v.toString()
                  : v instanceof Uint8Array
                  ? [...v].join(",")
                  : v,
            ),
          );
          if (spill_block !== null) h.update(blockBytes(store, Number(spill_block)));
        }
        const blocks = store.db.prepare(
          "SELECT object, offset, lsize, kind, block, meta FROM block_map WHERE snapshot = ? ORDER BY object, offset",
        );
        for (
          const b of blocks.all(s.id) as {
            object: number;
            offset: number;
            lsize: number;
            kind: number;
            block: number | null;
            meta: Uint8Array;
          }[]
        ) {
          h.update(`${b.object} ${b.offset} ${b.lsize} ${b.kind}`);
          if (options.meta !== false) h.update(b.meta);
          if (b.block !== null) h.update(blockBytes(store, b.block));
        }
        out[`${d.name}@${s.name}`] = h.digest("hex");
      }
    }
    return out;
  } finally {
    store.close();
  }
}

function blockBytes(store: Store, id: number): Uint8Array {
  const r = store.db.prepare("SELECT pack, offset, length FROM blocks WHERE id = ?").get(id) as {
    pack: number;
    offset: number;
    length: number;
  };
  return store.packs.read(r.pack, r.offset, r.length);
}
