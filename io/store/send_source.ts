/**
 * A stored snapshot as a {@linkcode SendSource}: its object rows and block map, read from the
 * index, and block bytes from the packs.
 *
 * @module
 */

import { nodeCrypto } from "../node_crypto.ts";
import type { SQLInputValue, StatementSync } from "node:sqlite";
import type { BlockPiece, SendBlock, SendObject, SendSource } from "../../core/send/send.ts";
import type { PayloadRef } from "../../core/stream/writer.ts";
import type { FilePlace } from "../stream_output.ts";
import { decodeChecksum } from "./snapshot_builder.ts";
import type { SnapshotRow, Store } from "./store.ts";
import { alignedBytes } from "../aligned_buffer.ts";

/** A block map row: object, offset, lsize, kind, block, meta, pack, offset, length, f4. */
type Row = [
  number,
  number,
  number,
  number,
  number | null,
  Uint8Array,
  number | null,
  number | null,
  number | null,
  Uint8Array | null,
];

/**
 * A statement's rows as arrays (columns in order), without an object per row where node:sqlite
 * can (`setReturnArrays`, newer than its type declarations).
 */
function rowArrays(stmt: StatementSync, ...params: SQLInputValue[]): Iterator<Row> {
  const s = stmt as StatementSync & { setReturnArrays?: (on: boolean) => void };
  if (typeof s.setReturnArrays === "function") {
    s.setReturnArrays(true);
    return s.iterate(...params) as unknown as Iterator<Row>;
  }
  return (function* () {
    for (const r of s.iterate(...params)) yield Object.values(r) as Row;
  })();
}

/** Options of {@linkcode StoreSendSource}. */
export interface StoreSendSourceOptions {
  /**
   * Hand out blocks whose fletcher-4 the store holds as {@linkcode PayloadRef}s to their pack
   * place, for a writer that copies them in the kernel; otherwise every block is read.
   */
  payloadRefs?: boolean;
}

/** Reads one stored snapshot for sending. */
export class StoreSendSource implements SendSource {
  readonly guid: bigint;
  readonly creationTime: bigint;
  readonly objsetType: number;
  readonly features: bigint;
  readonly beginFlags: number;
  readonly redactSnaps: bigint[] | null;
  #store: Store;
  #snapshot: number;
  #objects: SendObject[] | null = null;
  /** The rows of the object last listed, by block: where each lies, without a query each. */
  #places = new Map<number, Row>();
  #refs: boolean;
  /** The walk of the block map that {@linkcode blocks} answers from. */
  #cursor: { rows: Iterator<Row>; next: Row | null; object: number } | null = null;
  /** Each pack as the place of a run (offset 0: each payload gives its own). */
  #packPlaces = new Map<number, FilePlace>();
  /** One buffer for block bytes: each is written out before the next is read. */
  #buffer = alignedBytes(1 << 17);

