/**
 * The send side: the records of a stored snapshot, full or incremental against an earlier
 * one, in the order OpenZFS's `dmu_send.c` writes them: objects in increasing order, each
 * OBJECT followed by a FREE past its end, its data in increasing offset order (holes as FREE),
 * then its spill block; free dnode slots as FREEOBJECTS. Aggregation of FREE and FREEOBJECTS is
 * {@linkcode RecordSender}'s (core/stream/pending.ts).
 *
 * @module
 */

import { decompressBlock } from "../compress/mod.ts";
import { BEGIN_FLAG, DRR, FEATURE, HDRTYPE, RECORD_SIZE } from "../stream/constants.ts";
import {
  DATA_TYPE,
  decodeNvlist,
  encodeNvlist,
  nv,
  type NvList,
  type NvPair,
} from "../stream/nvlist.ts";
import type { RecordSender } from "../stream/pending.ts";
import { resumeStart, ResumingSender } from "./resume_sender.ts";
import { WriteRuns } from "./write_runs.ts";
import type { StoredObject } from "../receive/receive.ts";
import { type Checksum, decodeRecord, type DrrRecord, makeVersioninfo } from "../stream/record.ts";
import type { PayloadRef, StreamChunk } from "../stream/writer.ts";

/** An object as a send source holds it: as received, with its spill block. */
export interface SendObject extends StoredObject {
  /** The spill block: its SPILL record's fields (placeless, little-endian) and stored bytes. */
  spill: { meta: Uint8Array; block: number } | null;
}

/** A stored block of an object (kind 0 WRITE, 1 WRITE_EMBEDDED, 2 redacted). */
export interface SendBlock {
  offset: number;
  lsize: number;
  kind: number;
  block: number | null;
  /** The record's fields (placeless, little-endian). */
  meta: Uint8Array;
}

/** A snapshot to send from. */
export interface SendSource {
  guid: bigint;
  creationTime: bigint;
  objsetType: number;
  features: bigint;
  beginFlags: number;
  /**
   * The snapshots it is redacted with respect to (it came from `zfs send --redact`), or null
   * when it is not redacted (absent: not redacted).
   */
  redactSnaps?: bigint[] | null;
  /** Every object, in increasing order. */
  objects(): Iterable<SendObject>;
  /** Blocks of one object, in increasing offset order. */
  blocks(object: number): SendBlock[];
  /** The stored bytes of a block, valid until the next call (a source may reuse a buffer). */
  blockData(block: number): Uint8Array;
  /**
   * The block as a {@linkcode PayloadRef} with its fletcher-4 in the given byte order, when the
   * source has that checksum and can hand out the place of the bytes; else null (and the
   * bytes are read with `blockData`).
   */
  blockRef?(block: number, littleEndian: boolean): PayloadRef | null;
  /**
   * The block's payload as a piece of a {@linkcode PayloadRun}, for little-endian streams:
   * where it lies (`place`, the same object for every piece of one file, and `offset` in it),
   * its length and its fletcher-4 (four little-endian u64, from zero); null when the source
   * cannot give it (then `blockRef` or `blockData` is asked).
   */
  blockPiece?(block: number): BlockPiece | null;
  /**
   * A stored block of each class that decides how blocks go out and which features the stream
   * needs (kind, held or not, larger than 128 KiB or not, `meta` bytes 40, 41 and 50): what
   * {@linkcode featuresFor} reads instead of every block, when the source can tell it.
   */
  blockClasses?(): Iterable<SendBlock>;
  /** The block's SHA-256 (for the dedup key of `-D`). */
  blockHash(block: number): Uint8Array;
  /**
   * Raw snapshots: the BEGIN nvlist it came with (its `crypt_keydata` holds the wrapped keys a
   * raw send must carry), or null.
   */
  cryptNvlist?(): Uint8Array | null;
  /**
   * Raw snapshots: each dnode block's OBJECT_RANGE record as stored (its meta), by first
   * object. A raw send writes one before the objects of each dnode block it sends.
   */
  objectRanges?(): Map<number, Uint8Array>;
}

/** A payload that lies in a file, as a piece of a run (see {@linkcode SendSource.blockPiece}). */
export interface BlockPiece<P = unknown> {
  /** The file it lies in: one object per file, which a run's pieces share. */
  place: P;
  /** Where it starts in the file. */
  offset: number;
  /** Its length. */
  length: number;
  /** Its fletcher-4 from zero: four little-endian u64 (32 bytes). */
  fletcher4: Uint8Array;
}

