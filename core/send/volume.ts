/**
 * Volume (zvol) streams without ZFS: what `zfs send` of a volume contains, made from per-block
 * facts about an image, and what a volume stream does to an image when received.
 *
 * Facts (OpenZFS `module/zfs/zvol.c`, `dmu_send.c`, `dmu_traverse.c`, `dnode.c`, `zap_micro.c`):
 * - A volume's objset (type ZVOL 3) holds object 1 (`ZVOL_OBJ`, type `DMU_OT_ZVOL` 23, no bonus,
 *   block size = volblocksize, indirect blocks of 128 KiB, 3 block pointers in the dnode) with
 *   the data, and object 2 (`ZVOL_ZAP_OBJ`, type `DMU_OT_ZVOL_PROP` 24) a micro ZAP of one
 *   512-byte block holding `size` (the volume's size in bytes). Both dnodes live in the first
 *   dnode block (32 dnodes), so `maxobj` is 32.
 * - The sender walks the objset in pre-order, dnode by dnode: OBJECT, a FREE from
 *   `(maxblkid + 1) * blksz` to the end (length -1), then the object's block pointers in order.
 *   A data block born after the incremental source is a WRITE. A hole is a FREE of its whole
 *   span (an indirect block whose children are all holes is itself a hole). Holes of birth 0 are
 *   always visited (`send_holes_without_birth_time`); holes past `maxblkid` are skipped for
 *   object 1 (not metadata) but not for object 2 (a ZAP: metadata). Blocks and indirect blocks
 *   not born after the source are skipped with everything under them. Free dnodes of a visited
 *   dnode block become FREEOBJECTS, aggregated and clamped to `maxobj`.
 * - `dnode_new_blkid`: the number of levels is the least `L` with `3 * 1024^(L-1) > maxblkid`.
 *
 * The model of an image: object 1 has `maxblkid` = the last block of the volume; a block is a
 * hole exactly when it is all zeros (as on a pool with compression or after a discard), and a
 * hole that is a hole in both images has birth 0. Data blocks are sent uncompressed with their
 * fletcher-4 as the dedup key (`checksum=on`, `compression=off`); the ZAP block as an embedded
 * block would go (checksum type OFF, no key), as a modern pool stores a block that small.
 *
 * @module
 */

import {
  BEGIN_FLAG,
  DRR,
  FEATURE,
  HDRTYPE,
  OBJSET_TYPE,
  SPA_OLD_MAXBLOCKSIZE,
} from "../stream/constants.ts";
import { decompressBlock } from "../compress/mod.ts";
import { StreamError } from "../stream/errors.ts";
import { fletcher4, type Fletcher4Engine, tsFletcher4 } from "../checksum/fletcher4.ts";
import { RecordSender } from "../stream/pending.ts";
import type { StreamRecord } from "../stream/reader.ts";
import {
  encodeRecord,
  featureFlags,
  hdrtype,
  LAYOUTS,
  makeVersioninfo,
  type RecordInit,
  viewOf,
  writeChecksum,
} from "../stream/record.ts";
import { type VolumeRunSource, WriteRuns } from "./volume_runs.ts";
import {
  isPayloadRef,
  type PayloadRef,
  type PayloadRun,
  type StreamChunk,
  StreamWriter,
} from "../stream/writer.ts";
import { parseMicroZap, ZBT } from "../zpl/zap.ts";

/** The object holding a volume's data (`ZVOL_OBJ`). */
export const ZVOL_OBJ = 1n;
/** The object holding a volume's properties, a ZAP with `size` (`ZVOL_ZAP_OBJ`). */
export const ZVOL_ZAP_OBJ = 2n;
/** Object type of the data object (`DMU_OT_ZVOL`). */
export const DMU_OT_ZVOL = 23;
/** Object type of the property ZAP (`DMU_OT_ZVOL_PROP`). */
export const DMU_OT_ZVOL_PROP = 24;
/** The default `volblocksize` of current OpenZFS. */
export const DEFAULT_VOLBLOCKSIZE = 16384;
/** The largest block size there is (with the large-blocks feature). */
export const MAX_VOLBLOCKSIZE = 16 * 1024 * 1024;

