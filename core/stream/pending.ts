/**
 * The kernel sender's pending-op aggregation (OpenZFS `module/zfs/dmu_send.c`: `dump_free`,
 * `dump_freeobjects`, `dump_redact` and the flush at the top of every other `dump_*`), on top of
 * {@linkcode StreamWriter}.
 *
 * The sender keeps at most one FREE, FREEOBJECTS or REDACT record pending. A new one of the same
 * kind that continues it (same object and starting where the pending range ends; for
 * FREEOBJECTS, starting at the pending range's end) is folded into it; anything else writes the
 * pending record first. Sums wrap at 2^64 as the C code's do:
 * - a FREE whose end overflows 2^64 becomes `length` 2^64-1 (`DMU_OBJECT_END`), and stays
 *   pending unless its length was 2^64-1 to begin with;
 * - a FREE of length 2^64-1 that does not continue the pending one goes out at once;
 * - a FREEOBJECTS range is first clamped to the objects the meta-dnode can hold (`maxobj`):
 *   one that starts at or past it is dropped without touching the pending record.
 *
 * @module
 */

import { DRR } from "./constants.ts";
import type { DrrBegin, DrrRecord, RecordInit } from "./record.ts";
import { type PayloadRef, type StreamChunk, StreamWriter, type WriteOptions } from "./writer.ts";

/** 2^64-1: `UINT64_MAX`, `DMU_OBJECT_END`. */
export const OBJECT_END: bigint = (1n << 64n) - 1n;

const u64 = (n: bigint): bigint => BigInt.asUintN(64, n);

/** A pending FREE, FREEOBJECTS or REDACT record. */
export type PendingRecord =
  | { type: typeof DRR.FREE; object: bigint; offset: bigint; length: bigint; toguid: bigint }
  | { type: typeof DRR.FREEOBJECTS; firstobj: bigint; numobjs: bigint; toguid: bigint }
  | { type: typeof DRR.REDACT; object: bigint; offset: bigint; length: bigint; toguid: bigint };

/** Options of {@linkcode RecordSender}. */
export interface RecordSenderOptions {
  /**
   * `maxobj` of `dump_freeobjects`: `DNODES_PER_BLOCK * (meta-dnode maxblkid + 1)`, the first
   * object number the dataset cannot hold. FREEOBJECTS ranges are clamped below it; 0 (the
   * default) clamps nothing.
   */
  maxObject?: bigint;
  /**
   * The toguid of the FREE, FREEOBJECTS and REDACT records made here (`dsc_toguid`); a
   * {@linkcode RecordSender.begin} sets it from the BEGIN. 0 until then.
   */
  toguid?: bigint;
}

/**
 * Sends records as the kernel's `dump_*` functions do: FREE, FREEOBJECTS and REDACT ranges wait
 * in a pending record and merge with contiguous ones; every other record writes the pending one
 * first. Each call returns the chunks to send, in order.
 *
 * @example
 * ```ts
 * import { RecordSender } from "./pending.ts";
 * import { readRecords } from "./reader.ts";
 * const s = new RecordSender();
 * const chunks = [
 *   ...s.begin({ toname: "p/v@s", toguid: 7n, objset_type: 3 }),
 *   ...s.free(1n, 0n, 512n),
 *   ...s.free(1n, 512n, 1024n), // continues the pending FREE: merged
 *   ...s.end(), // writes the pending FREE, then END
 * ];
 * const got = [];
 * for await (const r of readRecords(chunks)) got.push(r.header);
 * const free = got[1]!;
 * if (got.length !== 3 || free.type !== 4 || free.length !== 1536n) throw new Error();
 * ```
 */
export class RecordSender {
  /** The writer underneath (byte order, checksum style, running checksum). */
  readonly writer: StreamWriter;
  /** See {@linkcode RecordSenderOptions.maxObject}. */
  maxObject: bigint;
  /** See {@linkcode RecordSenderOptions.toguid}. */
  toguid: bigint;
  #pending: PendingRecord | null = null;

  /**
   * @param writer where records go (a little-endian writer with record checksums by default)
   * @param options `maxobj` and toguid
   */
  constructor(writer: StreamWriter = new StreamWriter(), options: RecordSenderOptions = {}) {
    this.writer = writer;
    this.maxObject = options.maxObject ?? 0n;
    this.toguid = options.toguid ?? 0n;
  }

  /**
   * The record waiting to be written, or `null`.
   *
   * @example
   * ```ts
   * import { RecordSender } from "./pending.ts";
   * const s = new RecordSender();
   * s.freeObjects(5n, 3n);
   * if (s.pending?.type !== 2) throw new Error();
   * s.flush();
   * if (s.pending !== null) throw new Error();
   * ```
   */
  get pending(): Readonly<PendingRecord> | null {
    return this.#pending;
  }

