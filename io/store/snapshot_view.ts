/**
 * A stored snapshot, readable as a {@linkcode SnapshotView}: objects with their bonus and
 * spill, blocks as logical bytes (decompressed from how they came in the stream).
 *
 * @module
 */

import { compressionName, decompressBlock } from "../../core/compress/mod.ts";
import { FEATURE } from "../../core/stream/constants.ts";
import { hasFeature } from "../../core/stream/record.ts";
import type { ObjectInfo, SnapshotView } from "../../core/receive/snapshot_view.ts";
import type { BlockPlace } from "../../core/zpl/fs.ts";
import { KIND } from "./snapshot_builder.ts";
import type { SnapshotRow, Store } from "./store.ts";
import type { StatementSync } from "node:sqlite";
import { alignedBytes } from "../aligned_buffer.ts";

/** A block map row. */
export interface MapRow {
  offset: number;
  lsize: number;
  kind: number;
  block: number | null;
  meta: Uint8Array;
}

/** A map row with where its block lies (none for a row without a block). */
type PlaceRow = Omit<MapRow, "block"> & {
  pack: number | null;
  at: number | null;
  length: number | null;
  f4: Uint8Array | null;
};

/** An objects row of a raw snapshot, as received. */
export interface RawObjectRow {
  object: number;
  type: number;
  bonustype: number;
  blksz: number;
  bonuslen: number;
  checksumtype: number;
  compress: number;
  raw_bonuslen: number;
  dn_slots: number;
  flags: number;
  indblkshift: number;
  nlevels: number;
  nblkptr: number;
  /** As SQLite gives it: a bigint when beyond 2^53. */
  maxblkid: number | bigint;
  bonus: Uint8Array;
  spill_block: number | null;
  spill_meta: Uint8Array | null;
}

/** Reads one stored snapshot. */
export class StoreSnapshotView implements SnapshotView {
  readonly objsetType: number;
  readonly littleEndian: boolean;
  readonly snapshot: SnapshotRow;
  #store: Store;
  #raw: boolean;
  #objects = new Map<number, ObjectInfo | null>();

  /**
   * @param store the open store
   * @param snapshot the snapshot's row
   */
  constructor(store: Store, snapshot: SnapshotRow) {
    this.#store = store;
    this.snapshot = snapshot;
    this.littleEndian = snapshot.littleEndian;
    this.#raw = hasFeature(snapshot.features, FEATURE.RAW);
    const d = store.db.prepare("SELECT objset_type FROM datasets WHERE id = ?").get(
      snapshot.dataset,
    ) as {
      objset_type: number;
    };
    this.objsetType = d.objset_type;
  }

  /** Bytes of a stored block. */
  blockBytes(block: number): Uint8Array {
    return this.#store.blockBytes(block);
  }

  object(id: number): Promise<ObjectInfo | null> {
    return Promise.resolve(this.objectSync(id));
  }

  /** {@linkcode object}, without a promise. */
  objectSync(id: number): ObjectInfo | null {
    const cached = this.#objects.get(id);
    if (cached !== undefined) return cached;
    const r = this.#store.stmt(
      `SELECT type, bonustype, blksz, bonuslen, dn_slots, maxblkid, bonus, spill_block, spill_meta
       FROM objects WHERE snapshot = ? AND object = ?`,
    ).get(this.snapshot.id, id) as {
      type: number;
      bonustype: number;
      blksz: number;
      bonuslen: number;
      dn_slots: number;
      maxblkid: number | bigint;
      bonus: Uint8Array;
      spill_block: number | null;
      spill_meta: Uint8Array | null;
    } | undefined;
    let info: ObjectInfo | null = null;
    if (r !== undefined) {
      info = {
        object: id,
        type: r.type,
        bonustype: r.bonustype,
        blksz: r.blksz,
        bonuslen: r.bonuslen,
        bonus: r.bonus.subarray(0, r.bonuslen),
        maxblkid: Number(r.maxblkid),
        dnSlots: r.dn_slots,
        spill: r.spill_block === null || r.spill_meta === null
          ? null
          : this.#spill(id, r.spill_block, r.spill_meta),
      };
    }
    if (this.#objects.size > 4096) this.#objects.clear();
    this.#objects.set(id, info);
    return info;
  }

