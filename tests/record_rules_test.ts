/**
 * Tests of core/stream/record_rules.ts: one test per receiver rule, with the exact message, and every
 * record of the real fixture streams (zfs-fuse and OpenZFS) passing.
 */

import { assert, assertEquals } from "@std/assert";
import { join } from "node:path";
import { BEGIN_FLAG, DRR, FEATURE, HDRTYPE } from "../core/stream/constants.ts";
import { readRecords } from "../core/stream/reader.ts";
import {
  type Checksum,
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
  makeVersioninfo,
} from "../core/stream/record.ts";
import { checkBegin, checkRecordFields, type RuleContext } from "../core/stream/record_rules.ts";

// ---------------------------------------------------------------------------------------------
// Record builders: each default passes every rule; a test changes the fields it is about.
// ---------------------------------------------------------------------------------------------

const CK: Checksum = [0n, 0n, 0n, 0n];
const U64_MAX = (1n << 64n) - 1n;
const DN_MAX_OBJECT = 1n << 48n;
const MiB = 1024 * 1024;

function object(o: Partial<DrrObject> = {}): DrrObject {
  return {
    type: DRR.OBJECT,
    payloadlen: 0,
    record_checksum: CK,
    object: 5n,
    object_type: 19,
    bonustype: 44,
    blksz: 512,
    bonuslen: 168,
    checksumtype: 0,
    compress: 0,
    dn_slots: 0,
    flags: 0,
    raw_bonuslen: 0,
    toguid: 1n,
    indblkshift: 0,
    nlevels: 0,
    nblkptr: 0,
    maxblkid: 0n,
    ...o,
  };
}

/** An OBJECT as a raw send writes it (SA bonus, one slot, one block pointer). */
function rawObject(o: Partial<DrrObject> = {}): DrrObject {
  return object({ dn_slots: 1, raw_bonuslen: 320, indblkshift: 17, nlevels: 1, nblkptr: 1, ...o });
}

function write(o: Partial<DrrWrite> = {}): DrrWrite {
  return {
    type: DRR.WRITE,
    payloadlen: 0,
    record_checksum: CK,
    object: 2n,
    object_type: 19,
    offset: 0n,
    logical_size: 4096n,
    toguid: 1n,
    checksumtype: 7,
    flags: 0,
    compressiontype: 0,
    key_cksum: CK,
    key_prop: 0n,
    compressed_size: 0n,
    salt: new Uint8Array(8),
    iv: new Uint8Array(12),
    mac: new Uint8Array(16),
    ...o,
  };
}

function free(o: Partial<DrrFree> = {}): DrrFree {
  return {
    type: DRR.FREE,
    payloadlen: 0,
    record_checksum: CK,
    object: 2n,
    offset: 0n,
    length: U64_MAX,
    toguid: 1n,
    ...o,
  };
}

function redact(o: Partial<DrrRedact> = {}): DrrRedact {
  return { ...free(), type: DRR.REDACT, length: 4096n, ...o };
}

function freeObjects(o: Partial<DrrFreeObjects> = {}): DrrFreeObjects {
  return {
    type: DRR.FREEOBJECTS,
    payloadlen: 0,
    record_checksum: CK,
    firstobj: 0n,
    numobjs: 32n,
    toguid: 1n,
    ...o,
  };
}

function objectRange(o: Partial<DrrObjectRange> = {}): DrrObjectRange {
  return {
    type: DRR.OBJECT_RANGE,
    payloadlen: 0,
    record_checksum: CK,
    firstobj: 32n,
    numslots: 32n,
    toguid: 1n,
    salt: new Uint8Array(8),
    iv: new Uint8Array(12),
    mac: new Uint8Array(16),
    flags: 0,
    ...o,
  };
}

function spill(o: Partial<DrrSpill> = {}): DrrSpill {
  return {
    type: DRR.SPILL,
    payloadlen: 0,
    record_checksum: CK,
    object: 2n,
    length: 1536n,
    toguid: 1n,
    flags: 0,
    compressiontype: 0,
    compressed_size: 0n,
    salt: new Uint8Array(8),
    iv: new Uint8Array(12),
    mac: new Uint8Array(16),
    object_type: 0,
    ...o,
  };
}

function embedded(o: Partial<DrrWriteEmbedded> = {}): DrrWriteEmbedded {
  return {
    type: DRR.WRITE_EMBEDDED,
    payloadlen: 0,
    record_checksum: CK,
    object: 2n,
    offset: 0n,
    length: 512n,
    toguid: 1n,
    compression: 15,
    etype: 0,
    lsize: 512,
    psize: 66,
    ...o,
  };
}

function byref(o: Partial<DrrWriteByref> = {}): DrrWriteByref {
  return {
    type: DRR.WRITE_BYREF,
    payloadlen: 0,
    record_checksum: CK,
    object: 8n,
    offset: 0n,
    length: 16384n,
    toguid: 1n,
    refguid: 1n,
    refobject: 3n,
    refoffset: 0n,
    checksumtype: 8,
    flags: 1,
    key_cksum: CK,
    key_prop: 0n,
    ...o,
  };
}

