/**
 * `zsend verify [--quiet] [--json] [--resume-token] [FILE|-]`: exit 0 when the stream is intact,
 * 1 when not. With `--resume-token`, a cut or damaged stream also gets the token from which a
 * real `zfs send -t` sends the rest (on stdout, alone, so that `$(...)` takes it).
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { StreamError } from "../core/stream/errors.ts";
import { StreamVerifier, verifyStream } from "../core/stream/verify.ts";
import type { MacReport } from "../core/crypto/stream_macs.ts";
import type { KeyMaterial } from "../core/crypto/keys.ts";
import { readRecordBatches } from "../core/stream/reader.ts";
import type { ByteChunks } from "../core/stream/byte_source.ts";
import { KEY_FLAGS, KEY_USAGE, keyMaterial } from "./key_flags.ts";
import { openStreamInput } from "../io/source.ts";
import { trackedInput } from "../io/progress.ts";
import { engine, errorJson, noteShrunkInput, oneInput, rejectUnknown } from "./common.ts";
import { streamInputArg } from "./args.ts";
import { u64Json, verifyReportJson } from "../core/stream/json.ts";

/** The MAC counts of `verify --json` with a key, in snake_case. */
function macsJson(m: MacReport): Record<string, number> {
  return {
    keys: m.keys,
    blocks: m.blocks,
    dnode_blocks: m.dnodeBlocks,
    dnode_unchecked: m.dnodeUnchecked,
    objsets: m.objsets,
    plain: m.plain,
  };
}

/** Usage of the verb. */
export const USAGE =
  `zsend verify [--quiet] [--json] [--progress] ${KEY_USAGE} [--resume-token] [FILE|-]`;

/** Runs the verb; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    boolean: ["quiet", "json", "help", "resume-token", "progress"],
    string: [...KEY_FLAGS],
    alias: { q: "quiet" },
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const input = streamInputArg(oneInput(flags._, "verify"));
  const key = keyMaterial(flags);
  if (flags["resume-token"]) return await resumeToken(input, flags.json, flags.quiet);
  const { chunks: source, progress } = trackedInput(
    openStreamInput(input, { reuse: true }),
    input,
    { asked: flags.progress, label: "zsend verify: " },
  );
  try {
    let macs: MacReport | null = null;
    const report = key === null
      ? await verifyStream(source, { fletcher4: engine(), reuseSpans: true })
      : await (async () => {
        const r = await verifyWithKey(source, key);
        macs = r.macs;
        return r.report;
      })();
    progress?.done();
    if (flags.json) {
      const m = macs as MacReport | null;
      console.log(JSON.stringify({
        ...verifyReportJson(report),
        ...(m === null ? {} : { macs: macsJson(m) }),
      }));
    } else if (!flags.quiet) {
      console.log(
        `${input ?? "stdin"}: OK: ${report.records} records, ${report.bytes} bytes, ` +
          `${report.substreams} snapshot${report.substreams === 1 ? "" : "s"}` +
          (report.compound ? " (compound stream)" : "") +
          (report.recordChecksums ? ", record checksums" : ", END checksums only"),
      );
      const m = macs as MacReport | null;
      if (m !== null) {
        console.log(
          `MACs: ${m.keys} raw snapshot${m.keys === 1 ? "" : "s"} opened with the key; ` +
            `${m.blocks} data and spill blocks, ${m.dnodeBlocks} dnode blocks and ` +
            `${m.objsets} objset MAC${m.objsets === 1 ? "" : "s"} authenticated` +
            (m.dnodeUnchecked > 0
              ? `; ${m.dnodeUnchecked} dnode blocks of incremental substreams not checkable ` +
                "from the stream alone (they are when extracted from a store)"
              : "") +
            (m.plain > 0 ? `; ${m.plain} substreams not raw` : ""),
        );
      }
    }
    return 0;
  } catch (e) {
    progress?.done();
    if (!(e instanceof StreamError)) throw e;
    noteShrunkInput(e);
    if (flags.json) console.log(JSON.stringify(errorJson(e, "stream", 1)));
    if (!flags.quiet) console.error(e.message);
    return 1;
  }
}

/** Verifies the stream and every block MAC of its raw substreams, in one pass. */
async function verifyWithKey(
  source: ByteChunks,
  key: KeyMaterial,
): Promise<{ report: ReturnType<StreamVerifier["finish"]>; macs: MacReport }> {
  // The crypto modules load only when a key is given: a plain verify starts faster and smaller.
  const { StreamMacChecker } = await import("../core/crypto/stream_macs.ts");
  const { nativeAead } = await import("../io/native/aead_native.ts");
  const v = new StreamVerifier();
  const macs = new StreamMacChecker(key, undefined, nativeAead());
  for await (const batch of readRecordBatches(source, { fletcher4: engine() })) {
    for (const r of batch) {
      v.check(r);
      await macs.check(r);
    }
  }
  return { report: v.finish(), macs: macs.report };
}

/** `verify --resume-token`: the verdict on stderr (or in the JSON), the token on stdout. */
async function resumeToken(
  input: string | undefined,
  json: boolean,
  quiet: boolean,
): Promise<number> {
  const { findResumePoint } = await import("../core/resume/resume_point.ts");
  const { encodeResumeToken } = await import("../core/resume/resume_token.ts");
  const v = new StreamVerifier();
  const scan = await findResumePoint(openStreamInput(input, { reuse: true }), {
    fletcher4: engine(),
    check: (r) => v.check(r),
  });
  const name = input ?? "stdin";
  if (scan.fault === null) {
    const report = v.finish();
    if (json) console.log(JSON.stringify({ ...verifyReportJson(report), resume_token: null }));
    else if (!quiet) console.error(`${name}: OK: whole, nothing to resume`);
    return 0;
  }
  const e = scan.fault;
  noteShrunkInput(e);
  const p = scan.point;
  const token = p === null ? null : encodeResumeToken(p.state);
  if (json) {
    // The resume point by the token's own names, and where in the stream it lies.
    console.log(JSON.stringify({
      ...errorJson(e, "stream", 1),
      resume_token: token,
      resume: p === null ? null : {
        toname: p.state.toname,
        object: u64Json(p.state.object),
        offset: u64Json(p.state.offset),
        bytes: u64Json(p.state.bytes),
        after_index: p.recordIndex,
        end: u64Json(p.end),
      },
    }));
    if (!quiet) console.error(e.message);
    return 1;
  }
  if (!quiet) console.error(e.message);
  if (p === null) {
    if (!quiet) console.error(`${name}: no snapshot was being received there: nothing to resume`);
    return 1;
  }
  if (!quiet) {
    const at = p.recordIndex < 0
      ? "before any data (the kernel's initial state)"
      : `after record ${p.recordIndex}, byte ${p.end}`;
    console.error(
      `${name}: resume ${p.state.toname} at object ${p.state.object} offset ${p.state.offset} ` +
        `(${at}): zfs send -t TOKEN sends the rest`,
    );
  }
  console.log(token);
  return 1;
}