/** `zfs_default_ibs`: 128 KiB indirect blocks of 1024 block pointers. */
const EPBS = 10;
const FANOUT = 1 << EPBS;
/** Block pointers in a dnode without bonus. */
const NBLKPTR = 3;
/** `DNODES_PER_BLOCK`: the first dnode block holds objects 0..31. */
const DNODES_PER_BLOCK = 32n;
/** A micro ZAP's block (`zfs_default_bs` = 512). */
const ZAP_BLOCK = 512;
/** The micro ZAP's salt: any odd number does (the kernel mixes pointers); this one is fixed. */
const ZAP_SALT = 0x7a73656e64766f6cn | 1n;
const ZIO_CHECKSUM_OFF = 2;
const ZIO_CHECKSUM_FLETCHER_4 = 7;
const ZIO_COMPRESS_OFF = 2;
const OBJECT_END = (1n << 64n) - 1n;

/**
 * Why a volume of this size and block size cannot exist, or `null` when it can
 * (`zvol_check_volsize`, `zvol_check_volblocksize`).
 *
 * @example
 * ```ts
 * import { checkVolumeGeometry } from "./volume.ts";
 * if (checkVolumeGeometry(1 << 20, 16384) !== null) throw new Error();
 * if (checkVolumeGeometry(1000, 512) === null) throw new Error("1000 is not a multiple of 512");
 * if (checkVolumeGeometry(1 << 20, 3000) === null) throw new Error("not a power of two");
 * ```
 */
export function checkVolumeGeometry(volsize: number, blockSize: number): string | null {
  if (
    !Number.isSafeInteger(blockSize) || blockSize < 512 || blockSize > MAX_VOLBLOCKSIZE ||
    (blockSize & (blockSize - 1)) !== 0
  ) {
    return `block size ${blockSize} is not a power of two from 512 to ${MAX_VOLBLOCKSIZE}`;
  }
  if (!Number.isSafeInteger(volsize) || volsize <= 0) {
    return `volume size ${volsize} is not positive`;
  }
  if (volsize % blockSize !== 0) {
    return `volume size ${volsize} is not a multiple of the block size ${blockSize}`;
  }
  return null;
}

/**
 * The number of levels of the data object's block tree for a highest block id
 * (`dnode_new_blkid`: 3 block pointers in the dnode, 1024 per indirect block).
 *
 * @example
 * ```ts
 * import { dnodeLevels } from "./volume.ts";
 * if (dnodeLevels(0) !== 1 || dnodeLevels(2) !== 1 || dnodeLevels(3) !== 2) throw new Error();
 * if (dnodeLevels(3071) !== 2 || dnodeLevels(3072) !== 3) throw new Error();
 * ```
 */
export function dnodeLevels(maxblkid: number): number {
  let levels = 1;
  for (let size = NBLKPTR; size <= maxblkid; size *= FANOUT) levels++;
  return levels;
}

/** Where a WRITE record holds its offset and its block's checksum (`drr_key.ddk_cksum`). */
const WRITE_OFFSET_AT = LAYOUTS[DRR.WRITE]!.find((f) => f.name === "offset")!.offset;
const WRITE_KEY_AT = LAYOUTS[DRR.WRITE]!.find((f) => f.name === "key_cksum")!.offset;

/**
 * One bit per block, with a fast "any bit set in this range".
 *
 * @example
 * ```ts
 * import { BlockBitmap } from "./volume.ts";
 * const b = new BlockBitmap(100);
 * b.set(70);
 * if (!b.has(70) || b.has(69) || !b.any(64, 71) || b.any(71, 100) || b.any(0, 70)) {
 *   throw new Error();
 * }
 * ```
 */
export class BlockBitmap {
  /** Number of blocks. */
  readonly size: number;
  readonly #words: Uint32Array;

  /** @param size number of blocks, all clear */
  constructor(size: number) {
    this.size = size;
    this.#words = new Uint32Array(Math.ceil(size / 32));
  }

  /** Sets block `i`. */
  set(i: number): void {
    this.#words[i >>> 5]! |= 1 << (i & 31);
  }

