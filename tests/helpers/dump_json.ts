/**
 * The records of `dump --json` output, flattened for tests: each record's `fields` beside its
 * place, its type name as `record` and its byte offset in the stream as `stream_offset`. Values
 * stay as the JSON has them (u64 as decimal strings, guids as `0x` + 16 hex digits).
 */

// deno-lint-ignore no-explicit-any
export type FlatRecord = { record: string; [field: string]: any };

/** The records of `dump --json` output (the summary and any error line left out). */
export function dumpRecords(stdout: string): FlatRecord[] {
  return stdout.trimEnd().split("\n").map((l) => JSON.parse(l)).filter((j) => "fields" in j)
    .map((j) => ({
      ...j.fields,
      record: j.type,
      index: j.index,
      stream_offset: j.offset,
      substream: j.substream,
      payload_size: j.payload_size,
      ...(j.nvlist === undefined ? {} : { nvlist: j.nvlist }),
    }));
}
