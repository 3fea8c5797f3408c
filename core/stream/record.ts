/**
 * The 312-byte replay record: its layout, and decoding and encoding in either byte order.
 *
 * The layout is one table per record type (offsets from OpenZFS `zfs_ioctl.h`); decoding,
 * encoding and the check that unused bytes are zero all derive from it.
 *
 * @module
 */

import {
  BACKUP_MAGIC,
  BACKUP_MAGIC_SWAPPED,
  CHECKSUM_OFFSET,
  DRR,
  DRR_NUMTYPES,
  RECORD_SIZE,
} from "./constants.ts";

/** A fletcher-4 checksum: four 64-bit words. */
export type Checksum = [bigint, bigint, bigint, bigint];

/** Fields common to every record. */
export interface RecordBase {
  /** `drr_payloadlen`: only BEGIN uses it, for the length of its nvlist. */
  payloadlen: number;
  /** The trailing per-record checksum (`drr_checksum`, bytes 280..311); zero in old streams. */
  record_checksum: Checksum;
}

/** DRR_BEGIN: opens a (sub)stream. */
export interface DrrBegin extends RecordBase {
  /** `drr_type`: the record type (`DRR`). */
  type: typeof DRR.BEGIN;
  /** `drr_magic`: `BACKUP_MAGIC`, in the stream's byte order. */
  magic: bigint;
  /** `drr_versioninfo`: header type in the low 2 bits, feature flags above. */
  versioninfo: bigint;
  /** `drr_creation_time`: the snapshot's creation time, seconds since 1970. */
  creation_time: bigint;
  /** `drr_type`: the objset type (2 filesystem, 3 volume). */
  objset_type: number;
  /** `drr_flags`: the record's flag bits. */
  flags: number;
  /** `drr_toguid`: the guid of the snapshot the (sub)stream makes. */
  toguid: bigint;
  /** `drr_fromguid`: the guid of the snapshot an incremental is from (0 for a full stream). */
  fromguid: bigint;
  /** `drr_toname`: the snapshot's name (`pool/fs@snap`). */
  toname: string;
}

/** DRR_OBJECT: creates or reclaims an object; its bonus buffer follows. */
export interface DrrObject extends RecordBase {
  /** `drr_type`: the record type (`DRR`). */
  type: typeof DRR.OBJECT;
  /** `drr_object`: the object number. */
  object: bigint;
  /** `drr_type` of the object (`dmu_object_type_t`). */
  object_type: number;
  /** `drr_bonustype`: the type of the bonus buffer. */
  bonustype: number;
  /** `drr_blksz`: the object's data block size. */
  blksz: number;
  /** `drr_bonuslen`: bytes of bonus buffer. */
  bonuslen: number;
  /** `drr_checksumtype`: the checksum function of the block(s). */
  checksumtype: number;
  /** `drr_compress`: the object's compression function. */
  compress: number;
  /** `drr_dn_slots`: dnode slots the object takes (0 in old streams: one). */
  dn_slots: number;
  /** `drr_flags`: the record's flag bits. */
  flags: number;
  /** `drr_raw_bonuslen`: bytes of (encrypted) bonus buffer in raw streams. */
  raw_bonuslen: number;
  /** `drr_toguid`: the guid of the snapshot the (sub)stream makes. */
  toguid: bigint;
  /** `drr_indblkshift`: log2 of the indirect block size (raw streams). */
  indblkshift: number;
  /** `drr_nlevels`: levels of indirection (raw streams). */
  nlevels: number;
  /** `drr_nblkptr`: block pointers in the dnode (raw streams). */
  nblkptr: number;
  /** `drr_maxblkid`: the highest block id (raw streams). */
  maxblkid: bigint;
}

/** DRR_FREEOBJECTS: frees a range of objects. */
export interface DrrFreeObjects extends RecordBase {
  /** `drr_type`: the record type (`DRR`). */
  type: typeof DRR.FREEOBJECTS;
  /** `drr_firstobj`: the first object of the range. */
  firstobj: bigint;
  /** `drr_numobjs`: objects in the range. */
  numobjs: bigint;
  /** `drr_toguid`: the guid of the snapshot the (sub)stream makes. */
  toguid: bigint;
}

