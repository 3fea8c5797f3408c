/**
 * What `zfs send -t` leaves out: the records before the resume point. OpenZFS's sender
 * (`dmu_send.c`, `setup_resume_points` and `dump_dnode`; `dmu_traverse.c`, `traverse_dnode` and
 * `resume_skip_check`) starts its traversal at the bookmark (resume object, level 0, block
 * `resume_offset / data block size`): objects below the resume object are skipped (their OBJECT,
 * FREEOBJECTS, data and holes), the resume object's OBJECT record and the FREE past its end are
 * sent again, its blocks (data, holes, redactions) from the block that holds `resume_offset` on
 * (a block over 128 KiB sent without `-L` goes out again whole, in its 128 KiB pieces), and its
 * spill block; everything after the resume object goes out as in a whole stream.
 *
 * @module
 */

import { DRR } from "../stream/constants.ts";
import type { DrrRecord, RecordInit } from "../stream/record.ts";
import { OBJECT_END, RecordSender } from "../stream/pending.ts";
import type { PayloadRef, StreamChunk, StreamWriter, WriteOptions } from "../stream/writer.ts";

/** Where a resuming stream starts. */
export interface ResumeFrom {
  /** The resume object (the token's `object`). */
  object: bigint;
  /** The first byte of the resume object sent: the start of the block holding the token's `offset`. */
  start: bigint;
}

/**
 * The start of the block that holds `offset` in an object of data block size `blksz`, where
 * the kernel's traversal resumes (`blkid = resume_offset / doi_data_block_size`).
 *
 * @example
 * ```ts
 * import { resumeStart } from "./resume_sender.ts";
 * if (resumeStart(0x30000n, 0x20000) !== 0x20000n) throw new Error();
 * ```
 */
export function resumeStart(offset: bigint, blksz: number): bigint {
  const b = BigInt(Math.max(blksz, 1));
  return (offset / b) * b;
}

/**
 * A {@linkcode RecordSender} that drops the records before a resume point and clips the FREE,
 * FREEOBJECTS and REDACT ranges that reach into it, so that a whole stream's records sent
 * through it make the stream `zfs send -t` makes.
 *
 * @example
 * ```ts
 * import { ResumingSender } from "./resume_sender.ts";
 * import { StreamWriter } from "../stream/writer.ts";
 * const s = new ResumingSender(new StreamWriter(), { object: 8n, start: 4096n });
 * if (s.write({ type: 1, object: 7n, object_type: 19, blksz: 512 }).length !== 0) throw new Error();
 * s.freeObjects(5n, 10n); // 8..14 left
 * if (s.pending?.type !== 2 || s.pending.firstobj !== 8n) throw new Error();
 * ```
 */
export class ResumingSender extends RecordSender {
  readonly from: ResumeFrom;

  /**
   * @param writer where the kept records go
   * @param from the resume point
   */
  constructor(writer: StreamWriter, from: ResumeFrom) {
    super(writer);
    this.from = from;
  }

  /** Whether data of `object` at `offset` comes before the resume point. */
  before(object: bigint, offset: bigint): boolean {
    return object < this.from.object || (object === this.from.object && offset < this.from.start);
  }

  /** The part of a range of `object` at or after the resume point, or null. */
  #clip(object: bigint, offset: bigint, length: bigint): [bigint, bigint] | null {
    if (object < this.from.object) return null;
    if (object > this.from.object || offset >= this.from.start) return [offset, length];
    if (length === OBJECT_END) return [this.from.start, OBJECT_END];
    const end = offset + length;
    return end <= this.from.start ? null : [this.from.start, end - this.from.start];
  }

  override free(object: bigint, offset: bigint, length: bigint): Uint8Array[] {
    const kept = this.#clip(object, offset, BigInt.asUintN(64, length));
    return kept === null ? [] : super.free(object, kept[0], kept[1]);
  }

  override redact(object: bigint, offset: bigint, length: bigint): Uint8Array[] {
    const kept = this.#clip(object, offset, length);
    return kept === null ? [] : super.redact(object, kept[0], kept[1]);
  }

  override freeObjects(first: bigint, count: bigint): Uint8Array[] {
    const end = first + count;
    if (end <= this.from.object) return [];
    return first >= this.from.object
      ? super.freeObjects(first, count)
      : super.freeObjects(this.from.object, end - this.from.object);
  }

  override write(
    rec: RecordInit | DrrRecord,
    payload?: Uint8Array,
    options?: WriteOptions,
  ): Uint8Array[];
  override write(
    rec: RecordInit | DrrRecord,
    payload: PayloadRef,
    options?: WriteOptions,
  ): StreamChunk[];
  override write(
    rec: RecordInit | DrrRecord,
    payload?: Uint8Array | PayloadRef,
    options?: WriteOptions,
  ): StreamChunk[];
  override write(
    rec: RecordInit | DrrRecord,
    payload?: Uint8Array | PayloadRef,
    options?: WriteOptions,
  ): StreamChunk[] {
    if (this.#drops(rec)) return [];
    return super.write(rec, payload, options);
  }

  #drops(rec: RecordInit | DrrRecord): boolean {
    const r = rec as { object?: bigint; offset?: bigint; firstobj?: bigint; numslots?: bigint };
    switch (rec.type) {
      case DRR.OBJECT:
        return r.object! < this.from.object;
      case DRR.OBJECT_RANGE:
        // The dnode block holding the resume object is sent again (its dnodes are traversed).
        return r.firstobj! + r.numslots! <= this.from.object;
      case DRR.SPILL:
        return r.object! < this.from.object;
      case DRR.WRITE:
      case DRR.WRITE_EMBEDDED:
      case DRR.WRITE_BYREF:
        return this.before(r.object!, r.offset!);
      case DRR.FREE:
        return this.#clip(r.object!, r.offset!, (rec as { length: bigint }).length) === null;
      case DRR.FREEOBJECTS: {
        const f = rec as { firstobj: bigint; numobjs: bigint };
        return f.firstobj + f.numobjs <= this.from.object;
      }
      default:
        return false;
    }
  }
}