  /** Whether block `i` is set (blocks past the end are not). */
  has(i: number): boolean {
    return i < this.size && (this.#words[i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  /** Whether any block in `from..to` (exclusive) is set. */
  any(from: number, to: number): boolean {
    to = Math.min(to, this.size);
    if (from >= to) return false;
    const w = this.#words;
    const first = from >>> 5;
    const last = (to - 1) >>> 5;
    const lowMask = ~0 << (from & 31);
    const highMask = ~0 >>> (31 - ((to - 1) & 31));
    if (first === last) return (w[first]! & lowMask & highMask) !== 0;
    if ((w[first]! & lowMask) !== 0 || (w[last]! & highMask) !== 0) return true;
    for (let i = first + 1; i < last; i++) if (w[i] !== 0) return true;
    return false;
  }

  /** Number of blocks set. */
  count(): number {
    let n = 0;
    for (let v of this.#words) {
      v = v - ((v >>> 1) & 0x55555555);
      v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
      n += (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
    }
    return n;
  }
}

/**
 * What the sender needs to know of each block: which hold data in the volume sent, and which
 * differ from the incremental source (for a full stream, from an all-zero volume: the same
 * blocks as `data`).
 */
export interface VolumeBlocks {
  /** Blocks of the volume sent (its size over the block size). */
  readonly count: number;
  /** Blocks that are not all zeros in the volume sent. */
  readonly data: BlockBitmap;
  /**
   * Blocks that differ from the source (may reach past `count` when the source was larger;
   * those became holes).
   */
  readonly changed: BlockBitmap;
  /**
   * The number of levels of the block tree: {@linkcode dnodeLevels} of the largest `maxblkid`
   * the volume ever had (levels never shrink); by default that of the volume sent.
   */
  readonly levels?: number;
}

/** One step of the walk over object 1: a WRITE of one block, or a FREE of blocks `from..to`. */
export type VolumeStep =
  | { kind: "write"; block: number }
  | { kind: "free"; from: number; to: number };

/**
 * The walk of the sender over object 1's block tree, as records would come out before
 * aggregation: a WRITE for each data block born after the source, a FREE for each hole it
 * visits (whole spans of indirect holes, which may reach past the last block).
 *
 * @example
 * ```ts
 * import { BlockBitmap, volumeSteps } from "./volume.ts";
 * const data = new BlockBitmap(4);
 * data.set(1);
 * const steps = [...volumeSteps({ count: 4, data, changed: data })];
 * // 4 blocks: 2 levels; the one indirect block holds block 1, the rest are holes.
 * const text = steps.map((s) => s.kind === "write" ? `w${s.block}` : `f${s.from}-${s.to}`);
 * if (text.join() !== "f0-1,w1,f2-3,f3-4") throw new Error(text.join());
 * ```
 */
export function* volumeSteps(blocks: VolumeBlocks): Generator<VolumeStep> {
  for (const s of volumeSpans(blocks)) {
    if (s.kind === "free") yield { kind: "free", from: s.from, to: s.to };
    else for (let b = s.from; b < s.to; b++) yield { kind: "write", block: b };
  }
}

/** A step of {@linkcode volumeSpans}: WRITEs of blocks `from..to`, or a FREE of them. */
export interface VolumeSpan {
  kind: "write" | "free";
  from: number;
  to: number;
}

/**
 * {@linkcode volumeSteps} in spans: each FREE as it comes, and the WRITEs of consecutive
 * blocks under one indirect block (one record each, one after the other) as one span, so that
 * a volume of millions of blocks is walked in thousands of steps.
 *
 * @example
 * ```ts
 * import { BlockBitmap, volumeSpans } from "./volume.ts";
 * const data = new BlockBitmap(8);
 * for (const b of [1, 2, 3, 6]) data.set(b);
 * const spans = [...volumeSpans({ count: 8, data, changed: data })];
 * const text = spans.map((s) => `${s.kind[0]}${s.from}-${s.to}`);
 * if (text.join() !== "f0-1,w1-4,f4-5,f5-6,w6-7,f7-8") throw new Error(text.join());
 * ```
 */
export function* volumeSpans(blocks: VolumeBlocks): Generator<VolumeSpan> {
  const { count, data, changed } = blocks;
  const maxblkid = count - 1;
  const levels = blocks.levels ?? dnodeLevels(maxblkid);
  const extent = Math.max(count, changed.size);
  function* visit(level: number, start: number): Generator<VolumeSpan> {
    // send_cb: a range that starts past maxblkid in a non-metadata object is skipped.
    if (start > maxblkid) return;
    const span = FANOUT ** level;
    const end = start + span;
    if (!data.any(start, end)) {
      // A hole: of birth 0 (always visited) or freed since the source (born after it).
      yield { kind: "free", from: start, to: end };
      return;
    }
    if (!changed.any(start, Math.min(end, extent))) return;
    if (level === 0) {
      yield { kind: "write", from: start, to: end };
      return;
    }
    if (level === 1) {
      // The blocks themselves, as visit(0, b) would take them, without a generator each; a
      // block skipped (not changed) ends a span of WRITEs, a hole is a FREE of its own.
      let run = -1;
      for (let b = start; b < end && b <= maxblkid; b++) {
        const write = data.has(b) && b < extent && changed.has(b);
        if (write) {
          if (run < 0) run = b;
          continue;
        }
        if (run >= 0) yield { kind: "write", from: run, to: b };
        run = -1;
        if (!data.has(b)) yield { kind: "free", from: b, to: b + 1 };
      }
      if (run >= 0) yield { kind: "write", from: run, to: Math.min(end, maxblkid + 1) };
      return;
    }
    const child = span / FANOUT;
    for (let i = 0; i < FANOUT; i++) yield* visit(level - 1, start + i * child);
  }
  const top = FANOUT ** (levels - 1);
  for (let j = 0; j < NBLKPTR; j++) yield* visit(levels - 1, j * top);
}

/**
 * The 512-byte micro ZAP of object 2 with its one entry, `size` (little-endian, as an x86 host
 * writes it).
 *
 * @example
 * ```ts
 * import { zvolPropBlock } from "./volume.ts";
 * const b = zvolPropBlock(1n << 30n);
 * const v = new DataView(b.buffer);
 * if (b.length !== 512 || v.getBigUint64(64, true) !== 1n << 30n) throw new Error();
 * if (new TextDecoder().decode(b.subarray(78, 82)) !== "size") throw new Error();
 * ```
 */
export function zvolPropBlock(volsize: bigint): Uint8Array {
  const b = new Uint8Array(ZAP_BLOCK);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, ZBT.MICRO, true);
  v.setBigUint64(8, ZAP_SALT, true);
  // mz_normflags 0, pad; chunk 0: value, cd 0, pad, name.
  v.setBigUint64(64, volsize, true);
  b.set(new TextEncoder().encode("size"), 64 + 14);
  return b;
}

/** What a volume stream is made of and called. */
export interface VolumeStreamOptions {
  /** `pool/volume@snapshot`. */
  toname: string;
  /** The snapshot's guid. */
  toguid: bigint;
  /** The incremental source's guid; 0 or absent for a full stream. */
  fromguid?: bigint;
  /** Seconds since the epoch. */
  creationTime?: bigint;
  /** `volblocksize`. */
  blockSize: number;
  /** Whether `size` differs from the source's (an incremental rewrites the ZAP then). */
  sizeChanged?: boolean;
  /** Byte order of the records (little-endian by default). */
  littleEndian?: boolean;
  /** The fletcher-4 implementation (stream checksums and block keys). */
  fletcher4?: Fletcher4Engine;
}

/**
 * A volume stream: BEGIN, object 1 with its FREE past the end, its WRITE and FREE records
 * (aggregated as the kernel aggregates them), object 2 with its ZAP block and holes,
 * FREEOBJECTS for the free dnodes 3..31, END. An incremental in which nothing changed is BEGIN
 * and END only, as nothing in the objset was born after the source.
 *
 * @param options names, guids, block size
 * @param blocks which blocks hold data and which changed
 * @param readBlock the bytes of block `i` of the volume sent (called for WRITEs only, in order),
 * or a reference to them with their little-endian fletcher-4 (little-endian streams only)
 * @param runs where the blocks lie and their checksums: the WRITEs of object 1 then go as
 * {@linkcode PayloadRun}s (little-endian streams only) and `readBlock` is not called
 * @returns the stream's bytes, and the references or runs
 * @example
 * ```ts
 * import { BlockBitmap, volumeStream } from "./volume.ts";
 * import { readRecords } from "../stream/reader.ts";
 * const data = new BlockBitmap(8);
 * data.set(2);
 * const chunks = [...volumeStream(
 *   { toname: "p/vol@a", toguid: 7n, blockSize: 512 },
 *   { count: 8, data, changed: data },
 *   () => new Uint8Array(512).fill(1),
 * )];
 * const types = [];
 * for await (const r of readRecords(chunks)) types.push(r.header.type);
 * // BEGIN OBJECT FREE(-1) FREE WRITE FREE OBJECT FREE(-1) WRITE FREE FREEOBJECTS END
 * if (types.join() !== "0,1,4,4,3,4,1,4,3,4,2,5") throw new Error(types.join());
 * ```
 */
export function volumeStream<P extends Uint8Array | PayloadRef = Uint8Array>(
  options: VolumeStreamOptions,
  blocks: VolumeBlocks,
  readBlock: (block: number) => P,
): Generator<Uint8Array | P>;
export function volumeStream<P extends Uint8Array | PayloadRef, Q>(
  options: VolumeStreamOptions,
  blocks: VolumeBlocks,
  readBlock: (block: number) => P,
  runs: VolumeRunSource<Q>,
): Generator<Uint8Array | P | PayloadRun<Q>>;
export function* volumeStream<P extends Uint8Array | PayloadRef, Q>(
  options: VolumeStreamOptions,
  blocks: VolumeBlocks,
  readBlock: (block: number) => P,
  runs?: VolumeRunSource<Q>,
): Generator<StreamChunk> {
  const bs = options.blockSize;
  const volsize = BigInt(blocks.count) * BigInt(bs);
  const bad = checkVolumeGeometry(blocks.count * bs, bs);
  if (bad !== null) throw new RangeError(`Cannot make a volume stream: ${bad}`);
  const engine = options.fletcher4 ?? tsFletcher4;
  const le = options.littleEndian ?? true;
  const toguid = options.toguid;
  const fromguid = options.fromguid ?? 0n;
  const features = bs > SPA_OLD_MAXBLOCKSIZE ? FEATURE.LARGE_BLOCKS : 0;
  const sender = new RecordSender(new StreamWriter({ littleEndian: le, fletcher4: engine }), {
    maxObject: DNODES_PER_BLOCK,
  });
  yield* sender.begin({
    versioninfo: makeVersioninfo(HDRTYPE.SUBSTREAM, features),
    creation_time: options.creationTime ?? 0n,
    objset_type: OBJSET_TYPE.ZVOL,
    flags: BEGIN_FLAG.FREERECORDS | BEGIN_FLAG.SPILL_BLOCK,
    toguid,
    fromguid,
    toname: options.toname,
  });
  const full = fromguid === 0n;
  const sizeChanged = full || (options.sizeChanged ?? false);
  if (!full && !sizeChanged && !blocks.changed.any(0, blocks.changed.size)) {
    yield* sender.end();
    return;
  }

  // Object 1: its dnode, the free past its end, its blocks.
  yield* sender.write({
    type: DRR.OBJECT,
    object: ZVOL_OBJ,
    object_type: DMU_OT_ZVOL,
    blksz: bs,
    dn_slots: 1,
    toguid,
  });
  yield* sender.free(ZVOL_OBJ, volsize, OBJECT_END);
  const sizeField = BigInt(bs / 512 - 1);
  const keyProp = sizeField | (sizeField << 16n) | (BigInt(ZIO_COMPRESS_OFF) << 32n);
  const B = BigInt(bs);
  // Every WRITE of object 1 is this record with its own offset and block checksum: patched
  // into a copy of one encoding, rather than encoded anew for each of maybe millions.
  const template = encodeRecord({
    type: DRR.WRITE,
    object: ZVOL_OBJ,
    object_type: DMU_OT_ZVOL,
    offset: 0n,
    logical_size: B,
    toguid,
    checksumtype: ZIO_CHECKSUM_FLETCHER_4,
    key_cksum: [0n, 0n, 0n, 0n],
    key_prop: keyProp,
  } as RecordInit, le);
  if (runs !== undefined && !le) throw new RangeError("WRITE runs need a little-endian stream");
  const runner = runs === undefined ? null : new WriteRuns(sender, template, bs, runs);
  // One WRITE with its payload, when not in runs.
  const writeBlock = (block: number): StreamChunk[] => {
    const payload = readBlock(block);
    if (payload.length !== bs) {
      throw new RangeError(`block ${block}: ${payload.length} bytes read, ${bs} expected`);
    }
    const ref = isPayloadRef(payload);
    if (ref && !le) {
      throw new RangeError("a payload by reference needs a little-endian volume stream");
    }
    const header = template.slice();
    const view = viewOf(header);
    const offset = block * bs;
    const hi = Math.floor(offset / 2 ** 32), lo = offset >>> 0;
    view.setUint32(WRITE_OFFSET_AT, le ? lo : hi, le);
    view.setUint32(WRITE_OFFSET_AT + 4, le ? hi : lo, le);
    // The block's own checksum, little-endian as the kernel keys it on x86.
    writeChecksum(
      view,
      WRITE_KEY_AT,
      ref ? payload.fletcher4 : fletcher4(payload, true, engine),
      le,
    );
    return sender.writeEncoded(header, payload);
  };
  for (const span of volumeSpans(blocks)) {
    if (span.kind === "free") {
      if (runner !== null) yield* runner.finish();
      yield* sender.free(ZVOL_OBJ, BigInt(span.from) * B, BigInt(span.to - span.from) * B);
      continue;
    }
    if (runner !== null) {
      for (let block = span.from; block < span.to; block++) {
        const out = runner.add(block);
        if (out.length > 0) yield* out;
      }
      continue;
    }
    for (let block = span.from; block < span.to; block++) yield* writeBlock(block);
  }
  if (runner !== null) yield* runner.finish();

  // Object 2: the property ZAP (rewritten only when the size changed), its holes 1 and 2.
  yield* sender.write({
    type: DRR.OBJECT,
    object: ZVOL_ZAP_OBJ,
    object_type: DMU_OT_ZVOL_PROP,
    blksz: ZAP_BLOCK,
    dn_slots: 1,
    toguid,
  });
  yield* sender.free(ZVOL_ZAP_OBJ, BigInt(ZAP_BLOCK), OBJECT_END);
  if (sizeChanged) {
    yield* sender.write({
      type: DRR.WRITE,
      object: ZVOL_ZAP_OBJ,
      object_type: DMU_OT_ZVOL_PROP,
      offset: 0n,
      logical_size: BigInt(ZAP_BLOCK),
      toguid,
      checksumtype: ZIO_CHECKSUM_OFF,
    }, zvolPropBlock(volsize));
  }
  for (let blk = 1; blk < NBLKPTR; blk++) {
    yield* sender.free(ZVOL_ZAP_OBJ, BigInt(blk * ZAP_BLOCK), BigInt(ZAP_BLOCK));
  }

  // The free dnodes of the first dnode block, then the meta-dnode's holes (past maxobj).
  for (let obj = 3n; obj < DNODES_PER_BLOCK; obj++) yield* sender.freeObjects(obj, 1n);
  yield* sender.freeObjects(DNODES_PER_BLOCK, (1n << 48n) - DNODES_PER_BLOCK);
  yield* sender.end();
}

// ---------------------------------------------------------------------------------------------
// Receiving.
// ---------------------------------------------------------------------------------------------

/** What a record asks of the image. Offsets and lengths in bytes. */
export type VolumeOp =
  | {
    op: "begin";
    /** A full stream (no source), or an incremental / clone. */
    full: boolean;
    toguid: bigint;
    fromguid: bigint;
    toname: string;
  }
  /** Write these bytes (never all zeros: those come as `zero`). */
  | { op: "write"; offset: number; data: Uint8Array }
  /** Make this range zero (only where it is not already). */
  | { op: "zero"; offset: number; length: number }
  /** Copy `length` bytes of the image from `from` to `to` (WRITE_BYREF). */
  | { op: "copy"; from: number; to: number; length: number }
  /** The volume's size, from the property ZAP. */
  | { op: "size"; volsize: number };

/** How a volume stream ended. */
export interface VolumeResult {
  toguid: bigint;
  fromguid: bigint;
  toname: string;
  /** `volblocksize`, from object 1 (null when the stream had no OBJECT record). */
  blockSize: number | null;
  /** The size from the property ZAP, when the stream rewrote it. */
  volsize: number | null;
  /**
   * Where the FREE to the end of object 1 starts (`(maxblkid + 1) * blksz`): everything from
   * there to the end of the volume is zeros. Null when the stream had none.
   */
  tail: number | null;
}

/** Options of {@linkcode VolumeReceiver}. */
export interface VolumeReceiverOptions {
  /**
   * The guid the image holds (the last snapshot received into it), or null when unknown: an
   * incremental must come from it; a full stream may come whatever it is.
   */
  baseGuid?: bigint | null;
}

/**
 * Whether every byte is zero.
 *
 * @example
 * ```ts
 * import { allZero } from "./volume.ts";
 * const b = new Uint8Array(4099);
 * if (!allZero(b)) throw new Error();
 * b[4098] = 1;
 * if (allZero(b) || !allZero(b.subarray(1, 4098))) throw new Error();
 * ```
 */
export function allZero(bytes: Uint8Array): boolean {
  const n = bytes.length;
  let i = 0;
  for (; i < n && ((bytes.byteOffset + i) & 3) !== 0; i++) if (bytes[i] !== 0) return false;
  const count = (n - i) >>> 2;
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset + i, count);
  for (let k = 0; k < count; k++) if (words[k] !== 0) return false;
  for (i += count * 4; i < n; i++) if (bytes[i] !== 0) return false;
  return true;
}

function safe(n: bigint, what: string, at: StreamRecord): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new StreamError(
      { index: at.index, type: at.header.type, offset: at.offset },
      `${what} ${n} is beyond what an image can hold`,
    );
  }
  return Number(n);
}

