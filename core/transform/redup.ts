/**
 * A dedup stream as a plain one, as OpenZFS `zstream redup` makes it
 * (`cmd/zstream/zstream_redup.c`): every WRITE_BYREF becomes the WRITE it points at, with that
 * WRITE's fields and data but the WRITE_BYREF's object, offset and toguid; DEDUP and DEDUPPROPS
 * are cleared from every BEGIN (the compound header's too); everything else is copied, and the
 * checksums are computed again.
 *
 * The blocks written so far are kept in a {@linkcode RedupIndex}, keyed by the WRITE's (toguid,
 * object, offset) as `zstream redup` keys them, so that a reference resolves into this substream
 * or any earlier substream of a compound stream. {@linkcode MemoryRedupIndex} keeps them in
 * memory; `io/redup_index.ts` keeps them on disk for streams of any size.
 * {@linkcode redupByReference} gives the payloads of a stream that lies in a file as ranges of
 * it, for a writer that copies them without reading them.
 *
 * @module
 */

import { DRR, FEATURE, RECORD_SIZE } from "../stream/constants.ts";
import { StreamError } from "../stream/errors.ts";
import type { Fletcher4Engine } from "../checksum/fletcher4.ts";
import type { StreamRecord } from "../stream/reader.ts";
import {
  type Checksum,
  type DrrBegin,
  type DrrWrite,
  type DrrWriteByref,
  featureFlags,
  LAYOUTS,
  payloadSize,
  type RecordInit,
  viewOf,
} from "../stream/record.ts";
import {
  hasRecordChecksum,
  type PayloadRef,
  type StreamChunk,
  StreamWriter,
  type WriteOptions,
} from "../stream/writer.ts";

/** A WRITE record kept for later references: its decoded header and its payload. */
export interface IndexedWrite {
  /** The WRITE as it was read. */
  header: DrrWrite;
  /** Its payload (`compressed_size` bytes when compressed, else `logical_size`). */
  payload: Uint8Array;
}

/**
 * A WRITE record kept for later references, without its payload: its decoded header and where
 * its payload lies in the stream's own bytes, with the payload's fletcher-4.
 */
export interface LocatedWrite {
  /** The WRITE as it was read. */
  header: DrrWrite;
  /**
   * Its 312 bytes as they lie in the stream, in a buffer the index may use again at its next
   * lookup (the caller may change them).
   */
  raw: Uint8Array;
  /** Byte offset of its payload in the stream. */
  payloadOffset: number;
  /** The payload's fletcher-4 (from zero, in the stream's byte order). */
  payloadChecksum: Checksum;
}

/** Where redup keeps the blocks written so far. */
export interface RedupIndex {
  /**
   * Keeps a WRITE record just read. The record's payload may share memory with the input: an
   * index that holds on to it must copy it.
   */
  add(record: StreamRecord): void | Promise<void>;
  /** The WRITE written with this toguid, object and offset, or `undefined`. */
  find(
    guid: bigint,
    object: bigint,
    offset: bigint,
  ): IndexedWrite | undefined | Promise<IndexedWrite | undefined>;
  /**
   * The WRITE written with this toguid, object and offset, by where its payload lies in the
   * stream, or `undefined` when the index cannot tell (then {@linkcode RedupIndex.find} is
   * asked). Only for {@linkcode redupByReference}.
   */
  locate?(
    guid: bigint,
    object: bigint,
    offset: bigint,
  ): LocatedWrite | undefined | Promise<LocatedWrite | undefined>;
}

/**
 * A {@linkcode RedupIndex} in memory: fine for small streams and tests; its size grows with the
 * data written.
 *
 * @example
 * ```ts
 * import { MemoryRedupIndex } from "jsr:@zsend/zsend";
 * const index = new MemoryRedupIndex();
 * if (index.find(1n, 2n, 0n) !== undefined || index.size !== 0) throw new Error();
 * ```
 */
export class MemoryRedupIndex implements RedupIndex {
  #blocks = new Map<string, IndexedWrite>();

  /** Number of WRITE records kept. */
  get size(): number {
    return this.#blocks.size;
  }

