/**
 * Where a cut stream could be resumed from: the resume state a real `zfs receive -s` of the
 * same bytes would keep, as a {@link ResumeState} for a resume token.
 *
 * The kernel's rules (OpenZFS `module/zfs/dmu_recv.c`): a resumable receive starts with
 * object 1, offset 0, bytes 0; after it applies an OBJECT record the state becomes (object, 0),
 * after a WRITE or WRITE_EMBEDDED (object, offset of that record), and `bytes` the stream bytes
 * read up to the end of that record's payload, not counting the BEGIN record (userland reads
 * that one). A record is applied only once the header after it is read and its checksum holds,
 * since that checksum is what covers the record's payload. So when a stream is cut inside the
 * payload of record k, record k - 1 is the last applied one; when it is cut inside the header
 * of record k, or that header's checksum fails, record k - 2 is.
 *
 * The kernel saves the state once per transaction group, so a real token may name an earlier
 * record than this one: this is the latest state any receive of these bytes can have kept.
 *
 * A resuming stream (`zfs send -t`) cut again starts from the position in its BEGIN nvlist; its
 * `bytes` count only this stream's bytes, where the kernel adds those of the receive it resumed
 * (which the stream does not say).
 *
 * @module
 */

import { DRR, FEATURE, RECORD_SIZE } from "../stream/constants.ts";
import { StreamError } from "../stream/errors.ts";
import { DATA_TYPE, decodeNvlist, type NvList, nvlistGet } from "../stream/nvlist.ts";
import { type ReadOptions, readRecordBatches, type StreamRecord } from "../stream/reader.ts";
import type { ByteChunks } from "../stream/byte_source.ts";
import { featureFlags, hasFeature } from "../stream/record.ts";
import type { ResumeState } from "./resume_token.ts";

interface Candidate {
  object: bigint;
  offset: bigint;
  /** Byte offset of the end of the record's payload in the stream. */
  end: number;
  index: number;
}

interface Substream {
  begin: StreamRecord;
  nvlist: NvList | null;
  features: bigint;
  /** Byte offset of the end of the BEGIN record (where the kernel starts counting). */
  counted: number;
}

/** What {@linkcode ResumeTracker.resumeAfter} found. */
export interface ResumePoint {
  /** The state, ready for {@linkcode encodeResumeToken}. */
  state: ResumeState;
  /** Index of the last record applied, or -1 when none was (the kernel's initial state). */
  recordIndex: number;
  /** Byte offset where the bytes counted in `state.bytes` end (after the last applied record). */
  end: number;
}

/**
 * Follows a stream's records (in order, as the reader yields them) and says, after a fault,
 * from where a real `zfs send -t` would send the rest.
 *
 * @example
 * ```ts
 * import { ResumeTracker } from "./resume_point.ts";
 * import { readRecords, StreamError, StreamWriter } from "jsr:@zsend/zsend";
 * const w = new StreamWriter();
 * const chunks = [
 *   ...w.begin({ toname: "p/fs@a", toguid: 7n, objset_type: 2 }),
 *   ...w.write({ type: 3, object: 2n, object_type: 19, offset: 0n, logical_size: 512n,
 *     toguid: 7n }, new Uint8Array(512)),
 *   ...w.end(),
 * ];
 * const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
 * chunks.reduce((at, c) => (bytes.set(c, at), at + c.length), 0);
 * const t = new ResumeTracker();
 * let fault: StreamError | null = null;
 * try {
 *   for await (const r of readRecords([bytes.subarray(0, bytes.length - 1)])) t.observe(r);
 * } catch (e) {
 *   fault = e as StreamError;
 * }
 * // Cut inside the END header: the WRITE's payload is not covered by a checksum yet.
 * const p = t.resumeAfter(fault!);
 * if (p === null || p.state.object !== 1n || p.recordIndex !== -1) throw new Error();
 * ```
 */
export class ResumeTracker {
  #sub: Substream | null = null;
  /** The last resume candidate whose payload a later header has covered. */
  #applied: Candidate | null = null;
  /** The candidate of the last record read, not yet covered. */
  #pending: Candidate | null = null;
  /** Index of the last record observed. */
  #last = -1;

  /** Takes the next record of the stream. */
  observe(r: StreamRecord): void {
    this.#last = r.index;
    const h = r.header;
    if (h.type === DRR.BEGIN) {
      this.#applied = this.#pending = null;
      if ((h.versioninfo & 3n) !== 1n) {
        this.#sub = null; // a compound stream's own header
        return;
      }
      let nvlist: NvList | null = null;
      if (r.payload.length > 0) {
        try {
          nvlist = decodeNvlist(r.payload);
        } catch {
          nvlist = null;
        }
      }
      this.#sub = {
        begin: r,
        nvlist,
        features: featureFlags(h.versioninfo),
        counted: r.offset + RECORD_SIZE,
      };
      return;
    }
    // This header was read and checked: the previous record's payload is covered.
    if (this.#pending !== null) this.#applied = this.#pending;
    this.#pending = null;
    if (h.type === DRR.END) {
      this.#sub = null;
      this.#applied = null;
      return;
    }
    const end = r.offset + RECORD_SIZE + r.payload.length;
    if (h.type === DRR.OBJECT) {
      this.#pending = { object: h.object, offset: 0n, end, index: r.index };
    } else if (h.type === DRR.WRITE || h.type === DRR.WRITE_EMBEDDED) {
      this.#pending = { object: h.object, offset: h.offset, end, index: r.index };
    }
  }