  #spill(id: number, block: number, meta: Uint8Array): Uint8Array | null {
    const v = new DataView(meta.buffer, meta.byteOffset, meta.byteLength);
    const length = Number(v.getBigUint64(16, true));
    const compression = meta[33]!;
    // Raw: the bonus and the spill block are ciphertext; a view with the key reads them.
    if (this.#raw) return null;
    return decode(compression, this.blockBytes(block), length, `the spill block of object ${id}`);
  }

  /** Whether the snapshot came from a raw (encrypted) stream: its blocks are sealed. */
  get raw(): boolean {
    return this.#raw;
  }

  /** Raw snapshots: the BEGIN nvlist it was received with (crypt_keydata), or null. */
  cryptNvlist(): Uint8Array | null {
    const r = this.#store.stmt("SELECT begin_nvlist FROM snapshot_crypt WHERE snapshot = ?")
      .get(this.snapshot.id) as { begin_nvlist: Uint8Array } | undefined;
    return r?.begin_nvlist ?? null;
  }

  /** The objects stored in [from, to), as received (bonus as the stream carried it). */
  rawObjects(from: number, to: number): RawObjectRow[] {
    return this.#store.stmt(
      `SELECT object, type, bonustype, blksz, bonuslen, checksumtype, compress, raw_bonuslen,
       dn_slots, flags, indblkshift, nlevels, nblkptr, maxblkid, bonus, spill_block, spill_meta
       FROM objects WHERE snapshot = ? AND object >= ? AND object < ?
       ORDER BY object`,
    ).all(this.snapshot.id, from, to) as unknown as RawObjectRow[];
  }

  /**
   * Raw snapshots: every dnode block that holds an object, with its OBJECT_RANGE meta (a block
   * whose objects were all freed since is a hole, and is left out).
   */
  objectRanges(): { firstobj: number; numslots: number; meta: Uint8Array }[] {
    return this.#store.stmt(
      `SELECT r.firstobj, r.numslots, r.meta FROM object_ranges r WHERE r.snapshot = ? AND
       EXISTS (SELECT 1 FROM objects o WHERE o.snapshot = r.snapshot AND
       o.object >= r.firstobj AND o.object < r.firstobj + r.numslots) ORDER BY r.firstobj`,
    ).all(this.snapshot.id) as unknown as {
      firstobj: number;
      numslots: number;
      meta: Uint8Array;
    }[];
  }

  /** Raw snapshots: the dnode block (OBJECT_RANGE) that holds object `id`, or null. */
  objectRange(id: number): { firstobj: number; numslots: number; meta: Uint8Array } | null {
    const r = this.#store.stmt(
      `SELECT firstobj, numslots, meta FROM object_ranges WHERE snapshot = ? AND firstobj <= ?
       ORDER BY firstobj DESC LIMIT 1`,
    ).get(this.snapshot.id, id) as
      | { firstobj: number; numslots: number; meta: Uint8Array }
      | undefined;
    if (r === undefined || id >= r.firstobj + r.numslots) return null;
    return r;
  }

  /** Every block map row's offset and meta of an object (its block pointers' sources). */
  blockMetas(id: number): { offset: number; kind: number; meta: Uint8Array }[] {
    return this.#store.stmt(
      "SELECT offset, kind, meta FROM block_map WHERE snapshot = ? AND object = ? ORDER BY offset",
    ).all(this.snapshot.id, id) as unknown as { offset: number; kind: number; meta: Uint8Array }[];
  }

  /** The block map rows of block `blkid` of an object, in offset order. */
  blockRows(id: number, blkid: number, blksz: number): MapRow[] {
    const start = blkid * blksz;
    return this.#store.stmt(
      `SELECT offset, lsize, kind, block, meta FROM block_map
       WHERE snapshot = ? AND object = ? AND offset >= ? AND offset < ? ORDER BY offset`,
    ).all(this.snapshot.id, id, start, start + blksz) as unknown as MapRow[];
  }

  readBlock(id: number, blkid: number): Promise<Uint8Array | null> {
    return Promise.resolve(this.readBlockSync(id, blkid));
  }

  /** {@linkcode readBlock}, without a promise. */
  readBlockSync(id: number, blkid: number): Uint8Array | null {
    const o = this.objectSync(id);
    if (o === null) return null;
    const start = blkid * o.blksz;
    const rows = this.#store.stmt(
      `SELECT offset, lsize, kind, block, meta FROM block_map
       WHERE snapshot = ? AND object = ? AND offset >= ? AND offset < ? ORDER BY offset`,
    ).all(this.snapshot.id, id, start, start + o.blksz) as unknown as MapRow[];
    // A REDACT record covers many blocks with one row: a block inside it is not a hole.
    if (this.snapshot.redactedRanges) this.#checkNotRedacted(id, start, start + o.blksz);
    if (rows.length === 0) return null;
    const first = rows[0]!;
    if (rows.length === 1 && first.offset === start && first.lsize === o.blksz) {
      return this.#logical(id, first);
    }
    const out = alignedBytes(o.blksz);
    for (const row of rows) {
      const data = this.#logical(id, row);
      const at = row.offset - start;
      out.set(data.subarray(0, Math.min(data.length, o.blksz - at)), at);
    }
    return out;
  }

  /**
   * Where block `blkid` of an object lies in a pack, when it is stored as its logical bytes in
   * one piece (not compressed, not encrypted) and its fletcher-4 (kept at receive) says it is
   * not all zeros (a, the sum of its words, is not 0); else null.
   */
  blockPlace(id: number, blkid: number): BlockPlace | null {
    const o = this.objectSync(id);
    if (o === null || this.#raw) return null;
    const start = blkid * o.blksz;
    const rows = this.#store.stmt(
      `SELECT m.offset, m.lsize, m.kind, m.meta, b.pack, b.offset AS at, b.length, b.f4
       FROM block_map m JOIN blocks b ON b.id = m.block
       WHERE m.snapshot = ? AND m.object = ? AND m.offset >= ? AND m.offset < ?`,
    ).all(this.snapshot.id, id, start, start + o.blksz) as unknown as PlaceRow[];
    return this.#placeOf(rows, start, o.blksz);
  }

  /** A block's place from its map rows (those in its range), as {@linkcode blockPlace} says. */
  #placeOf(rows: PlaceRow[], start: number, blksz: number): BlockPlace | null {
    const r = rows[0];
    if (
      rows.length !== 1 || r === undefined || r.offset !== start || r.lsize !== blksz ||
      r.kind !== KIND.WRITE || r.meta[50] !== 0 || r.pack === null || r.at === null ||
      r.length !== r.lsize || r.f4 === null || r.f4.length !== 32 ||
      r.f4.subarray(0, 8).every((b) => b === 0)
    ) {
      return null;
    }
    return { path: this.#store.packs.path(r.pack), offset: r.at, length: r.length };
  }

  /**
   * {@linkcode blockIds} with each block's {@linkcode blockPlace}, from block `from` on, a
   * query for many blocks (at most `limit` map rows) rather than one a block.
   *
   * @returns the blocks found, in increasing order (empty past the last), and the block id to
   * ask from next
   */
  placedBlocks(
    id: number,
    from: number,
    limit = 4096,
  ): { blocks: { blkid: number; place: BlockPlace | null }[]; next: number } {
    const blocks: { blkid: number; place: BlockPlace | null }[] = [];
    const o = this.objectSync(id);
    if (o === null || o.blksz <= 0) return { blocks, next: from };
    const bs = o.blksz;
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`limit ${limit}`);
    // blockPlace's test of a row, in the query: a row as an array, no blobs brought out. The
    // limit is in the text: bound as a parameter, it made each query cost about 17 us of CPU
    // rather than 2.5 (a small file's one query).
    const stmt = this.#store.stmt(
      `SELECT m.offset, b.pack, b.offset,
         m.lsize = ? AND m.kind = ? AND substr(m.meta, 51, 1) = x'00' AND b.length = m.lsize
           AND length(b.f4) = 32 AND substr(b.f4, 1, 8) != zeroblob(8)
       FROM block_map m LEFT JOIN blocks b ON b.id = m.block
       WHERE m.snapshot = ? AND m.object = ? AND m.offset >= ? ORDER BY m.offset LIMIT ${limit}`,
    ) as StatementSync & { setReturnArrays?: (on: boolean) => void };
    if (typeof stmt.setReturnArrays === "function") stmt.setReturnArrays(true);
    const got = stmt.all(bs, KIND.WRITE, this.snapshot.id, id, from * bs) as unknown[];
    const rows =
      (got.length > 0 && !Array.isArray(got[0])
        ? got.map((r) => Object.values(r as object))
        : got) as [number, number | null, number | null, number | null][];
    const full = rows.length === limit;
    let at = 0;
    while (at < rows.length) {
      const blkid = Math.floor(rows[at]![0] / bs);
      let end = at + 1;
      while (end < rows.length && Math.floor(rows[end]![0] / bs) === blkid) end++;
      if (full && end === rows.length) {
        // The last block's rows may go on past the limit: asked for again from it, or, when
        // it is the only one, placed by its own query.
        if (at > 0) return { blocks, next: blkid };
        const place = this.#raw ? null : this.blockPlace(id, blkid);
        blocks.push({ blkid, place });
        return { blocks, next: blkid + 1 };
      }
      // Placed when the block's range holds one row with a block (rows without one count for
      // the block's id, not for its place, as in blockPlace), at its start, that passes.
      let placed = null;
      let withBlock = 0;
      for (let i = at; i < end; i++) {
        if (rows[i]![1] !== null && withBlock++ === 0) placed = rows[i]!;
      }
      let place: BlockPlace | null = null;
      if (!this.#raw && withBlock === 1 && placed![0] === blkid * bs && placed![3] === 1) {
        place = { path: this.#store.packs.path(placed![1]!), offset: placed![2]!, length: bs };
      }
      blocks.push({ blkid, place });
      at = end;
    }
    return { blocks, next: blocks.length === 0 ? from : blocks.at(-1)!.blkid + 1 };
  }

  /**
   * Raw snapshots: where each block of an object lies in a pack, sealed, with its map row's
   * meta, by block id, for the blocks that are one WRITE row of the whole block (`length` is
   * what the pack holds); the other blocks are left out. One query for the whole object.
   */
  storedPlaces(id: number): Map<number, BlockPlace & { meta: Uint8Array }> {
    const out = new Map<number, BlockPlace & { meta: Uint8Array }>();
    const o = this.objectSync(id);
    if (o === null || o.blksz <= 0) return out;
    const rows = this.#store.stmt(
      `SELECT m.offset, m.lsize, m.kind, m.meta, b.pack, b.offset AS at, b.length
       FROM block_map m LEFT JOIN blocks b ON b.id = m.block
       WHERE m.snapshot = ? AND m.object = ? ORDER BY m.offset`,
    ).all(this.snapshot.id, id) as unknown as (MapRow & {
      pack: number | null;
      at: number | null;
      length: number | null;
    })[];
    const several = new Set<number>();
    for (const r of rows) {
      const blkid = Math.floor(r.offset / o.blksz);
      if (out.has(blkid) || several.has(blkid)) {
        out.delete(blkid);
        several.add(blkid);
        continue;
      }
      if (
        r.offset !== blkid * o.blksz || r.lsize !== o.blksz || r.kind !== KIND.WRITE ||
        r.pack === null || r.at === null || r.length === null
      ) {
        several.add(blkid);
        continue;
      }
      out.set(blkid, {
        path: this.#store.packs.path(r.pack),
        offset: r.at,
        length: r.length,
        meta: r.meta,
      });
    }
    return out;
  }

  /**
   * The byte ranges of an object that a redacted send left out (its REDACT records), in
   * increasing order; empty when there are none.
   */
  redactedRanges(id: number): { offset: number; length: number }[] {
    if (!this.snapshot.redactedRanges) return [];
    const rows = this.#store.stmt(
      `SELECT offset, lsize FROM block_map WHERE snapshot = ? AND object = ? AND kind = ?
       ORDER BY offset`,
    ).all(this.snapshot.id, id, KIND.REDACTED) as { offset: number; lsize: number }[];
    return rows.map((r) => ({ offset: r.offset, length: r.lsize }));
  }

  #checkNotRedacted(id: number, from: number, to: number): void {
    const r = this.#store.stmt(
      `SELECT offset, lsize FROM block_map WHERE snapshot = ? AND object = ? AND offset < ?
       AND kind = ? ORDER BY offset DESC LIMIT 1`,
    ).get(this.snapshot.id, id, from, KIND.REDACTED) as
      | { offset: number; lsize: number }
      | undefined;
    if (r !== undefined && r.offset + r.lsize > from && from < to) {
      throw new TypeError(
        `bytes ${from}..${Math.min(to, r.offset + r.lsize)} of object ${id} were redacted ` +
          `from the stream`,
      );
    }
  }

  /** The logical bytes of one block map row. */
  #logical(id: number, row: MapRow): Uint8Array {
    const where = `the block at offset ${row.offset} of object ${id}`;
    if (row.kind === KIND.REDACTED || row.block === null) {
      throw new TypeError(`${where} was redacted from the stream`);
    }
    const stored = this.blockBytes(row.block);
    const m = row.meta;
    if (row.kind === KIND.EMBEDDED) return decodeEmbedded(row, stored, where);
    if (this.#raw) throw new TypeError(`${where} is encrypted (raw send)`);
    return decode(m[50]!, stored, row.lsize, where);
  }

  /**
   * The block ids of an object that hold something, in increasing order, so that readers skip
   * holes without asking for each block (a hostile size cannot make them walk forever).
   */
  async *blockIds(id: number): AsyncIterable<number> {
    const o = this.objectSync(id);
    if (o === null || o.blksz <= 0) return;
    const rows = this.#store.stmt(
      "SELECT offset FROM block_map WHERE snapshot = ? AND object = ? ORDER BY offset",
    ).all(this.snapshot.id, id) as { offset: number }[];
    let last = -1;
    for (const r of rows) {
      const blkid = Math.floor(r.offset / o.blksz);
      if (blkid !== last) yield blkid;
      last = blkid;
    }
  }

  async *objectIds(): AsyncIterable<number> {
    const rows = this.#store.stmt("SELECT object FROM objects WHERE snapshot = ? ORDER BY object")
      .all(this.snapshot.id) as { object: number }[];
    for (const r of rows) yield r.object;
  }
}