  /** Keeps a copy of a WRITE record. */
  add(record: StreamRecord): void {
    const h = record.header;
    if (h.type !== DRR.WRITE) throw new TypeError("only WRITE records can be indexed");
    this.#blocks.set(key(h.toguid, h.object, h.offset), {
      header: h,
      payload: record.payload.slice(),
    });
  }

  /** The WRITE written with this toguid, object and offset. */
  find(guid: bigint, object: bigint, offset: bigint): IndexedWrite | undefined {
    return this.#blocks.get(key(guid, object, offset));
  }
}

function key(guid: bigint, object: bigint, offset: bigint): string {
  return `${guid.toString(16)}/${object.toString(16)}/${offset.toString(16)}`;
}

/** What {@linkcode redupRecords} did; filled in as it goes. */
export interface RedupStats {
  /** Records read. */
  records: number;
  /** WRITE_BYREF records replaced by WRITEs. */
  byref: number;
  /** WRITE records kept in the index. */
  writes: number;
  /** BEGIN records whose DEDUP/DEDUPPROPS flags were cleared. */
  begins: number;
}

/** Options of {@linkcode redupRecords}. */
export interface RedupOptions {
  /** The fletcher-4 implementation for the new checksums. */
  fletcher4?: Fletcher4Engine;
  /** Counters to fill in. */
  stats?: RedupStats;
}

const DEDUP_FLAGS = BigInt(FEATURE.DEDUP | FEATURE.DEDUPPROPS);

/**
 * Rewrites a dedup stream (plain or compound) as a plain one, in the input's byte order.
 * Records that carried a trailing checksum get a new one, those that did not (old streams)
 * get none; a WRITE that replaces a WRITE_BYREF follows the WRITE_BYREF.
 *
 * @param records the input, as {@linkcode readRecords} yields it (checksums checked)
 * @param index where WRITE records are kept until a WRITE_BYREF needs one
 * @param options checksum engine, counters
 * @returns the bytes of the new stream; throws {@linkcode StreamError} at a WRITE_BYREF that
 * points at nothing written before it
 * @example
 * ```ts
 * import { MemoryRedupIndex, readRecords, redupRecords, StreamWriter } from "jsr:@zsend/zsend";
 * const w = new StreamWriter();
 * const data = new Uint8Array(512).fill(7);
 * const dedup = [
 *   ...w.begin({ toname: "p/fs@s", toguid: 5n, objset_type: 2, versioninfo: 1n | (3n << 2n) }),
 *   ...w.write({ type: 3, object: 8n, object_type: 19, offset: 0n, logical_size: 512n, toguid: 5n }, data),
 *   ...w.write({
 *     type: 6, object: 9n, offset: 0n, length: 512n, toguid: 5n,
 *     refguid: 5n, refobject: 8n, refoffset: 0n,
 *   }),
 *   ...w.end(),
 * ];
 * const plain = await Array.fromAsync(redupRecords(readRecords(dedup), new MemoryRedupIndex()));
 * const out = await Array.fromAsync(readRecords(plain));
 * const copy = out[2]!;
 * if (copy.header.type !== 3 || copy.header.object !== 9n || copy.payload[0] !== 7) {
 *   throw new Error();
 * }
 * if (out[0]!.header.type !== 0 || out[0]!.header.versioninfo !== 1n) throw new Error();
 * ```
 */
