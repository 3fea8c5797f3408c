/**
 * The field rules the OpenZFS receiver applies to a record before it reads the record's
 * payload, and the checks on a BEGIN that need no pool. Pure functions, no I/O.
 *
 * Source of truth: OpenZFS `module/zfs/dmu_recv.c` (`recv_check_drr_*`, run by
 * `receive_read_record()` with the pool's limits; here the limits it uses when it has no pool,
 * `spa == NULL`), `dmu_recv_begin()` / `dmu_recv_begin_check()`, and
 * `lib/libzfs/libzfs_sendrecv.c` (`zfs_receive_impl()`, `zfs_receive_one()`). Within each
 * record type the rules run in the receiver's order, so the first message is the one the
 * receiver would report. Messages follow the receiver's wording.
 *
 * @module
 */

import {
  BACKUP_MAGIC,
  BEGIN_FLAG,
  DN_MAX_OBJECT,
  DRR,
  FEATURE,
  HDRTYPE,
  MAX_BEGIN_PAYLOAD,
  OBJSET_TYPE,
  RECORD_FLAG,
  SPA_MAXBLOCKSIZE,
  SPA_MINBLOCKSIZE,
  SPA_OLD_MAXBLOCKSIZE,
} from "./constants.ts";
import {
  type DrrBegin,
  type DrrFree,
  type DrrFreeObjects,
  type DrrObject,
  type DrrObjectRange,
  type DrrRecord,
  type DrrRedact,
  type DrrSpill,
  type DrrWrite,
  type DrrWriteByref,
  type DrrWriteEmbedded,
  featureFlags,
  hdrtype,
} from "./record.ts";

// ---------------------------------------------------------------------------------------------
// Constants, each derived from the OpenZFS header named beside it.
// SPA_MINBLOCKSIZE (1 << SPA_MINBLOCKSHIFT 9), SPA_OLD_MAXBLOCKSIZE (1 << 17), SPA_MAXBLOCKSIZE
// (1 << 24): include/sys/fs/zfs.h; DN_MAX_OBJECT (1 << DN_MAX_OBJECT_SHIFT 48):
// include/sys/dnode.h. These four come from constants.ts.
// ---------------------------------------------------------------------------------------------

/** include/sys/fs/zfs.h: SPA_MINBLOCKSHIFT. */
const SPA_MINBLOCKSHIFT = 9;
/** include/sys/spa.h: SPA_BLKPTRSHIFT, a blkptr_t is 1 << 7 = 128 bytes. */
const SPA_BLKPTRSHIFT = 7;
/** include/sys/spa.h: sizeof (blkptr_t). */
const BLKPTR_SIZE = 1 << SPA_BLKPTRSHIFT;
/** include/sys/spa.h: BPE_NUM_WORDS 14 words of 8 bytes hold an embedded payload. */
const BPE_PAYLOAD_SIZE = 14 * 8;
/** include/sys/spa.h: bp_embedded_type_t is DATA 0, RESERVED 1, REDACTED 2. */
const NUM_BP_EMBEDDED_TYPES = 3;

/** include/sys/dnode.h: DNODE_SHIFT (512-byte dnode slots). */
const DNODE_SHIFT = 9;
/** include/sys/dnode.h: DN_MIN_INDBLKSHIFT (4K indirect blocks). */
const DN_MIN_INDBLKSHIFT = 12;
/** include/sys/dnode.h: DN_MAX_INDBLKSHIFT (128K indirect blocks). */
const DN_MAX_INDBLKSHIFT = 17;
/** include/sys/dnode.h: DNODE_BLOCK_SHIFT (16K dnode blocks). */
const DNODE_BLOCK_SHIFT = 14;
/** include/sys/dnode.h: DNODE_CORE_SIZE, a dnode without its block pointers. */
const DNODE_CORE_SIZE = 64;
/** include/sys/dnode.h: DN_MAX_OFFSET_SHIFT. */
const DN_MAX_OFFSET_SHIFT = 64;
/** include/sys/dnode.h: DNODE_MIN_SIZE = 1 << DNODE_SHIFT. */
const DNODE_MIN_SIZE = 1 << DNODE_SHIFT;
/** include/sys/dnode.h: DNODE_MAX_SIZE = 1 << DNODE_BLOCK_SHIFT (16384). */
const DNODE_MAX_SIZE = 1 << DNODE_BLOCK_SHIFT;
/** include/sys/dnode.h: DNODE_MIN_SLOTS = DNODE_MIN_SIZE >> DNODE_SHIFT (1). */
const DNODE_MIN_SLOTS = DNODE_MIN_SIZE >> DNODE_SHIFT;
/** include/sys/dnode.h: DN_MAX_NBLKPTR = (DNODE_MIN_SIZE - DNODE_CORE_SIZE) >> 7 (3). */
const DN_MAX_NBLKPTR = (DNODE_MIN_SIZE - DNODE_CORE_SIZE) >> SPA_BLKPTRSHIFT;
/** include/sys/dnode.h: DNODES_PER_BLOCK = 1 << (DNODE_BLOCK_SHIFT - DNODE_SHIFT) (32). */
const DNODES_PER_BLOCK = 1 << (DNODE_BLOCK_SHIFT - DNODE_SHIFT);
/**
 * include/sys/dnode.h: DN_MAX_LEVELS = DIV_ROUND_UP(DN_MAX_OFFSET_SHIFT - SPA_MINBLOCKSHIFT,
 * DN_MIN_INDBLKSHIFT - SPA_BLKPTRSHIFT) + 1 = ceil(55 / 5) + 1 = 12.
 */
