/**
 * `zsend verify [--quiet] [--json] [FILE|-]`: exit 0 when the stream is intact, 1 when not.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { StreamError } from "../core/errors.ts";
import { verifyStream } from "../core/verify.ts";
import { openStreamInput } from "../io/source.ts";
import { engine, oneInput, rejectUnknown } from "./common.ts";
import { streamInputArg } from "./args.ts";

/** Usage of the verb. */
export const USAGE = "zsend verify [--quiet] [--json] [FILE|-]";

/** Runs the verb; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    boolean: ["quiet", "json", "help"],
    alias: { q: "quiet" },
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const input = streamInputArg(oneInput(flags._, "verify"));
  try {
    const report = await verifyStream(openStreamInput(input, { reuse: true }), {
      fletcher4: engine(),
    });
    if (flags.json) {
      console.log(JSON.stringify({ ok: true, ...report }));
    } else if (!flags.quiet) {
      console.log(
        `${input ?? "stdin"}: OK: ${report.records} records, ${report.bytes} bytes, ` +
          `${report.substreams} snapshot${report.substreams === 1 ? "" : "s"}` +
          (report.compound ? " (compound stream)" : "") +
          (report.recordChecksums ? ", record checksums" : ", END checksums only"),
      );
    }
    return 0;
  } catch (e) {
    if (!(e instanceof StreamError)) throw e;
    if (flags.json) {
      console.log(JSON.stringify({
        ok: false,
        record: e.index,
        type: e.type,
        offset: e.offset,
        fault: e.fault,
        message: e.message,
      }));
    } else if (!flags.quiet) {
      console.error(e.message);
    }
    return 1;
  }
}
