/**
 * `zsend dump [-v] [-vv] [-C] [-d] [--json] [FILE|-]`: every record, as OpenZFS `zstream
 * dump` prints it, or as NDJSON.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { DumpSummary, formatRecord } from "../core/stream/dump.ts";
import { recordToJson } from "../core/stream/json.ts";
import { readRecordBatches } from "../core/stream/reader.ts";
import { openStreamInput } from "../io/source.ts";
import { trackedInput } from "../io/progress.ts";
import { TextOutput } from "../io/output.ts";
import { engine, oneInput, rejectUnknown } from "./common.ts";
import { streamInputArg } from "./args.ts";

/** Usage of the verb. */
export const USAGE = "zsend dump [-v] [-vv] [-C] [-d] [--json] [--progress] [FILE|-]";

function jsonLine(value: unknown): string {
  return JSON.stringify(value) + "\n";
}

/** Runs the verb; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    boolean: ["v", "C", "d", "json", "help", "progress"],
    collect: ["v"],
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const verbosity = (flags.v as boolean[]).filter(Boolean).length;
  const options = {
    allRecords: verbosity >= 1 || flags.d,
    checksums: verbosity >= 2 || flags.d,
    data: flags.d as boolean,
  };
  const input = streamInputArg(oneInput(flags._, "dump"));
  const out = new TextOutput();
  const summary = new DumpSummary();
  // The records go to stdout as they are read: no line redrawn into them on one terminal.
  const { chunks, progress } = trackedInput(openStreamInput(input, { reuse: true }), input, {
    asked: flags.progress,
    stdoutIsOutput: true,
    label: "zsend dump: ",
  });
  const batches = readRecordBatches(chunks, {
    fletcher4: engine(),
    ignoreChecksums: flags.C as boolean,
    reuseSpans: true,
  });
  try {
    if (flags.json) {
      for await (const batch of batches) {
        for (const r of batch) {
          summary.add(r);
          await out.print(jsonLine(recordToJson(r)));
        }
      }
      await out.print(jsonLine(summary.toJSON()));
    } else {
      for await (const batch of batches) {
        for (const r of batch) {
          summary.add(r);
          const text = formatRecord(r, options);
          // print() gives a promise only when it writes: no await (a microtask) per record.
          const written = text === "" ? undefined : out.print(text);
          if (written !== undefined) await written;
        }
      }
      await out.print(summary.format());
    }
  } finally {
    // A damaged stream: what was read before the fault still comes out, then the error.
    await out.flush();
    progress?.done();
  }
  return 0;
}
