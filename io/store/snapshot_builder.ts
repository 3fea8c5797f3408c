/**
 * A snapshot being received: the store's side of {@linkcode ReceiveTarget}. It writes rows
 * of the new snapshot (which start as a copy of its parent's) and appends new blocks to the
 * packs, all inside the store's open transaction.
 *
 * @module
 */

import type { ReceiveTarget, StoredObject } from "../../core/receive/receive.ts";
import {
  type Checksum,
  type DrrObjectRange,
  type DrrRecord,
  type DrrSpill,
  type DrrWrite,
  type DrrWriteByref,
  type DrrWriteEmbedded,
  encodeRecord,
  LAYOUTS,
} from "../../core/stream/record.ts";
import type { Store } from "./store.ts";

/** The largest block before large blocks (`SPA_OLD_MAXBLOCKSIZE`). */
const SPA_OLD_MAXBLOCKSIZE = 128 * 1024;

/** Block map kinds. */
export const KIND = { WRITE: 0, EMBEDDED: 1, REDACTED: 2 } as const;

const META_END = LAYOUTS.map((fields) =>
  fields.reduce((end, f) => Math.max(end, f.offset + f.size), 8)
);

/** Fields that say where a block is, not what it is: left out of its metadata. */
const PLACE_FIELDS = ["object", "offset", "toguid", "refguid", "refobject", "refoffset"];

/**
 * A record's fields, little-endian, up to the end of its type's layout, with the fields that
 * place it (object, offset, guids) zeroed: a block's metadata, the same wherever it is used.
 */
export function recordMeta(rec: DrrRecord | { type: number }): Uint8Array {
  const fields: Record<string, unknown> = { ...rec };
  for (const f of PLACE_FIELDS) if (f in fields) fields[f] = 0n;
  delete fields.record_checksum;
  return encodeRecord(fields as unknown as DrrRecord, true).slice(0, META_END[rec.type]);
}

/** A checksum as the store keeps it: four u64, little-endian. */
export function encodeChecksum(ck: Checksum): Uint8Array {
  const out = new Uint8Array(32);
  const v = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) v.setBigUint64(i * 8, ck[i]!, true);
  return out;
}

/** The inverse of {@linkcode encodeChecksum}; null for anything but 32 bytes. */
export function decodeChecksum(bytes: Uint8Array | null): Checksum | null {
  if (bytes === null || bytes.length !== 32) return null;
  const v = new DataView(bytes.buffer, bytes.byteOffset, 32);
  return [
    v.getBigUint64(0, true),
    v.getBigUint64(8, true),
    v.getBigUint64(16, true),
    v.getBigUint64(24, true),
  ];
}

/** An objects row as SQLite gives it, integers as bigints. */
interface ObjectRow {
  type: bigint;
  bonustype: bigint;
  blksz: bigint;
  bonuslen: bigint;
  checksumtype: bigint;
  compress: bigint;
  dn_slots: bigint;
  flags: bigint;
  raw_bonuslen: bigint;
  indblkshift: bigint;
  nlevels: bigint;
  nblkptr: bigint;
  maxblkid: bigint;
  bonus: Uint8Array;
}

/** Writes one snapshot's objects and blocks. */
export class SnapshotBuilder implements ReceiveTarget {
  #store: Store;
  #snapshot: number;
  #toguid: bigint;
  #resolveGuid: (guid: bigint) => number | null;
  /** Blocks appended and bytes new to the store, for reports. */
  newBlocks = 0;
  newBytes = 0;
  /** Whether a block over 128 KiB was written (the dataset's `large_blocks` becomes active). */
  largeBlocks = false;
  /** Whether a range was marked redacted. */
  redacted = false;