/**
 * What a stream may carry, as `zfs send`'s `-L`, `-e` and `-c` allow it. Without them, as
 * OpenZFS's sender: blocks larger than 128 KiB go out as 128 KiB WRITEs (and OBJECT records say
 * 128 KiB), embedded blocks as WRITEs of their decompressed data, compressed blocks
 * decompressed. A raw (encrypted) snapshot goes out as stored whatever they say.
 */
export interface SendFlags {
  /** `-L`: blocks larger than 128 KiB go out whole (LARGE_BLOCKS). */
  largeBlocks?: boolean;
  /** `-e`: embedded blocks go out as WRITE_EMBEDDED (EMBED_DATA). */
  embed?: boolean;
  /** `-c`: compressed blocks go out as stored (COMPRESSED). */
  compressed?: boolean;
}

/** Options of {@linkcode sendRecords}. */
export interface SendOptions extends SendFlags {
  /** The snapshot's name as it goes in the BEGIN (`pool/fs@snap`). */
  toname: string;
  /** Send as a clone of `from` (DRR_FLAG_CLONE). */
  clone?: boolean;
  /** `-D`: WRITE_BYREF for blocks sent before in this stream. */
  dedup?: DedupState;
  /**
   * `zfs send -t`: send from this resume point on (the token's `object` and `offset`), with
   * RESUMING and `resume_object`/`resume_offset` in the BEGIN (see core/send/resume_sender.ts).
   */
  resume?: { object: bigint; offset: bigint };
  /**
   * Feature flags the BEGIN says whatever the data needs (`zfs send --saved`: the flags of the
   * receive it continues, as the kernel sets them by the dataset's active features).
   */
  features?: bigint;
  /** Whether END closes the stream (default true); `zfs send --saved` leaves it out. */
  end?: boolean;
}

/** Blocks already sent in this stream (and earlier substreams), for `-D`. */
export class DedupState {
  /** Block id -> where it was first sent. */
  readonly sent: Map<number, { guid: bigint; object: bigint; offset: bigint }> = new Map();
}

const UINT64_MAX = 0xFFFF_FFFF_FFFF_FFFFn;
const DNODES_PER_BLOCK = 32;
const SPA_OLD_MAXBLOCKSIZE = 128 * 1024;
const ZIO_COMPRESS_LZ4 = 15;
const ZIO_COMPRESS_ZSTD = 16;
const ZIO_CHECKSUM_OFF = 2;
const ZIO_CHECKSUM_SHA256 = 8;
const BP_EMBEDDED_TYPE_DATA = 0;

/** The flags in force for a source: a raw snapshot goes out as stored (raw implies -L -c -e). */
function flagsFor(src: SendSource, flags: SendFlags): Required<SendFlags> {
  const raw = (src.features & BigInt(FEATURE.RAW)) !== 0n;
  return {
    largeBlocks: raw || flags.largeBlocks === true,
    embed: raw || flags.embed === true,
    compressed: raw || flags.compressed === true,
  };
}

/** How a stored block goes out. */
type BlockOut =
  /** as stored: WRITE (compressed or not), WRITE_EMBEDDED, or REDACT */
  | "stored"
  /** one WRITE of the decompressed data, the stored checksum key kept */
  | "decompressed"
  /** WRITEs of at most 128 KiB of the (decompressed) data, with no checksum key */
  | "split";

/**
 * How OpenZFS's sender would send a block stored as `b` under `flags` (`do_dump`,
 * `send_do_embed` and `issue_data_read` of `dmu_send.c`): a block larger than 128 KiB is split
 * without `-L` (and then never sent compressed); an embedded block is sent embedded with `-e`
 * when it holds data and its codec is allowed (zstd only with `-c`), whatever its size (the
 * embedding is decided before any split), else as a WRITE of its data; a compressed block is
 * sent compressed only with `-c`.
 */