/** DRR_WRITE: one block of data follows. */
export interface DrrWrite extends RecordBase {
  /** `drr_type`: the record type (`DRR`). */
  type: typeof DRR.WRITE;
  /** `drr_object`: the object number. */
  object: bigint;
  /** `drr_type` of the object (`dmu_object_type_t`). */
  object_type: number;
  /** `drr_offset`: byte offset in the object. */
  offset: bigint;
  /** `drr_logical_size`: the block's size uncompressed. */
  logical_size: bigint;
  /** `drr_toguid`: the guid of the snapshot the (sub)stream makes. */
  toguid: bigint;
  /** `drr_checksumtype`: the checksum function of the block(s). */
  checksumtype: number;
  /** `drr_flags`: the record's flag bits. */
  flags: number;
  /** `drr_compressiontype`: the payload's compression (0: none). */
  compressiontype: number;
  /** `drr_key.ddk_cksum`: the block's checksum (dedup key). */
  key_cksum: Checksum;
  /** `drr_key.ddk_prop`: the block pointer's properties. */
  key_prop: bigint;
  /** `drr_compressed_size`: the payload's size when compressed. */
  compressed_size: bigint;
  /** `drr_salt`: the block's encryption salt (raw streams). */
  salt: Uint8Array;
  /** `drr_iv`: the block's encryption IV (raw streams). */
  iv: Uint8Array;
  /** `drr_mac`: the block's MAC (raw streams). */
  mac: Uint8Array;
}

/** DRR_FREE: frees a byte range of an object (`length` 2^64-1: to its end). */
export interface DrrFree extends RecordBase {
  /** `drr_type`: the record type (`DRR`). */
  type: typeof DRR.FREE;
  /** `drr_object`: the object number. */
  object: bigint;
  /** `drr_offset`: byte offset in the object. */
  offset: bigint;
  /** `drr_length`: bytes of the range or block. */
  length: bigint;
  /** `drr_toguid`: the guid of the snapshot the (sub)stream makes. */
  toguid: bigint;
}

/** DRR_END: closes a (sub)stream with the checksum of all of it. */
export interface DrrEnd extends RecordBase {
  /** `drr_type`: the record type (`DRR`). */
  type: typeof DRR.END;
  /** `drr_end.drr_checksum`: the running checksum before this record. */
  checksum: Checksum;
  /** `drr_toguid`: the guid of the snapshot the (sub)stream makes. */
  toguid: bigint;
}

/** DRR_WRITE_BYREF: a block equal to one written earlier (dedup streams). */
export interface DrrWriteByref extends RecordBase {
  /** `drr_type`: the record type (`DRR`). */
  type: typeof DRR.WRITE_BYREF;
  /** `drr_object`: the object number. */
  object: bigint;
  /** `drr_offset`: byte offset in the object. */
  offset: bigint;
  /** `drr_length`: bytes of the range or block. */
  length: bigint;
  /** `drr_toguid`: the guid of the snapshot the (sub)stream makes. */
  toguid: bigint;
  /** `drr_refguid`: the dataset of the block referred to. */
  refguid: bigint;
  /** `drr_refobject`: the object of the block referred to. */
  refobject: bigint;
  /** `drr_refoffset`: the offset of the block referred to. */
  refoffset: bigint;
  /** `drr_checksumtype`: the checksum function of the block(s). */
  checksumtype: number;
  /** `drr_flags`: the record's flag bits. */
  flags: number;
  /** `drr_key.ddk_cksum`: the block's checksum (dedup key). */
  key_cksum: Checksum;
  /** `drr_key.ddk_prop`: the block pointer's properties. */
  key_prop: bigint;
}