export async function* redupRecords(
  records: AsyncIterable<StreamRecord>,
  index: RedupIndex,
  options: RedupOptions = {},
): AsyncGenerator<Uint8Array> {
  const stats = options.stats ?? { records: 0, byref: 0, writes: 0, begins: 0 };
  let writer: StreamWriter | null = null;
  for await (const r of records) {
    stats.records++;
    writer ??= writerFor(r, options);
    const h = r.header;
    const checksum: WriteOptions = { recordChecksum: hasRecordChecksum(h) };
    // The payloads that go out as they came in: their checksum, when the reader gave it.
    const same: WriteOptions = r.payloadChecksum === undefined
      ? checksum
      : { ...checksum, payloadChecksum: r.payloadChecksum };
    switch (h.type) {
      case DRR.BEGIN:
        yield* writer.write(plainBegin(h, stats), r.payload);
        break;
      case DRR.WRITE:
        await index.add(r);
        stats.writes++;
        yield* writer.write(h, r.payload, same);
        break;
      case DRR.WRITE_BYREF: {
        const found = await index.find(h.refguid, h.refobject, h.refoffset);
        const target = checkTarget(r, h, found?.header);
        const copy: RecordInit = {
          ...target,
          object: h.object,
          offset: h.offset,
          toguid: h.toguid,
        };
        stats.byref++;
        yield* writer.write(copy, found!.payload, checksum);
        break;
      }
      default:
        yield* writer.write(h, r.payload, same);
    }
  }
}

/** The writer of the new stream: the input's byte order, the engine asked for. */
function writerFor(first: StreamRecord, options: RedupOptions): StreamWriter {
  return new StreamWriter({
    littleEndian: first.littleEndian,
    ...(options.fletcher4 ? { fletcher4: options.fletcher4 } : {}),
  });
}

/** A BEGIN without DEDUP and DEDUPPROPS, counted when it had them. */
function plainBegin(h: DrrBegin, stats: RedupStats): DrrBegin {
  if ((featureFlags(h.versioninfo) & DEDUP_FLAGS) !== 0n) stats.begins++;
  return { ...h, versioninfo: h.versioninfo & ~(DEDUP_FLAGS << 2n) };
}

/** The WRITE_BYREF's target, checked: the error when it points at nothing or differs in size. */
function checkTarget(r: StreamRecord, h: DrrWriteByref, found: DrrWrite | undefined): DrrWrite {
  const at = { index: r.index, type: h.type, offset: r.offset };
  if (found === undefined) {
    throw new StreamError(
      at,
      `WRITE_BYREF refers to object ${h.refobject} offset ${h.refoffset} of the snapshot ` +
        `with guid ${h.refguid.toString(16)}, which no earlier WRITE of the stream wrote`,
    );
  }
  if (found.logical_size !== h.length) {
    throw new StreamError(
      at,
      `WRITE_BYREF length ${h.length} differs from the logical size ` +
        `${found.logical_size} of the WRITE it refers to`,
    );
  }
  return found;
}

/** Where {@linkcode redupByReference} writes the new stream. */
export interface RedupSink {
  /** Bytes of the new stream, valid only during the call (to be copied). */
  write(bytes: Uint8Array): void;
  /** `length` bytes of the input stream from byte `offset`, as they lie there. */
  writeRange(offset: number, length: number): void;
}

/** Per-record options of the writer, made once. */
const WITH_CHECKSUM: WriteOptions = { recordChecksum: true };
const WITHOUT_CHECKSUM: WriteOptions = { recordChecksum: false };

/** Where the fields a WRITE_BYREF gives its copy lie in a WRITE record. */
const [OBJECT_AT, OFFSET_AT, TOGUID_AT] = ["object", "offset", "toguid"].map((name) =>
  LAYOUTS[DRR.WRITE]!.find((f) => f.name === name)!.offset
);