function begin(o: Partial<DrrBegin> & { features?: number; hdr?: number } = {}): DrrBegin {
  const { features = 0, hdr = HDRTYPE.SUBSTREAM, ...rest } = o;
  return {
    type: DRR.BEGIN,
    payloadlen: 0,
    record_checksum: CK,
    magic: 0x2F5BACBACn,
    versioninfo: makeVersioninfo(hdr, features),
    creation_time: 0n,
    objset_type: 2,
    flags: 0,
    toguid: 1n,
    fromguid: 0n,
    toname: "pool/fs@snap",
    ...rest,
  };
}

function ctx(features = 0, beginFlags = 0): RuleContext {
  return { features: BigInt(features), beginFlags };
}

/** A raw stream: RAW, as OpenZFS sends it, with DRR_FLAG_SPILL_BLOCK. */
const RAW = ctx(FEATURE.RAW | FEATURE.LZ4, BEGIN_FLAG.SPILL_BLOCK);
const PLAIN = ctx();
const EMBED = ctx(FEATURE.EMBED_DATA | FEATURE.LZ4);

// ---------------------------------------------------------------------------------------------
// One test per rule.
// ---------------------------------------------------------------------------------------------

type Case = [name: string, rec: DrrRecord, ctx: RuleContext, message: string | null];

