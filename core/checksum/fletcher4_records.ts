/**
 * A run of records into a stream's running fletcher-4 at once: what
 * `StreamWriter.writeEncoded` (./writer.ts) does record by record, for a sender that hands over
 * thousands of WRITE records whose payloads it knows only by their checksums. The native
 * library does the same in one call (`zs_fletcher4_records`); this is its TypeScript twin and
 * the reference it is tested against.
 *
 * @module
 */

import { CHECKSUM_OFFSET, RECORD_SIZE } from "../stream/constants.ts";
import { Fletcher4, type Fletcher4Engine, tsFletcher4 } from "./fletcher4.ts";
import { viewOf, writeChecksum } from "../stream/record.ts";

/**
 * Folds a run of records into `state` (eight u32 halves, as {@linkcode Fletcher4Engine.update}
 * takes it): for each {@linkcode RECORD_SIZE}-byte header of `headers`, its bytes up to
 * {@linkcode CHECKSUM_OFFSET}; the state, written there as the record's checksum (zeros when
 * `recordChecksums` is false); the rest of the header; then its payload of `payloadLength`
 * bytes, from the payload's own fletcher-4 (`sums`, four u64 a record, from zero, in the
 * stream's byte order) as {@linkcode Fletcher4.append} folds it.
 *
 * @param engine folds the headers' bytes; its `updateRecords` is not used here
 * @example
 * ```ts
 * import { foldRecords } from "./fletcher4_records.ts";
 * import { Fletcher4 } from "./fletcher4.ts";
 * import { StreamWriter } from "../stream/writer.ts";
 * const header = new Uint8Array(312);
 * header[0] = 6; // WRITE
 * const payload = new Uint8Array(512).fill(7);
 * const f = new Fletcher4();
 * f.update(payload, true);
 * const state = new Uint32Array(8);
 * const run = header.slice();
 * foldRecords(state, run, new BigUint64Array(f.words), payload.length, true);
 * // The same as one record with its payload through a writer.
 * const w = new StreamWriter();
 * const [one] = w.writeEncoded(header.slice(), payload) as Uint8Array[];
 * if (one!.join() !== run.join()) throw new Error("record checksum");
 * if (String(w.checksum) !== String(new BigUint64Array(state.buffer))) throw new Error();
 * ```
 */
export function foldRecords(
  state: Uint32Array,
  headers: Uint8Array,
  sums: BigUint64Array,
  payloadLength: number,
  littleEndian: boolean,
  recordChecksums = true,
  engine: Fletcher4Engine = tsFletcher4,
): void {
  const count = checkRun(headers, sums, payloadLength);
  const f = new Fletcher4(engine);
  f.halves.set(state.subarray(0, 8));
  const view = viewOf(headers);
  for (let i = 0; i < count; i++) {
    const at = i * RECORD_SIZE;
    f.update(headers.subarray(at, at + CHECKSUM_OFFSET), littleEndian);
    if (recordChecksums) writeChecksum(view, at + CHECKSUM_OFFSET, f.value(), littleEndian);
    else headers.fill(0, at + CHECKSUM_OFFSET, at + RECORD_SIZE);
    f.update(headers.subarray(at + CHECKSUM_OFFSET, at + RECORD_SIZE), littleEndian);
    if (payloadLength > 0) {
      f.append([sums[i * 4]!, sums[i * 4 + 1]!, sums[i * 4 + 2]!, sums[i * 4 + 3]!], payloadLength);
    }
  }
  state.set(f.halves);
}

/**
 * The number of records of a run; throws `RangeError` when the run is malformed (headers not
 * a whole number of records, fewer than four sums a payload, a payload length that is not a
 * u32).
 *
 * @example
 * ```ts
 * import { checkRun } from "./fletcher4_records.ts";
 * if (checkRun(new Uint8Array(624), new BigUint64Array(8), 512) !== 2) throw new Error();
 * ```
 */
export function checkRun(headers: Uint8Array, sums: BigUint64Array, payloadLength: number): number {
  if (headers.length % RECORD_SIZE !== 0) {
    throw new RangeError(
      `a run of records has a multiple of ${RECORD_SIZE} bytes, not ${headers.length}`,
    );
  }
  const count = headers.length / RECORD_SIZE;
  if (payloadLength > 0 && sums.length < count * 4) {
    throw new RangeError(`${count} records need ${count * 4} payload sums, not ${sums.length}`);
  }
  if (!Number.isInteger(payloadLength) || payloadLength < 0 || payloadLength > 0xffffffff) {
    throw new RangeError(`payload length ${payloadLength} is not a u32`);
  }
  return count;
}
