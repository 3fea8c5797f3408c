/**
 * Records to bytes: encodes records in either byte order with the running fletcher-4
 * checksum, as the kernel's `dump_record()` does: each record's trailing checksum covers
 * everything before it, END carries the checksum of its whole substream.
 *
 * @module
 */

import { BACKUP_MAGIC, CHECKSUM_OFFSET, DRR, HDRTYPE, RECORD_SIZE } from "./constants.ts";
import {
  Fletcher4,
  type Fletcher4Engine,
  isZeroChecksum,
  tsFletcher4,
} from "../checksum/fletcher4.ts";
import { checkRun, foldRecords } from "../checksum/fletcher4_records.ts";
import {
  type Checksum,
  type DrrBegin,
  type DrrRecord,
  encodeRecord,
  makeVersioninfo,
  type RecordInit,
  viewOf,
  writeChecksum,
} from "./record.ts";

/** Options of {@linkcode StreamWriter}. */
export interface WriterOptions {
  /** Byte order to write (little-endian by default). */
  littleEndian?: boolean;
  /**
   * Whether records carry a trailing checksum (modern streams, the default); old streams
   * (zfs-fuse, pool version 23) carry only the END checksum.
   */
  recordChecksums?: boolean;
  /** The fletcher-4 implementation. */
  fletcher4?: Fletcher4Engine;
}

/**
 * A payload the writer is not given the bytes of: their length and their own fletcher-4 (from
 * zero, in the stream's byte order), and where they lie, for whoever writes the stream out
 * (a store's pack, say, copied by the kernel without passing through this process).
 */
export interface PayloadRef<P = unknown> {
  /** Bytes of the payload. */
  readonly length: number;
  /** Its fletcher-4 from zero, in the stream's byte order. */
  readonly fletcher4: Checksum;
  /** Where its bytes lie. */
  readonly place: P;
}

/**
 * Records that each carry a payload held elsewhere, as one piece (see
 * {@linkcode StreamWriter.writeRun}): the i-th record's {@linkcode RECORD_SIZE} bytes of
 * `headers`, then its payload, `payloadLength` bytes at `offsets[i]` in `place` (a file, say).
 * Thousands of WRITE records of a volume then cost one call to checksum and one to write out.
 */
export interface PayloadRun<P = unknown> {
  /** The records, back to back, with their trailing checksums. */
  readonly headers: Uint8Array;
  /** Bytes of each payload. */
  readonly payloadLength: number;
  /** Where each record's payload starts in `place`. */
  readonly offsets: Float64Array;
  /** Where the payloads lie. */
  readonly place: P;
  /** Bytes of the run in the stream, headers and payloads. */
  readonly length: number;
}

/** A piece of a stream as the writer gives it: bytes, a payload held elsewhere, or a run. */
export type StreamChunk = Uint8Array | PayloadRef | PayloadRun;

/**
 * Whether a chunk is a {@linkcode PayloadRef} rather than bytes or a run.
 *
 * @example
 * ```ts
 * import { isPayloadRef } from "./writer.ts";
 * if (isPayloadRef(new Uint8Array(4))) throw new Error();
 * if (!isPayloadRef({ length: 8, fletcher4: [0n, 0n, 0n, 0n], place: null })) throw new Error();
 * ```
 */
export function isPayloadRef(chunk: StreamChunk): chunk is PayloadRef {
  return !(chunk instanceof Uint8Array) && !isPayloadRun(chunk);
}

/**
 * Whether a chunk is a {@linkcode PayloadRun}.
 *
 * @example
 * ```ts
 * import { isPayloadRun, StreamWriter } from "./writer.ts";
 * const run = new StreamWriter().writeRun(new Uint8Array(0), new BigUint64Array(0), 0,
 *   new Float64Array(0), null);
 * if (!isPayloadRun(run) || isPayloadRun(new Uint8Array(4))) throw new Error();
 * ```
 */
export function isPayloadRun(chunk: StreamChunk): chunk is PayloadRun {
  return (chunk as Partial<PayloadRun>).offsets instanceof Float64Array;
}

/** Per-call options of {@linkcode StreamWriter.write}. */
export interface WriteOptions {
  /** Overrides the writer's `recordChecksums` for this one record. */
  recordChecksum?: boolean;
  /**
   * The payload's own fletcher-4 (from zero, in the writer's byte order), when known already
   * (the reader's `payloadChecksums`): folded into the running checksum instead of summing the
   * payload again.
   */
  payloadChecksum?: Checksum;
}

/**
 * Encodes records with their running checksum. Each call returns the chunks to send: the
 * 312-byte record, then its payload when there is one.
 *
 * @example
 * ```ts
 * import { StreamWriter } from "jsr:@zsend/zsend";
 * const w = new StreamWriter();
 * const chunks = [...w.begin({ toname: "p/fs@a", toguid: 5n, objset_type: 2 }), ...w.end()];
 * if (chunks.length !== 2 || chunks[1]![0] !== 5) throw new Error();
 * ```
 */
