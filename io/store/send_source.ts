/**
 * A stored snapshot as a {@linkcode SendSource}: its object rows and block map, read from the
 * index, and block bytes from the packs.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { SendBlock, SendObject, SendSource } from "../../core/send/send.ts";
import type { PayloadRef } from "../../core/stream/writer.ts";
import type { FilePlace } from "../stream_output.ts";
import { decodeChecksum } from "./snapshot_builder.ts";
import type { SnapshotRow, Store } from "./store.ts";
import { alignedBytes } from "../aligned_buffer.ts";

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
  /** Where the blocks of the object last listed lie, to read them without a query each. */
  #places = new Map<
    number,
    { pack: number; offset: number; length: number; f4: Uint8Array | null }
  >();
  #refs: boolean;
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
    const rows = this.#store.stmt(
      `SELECT m.offset, m.lsize, m.kind, m.block, m.meta, b.pack, b.offset AS at, b.length, b.f4
       FROM block_map m LEFT JOIN blocks b ON b.id = m.block
       WHERE m.snapshot = ? AND m.object = ? ORDER BY m.offset`,
    ).all(this.#snapshot, object) as unknown as (SendBlock & {
      pack: number | null;
      at: number | null;
      length: number | null;
      f4: Uint8Array | null;
    })[];
    // Where this object's blocks lie: blockData needs no query of its own.
    this.#places.clear();
    for (const r of rows) {
      if (r.block !== null && r.pack !== null) {
        this.#places.set(r.block, { pack: r.pack, offset: r.at!, length: r.length!, f4: r.f4 });
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
    if (this.#buffer.length < at.length) this.#buffer = alignedBytes(at.length);
    return this.#store.packs.readInto(at.pack, at.offset, this.#buffer.subarray(0, at.length));
  }

  /** The block by reference, when asked for, little-endian, and its fletcher-4 is stored. */
  blockRef(block: number, littleEndian: boolean): PayloadRef<FilePlace> | null {
    if (!this.#refs || !littleEndian) return null;
    const at = this.#places.get(block);
    const f4 = decodeChecksum(at?.f4 ?? null);
    if (at === undefined || f4 === null) return null;
    const path = this.#store.packs.path(at.pack);
    return { length: at.length, fletcher4: f4, place: { path, offset: at.offset } };
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
      return createHash("sha256").update(this.#store.blockBytes(block)).digest();
    }
    const r = this.#store.stmt("SELECT hash FROM blocks WHERE id = ?").get(block) as {
      hash: Uint8Array;
    };
    return r.hash;
  }
}
