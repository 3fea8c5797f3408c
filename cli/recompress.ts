/**
 * `zsend recompress ALGO`: every WRITE payload of the stream on stdin compressed again with ALGO
 * (`off`, `lz4`, `lzjb`, `gzip`, `gzip-N`, `zle`), on stdout, as OpenZFS's `zstream recompress`.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { readRecords } from "../core/stream/reader.ts";
import { RECOMPRESS_CODECS, recompressRecords } from "../core/transform/recompress.ts";
import { openStreamInput } from "../io/source.ts";
import { engine, rejectUnknown, UsageError } from "./common.ts";
import { pipeChunks, refuseTerminalOutput } from "./redup.ts";

/** Usage of the verb. */
export const USAGE = "zsend recompress [-l LEVEL] ALGO < STREAM > STREAM";

/** Runs the verb; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    boolean: ["help"],
    string: ["l", "_"],
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  if (flags._.length !== 1) throw new UsageError("recompress takes one ALGO");
  const name = String(flags._[0]);
  if (name === "zstd") {
    throw new UsageError("zsend has no zstd compressor: use lz4, lzjb, gzip[-N], zle or off");
  }
  let codec = RECOMPRESS_CODECS[name];
  if (flags.l !== undefined) {
    // The level of gzip-N; zstd levels have no compressor here.
    if (name !== "gzip" || !/^[1-9]$/.test(flags.l)) {
      throw new UsageError(`-l ${flags.l}: a level 1-9 for gzip only`);
    }
    codec = RECOMPRESS_CODECS[`gzip-${flags.l}`];
  }
  if (codec === undefined) {
    throw new UsageError(
      `Invalid compression type ${name}: use off, lz4, lzjb, gzip, gzip-1 ... gzip-9 or zle`,
    );
  }
  if (Deno.stdin.isTerminal()) {
    throw new UsageError("the send stream is read from stdin, which is a terminal: redirect it");
  }
  refuseTerminalOutput();
  const fletcher4 = engine();
  const records = readRecords(openStreamInput(undefined), { fletcher4 });
  await pipeChunks(recompressRecords(records, codec, { fletcher4 }), Deno.stdout);
  return 0;
}