export class StreamWriter {
  /** The byte order it writes. */
  readonly littleEndian: boolean;
  /** Whether records carry a trailing checksum (else only END does). */
  readonly recordChecksums: boolean;
  #checksum: Fletcher4;
  #toguid = 0n;

  /**
   * A writer at the start of a stream.
   *
   * @param options byte order, checksum style, engine
   */
  constructor(options: WriterOptions = {}) {
    this.littleEndian = options.littleEndian ?? true;
    this.recordChecksums = options.recordChecksums ?? true;
    this.#checksum = new Fletcher4(options.fletcher4 ?? tsFletcher4);
  }

  /** The running checksum so far. */
  get checksum(): Checksum {
    return this.#checksum.value();
  }

  /**
   * Writes a BEGIN, starting the checksum again. Defaults: magic, a substream header type with
   * no features, and `payloadlen` from the payload.
   */
  begin(fields: Partial<Omit<DrrBegin, "type">>, payload?: Uint8Array): Uint8Array[] {
    return this.write({
      magic: BACKUP_MAGIC,
      versioninfo: makeVersioninfo(HDRTYPE.SUBSTREAM, 0),
      payloadlen: payload?.length ?? 0,
      ...fields,
      type: DRR.BEGIN,
    }, payload);
  }

  /**
   * Writes an END carrying the running checksum (and the substream's toguid unless given),
   * then starts the checksum again.
   */
  end(toguid: bigint = this.#toguid, options: WriteOptions = {}): Uint8Array[] {
    return this.write({ type: DRR.END, toguid }, undefined, options);
  }

  /**
   * The all-zero END that closes a compound stream (its running checksum is zero: the
   * previous END reset it).
   */
  finalEnd(): Uint8Array[] {
    return this.write({ type: DRR.END, toguid: 0n }, undefined, { recordChecksum: false });
  }

  /**
   * Writes any record: END gets the running checksum, others a trailing checksum when the
   * stream carries them. A record without `toguid` gets its substream's, from the last BEGIN.
   * The payload must have the size the record's fields imply; given as a
   * {@linkcode PayloadRef}, its checksum is folded in and the reference is returned in its
   * place.
   *
   * @example
   * ```ts
   * import { decodeRecord, StreamWriter } from "jsr:@zsend/zsend";
   * const w = new StreamWriter();
   * w.begin({ toname: "p/fs@a", toguid: 9n, objset_type: 2 });
   * const [free] = w.write({ type: 4, object: 3n, offset: 0n, length: 512n });
   * const rec = decodeRecord(free!, true);
   * if (rec.type !== 4 || rec.toguid !== 9n) throw new Error();
   * ```
   */
  write(rec: RecordInit | DrrRecord, payload?: Uint8Array, options?: WriteOptions): Uint8Array[];
  /** {@linkcode StreamWriter.write} of a record whose payload is held elsewhere. */
  write(rec: RecordInit | DrrRecord, payload: PayloadRef, options?: WriteOptions): StreamChunk[];
  /** {@linkcode StreamWriter.write} of a record with either kind of payload. */
  write(
    rec: RecordInit | DrrRecord,
    payload?: Uint8Array | PayloadRef,
    options?: WriteOptions,
  ): StreamChunk[];
  write(
    rec: RecordInit | DrrRecord,
    payload?: Uint8Array | PayloadRef,
    options: WriteOptions = {},
  ): StreamChunk[] {
    const le = this.littleEndian;
    const ck = this.#checksum;
    const fields: Record<string, unknown> = { ...rec };
    delete fields.record_checksum;
    if (rec.type === DRR.BEGIN) {
      ck.reset();
      this.#toguid = rec.toguid ?? 0n;
    } else if (fields.toguid === undefined) {
      fields.toguid = this.#toguid;
    }
    if (rec.type === DRR.END) fields.checksum = ck.value();
    const out = encodeRecord(fields as RecordInit, le, new Uint8Array(RECORD_SIZE));
    ck.update(out.subarray(0, CHECKSUM_OFFSET), le);
    const withChecksum = options.recordChecksum ?? this.recordChecksums;
    if (rec.type !== DRR.BEGIN && withChecksum) {
      writeChecksum(viewOf(out), CHECKSUM_OFFSET, ck.value(), le);
    }
    ck.update(out.subarray(CHECKSUM_OFFSET), le);
    if (rec.type === DRR.END) {
      ck.reset();
      return [out];
    }
    if (payload !== undefined && payload.length > 0) {
      if (isPayloadRef(payload)) ck.append(payload.fletcher4, payload.length);
      else if (options.payloadChecksum !== undefined) {
        ck.append(options.payloadChecksum, payload.length);
      } else ck.update(payload, le);
      return [out, payload];
    }
    return [out];
  }