  /**
   * @param store the store, with a transaction open
   * @param snapshot the new snapshot's id
   * @param toguid its guid (WRITE_BYREF to it refers to itself)
   * @param resolveGuid the id of an earlier snapshot by guid (the guid map), or null
   */
  constructor(
    store: Store,
    snapshot: number,
    toguid: bigint,
    resolveGuid: (guid: bigint) => number | null,
  ) {
    this.#store = store;
    this.#snapshot = snapshot;
    this.#toguid = toguid;
    this.#resolveGuid = resolveGuid;
  }

  /** The id of the snapshot being written. */
  get snapshot(): number {
    return this.#snapshot;
  }

  /** Makes this snapshot start as a copy of `parent` (incrementals and clones). */
  copyFrom(parent: number): void {
    const s = this.#store;
    s.stmt(
      `INSERT INTO objects SELECT ?, object, type, bonustype, blksz, bonuslen, checksumtype,
       compress, dn_slots, flags, raw_bonuslen, indblkshift, nlevels, nblkptr, maxblkid, bonus,
       spill_block, spill_meta FROM objects WHERE snapshot = ?`,
    ).run(this.#snapshot, parent);
    s.stmt(
      `INSERT INTO block_map SELECT ?, object, offset, lsize, kind, block, meta
       FROM block_map WHERE snapshot = ?`,
    ).run(this.#snapshot, parent);
    s.stmt(
      `INSERT INTO object_ranges SELECT ?, firstobj, numslots, meta
       FROM object_ranges WHERE snapshot = ?`,
    ).run(this.#snapshot, parent);
  }

  getObject(object: number): StoredObject | null {
    const stmt = this.#store.stmt(
      `SELECT type, bonustype, blksz, bonuslen, checksumtype, compress, dn_slots, flags,
       raw_bonuslen, indblkshift, nlevels, nblkptr, maxblkid, bonus
       FROM objects WHERE snapshot = ? AND object = ?`,
    );
    // One query: integers as bigints, since maxblkid may be beyond 2^53.
    stmt.setReadBigInts(true);
    const r = stmt.get(this.#snapshot, object) as ObjectRow | undefined;
    if (r === undefined) return null;
    return {
      object,
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
      maxblkid: BigInt.asUintN(64, r.maxblkid),
      bonus: r.bonus,
    };
  }

  putObject(o: StoredObject): void {
    this.#store.stmt(
      `INSERT INTO objects (snapshot, object, type, bonustype, blksz, bonuslen, checksumtype,
       compress, dn_slots, flags, raw_bonuslen, indblkshift, nlevels, nblkptr, maxblkid, bonus)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (snapshot, object) DO UPDATE SET type = excluded.type,
       bonustype = excluded.bonustype, blksz = excluded.blksz, bonuslen = excluded.bonuslen,
       checksumtype = excluded.checksumtype, compress = excluded.compress,
       dn_slots = excluded.dn_slots, flags = excluded.flags, raw_bonuslen = excluded.raw_bonuslen,
       indblkshift = excluded.indblkshift, nlevels = excluded.nlevels, nblkptr = excluded.nblkptr,
       maxblkid = excluded.maxblkid, bonus = excluded.bonus`,
    ).run(
      this.#snapshot,
      o.object,
      o.type,
      o.bonustype,
      o.blksz,
      o.bonuslen,
      o.checksumtype,
      o.compress,
      o.dnSlots,
      o.flags,
      o.rawBonuslen,
      o.indblkshift,
      o.nlevels,
      o.nblkptr,
      BigInt.asIntN(64, o.maxblkid),
      o.bonus,
    );
  }

  objectRange(rec: DrrObjectRange): void {
    const firstobj = Number(rec.firstobj);
    if (!Number.isSafeInteger(firstobj)) return; // no object can be there
    this.#store.stmt(
      `INSERT INTO object_ranges (snapshot, firstobj, numslots, meta) VALUES (?, ?, ?, ?)
       ON CONFLICT (snapshot, firstobj) DO UPDATE SET numslots = excluded.numslots,
       meta = excluded.meta`,
    ).run(this.#snapshot, firstobj, Number(rec.numslots), recordMeta(rec));
  }

  freeObject(object: number): void {
    const s = this.#store;
    s.stmt("DELETE FROM block_map WHERE snapshot = ? AND object = ?").run(this.#snapshot, object);
    s.stmt("DELETE FROM objects WHERE snapshot = ? AND object = ?").run(this.#snapshot, object);
  }

  /** The next allocated object at or after `from`, for skipping empty stretches. */
  nextObject(from: number): number | null {
    const r = this.#store.stmt(
      "SELECT min(object) AS o FROM objects WHERE snapshot = ? AND object >= ?",
    ).get(this.#snapshot, from) as { o: number | null };
    return r.o;
  }

  freeRange(object: number, from: number, to: number | null): void {
    const s = this.#store;
    const end = to ?? Number.MAX_SAFE_INTEGER;
    if (end <= from) return;
    const straddling = s.stmt(
      `SELECT offset, lsize, kind, block, meta FROM block_map WHERE snapshot = ? AND object = ?
       AND offset < ? AND offset + lsize > ? AND (offset < ? OR offset + lsize > ?)`,
    ).all(this.#snapshot, object, end, from, from, end) as {
      offset: number;
      lsize: number;
      kind: number;
      block: number | null;
      meta: Uint8Array;
    }[];
    s.stmt(
      "DELETE FROM block_map WHERE snapshot = ? AND object = ? AND offset >= ? AND offset + lsize <= ?",
    ).run(this.#snapshot, object, from, end);
    for (const row of straddling) this.#zeroPart(object, row, from, end);
  }

  /** Zeroes the part of a block that a FREE covers, keeping the rest. */
  #zeroPart(
    object: number,
    row: { offset: number; lsize: number; kind: number; block: number | null; meta: Uint8Array },
    from: number,
    end: number,
  ): void {
    // Part of a redacted block freed: the rest of it is still unknown, so it stays redacted.
    if (row.kind === KIND.REDACTED) return;
    if (row.kind !== KIND.WRITE || row.block === null) {
      throw new RangeError(
        `FREE of part of object ${object}'s block at ${row.offset}, which is not plain data`,
      );
    }
    const meta = new DataView(row.meta.buffer, row.meta.byteOffset, row.meta.byteLength);
    if (row.meta[50] !== 0 || meta.getBigUint64(104, true) !== 0n) {
      throw new RangeError(
        `FREE of part of object ${object}'s block at ${row.offset}, which is compressed or encrypted`,
      );
    }
    const data = this.#readBlock(row.block).slice();
    const lo = Math.max(from, row.offset) - row.offset;
    const hi = Math.min(end, row.offset + row.lsize) - row.offset;
    data.fill(0, lo, hi);
    const block = this.#putBlock(data);
    this.#store.stmt(
      "UPDATE block_map SET block = ? WHERE snapshot = ? AND object = ? AND offset = ?",
    )
      .run(block, this.#snapshot, object, row.offset);
  }

  maxOffset(object: number): number {
    const r = this.#store.stmt(
      "SELECT max(offset + lsize) AS m FROM block_map WHERE snapshot = ? AND object = ? AND kind != 2",
    ).get(this.#snapshot, object) as { m: number | null };
    return r.m ?? 0;
  }

  #readBlock(block: number): Uint8Array {
    return this.#store.blockBytes(block);
  }

  /**
   * Stores bytes once: an existing block with the same content hash is reused.
   *
   * @param f4 the bytes' little-endian fletcher-4, when known, kept for send
   */
  #putBlock(data: Uint8Array, f4?: Checksum): number {
    const s = this.#store;
    const hash = s.hashBlock(data);
    const rotated = s.packs.rotateIfFull();
    if (rotated !== null) {
      s.stmt("INSERT OR IGNORE INTO packs (id, committed) VALUES (?, 0)").run(rotated);
    }
    // One statement for a new block (most are): the row goes in where its bytes will go, or
    // not at all when the hash is there already.
    const at = s.packs.position;
    const f4Bytes = f4 === undefined ? null : encodeChecksum(f4);
    const r = s.stmt(
      `INSERT INTO blocks (hash, pack, offset, length, f4) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (hash) DO NOTHING`,
    ).run(hash, at.pack, at.length, data.length, f4Bytes);
    if (r.changes === 0) {
      const found = s.stmt("SELECT id FROM blocks WHERE hash = ?").get(hash) as { id: number };
      if (f4Bytes !== null) {
        s.stmt("UPDATE blocks SET f4 = ? WHERE id = ? AND f4 IS NULL").run(f4Bytes, found.id);
      }
      return found.id;
    }
    const put = s.packs.append(data);
    if (put.pack !== at.pack || put.offset !== at.length) {
      throw new Error(
        `pack append landed at ${put.pack}:${put.offset}, not ${at.pack}:${at.length}`,
      );
    }
    this.newBlocks++;
    this.newBytes += data.length;
    return Number(r.lastInsertRowid);
  }

  #map(
    object: number,
    offset: number,
    lsize: number,
    kind: number,
    block: number | null,
    meta: Uint8Array,
  ) {
    this.#store.stmt(
      "INSERT OR REPLACE INTO block_map (snapshot, object, offset, lsize, kind, block, meta) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ).run(this.#snapshot, object, offset, lsize, kind, block, meta);
  }

  write(rec: DrrWrite, payload: Uint8Array, fletcher4Le?: Checksum): void {
    const object = Number(rec.object), offset = Number(rec.offset);
    const lsize = Number(rec.logical_size);
    if (lsize > SPA_OLD_MAXBLOCKSIZE) this.largeBlocks = true;
    // A write replaces whatever lay in its range (the kernel writes whole blocks).
    this.#store.stmt(
      "DELETE FROM block_map WHERE snapshot = ? AND object = ? AND offset > ? AND offset < ?",
    ).run(this.#snapshot, object, offset, offset + lsize);
    this.#map(
      object,
      offset,
      lsize,
      KIND.WRITE,
      this.#putBlock(payload, fletcher4Le),
      recordMeta(rec),
    );
  }