/** DRR_SPILL: an object's spill block follows. */
export interface DrrSpill extends RecordBase {
  /** `drr_type`: the record type (`DRR`). */
  type: typeof DRR.SPILL;
  /** `drr_object`: the object number. */
  object: bigint;
  /** `drr_length`: bytes of the range or block. */
  length: bigint;
  /** `drr_toguid`: the guid of the snapshot the (sub)stream makes. */
  toguid: bigint;
  /** `drr_flags`: the record's flag bits. */
  flags: number;
  /** `drr_compressiontype`: the payload's compression (0: none). */
  compressiontype: number;
  /** `drr_compressed_size`: the payload's size when compressed. */
  compressed_size: bigint;
  /** `drr_salt`: the block's encryption salt (raw streams). */
  salt: Uint8Array;
  /** `drr_iv`: the block's encryption IV (raw streams). */
  iv: Uint8Array;
  /** `drr_mac`: the block's MAC (raw streams). */
  mac: Uint8Array;
  /** `drr_type` of the object (`dmu_object_type_t`). */
  object_type: number;
}

/** DRR_WRITE_EMBEDDED: a block small enough to live in its block pointer follows. */
export interface DrrWriteEmbedded extends RecordBase {
  /** `drr_type`: the record type (`DRR`). */
  type: typeof DRR.WRITE_EMBEDDED;
  /** `drr_object`: the object number. */
  object: bigint;
  /** `drr_offset`: byte offset in the object. */
  offset: bigint;
  /** `drr_length`: bytes of the range or block. */
  length: bigint;
  /** `drr_toguid`: the guid of the snapshot the (sub)stream makes. */
  toguid: bigint;
  /** `drr_compression`: the embedded block's compression. */
  compression: number;
  /** `drr_etype`: the embedded block's type. */
  etype: number;
  /** `drr_lsize`: the block's logical size. */
  lsize: number;
  /** `drr_psize`: bytes of embedded data. */
  psize: number;
}

/** DRR_OBJECT_RANGE: a range of dnode slots (raw sends). */
export interface DrrObjectRange extends RecordBase {
  /** `drr_type`: the record type (`DRR`). */
  type: typeof DRR.OBJECT_RANGE;
  /** `drr_firstobj`: the first object of the range. */
  firstobj: bigint;
  /** `drr_numslots`: dnode slots in the range. */
  numslots: bigint;
  /** `drr_toguid`: the guid of the snapshot the (sub)stream makes. */
  toguid: bigint;
  /** `drr_salt`: the block's encryption salt (raw streams). */
  salt: Uint8Array;
  /** `drr_iv`: the block's encryption IV (raw streams). */
  iv: Uint8Array;
  /** `drr_mac`: the block's MAC (raw streams). */
  mac: Uint8Array;
  /** `drr_flags`: the record's flag bits. */
  flags: number;
}

/** DRR_REDACT: a byte range left out of a redacted send. */
export interface DrrRedact extends RecordBase {
  /** `drr_type`: the record type (`DRR`). */
  type: typeof DRR.REDACT;
  /** `drr_object`: the object number. */
  object: bigint;
  /** `drr_offset`: byte offset in the object. */
  offset: bigint;
  /** `drr_length`: bytes of the range or block. */
  length: bigint;
  /** `drr_toguid`: the guid of the snapshot the (sub)stream makes. */
  toguid: bigint;
}

/** Any decoded replay record. */
export type DrrRecord =
  | DrrBegin
  | DrrObject
  | DrrFreeObjects
  | DrrWrite
  | DrrFree
  | DrrEnd
  | DrrWriteByref
  | DrrSpill
  | DrrWriteEmbedded
  | DrrObjectRange
  | DrrRedact;

/** How a field is stored. */
export type FieldKind = "u8" | "u32" | "u64" | "cksum" | "bytes" | "string";

/** One field of a record type's layout. */
export interface FieldSpec {
  /** The property name in the decoded record. */
  name: string;
  /** Offset from the start of the 312-byte record. */
  offset: number;
  kind: FieldKind;
  /** Size in bytes. */
  size: number;
}

const SIZES: Record<FieldKind, number> = { u8: 1, u32: 4, u64: 8, cksum: 32, bytes: 0, string: 0 };

function layout(...fields: [string, number, FieldKind, number?][]): FieldSpec[] {
  return fields.map(([name, offset, kind, size]) => ({
    name,
    offset,
    kind,
    size: size ?? SIZES[kind],
  }));
}