const CASES: Case[] = [
  // The defaults pass.
  ["OBJECT default passes", object(), PLAIN, null],
  ["raw OBJECT default passes", rawObject(), RAW, null],
  ["WRITE default passes", write(), PLAIN, null],
  ["FREE default passes", free(), PLAIN, null],
  ["REDACT default passes", redact(), PLAIN, null],
  ["FREEOBJECTS default passes", freeObjects(), PLAIN, null],
  ["OBJECT_RANGE default passes", objectRange(), RAW, null],
  ["SPILL default passes", spill(), PLAIN, null],
  ["WRITE_EMBEDDED default passes", embedded(), EMBED, null],
  ["WRITE_BYREF default passes", byref(), ctx(FEATURE.DEDUP), null],
  [
    "END passes",
    { type: DRR.END, payloadlen: 0, record_checksum: CK, checksum: CK, toguid: 0n },
    PLAIN,
    null,
  ],

  // recv_check_drr_object
  [
    "OBJECT object 0",
    object({ object: 0n }),
    PLAIN,
    "object number 0 outside valid range 1-281474976710655",
  ],
  [
    "OBJECT object 2^48",
    object({ object: DN_MAX_OBJECT }),
    PLAIN,
    "object number 281474976710656 outside valid range 1-281474976710655",
  ],
  ["OBJECT type NONE", object({ object_type: 0 }), PLAIN, "DRR_OBJECT type is DMU_OT_NONE"],
  [
    "OBJECT legacy type past DMU_OT_NUMTYPES",
    object({ object_type: 54 }),
    PLAIN,
    "DRR_OBJECT has invalid type 54",
  ],
  [
    "OBJECT new type with a byteswap past DMU_BSWAP_NUMFUNCS",
    object({ object_type: 0x80 | 10 }),
    PLAIN,
    "DRR_OBJECT has invalid type 138",
  ],
  ["OBJECT new type DMU_OTN_ZAP_METADATA is valid", object({ object_type: 0xc4 }), PLAIN, null],
  [
    "OBJECT bonus type invalid",
    object({ bonustype: 60 }),
    PLAIN,
    "DRR_OBJECT has invalid bonus type 60",
  ],
  [
    "OBJECT bonus type NONE with a bonus",
    object({ bonustype: 0, bonuslen: 8 }),
    PLAIN,
    "DRR_OBJECT bonus type 0 incompatible with bonus length 8",
  ],
  [
    "OBJECT bonus type ZNODE without a bonus",
    object({ bonustype: 17, bonuslen: 0 }),
    PLAIN,
    "DRR_OBJECT bonus type 17 incompatible with bonus length 0",
  ],
  [
    "OBJECT UINT64_METADATA bonus may be empty",
    object({ bonustype: 0xc3, bonuslen: 0 }),
    PLAIN,
    null,
  ],
  [
    "OBJECT dn_slots > 1 needs LARGE_DNODE",
    object({ dn_slots: 2 }),
    PLAIN,
    "DRR_OBJECT dnode slots 2 require DMU_BACKUP_FEATURE_LARGE_DNODE",
  ],
  [
    "OBJECT block > 128K needs LARGE_BLOCKS",
    object({ blksz: 256 * 1024 }),
    PLAIN,
    "DRR_OBJECT block size 262144 requires DMU_BACKUP_FEATURE_LARGE_BLOCKS",
  ],
  [
    "OBJECT checksum type past ZIO_CHECKSUM_FUNCTIONS",
    object({ checksumtype: 15 }),
    PLAIN,
    "DRR_OBJECT has invalid checksum type 15",
  ],
  ["OBJECT BLAKE3 checksum is valid", object({ checksumtype: 14 }), PLAIN, null],
  [
    "OBJECT compression past ZIO_COMPRESS_FUNCTIONS",
    object({ compress: 17 }),
    PLAIN,
    "DRR_OBJECT has invalid compression type 17",
  ],
  [
    "OBJECT block size not a multiple of 512",
    object({ blksz: 1000 }),
    PLAIN,
    "DRR_OBJECT block size 1000 is not a multiple of 512",
  ],
  [
    "OBJECT block size below 512",
    object({ blksz: 0 }),
    PLAIN,
    "DRR_OBJECT block size 0 below minimum 512",
  ],
  [
    "OBJECT block size above 16M",
    object({ blksz: 32 * MiB }),
    ctx(FEATURE.LARGE_BLOCKS),
    "DRR_OBJECT block size 33554432 exceeds maximum 16777216",
  ],
  [
    "OBJECT bonus above the largest dnode's",
    object({ bonustype: 17, bonuslen: 16193 }),
    PLAIN,
    "DRR_OBJECT bonus length 16193 exceeds maximum 16192",
  ],
  [
    "OBJECT dn_slots above 32",
    object({ dn_slots: 33 }),
    ctx(FEATURE.LARGE_DNODE),
    "DRR_OBJECT dnode slot count 33 exceeds maximum 32",
  ],
  [
    "OBJECT bonus payload above 16M",
    object({ raw_bonuslen: 16 * MiB + 1 }),
    PLAIN,
    "DRR_OBJECT bonus payload size 16777217 exceeds maximum 16777216",
  ],
  [
    "OBJECT dnode reaching past DN_MAX_OBJECT",
    object({ object: DN_MAX_OBJECT - 1n, dn_slots: 2 }),
    ctx(FEATURE.LARGE_DNODE),
    "DRR_OBJECT object range 281474976710655-281474976710656 exceeds DN_MAX_OBJECT",
  ],
  // raw OBJECT
  ["raw OBJECT unknown flag", rawObject({ flags: 1 }), RAW, "DRR_OBJECT has invalid flags 0x1"],
  [
    "raw OBJECT RAW_BYTESWAP and SPILL flags are fine",
    rawObject({ flags: 6, raw_bonuslen: 192 }),
    RAW,
    null,
  ],
  [
    "raw OBJECT spill flag without SPILL_BLOCK",
    rawObject({ flags: 4 }),
    ctx(FEATURE.RAW),
    "DRR_OBJECT spill flag set but stream BEGIN missing DRR_FLAG_SPILL_BLOCK",
  ],
  [
    "raw OBJECT raw bonus shorter than the bonus",
    rawObject({ raw_bonuslen: 100 }),
    RAW,
    "DRR_OBJECT raw bonus length 100 < bonus length 168",
  ],
  [
    "raw OBJECT indirect shift below 12",
    rawObject({ indblkshift: 11 }),
    RAW,
    "DRR_OBJECT indirect block shift 11 outside valid range 12-17",
  ],
  [
    "raw OBJECT indirect shift above 17",
    rawObject({ indblkshift: 18 }),
    RAW,
    "DRR_OBJECT indirect block shift 18 outside valid range 12-17",
  ],
  ["raw OBJECT indirect shift 0 keeps the default", rawObject({ indblkshift: 0 }), RAW, null],
  [
    "raw OBJECT tree depth 0",
    rawObject({ nlevels: 0 }),
    RAW,
    "DRR_OBJECT tree depth 0 outside valid range 1-12",
  ],
  [
    "raw OBJECT tree depth 13",
    rawObject({ nlevels: 13 }),
    RAW,
    "DRR_OBJECT tree depth 13 outside valid range 1-12",
  ],
  [
    "raw OBJECT blkptr count 0",
    rawObject({ nblkptr: 0 }),
    RAW,
    "DRR_OBJECT blkptr count 0 outside valid range 1-3",
  ],
  [
    "raw OBJECT blkptr count 4",
    rawObject({ nblkptr: 4 }),
    RAW,
    "DRR_OBJECT blkptr count 4 outside valid range 1-3",
  ],
  [
    "raw OBJECT blkptr count unlike dnode_allocate's",
    rawObject({ nblkptr: 3 }),
    RAW,
    "DRR_OBJECT blkptr count 3 incompatible with bonus type 44 length 168 (expected 1)",
  ],
  [
    "raw OBJECT without bonus has 3 blkptrs",
    rawObject({ bonustype: 0, bonuslen: 0, raw_bonuslen: 0, nblkptr: 3 }),
    RAW,
    null,
  ],
  [
    "raw OBJECT spill flag with 3 blkptrs",
    rawObject({ bonustype: 0, bonuslen: 0, raw_bonuslen: 0, nblkptr: 3, flags: 4 }),
    RAW,
    "DRR_OBJECT spill flag incompatible with blkptr count 3",
  ],
  [
    "raw OBJECT raw bonus above the bonus buffer",
    rawObject({ raw_bonuslen: 328 }),
    RAW,
    "DRR_OBJECT raw bonus length 328 exceeds dnode bonus capacity 320",
  ],
  [
    "raw OBJECT raw bonus above the bonus buffer less the spill pointer",
    rawObject({ flags: 4, raw_bonuslen: 200 }),
    RAW,
    "DRR_OBJECT raw bonus length 200 exceeds dnode bonus capacity 192",
  ],
  // non-raw OBJECT
  [
    "OBJECT RAW_BYTESWAP flag outside raw streams",
    object({ flags: 2 }),
    PLAIN,
    "DRR_OBJECT has invalid flags 0x2",
  ],
  [
    "OBJECT spill flag without SPILL_BLOCK",
    object({ flags: 4 }),
    PLAIN,
    "DRR_OBJECT spill flag set but stream BEGIN missing DRR_FLAG_SPILL_BLOCK",
  ],
  [
    "OBJECT spill flag with SPILL_BLOCK",
    object({ flags: 4 }),
    ctx(0, BEGIN_FLAG.SPILL_BLOCK),
    null,
  ],
  [
    "OBJECT raw bonus length outside raw streams",
    object({ raw_bonuslen: 8 }),
    PLAIN,
    "DRR_OBJECT raw bonus length must be zero in non-raw streams",
  ],
  [
    "OBJECT bonus above one slot's",
    object({ bonustype: 17, bonuslen: 321 }),
    PLAIN,
    "DRR_OBJECT bonus length 321 exceeds dnode bonus capacity 320",
  ],
  [
    "OBJECT large bonus in a large dnode",
    object({ bonustype: 17, bonuslen: 832, dn_slots: 3 }),
    ctx(FEATURE.LARGE_DNODE),
    null,
  ],
  [
    "OBJECT blkptr count outside raw streams",
    object({ nblkptr: 1 }),
    PLAIN,
    "DRR_OBJECT blkptr count must be zero in non-raw streams",
  ],
  [
    "OBJECT indirect shift outside raw streams",
    object({ indblkshift: 17 }),
    PLAIN,
    "DRR_OBJECT indirect block shift must be zero in non-raw streams",
  ],
  [
    "OBJECT tree depth outside raw streams",
    object({ nlevels: 1 }),
    PLAIN,
    "DRR_OBJECT tree depth must be zero in non-raw streams",
  ],
  [
    "OBJECT of pool version 23 (zeros where it had pad bytes)",
    object({ object_type: 21, bonustype: 0, bonuslen: 0, checksumtype: 7 }),
    PLAIN,
    null,
  ],

  // recv_check_drr_free (FREE and REDACT)
  [
    "FREE object 0",
    free({ object: 0n }),
    PLAIN,
    "object number 0 outside valid range 1-281474976710655",
  ],
  [
    "FREE offset + length overflows",
    free({ offset: U64_MAX, length: 2n }),
    PLAIN,
    "DRR_FREE offset 18446744073709551615 + length 2 overflows",
  ],
  ["FREE to the end from any offset", free({ offset: U64_MAX, length: U64_MAX }), PLAIN, null],
  [
    "REDACT object past DN_MAX_OBJECT",
    redact({ object: DN_MAX_OBJECT }),
    PLAIN,
    "object number 281474976710656 outside valid range 1-281474976710655",
  ],
  [
    "REDACT offset + length overflows",
    redact({ offset: U64_MAX - 1n }),
    PLAIN,
    "DRR_FREE offset 18446744073709551614 + length 4096 overflows",
  ],

  // recv_check_drr_freeobjects
  [
    "FREEOBJECTS first + count overflows",
    freeObjects({ firstobj: 2n, numobjs: U64_MAX - 1n }),
    PLAIN,
    "DRR_FREEOBJECTS first object 2 + count 18446744073709551614 overflows",
  ],
  ["FREEOBJECTS up to 2^64 - 1", freeObjects({ firstobj: 1n, numobjs: U64_MAX - 1n }), PLAIN, null],

  // recv_check_drr_object_range
  [
    "OBJECT_RANGE outside raw streams",
    objectRange(),
    PLAIN,
    "DRR_OBJECT_RANGE is only valid on raw streams",
  ],
  [
    "OBJECT_RANGE not one dnode block",
    objectRange({ numslots: 31n }),
    RAW,
    "DRR_OBJECT_RANGE numslots 31 != 32",
  ],
  [
    "OBJECT_RANGE unaligned",
    objectRange({ firstobj: 33n }),
    RAW,
    "DRR_OBJECT_RANGE first object 33 is not dnode-block aligned",
  ],
  [
    "OBJECT_RANGE first + numslots overflows",
    objectRange({ firstobj: U64_MAX - 31n }),
    RAW,
    "DRR_OBJECT_RANGE first object 18446744073709551584 + numslots 32 overflows",
  ],
  [
    "OBJECT_RANGE past DN_MAX_OBJECT",
    objectRange({ firstobj: DN_MAX_OBJECT }),
    RAW,
    "DRR_OBJECT_RANGE extends past DN_MAX_OBJECT",
  ],

  // recv_check_drr_spill
  [
    "SPILL object 0",
    spill({ object: 0n }),
    PLAIN,
    "object number 0 outside valid range 1-281474976710655",
  ],
  ["SPILL invalid type", spill({ object_type: 54 }), PLAIN, "DRR_SPILL has invalid type 54"],
  [
    "SPILL length below 512",
    spill({ length: 256n }),
    PLAIN,
    "DRR_SPILL logical size 256 below minimum 512",
  ],
  [
    "SPILL length above 16M",
    spill({ length: 32n * 1048576n }),
    PLAIN,
    "DRR_SPILL logical size 33554432 exceeds maximum 16777216",
  ],
  [
    "SPILL payload above 16M",
    spill({ compressed_size: 32n * 1048576n }),
    RAW,
    "DRR_SPILL payload size 33554432 exceeds maximum 16777216",
  ],
  [
    "raw SPILL without an on-disk size",
    spill(),
    RAW,
    "DRR_SPILL payload size must be non-zero on raw streams",
  ],
  [
    "SPILL with a compressed size outside raw streams",
    spill({ compressed_size: 512n }),
    PLAIN,
    "DRR_SPILL compressed payload size must be zero on non-raw streams",
  ],
  [
    "raw SPILL, uncompressed",
    spill({ compressed_size: 1536n, compressiontype: 2, object_type: 44 }),
    RAW,
    null,
  ],
  [
    "raw SPILL invalid compression",
    spill({ compressed_size: 512n, compressiontype: 17 }),
    RAW,
    "DRR_SPILL has invalid compression type 17",
  ],
  [
    "raw SPILL ZSTD without the ZSTD feature",
    spill({ compressed_size: 512n, compressiontype: 16 }),
    RAW,
    "DRR_SPILL compression type ZSTD requires DMU_BACKUP_FEATURE_ZSTD",
  ],
  [
    "raw SPILL LZ4 without the LZ4 feature",
    spill({ compressed_size: 512n, compressiontype: 15 }),
    ctx(FEATURE.RAW, BEGIN_FLAG.SPILL_BLOCK),
    "DRR_SPILL compression type 15 requires DMU_BACKUP_FEATURE_LZ4",
  ],
  [
    "raw SPILL compressed above logical",
    spill({ compressed_size: 2048n, compressiontype: 15 }),
    RAW,
    "DRR_SPILL logical size 1536 < compressed size 2048",
  ],
  [
    "SPILL compression type without a compressed size",
    spill({ compressiontype: 3 }),
    PLAIN,
    "DRR_SPILL compression type must be zero when uncompressed",
  ],

  // recv_check_drr_write
  [
    "WRITE object 0",
    write({ object: 0n }),
    PLAIN,
    "object number 0 outside valid range 1-281474976710655",
  ],
  [
    "WRITE logical size below 512",
    write({ logical_size: 256n }),
    PLAIN,
    "DRR_WRITE logical size 256 below minimum 512",
  ],
  [
    "WRITE logical size above 16M",
    write({ logical_size: 32n * 1048576n }),
    ctx(FEATURE.LARGE_BLOCKS),
    "DRR_WRITE logical size 33554432 exceeds maximum 16777216",
  ],
  [
    "WRITE above 128K needs LARGE_BLOCKS",
    write({ logical_size: 256n * 1024n }),
    PLAIN,
    "DRR_WRITE logical size 262144 requires DMU_BACKUP_FEATURE_LARGE_BLOCKS",
  ],
  [
    "WRITE payload above 16M",
    write({ compressiontype: 15, compressed_size: 32n * 1048576n }),
    ctx(FEATURE.COMPRESSED | FEATURE.LZ4),
    "DRR_WRITE payload size 33554432 exceeds maximum 16777216",
  ],
  [
    "raw WRITE without an on-disk size",
    write(),
    RAW,
    "DRR_WRITE compressed size must be non-zero on raw streams",
  ],
  ["raw WRITE, uncompressed", write({ compressiontype: 2, compressed_size: 4096n }), RAW, null],
  [
    "raw WRITE invalid compression",
    write({ compressiontype: 17, compressed_size: 512n }),
    RAW,
    "DRR_WRITE has invalid compression type 17",
  ],
  [
    "raw WRITE ZSTD without the ZSTD feature",
    write({ compressiontype: 16, compressed_size: 512n }),
    RAW,
    "DRR_WRITE compression type ZSTD requires DMU_BACKUP_FEATURE_ZSTD",
  ],
  [
    "raw WRITE compressed above logical",
    write({ compressiontype: 15, compressed_size: 8192n }),
    RAW,
    "DRR_WRITE logical size 4096 < compressed size 8192",
  ],
  [
    "WRITE compressed without the COMPRESSED feature",
    write({ compressiontype: 15, compressed_size: 512n }),
    ctx(FEATURE.LZ4),
    "DRR_WRITE compressed payload requires DMU_BACKUP_FEATURE_COMPRESSED",
  ],
  [
    "WRITE compressed, invalid compression",
    write({ compressiontype: 17, compressed_size: 512n }),
    ctx(FEATURE.COMPRESSED),
    "DRR_WRITE has invalid compression type 17",
  ],
  [
    "WRITE compressed LZ4 without the LZ4 feature",
    write({ compressiontype: 15, compressed_size: 512n }),
    ctx(FEATURE.COMPRESSED),
    "DRR_WRITE compression type 15 requires DMU_BACKUP_FEATURE_LZ4",
  ],
  [
    "WRITE compressed LZJB needs no feature",
    write({ compressiontype: 3, compressed_size: 512n }),
    ctx(FEATURE.COMPRESSED),
    null,
  ],
  [
    "WRITE compressed with size 0",
    write({ compressiontype: 3 }),
    ctx(FEATURE.COMPRESSED),
    "DRR_WRITE compressed size must be non-zero",
  ],
  [
    "WRITE compressed above logical",
    write({ compressiontype: 3, compressed_size: 8192n }),
    ctx(FEATURE.COMPRESSED),
    "DRR_WRITE logical size 4096 < compressed size 8192",
  ],
  [
    "WRITE uncompressed with a compressed size",
    write({ compressed_size: 512n }),
    PLAIN,
    "DRR_WRITE compressed size must be zero when uncompressed",
  ],
  [
    "WRITE offset + size overflows",
    write({ offset: U64_MAX - 511n }),
    PLAIN,
    "DRR_WRITE offset 18446744073709551104 + logical size 4096 overflows",
  ],
  [
    "WRITE invalid type",
    write({ object_type: 0x80 | 31 }),
    PLAIN,
    "DRR_WRITE has invalid type 159",
  ],
  [
    "WRITE invalid checksum type",
    write({ checksumtype: 15 }),
    PLAIN,
    "DRR_WRITE has invalid checksum type 15",
  ],

  // recv_check_drr_write_embedded
  [
    "WRITE_EMBEDDED in a raw stream",
    embedded(),
    RAW,
    "DRR_WRITE_EMBEDDED is invalid on raw streams",
  ],
  [
    "WRITE_EMBEDDED without EMBED_DATA",
    embedded(),
    ctx(FEATURE.LZ4),
    "DRR_WRITE_EMBEDDED requires DMU_BACKUP_FEATURE_EMBED_DATA",
  ],
  [
    "WRITE_EMBEDDED object 0",
    embedded({ object: 0n }),
    EMBED,
    "object number 0 outside valid range 1-281474976710655",
  ],
  [
    "WRITE_EMBEDDED length above 16M",
    embedded({ length: 32n * 1048576n }),
    EMBED,
    "DRR_WRITE_EMBEDDED length 33554432 exceeds maximum 16777216",
  ],
  [
    "WRITE_EMBEDDED above 128K needs LARGE_BLOCKS",
    embedded({ length: 256n * 1024n }),
    EMBED,
    "DRR_WRITE_EMBEDDED length 262144 requires DMU_BACKUP_FEATURE_LARGE_BLOCKS",
  ],
  [
    "WRITE_EMBEDDED logical size above 16M",
    embedded({ lsize: 32 * MiB }),
    EMBED,
    "DRR_WRITE_EMBEDDED logical size 33554432 exceeds maximum 16777216",
  ],
  [
    "WRITE_EMBEDDED payload above 112 bytes",
    embedded({ psize: 113 }),
    EMBED,
    "DRR_WRITE_EMBEDDED payload size 113 exceeds maximum 112",
  ],
  [
    "WRITE_EMBEDDED invalid compression",
    embedded({ compression: 17 }),
    EMBED,
    "DRR_WRITE_EMBEDDED has invalid compression type 17",
  ],
  [
    "WRITE_EMBEDDED LZ4 without the LZ4 feature",
    embedded(),
    ctx(FEATURE.EMBED_DATA),
    "DRR_WRITE_EMBEDDED compression type 15 requires DMU_BACKUP_FEATURE_LZ4",
  ],
  [
    "WRITE_EMBEDDED ZSTD without the ZSTD feature",
    embedded({ compression: 16 }),
    EMBED,
    "DRR_WRITE_EMBEDDED compression type ZSTD requires DMU_BACKUP_FEATURE_ZSTD",
  ],
  [
    "WRITE_EMBEDDED uncompressed with lsize != psize",
    embedded({ compression: 2, lsize: 100, psize: 96 }),
    EMBED,
    "DRR_WRITE_EMBEDDED logical size 100 must equal payload size 96 when compression is off",
  ],
  [
    "WRITE_EMBEDDED compressed lsize below psize",
    embedded({ lsize: 50 }),
    EMBED,
    "DRR_WRITE_EMBEDDED logical size 50 < payload size 66",
  ],
  [
    "WRITE_EMBEDDED lsize above length",
    embedded({ lsize: 1024 }),
    EMBED,
    "DRR_WRITE_EMBEDDED logical size 1024 exceeds length 512",
  ],
  [
    "WRITE_EMBEDDED offset + length overflows",
    embedded({ offset: U64_MAX - 255n }),
    EMBED,
    "DRR_WRITE_EMBEDDED offset 18446744073709551360 + length 512 overflows",
  ],
  [
    "WRITE_EMBEDDED invalid embedded type",
    embedded({ etype: 3 }),
    EMBED,
    "DRR_WRITE_EMBEDDED has invalid embedded type 3",
  ],
  ["WRITE_EMBEDDED REDACTED embedded type is valid", embedded({ etype: 2 }), EMBED, null],

  // receive_write_byref (OpenZFS before 2.0)
  [
    "WRITE_BYREF offset + length overflows",
    byref({ offset: U64_MAX }),
    ctx(FEATURE.DEDUP),
    "DRR_WRITE_BYREF offset 18446744073709551615 + length 16384 overflows",
  ],

  // receive_read_record's default case
  ["unknown record type", { type: 11 } as unknown as DrrRecord, PLAIN, "unknown record type 11"],
];

