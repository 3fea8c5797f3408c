/**
 * Stored WRITE records whose payloads lie in one file, gathered into one
 * {@linkcode PayloadRun}: the sender then costs one call per run to checksum (the engine's
 * `updateRecords`) and one to write out (a `writev` of the headers and the file mapped, or a
 * native loop of `sendfile`s), instead of an encode, a checksum and a copy per record.
 *
 * A record's header is its stored metadata (`recordMeta`: the little-endian encoding with the
 * placing fields zeroed) with the type, object, offset and toguid patched in: the same bytes
 * `encodeRecord` makes of the decoded metadata placed again.
 *
 * @module
 */

import { CHECKSUM_OFFSET, DRR, RECORD_SIZE } from "../stream/constants.ts";
import { LAYOUTS } from "../stream/record.ts";
import type { RecordSender } from "../stream/pending.ts";
import type { StreamChunk } from "../stream/writer.ts";
import type { BlockPiece } from "./send.ts";

/** Records a run holds at most. */
const MAX_RUN = 256;

const fieldAt = (name: string): number => LAYOUTS[DRR.WRITE]!.find((f) => f.name === name)!.offset;
const OBJECT_AT = fieldAt("object");
const OFFSET_AT = fieldAt("offset");
const TOGUID_AT = fieldAt("toguid");

/** Whether this machine keeps a u64 little-endian, as the stored fletcher-4 words are. */
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Gathers WRITE records of stored blocks into runs, for a little-endian stream.
 *
 * @example
 * ```ts
 * import { WriteRuns } from "./write_runs.ts";
 * import { RecordSender } from "../stream/pending.ts";
 * import { encodeRecord } from "../stream/record.ts";
 * const meta = encodeRecord({ type: 3, object: 0n, offset: 0n, logical_size: 512n }, true)
 *   .subarray(0, 280);
 * const runs = new WriteRuns();
 * const place = { file: "pack" };
 * const piece = { place, offset: 4096, length: 512, fletcher4: new Uint8Array(32) };
 * const s = new RecordSender();
 * if (!runs.take(meta) || !runs.fits(piece)) throw new Error();
 * runs.add(meta, 1, 0, 7n, piece);
 * runs.add(meta, 1, 512, 7n, piece);
 * const [run] = [...runs.flush(s)] as { length: number; offsets: Float64Array }[];
 * if (run!.length !== 2 * (312 + 512) || run!.offsets[1] !== 4096) throw new Error();
 * ```
 */
export class WriteRuns {
  #headers = new Uint8Array(MAX_RUN * RECORD_SIZE);
  #view = new DataView(this.#headers.buffer);
  #sums = new BigUint64Array(MAX_RUN * 4);
  #sumBytes = new Uint8Array(this.#sums.buffer);
  #offsets = new Float64Array(MAX_RUN);
  #count = 0;
  #place: unknown = null;
  #length = 0;

  /** Whether a block stored with `meta` can go in a run (a WRITE's, on this machine). */
  take(meta: Uint8Array): boolean {
    return HOST_LE && meta.length >= 4 && meta.length <= CHECKSUM_OFFSET &&
      meta[0] === DRR.WRITE && meta[1] === 0 && meta[2] === 0 && meta[3] === 0;
  }

  /** Whether `piece` can join the run being gathered (else flush it first). */
  fits(piece: BlockPiece): boolean {
    return this.#count === 0 ||
      (this.#count < MAX_RUN && piece.place === this.#place && piece.length === this.#length);
  }

  /** Adds the WRITE of a block stored with `meta` at `offset` of `object`. */
  add(meta: Uint8Array, object: number, offset: number, toguid: bigint, piece: BlockPiece): void {
    const i = this.#count++;
    const at = i * RECORD_SIZE;
    const h = this.#headers;
    h.fill(0, at + meta.length, at + RECORD_SIZE);
    h.set(meta, at);
    const v = this.#view;
    setU64(v, at + OBJECT_AT, object);
    setU64(v, at + OFFSET_AT, offset);
    v.setBigUint64(at + TOGUID_AT, toguid, true);
    this.#sumBytes.set(piece.fletcher4, i * 32);
    this.#offsets[i] = piece.offset;
    this.#place = piece.place;
    this.#length = piece.length;
  }

  /** The run gathered so far, written (after the sender's pending record); none when empty. */
  *flush(sink: RecordSender): Generator<StreamChunk> {
    const n = this.#count;
    if (n === 0) return;
    this.#count = 0;
    // The run keeps its headers and offsets: copies, the scratch is reused.
    yield* sink.writeRun(
      this.#headers.slice(0, n * RECORD_SIZE),
      this.#sums.subarray(0, n * 4),
      this.#length,
      this.#offsets.slice(0, n),
      this.#place,
    );
  }
}

/** A non-negative integer below 2^53 as a little-endian u64, without a BigInt. */
function setU64(v: DataView, at: number, n: number): void {
  v.setUint32(at, n >>> 0, true);
  v.setUint32(at + 4, Math.floor(n / 0x1_0000_0000), true);
}
