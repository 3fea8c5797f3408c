/**
 * The kernel's resume rule, worked out from a whole stream's records, for tests of
 * core/resume/resume_point.ts: after a cut at byte `cut`, a record counts when the header after it lies
 * whole before the cut (that header's checksum covers the record's payload); the last OBJECT
 * (offset 0), WRITE or WRITE_EMBEDDED of the cut substream that counts is the resume point (object
 * 1, offset 0, bytes 0 when none does), and `bytes` ends with it, the BEGIN record not counted.
 *
 * @module
 */

import { DRR, RECORD_SIZE } from "../../core/stream/constants.ts";
import type { StreamRecord } from "../../core/stream/reader.ts";

/** The resume point the kernel keeps after a cut at `cut`, and the index of its record. */
export interface ExpectedPoint {
  object: bigint;
  offset: bigint;
  bytes: bigint;
  index: number;
}

/** The expected resume point of the single-substream stream `records` cut at byte `cut`. */
export function expectedPoint(records: StreamRecord[], cut: number): ExpectedPoint {
  let want: ExpectedPoint = { object: 1n, offset: 0n, bytes: 0n, index: -1 };
  const counted = records[0]!.offset + RECORD_SIZE;
  for (let i = 0; i + 1 < records.length; i++) {
    const r = records[i]!;
    if (records[i + 1]!.offset + RECORD_SIZE > cut) break;
    const h = r.header;
    const bytes = BigInt(r.offset + RECORD_SIZE + r.payload.length - counted);
    if (h.type === DRR.OBJECT) want = { object: h.object, offset: 0n, bytes, index: i };
    if (h.type === DRR.WRITE || h.type === DRR.WRITE_EMBEDDED) {
      want = { object: h.object, offset: h.offset, bytes, index: i };
    }
  }
  return want;
}