for (const [name, rec, context, message] of CASES) {
  Deno.test(`rule: ${name}`, () => {
    assertEquals(checkRecordFields(rec, context), message);
  });
}

// ---------------------------------------------------------------------------------------------
// BEGIN.
// ---------------------------------------------------------------------------------------------

const LONG_NAME = "pool/" + "a".repeat(246) + "@snap"; // 256 bytes: no room for the NUL

const BEGIN_CASES: [name: string, rec: DrrBegin, message: string | null][] = [
  ["a plain full stream passes", begin(), null],
  ["a compound header passes", begin({ hdr: HDRTYPE.COMPOUNDSTREAM, objset_type: 0 }), null],
  [
    "a zfs-fuse dedup stream (DEDUP, DEDUPPROPS) passes",
    begin({ features: FEATURE.DEDUP | FEATURE.DEDUPPROPS }),
    null,
  ],
  ["a volume passes", begin({ objset_type: 3 }), null],
  ["a clone with its origin's guid passes", begin({ flags: BEGIN_FLAG.CLONE, fromguid: 7n }), null],
  [
    "a raw stream with SPILL_BLOCK passes",
    begin({ features: FEATURE.RAW, flags: BEGIN_FLAG.SPILL_BLOCK }),
    null,
  ],
  ["a 255-byte toname passes", begin({ toname: LONG_NAME.slice(1) }), null],
  ["bad magic", begin({ magic: 0x2F5BACBADn }), "invalid stream (bad magic number)"],
  [
    "unknown feature flag",
    begin({ features: 1 << 30 }),
    "stream has unsupported feature, feature flags = 40000000 (unknown flags = 40000000)",
  ],
  [
    "unknown feature flag 1 << 3",
    begin({ features: (1 << 3) | FEATURE.LZ4 }),
    "stream has unsupported feature, feature flags = 20008 (unknown flags = 8)",
  ],
  [
    "header type 0",
    begin({ hdr: 0 }),
    "stream has unsupported header type 0 (neither 1, substream, nor 2, compound)",
  ],
  [
    "header type 3",
    begin({ hdr: 3 }),
    "stream has unsupported header type 3 (neither 1, substream, nor 2, compound)",
  ],
  ["empty toname", begin({ toname: "" }), "invalid stream (bad snapshot name): toname is empty"],
  [
    "toname without '@'",
    begin({ toname: "pool/fs" }),
    "invalid stream (bad snapshot name): toname \"pool/fs\" has no '@'",
  ],
  [
    "compound header toname without '@'",
    begin({ hdr: HDRTYPE.COMPOUNDSTREAM, objset_type: 0, toname: "pool/fs" }),
    "invalid stream (bad snapshot name): toname \"pool/fs\" has no '@'",
  ],
  [
    "toname without a NUL",
    begin({ toname: LONG_NAME }),
    "invalid stream (bad snapshot name): toname is 256 bytes, the limit is 255",
  ],
  [
    "clone flag without fromguid",
    begin({ flags: BEGIN_FLAG.CLONE }),
    "local origin for clone does not exist (a clone stream with fromguid 0)",
  ],
  [
    "objset type META",
    begin({ objset_type: 1 }),
    "invalid record type: objset type 1 is neither 2 (ZFS) nor 3 (ZVOL)",
  ],
  [
    "objset type past DMU_OST_NUMTYPES",
    begin({ objset_type: 6 }),
    "invalid record type: objset type 6 out of range",
  ],
  [
    "payload above 256 MiB",
    begin({ payloadlen: 256 * MiB + 1 }),
    "BEGIN payload length 268435457 exceeds maximum 268435456",
  ],
  [
    "raw with embedded data",
    begin({ features: FEATURE.RAW | FEATURE.EMBED_DATA, flags: BEGIN_FLAG.SPILL_BLOCK }),
    "embedded data (DMU_BACKUP_FEATURE_EMBED_DATA) is incompatible with raw streams",
  ],
  [
    "raw with embedded data when resuming",
    begin({
      features: FEATURE.RAW | FEATURE.EMBED_DATA | FEATURE.RESUMING,
      flags: BEGIN_FLAG.SPILL_BLOCK,
    }),
    null,
  ],
  [
    "raw without SPILL_BLOCK",
    begin({ features: FEATURE.RAW }),
    "Spill block flag missing for raw send",
  ],
];

