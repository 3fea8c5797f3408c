/**
 * The receive rules of OpenZFS `dmu_recv.c`, applied to an abstract object table: OBJECT
 * claims or reclaims, FREEOBJECTS and FREE free, WRITE, WRITE_BYREF, WRITE_EMBEDDED and SPILL
 * write, each refused as the kernel refuses it. The store implements {@linkcode ReceiveTarget};
 * what this module decides never depends on how it stores things.
 *
 * @module
 */

import { BEGIN_FLAG, DRR, FEATURE, RECORD_FLAG } from "../stream/constants.ts";
import { StreamError } from "../stream/errors.ts";
import type { StreamRecord } from "../stream/reader.ts";
import {
  type Checksum,
  type DrrBegin,
  type DrrObject,
  type DrrObjectRange,
  type DrrSpill,
  type DrrWrite,
  type DrrWriteByref,
  type DrrWriteEmbedded,
  featureFlags,
  hasFeature,
} from "../stream/record.ts";
import { checkRecordFields } from "../stream/record_rules.ts";
import { compressionName, decompressBlock } from "../compress/mod.ts";

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** An object as the target holds it: the OBJECT record's fields and its bonus buffer. */
export interface StoredObject {
  object: number;
  type: number;
  bonustype: number;
  blksz: number;
  bonuslen: number;
  checksumtype: number;
  compress: number;
  dnSlots: number;
  flags: number;
  rawBonuslen: number;
  indblkshift: number;
  nlevels: number;
  nblkptr: number;
  maxblkid: bigint;
  /** The bonus payload as received (padded to 8 bytes, or `raw_bonuslen` bytes). */
  bonus: Uint8Array;
}

/** What a receive writes into. Object numbers are below 2^48; offsets below 2^53. */
export interface ReceiveTarget {
  /** The object, or null when it is free. */
  getObject(object: number): StoredObject | null;
  /** Creates or replaces the object's fields and bonus (its data stays unless freed). */
  putObject(o: StoredObject): void;
  /** Frees the object: fields, data, spill block. */
  freeObject(object: number): void;
  /** The first allocated object at or after `from`, or null (frees skip empty stretches). */
  nextObject(from: number): number | null;
  /**
   * Frees bytes [from, to) of an object (`to` null: to its end). Blocks wholly inside go;
   * blocks that straddle an edge keep their bytes outside the range and become zero inside.
   */
  freeRange(object: number, from: number, to: number | null): void;
  /** End of the object's last block (`doi_max_offset`), 0 when it has none. */
  maxOffset(object: number): number;
  /**
   * Stores one WRITE (payload as it came: logical, compressed or encrypted), with the
   * payload's little-endian fletcher-4 when the reader has it (a sender can then send the bytes
   * without reading them).
   */
  write(rec: DrrWrite, payload: Uint8Array, fletcher4Le?: Checksum): void;
  /** Stores one WRITE_EMBEDDED (payload as it came). */
  writeEmbedded(rec: DrrWriteEmbedded, payload: Uint8Array): void;
  /**
   * Stores the block that `rec` refers to (refguid, refobject, refoffset): from this
   * snapshot when refguid is its own toguid, else from a snapshot received earlier.
   * Returns false when no such block is known.
   */
  writeByref(rec: DrrWriteByref): boolean;
  /** Sets the object's spill block, or removes it (null). */
  setSpill(object: number, rec: DrrSpill | null, payload: Uint8Array | null): void;
  /** Marks a byte range as redacted (left out by a redacted send). */
  redact(object: number, offset: number, length: number): void;
  /**
   * Keeps the crypt parameters of a dnode block (raw streams), replacing those of the same
   * block; optional: a target that never reads raw objects may ignore them.
   */
  objectRange?(rec: DrrObjectRange): void;
}