/**
 * Turns the records of one volume stream into operations on an image, with the checks that
 * make sense without a pool: a substream of a volume (objset type 3), not raw, not redacted,
 * not resuming;
 * an incremental from the guid the image holds; objects 1 and 2 of the right types; data
 * only in them; a WRITE_BYREF only into this volume. Records of other objects are ignored.
 *
 * @example
 * ```ts
 * import { BlockBitmap, VolumeReceiver, volumeStream } from "./volume.ts";
 * import { readRecords } from "../stream/reader.ts";
 * const data = new BlockBitmap(4);
 * data.set(3);
 * const stream = [...volumeStream({ toname: "p/v@a", toguid: 1n, blockSize: 512 },
 *   { count: 4, data, changed: data }, () => new Uint8Array(512).fill(5))];
 * const rx = new VolumeReceiver();
 * const ops = [];
 * for await (const r of readRecords(stream)) ops.push(...rx.accept(r).map((o) => o.op));
 * const end = rx.result();
 * if (end.volsize !== 2048 || end.tail !== 2048 || !ops.includes("write")) throw new Error();
 * ```
 */
export class VolumeReceiver {
  #base: bigint | null;
  #begin: { toguid: bigint; fromguid: bigint; toname: string } | null = null;
  #done = false;
  #blockSize: number | null = null;
  #zapSeen = false;
  #volsize: number | null = null;
  #tail: number | null = null;