  /**
   * Writes a BEGIN (after any pending record) and takes its toguid for the records made here.
   *
   * @example
   * ```ts
   * import { RecordSender } from "./pending.ts";
   * const s = new RecordSender();
   * s.begin({ toname: "p/v@s", toguid: 9n, objset_type: 3 });
   * if (s.toguid !== 9n) throw new Error();
   * ```
   */
  begin(fields: Partial<Omit<DrrBegin, "type">>, payload?: Uint8Array): Uint8Array[] {
    const out = this.flush();
    this.toguid = fields.toguid ?? 0n;
    out.push(...this.writer.begin(fields, payload));
    return out;
  }

  /**
   * Writes the pending record, if any.
   *
   * @example
   * ```ts
   * import { RecordSender } from "./pending.ts";
   * const s = new RecordSender();
   * if (s.flush().length !== 0) throw new Error();
   * s.free(3n, 0n, 4096n);
   * if (s.flush().length !== 1) throw new Error();
   * ```
   */
  flush(): Uint8Array[] {
    const p = this.#pending;
    if (p === null) return [];
    this.#pending = null;
    return this.writer.write(p);
  }

  /**
   * `dump_free`: frees `length` bytes of `object` from `offset` (`length` 2^64-1 or -1: to the
   * end of the object).
   *
   * @example
   * ```ts
   * import { OBJECT_END, RecordSender } from "./pending.ts";
   * const s = new RecordSender();
   * const out = s.free(1n, 8192n, -1n); // to the end: written at once
   * if (out.length !== 1 || OBJECT_END !== 2n ** 64n - 1n) throw new Error();
   * if (s.free(1n, 0n, 512n).length !== 0) throw new Error(); // pending
   * if (s.flush().length !== 1) throw new Error();
   * ```
   */
  free(object: bigint, offset: bigint, length: bigint): Uint8Array[] {
    object = u64(object);
    offset = u64(offset);
    length = u64(length);
    const out: Uint8Array[] = [];
    let p = this.#pending;
    if (p !== null && p.type !== DRR.FREE) {
      out.push(...this.flush());
      p = null;
    }
    if (p !== null && p.type === DRR.FREE) {
      if (p.object === object && u64(p.offset + p.length) === offset) {
        p.length = offset + length > OBJECT_END || length === OBJECT_END
          ? OBJECT_END
          : u64(p.length + length);
        return out;
      }
      out.push(...this.flush());
    }
    const rec: PendingRecord = {
      type: DRR.FREE,
      object,
      offset,
      length: offset + length > OBJECT_END ? OBJECT_END : length,
      toguid: this.toguid,
    };
    if (length === OBJECT_END) out.push(...this.writer.write(rec));
    else this.#pending = rec;
    return out;
  }

  /**
   * `dump_freeobjects`: frees `count` objects from `first`, clamped below
   * {@linkcode RecordSender.maxObject}.
   *
   * @example
   * ```ts
   * import { RecordSender } from "./pending.ts";
   * const s = new RecordSender(undefined, { maxObject: 32n });
   * s.freeObjects(3n, 1n);
   * s.freeObjects(4n, 100n); // continues, clamped to 4..31
   * s.freeObjects(64n, 64n); // past maxobj: dropped
   * const p = s.pending;
   * if (p?.type !== 2 || p.firstobj !== 3n || p.numobjs !== 29n) throw new Error();
   * ```
   */
  freeObjects(first: bigint, count: bigint): Uint8Array[] {
    first = u64(first);
    count = u64(count);
    const max = this.maxObject;
    if (max > 0n) {
      if (max <= first) return [];
      if (max < u64(first + count)) count = max - first;
    }
    const out: Uint8Array[] = [];
    let p = this.#pending;
    if (p !== null && p.type !== DRR.FREEOBJECTS) {
      out.push(...this.flush());
      p = null;
    }
    if (p !== null && p.type === DRR.FREEOBJECTS) {
      if (u64(p.firstobj + p.numobjs) === first) {
        p.numobjs = u64(p.numobjs + count);
        return out;
      }
      out.push(...this.flush());
    }
    this.#pending = { type: DRR.FREEOBJECTS, firstobj: first, numobjs: count, toguid: this.toguid };
    return out;
  }