/** The layout of each record type, indexed by `drr_type` (offsets from the record's start). */
export const LAYOUTS: readonly FieldSpec[][] = [
  layout(
    ["magic", 8, "u64"],
    ["versioninfo", 16, "u64"],
    ["creation_time", 24, "u64"],
    ["objset_type", 32, "u32"],
    ["flags", 36, "u32"],
    ["toguid", 40, "u64"],
    ["fromguid", 48, "u64"],
    ["toname", 56, "string", 256],
  ),
  layout(
    ["object", 8, "u64"],
    ["object_type", 16, "u32"],
    ["bonustype", 20, "u32"],
    ["blksz", 24, "u32"],
    ["bonuslen", 28, "u32"],
    ["checksumtype", 32, "u8"],
    ["compress", 33, "u8"],
    ["dn_slots", 34, "u8"],
    ["flags", 35, "u8"],
    ["raw_bonuslen", 36, "u32"],
    ["toguid", 40, "u64"],
    ["indblkshift", 48, "u8"],
    ["nlevels", 49, "u8"],
    ["nblkptr", 50, "u8"],
    ["maxblkid", 56, "u64"],
  ),
  layout(["firstobj", 8, "u64"], ["numobjs", 16, "u64"], ["toguid", 24, "u64"]),
  layout(
    ["object", 8, "u64"],
    ["object_type", 16, "u32"],
    ["offset", 24, "u64"],
    ["logical_size", 32, "u64"],
    ["toguid", 40, "u64"],
    ["checksumtype", 48, "u8"],
    ["flags", 49, "u8"],
    ["compressiontype", 50, "u8"],
    ["key_cksum", 56, "cksum"],
    ["key_prop", 88, "u64"],
    ["compressed_size", 96, "u64"],
    ["salt", 104, "bytes", 8],
    ["iv", 112, "bytes", 12],
    ["mac", 124, "bytes", 16],
  ),
  layout(["object", 8, "u64"], ["offset", 16, "u64"], ["length", 24, "u64"], [
    "toguid",
    32,
    "u64",
  ]),
  layout(["checksum", 8, "cksum"], ["toguid", 40, "u64"]),
  layout(
    ["object", 8, "u64"],
    ["offset", 16, "u64"],
    ["length", 24, "u64"],
    ["toguid", 32, "u64"],
    ["refguid", 40, "u64"],
    ["refobject", 48, "u64"],
    ["refoffset", 56, "u64"],
    ["checksumtype", 64, "u8"],
    ["flags", 65, "u8"],
    ["key_cksum", 72, "cksum"],
    ["key_prop", 104, "u64"],
  ),
  layout(
    ["object", 8, "u64"],
    ["length", 16, "u64"],
    ["toguid", 24, "u64"],
    ["flags", 32, "u8"],
    ["compressiontype", 33, "u8"],
    ["compressed_size", 40, "u64"],
    ["salt", 48, "bytes", 8],
    ["iv", 56, "bytes", 12],
    ["mac", 68, "bytes", 16],
    ["object_type", 84, "u32"],
  ),
  layout(
    ["object", 8, "u64"],
    ["offset", 16, "u64"],
    ["length", 24, "u64"],
    ["toguid", 32, "u64"],
    ["compression", 40, "u8"],
    ["etype", 41, "u8"],
    ["lsize", 48, "u32"],
    ["psize", 52, "u32"],
  ),
  layout(
    ["firstobj", 8, "u64"],
    ["numslots", 16, "u64"],
    ["toguid", 24, "u64"],
    ["salt", 32, "bytes", 8],
    ["iv", 40, "bytes", 12],
    ["mac", 52, "bytes", 16],
    ["flags", 68, "u8"],
  ),
  layout(["object", 8, "u64"], ["offset", 16, "u64"], ["length", 24, "u64"], [
    "toguid",
    32,
    "u64",
  ]),
];

/**
 * For each record type, the byte ranges no field or checksum uses, as [start, end) pairs:
 * checking only those is a few bytes per record instead of a mask test for each of 312.
 */
