/**
 * `zsend token [--json] TOKEN`: a `receive_resume_token` decoded, in the text OpenZFS's
 * `zstream token` prints, or as one JSON object.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { nvlistToJson } from "../core/stream/nvlist.ts";
import { type JsonObject, streamNvlistGuid, u64Json } from "../core/stream/json.ts";
import {
  decodeResumeToken,
  dumpNvlistText,
  ResumeTokenError,
} from "../core/resume/resume_token.ts";
import { errorJson, rejectUnknown, UsageError, warn } from "./common.ts";

/** Usage of the verb. */
export const USAGE = "zsend token [--json] TOKEN";

/**
 * The JSON of a decoded token: the header (`version`, `checksum` (word 0 of the payload's
 * fletcher-4) as a decimal string, `packed_length`), then every pair of the nvlist as
 * `nvlistToJson` writes it for a stream (guids and redaction snapshot guids as `0x` + 16 hex
 * digits, other 64-bit integers as decimal strings, booleans without a value as `true`).
 */
export function tokenJson(token: string): JsonObject {
  const d = decodeResumeToken(token);
  const out: JsonObject = {
    version: d.version,
    checksum: u64Json(d.checksum),
    packed_length: d.packedLength,
  };
  for (const [name, value] of Object.entries(nvlistToJson(d.nvlist, streamNvlistGuid))) {
    // No pair of OpenZFS's is named as a header field; one that is would be lost, so refuse.
    if (Object.hasOwn(out, name)) throw new ResumeTokenError(`the nvlist has a pair '${name}'`);
    Object.defineProperty(out, name, { value, enumerable: true, writable: true });
  }
  return out;
}

/** Runs the verb; returns the exit status. */
export function main(args: string[]): number {
  const flags = parseArgs(args, {
    boolean: ["json", "help"],
    string: ["_"],
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  if (flags._.length !== 1) throw new UsageError("token takes one TOKEN");
  const token = String(flags._[0]);
  try {
    if (flags.json) console.log(JSON.stringify(tokenJson(token)));
    else {
      const text = new TextEncoder().encode(dumpNvlistText(decodeResumeToken(token).nvlist));
      for (let at = 0; at < text.length;) at += Deno.stdout.writeSync(text.subarray(at));
    }
    return 0;
  } catch (e) {
    if (!(e instanceof ResumeTokenError)) throw e;
    if (flags.json) console.log(JSON.stringify(errorJson(e, "token", 1)));
    warn(`Unable to parse resume token: ${e.message}`);
    return 1;
  }
}