for (const [name, rec, message] of BEGIN_CASES) {
  Deno.test(`begin: ${name}`, () => {
    assertEquals(checkBegin(rec), message);
  });
}

// ---------------------------------------------------------------------------------------------
// Real streams.
// ---------------------------------------------------------------------------------------------

interface Failure {
  index: number;
  type: number;
  message: string;
}

interface StreamCheck {
  failures: Failure[];
  records: number;
  /** OBJECT records whose v23 pad bytes (dn_slots .. nblkptr) are all zero. */
  zeroPadObjects: number;
}

async function checkStream(path: string): Promise<StreamCheck> {
  using file = await Deno.open(path);
  const out: StreamCheck = { failures: [], records: 0, zeroPadObjects: 0 };
  let context: RuleContext = { features: 0n, beginFlags: 0 };
  for await (const r of readRecords(file.readable)) {
    const h = r.header;
    out.records++;
    let message: string | null;
    if (h.type === DRR.BEGIN) {
      context = { features: featureFlags(h.versioninfo), beginFlags: h.flags };
      message = checkBegin(h);
    } else {
      message = checkRecordFields(h, context);
    }
    if (message !== null) out.failures.push({ index: r.index, type: h.type, message });
    if (
      h.type === DRR.OBJECT &&
      (h.dn_slots | h.raw_bonuslen | h.nlevels | h.nblkptr | h.indblkshift) === 0
    ) {
      out.zeroPadObjects++;
    }
  }
  return out;
}