const DN_MAX_LEVELS = Math.ceil(
  (DN_MAX_OFFSET_SHIFT - SPA_MINBLOCKSHIFT) / (DN_MIN_INDBLKSHIFT - SPA_BLKPTRSHIFT),
) + 1;

/** include/sys/dnode.h: DN_BONUS_SIZE(dnsize), the bonus area of a dnode of that size. */
function dnBonusSize(dnsize: number): number {
  return dnsize - DNODE_CORE_SIZE - BLKPTR_SIZE;
}

/** include/sys/dnode.h: DN_SLOTS_TO_BONUSLEN(slots) (320 for one slot). */
function dnSlotsToBonuslen(slots: number): number {
  return dnBonusSize(slots * DNODE_MIN_SIZE);
}

/** include/sys/dmu.h: DMU_OT_NONE and DMU_OT_SA in enum dmu_object_type. */
const DMU_OT_NONE = 0;
const DMU_OT_SA = 44;
/** include/sys/dmu.h: DMU_OT_NUMTYPES, after DMU_OT_BPOBJ_SUBOBJ = 53, the last legacy type. */
const DMU_OT_NUMTYPES = 54;
/** include/sys/dmu.h: bits of a "new" (DMU_OT()) object type. */
const DMU_OT_NEWTYPE = 0x80;
const DMU_OT_METADATA = 0x40;
const DMU_OT_BYTESWAP_MASK = 0x1f;
/** include/sys/dmu.h: dmu_object_byteswap_t, UINT8 0 .. ACL 9, then DMU_BSWAP_NUMFUNCS. */
const DMU_BSWAP_UINT64 = 3;
const DMU_BSWAP_NUMFUNCS = 10;
/** include/sys/dmu.h: DMU_OTN_UINT64_METADATA = DMU_OT(DMU_BSWAP_UINT64, metadata, plain). */
const DMU_OTN_UINT64_METADATA = DMU_OT_NEWTYPE | DMU_OT_METADATA | DMU_BSWAP_UINT64;

/** include/sys/dmu.h: DMU_OT_IS_VALID(ot). */
function dmuOtIsValid(ot: number): boolean {
  return (ot & DMU_OT_NEWTYPE) !== 0
    ? (ot & DMU_OT_BYTESWAP_MASK) < DMU_BSWAP_NUMFUNCS
    : ot < DMU_OT_NUMTYPES;
}

/** include/sys/zio.h: enum zio_checksum, INHERIT 0 .. BLAKE3 14, then ZIO_CHECKSUM_FUNCTIONS. */
const ZIO_CHECKSUM_FUNCTIONS = 15;
/** include/sys/zio_compress.h: enum zio_compress, OFF 2, LZ4 15, ZSTD 16, then FUNCTIONS. */
const ZIO_COMPRESS_OFF = 2;
const ZIO_COMPRESS_LZ4 = 15;
const ZIO_COMPRESS_ZSTD = 16;
const ZIO_COMPRESS_FUNCTIONS = 17;
/** include/sys/zio.h: ZIO_COMPRESS_LEGACY_FUNCTIONS is ZIO_COMPRESS_LZ4. */
const ZIO_COMPRESS_LEGACY_FUNCTIONS = ZIO_COMPRESS_LZ4;

/** include/sys/fs/zfs.h: dmu_objset_type_t ends with DMU_OST_NUMTYPES = 6. */
const DMU_OST_NUMTYPES = 6;
/** include/sys/fs/zfs.h: ZFS_MAX_DATASET_NAME_LEN, counting the terminating NUL. */
const ZFS_MAX_DATASET_NAME_LEN = 256;

/**
 * module/zfs/dmu_recv.c, recv_check_resolve_limits() with spa == NULL: the largest block is
 * SPA_MAXBLOCKSIZE and the largest dnode DNODE_MAX_SIZE.
 */
const MAX_BLOCK_SIZE = BigInt(SPA_MAXBLOCKSIZE);
const MAX_DNODE_SIZE = DNODE_MAX_SIZE;

