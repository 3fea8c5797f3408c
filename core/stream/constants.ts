/**
 * Constants of the ZFS send stream format (OpenZFS `include/sys/zfs_ioctl.h`).
 *
 * @module
 */

/**
 * Size in bytes of one replay record (`dmu_replay_record_t`).
 *
 * @example
 * ```ts
 * import { RECORD_SIZE, StreamWriter } from "jsr:@zsend/zsend";
 * const [begin] = new StreamWriter().begin({ toname: "p/fs@a", toguid: 1n, objset_type: 2 });
 * if (begin!.length !== RECORD_SIZE) throw new Error();
 * ```
 */
export const RECORD_SIZE = 312;
/** Offset of the trailing per-record checksum (`drr_checksum.drr_checksum`). */
export const CHECKSUM_OFFSET = 280;
/** Offset of `drr_end.drr_checksum`, the checksum of a whole substream. */
export const END_CHECKSUM_OFFSET = 8;

/**
 * The BEGIN record's magic number, `DMU_BACKUP_MAGIC`.
 *
 * @example
 * ```ts
 * import { BACKUP_MAGIC, decodeRecord, StreamWriter } from "jsr:@zsend/zsend";
 * const [begin] = new StreamWriter().begin({ toname: "p/fs@a", toguid: 1n, objset_type: 2 });
 * const rec = decodeRecord(begin!, true);
 * if (rec.type !== 0 || rec.magic !== BACKUP_MAGIC) throw new Error();
 * ```
 */
export const BACKUP_MAGIC = 0x2F5BACBACn;
/** The magic number as it reads from a stream of the other byte order. */
export const BACKUP_MAGIC_SWAPPED = 0xACCBBAF502000000n;

/**
 * Record types (`drr_type`).
 *
 * @example
 * ```ts
 * import { DRR, recordTypeName } from "jsr:@zsend/zsend";
 * if (DRR.WRITE !== 3 || recordTypeName(DRR.WRITE) !== "WRITE") throw new Error();
 * ```
 */
export const DRR = {
  BEGIN: 0,
  OBJECT: 1,
  FREEOBJECTS: 2,
  WRITE: 3,
  FREE: 4,
  END: 5,
  WRITE_BYREF: 6,
  SPILL: 7,
  WRITE_EMBEDDED: 8,
  OBJECT_RANGE: 9,
  REDACT: 10,
} as const;

/** Number of record types this implementation knows (`DRR_NUMTYPES`). */
export const DRR_NUMTYPES = 11;

/** The name of each record type, indexed by `drr_type`. */
export const RECORD_TYPE_NAMES = [
  "BEGIN",
  "OBJECT",
  "FREEOBJECTS",
  "WRITE",
  "FREE",
  "END",
  "WRITE_BYREF",
  "SPILL",
  "WRITE_EMBEDDED",
  "OBJECT_RANGE",
  "REDACT",
] as const;

/** A record type's name. */
export type RecordTypeName = typeof RECORD_TYPE_NAMES[number];

/**
 * Returns the name of a record type, or `TYPE_n` for an unknown one.
 *
 * @example
 * ```ts
 * import { recordTypeName } from "jsr:@zsend/zsend";
 * if (recordTypeName(4) !== "FREE" || recordTypeName(99) !== "TYPE_99") throw new Error();
 * ```
 */
export function recordTypeName(type: number): string {
  return RECORD_TYPE_NAMES[type] ?? `TYPE_${type}`;
}

/**
 * Header types, the low two bits of `drr_versioninfo`.
 *
 * @example
 * ```ts
 * import { HDRTYPE, hdrtype, makeVersioninfo } from "jsr:@zsend/zsend";
 * if (hdrtype(makeVersioninfo(HDRTYPE.COMPOUNDSTREAM, 4)) !== 2) throw new Error();
 * ```
 */
export const HDRTYPE = { SUBSTREAM: 1, COMPOUNDSTREAM: 2 } as const;

/**
 * Feature flags, bits 2.. of `drr_versioninfo` (shifted down by 2).
 *
 * @example
 * ```ts
 * import { FEATURE, featureFlags, hasFeature, makeVersioninfo } from "jsr:@zsend/zsend";
 * const features = featureFlags(makeVersioninfo(1, FEATURE.LZ4 | FEATURE.EMBED_DATA));
 * if (!hasFeature(features, FEATURE.LZ4) || hasFeature(features, FEATURE.DEDUP)) throw new Error();
 * ```
 */
export const FEATURE = {
  DEDUP: 1 << 0,
  DEDUPPROPS: 1 << 1,
  SA_SPILL: 1 << 2,
  EMBED_DATA: 1 << 16,
  LZ4: 1 << 17,
  LARGE_BLOCKS: 1 << 19,
  RESUMING: 1 << 20,
  REDACTED: 1 << 21,
  COMPRESSED: 1 << 22,
  LARGE_DNODE: 1 << 23,
  RAW: 1 << 24,
  ZSTD: 1 << 25,
  HOLDS: 1 << 26,
  SWITCH_TO_LARGE_BLOCKS: 1 << 27,
  LONGNAME: 1 << 28,
  LARGE_MICROZAP: 1 << 29,
} as const;

/** Every feature flag this implementation understands. */
export const KNOWN_FEATURES: number = Object.values(FEATURE).reduce((a, b) => a | b, 0);

/** BEGIN `drr_flags`. */
export const BEGIN_FLAG = {
  CLONE: 1,
  CI_DATA: 2,
  FREERECORDS: 4,
  SPILL_BLOCK: 8,
} as const;

/** Per-record `drr_flags` bits. */
export const RECORD_FLAG = {
  CHECKSUM_DEDUP: 1,
  RAW_BYTESWAP: 2,
  OBJECT_SPILL: 4,
  SPILL_UNMODIFIED: 4,
} as const;

/**
 * Objset types (`dmu_objset_type_t`).
 *
 * @example
 * ```ts
 * import { OBJSET_TYPE, StreamWriter, verifyStream } from "jsr:@zsend/zsend";
 * const w = new StreamWriter();
 * const b = w.begin({ toname: "p/vol@a", toguid: 3n, objset_type: OBJSET_TYPE.ZVOL });
 * if ((await verifyStream([...b, ...w.end()])).records !== 2) throw new Error();
 * ```
 */
export const OBJSET_TYPE = { NONE: 0, META: 1, ZFS: 2, ZVOL: 3, OTHER: 4, ANY: 5 } as const;

/** Block size limits (`include/sys/spa.h`). */
export const SPA_MINBLOCKSIZE = 512;
/** The largest block before the large-blocks feature. */
export const SPA_OLD_MAXBLOCKSIZE = 128 * 1024;
/** The largest block any pool allows. */
export const SPA_MAXBLOCKSIZE = 16 * 1024 * 1024;

/** The largest object number (`DN_MAX_OBJECT`, 2^48). */
export const DN_MAX_OBJECT = 1n << 48n;

/** Largest nvlist payload a BEGIN may carry, as `zstream` allows. */
export const MAX_BEGIN_PAYLOAD = 1 << 28;