/** A fixture directory, or null (with a warning) when it is absent; under CI=true it must exist. */
async function fixtureDir(envName: string, fallback: string): Promise<string | null> {
  const dir = Deno.env.get(envName) ?? fallback;
  try {
    if ((await Deno.stat(dir)).isDirectory) return dir;
  } catch {
    // absent
  }
  if (Deno.env.get("CI") === "true") {
    throw new Error(`fixture directory ${dir} is missing (set ${envName})`);
  }
  console.warn(`skipping: fixture directory ${dir} is absent (set ${envName} to point at it)`);
  return null;
}

async function list(dir: string, suffix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(suffix)) names.push(e.name);
  }
  return names.sort();
}

const FUSE_DIR = await fixtureDir("ZSEND_ZFS_FUSE_FIXTURES", "/work/shared/fixtures/zfs-fuse");
const OPENZFS_DIR = await fixtureDir("ZSEND_OPENZFS_FIXTURES", "/work/shared/fixtures/openzfs");
const UNDERSIZED = "undersized-write-lsize.zsend.bz2";

Deno.test({
  name: "fixtures: every record of every zfs-fuse stream passes",
  ignore: FUSE_DIR === null,
  async fn() {
    const names = await list(FUSE_DIR!, ".zstream");
    assert(names.length > 0, `no .zstream files in ${FUSE_DIR}`);
    let zeroPad = 0;
    for (const name of names) {
      const result = await checkStream(join(FUSE_DIR!, name));
      assertEquals(result.failures, [], name);
      assert(result.records > 0, name);
      zeroPad += result.zeroPadObjects;
    }
    // Pool version 23 had pad bytes where dn_slots .. nblkptr now live: they read as zero.
    assert(zeroPad > 0, "expected OBJECT records with zero dn_slots/nlevels/nblkptr");
  },
});

