/**
 * Bytes to records: reads replay records and their payloads from a byte stream, checks every
 * checksum and the BEGIN/END nesting as it goes, and throws {@linkcode StreamError} naming the
 * record and its byte offset at the first fault.
 *
 * @module
 */

import {
  BACKUP_MAGIC,
  CHECKSUM_OFFSET,
  DRR,
  HDRTYPE,
  MAX_BEGIN_PAYLOAD,
  RECORD_SIZE,
  SPA_MAXBLOCKSIZE,
} from "./constants.ts";
import { StreamError, type StreamPosition } from "./errors.ts";
import { Fletcher4, type Fletcher4Engine, tsFletcher4 } from "../checksum/fletcher4.ts";
import {
  type Checksum,
  decodeRecord,
  type DrrRecord,
  hdrtype,
  isKnownType,
  payloadSize,
  rawRecordType,
  streamByteOrder,
} from "./record.ts";
import { type ByteChunks, ByteSource } from "./byte_source.ts";

/** One record as read from a stream. */
export interface StreamRecord {
  /** 0-based index of the record in the stream. */
  index: number;
  /** Byte offset of the record's start. */
  offset: number;
  /** The decoded header. */
  header: DrrRecord;
  /** The 312 raw bytes, in the stream's byte order. */
  raw: Uint8Array;
  /** The payload that follows (empty when none); shares memory with the input chunks. */
  payload: Uint8Array;
  /**
   * The payload's own fletcher-4 (from zero, in the stream's byte order), when asked for with
   * `payloadChecksums` and the payload is not empty.
   */
  payloadChecksum?: Checksum;
  /** The stream's byte order. */
  littleEndian: boolean;
  /**
   * Which substream the record belongs to: 1, 2, ... in order; 0 for the records of a compound
   * stream's own header (its BEGIN with the nvlist, that BEGIN's END, and the final END).
   */
  substream: number;
}

/** Options of {@linkcode readRecords}. */
export interface ReadOptions {
  /** The fletcher-4 implementation (the pure-TypeScript one by default). */
  fletcher4?: Fletcher4Engine;
  /** Skip checksum verification, as `zstream dump -C` does. */
  ignoreChecksums?: boolean;
  /**
   * Give each record its payload's own fletcher-4 ({@linkcode StreamRecord.payloadChecksum}),
   * at no extra pass over the bytes: the running checksum is the payload's folded in.
   */
  payloadChecksums?: boolean;
  /** The largest payload accepted for any record but BEGIN (16 MiB, the largest block). */
  maxPayload?: number;
  /**
   * The source refills its buffers (`readerChunks(..., { reuse: true })`) and every record is
   * done with before the next batch is asked for: payloads that span two chunks are then
   * copied into one reused buffer rather than a new one each (see `ByteSource`).
   */
  reuseSpans?: boolean;
}

/** Where the reader is in the BEGIN/END structure. */
type Nesting = "start" | "substream" | "header" | "package" | "done";

const EMPTY: Uint8Array = new Uint8Array(0);

/**
 * Bytes of the blocks that record headers are copied into (210 headers each). Each block is
 * new, never reused: a record kept after its batch keeps its header, and its block with it.
 */
const HEADER_ARENA = 210 * RECORD_SIZE;

function hex(ck: Checksum): string {
  return ck.map((w) => w.toString(16)).join("/");
}

/**
 * Reads every record of a send stream.
 *
 * @param source the stream's bytes, in chunks of any size
 * @param options checksum engine, `ignoreChecksums`, payload limit
 * @returns the records in order; throws {@linkcode StreamError} at the first fault, including a
 * stream that ends before its last END
 * @example
 * ```ts
 * import { readRecords, StreamWriter } from "jsr:@zsend/zsend";
 * const w = new StreamWriter({ littleEndian: true });
 * const bytes = [
 *   ...w.begin({ toname: "pool/fs@snap", toguid: 1n, objset_type: 2 }),
 *   ...w.end(),
 * ];
 * const types = [];
 * for await (const r of readRecords(bytes)) types.push(r.header.type);
 * if (types.join() !== "0,5") throw new Error(types.join());
 * ```
 */
export async function* readRecords(
  source: ByteChunks,
  options: ReadOptions = {},
): AsyncGenerator<StreamRecord> {
  for await (const batch of readRecordBatches(source, options)) yield* batch;
}