  /**
   * The resume point after the stream failed with `fault` (or ended early), or null when no
   * snapshot was being received there (the fault is before the first BEGIN, between the
   * substreams of a compound stream, or the stream is whole).
   *
   * @param fault the error that stopped reading; `null` for a fault that is not a
   * {@linkcode StreamError}, taken as a cut inside the header after the last record read
   * @param headerRead whether the header of the faulty record was read whole and checked
   * (true when the fault lies in its payload or in a rule about its fields); by default taken
   * from `fault`: true only for a payload cut short
   */
  resumeAfter(fault: StreamError | null, headerRead?: boolean): ResumePoint | null {
    const sub = this.#sub;
    if (sub === null) return null;
    let covered = headerRead;
    if (covered === undefined) {
      covered = fault !== null && fault.index === this.#last + 1 &&
        /^truncated: the stream ends \d+ bytes into a payload/.test(fault.fault);
    }
    const c = covered && this.#pending !== null ? this.#pending : this.#applied;
    const h = sub.begin.header;
    if (h.type !== DRR.BEGIN) return null;
    const f = sub.features;
    // Before any record applied, the kernel's state is where the receive started: object 1,
    // offset 0, or, for a resuming stream, the position it resumed from (its BEGIN nvlist).
    const from = (name: string) =>
      sub.nvlist !== null && hasFeature(sub.features, FEATURE.RESUMING)
        ? nvlistGet(sub.nvlist, name, DATA_TYPE.UINT64)
        : undefined;
    const state: ResumeState = {
      object: c?.object ?? from("resume_object") ?? 1n,
      offset: c?.offset ?? from("resume_offset") ?? 0n,
      bytes: c === null ? 0n : BigInt(c.end - sub.counted),
      toguid: h.toguid,
      toname: h.toname,
      largeblockok: hasFeature(f, FEATURE.LARGE_BLOCKS),
      embedok: hasFeature(f, FEATURE.EMBED_DATA),
      compressok: hasFeature(f, FEATURE.COMPRESSED),
      rawok: hasFeature(f, FEATURE.RAW),
    };
    if (h.fromguid !== 0n) state.fromguid = h.fromguid;
    if (sub.nvlist !== null) {
      if (hasFeature(f, FEATURE.REDACTED)) {
        const snaps = nvlistGet(sub.nvlist, "redact_snaps", DATA_TYPE.UINT64_ARRAY);
        if (snaps !== undefined) state.redactSnaps = snaps;
      }
      const from = nvlistGet(sub.nvlist, "redact_from_snaps", DATA_TYPE.UINT64_ARRAY);
      if (from !== undefined) state.bookRedactSnaps = from;
    }
    return { state, recordIndex: c?.index ?? -1, end: c?.end ?? sub.counted };
  }
}

/** What {@linkcode findResumePoint} found. */
export interface ResumeScan {
  /** The first fault, or null when the stream is whole. */
  fault: StreamError | null;
  /** Where to resume after the fault; null when the stream is whole or nothing can be resumed. */
  point: ResumePoint | null;
}

/**
 * Reads a stream to its end or its first fault and says from where a real `zfs send -t` would
 * send the rest (see {@linkcode ResumeTracker}).
 *
 * @param source the stream's bytes
 * @param options the reader's options, and `check`: a rule checker run on each record before
 * it counts (a {@linkcode StreamError} it throws is a fault at that record, whose header was read)
 * @returns the fault and the resume point
 * @example
 * ```ts
 * import { findResumePoint, StreamWriter } from "jsr:@zsend/zsend";
 * const w = new StreamWriter();
 * const whole = [...w.begin({ toname: "p/fs@a", toguid: 7n, objset_type: 2 }), ...w.end()];
 * const scan = await findResumePoint(whole);
 * if (scan.fault !== null || scan.point !== null) throw new Error();
 * ```
 */
export async function findResumePoint(
  source: ByteChunks,
  options: ReadOptions & { check?: (r: StreamRecord) => void } = {},
): Promise<ResumeScan> {
  const tracker = new ResumeTracker();
  try {
    for await (const batch of readRecordBatches(source, options)) {
      for (const r of batch) {
        if (options.check) {
          try {
            options.check(r);
          } catch (e) {
            if (!(e instanceof StreamError)) throw e;
            return { fault: e, point: tracker.resumeAfter(e, true) };
          }
        }
        tracker.observe(r);
      }
    }
  } catch (e) {
    if (!(e instanceof StreamError)) throw e;
    return { fault: e, point: tracker.resumeAfter(e) };
  }
  return { fault: null, point: null };
}
