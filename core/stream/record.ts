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
interface RecordBase {
  /** `drr_payloadlen`: only BEGIN uses it, for the length of its nvlist. */
  payloadlen: number;
  /** The trailing per-record checksum (`drr_checksum`, bytes 280..311); zero in old streams. */
  record_checksum: Checksum;
}

/** DRR_BEGIN: opens a (sub)stream. */
export interface DrrBegin extends RecordBase {
  type: typeof DRR.BEGIN;
  magic: bigint;
  versioninfo: bigint;
  creation_time: bigint;
  /** `drr_type`: the objset type (2 filesystem, 3 volume). */
  objset_type: number;
  flags: number;
  toguid: bigint;
  fromguid: bigint;
  toname: string;
}

/** DRR_OBJECT: creates or reclaims an object; its bonus buffer follows. */
export interface DrrObject extends RecordBase {
  type: typeof DRR.OBJECT;
  object: bigint;
  object_type: number;
  bonustype: number;
  blksz: number;
  bonuslen: number;
  checksumtype: number;
  compress: number;
  dn_slots: number;
  flags: number;
  raw_bonuslen: number;
  toguid: bigint;
  indblkshift: number;
  nlevels: number;
  nblkptr: number;
  maxblkid: bigint;
}

/** DRR_FREEOBJECTS: frees a range of objects. */
export interface DrrFreeObjects extends RecordBase {
  type: typeof DRR.FREEOBJECTS;
  firstobj: bigint;
  numobjs: bigint;
  toguid: bigint;
}

/** DRR_WRITE: one block of data follows. */
export interface DrrWrite extends RecordBase {
  type: typeof DRR.WRITE;
  object: bigint;
  object_type: number;
  offset: bigint;
  logical_size: bigint;
  toguid: bigint;
  checksumtype: number;
  flags: number;
  compressiontype: number;
  /** `drr_key.ddk_cksum`: the block's checksum (dedup key). */
  key_cksum: Checksum;
  /** `drr_key.ddk_prop`: the block pointer's properties. */
  key_prop: bigint;
  compressed_size: bigint;
  salt: Uint8Array;
  iv: Uint8Array;
  mac: Uint8Array;
}

/** DRR_FREE: frees a byte range of an object (`length` 2^64-1: to its end). */
export interface DrrFree extends RecordBase {
  type: typeof DRR.FREE;
  object: bigint;
  offset: bigint;
  length: bigint;
  toguid: bigint;
}

/** DRR_END: closes a (sub)stream with the checksum of all of it. */
export interface DrrEnd extends RecordBase {
  type: typeof DRR.END;
  /** `drr_end.drr_checksum`: the running checksum before this record. */
  checksum: Checksum;
  toguid: bigint;
}

/** DRR_WRITE_BYREF: a block equal to one written earlier (dedup streams). */
export interface DrrWriteByref extends RecordBase {
  type: typeof DRR.WRITE_BYREF;
  object: bigint;
  offset: bigint;
  length: bigint;
  toguid: bigint;
  refguid: bigint;
  refobject: bigint;
  refoffset: bigint;
  checksumtype: number;
  flags: number;
  key_cksum: Checksum;
  key_prop: bigint;
}

/** DRR_SPILL: an object's spill block follows. */
export interface DrrSpill extends RecordBase {
  type: typeof DRR.SPILL;
  object: bigint;
  length: bigint;
  toguid: bigint;
  flags: number;
  compressiontype: number;
  compressed_size: bigint;
  salt: Uint8Array;
  iv: Uint8Array;
  mac: Uint8Array;
  object_type: number;
}

/** DRR_WRITE_EMBEDDED: a block small enough to live in its block pointer follows. */
export interface DrrWriteEmbedded extends RecordBase {
  type: typeof DRR.WRITE_EMBEDDED;
  object: bigint;
  offset: bigint;
  length: bigint;
  toguid: bigint;
  compression: number;
  etype: number;
  lsize: number;
  psize: number;
}

/** DRR_OBJECT_RANGE: a range of dnode slots (raw sends). */
export interface DrrObjectRange extends RecordBase {
  type: typeof DRR.OBJECT_RANGE;
  firstobj: bigint;
  numslots: bigint;
  toguid: bigint;
  salt: Uint8Array;
  iv: Uint8Array;
  mac: Uint8Array;
  flags: number;
}

/** DRR_REDACT: a byte range left out of a redacted send. */
export interface DrrRedact extends RecordBase {
  type: typeof DRR.REDACT;
  object: bigint;
  offset: bigint;
  length: bigint;
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
 * const rec = encodeRecord({ type: 0, magic: 0x2F5BACBACn } as never, false);
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
 * @returns the decoded record; a type this implementation does not know throws `RangeError`
 * @example
 * ```ts
 * import { decodeRecord, encodeRecord } from "./record.ts";
 * const bytes = encodeRecord({ type: 4, object: 7n, offset: 0n, length: 512n } as never, true);
 * const rec = decodeRecord(bytes, true);
 * if (rec.type !== 4 || rec.object !== 7n) throw new Error("round trip failed");
 * ```
 */
export function decodeRecord(record: Uint8Array, littleEndian: boolean): DrrRecord {
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
        out[f.name] = record.slice(f.offset, f.offset + f.size);
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

/** A record to encode: its type, and any fields (missing ones are zero). */
export type RecordInit = { type: number } & Partial<Record<string, unknown>>;

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
 * import { encodeRecord } from "./record.ts";
 * const bytes = encodeRecord({ type: 2, firstobj: 1n, numobjs: 5n } as never, true);
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

/** Header type (`DMU_GET_STREAM_HDRTYPE`) of a BEGIN's versioninfo. */
export function hdrtype(versioninfo: bigint): number {
  return Number(versioninfo & 3n);
}

/** Feature flags (`DMU_GET_FEATUREFLAGS`) of a BEGIN's versioninfo. */
export function featureFlags(versioninfo: bigint): bigint {
  return (versioninfo >> 2n) & ((1n << 56n) - 1n);
}

/** Whether feature flags (from {@linkcode featureFlags}) include a `FEATURE` bit. */
export function hasFeature(features: bigint, flag: number): boolean {
  return (features & BigInt(flag)) !== 0n;
}

/** Builds a versioninfo from a header type and feature flags. */
export function makeVersioninfo(hdr: number, features: bigint | number): bigint {
  return BigInt(hdr) | (BigInt(features) << 2n);
}
