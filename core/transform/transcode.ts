/**
 * Re-encodes a stream's records in the other byte order (or the same), with fresh checksums.
 *
 * Only the record headers change order, as `zstream`'s byte-order conversion does: payloads
 * (bonus buffers, data blocks, the BEGIN nvlist) stay as the sender wrote them, since a
 * receiver byte-swaps them itself according to each object's type.
 *
 * @module
 */

import { DRR } from "../stream/constants.ts";
import type { StreamRecord } from "../stream/reader.ts";
import type { Fletcher4Engine } from "../checksum/fletcher4.ts";
import { hasRecordChecksum, StreamWriter } from "../stream/writer.ts";

/**
 * Writes records again in the given byte order. Records that carried a trailing checksum
 * carry a recomputed one; those that did not (old streams, compound headers) carry none.
 *
 * @example
 * ```ts
 * import { readRecords } from "../stream/reader.ts";
 * import { transcodeRecords } from "./transcode.ts";
 * import { StreamWriter } from "../stream/writer.ts";
 * const w = new StreamWriter({ littleEndian: true });
 * const le = [...w.begin({ toname: "p/fs@a", toguid: 3n, objset_type: 2 }), ...w.end()];
 * const be = await Array.fromAsync(transcodeRecords(readRecords(le), false));
 * const back = await Array.fromAsync(readRecords(be));
 * if (back[0]!.littleEndian || back[0]!.header.type !== 0) throw new Error();
 * ```
 */
export async function* transcodeRecords(
  records: AsyncIterable<StreamRecord>,
  littleEndian: boolean,
  fletcher4?: Fletcher4Engine,
): AsyncGenerator<Uint8Array> {
  const writer = new StreamWriter({
    littleEndian,
    ...(fletcher4 ? { fletcher4 } : {}),
  });
  for await (const r of records) {
    const h = r.header;
    const chunks = h.type === DRR.BEGIN
      ? writer.write(h, r.payload)
      : writer.write(h, r.payload, { recordChecksum: hasRecordChecksum(h) });
    yield* chunks;
  }
}
