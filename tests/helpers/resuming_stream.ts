/**
 * What `zfs send -t` sends after an interrupted receive, made from the whole stream: the
 * BEGIN with RESUMING and `resume_object`/`resume_offset`, then the records from the resume
 * point's own record on (sent again), then END.
 *
 * @module
 */

import { concat } from "@std/bytes";
import type { ResumePoint } from "../../core/resume/resume_point.ts";
import type { StreamRecord } from "../../core/stream/reader.ts";
import { StreamWriter } from "../../core/stream/writer.ts";
import { encodeNvlist, nv } from "../../core/stream/nvlist.ts";
import { BACKUP_MAGIC, FEATURE, HDRTYPE } from "../../core/stream/constants.ts";
import { type DrrBegin, type DrrRecord, makeVersioninfo } from "../../core/stream/record.ts";

/**
 * @param all every record of one whole substream (BEGIN first, END last), payloads copied
 * @param point where the receive resumes
 * @param toguid another snapshot guid to claim (for refusal tests)
 * @param features feature flags to add to the BEGIN (for refusal tests)
 */
export function resumingStream(
  all: StreamRecord[],
  point: ResumePoint,
  toguid?: bigint,
  features = 0,
): Uint8Array {
  const begin = all[0]!.header as DrrBegin;
  const nvlist = encodeNvlist(
    nv.list(
      nv.uint64("resume_object", point.state.object),
      nv.uint64("resume_offset", point.state.offset),
    ),
    { encoding: "native" },
  );
  const w = new StreamWriter();
  const chunks: Uint8Array[] = [...w.begin({
    magic: BACKUP_MAGIC,
    versioninfo: makeVersioninfo(
      HDRTYPE.SUBSTREAM,
      Number(begin.versioninfo >> 2n) | FEATURE.RESUMING | features,
    ),
    creation_time: begin.creation_time,
    objset_type: begin.objset_type,
    flags: begin.flags,
    toguid: toguid ?? begin.toguid,
    fromguid: begin.fromguid,
    toname: begin.toname,
  }, nvlist)];
  // The sender goes on from the resume point's record (sent again), or from the start.
  const from = Math.max(point.recordIndex, 1);
  for (const r of all.slice(from, all.length - 1)) {
    chunks.push(...w.write(r.header as DrrRecord, r.payload.length > 0 ? r.payload : undefined));
  }
  chunks.push(...w.end(toguid ?? begin.toguid));
  return concat(chunks);
}