/** Options of {@linkcode RecordApplier}. */
export interface ApplyOptions {
  /**
   * The ZPL generation number of a bonus buffer, used to tell a re-created file from a grown
   * one when an incremental changes a file's block size. Null when it cannot tell.
   */
  generation?: (bonustype: number, bonus: Uint8Array, littleEndian: boolean) => bigint | null;
}

const ZIO_COMPRESS_OFF = 2;
const BP_EMBEDDED_TYPE_DATA = 0;
const U64 = (1n << 64n) - 1n;
/** `DMU_SPILL_BLKID`: the block id of a spill block (-2 as a u64). */
const DMU_SPILL_BLKID = U64 - 1n;

/** Whether a data record's offset is block `DMU_SPILL_BLKID` of `length`-byte blocks. */
function isSpillOffset(offset: bigint, length: bigint): boolean {
  return length > 0n && offset === ((DMU_SPILL_BLKID * length) & U64);
}
/** Blocks one REDACT record may mark (2 TiB of 128 KiB blocks): a bound on a lying length. */
const MAX_REDACT_BLOCKS = 1n << 24n;
const DMU_OT_PLAIN_FILE_CONTENTS = 19;
const DMU_OT_SA = 44;
const DMU_OT_ZNODE = 17;
const DN_MAX_NBLKPTR = 3;
const SPA_BLKPTRSHIFT = 7;

/** Bonus bytes available to a dnode of `slots` 512-byte slots (`DN_SLOTS_TO_BONUSLEN`). */
function slotsToBonuslen(slots: number): number {
  return slots * 512 - 64 - 128;
}

/** The number of block pointers a dnode gets (`deduce_nblkptr`). */
export function deduceNblkptr(bonustype: number, bonuslen: number, slots: number): number {
  if (bonustype === DMU_OT_SA) return 1;
  const cap = slotsToBonuslen(slots);
  return Math.min(DN_MAX_NBLKPTR, 1 + ((cap - Math.min(cap, bonuslen)) >> SPA_BLKPTRSHIFT));
}

const SA_MAGIC = 0x2F505A;
/** Where `ZPL_GEN` lies after the SA header: the ZPL's layouts start MODE, SIZE, GEN. */
const SA_GEN_OFFSET = 16;

/**
 * The ZPL generation of a file from its bonus buffer, read as the kernel's
 * `zpl_get_file_info` reads it: `zp_gen` of a `znode_phys_t` (bonus type 17), or the u64 at
 * 16 after the header of a system attribute buffer (bonus type 44; 0 for a zeroed one, in the
 * buffer's own byte order). Null for other bonus types and buffers too short to hold it.
 */
export function znodeGeneration(bonustype: number, bonus: Uint8Array, le: boolean): bigint | null {
  const v = new DataView(bonus.buffer, bonus.byteOffset, bonus.byteLength);
  if (bonustype === DMU_OT_ZNODE) return bonus.length < 72 ? null : v.getBigUint64(64, le);
  if (bonustype !== DMU_OT_SA || bonus.length < 8) return null;
  const magicLe = v.getUint32(0, true);
  if (magicLe === 0) return 0n;
  let saLe: boolean;
  if (magicLe === SA_MAGIC) saLe = true;
  else if (v.getUint32(0, false) === SA_MAGIC) saLe = false;
  else return null;
  const hdrsize = ((v.getUint16(4, saLe) >> 10) & 0x3F) * 8;
  if (hdrsize < 8 || hdrsize + SA_GEN_OFFSET + 8 > bonus.length) return null;
  return v.getBigUint64(hdrsize + SA_GEN_OFFSET, saLe);
}

function toNumber(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`${what} ${v} is beyond 2^53, which zsend does not store`);
  }
  return Number(v);
}