/**
 * The logical bytes of an embedded block (kept unsealed in raw sends too): its payload
 * decompressed to the lsize its WRITE_EMBEDDED said, zero-filled up to the row's size.
 */
export function decodeEmbedded(row: MapRow, stored: Uint8Array, where: string): Uint8Array {
  const m = row.meta;
  const lsize = new DataView(m.buffer, m.byteOffset, m.byteLength).getUint32(48, true);
  const data = decode(m[40]!, stored, lsize, where);
  if (lsize >= row.lsize) return data;
  const out = new Uint8Array(row.lsize);
  out.set(data);
  return out;
}

/**
 * The logical bytes of a stored block: decompressed with `compression` (ZIO_COMPRESS_*) to
 * `lsize`; a `TypeError` naming `where` when the codec fails.
 */
export function decode(
  compression: number,
  stored: Uint8Array,
  lsize: number,
  where: string,
): Uint8Array {
  if (compression === 0) {
    return stored.length === lsize ? stored : decompressBlock(2, stored, lsize);
  }
  try {
    return decompressBlock(compression, stored, lsize);
  } catch (e) {
    const err = e as Error;
    throw new TypeError(
      `${where} is compressed with ${compressionName(compression)}, which cannot be read: ` +
        err.message,
    );
  }
}
