/**
 * A stored snapshot as a {@linkcode SendSource}: its object rows and block map, read from the
 * index, and block bytes from the packs.
 *
 * @module
 */

import type { SendBlock, SendObject, SendSource } from "../../core/send.ts";
import type { SnapshotRow, Store } from "./store.ts";

/** Reads one stored snapshot for sending. */
export class StoreSendSource implements SendSource {
  readonly guid: bigint;
  readonly creationTime: bigint;
  readonly objsetType: number;
  readonly features: bigint;
  readonly beginFlags: number;
  #store: Store;
  #snapshot: number;
  #objects: SendObject[] | null = null;
  /** Where the blocks of the object last listed lie, to read them without a query each. */
  #places = new Map<number, { pack: number; offset: number; length: number }>();
  /** One buffer for block bytes: each is written out before the next is read. */
  #buffer = new Uint8Array(1 << 17);

  /**
   * @param store the open store
   * @param row the snapshot
   */
  constructor(store: Store, row: SnapshotRow) {
    this.#store = store;
    this.#snapshot = row.id;
    this.guid = row.guid;
    this.creationTime = BigInt(row.creationTime);
    this.features = row.features;
    this.beginFlags = row.beginFlags;
    const d = store.db.prepare("SELECT objset_type FROM datasets WHERE id = ?").get(
      row.dataset,
    ) as {
      objset_type: number;
    };
    this.objsetType = d.objset_type;
  }

  objects(): Iterable<SendObject> {
    if (this.#objects === null) {
      const stmt = this.#store.db.prepare(
        "SELECT * FROM objects WHERE snapshot = ? ORDER BY object",
      );
      stmt.setReadBigInts(true);
      this.#objects = (stmt.all(this.#snapshot) as Record<string, unknown>[]).map((r) => ({
        object: Number(r.object),
        type: Number(r.type),
        bonustype: Number(r.bonustype),
        blksz: Number(r.blksz),
        bonuslen: Number(r.bonuslen),
        checksumtype: Number(r.checksumtype),
        compress: Number(r.compress),
        dnSlots: Number(r.dn_slots),
        flags: Number(r.flags),
        rawBonuslen: Number(r.raw_bonuslen),
        indblkshift: Number(r.indblkshift),
        nlevels: Number(r.nlevels),
        nblkptr: Number(r.nblkptr),
        maxblkid: BigInt.asUintN(64, r.maxblkid as bigint),
        bonus: r.bonus as Uint8Array,
        spill: r.spill_block === null
          ? null
          : { meta: r.spill_meta as Uint8Array, block: Number(r.spill_block) },
      }));
    }
    return this.#objects;
  }

  blocks(object: number): SendBlock[] {
    const rows = this.#store.stmt(
      `SELECT m.offset, m.lsize, m.kind, m.block, m.meta, b.pack, b.offset AS at, b.length
       FROM block_map m LEFT JOIN blocks b ON b.id = m.block
       WHERE m.snapshot = ? AND m.object = ? ORDER BY m.offset`,
    ).all(this.#snapshot, object) as unknown as (SendBlock & {
      pack: number | null;
      at: number | null;
      length: number | null;
    })[];
    // Where this object's blocks lie: blockData needs no query of its own.
    this.#places.clear();
    for (const r of rows) {
      if (r.block !== null && r.pack !== null) {
        this.#places.set(r.block, { pack: r.pack, offset: r.at!, length: r.length! });
      }
    }
    return rows.map((r) => ({
      offset: r.offset,
      lsize: r.lsize,
      kind: r.kind,
      block: r.block,
      meta: r.meta,
    }));
  }

  /** The block's bytes, in a buffer reused by the next call: write them out before asking again. */
  blockData(block: number): Uint8Array {
    const at = this.#places.get(block) ?? this.#store.blockPlace(block);
    if (this.#buffer.length < at.length) this.#buffer = new Uint8Array(at.length);
    return this.#store.packs.readInto(at.pack, at.offset, this.#buffer.subarray(0, at.length));
  }

  blockHash(block: number): Uint8Array {
    const r = this.#store.stmt("SELECT hash FROM blocks WHERE id = ?").get(block) as {
      hash: Uint8Array;
    };
    return r.hash;
  }
}