/**
 * Applies the records of one substream (after its BEGIN, up to its END) to a target, with
 * the kernel's rules. Throws {@linkcode StreamError} naming the record that breaks one.
 *
 * @example
 * ```ts
 * import { RecordApplier, type ReceiveTarget, type StoredObject } from "./receive.ts";
 * const objects = new Map<number, StoredObject>();
 * const target = {
 *   getObject: (o: number) => objects.get(o) ?? null,
 *   putObject: (o: StoredObject) => void objects.set(o.object, o),
 *   freeObject: (o: number) => void objects.delete(o),
 *   nextObject: (from: number) => [...objects.keys()].sort((a, b) => a - b).find((o) => o >= from) ?? null,
 *   freeRange: () => {}, maxOffset: () => 0, write: () => {}, writeEmbedded: () => {},
 *   writeByref: () => false, setSpill: () => {}, redact: () => {},
 * } satisfies ReceiveTarget;
 * const begin = { type: 0, toguid: 1n, fromguid: 0n, flags: 0, versioninfo: 1n } as never;
 * const applier = new RecordApplier(target, begin, true);
 * const header = { type: 1, object: 5n, object_type: 19, bonustype: 0, blksz: 512, bonuslen: 0,
 *   checksumtype: 0, compress: 0, dn_slots: 0, flags: 0, raw_bonuslen: 0, toguid: 1n,
 *   indblkshift: 0, nlevels: 0, nblkptr: 0, maxblkid: 0n, payloadlen: 0,
 *   record_checksum: [0n, 0n, 0n, 0n] } as never;
 * applier.apply({ index: 1, offset: 312, header, raw: new Uint8Array(312),
 *   payload: new Uint8Array(0), littleEndian: true, substream: 1 });
 * if (objects.get(5)?.type !== 19) throw new Error();
 * ```
 */
export class RecordApplier {
  #target: ReceiveTarget;
  #features: bigint;
  #beginFlags: number;
  #raw: boolean;
  #spill: boolean;
  #full: boolean;
  #littleEndian: boolean;
  #generation: NonNullable<ApplyOptions["generation"]>;
  #lastObject = 0;
  #lastOffset = 0;

  /**
   * @param target where the records go
   * @param begin the substream's BEGIN
   * @param littleEndian the stream's byte order (for reading bonus buffers)
   */
  constructor(
    target: ReceiveTarget,
    begin: DrrBegin,
    littleEndian: boolean,
    options: ApplyOptions = {},
  ) {
    this.#target = target;
    this.#features = featureFlags(begin.versioninfo);
    this.#beginFlags = begin.flags;
    this.#raw = hasFeature(this.#features, FEATURE.RAW);
    this.#spill = (begin.flags & BEGIN_FLAG.SPILL_BLOCK) !== 0;
    this.#full = begin.fromguid === 0n;
    this.#littleEndian = littleEndian;
    this.#generation = options.generation ?? znodeGeneration;
  }

