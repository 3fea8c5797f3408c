/**
 * `zsend drop-record [-v] OBJECT,OFFSET...` and `zsend decompress [-v] OBJECT,OFFSET[,TYPE]...`:
 * stdin to stdout, as OpenZFS's `zstream drop_record` and `zstream decompress` do.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { readRecords } from "../core/stream/reader.ts";
import { decompressRecords, dropRecords, parseRecordArg } from "../core/transform/surgery.ts";
import { openStreamInput } from "../io/source.ts";
import { engine, rejectUnknown, UsageError, warn } from "./common.ts";
import { pipeChunks, refuseTerminalOutput } from "./redup.ts";

/** Usage of `drop-record`. */
export const DROP_USAGE = "zsend drop-record [-v] OBJECT,OFFSET... < STREAM > STREAM";
/** Usage of `decompress`. */
export const DECOMPRESS_USAGE = "zsend decompress [-v] OBJECT,OFFSET[,TYPE]... < STREAM > STREAM";

/** Runs one of the two verbs; returns the exit status. */
export async function runSurgery(verb: "drop-record" | "decompress", args: string[]) {
  const flags = parseArgs(args, {
    boolean: ["v", "help"],
    string: ["_"],
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(verb === "decompress" ? DECOMPRESS_USAGE : DROP_USAGE);
    return 0;
  }
  const targets = new Map<string, number>();
  for (const a of flags._) {
    try {
      const { key, compression } = parseRecordArg(String(a), verb === "decompress");
      targets.set(key, compression);
    } catch (e) {
      if (e instanceof TypeError) throw new UsageError(e.message);
      throw e;
    }
  }
  if (Deno.stdin.isTerminal()) {
    throw new UsageError("the send stream is read from stdin, which is a terminal: redirect it");
  }
  refuseTerminalOutput();
  const fletcher4 = engine();
  // As zstream: warnings (and drop_record's lines) name the program, the others do not.
  const log = (m: string, warning: boolean) => {
    if (flags.v || (verb === "decompress" && warning)) warn(warning ? `zsend ${verb}: ${m}` : m);
  };
  const options = { fletcher4, log };
  const records = readRecords(openStreamInput(undefined), { fletcher4 });
  await pipeChunks(
    verb === "decompress"
      ? decompressRecords(records, targets, options)
      : dropRecords(records, new Set(targets.keys()), options),
    Deno.stdout,
  );
  return 0;
}