function blockOut(b: SendBlock, flags: Required<SendFlags>): BlockOut {
  if (b.kind === 2 || b.block === null) return "stored";
  const split = b.lsize > SPA_OLD_MAXBLOCKSIZE && !flags.largeBlocks;
  if (b.kind === 1) {
    const c = b.meta[40]!;
    const embeddable = flags.embed && b.meta[41] === BP_EMBEDDED_TYPE_DATA &&
      (c !== ZIO_COMPRESS_ZSTD || flags.compressed);
    if (embeddable) return "stored";
    return split ? "split" : "decompressed";
  }
  if (split) return "split";
  if (b.meta[50] !== 0 && !flags.compressed) return "decompressed";
  return "stored";
}

/** A record from its stored placeless fields, placed again. */
function placed(meta: Uint8Array, fields: Record<string, unknown>): DrrRecord {
  const raw = new Uint8Array(RECORD_SIZE);
  raw.set(meta.subarray(0, RECORD_SIZE));
  return { ...decodeRecord(raw, true), ...fields } as DrrRecord;
}

/**
 * The feature flags of a stream of a snapshot's stored data under `flags`: what the records
 * sent will need (LARGE_BLOCKS for blocks over 128 KiB sent whole, EMBED_DATA for
 * WRITE_EMBEDDED, COMPRESSED for compressed WRITEs, LZ4 or ZSTD for the codecs these carry,
 * LARGE_DNODE, REDACTED; LZ4 with EMBED_DATA or COMPRESSED, as OpenZFS says it), what the
 * dataset is (SA_SPILL for a ZPL with system attributes, LARGE_DNODE and LONGNAME, as the
 * stream it came from said them, or a spill block or large dnode says; LARGE_MICROZAP as it
 * said, only with `-L`, without which such a snapshot is refused as OpenZFS refuses it), RAW
 * as stored, and DEDUP for `-D`.
 * Decided over the whole snapshot, as OpenZFS decides by the dataset's features, so that an
 * incremental says what its base said.
 */
export function featuresFor(src: SendSource, dedup: boolean, flags: SendFlags = {}): bigint {
  const fl = flagsFor(src, flags);
  let f = src.features &
    BigInt(FEATURE.RAW | FEATURE.SA_SPILL | FEATURE.LARGE_DNODE | FEATURE.LONGNAME);
  if (src.redactSnaps !== null && src.redactSnaps !== undefined) f |= BigInt(FEATURE.REDACTED);
  if ((src.features & BigInt(FEATURE.LARGE_MICROZAP)) !== 0n) {
    // A large microzap block must never be split (setup_featureflags).
    if (!fl.largeBlocks) {
      throw new TypeError(
        "Cannot send the snapshot: it contains large microzaps, need -L (--large-block) to send it",
      );
    }
    f |= BigInt(FEATURE.LARGE_MICROZAP);
  }
  for (const o of src.objects()) {
    if (o.blksz > SPA_OLD_MAXBLOCKSIZE && fl.largeBlocks) f |= BigInt(FEATURE.LARGE_BLOCKS);
    if (o.dnSlots > 1) f |= BigInt(FEATURE.LARGE_DNODE);
    if (o.spill !== null) f |= BigInt(FEATURE.SA_SPILL);
  }
  const classes = src.blockClasses?.() ??
    (function* () {
      for (const o of src.objects()) yield* src.blocks(o.object);
    })();
  for (const b of classes) {
    if (b.kind === 2) {
      f |= BigInt(FEATURE.REDACTED);
      continue;
    }
    if (blockOut(b, fl) !== "stored") continue;
    if (b.kind === 1) {
      f |= BigInt(FEATURE.EMBED_DATA) | codecFeature(b.meta[40]!);
      continue;
    }
    if (b.lsize > SPA_OLD_MAXBLOCKSIZE) f |= BigInt(FEATURE.LARGE_BLOCKS);
    if (b.meta[50] !== 0) f |= BigInt(FEATURE.COMPRESSED) | codecFeature(b.meta[50]!);
  }
  // OpenZFS says LZ4 with either whenever the pool has lz4, as every pool that has them has.
  if ((f & BigInt(FEATURE.EMBED_DATA | FEATURE.COMPRESSED)) !== 0n) f |= BigInt(FEATURE.LZ4);
  if (dedup) f |= BigInt(FEATURE.DEDUP | FEATURE.DEDUPPROPS);
  return f;
}