/**
 * include/sys/zfs_ioctl.h: DMU_BACKUP_FEATURE_MASK, the flags the newest receiver knows, plus
 * DEDUP and DEDUPPROPS, which were in the mask until OpenZFS 2.0 removed deduplicated streams
 * (zfs-fuse and older OpenZFS streams carry them; `zsend recv` resolves WRITE_BYREF itself).
 */
const SUPPORTED_FEATURES = BigInt(
  FEATURE.DEDUP | FEATURE.DEDUPPROPS | FEATURE.SA_SPILL | FEATURE.EMBED_DATA | FEATURE.LZ4 |
    FEATURE.RESUMING | FEATURE.LARGE_BLOCKS | FEATURE.COMPRESSED | FEATURE.LARGE_DNODE |
    FEATURE.RAW | FEATURE.HOLDS | FEATURE.REDACTED | FEATURE.SWITCH_TO_LARGE_BLOCKS |
    FEATURE.ZSTD | FEATURE.LONGNAME | FEATURE.LARGE_MICROZAP,
);

const U64_MAX = (1n << 64n) - 1n;

// ---------------------------------------------------------------------------------------------
// Helpers mirroring the receiver's.
// ---------------------------------------------------------------------------------------------

/** recv_u64_add_overflow(): whether a + b wraps around 2^64. */
function addOverflows(a: bigint, b: bigint): boolean {
  return a + b > U64_MAX;
}

/** recv_check_drr_object_id(): object 0 is the meta dnode; numbers end below DN_MAX_OBJECT. */
function checkObjectId(object: bigint): string | null {
  if (object === 0n || object >= DN_MAX_OBJECT) {
    return `object number ${object} outside valid range 1-${DN_MAX_OBJECT - 1n}`;
  }
  return null;
}

/** recv_check_drr_size_min(). */
function sizeMin(size: bigint | number, min: bigint | number, what: string): string | null {
  return BigInt(size) < BigInt(min) ? `${what} ${size} below minimum ${min}` : null;
}

/** recv_check_drr_size_max(). */
function sizeMax(size: bigint | number, max: bigint | number, what: string): string | null {
  return BigInt(size) > BigInt(max) ? `${what} ${size} exceeds maximum ${max}` : null;
}

/** recv_check_compress_feature(): algorithms newer than the legacy ones need a feature flag. */
function checkCompressFeature(compress: number, features: bigint, what: string): string | null {
  if (compress === ZIO_COMPRESS_ZSTD && !has(features, FEATURE.ZSTD)) {
    return `${what} compression type ZSTD requires DMU_BACKUP_FEATURE_ZSTD`;
  }
  if (
    compress >= ZIO_COMPRESS_LEGACY_FUNCTIONS && compress !== ZIO_COMPRESS_ZSTD &&
    !has(features, FEATURE.LZ4)
  ) {
    return `${what} compression type ${compress} requires DMU_BACKUP_FEATURE_LZ4`;
  }
  return null;
}

/** deduce_nblkptr(): the block pointer count dnode_allocate() gives such a dnode. */
function deduceNblkptr(bonustype: number, bonuslen: number, dnSlots: number): number {
  if (bonustype === DMU_OT_SA) return 1;
  const capacity = dnSlotsToBonuslen(dnSlots);
  return Math.min(
    DN_MAX_NBLKPTR,
    1 + ((capacity - Math.min(capacity, bonuslen)) >> SPA_BLKPTRSHIFT),
  );
}

function has(features: bigint, flag: number): boolean {
  return (features & BigInt(flag)) !== 0n;
}

function hex(n: number | bigint): string {
  return n.toString(16);
}