  writeEmbedded(rec: DrrWriteEmbedded, payload: Uint8Array): void {
    const object = Number(rec.object), offset = Number(rec.offset);
    const data = payload.subarray(0, rec.psize);
    this.#map(
      object,
      offset,
      Number(rec.length),
      KIND.EMBEDDED,
      this.#putBlock(data),
      recordMeta(rec),
    );
  }

  writeByref(rec: DrrWriteByref): boolean {
    const from = rec.refguid === this.#toguid ? this.#snapshot : this.#resolveGuid(rec.refguid);
    if (from === null) return false;
    const r = this.#store.stmt(
      "SELECT lsize, kind, block, meta FROM block_map WHERE snapshot = ? AND object = ? AND offset = ?",
    ).get(from, Number(rec.refobject), Number(rec.refoffset)) as
      | { lsize: number; kind: number; block: number | null; meta: Uint8Array }
      | undefined;
    if (r === undefined || r.block === null || BigInt(r.lsize) !== rec.length) return false;
    if (r.lsize > SPA_OLD_MAXBLOCKSIZE) this.largeBlocks = true;
    this.#map(Number(rec.object), Number(rec.offset), r.lsize, r.kind, r.block, r.meta);
    return true;
  }

  setSpill(object: number, rec: DrrSpill | null, payload: Uint8Array | null): void {
    const block = rec === null || payload === null ? null : this.#putBlock(payload);
    this.#store.stmt(
      "UPDATE objects SET spill_block = ?, spill_meta = ? WHERE snapshot = ? AND object = ?",
    )
      .run(block, rec === null ? null : recordMeta(rec), this.#snapshot, object);
  }

  redact(object: number, offset: number, length: number): void {
    this.redacted = true;
    this.#map(object, offset, length, KIND.REDACTED, null, recordMeta({ type: 10 }));
  }
}