Deno.test({
  name: "fixtures: every record of every OpenZFS stream passes, but the undersized WRITE",
  ignore: OPENZFS_DIR === null,
  async fn() {
    const names = await list(OPENZFS_DIR!, ".zsend.bz2");
    assert(names.length > 0, `no .zsend.bz2 files in ${OPENZFS_DIR}`);
    const tmp = await Deno.makeTempDir({ prefix: "record_rules_test_" });
    try {
      let sawUndersized = false;
      for (const name of names) {
        const path = join(tmp, name.replace(/\.bz2$/, ""));
        await bunzip(join(OPENZFS_DIR!, name), path);
        const result = await checkStream(path);
        assert(result.records > 0, name);
        if (name === UNDERSIZED) {
          sawUndersized = true;
          const first = result.failures[0];
          if (first === undefined) {
            throw new Error(`${name} should fail the DRR_WRITE logical size rule`);
          }
          assertEquals(first.type, DRR.WRITE, name);
          assert(
            /^DRR_WRITE logical size \d+ below minimum 512$/.test(first.message),
            `${name}: ${first.message}`,
          );
        } else {
          assertEquals(result.failures, [], name);
        }
      }
      assert(sawUndersized, `${UNDERSIZED} is missing from ${OPENZFS_DIR}`);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

/** Decompresses a .bz2 file with `bzcat`. */
async function bunzip(from: string, to: string): Promise<void> {
  const child = new Deno.Command("bzcat", { args: [from], stdout: "piped", stderr: "piped" })
    .spawn();
  const out = await Deno.open(to, { write: true, create: true, truncate: true });
  const [status, stderr] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
    child.stdout.pipeTo(out.writable),
  ]);
  if (!status.success) throw new Error(`bzcat ${from} failed: ${stderr}`);
}
