/**
 * `zsend token [--json] TOKEN`: a `receive_resume_token` decoded, in the text OpenZFS's
 * `zstream token` prints, or as one JSON object.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { DATA_TYPE, type JsonValue, nvlistToJson } from "../core/stream/nvlist.ts";
import {
  decodeResumeToken,
  dumpNvlistText,
  ResumeTokenError,
} from "../core/resume/resume_token.ts";
import { rejectUnknown, UsageError, warn } from "./common.ts";

/** Usage of the verb. */
export const USAGE = "zsend token [--json] TOKEN";

/** Names whose uint64 values are guids: hex in JSON, as `dump --json` writes guids. */
const GUIDS = new Set(["toguid", "fromguid"]);

/**
 * The JSON of a decoded token: the header (`version`, `checksum` in hex, `packed_length`), then
 * every pair of the nvlist (guids and redaction snapshot guids in hex, other integers as numbers
 * when exact, booleans without a value as `true`).
 */
export function tokenJson(token: string): { [key: string]: JsonValue } {
  const d = decodeResumeToken(token);
  const out: { [key: string]: JsonValue } = {
    version: d.version,
    checksum: d.checksum.toString(16),
    packed_length: d.packedLength,
  };
  const plain = nvlistToJson(d.nvlist);
  for (const p of d.nvlist.pairs) {
    let v = plain[p.name]!;
    if (p.type === DATA_TYPE.UINT64 && GUIDS.has(p.name)) v = p.value.toString(16);
    if (p.type === DATA_TYPE.UINT64_ARRAY && /redact_snaps$/.test(p.name)) {
      v = p.value.map((g) => g.toString(16));
    }
    Object.defineProperty(out, p.name, { value: v, enumerable: true, writable: true });
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
    warn(`Unable to parse resume token: ${e.message}`);
    return 1;
  }
}