function codecFeature(c: number): bigint {
  if (c === ZIO_COMPRESS_LZ4) return BigInt(FEATURE.LZ4);
  if (c === ZIO_COMPRESS_ZSTD) return BigInt(FEATURE.ZSTD);
  return 0n;
}

function sameObject(a: SendObject, b: SendObject): boolean {
  return a.type === b.type && a.bonustype === b.bonustype && a.blksz === b.blksz &&
    a.bonuslen === b.bonuslen && a.checksumtype === b.checksumtype &&
    a.compress === b.compress && a.dnSlots === b.dnSlots && a.flags === b.flags &&
    equalBytes(a.bonus, b.bonus) && sameSpill(a.spill, b.spill);
}

function sameSpill(a: SendObject["spill"], b: SendObject["spill"]): boolean {
  if (a === null || b === null) return a === b;
  return a.block === b.block && equalBytes(a.meta, b.meta);
}

function sameBlock(a: SendBlock, b: SendBlock): boolean {
  return a.offset === b.offset && a.lsize === b.lsize && a.kind === b.kind &&
    a.block === b.block && equalBytes(a.meta, b.meta);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The dnode's highest block id, from the data it holds. */
function maxblkidOf(o: SendObject, blocks: SendBlock[], raw: boolean): bigint {
  if (raw) return o.maxblkid;
  let end = 0;
  for (const b of blocks) end = Math.max(end, b.offset + b.lsize);
  return end === 0 ? 0n : BigInt(Math.ceil(end / o.blksz) - 1);
}

/** A SHA-256 digest as a dedup key: four big-endian 64-bit words. */
function dedupKey(hash: Uint8Array): Checksum {
  const v = new DataView(hash.buffer, hash.byteOffset, hash.byteLength);
  return [v.getBigUint64(0), v.getBigUint64(8), v.getBigUint64(16), v.getBigUint64(24)];
}

/**
 * The records of one substream: BEGIN, then objects and data, then END.
 *
 * @param sink the pending-op aggregation that encodes records
 * @param to the snapshot to send
 * @param from the snapshot it is relative to (incremental or clone), or null for a full stream
 * @returns the stream's chunks: bytes, and payloads by reference where `to` gives them
 */
export function* sendRecords(
  sink: RecordSender,
  to: SendSource,
  from: SendSource | null,
  options: SendOptions,
): Generator<StreamChunk> {
  const toguid = to.guid;
  const raw = (to.features & BigInt(FEATURE.RAW)) !== 0n;
  const dedup = options.dedup;
  const fl = flagsFor(to, options);
  let flags = to.beginFlags &
    (BEGIN_FLAG.CI_DATA | BEGIN_FLAG.FREERECORDS | BEGIN_FLAG.SPILL_BLOCK);
  if (options.clone) flags |= BEGIN_FLAG.CLONE;
  let features = featuresFor(to, dedup !== undefined, fl) | (options.features ?? 0n);
  const after = [...to.objects()];
  // A resume at object 0, offset 0 is a whole stream, as the kernel takes it.
  const resume = options.resume !== undefined &&
      (options.resume.object !== 0n || options.resume.offset !== 0n)
    ? options.resume
    : undefined;
  if (resume !== undefined) {
    const o = after.find((x) => BigInt(x.object) === resume.object);
    if (o === undefined) {
      throw new RangeError(
        `cannot resume send: object ${resume.object} is not in ${options.toname}`,
      );
    }
    features |= BigInt(FEATURE.RESUMING);
    sink = new ResumingSender(sink.writer, {
      object: resume.object,
      start: resumeStart(resume.offset, o.blksz),
    });
  }
  const redacted = (features & BigInt(FEATURE.REDACTED)) !== 0n;
  if (redacted && (to.redactSnaps === null || to.redactSnaps === undefined)) {
    // REDACT records need the REDACTED flag, and that flag the list of snapshots (the
    // kernel's receive requires redact_snaps); without it, refuse rather than send holes.
    throw new RangeError(
      `${options.toname} has redacted ranges but no redaction list: it cannot be sent ` +
        `as a redacted stream`,
    );
  }
  // The BEGIN nvlist of dmu_send.c: the snapshots a redacted send is redacted with respect
  // to, and those of a redacted snapshot it is sent from.
  const pairs: NvPair[] = [];
  if (redacted) pairs.push(nv.uint64Array("redact_snaps", to.redactSnaps!));
  if (from?.redactSnaps !== null && from?.redactSnaps !== undefined) {
    pairs.push(nv.uint64Array("redact_from_snaps", from.redactSnaps));
  }
  if (resume !== undefined) {
    pairs.push(
      nv.uint64("resume_object", resume.object),
      nv.uint64("resume_offset", resume.offset),
    );
  }
  const ranges = raw ? to.objectRanges?.() ?? new Map<number, Uint8Array>() : null;
  const fromRanges = raw && from !== null
    ? from.objectRanges?.() ?? new Map<number, Uint8Array>()
    : null;
  if (raw) pairs.push(rawKeydata(to, from, options.toname));
  const payload = pairs.length === 0 ? undefined : encodeNvlist(nv.list(...pairs), {
    encoding: "native",
    littleEndian: sink.writer.littleEndian,
  });
  yield* sink.begin({
    versioninfo: makeVersioninfo(HDRTYPE.SUBSTREAM, features),
    creation_time: to.creationTime,
    objset_type: to.objsetType,
    flags,
    toguid,
    fromguid: from?.guid ?? 0n,
    toname: options.toname,
  }, payload);

  const before = new Map<number, SendObject>();
  if (from !== null) { for (const o of from.objects()) before.set(o.object, o); }
  const skipped = sink instanceof ResumingSender ? sink : null;
  // Runs of stored WRITEs (little-endian, and not for -D or a resume, which look at each).
  const runs = to.blockPiece !== undefined && sink.writer.littleEndian && dedup === undefined &&
      skipped === null
    ? new WriteRuns()
    : null;
  let next = 1; // object 0 is the meta dnode
  let i = 0;
  const freed = [...before.keys()].filter((id) => !after.some((o) => o.object === id)).sort((
    a,
    b,
  ) => a - b);
  let f = 0;

  const sendFreed = (upTo: number) => {
    const out: Uint8Array[] = [];
    while (f < freed.length && freed[f]! < upTo) {
      out.push(...sink.freeObjects(BigInt(freed[f]!), 1n));
      f++;
    }
    return out;
  };

  // Raw: the dnode block being sent (its OBJECT_RANGE goes out before its first object), and
  // whether a dnode block changed since `from` (its crypt parameters differ): the receiver
  // writes a raw dnode block whole, so every object of a changed block goes out again.
  let rangeSent = -1;
  const rangeOf = (object: number) => Math.floor(object / DNODES_PER_BLOCK) * DNODES_PER_BLOCK;
  const blockChanged = (object: number): boolean => {
    if (ranges === null || fromRanges === null) return false;
    const a = ranges.get(rangeOf(object)), b = fromRanges.get(rangeOf(object));
    return a === undefined || b === undefined || !equalBytes(a, b);
  };

  for (; i < after.length; i++) {
    const o = after[i]!;
    const old = before.get(o.object) ?? null;
    if (from === null && o.object > next) {
      yield* sink.freeObjects(BigInt(next), BigInt(o.object - next));
    }
    if (from !== null) yield* sendFreed(o.object);
    next = o.object + Math.max(1, o.dnSlots);
    if (skipped !== null && BigInt(o.object) < skipped.from.object) continue;

    const [blocks, spillEmbedded] = splitSpill(to.blocks(o.object));
    const whole = old === null || old.type !== o.type || old.blksz !== o.blksz ||
      old.bonustype !== o.bonustype || old.dnSlots !== o.dnSlots;
    let oldBlocks = new Map<number, SendBlock>();
    let oldSpillEmbedded: SendBlock | null = null;
    if (!whole && old !== null) {
      const [was, wasSpill] = splitSpill(from!.blocks(o.object));
      oldBlocks = new Map(was.map((b) => [b.offset, b]));
      oldSpillEmbedded = wasSpill;
    }
    const spillChanged = spillEmbedded !== null &&
      (whole || oldSpillEmbedded === null || !sameBlock(oldSpillEmbedded, spillEmbedded));
    const changed = whole ? blocks : blocks.filter((b) => {
      const was = oldBlocks.get(b.offset);
      return was === undefined || !sameBlock(was, b);
    });
    const kept = whole ? null : new Set(blocks.map((b) => b.offset));
    const removed = kept === null ? [] : [...oldBlocks.values()].filter((b) => !kept.has(b.offset));
    if (
      !whole && old !== null && sameObject(old, o) && changed.length === 0 &&
      removed.length === 0 && !spillChanged &&
      (oldSpillEmbedded === null) === (spillEmbedded === null) && !blockChanged(o.object)
    ) {
      continue;
    }
    if (ranges !== null && rangeOf(o.object) !== rangeSent) {
      rangeSent = rangeOf(o.object);
      const meta = ranges.get(rangeSent);
      if (meta === undefined) {
        throw new TypeError(
          `${options.toname} is raw but its store has no OBJECT_RANGE for object ${o.object} ` +
            "(received before zsend kept them): it cannot be sent raw",
        );
      }
      yield* sink.write(placed(meta, { type: DRR.OBJECT_RANGE, toguid }));
    }

    // OBJECT, then a FREE of everything past the object's end. Without large blocks the
    // OBJECT says 128 KiB for a larger block size (as dump_dnode does), and the blocks go out
    // split; the FREE past the end is still in the object's own block size.
    const maxblkid = maxblkidOf(o, blocks, raw);
    yield* sink.write({
      type: DRR.OBJECT,
      object: BigInt(o.object),
      object_type: o.type,
      bonustype: o.bonustype,
      blksz: o.blksz > SPA_OLD_MAXBLOCKSIZE && !fl.largeBlocks ? SPA_OLD_MAXBLOCKSIZE : o.blksz,
      bonuslen: o.bonuslen,
      checksumtype: o.checksumtype,
      compress: o.compress,
      dn_slots: o.dnSlots > 1 || raw ? o.dnSlots : 0,
      flags: o.flags,
      raw_bonuslen: o.rawBonuslen,
      toguid,
      indblkshift: raw ? o.indblkshift : 0,
      nlevels: raw ? o.nlevels : 0,
      nblkptr: raw ? o.nblkptr : 0,
      maxblkid: raw ? o.maxblkid : 0n,
    }, o.bonus);
    const end = (maxblkid + 1n) * BigInt(o.blksz);
    yield* sink.free(BigInt(o.object), end, UINT64_MAX);

    // Data in increasing offset order; holes (full) and removed blocks (incremental) as FREE.
    let cursor = 0;
    // (Their offsets are distinct: a removed block is one whose offset has no block now.)
    const gone = removed.length === 0 ? null : new Set(removed);
    const ordered = gone === null
      ? changed
      : [...changed, ...removed].sort((x, y) => x.offset - y.offset);
    for (const b of ordered) {
      if (gone?.has(b)) {
        yield* runs?.flush(sink) ?? [];
        yield* sink.free(BigInt(o.object), BigInt(b.offset), BigInt(b.lsize));
        continue;
      }
      if (whole && b.offset > cursor) {
        yield* runs?.flush(sink) ?? [];
        yield* sink.free(BigInt(o.object), BigInt(cursor), BigInt(b.offset - cursor));
      }
      cursor = b.offset + b.lsize;
      if (skipped?.before(BigInt(o.object), BigInt(b.offset))) continue;
      // A stored WRITE whose payload lies in a file joins the run of those before it.
      const piece = runs !== null && b.kind === 0 && b.block !== null && runs.take(b.meta) &&
          blockOut(b, fl) === "stored"
        ? to.blockPiece!(b.block)
        : null;
      if (piece !== null) {
        if (!runs!.fits(piece)) yield* runs!.flush(sink);
        runs!.add(b.meta, o.object, b.offset, toguid, piece);
        continue;
      }
      yield* runs?.flush(sink) ?? [];
      yield* dataRecord(sink, to, o, b, toguid, dedup, fl);
    }
    yield* runs?.flush(sink) ?? [];
    if (whole && BigInt(cursor) < end) {
      yield* sink.free(BigInt(o.object), BigInt(cursor), end - BigInt(cursor));
    }
    if (o.spill !== null && (old === null || whole || !sameSpill(old.spill, o.spill))) {
      const rec = placed(o.spill.meta, { type: DRR.SPILL, object: BigInt(o.object), toguid });
      yield* sink.write(rec, to.blockData(o.spill.block));
    }
    if (spillChanged) yield* embeddedSpill(sink, to, o, spillEmbedded!, toguid, fl);
  }
  if (from !== null) yield* sendFreed(Number.MAX_SAFE_INTEGER);
  else {
    const maxobj = Math.ceil(next / DNODES_PER_BLOCK) * DNODES_PER_BLOCK;
    if (maxobj > next) yield* sink.freeObjects(BigInt(next), BigInt(maxobj - next));
  }
  yield* options.end === false ? sink.flush() : sink.end();
}

/**
 * The `crypt_keydata` pair of a raw send's BEGIN nvlist: the one the snapshot was received
 * with, its `from_ivset_guid` set to the `to_ivset_guid` of the snapshot it is sent from (0 for
 * a full stream), which the receiver checks against its own copy of that snapshot.
 */
function rawKeydata(to: SendSource, from: SendSource | null, toname: string): NvPair {
  const keydataOf = (src: SendSource): NvList | null => {
    const bytes = src.cryptNvlist?.() ?? null;
    if (bytes === null) return null;
    const pair = decodeNvlist(bytes).pairs.find((p) => p.name === "crypt_keydata");
    return pair?.type === DATA_TYPE.NVLIST ? pair.value : null;
  };
  const kd = keydataOf(to);
  if (kd === null) {
    throw new TypeError(
      `${toname} is raw but its store kept no crypt_keydata (received before zsend kept it): ` +
        "it cannot be sent raw",
    );
  }
  let fromIvset = 0n;
  if (from !== null) {
    const fk = keydataOf(from);
    const p = fk?.pairs.find((x) => x.name === "to_ivset_guid");
    if (p?.type === DATA_TYPE.UINT64) fromIvset = p.value;
  }
  const pairs = kd.pairs.map((p) =>
    p.name === "from_ivset_guid" && p.type === DATA_TYPE.UINT64 ? { ...p, value: fromIvset } : p
  );
  return { name: "crypt_keydata", type: DATA_TYPE.NVLIST, value: { ...kd, pairs } };
}

/**
 * Whether a stored block is an embedded spill block: OpenZFS sends a spill block whose pointer
 * is embedded as WRITE_EMBEDDED at offset `DMU_SPILL_BLKID (2^64-2) * length` (mod 2^64), far
 * past any data offset (at most 2^63).
 */
function isSpillBlock(b: SendBlock): boolean {
  return b.kind === 1 && b.offset >= 2 ** 63;
}

/** An object's blocks: its data blocks, and its embedded spill block or null. */
function splitSpill(blocks: SendBlock[]): [SendBlock[], SendBlock | null] {
  const spill = blocks.find(isSpillBlock) ?? null;
  return [spill === null ? blocks : blocks.filter((b) => b !== spill), spill];
}

/**
 * An embedded spill block, after the object's data as OpenZFS sends its spill: with `-e` as
 * WRITE_EMBEDDED at the spill offset, else as a SPILL record of its data (`dump_spill`).
 */
function* embeddedSpill(
  sink: RecordSender,
  to: SendSource,
  o: SendObject,
  b: SendBlock,
  toguid: bigint,
  flags: Required<SendFlags>,
): Generator<StreamChunk> {
  const object = BigInt(o.object);
  if (blockOut(b, flags) === "stored") {
    // The offset computed again: the store may keep it as a float, which cannot hold it.
    const offset = BigInt.asUintN(64, -2n * BigInt(b.lsize));
    const data = to.blockData(b.block!);
    const padded = new Uint8Array((data.length + 7) & ~7);
    padded.set(data);
    yield* sink.write(placed(b.meta, { type: DRR.WRITE_EMBEDDED, object, offset, toguid }), padded);
    return;
  }
  yield* sink.write(
    { type: DRR.SPILL, object, length: BigInt(b.lsize), toguid },
    plainData(to, o, b),
  );
}

/**
 * A stored block's data as plain bytes of its logical size: decompressed (a compressed WRITE,
 * an embedded block's payload) through the codec registry, which names a codec it lacks.
 */
function plainData(to: SendSource, o: SendObject, b: SendBlock): Uint8Array {
  const stored = to.blockData(b.block!);
  const meta = new DataView(b.meta.buffer, b.meta.byteOffset, b.meta.byteLength);
  let codec: number, lsize: number;
  if (b.kind === 1) {
    codec = b.meta[40]!;
    lsize = meta.getUint32(48, true);
  } else {
    codec = b.meta[50]!;
    lsize = b.lsize;
    if (codec === 0) return stored;
  }
  let data: Uint8Array;
  try {
    data = decompressBlock(codec, stored, lsize);
  } catch (e) {
    const what = `object ${o.object}'s block at ${b.offset}`;
    if (e instanceof TypeError) {
      throw new TypeError(
        `Cannot send ${what} uncompressed: ${(e as Error).message} (send it as stored with ` +
          `${b.kind === 1 ? "-e" : "-c"})`,
      );
    }
    throw new RangeError(`Cannot send ${what} uncompressed: ${(e as Error).message}`);
  }
  if (data.length >= b.lsize) return data.subarray(0, b.lsize);
  const whole = new Uint8Array(b.lsize);
  whole.set(data);
  return whole;
}

function* dataRecord(
  sink: RecordSender,
  to: SendSource,
  o: SendObject,
  b: SendBlock,
  toguid: bigint,
  dedup: DedupState | undefined,
  flags: Required<SendFlags>,
): Generator<StreamChunk> {
  const object = BigInt(o.object), offset = BigInt(b.offset);
  if (b.kind === 2 || b.block === null) {
    yield* sink.redact(object, offset, BigInt(b.lsize));
    return;
  }
  const out = blockOut(b, flags);
  if (out === "split") {
    // As OpenZFS splits a large block it may not send whole: WRITEs of at most 128 KiB of
    // the plain data, checksum OFF and no key (no block pointer stands behind them).
    const data = plainData(to, o, b);
    for (let at = 0; at < data.length; at += SPA_OLD_MAXBLOCKSIZE) {
      const n = Math.min(SPA_OLD_MAXBLOCKSIZE, data.length - at);
      yield* sink.write({
        type: DRR.WRITE,
        object,
        object_type: o.type,
        offset: offset + BigInt(at),
        logical_size: BigInt(n),
        toguid,
        checksumtype: ZIO_CHECKSUM_OFF,
      }, data.subarray(at, at + n));
    }
    return;
  }
  if (out === "decompressed" && b.kind === 1) {
    // An embedded block not sent embedded: a WRITE of its data, checksum OFF and no key
    // (OpenZFS has none for an embedded block pointer).
    yield* sink.write({
      type: DRR.WRITE,
      object,
      object_type: o.type,
      offset,
      logical_size: BigInt(b.lsize),
      toguid,
      checksumtype: ZIO_CHECKSUM_OFF,
    }, plainData(to, o, b));
    return;
  }
  if (b.kind === 1) {
    const data = to.blockData(b.block);
    const padded = new Uint8Array((data.length + 7) & ~7);
    padded.set(data);
    yield* sink.write(placed(b.meta, { type: DRR.WRITE_EMBEDDED, object, offset, toguid }), padded);
    return;
  }
  const rec = placed(b.meta, { type: DRR.WRITE, object, offset, toguid }) as DrrRecord & {
    checksumtype: number;
    flags: number;
    key_cksum: Checksum;
    logical_size: bigint;
    key_prop: bigint;
    compressiontype: number;
    compressed_size: bigint;
  };
  if (dedup !== undefined) {
    const first = dedup.sent.get(b.block);
    if (first !== undefined) {
      yield* sink.write({
        type: DRR.WRITE_BYREF,
        object,
        offset,
        length: rec.logical_size,
        toguid,
        refguid: first.guid,
        refobject: first.object,
        refoffset: first.offset,
        checksumtype: ZIO_CHECKSUM_SHA256,
        flags: 1,
        key_cksum: dedupKey(to.blockHash(b.block)),
        key_prop: rec.key_prop,
      });
      return;
    }
    dedup.sent.set(b.block, { guid: toguid, object, offset });
    rec.checksumtype = ZIO_CHECKSUM_SHA256;
    rec.flags |= 1;
    rec.key_cksum = dedupKey(to.blockHash(b.block));
  }
  if (out === "decompressed") {
    // The data uncompressed, the checksum key of the block pointer kept (as OpenZFS sends a
    // compressed block without -c).
    rec.compressiontype = 0;
    rec.compressed_size = 0n;
    yield* sink.write(rec, plainData(to, o, b));
    return;
  }
  const ref = to.blockRef?.(b.block, sink.writer.littleEndian) ?? null;
  yield* sink.write(rec, ref ?? to.blockData(b.block));
}
