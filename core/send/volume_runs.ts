/**
 * The WRITE records of a volume's data object in runs: each run is one `PayloadRun`
 * (./writer.ts) of headers patched from one template, with payloads known by the checksums an
 * image scan took, so that a volume of a million blocks costs a thousand calls to checksum and
 * write out instead of millions.
 *
 * @module
 */

import { DRR, RECORD_SIZE } from "../stream/constants.ts";
import type { RecordSender } from "../stream/pending.ts";
import { LAYOUTS } from "../stream/record.ts";
import type { StreamChunk } from "../stream/writer.ts";

/** Where the WRITE payloads of a volume lie, for them to go as runs. */
export interface VolumeRunSource<Q> {
  /**
   * Each block's fletcher-4 (from zero, little-endian words; four u64 a block), as an image
   * scan takes them: the block's key in its WRITE, and its part of the stream's checksum.
   */
  checksums: BigUint64Array;
  /** The place of every run's payloads: block `i` at offset `i * blockSize`. */
  place: Q;
}

/**
 * Records per run: ~320 KiB of headers, a thousand native calls for a million blocks.
 *
 * @example
 * ```ts
 * import { RUN_RECORDS } from "./volume_runs.ts";
 * if (RUN_RECORDS * 312 > 1 << 20) throw new Error("a run's headers stay small");
 * ```
 */
export const RUN_RECORDS = 1024;

const WORD = 4;
const RECORD_WORDS = RECORD_SIZE / WORD;
const field = (name: string) => LAYOUTS[DRR.WRITE]!.find((f) => f.name === name)!.offset / WORD;
/** The WRITE's offset and its key (`drr_key.ddk_cksum`), in u32 words of the record. */
const OFFSET_WORD = field("offset");
const KEY_WORD = field("key_cksum");
const HOST_LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Gathers the WRITEs of a volume's data object into `PayloadRun`s (./writer.ts), through a
 * {@linkcode RecordSender}: a run ends where anything else is sent (call `finish`), and a
 * pending FREE goes out before the run that follows it. The
 * template is a little-endian WRITE record of the object; each record of a run is a copy with
 * its block's offset and key patched in.
 *
 * @example
 * ```ts
 * import { WriteRuns } from "./volume_runs.ts";
 * import { RecordSender } from "../stream/pending.ts";
 * import { encodeRecord } from "../stream/record.ts";
 * const template = encodeRecord({ type: 3, object: 1n, logical_size: 512n }, true);
 * const sums = new BigUint64Array(4 * 4).fill(1n);
 * const runs = new WriteRuns(new RecordSender(), template, 512, { checksums: sums, place: "img" });
 * runs.add(1);
 * runs.add(3);
 * const [run] = runs.finish();
 * if (run === undefined || run.length !== 2 * (312 + 512)) throw new Error();
 * ```
 */
export class WriteRuns<Q> {
  readonly #sender: RecordSender;
  readonly #template: Uint8Array;
  readonly #blockSize: number;
  readonly #halves: Uint32Array;
  readonly #place: Q;
  readonly #max: number;
  #headers = new Uint8Array(0);
  #words = new Uint32Array(0);
  #sums = new BigUint64Array(0);
  #sumHalves = new Uint32Array(0);
  #offsets = new Float64Array(0);
  #count = 0;

  /**
   * @param sender where the runs go
   * @param template the object's WRITE record, little-endian, {@linkcode RECORD_SIZE} bytes
   * @param blockSize the payload of each record
   * @param source the blocks' checksums and where their payloads lie
   * @param maxRecords records per run at most
   */
  constructor(
    sender: RecordSender,
    template: Uint8Array,
    blockSize: number,
    source: VolumeRunSource<Q>,
    maxRecords = RUN_RECORDS,
  ) {
    // The patches below copy u64 halves as they lie in memory: little-endian only.
    if (!HOST_LITTLE) throw new RangeError("WRITE runs need a little-endian host");
    if (template.length !== RECORD_SIZE) {
      throw new RangeError(`a WRITE template has ${RECORD_SIZE} bytes, not ${template.length}`);
    }
    const c = source.checksums;
    this.#sender = sender;
    this.#template = template;
    this.#blockSize = blockSize;
    this.#halves = new Uint32Array(c.buffer, c.byteOffset, c.length * 2);
    this.#place = source.place;
    this.#max = Math.max(1, maxRecords);
  }

  /** Adds the WRITE of `block`; returns what to send (a full run), or nothing. */
  add(block: number): StreamChunk[] {
    const i = this.#count;
    if (i === 0) this.#start();
    const h = block * 8;
    if (h + 8 > this.#halves.length) throw new RangeError(`no checksum for block ${block}`);
    const offset = block * this.#blockSize;
    this.#headers.set(this.#template, i * RECORD_SIZE);
    const w = this.#words, s = this.#sumHalves, k = this.#halves;
    const at = i * RECORD_WORDS;
    w[at + OFFSET_WORD] = offset >>> 0;
    w[at + OFFSET_WORD + 1] = Math.floor(offset / 2 ** 32);
    for (let j = 0; j < 8; j++) {
      const v = k[h + j]!;
      w[at + KEY_WORD + j] = v;
      s[i * 8 + j] = v;
    }
    this.#offsets[i] = offset;
    this.#count = i + 1;
    return this.#count === this.#max ? this.finish() : [];
  }

  /** The run gathered so far, after the pending record (nothing when the run is empty). */
  finish(): StreamChunk[] {
    const n = this.#count;
    if (n === 0) return [];
    this.#count = 0;
    return this.#sender.writeRun(
      this.#headers.subarray(0, n * RECORD_SIZE),
      this.#sums.subarray(0, n * 4),
      this.#blockSize,
      this.#offsets.subarray(0, n),
      this.#place,
    );
  }

  /** New buffers for each run: the one handed out stays the receiver's. */
  #start(): void {
    this.#headers = new Uint8Array(this.#max * RECORD_SIZE);
    this.#words = new Uint32Array(this.#headers.buffer);
    this.#sums = new BigUint64Array(this.#max * 4);
    this.#sumHalves = new Uint32Array(this.#sums.buffer);
    this.#offsets = new Float64Array(this.#max);
  }
}