  /** @param options the guid the image holds */
  constructor(options: VolumeReceiverOptions = {}) {
    this.#base = options.baseGuid ?? null;
  }

  /** Takes the next record; returns what to do to the image. */
  accept(r: StreamRecord): VolumeOp[] {
    const h = r.header;
    const fail = (fault: string): never => {
      throw new StreamError({ index: r.index, type: h.type, offset: r.offset }, fault);
    };
    if (this.#done) fail("a volume image takes one snapshot's stream: records after its END");
    if (h.type === DRR.BEGIN) {
      if (this.#begin !== null) fail("a second BEGIN");
      if (hdrtype(h.versioninfo) === HDRTYPE.COMPOUNDSTREAM) {
        fail(
          "a compound stream (zfs send -R/-I) cannot go onto one image: receive it into a store",
        );
      }
      if (h.objset_type !== OBJSET_TYPE.ZVOL) {
        fail(`not a volume stream: the objset type is ${h.objset_type} (a volume is 3)`);
      }
      const features = featureFlags(h.versioninfo);
      if ((features & BigInt(FEATURE.RAW)) !== 0n) {
        fail("a raw (encrypted) stream cannot be written to an image: its blocks are ciphertext");
      }
      if ((features & BigInt(FEATURE.REDACTED)) !== 0n) {
        fail("a redacted stream leaves holes in the volume: it cannot make an image");
      }
      if ((features & BigInt(FEATURE.RESUMING)) !== 0n) {
        fail(
          "cannot receive resume stream: it continues an interrupted receive (zfs send -t) and " +
            "holds only the rest of the volume, not a whole image",
        );
      }
      if (h.fromguid !== 0n) {
        const fromHex = h.fromguid.toString(16);
        if (this.#base === null) {
          fail(
            `an incremental stream from guid ${fromHex}, but the image's guid is not known ` +
              "(receive the full stream into it first, or name it with -g)",
          );
        }
        if (this.#base !== h.fromguid) {
          fail(
            `an incremental stream from guid ${fromHex}, but the image holds guid ` +
              this.#base!.toString(16),
          );
        }
      }
      this.#begin = { toguid: h.toguid, fromguid: h.fromguid, toname: h.toname };
      return [{
        op: "begin",
        full: h.fromguid === 0n,
        toguid: h.toguid,
        fromguid: h.fromguid,
        toname: h.toname,
      }];
    }
    if (this.#begin === null) fail("a record before BEGIN");
    switch (h.type) {
      case DRR.END:
        this.#done = true;
        return [];
      case DRR.OBJECT:
        if (h.object === ZVOL_OBJ) {
          if (h.object_type !== DMU_OT_ZVOL) {
            fail(`object 1 has type ${h.object_type}, not a volume's data (23)`);
          }
          if (this.#blockSize !== null && this.#blockSize !== h.blksz) {
            fail(`the block size changes from ${this.#blockSize} to ${h.blksz}`);
          }
          this.#blockSize = h.blksz;
        } else if (h.object === ZVOL_ZAP_OBJ && h.object_type !== DMU_OT_ZVOL_PROP) {
          fail(`object 2 has type ${h.object_type}, not a volume's properties (24)`);
        }
        return [];
      case DRR.FREEOBJECTS:
        if (h.firstobj <= ZVOL_ZAP_OBJ && h.firstobj + h.numobjs > ZVOL_OBJ) {
          fail("FREEOBJECTS would free the volume's own objects");
        }
        return [];
      case DRR.FREE: {
        if (h.object !== ZVOL_OBJ) return [];
        const offset = safe(h.offset, "FREE offset", r);
        if (h.length === OBJECT_END) {
          this.#tail = this.#tail === null ? offset : Math.min(this.#tail, offset);
          return [];
        }
        let end = h.offset + h.length;
        if (this.#tail !== null && end > BigInt(this.#tail)) end = BigInt(this.#tail);
        if (end <= h.offset) return [];
        return [{ op: "zero", offset, length: safe(end - h.offset, "FREE length", r) }];
      }
      case DRR.WRITE: {
        if (h.object !== ZVOL_OBJ && h.object !== ZVOL_ZAP_OBJ) return [];
        const lsize = safe(h.logical_size, "WRITE size", r);
        const data = h.compressiontype !== 0 && h.compressed_size !== 0n
          ? decompressBlock(h.compressiontype, r.payload, lsize)
          : r.payload;
        if (h.object === ZVOL_ZAP_OBJ) return this.#zap(h.offset, data, fail);
        return this.#data(safe(h.offset, "WRITE offset", r), data);
      }
      case DRR.WRITE_EMBEDDED: {
        if (h.object !== ZVOL_OBJ && h.object !== ZVOL_ZAP_OBJ) return [];
        const block = new Uint8Array(safe(h.length, "WRITE_EMBEDDED length", r));
        block.set(decompressBlock(h.compression, r.payload.subarray(0, h.psize), h.lsize));
        if (h.object === ZVOL_ZAP_OBJ) return this.#zap(h.offset, block, fail);
        return this.#data(safe(h.offset, "WRITE_EMBEDDED offset", r), block);
      }
      case DRR.WRITE_BYREF: {
        if (h.object !== ZVOL_OBJ) return [];
        if (h.refguid !== h.toguid || h.refobject !== ZVOL_OBJ) {
          fail(
            "WRITE_BYREF into another snapshot or object: only references within this " +
              "volume can be resolved on an image (run the stream through zsend redup)",
          );
        }
        return [{
          op: "copy",
          from: safe(h.refoffset, "WRITE_BYREF reference", r),
          to: safe(h.offset, "WRITE_BYREF offset", r),
          length: safe(h.length, "WRITE_BYREF length", r),
        }];
      }
      case DRR.REDACT:
        return fail("a REDACT record: the volume would have a hole nobody can fill");
      default:
        return [];
    }
  }

  #data(offset: number, data: Uint8Array): VolumeOp[] {
    if (allZero(data)) return [{ op: "zero", offset, length: data.length }];
    return [{ op: "write", offset, data }];
  }

  #zap(offset: bigint, block: Uint8Array, fail: (f: string) => never): VolumeOp[] {
    if (offset !== 0n) return fail("the volume's property ZAP has more than one block");
    // The ZAP is in the sender's byte order: try little-endian, then big-endian.
    const type = new DataView(block.buffer, block.byteOffset, block.length).getBigUint64(0, true);
    const le = type === ZBT.MICRO;
    let size: bigint | null = null;
    try {
      for (const e of parseMicroZap(2, block, le).entries) {
        if (e.name === "size") size = e.value[0] as bigint;
      }
    } catch (e) {
      fail(`the volume's property ZAP: ${(e as Error).message}`);
    }
    if (size === null) fail("the volume's property ZAP has no size");
    const volsize = Number(size);
    if (!Number.isSafeInteger(volsize) || volsize <= 0) fail(`volume size ${size} is not usable`);
    this.#zapSeen = true;
    this.#volsize = volsize;
    return [{ op: "size", volsize }];
  }

  /** How the stream ended; throws when it has not (no END yet). */
  result(): VolumeResult {
    if (!this.#done || this.#begin === null) throw new TypeError("the volume stream has not ended");
    return {
      ...this.#begin,
      blockSize: this.#blockSize,
      volsize: this.#zapSeen ? this.#volsize : null,
      tail: this.#tail,
    };
  }
}