/** Records per batch at most: small batches measured the least resident memory, at no cost in speed. */
const BATCH = 4;

/**
 * {@linkcode readRecords} in batches: all the records that lie in the bytes already read, so
 * that a fast consumer pays for one `await` per chunk rather than one per record. Payloads of a
 * batch are valid until the next batch is asked for.
 *
 * @example
 * ```ts
 * import { readRecordBatches } from "./reader.ts";
 * import { StreamWriter } from "jsr:@zsend/zsend";
 * const w = new StreamWriter();
 * const bytes = [...w.begin({ toname: "p/fs@a", toguid: 1n, objset_type: 2 }), ...w.end()];
 * let n = 0;
 * for await (const batch of readRecordBatches(bytes)) n += batch.length;
 * if (n !== 2) throw new Error();
 * ```
 */
export async function* readRecordBatches(
  source: ByteChunks,
  options: ReadOptions = {},
): AsyncGenerator<StreamRecord[]> {
  const src = new ByteSource(source, { reuseSpans: options.reuseSpans === true });
  const checksum = new Fletcher4(options.fletcher4 ?? tsFletcher4);
  const own = options.payloadChecksums ? new Fletcher4(checksum.engine) : null;
  const verifyChecksums = !options.ignoreChecksums;
  const maxPayload = options.maxPayload ?? SPA_MAXBLOCKSIZE;
  let littleEndian = true;
  let nesting: Nesting = "start";
  let compound = false;
  let substream = 0;
  let index = 0;
  let batch: StreamRecord[] = [];
  let arena = new Uint8Array(0);
  let arenaUsed = HEADER_ARENA;

  try {
    for (;;) {
      const offset = src.consumed;
      // A copy: reading the payload may refill the buffer the header was read from.
      let view = src.takeSync(RECORD_SIZE);
      if (view === null) {
        // More bytes must be read, which may refill the buffer the batch's payloads lie in.
        if (batch.length > 0) yield batch;
        batch = [];
        view = await src.take(RECORD_SIZE);
      }
      if (view.length === 0) break;
      // A copy: reading the payload may refill the buffer the header was read from. Headers
      // are copied into shared blocks, as an allocation per record cost more than the copy.
      if (arenaUsed + view.length > HEADER_ARENA) {
        arena = new Uint8Array(HEADER_ARENA);
        arenaUsed = 0;
      }
      const raw = arena.subarray(arenaUsed, arenaUsed + view.length);
      raw.set(view);
      arenaUsed += view.length;
      let at: StreamPosition = { index, type: -1, offset };
      if (raw.length < RECORD_SIZE) {
        throw new StreamError(
          at,
          `truncated: the stream ends ${raw.length} bytes into a ${RECORD_SIZE}-byte record header`,
        );
      }
      if (index === 0) {
        const order = streamByteOrder(raw);
        if (order === null || rawRecordType(raw, order) !== DRR.BEGIN) {
          throw new StreamError(at, "not a ZFS send stream: the first record is not a BEGIN");
        }
        littleEndian = order;
      }
      const type = rawRecordType(raw, littleEndian);
      at = { index, type, offset };
      if (!isKnownType(type)) throw new StreamError(at, `unknown record type ${type}`);
      const header = decodeRecord(raw, littleEndian, true);

      // Structure: BEGIN ... END, or a compound header BEGIN/END, substreams, and a final END.
      let recordSubstream = substream;
      if (header.type === DRR.BEGIN) {
        if (header.magic !== BACKUP_MAGIC) {
          throw new StreamError(at, `bad magic ${header.magic.toString(16)}`);
        }
        if (nesting === "substream" || nesting === "header") {
          throw new StreamError(at, "BEGIN inside a substream that has not ended");
        }
        if (hdrtype(header.versioninfo) === HDRTYPE.COMPOUNDSTREAM) {
          if (nesting === "package") {
            throw new StreamError(at, "a compound stream inside a compound stream");
          }
          nesting = "header";
          compound = true;
          recordSubstream = 0;
        } else {
          nesting = "substream";
          recordSubstream = ++substream;
        }
      } else if (header.type === DRR.END) {
        if (nesting === "substream") nesting = compound ? "package" : "done";
        else if (nesting === "header") {
          nesting = "package";
          recordSubstream = 0;
        } else if (nesting === "package") {
          nesting = "done";
          compound = false;
          recordSubstream = 0;
        } else throw new StreamError(at, "END outside any substream");
      } else if (nesting !== "substream") {
        throw new StreamError(at, "record outside a substream (no BEGIN before it)");
      }

      const size = payloadSize(header);
      const limit = header.type === DRR.BEGIN ? MAX_BEGIN_PAYLOAD : maxPayload;
      if (size > limit) {
        throw new StreamError(at, `payload of ${size} bytes exceeds the limit of ${limit} bytes`);
      }

      if (verifyChecksums) {
        if (header.type === DRR.BEGIN) checksum.reset();
        if (header.type === DRR.END && !checksum.equals(header.checksum)) {
          throw new StreamError(
            at,
            `END checksum mismatch: the record says ${hex(header.checksum)}, ` +
              `the stream sums to ${hex(checksum.value())}`,
          );
        }
        checksum.update(raw.subarray(0, CHECKSUM_OFFSET), littleEndian);
        if (header.type !== DRR.BEGIN) {
          const rc = header.record_checksum;
          if ((rc[0] | rc[1] | rc[2] | rc[3]) !== 0n && !checksum.equals(rc)) {
            throw new StreamError(
              at,
              `checksum mismatch: the record says ${hex(rc)}, the stream sums to ` +
                hex(checksum.value()),
            );
          }
        }
        checksum.update(raw.subarray(CHECKSUM_OFFSET), littleEndian);
      }

      let payload: Uint8Array = EMPTY;
      let payloadChecksum: Checksum | undefined;
      if (size > 0) {
        let got = src.takeSync(size);
        if (got === null) {
          if (batch.length > 0) yield batch;
          batch = [];
          got = await src.take(size);
        }
        payload = got;
        if (payload.length < size) {
          throw new StreamError(
            at,
            `truncated: the stream ends ${payload.length} bytes into a payload of ${size} bytes`,
          );
        }
        if (own !== null) {
          own.reset();
          own.update(payload, littleEndian);
          payloadChecksum = own.value();
          if (verifyChecksums) checksum.append(payloadChecksum, payload.length);
        } else if (verifyChecksums) checksum.update(payload, littleEndian);
      }
      if (header.type === DRR.END) checksum.reset();

      const rec: StreamRecord = {
        index,
        offset,
        header,
        raw,
        payload,
        littleEndian,
        substream: recordSubstream,
      };
      if (payloadChecksum !== undefined) rec.payloadChecksum = payloadChecksum;
      batch.push(rec);
      if (batch.length >= BATCH) {
        yield batch;
        batch = [];
      }
      index++;
    }

    const at = { index, type: -1, offset: src.consumed };
    if (nesting === "start") throw new StreamError(at, "empty stream: no BEGIN record");
    if (nesting !== "done") {
      throw new StreamError(
        at,
        nesting === "package"
          ? "truncated: the compound stream ends without its final END"
          : "truncated: the stream ends before the END of its substream",
      );
    }
  } catch (e) {
    // The records before the fault reach the consumer first.
    if (batch.length > 0) yield batch;
    throw e;
  }
  if (batch.length > 0) yield batch;
}

/**
 * The same as {@linkcode readRecords}, as a `TransformStream` from bytes to records.
 *
 * @example
 * ```ts
 * import { RecordDecoderStream, StreamWriter } from "jsr:@zsend/zsend";
 * const w = new StreamWriter({ littleEndian: false });
 * const chunks = [...w.begin({ toname: "p/v@s", toguid: 9n, objset_type: 3 }), ...w.end()];
 * const records = await Array.fromAsync(
 *   ReadableStream.from(chunks).pipeThrough(new RecordDecoderStream()),
 * );
 * if (records.length !== 2 || records[0]!.littleEndian) throw new Error();
 * ```
 */
export class RecordDecoderStream implements TransformStream<Uint8Array, StreamRecord> {
  /** Where the decoded records come out. */
  readonly readable: ReadableStream<StreamRecord>;
  /** Where the stream's bytes go in. */
  readonly writable: WritableStream<Uint8Array>;

  /**
   * A decoder whose records come out of `readable` as bytes go into `writable`.
   *
   * @param options as for {@linkcode readRecords}
   */
  constructor(options: ReadOptions = {}) {
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    this.writable = writable;
    this.readable = ReadableStream.from(readRecords(readable, options));
  }
}