  /**
   * Writes a record encoded already (312 bytes in the writer's byte order, as
   * `encodeRecord` makes them; the trailing checksum is filled in here), for senders that
   * patch one template per record rather than encode each anew. Not for BEGIN or END.
   * `options` as for {@linkcode StreamWriter.write}.
   *
   * @example
   * ```ts
   * import { encodeRecord, StreamWriter } from "jsr:@zsend/zsend";
   * const a = new StreamWriter(), b = new StreamWriter();
   * const rec = { type: 4, object: 3n, offset: 0n, length: 512n, toguid: 0n } as const;
   * const [x] = a.write(rec);
   * const [y] = b.writeEncoded(encodeRecord(rec, true)) as Uint8Array[];
   * if (x!.join() !== y!.join()) throw new Error();
   * ```
   */
  writeEncoded(
    header: Uint8Array,
    payload?: Uint8Array | PayloadRef,
    options: WriteOptions = {},
  ): StreamChunk[] {
    const le = this.littleEndian;
    if (header.length !== RECORD_SIZE) {
      throw new RangeError(`an encoded record has ${RECORD_SIZE} bytes, not ${header.length}`);
    }
    const type = viewOf(header).getUint32(0, le);
    if (type === DRR.BEGIN || type === DRR.END) {
      throw new TypeError("StreamWriter.writeEncoded: not for BEGIN or END");
    }
    const ck = this.#checksum;
    if (options.recordChecksum ?? this.recordChecksums) {
      ck.update(header.subarray(0, CHECKSUM_OFFSET), le);
      writeChecksum(viewOf(header), CHECKSUM_OFFSET, ck.value(), le);
      ck.update(header.subarray(CHECKSUM_OFFSET), le);
    } else {
      // No checksum to put in between: the whole record in one go.
      header.fill(0, CHECKSUM_OFFSET);
      ck.update(header, le);
    }
    if (payload === undefined || payload.length === 0) return [header];
    if (isPayloadRef(payload)) ck.append(payload.fletcher4, payload.length);
    else if (options.payloadChecksum !== undefined) {
      ck.append(options.payloadChecksum, payload.length);
    } else ck.update(payload, le);
    return [header, payload];
  }

  /**
   * {@linkcode StreamWriter.writeEncoded} of a run of records at once, each with a payload held
   * elsewhere: `headers` holds the records back to back (their trailing checksums are filled
   * in here), `sums` each payload's fletcher-4 (four u64 a record, from zero, in the stream's
   * byte order), `offsets` and `place` where the payloads lie. The engine's `updateRecords`
   * does it in one call where it has one. Not for BEGIN or END.
   *
   * @example
   * ```ts
   * import { encodeRecord, StreamWriter } from "jsr:@zsend/zsend";
   * const rec = { type: 3, object: 1n, offset: 0n, logical_size: 512n } as const;
   * const ck = [1n, 2n, 3n, 4n] as const;
   * const a = new StreamWriter(), b = new StreamWriter();
   * const [header] = a.writeEncoded(encodeRecord(rec, true),
   *   { length: 512, fletcher4: [...ck], place: null }) as Uint8Array[];
   * const run = b.writeRun(encodeRecord(rec, true), new BigUint64Array(ck), 512,
   *   new Float64Array([0]), "image");
   * if (run.headers.join() !== header!.join() || run.length !== 312 + 512) throw new Error();
   * if (String(a.checksum) !== String(b.checksum)) throw new Error();
   * ```
   */
  writeRun<P>(
    headers: Uint8Array,
    sums: BigUint64Array,
    payloadLength: number,
    offsets: Float64Array,
    place: P,
  ): PayloadRun<P> {
    const le = this.littleEndian;
    const count = checkRun(headers, sums, payloadLength);
    if (offsets.length !== count) {
      throw new RangeError(`${count} records need ${count} payload offsets, not ${offsets.length}`);
    }
    const view = viewOf(headers);
    for (let at = 0; at < headers.length; at += RECORD_SIZE) {
      const type = view.getUint32(at, le);
      if (type === DRR.BEGIN || type === DRR.END) {
        throw new TypeError("StreamWriter.writeRun: not for BEGIN or END");
      }
    }
    const ck = this.#checksum;
    const engine = ck.engine;
    const rc = this.recordChecksums;
    if (engine.updateRecords) engine.updateRecords(ck.halves, headers, sums, payloadLength, le, rc);
    else foldRecords(ck.halves, headers, sums, payloadLength, le, rc, engine);
    return {
      headers,
      payloadLength,
      offsets,
      place,
      length: count * (RECORD_SIZE + payloadLength),
    };
  }
}

/**
 * Whether a record as read carries a trailing checksum, so that a re-encoding keeps the
 * stream's style.
 */
export function hasRecordChecksum(rec: { record_checksum: Checksum }): boolean {
  return !isZeroChecksum(rec.record_checksum);
}