/**
 * {@linkcode redupRecords} for a stream that lies in a file, into a {@linkcode RedupSink}: the
 * new stream's record headers go as bytes, and every payload that goes out as it lies in the
 * input (a record's own, or the WRITE's a WRITE_BYREF points at, by the index's
 * {@linkcode RedupIndex.locate}) as a range of the input, so that a writer can copy it from the
 * file without it passing through this process. A record is re-encoded only where it changes
 * (BEGIN, END, a WRITE_BYREF's copy, whose other bytes are its WRITE's): the others keep their
 * bytes, with a new trailing checksum. The same stream as {@linkcode redupRecords} makes.
 *
 * @param batches the input, as {@linkcode readRecordBatches} yields it (from the stream's first
 * byte), with `payloadChecksums` (a payload without its checksum, or whose WRITE the index
 * cannot locate, goes out as bytes)
 * @param index where WRITE records are kept until a WRITE_BYREF needs one
 * @param sink where the new stream goes
 * @param options checksum engine, counters
 * @returns when the input is done; throws {@linkcode StreamError} at a WRITE_BYREF that points
 * at nothing written before it
 * @example
 * ```ts
 * import { MemoryRedupIndex, readRecordBatches, redupByReference, StreamWriter } from "jsr:@zsend/zsend";
 * const w = new StreamWriter();
 * const data = new Uint8Array(512).fill(7);
 * const dedup = [
 *   ...w.begin({ toname: "p/fs@s", toguid: 5n, objset_type: 2, versioninfo: 1n | (3n << 2n) }),
 *   ...w.write({ type: 3, object: 8n, object_type: 19, offset: 0n, logical_size: 512n, toguid: 5n }, data),
 *   ...w.end(),
 * ];
 * const ranges: number[][] = [];
 * const sink = { write: () => {}, writeRange: (at: number, n: number) => ranges.push([at, n]) };
 * const batches = readRecordBatches(dedup, { payloadChecksums: true });
 * await redupByReference(batches, new MemoryRedupIndex(), sink);
 * if (ranges.join("/") !== "624,512") throw new Error(ranges.join("/"));
 * ```
 */
export async function redupByReference(
  batches: AsyncIterable<StreamRecord[]>,
  index: RedupIndex,
  sink: RedupSink,
  options: RedupOptions = {},
): Promise<void> {
  const stats = options.stats ?? { records: 0, byref: 0, writes: 0, begins: 0 };
  let writer: StreamWriter | null = null;
  const scratch = new Uint8Array(RECORD_SIZE);
  /** Writes a record's chunks: its header, and its payload as bytes or as a range. */
  const emit = (chunks: StreamChunk[]) => {
    sink.write(chunks[0] as Uint8Array);
    const p = chunks[1];
    if (p === undefined) return;
    if (p instanceof Uint8Array) sink.write(p);
    else sink.writeRange((p as PayloadRef<number>).place, p.length);
  };
  for await (const batch of batches) {
    for (const r of batch) {
      stats.records++;
      writer ??= writerFor(r, options);
      const h = r.header;
      const how = hasRecordChecksum(h) ? WITH_CHECKSUM : WITHOUT_CHECKSUM;
      const own = r.payloadChecksum;
      const payload: Uint8Array | PayloadRef<number> = own === undefined
        ? r.payload
        : { length: r.payload.length, fletcher4: own, place: r.offset + RECORD_SIZE };
      if (h.type === DRR.BEGIN) {
        emit(writer.write(plainBegin(h, stats), payload, how));
      } else if (h.type === DRR.END) {
        emit(writer.write(h, payload, how));
      } else if (h.type === DRR.WRITE_BYREF) {
        stats.byref++;
        const lookup = index.locate?.(h.refguid, h.refobject, h.refoffset);
        const located = lookup instanceof Promise ? await lookup : lookup;
        if (located !== undefined) {
          const target = checkTarget(r, h, located.header);
          const header = located.raw;
          const v = viewOf(header);
          const le = r.littleEndian;
          v.setBigUint64(OBJECT_AT!, h.object, le);
          v.setBigUint64(OFFSET_AT!, h.offset, le);
          v.setBigUint64(TOGUID_AT!, h.toguid, le);
          const ref = {
            length: payloadSize(target),
            fletcher4: located.payloadChecksum,
            place: located.payloadOffset,
          };
          emit(writer.writeEncoded(header, ref, how));
        } else {
          const found = await index.find(h.refguid, h.refobject, h.refoffset);
          const target = checkTarget(r, h, found?.header);
          const copy = { ...target, object: h.object, offset: h.offset, toguid: h.toguid };
          emit(writer.write(copy, found!.payload, how));
        }
      } else {
        if (h.type === DRR.WRITE) {
          const added = index.add(r);
          if (added instanceof Promise) await added;
          stats.writes++;
        }
        // The record's own bytes, in a reused copy that the new checksum goes into.
        scratch.set(r.raw);
        emit(writer.writeEncoded(scratch, payload, how));
      }
    }
  }
}