  /**
   * `dump_redact`: marks `length` bytes of `object` from `offset` as left out of a redacted
   * send; contiguous ranges of one object merge.
   *
   * @example
   * ```ts
   * import { RecordSender } from "./pending.ts";
   * const s = new RecordSender();
   * s.redact(2n, 0n, 4096n);
   * s.redact(2n, 4096n, 4096n);
   * const p = s.pending;
   * if (p?.type !== 10 || p.length !== 8192n) throw new Error();
   * ```
   */
  redact(object: bigint, offset: bigint, length: bigint): Uint8Array[] {
    object = u64(object);
    offset = u64(offset);
    length = u64(length);
    const out: Uint8Array[] = [];
    let p = this.#pending;
    if (p !== null && p.type !== DRR.REDACT) {
      out.push(...this.flush());
      p = null;
    }
    if (p !== null && p.type === DRR.REDACT) {
      if (p.object === object && u64(p.offset + p.length) === offset) {
        p.length = u64(p.length + length);
        return out;
      }
      out.push(...this.flush());
    }
    this.#pending = { type: DRR.REDACT, object, offset, length, toguid: this.toguid };
    return out;
  }

  /**
   * Writes any other record (OBJECT, WRITE, SPILL, ...), after the pending one. FREE,
   * FREEOBJECTS and REDACT records passed here go out as they are, unmerged.
   *
   * @example
   * ```ts
   * import { RecordSender } from "./pending.ts";
   * const s = new RecordSender();
   * s.free(1n, 0n, 512n);
   * const out = s.write({ type: 1, object: 2n, object_type: 19, blksz: 512 });
   * if (out.length !== 2 || out[0]![0] !== 4 || out[1]![0] !== 1) throw new Error();
   * ```
   */
  write(rec: RecordInit | DrrRecord, payload?: Uint8Array, options?: WriteOptions): Uint8Array[];
  write(rec: RecordInit | DrrRecord, payload: PayloadRef, options?: WriteOptions): StreamChunk[];
  write(
    rec: RecordInit | DrrRecord,
    payload?: Uint8Array | PayloadRef,
    options?: WriteOptions,
  ): StreamChunk[];
  write(
    rec: RecordInit | DrrRecord,
    payload?: Uint8Array | PayloadRef,
    options?: WriteOptions,
  ): StreamChunk[] {
    if (rec.type === DRR.BEGIN) {
      throw new TypeError("RecordSender.write: use begin() for a BEGIN record");
    }
    const out: StreamChunk[] = this.flush();
    out.push(...this.writer.write(rec, payload, options));
    return out;
  }

  /**
   * {@linkcode StreamWriter.writeEncoded} after the pending record, if any.
   *
   * @example
   * ```ts
   * import { RecordSender } from "./pending.ts";
   * import { encodeRecord } from "./record.ts";
   * const s = new RecordSender();
   * s.free(1n, 0n, 512n);
   * const out = s.writeEncoded(encodeRecord({ type: 1, object: 2n, blksz: 512 }, true));
   * if (out.length !== 2) throw new Error();
   * ```
   */
  writeEncoded(header: Uint8Array, payload?: Uint8Array | PayloadRef): StreamChunk[] {
    const out: StreamChunk[] = this.flush();
    out.push(...this.writer.writeEncoded(header, payload));
    return out;
  }

  /**
   * {@linkcode StreamWriter.writeRun} after the pending record, if any.
   *
   * @example
   * ```ts
   * import { RecordSender } from "./pending.ts";
   * import { encodeRecord } from "./record.ts";
   * const s = new RecordSender();
   * s.free(1n, 0n, 512n);
   * const header = encodeRecord({ type: 3, object: 1n, offset: 512n, logical_size: 512n }, true);
   * const out = s.writeRun(header, new BigUint64Array(4), 512, new Float64Array([512]), "image");
   * if (out.length !== 2 || out[1]!.length !== 312 + 512) throw new Error();
   * ```
   */
  writeRun<P>(
    headers: Uint8Array,
    sums: BigUint64Array,
    payloadLength: number,
    offsets: Float64Array,
    place: P,
  ): StreamChunk[] {
    const out: StreamChunk[] = this.flush();
    out.push(this.writer.writeRun(headers, sums, payloadLength, offsets, place));
    return out;
  }

  /**
   * Writes the pending record, then END with the substream's checksum and toguid.
   *
   * @example
   * ```ts
   * import { RecordSender } from "./pending.ts";
   * const s = new RecordSender();
   * s.begin({ toname: "p/v@s", toguid: 4n, objset_type: 3 });
   * s.freeObjects(3n, 29n);
   * const out = s.end();
   * if (out.length !== 2 || out[0]![0] !== 2 || out[1]![0] !== 5) throw new Error();
   * ```
   */
  end(): Uint8Array[] {
    const out = this.flush();
    out.push(...this.writer.end(this.toguid));
    return out;
  }
}