/** P2ROUNDUP(x, 8) on a uint32_t, as DRR_OBJECT_PAYLOAD_SIZE computes it. */
function roundUp8u32(n: number): number {
  return ((n + 7) & ~7) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Per record type.
// ---------------------------------------------------------------------------------------------

/** recv_check_drr_object(). */
function checkObject(
  r: DrrObject,
  raw: boolean,
  spill: boolean,
  features: bigint,
): string | null {
  const psize = r.raw_bonuslen !== 0 ? r.raw_bonuslen : roundUp8u32(r.bonuslen);
  const dnSlots = r.dn_slots !== 0 ? r.dn_slots : DNODE_MIN_SLOTS;
  const maxBonus = dnBonusSize(MAX_DNODE_SIZE);
  const maxSlots = MAX_DNODE_SIZE >> DNODE_SHIFT;
  let msg: string | null;

  if ((msg = checkObjectId(r.object))) return msg;
  if (r.object_type === DMU_OT_NONE) return "DRR_OBJECT type is DMU_OT_NONE";
  if (!dmuOtIsValid(r.object_type)) return `DRR_OBJECT has invalid type ${r.object_type}`;
  if (!dmuOtIsValid(r.bonustype)) return `DRR_OBJECT has invalid bonus type ${r.bonustype}`;
  // dnode_allocate(): no bonus only for NONE, SA and UINT64_METADATA; NONE never has one.
  const bonusOk = r.bonuslen === 0
    ? r.bonustype === DMU_OT_NONE || r.bonustype === DMU_OT_SA ||
      r.bonustype === DMU_OTN_UINT64_METADATA
    : r.bonustype !== DMU_OT_NONE;
  if (!bonusOk) {
    return `DRR_OBJECT bonus type ${r.bonustype} incompatible with bonus length ${r.bonuslen}`;
  }
  if (dnSlots > DNODE_MIN_SLOTS && !has(features, FEATURE.LARGE_DNODE)) {
    return `DRR_OBJECT dnode slots ${dnSlots} require DMU_BACKUP_FEATURE_LARGE_DNODE`;
  }
  if (r.blksz > SPA_OLD_MAXBLOCKSIZE && !has(features, FEATURE.LARGE_BLOCKS)) {
    return `DRR_OBJECT block size ${r.blksz} requires DMU_BACKUP_FEATURE_LARGE_BLOCKS`;
  }
  if (r.checksumtype >= ZIO_CHECKSUM_FUNCTIONS) {
    return `DRR_OBJECT has invalid checksum type ${r.checksumtype}`;
  }
  if (r.compress >= ZIO_COMPRESS_FUNCTIONS) {
    return `DRR_OBJECT has invalid compression type ${r.compress}`;
  }
  if (r.blksz % SPA_MINBLOCKSIZE !== 0) {
    return `DRR_OBJECT block size ${r.blksz} is not a multiple of ${SPA_MINBLOCKSIZE}`;
  }
  if ((msg = sizeMin(r.blksz, SPA_MINBLOCKSIZE, "DRR_OBJECT block size"))) return msg;
  if ((msg = sizeMax(r.blksz, MAX_BLOCK_SIZE, "DRR_OBJECT block size"))) return msg;
  if (r.bonuslen > maxBonus) {
    return `DRR_OBJECT bonus length ${r.bonuslen} exceeds maximum ${maxBonus}`;
  }
  if (dnSlots > maxSlots) {
    return `DRR_OBJECT dnode slot count ${dnSlots} exceeds maximum ${maxSlots}`;
  }
  if ((msg = sizeMax(psize, MAX_BLOCK_SIZE, "DRR_OBJECT bonus payload size"))) return msg;
  const slots = BigInt(dnSlots);
  if (addOverflows(r.object, slots)) {
    return `DRR_OBJECT object ${r.object} + dn_slots ${dnSlots} overflows`;
  }
  if (r.object + slots > DN_MAX_OBJECT) {
    return `DRR_OBJECT object range ${r.object}-${r.object + slots - 1n} exceeds DN_MAX_OBJECT`;
  }

  const hasSpill = (r.flags & RECORD_FLAG.OBJECT_SPILL) !== 0;
  const spillWithoutBegin = "DRR_OBJECT spill flag set but stream BEGIN missing " +
    "DRR_FLAG_SPILL_BLOCK";
  if (raw) {
    if ((r.flags & ~(RECORD_FLAG.OBJECT_SPILL | RECORD_FLAG.RAW_BYTESWAP)) !== 0) {
      return `DRR_OBJECT has invalid flags 0x${hex(r.flags)}`;
    }
    if (!spill && hasSpill) return spillWithoutBegin;
    if (r.raw_bonuslen < r.bonuslen) {
      return `DRR_OBJECT raw bonus length ${r.raw_bonuslen} < bonus length ${r.bonuslen}`;
    }
    // 0 keeps the default; anything else must be a real indirect block size.
    if (
      r.indblkshift !== 0 &&
      (r.indblkshift < DN_MIN_INDBLKSHIFT || r.indblkshift > DN_MAX_INDBLKSHIFT)
    ) {
      return `DRR_OBJECT indirect block shift ${r.indblkshift} outside valid range ` +
        `${DN_MIN_INDBLKSHIFT}-${DN_MAX_INDBLKSHIFT}`;
    }
    if (r.nlevels < 1 || r.nlevels > DN_MAX_LEVELS) {
      return `DRR_OBJECT tree depth ${r.nlevels} outside valid range 1-${DN_MAX_LEVELS}`;
    }
    if (r.nblkptr < 1 || r.nblkptr > DN_MAX_NBLKPTR) {
      return `DRR_OBJECT blkptr count ${r.nblkptr} outside valid range 1-${DN_MAX_NBLKPTR}`;
    }
    const nblkptr = deduceNblkptr(r.bonustype, r.bonuslen, dnSlots);
    if (r.nblkptr !== nblkptr) {
      return `DRR_OBJECT blkptr count ${r.nblkptr} incompatible with bonus type ` +
        `${r.bonustype} length ${r.bonuslen} (expected ${nblkptr})`;
    }
    // The bonus buffer shrinks with each extra block pointer, and by one more for a spill one.
    let maxRawBonus = dnSlotsToBonuslen(dnSlots) - (nblkptr - 1) * BLKPTR_SIZE;
    if (hasSpill) {
      if (maxRawBonus < BLKPTR_SIZE) {
        return `DRR_OBJECT spill flag incompatible with blkptr count ${nblkptr}`;
      }
      maxRawBonus -= BLKPTR_SIZE;
    }
    if (r.raw_bonuslen > maxRawBonus) {
      return `DRR_OBJECT raw bonus length ${r.raw_bonuslen} exceeds dnode bonus capacity ` +
        `${maxRawBonus}`;
    }
  } else {
    if ((r.flags & ~RECORD_FLAG.OBJECT_SPILL) !== 0) {
      return `DRR_OBJECT has invalid flags 0x${hex(r.flags)}`;
    }
    if (!spill && hasSpill) return spillWithoutBegin;
    if (r.raw_bonuslen !== 0) {
      return "DRR_OBJECT raw bonus length must be zero in non-raw streams";
    }
    const capacity = dnSlotsToBonuslen(dnSlots);
    if (r.bonuslen > capacity) {
      return `DRR_OBJECT bonus length ${r.bonuslen} exceeds dnode bonus capacity ${capacity}`;
    }
    if (r.nblkptr !== 0) return "DRR_OBJECT blkptr count must be zero in non-raw streams";
    if (r.indblkshift !== 0) {
      return "DRR_OBJECT indirect block shift must be zero in non-raw streams";
    }
    if (r.nlevels !== 0) return "DRR_OBJECT tree depth must be zero in non-raw streams";
  }
  return null;
}

/** recv_check_drr_free(), which the receiver also runs on DRR_REDACT (with the same words). */
function checkFree(r: DrrFree | DrrRedact): string | null {
  const msg = checkObjectId(r.object);
  if (msg) return msg;
  // A length of 2^64-1 means "to the end of the object".
  if (r.length !== U64_MAX && addOverflows(r.offset, r.length)) {
    return `DRR_FREE offset ${r.offset} + length ${r.length} overflows`;
  }
  return null;
}

/** recv_check_drr_freeobjects(). */
function checkFreeObjects(r: DrrFreeObjects): string | null {
  if (addOverflows(r.firstobj, r.numobjs)) {
    return `DRR_FREEOBJECTS first object ${r.firstobj} + count ${r.numobjs} overflows`;
  }
  return null;
}

/** recv_check_drr_object_range(). */
function checkObjectRange(r: DrrObjectRange, raw: boolean): string | null {
  const perBlock = BigInt(DNODES_PER_BLOCK);
  if (!raw) return "DRR_OBJECT_RANGE is only valid on raw streams";
  if (r.numslots !== perBlock) {
    return `DRR_OBJECT_RANGE numslots ${r.numslots} != ${DNODES_PER_BLOCK}`;
  }
  if (r.firstobj % perBlock !== 0n) {
    return `DRR_OBJECT_RANGE first object ${r.firstobj} is not dnode-block aligned`;
  }
  if (addOverflows(r.firstobj, r.numslots)) {
    return `DRR_OBJECT_RANGE first object ${r.firstobj} + numslots ${r.numslots} overflows`;
  }
  if (r.firstobj + r.numslots > DN_MAX_OBJECT) {
    return "DRR_OBJECT_RANGE extends past DN_MAX_OBJECT";
  }
  return null;
}

/** recv_check_drr_spill(). */
function checkSpill(r: DrrSpill, raw: boolean, features: bigint): string | null {
  const psize = r.compressed_size !== 0n ? r.compressed_size : r.length;
  let msg: string | null;
  if ((msg = checkObjectId(r.object))) return msg;
  // Non-raw senders leave the type at DMU_OT_NONE, which is valid.
  if (!dmuOtIsValid(r.object_type)) return `DRR_SPILL has invalid type ${r.object_type}`;
  if ((msg = sizeMin(r.length, SPA_MINBLOCKSIZE, "DRR_SPILL logical size"))) return msg;
  if ((msg = sizeMax(r.length, MAX_BLOCK_SIZE, "DRR_SPILL logical size"))) return msg;
  if ((msg = sizeMax(psize, MAX_BLOCK_SIZE, "DRR_SPILL payload size"))) return msg;
  // Raw sends always give the on-disk size; other sends never do.
  if (raw && r.compressed_size === 0n) {
    return "DRR_SPILL payload size must be non-zero on raw streams";
  } else if (!raw && r.compressed_size !== 0n) {
    return "DRR_SPILL compressed payload size must be zero on non-raw streams";
  }
  if (r.compressed_size !== 0n) {
    if (r.compressiontype >= ZIO_COMPRESS_FUNCTIONS) {
      return `DRR_SPILL has invalid compression type ${r.compressiontype}`;
    }
    if ((msg = checkCompressFeature(r.compressiontype, features, "DRR_SPILL"))) return msg;
    if (r.length < r.compressed_size) {
      return `DRR_SPILL logical size ${r.length} < compressed size ${r.compressed_size}`;
    }
  } else if (r.compressiontype !== 0) {
    return "DRR_SPILL compression type must be zero when uncompressed";
  }
  return null;
}

/** recv_check_drr_write(). */
function checkWrite(r: DrrWrite, raw: boolean, features: bigint): string | null {
  const compressed = r.compressiontype !== 0;
  const psize = compressed ? r.compressed_size : r.logical_size;
  let msg: string | null;
  if ((msg = checkObjectId(r.object))) return msg;
  if ((msg = sizeMin(r.logical_size, SPA_MINBLOCKSIZE, "DRR_WRITE logical size"))) return msg;
  if ((msg = sizeMax(r.logical_size, MAX_BLOCK_SIZE, "DRR_WRITE logical size"))) return msg;
  if (r.logical_size > BigInt(SPA_OLD_MAXBLOCKSIZE) && !has(features, FEATURE.LARGE_BLOCKS)) {
    return `DRR_WRITE logical size ${r.logical_size} requires DMU_BACKUP_FEATURE_LARGE_BLOCKS`;
  }
  if ((msg = sizeMax(psize, MAX_BLOCK_SIZE, "DRR_WRITE payload size"))) return msg;
  const lsizeBelowPsize = () =>
    r.logical_size < r.compressed_size
      ? `DRR_WRITE logical size ${r.logical_size} < compressed size ${r.compressed_size}`
      : null;
  if (raw) {
    // Raw sends give the on-disk size even for uncompressed blocks.
    if (r.compressed_size === 0n) {
      return "DRR_WRITE compressed size must be non-zero on raw streams";
    }
    if (r.compressiontype >= ZIO_COMPRESS_FUNCTIONS) {
      return `DRR_WRITE has invalid compression type ${r.compressiontype}`;
    }
    if ((msg = checkCompressFeature(r.compressiontype, features, "DRR_WRITE"))) return msg;
    if ((msg = lsizeBelowPsize())) return msg;
  } else if (compressed) {
    if (!has(features, FEATURE.COMPRESSED)) {
      return "DRR_WRITE compressed payload requires DMU_BACKUP_FEATURE_COMPRESSED";
    }
    if (r.compressiontype >= ZIO_COMPRESS_FUNCTIONS) {
      return `DRR_WRITE has invalid compression type ${r.compressiontype}`;
    }
    if ((msg = checkCompressFeature(r.compressiontype, features, "DRR_WRITE"))) return msg;
    if (r.compressed_size === 0n) return "DRR_WRITE compressed size must be non-zero";
    if ((msg = lsizeBelowPsize())) return msg;
  } else if (r.compressed_size !== 0n) {
    return "DRR_WRITE compressed size must be zero when uncompressed";
  }
  if (addOverflows(r.offset, r.logical_size)) {
    return `DRR_WRITE offset ${r.offset} + logical size ${r.logical_size} overflows`;
  }
  if (!dmuOtIsValid(r.object_type)) return `DRR_WRITE has invalid type ${r.object_type}`;
  if (r.checksumtype >= ZIO_CHECKSUM_FUNCTIONS) {
    return `DRR_WRITE has invalid checksum type ${r.checksumtype}`;
  }
  return null;
}

/** recv_check_drr_write_embedded(). */
function checkWriteEmbedded(
  r: DrrWriteEmbedded,
  raw: boolean,
  features: bigint,
): string | null {
  let msg: string | null;
  if (raw) return "DRR_WRITE_EMBEDDED is invalid on raw streams";
  if (!has(features, FEATURE.EMBED_DATA)) {
    return "DRR_WRITE_EMBEDDED requires DMU_BACKUP_FEATURE_EMBED_DATA";
  }
  if ((msg = checkObjectId(r.object))) return msg;
  if ((msg = sizeMax(r.length, MAX_BLOCK_SIZE, "DRR_WRITE_EMBEDDED length"))) return msg;
  if (r.length > BigInt(SPA_OLD_MAXBLOCKSIZE) && !has(features, FEATURE.LARGE_BLOCKS)) {
    return `DRR_WRITE_EMBEDDED length ${r.length} requires DMU_BACKUP_FEATURE_LARGE_BLOCKS`;
  }
  if ((msg = sizeMax(r.lsize, MAX_BLOCK_SIZE, "DRR_WRITE_EMBEDDED logical size"))) return msg;
  if ((msg = sizeMax(r.psize, BPE_PAYLOAD_SIZE, "DRR_WRITE_EMBEDDED payload size"))) return msg;
  if (r.compression >= ZIO_COMPRESS_FUNCTIONS) {
    return `DRR_WRITE_EMBEDDED has invalid compression type ${r.compression}`;
  }
  if ((msg = checkCompressFeature(r.compression, features, "DRR_WRITE_EMBEDDED"))) return msg;
  if (r.compression === ZIO_COMPRESS_OFF && r.lsize !== r.psize) {
    return `DRR_WRITE_EMBEDDED logical size ${r.lsize} must equal payload size ${r.psize} ` +
      "when compression is off";
  }
  if (r.compression !== ZIO_COMPRESS_OFF && r.lsize < r.psize) {
    return `DRR_WRITE_EMBEDDED logical size ${r.lsize} < payload size ${r.psize}`;
  }
  if (BigInt(r.lsize) > r.length) {
    return `DRR_WRITE_EMBEDDED logical size ${r.lsize} exceeds length ${r.length}`;
  }
  if (addOverflows(r.offset, r.length)) {
    return `DRR_WRITE_EMBEDDED offset ${r.offset} + length ${r.length} overflows`;
  }
  if (r.etype >= NUM_BP_EMBEDDED_TYPES) {
    return `DRR_WRITE_EMBEDDED has invalid embedded type ${r.etype}`;
  }
  return null;
}

/**
 * receive_write_byref() of OpenZFS before 2.0 (the newest receiver refuses WRITE_BYREF
 * outright): the one check that needs neither the pool nor earlier records.
 */
function checkWriteByref(r: DrrWriteByref): string | null {
  if (addOverflows(r.offset, r.length)) {
    return `DRR_WRITE_BYREF offset ${r.offset} + length ${r.length} overflows`;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Public API.
// ---------------------------------------------------------------------------------------------

/**
 * What the rules need to know about the substream a record belongs to.
 *
 * @example
 * ```ts
 * import { checkRecordFields, type RuleContext } from "./record_rules.ts";
 * import { featureFlags, makeVersioninfo } from "./record.ts";
 * const ctx: RuleContext = {
 *   features: featureFlags(makeVersioninfo(1, 1 << 24)),
 *   beginFlags: 8,
 * };
 * const msg = checkRecordFields(
 *   { type: 8, object: 1n, offset: 0n, length: 512n, lsize: 8, psize: 8 } as never,
 *   ctx,
 * );
 * if (msg !== "DRR_WRITE_EMBEDDED is invalid on raw streams") throw new Error(String(msg));
 * ```
 */
export interface RuleContext {
  /** Feature flags of the current substream's BEGIN (featureFlags(versioninfo), a bigint). */
  features: bigint;
  /** BEGIN drr_flags of the current substream. */
  beginFlags: number;
}

/**
 * Applies the receiver's field rules to one record, before its payload is read: the checks of
 * `recv_check_drr_object`, `_free` (also for REDACT), `_freeobjects`, `_object_range`, `_spill`,
 * `_write` and `_write_embedded`, with the limits the receiver uses without a pool (16 MiB
 * blocks, 16 KiB dnodes), and the overflow check of the pre-2.0 `receive_write_byref`. BEGIN
 * and END pass (see {@linkcode checkBegin}; the reader checks END's checksum).
 *
 * Rules that need the pool or earlier records (object existence, write order, OBJECT_RANGE
 * membership, the WRITE_BYREF reference) are not applied.
 *
 * @param rec the decoded record
 * @param ctx the feature flags and flags of the substream's BEGIN
 * @returns null when the record passes, else a short message in the receiver's words
 * @example
 * ```ts
 * import { checkRecordFields } from "./record_rules.ts";
 * const write = {
 *   type: 3, object: 2n, object_type: 19, offset: 0n, logical_size: 256n, checksumtype: 7,
 *   flags: 0, compressiontype: 0, compressed_size: 0n,
 * } as never;
 * const msg = checkRecordFields(write, { features: 0n, beginFlags: 0 });
 * if (msg !== "DRR_WRITE logical size 256 below minimum 512") throw new Error(String(msg));
 * ```
 */
export function checkRecordFields(rec: DrrRecord, ctx: RuleContext): string | null {
  const raw = (ctx.features & BigInt(FEATURE.RAW)) !== 0n;
  const spill = (ctx.beginFlags & BEGIN_FLAG.SPILL_BLOCK) !== 0;
  switch (rec.type) {
    case DRR.BEGIN:
    case DRR.END:
      return null;
    case DRR.OBJECT:
      return checkObject(rec, raw, spill, ctx.features);
    case DRR.FREEOBJECTS:
      return checkFreeObjects(rec);
    case DRR.WRITE:
      return checkWrite(rec, raw, ctx.features);
    case DRR.FREE:
    case DRR.REDACT:
      return checkFree(rec);
    case DRR.WRITE_BYREF:
      return checkWriteByref(rec);
    case DRR.SPILL:
      return checkSpill(rec, raw, ctx.features);
    case DRR.WRITE_EMBEDDED:
      return checkWriteEmbedded(rec, raw, ctx.features);
    case DRR.OBJECT_RANGE:
      return checkObjectRange(rec, raw);
    default:
      return `unknown record type ${(rec as { type: number }).type}`;
  }
}

/** The byte length of a decoded name, counting each undecodable byte (U+FFFD) as one. */
function rawNameLength(name: string): number {
  let n = 0;
  for (const ch of name) {
    const cp = ch.codePointAt(0)!;
    n += cp === 0xfffd || cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return n;
}

/**
 * Checks on a substream's BEGIN that need no pool: unknown feature flags, a hdrtype that is
 * neither 1 nor 2, objset type out of range, empty or over-long toname / missing '@' in a
 * substream toname, a clone flag without fromguid, etc. — only what dmu_recv_begin_check /
 * libzfs really refuse. Null when fine.
 *
 * In `zfs receive`'s order: libzfs `zfs_receive_impl()` (magic, feature flags and header type,
 * the '@' in toname, which it requires of a compound header's BEGIN too), the toname length
 * (a dataset name is shorter than `ZFS_MAX_DATASET_NAME_LEN`), then for a substream
 * `zfs_receive_one()` (a clone's origin is found by `fromguid`; the objset type must be ZFS or
 * ZVOL) and the kernel's `dmu_recv_begin()` / `dmu_recv_begin_check()` (payload at most 256 MiB;
 * a raw stream has no embedded data unless resuming, and needs `DRR_FLAG_SPILL_BLOCK`).
 * DEDUP and DEDUPPROPS are accepted, as receivers before OpenZFS 2.0 did.
 *
 * @param rec a BEGIN record
 * @returns null when the BEGIN passes, else a short message
 * @example
 * ```ts
 * import { checkBegin } from "./record_rules.ts";
 * import { makeVersioninfo } from "./record.ts";
 * const begin = {
 *   type: 0, payloadlen: 0, magic: 0x2F5BACBACn, versioninfo: makeVersioninfo(1, 1 << 24),
 *   objset_type: 2, flags: 0, toguid: 1n, fromguid: 0n, toname: "pool/fs@snap",
 * } as never;
 * if (checkBegin(begin) !== "Spill block flag missing for raw send") throw new Error();
 * ```
 */
export function checkBegin(rec: DrrBegin): string | null {
  if (rec.magic !== BACKUP_MAGIC) return "invalid stream (bad magic number)";

  const features = featureFlags(rec.versioninfo);
  const unknown = features & ~SUPPORTED_FEATURES;
  if (unknown !== 0n) {
    return `stream has unsupported feature, feature flags = ${hex(features)} ` +
      `(unknown flags = ${hex(unknown)})`;
  }
  const hdr = hdrtype(rec.versioninfo);
  if (hdr !== HDRTYPE.SUBSTREAM && hdr !== HDRTYPE.COMPOUNDSTREAM) {
    return `stream has unsupported header type ${hdr} (neither 1, substream, nor 2, compound)`;
  }
  if (rec.toname === "") return "invalid stream (bad snapshot name): toname is empty";
  if (!rec.toname.includes("@")) {
    return `invalid stream (bad snapshot name): toname "${rec.toname}" has no '@'`;
  }
  const nameLength = rawNameLength(rec.toname);
  if (nameLength >= ZFS_MAX_DATASET_NAME_LEN) {
    return `invalid stream (bad snapshot name): toname is ${nameLength} bytes, the limit is ` +
      `${ZFS_MAX_DATASET_NAME_LEN - 1}`;
  }
  if (hdr !== HDRTYPE.SUBSTREAM) return null;

  if ((rec.flags & BEGIN_FLAG.CLONE) !== 0 && rec.fromguid === 0n) {
    return "local origin for clone does not exist (a clone stream with fromguid 0)";
  }
  if (rec.objset_type !== OBJSET_TYPE.ZFS && rec.objset_type !== OBJSET_TYPE.ZVOL) {
    return rec.objset_type >= DMU_OST_NUMTYPES
      ? `invalid record type: objset type ${rec.objset_type} out of range`
      : `invalid record type: objset type ${rec.objset_type} is neither 2 (ZFS) nor 3 (ZVOL)`;
  }
  if (rec.payloadlen > MAX_BEGIN_PAYLOAD) {
    return `BEGIN payload length ${rec.payloadlen} exceeds maximum ${MAX_BEGIN_PAYLOAD}`;
  }
  if (has(features, FEATURE.RAW)) {
    if (has(features, FEATURE.EMBED_DATA) && !has(features, FEATURE.RESUMING)) {
      return "embedded data (DMU_BACKUP_FEATURE_EMBED_DATA) is incompatible with raw streams";
    }
    if ((rec.flags & BEGIN_FLAG.SPILL_BLOCK) === 0) {
      return "Spill block flag missing for raw send";
    }
  }
  return null;
}