  /** Applies one record of the substream (not its BEGIN or END). */
  apply(r: StreamRecord): void {
    const h = r.header;
    const fail = (fault: string): never => {
      throw new StreamError({ index: r.index, type: h.type, offset: r.offset }, fault);
    };
    const bad = checkRecordFields(h, { features: this.#features, beginFlags: this.#beginFlags });
    if (bad !== null) fail(bad);
    try {
      switch (h.type) {
        case DRR.OBJECT:
          this.#object(h, r.payload, fail);
          break;
        case DRR.FREEOBJECTS: {
          const first = h.firstobj === 0n ? 1n : h.firstobj;
          const end = h.firstobj + h.numobjs;
          this.#freeObjects(first, end);
          break;
        }
        case DRR.FREE: {
          const object = toNumber(h.object, "object");
          if (this.#target.getObject(object) === null) {
            fail(`FREE of object ${object}, which does not exist`);
          }
          const from = toNumber(h.offset, "offset");
          const all = h.length === 0xFFFFFFFFFFFFFFFFn ||
            h.offset + h.length > BigInt(Number.MAX_SAFE_INTEGER);
          this.#target.freeRange(object, from, all ? null : Number(h.offset + h.length));
          break;
        }
        case DRR.WRITE: {
          const stored = this.#dataObject(h.object, "WRITE", fail);
          const object = stored.object;
          const offset = toNumber(h.offset, "offset");
          if (
            object < this.#lastObject || (object === this.#lastObject && offset < this.#lastOffset)
          ) {
            fail(
              `WRITE to object ${object} offset ${offset} out of order ` +
                `(after object ${this.#lastObject} offset ${this.#lastOffset})`,
            );
          }
          this.#lastObject = object;
          this.#lastOffset = offset;
          if (Number(h.logical_size) > stored.blksz && !this.#raw) {
            this.#splitWrite(h, r.payload, stored.blksz, fail);
          } else if (r.littleEndian && r.payloadChecksum !== undefined) {
            this.#target.write(h, r.payload, r.payloadChecksum);
          } else this.#target.write(h, r.payload);
          break;
        }
        case DRR.WRITE_BYREF:
          this.#dataTarget(h.object, "WRITE_BYREF", fail);
          if (!this.#target.writeByref(h)) {
            fail(
              `WRITE_BYREF refers to object ${h.refobject} offset ${h.refoffset} of snapshot ` +
                `${h.refguid.toString(16)}, which was not received`,
            );
          }
          break;
        case DRR.WRITE_EMBEDDED:
          this.#dataTarget(h.object, "WRITE_EMBEDDED", fail);
          if (isSpillOffset(h.offset, h.length)) this.#embeddedSpill(h, r.payload, fail);
          else this.#target.writeEmbedded(h, r.payload);
          break;
        case DRR.SPILL: {
          if (this.#spill && (h.flags & RECORD_FLAG.SPILL_UNMODIFIED) !== 0) break;
          const object = this.#dataTarget(h.object, "SPILL", fail);
          this.#target.setSpill(object, h, r.payload);
          break;
        }
        case DRR.REDACT: {
          // One mark per block of the object (as a WRITE would be), so that a later WRITE or
          // FREE of some of its blocks leaves the others redacted. (drr_maxblkid is 0 in
          // streams that are not raw: it cannot bound the range.)
          const o = this.#dataObject(h.object, "REDACT", fail);
          const bs = BigInt(o.blksz > 0 ? o.blksz : 512);
          const first = h.offset / bs;
          const end = (h.offset + h.length + bs - 1n) / bs;
          if (end - first > MAX_REDACT_BLOCKS) {
            fail(
              `REDACT of ${end - first} blocks of object ${o.object} (zsend marks at most ` +
                `${MAX_REDACT_BLOCKS} in one record)`,
            );
          }
          // Without -L a large block's REDACT keeps its own size while the OBJECT says 128 KiB:
          // the last mark is short, so that the range sent again is the same.
          const stop = h.offset + h.length;
          for (let b = first; b < end; b++) {
            const at = b * bs;
            const n = stop - at < bs ? stop - at : bs;
            this.#target.redact(o.object, toNumber(at, "offset"), Number(n));
          }
          break;
        }
        case DRR.OBJECT_RANGE:
          // Raw streams: the crypt parameters of a dnode block. The objects that follow carry
          // their bonus buffers as the block holds them (encrypted); the target keeps the
          // parameters to decrypt them with the key. Nothing in the object table changes.
          this.#target.objectRange?.(h);
          break;
        default:
          fail("record type not allowed inside a substream");
      }
    } catch (e) {
      if (e instanceof RangeError) fail(e.message);
      throw e;
    }
  }

  #dataTarget(object: bigint, what: string, fail: (m: string) => never): number {
    return this.#dataObject(object, what, fail).object;
  }

  #dataObject(object: bigint, what: string, fail: (m: string) => never): StoredObject {
    const o = toNumber(object, "object");
    return this.#target.getObject(o) ?? fail(`${what} to object ${o}, which does not exist`);
  }

  /**
   * A WRITE larger than its object's block size: an `-L` incremental onto a file that was
   * received without `-L`, whose smaller block size the receive kept. The kernel decompresses
   * the payload and writes it into the object's blocks (`flush_write_batch`); so does this,
   * one WRITE of the object's block size per block, all-zero blocks as holes.
   */
  #splitWrite(h: DrrWrite, payload: Uint8Array, blksz: number, fail: (m: string) => never) {
    const lsize = toNumber(h.logical_size, "logical size");
    if (blksz <= 0 || toNumber(h.offset, "offset") % blksz !== 0) {
      fail(`WRITE at offset ${h.offset} into object ${h.object} of ${blksz}-byte blocks`);
    }
    let data = payload;
    if (h.compressiontype !== 0 && h.compressed_size !== 0n) {
      try {
        data = decompressBlock(h.compressiontype, payload, lsize);
      } catch (e) {
        fail(
          `WRITE of ${lsize} bytes into object ${h.object} of ${blksz}-byte blocks must be ` +
            `decompressed (${compressionName(h.compressiontype)}): ${(e as Error).message}`,
        );
      }
    }
    if (data.length < lsize) fail(`WRITE payload of ${data.length} bytes, ${lsize} expected`);
    const object = Number(h.object);
    const keyProp = (n: number) => {
      const sizeField = BigInt(Math.ceil(n / 512) - 1);
      return sizeField | (sizeField << 16n) | (BigInt(ZIO_COMPRESS_OFF) << 32n);
    };
    for (let at = 0; at < lsize; at += blksz) {
      // The sender's block need not be a multiple of the kept size (a file of one 837120-byte
      // block received before in 128 KiB pieces): the last piece is short, as the split
      // WRITEs of a stream without -L were.
      const piece = data.subarray(at, Math.min(lsize, at + blksz));
      const offset = Number(h.offset) + at;
      if (piece.length === blksz && isZero(piece)) {
        this.#target.freeRange(object, offset, offset + blksz);
        continue;
      }
      this.#target.write({
        ...h,
        offset: BigInt(offset),
        logical_size: BigInt(piece.length),
        flags: h.flags & ~RECORD_FLAG.CHECKSUM_DEDUP,
        compressiontype: 0,
        compressed_size: 0n,
        key_cksum: [0n, 0n, 0n, 0n],
        key_prop: keyProp(piece.length),
      }, piece);
    }
  }

  /**
   * An object's spill block that came as a WRITE_EMBEDDED: OpenZFS 2.2 and 2.3 send a spill
   * block whose block pointer is embedded (a small, compressible one, such as a long symlink
   * target's) through the data path when `-e` is given, at block id `DMU_SPILL_BLKID` times
   * its size (OpenZFS issue 18239). What it holds is the spill block: kept as one, decoded.
   */
  #embeddedSpill(h: DrrWriteEmbedded, payload: Uint8Array, fail: (m: string) => never): void {
    if (h.etype !== BP_EMBEDDED_TYPE_DATA) {
      fail(`WRITE_EMBEDDED of the spill block of object ${h.object} has embedded type ${h.etype}`);
    }
    let data: Uint8Array;
    try {
      data = h.compression === ZIO_COMPRESS_OFF
        ? payload.slice(0, h.lsize)
        : decompressBlock(h.compression, payload.subarray(0, h.psize), h.lsize);
    } catch (e) {
      return fail(
        `WRITE_EMBEDDED of the spill block of object ${h.object} cannot be decoded ` +
          `(${compressionName(h.compression)}): ${(e as Error).message}`,
      );
    }
    if (data.length !== h.lsize || BigInt(h.lsize) !== h.length) {
      fail(`WRITE_EMBEDDED of the spill block of object ${h.object}: ${h.lsize} bytes`);
    }
    this.#target.setSpill(Number(h.object), {
      type: DRR.SPILL,
      object: h.object,
      length: h.length,
      toguid: h.toguid,
      flags: 0,
      compressiontype: 0,
      compressed_size: 0n,
      salt: new Uint8Array(8),
      iv: new Uint8Array(12),
      mac: new Uint8Array(16),
      object_type: DMU_OT_SA,
    } as DrrSpill, data);
  }

  #freeObjects(first: bigint, end: bigint): void {
    // Objects above 2^48 cannot exist; a range may still reach there.
    const last = Number(end > 1n << 48n ? 1n << 48n : end);
    const t = this.#target;
    // Jump from one allocated object to the next: a range of 2^48 costs what it frees.
    for (let o = t.nextObject(Number(first)); o !== null && o < last; o = t.nextObject(o + 1)) {
      t.freeObject(o);
    }
  }

  #object(h: DrrObject, payload: Uint8Array, fail: (m: string) => never): void {
    const t = this.#target;
    const object = toNumber(h.object, "object");
    const slots = h.dn_slots !== 0 ? h.dn_slots : 1;
    const nblkptr = deduceNblkptr(h.bonustype, h.bonuslen, slots);
    let blksz = h.blksz;
    const old = t.getObject(object);
    if (old !== null) {
      let freeAll = false;
      if (h.blksz !== old.blksz) {
        if (this.#raw || this.#full) freeAll = true;
        else if (
          h.object_type !== DMU_OT_PLAIN_FILE_CONTENTS || old.type !== DMU_OT_PLAIN_FILE_CONTENTS
        ) {
          freeAll = true;
        } else if (t.maxOffset(object) <= old.blksz) freeAll = true;
        else {
          const before = this.#generation(old.bonustype, old.bonus, this.#littleEndian);
          const after = this.#generation(h.bonustype, payload, this.#littleEndian);
          if (before === null || after === null) {
            fail(`OBJECT ${object}: cannot tell whether the file was re-created`);
          }
          if (before === after) {
            if (h.blksz <= old.blksz) {
              fail(
                `OBJECT ${object}: block size can only grow for the same file ` +
                  `(${old.blksz} -> ${h.blksz})`,
              );
            }
            // The same file, sent now with -L: it keeps its blocks and their size, and the
            // larger WRITEs are written into them (see #splitWrite).
            blksz = old.blksz;
          } else freeAll = true;
        }
      }
      if (nblkptr < old.nblkptr) freeAll = true;
      if (slots !== old.dnSlots) freeAll = true;
      if (this.#raw) {
        const indblksz = h.indblkshift ? 1 << h.indblkshift : 0;
        const oldInd = old.indblkshift ? 1 << old.indblkshift : 0;
        if (indblksz !== oldInd || h.nlevels < old.nlevels) freeAll = true;
      }
      if (freeAll) t.freeRange(object, 0, null);
      if (slots !== old.dnSlots) t.freeObject(object);
      else {
        const changed = h.object_type !== old.type || blksz !== old.blksz ||
          h.bonustype !== old.bonustype || h.bonuslen !== old.bonuslen;
        const keepSpill = this.#spill && (h.flags & RECORD_FLAG.OBJECT_SPILL) !== 0;
        if (changed ? !keepSpill : this.#spill && !keepSpill) t.setSpill(object, null, null);
      }
      if (this.#raw && !freeAll && slots === old.dnSlots) {
        const nblocks = h.maxblkid + 1n;
        const from = nblocks * BigInt(old.blksz);
        if (from <= BigInt(Number.MAX_SAFE_INTEGER)) t.freeRange(object, Number(from), null);
      }
    }
    // A multi-slot dnode frees the objects whose slots it takes over.
    for (let s = object + 1; s < object + slots; s++) {
      if (t.getObject(s) !== null) t.freeObject(s);
    }
    t.putObject({
      object,
      type: h.object_type,
      bonustype: h.bonustype,
      blksz,
      bonuslen: h.bonuslen,
      checksumtype: h.checksumtype,
      compress: h.compress,
      dnSlots: slots,
      flags: h.flags,
      rawBonuslen: h.raw_bonuslen,
      indblkshift: h.indblkshift,
      nlevels: h.nlevels,
      nblkptr: this.#raw ? h.nblkptr : nblkptr,
      maxblkid: h.maxblkid,
      bonus: payload.slice(),
    });
  }
}