  /**
   * @param store the open store
   * @param row the snapshot
   * @param options whether to give payload references
   */
  constructor(store: Store, row: SnapshotRow, options: StoreSendSourceOptions = {}) {
    this.#store = store;
    this.#refs = options.payloadRefs === true;
    this.#snapshot = row.id;
    this.guid = row.guid;
    this.creationTime = BigInt(row.creationTime);
    this.features = row.features;
    this.beginFlags = row.beginFlags;
    this.redactSnaps = row.redactSnaps;
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
    // One query walks the whole block map in (object, offset) order: a send asks for the
    // objects in increasing order (once for the features, once to send), so a cursor answers
    // each from where the last stopped; an earlier object starts it again.
    let c = this.#cursor;
    if (c === null || object <= c.object) {
      c?.rows.return?.();
      const stmt = this.#store.db.prepare(
        `SELECT m.object, m.offset, m.lsize, m.kind, m.block, m.meta, b.pack, b.offset AS at,
           b.length, b.f4
         FROM block_map m LEFT JOIN blocks b ON b.id = m.block
         WHERE m.snapshot = ? ORDER BY m.object, m.offset`,
      );
      c = this.#cursor = { rows: rowArrays(stmt, this.#snapshot), next: null, object };
      c.next = c.rows.next().value ?? null;
    }
    c.object = object;
    // Where this object's blocks lie: blockData and blockPiece need no query of their own.
    this.#places.clear();
    const out: SendBlock[] = [];
    let r = c.next;
    while (r !== null && r[0] < object) r = c.rows.next().value ?? null;
    for (; r !== null && r[0] === object; r = c.rows.next().value ?? null) {
      const block = r[4];
      if (block !== null && r[6] !== null) this.#places.set(block, r);
      out.push({ offset: r[1], lsize: r[2], kind: r[3], block, meta: r[5] });
    }
    c.next = r;
    // Past the last object, or at the end of the map: let the statement go (an unfinished one
    // would hold the index's read transaction open).
    const last = this.#objects?.[this.#objects.length - 1]?.object ?? Infinity;
    if (r === null || object >= last) {
      c.rows.return?.();
      this.#cursor = null;
    }
    return out;
  }

  /**
   * A stored block of each class that decides how blocks go out and what the stream's features
   * are (kind, held or not, over 128 KiB or not, the codec and embedded type bytes of its
   * metadata): one grouping query instead of every block.
   */
  blockClasses(): SendBlock[] {
    return this.#store.stmt(
      `SELECT max(lsize) AS lsize, offset, kind, block, meta FROM block_map WHERE snapshot = ?
       GROUP BY kind, block IS NULL, lsize > 131072, substr(meta, 41, 2), substr(meta, 51, 1)`,
    ).all(this.#snapshot) as unknown as SendBlock[];
  }

  /** The block's bytes, in a buffer reused by the next call: write them out before asking again. */
  blockData(block: number): Uint8Array {
    const r = this.#places.get(block);
    const at = r === undefined
      ? this.#store.blockPlace(block)
      : { pack: r[6]!, offset: r[7]!, length: r[8]! };
    if (this.#buffer.length < at.length) this.#buffer = alignedBytes(at.length);
    return this.#store.packs.readInto(at.pack, at.offset, this.#buffer.subarray(0, at.length));
  }

  /** The block by reference, when asked for, little-endian, and its fletcher-4 is stored. */
  blockRef(block: number, littleEndian: boolean): PayloadRef<FilePlace> | null {
    if (!this.#refs || !littleEndian) return null;
    const r = this.#places.get(block);
    const f4 = decodeChecksum(r?.[9] ?? null);
    if (r === undefined || f4 === null) return null;
    const path = this.#store.packs.path(r[6]!);
    return { length: r[8]!, fletcher4: f4, place: { path, offset: r[7]! } };
  }

  /** The block as a piece of a run of payloads in its pack, as {@linkcode blockRef} gives it. */
  blockPiece(block: number): BlockPiece<FilePlace> | null {
    const r = this.#refs ? this.#places.get(block) : undefined;
    const f4 = r?.[9];
    if (r === undefined || f4 === null || f4 === undefined || f4.length !== 32) return null;
    const pack = r[6]!;
    let place = this.#packPlaces.get(pack);
    if (place === undefined) {
      place = { path: this.#store.packs.path(pack), offset: 0 };
      this.#packPlaces.set(pack, place);
    }
    return { place, offset: r[7]!, length: r[8]!, fletcher4: f4 };
  }

  /** Raw snapshots: the BEGIN nvlist the snapshot was received with, or null. */
  cryptNvlist(): Uint8Array | null {
    const r = this.#store.stmt("SELECT begin_nvlist FROM snapshot_crypt WHERE snapshot = ?")
      .get(this.#snapshot) as { begin_nvlist: Uint8Array } | undefined;
    return r?.begin_nvlist ?? null;
  }

  /** Raw snapshots: the stored OBJECT_RANGE of each dnode block, by first object. */
  objectRanges(): Map<number, Uint8Array> {
    const rows = this.#store.stmt(
      "SELECT firstobj, meta FROM object_ranges WHERE snapshot = ? ORDER BY firstobj",
    ).all(this.#snapshot) as { firstobj: number; meta: Uint8Array }[];
    return new Map(rows.map((r) => [r.firstobj, r.meta]));
  }

  /** The block's SHA-256: from the index when the store keys by it, else of its bytes. */
  blockHash(block: number): Uint8Array {
    if (this.#store.blockHash !== "sha256") {
      return nodeCrypto().createHash("sha256").update(this.#store.blockBytes(block)).digest();
    }
    const r = this.#store.stmt("SELECT hash FROM blocks WHERE id = ?").get(block) as {
      hash: Uint8Array;
    };
    return r.hash;
  }
}