const UNUSED_RANGES: Uint16Array[] = LAYOUTS.map((fields, type) => {
  const used = new Uint8Array(RECORD_SIZE);
  used.fill(1, 0, 8);
  for (const f of fields) used.fill(1, f.offset, f.offset + f.size);
  if (type !== DRR.BEGIN) used.fill(1, CHECKSUM_OFFSET, RECORD_SIZE);
  const ranges: number[] = [];
  for (let i = 0; i < RECORD_SIZE; i++) {
    if (used[i] === 0 && (i === 0 || used[i - 1] === 1)) ranges.push(i);
    if (used[i] === 0 && (i === RECORD_SIZE - 1 || used[i + 1] === 1)) ranges.push(i + 1);
  }
  return Uint16Array.from(ranges);
});

const utf8 = new TextDecoder();
const utf8enc = new TextEncoder();

/** Returns a DataView over exactly the given bytes. */
export function viewOf(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function readChecksum(v: DataView, off: number, le: boolean): Checksum {
  return [
    v.getBigUint64(off, le),
    v.getBigUint64(off + 8, le),
    v.getBigUint64(off + 16, le),
    v.getBigUint64(off + 24, le),
  ];
}

/**
 * Tells the byte order of a stream from its first record, a BEGIN.
 *
 * @param record the first 312 bytes of a stream
 * @returns `true` for a little-endian stream, `false` for big-endian, `null` when the magic
 * is neither
 * @example
 * ```ts
 * import { encodeRecord, streamByteOrder } from "./record.ts";
 * const rec = encodeRecord({ type: 0, magic: 0x2F5BACBACn }, false);
 * if (streamByteOrder(rec) !== false) throw new Error("expected big-endian");
 * ```
 */
export function streamByteOrder(record: Uint8Array): boolean | null {
  const magic = viewOf(record).getBigUint64(8, true);
  if (magic === BACKUP_MAGIC) return true;
  if (magic === BACKUP_MAGIC_SWAPPED) return false;
  return null;
}

/** Reads `drr_type` of a raw record. */
export function rawRecordType(record: Uint8Array, littleEndian: boolean): number {
  return viewOf(record).getUint32(0, littleEndian);
}

/**
 * Decodes one 312-byte record.
 *
 * @param record exactly 312 bytes
 * @param littleEndian the stream's byte order
 * @param shareBytes give byte fields (salt, iv, mac, ...) as views into `record` rather than
 * copies: only for a record buffer that nothing writes afterwards (the reader's own copy of
 * each header), as a copy costs an allocation each, three per WRITE record
 * @returns the decoded record; a type this implementation does not know throws `RangeError`
 * @example
 * ```ts
 * import { decodeRecord, encodeRecord } from "jsr:@zsend/zsend";
 * const bytes = encodeRecord({ type: 4, object: 7n, offset: 0n, length: 512n }, true);
 * const rec = decodeRecord(bytes, true);
 * if (rec.type !== 4 || rec.object !== 7n) throw new Error("round trip failed");
 * ```
 */
export function decodeRecord(
  record: Uint8Array,
  littleEndian: boolean,
  shareBytes = false,
): DrrRecord {
  const v = viewOf(record);
  const type = v.getUint32(0, littleEndian);
  const fields = LAYOUTS[type];
  if (fields === undefined) throw new RangeError(`unknown record type ${type}`);
  const out: Record<string, unknown> = {
    type,
    payloadlen: v.getUint32(4, littleEndian),
  };
  for (const f of fields) {
    switch (f.kind) {
      case "u8":
        out[f.name] = record[f.offset];
        break;
      case "u32":
        out[f.name] = v.getUint32(f.offset, littleEndian);
        break;
      case "u64":
        out[f.name] = v.getBigUint64(f.offset, littleEndian);
        break;
      case "cksum":
        out[f.name] = readChecksum(v, f.offset, littleEndian);
        break;
      case "bytes":
        out[f.name] = shareBytes
          ? record.subarray(f.offset, f.offset + f.size)
          : record.slice(f.offset, f.offset + f.size);
        break;
      case "string": {
        const raw = record.subarray(f.offset, f.offset + f.size);
        const nul = raw.indexOf(0);
        out[f.name] = utf8.decode(nul < 0 ? raw : raw.subarray(0, nul));
        break;
      }
    }
  }
  out.record_checksum = type === DRR.BEGIN
    ? [0n, 0n, 0n, 0n]
    : readChecksum(v, CHECKSUM_OFFSET, littleEndian);
  return out as unknown as DrrRecord;
}

/**
 * One record kind to encode: its `type`, and any of that kind's fields (missing ones are zero;
 * a field the kind does not have is a type error).
 */
export type RecordInitOf<R extends DrrRecord> = { type: R["type"] } & Partial<Omit<R, "type">>;

/**
 * A record to encode, keyed by its `type`: the fields of that record kind, any of them left
 * out (encoded as zero; the writer fills `toguid` from BEGIN). A misspelled field is a type
 * error.
 *
 * @example
 * ```ts
 * import type { RecordInit } from "jsr:@zsend/zsend";
 * const free: RecordInit = { type: 4, object: 3n, offset: 0n, length: 512n };
 * if (free.type === 4 && free.length !== 512n) throw new Error();
 * ```
 */
export type RecordInit =
  | RecordInitOf<DrrBegin>
  | RecordInitOf<DrrObject>
  | RecordInitOf<DrrFreeObjects>
  | RecordInitOf<DrrWrite>
  | RecordInitOf<DrrFree>
  | RecordInitOf<DrrEnd>
  | RecordInitOf<DrrWriteByref>
  | RecordInitOf<DrrSpill>
  | RecordInitOf<DrrWriteEmbedded>
  | RecordInitOf<DrrObjectRange>
  | RecordInitOf<DrrRedact>;

/**
 * Encodes a record into 312 bytes. Fields left out are zero; the trailing checksum is
 * written only when `record_checksum` is given (writers set it from the running checksum).
 *
 * @param rec the record
 * @param littleEndian the byte order to write
 * @param out where to write (zeroed first); a new buffer when absent
 * @returns the 312 bytes
 * @example
 * ```ts
 * import { encodeRecord } from "jsr:@zsend/zsend";
 * const bytes = encodeRecord({ type: 2, firstobj: 1n, numobjs: 5n }, true);
 * if (bytes.length !== 312 || bytes[8] !== 1) throw new Error("bad encoding");
 * ```
 */
export function encodeRecord(
  rec: RecordInit | DrrRecord,
  littleEndian: boolean,
  out: Uint8Array = new Uint8Array(RECORD_SIZE),
): Uint8Array {
  const fields = LAYOUTS[rec.type];
  if (fields === undefined) throw new RangeError(`unknown record type ${rec.type}`);
  out.fill(0);
  const v = viewOf(out);
  const r = rec as Record<string, unknown>;
  v.setUint32(0, rec.type, littleEndian);
  v.setUint32(4, Number(r.payloadlen ?? 0), littleEndian);
  for (const f of fields) {
    const value = r[f.name];
    if (value === undefined) continue;
    switch (f.kind) {
      case "u8":
        out[f.offset] = Number(value);
        break;
      case "u32":
        v.setUint32(f.offset, Number(value), littleEndian);
        break;
      case "u64":
        v.setBigUint64(f.offset, BigInt.asUintN(64, BigInt(value as bigint)), littleEndian);
        break;
      case "cksum":
        writeChecksum(v, f.offset, value as Checksum, littleEndian);
        break;
      case "bytes":
        out.set((value as Uint8Array).subarray(0, f.size), f.offset);
        break;
      case "string": {
        const bytes = utf8enc.encode(String(value));
        if (bytes.length >= f.size) throw new RangeError(`${f.name} is too long`);
        out.set(bytes, f.offset);
        break;
      }
    }
  }
  const ck = r.record_checksum as Checksum | undefined;
  if (ck !== undefined && rec.type !== DRR.BEGIN) {
    writeChecksum(v, CHECKSUM_OFFSET, ck, littleEndian);
  }
  return out;
}

/** Writes four 64-bit words at `off`. */
export function writeChecksum(v: DataView, off: number, ck: Checksum, le: boolean): void {
  for (let i = 0; i < 4; i++) v.setBigUint64(off + 8 * i, ck[i]!, le);
}

/**
 * Finds the first non-zero byte that no field of the record's type uses (pads, the tail of
 * short records). The sender zeroes them, so one that is set means damage.
 *
 * @returns the offset within the record, or -1 when all unused bytes are zero
 */
export function firstStrayByte(record: Uint8Array, type: number): number {
  const ranges = UNUSED_RANGES[type];
  if (ranges === undefined) return -1;
  for (let r = 0; r < ranges.length; r += 2) {
    for (let i = ranges[r]!, end = ranges[r + 1]!; i < end; i++) {
      if (record[i] !== 0) return i;
    }
  }
  return -1;
}

/** Whether a record type is one this implementation knows. */
export function isKnownType(type: number): boolean {
  return type >= 0 && type < DRR_NUMTYPES;
}

/** Rounds up to a multiple of 8. */
function roundUp8(n: number): number {
  return (n + 7) & ~7;
}

/**
 * The number of payload bytes that follow a record, as the receiver computes it.
 *
 * @returns the size; for WRITE and SPILL a bigint-derived number that may be huge in a
 * hostile stream (callers check limits before reading)
 * @example
 * ```ts
 * import { payloadSize } from "jsr:@zsend/zsend";
 * const n = payloadSize({ type: 8, payloadlen: 0, object: 5n, offset: 0n, length: 512n,
 *   toguid: 1n, compression: 0, etype: 0, lsize: 512, psize: 61,
 *   record_checksum: [0n, 0n, 0n, 0n] });
 * if (n !== 64) throw new Error(); // psize rounded up to 8
 * ```
 */
export function payloadSize(rec: DrrRecord): number {
  switch (rec.type) {
    case DRR.BEGIN:
      return rec.payloadlen;
    case DRR.OBJECT:
      return rec.raw_bonuslen !== 0 ? rec.raw_bonuslen : roundUp8(rec.bonuslen);
    case DRR.WRITE:
      return Number(rec.compressiontype !== 0 ? rec.compressed_size : rec.logical_size);
    case DRR.SPILL:
      return Number(rec.compressed_size !== 0n ? rec.compressed_size : rec.length);
    case DRR.WRITE_EMBEDDED:
      return roundUp8(rec.psize);
    default:
      return 0;
  }
}

/**
 * Header type (`DMU_GET_STREAM_HDRTYPE`) of a BEGIN's versioninfo.
 *
 * @example
 * ```ts
 * import { hdrtype } from "jsr:@zsend/zsend";
 * if (hdrtype(0x11n) !== 1) throw new Error();
 * ```
 */
export function hdrtype(versioninfo: bigint): number {
  return Number(versioninfo & 3n);
}

/**
 * Feature flags (`DMU_GET_FEATUREFLAGS`) of a BEGIN's versioninfo.
 *
 * @example
 * ```ts
 * import { featureFlags } from "jsr:@zsend/zsend";
 * if (featureFlags(0x11n) !== 4n) throw new Error();
 * ```
 */
export function featureFlags(versioninfo: bigint): bigint {
  return (versioninfo >> 2n) & ((1n << 56n) - 1n);
}

/**
 * Whether feature flags (from {@linkcode featureFlags}) include a `FEATURE` bit.
 *
 * @example
 * ```ts
 * import { FEATURE, hasFeature } from "jsr:@zsend/zsend";
 * if (!hasFeature(4n, FEATURE.SA_SPILL)) throw new Error();
 * ```
 */
export function hasFeature(features: bigint, flag: number): boolean {
  return (features & BigInt(flag)) !== 0n;
}

/**
 * Builds a versioninfo from a header type and feature flags.
 *
 * @example
 * ```ts
 * import { makeVersioninfo } from "jsr:@zsend/zsend";
 * if (makeVersioninfo(1, 4) !== 0x11n) throw new Error();
 * ```
 */
export function makeVersioninfo(hdr: number, features: bigint | number): bigint {
  return BigInt(hdr) | (BigInt(features) << 2n);
}
