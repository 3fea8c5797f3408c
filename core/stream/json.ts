/**
 * The JSON every `--json` output of zsend is written in (`docs/json-schema.json` is its
 * schema): keys in snake_case; every u64 of the format, and every byte offset and byte count of
 * a stream, as a decimal string; guids as `0x` and exactly 16 lowercase hex digits; checksums
 * as four decimal strings; fields of 32 bits or fewer and zsend's own counts as numbers.
 *
 * @module
 */

import { DRR, recordTypeName } from "./constants.ts";
import type { StreamError } from "./errors.ts";
import { decodeNvlist, type JsonValue, type NvGuidTest, nvlistToJson } from "./nvlist.ts";
import type { StreamRecord } from "./reader.ts";
import { type Checksum, type DrrRecord, featureFlags, hdrtype, LAYOUTS } from "./record.ts";
import type { VerifyReport } from "./verify.ts";

/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/**
 * A u64 (or a byte offset or count) as JSON: its decimal digits.
 *
 * @example
 * ```ts
 * import { u64Json } from "jsr:@zsend/zsend";
 * if (u64Json(2n ** 64n - 1n) !== "18446744073709551615" || u64Json(624) !== "624") {
 *   throw new Error();
 * }
 * ```
 */
export function u64Json(x: bigint | number): string {
  return BigInt.asUintN(64, BigInt(x)).toString();
}

/**
 * A guid as JSON: `0x` and exactly 16 lowercase hex digits.
 *
 * @example
 * ```ts
 * import { guidJson } from "jsr:@zsend/zsend";
 * if (guidJson(0x19ae76b59316b832n) !== "0x19ae76b59316b832") throw new Error();
 * if (guidJson(0x2a9n) !== "0x00000000000002a9") throw new Error();
 * ```
 */
export function guidJson(guid: bigint): string {
  return "0x" + BigInt.asUintN(64, guid).toString(16).padStart(16, "0");
}

/** A fletcher-4 checksum as JSON: its four words as decimal strings. */
export function checksumJson(c: Checksum): string[] {
  return c.map(u64Json);
}

const hex2 = (b: number): string => b.toString(16).padStart(2, "0");

/** Record fields that hold guids. */
const GUID_FIELDS = new Set(["toguid", "fromguid", "refguid"]);

/**
 * Which 64-bit pairs of a stream's nvlists (a compound BEGIN's, a raw BEGIN's
 * `crypt_keydata`, a resume token's) hold guids: `toguid`, `fromguid`, `DSL_CRYPTO_GUID`,
 * `*_ivset_guid` and other names ending in `guid`, `parentfromsnap` and `origin` of a `-R`
 * stream's `fss` entries, every value of their `snaps`, and the `redact_snaps` arrays.
 */
export const streamNvlistGuid: NvGuidTest = (name, path) =>
  /guid$/i.test(name) || name === "parentfromsnap" || name === "origin" ||
  /redact_snaps$/.test(name) || path.at(-1) === "snaps";

/**
 * A record's fields as JSON, by its type's layout: u8 and u32 fields as numbers, u64 fields as
 * decimal strings (guids as `0x` + 16 hex digits), checksums as four decimal strings, byte
 * fields as hex, `toname` as a string; `payloadlen`, the trailing `record_checksum` (not in
 * BEGIN), and for BEGIN its `hdrtype` (number) and `features` (decimal string).
 *
 * @example
 * ```ts
 * import { recordFieldsJson } from "./json.ts";
 * const f = recordFieldsJson({ type: 4, payloadlen: 0, object: 3n, offset: 512n,
 *   length: 2n ** 64n - 1n, toguid: 255n, record_checksum: [0n, 0n, 0n, 1n] });
 * if (f.length !== "18446744073709551615" || f.toguid !== "0x00000000000000ff") {
 *   throw new Error(JSON.stringify(f));
 * }
 * ```
 */
export function recordFieldsJson(h: DrrRecord): JsonObject {
  const src = h as unknown as Record<string, unknown>;
  const out: JsonObject = { payloadlen: h.payloadlen };
  for (const f of LAYOUTS[h.type] ?? []) {
    const v = src[f.name];
    switch (f.kind) {
      case "u8":
      case "u32":
        out[f.name] = v as number;
        break;
      case "u64":
        out[f.name] = GUID_FIELDS.has(f.name) ? guidJson(v as bigint) : u64Json(v as bigint);
        break;
      case "cksum":
        out[f.name] = checksumJson(v as Checksum);
        break;
      case "bytes":
        out[f.name] = Array.from(v as Uint8Array, hex2).join("");
        break;
      case "string":
        out[f.name] = v as string;
        break;
    }
  }
  if (h.type === DRR.BEGIN) {
    out.hdrtype = hdrtype(h.versioninfo);
    out.features = u64Json(featureFlags(h.versioninfo));
  } else {
    out.record_checksum = checksumJson(h.record_checksum);
  }
  return out;
}

/**
 * One record as `dump --json` prints it: its place (`index`, byte `offset` in the stream,
 * `substream`), its `type` by name and `drr_type` by number, its `fields`
 * ({@linkcode recordFieldsJson}), `payload_size`, and for a BEGIN with an nvlist the `nvlist`
 * (or `nvlist_error` when it does not decode).
 *
 * @example
 * ```ts
 * import { readRecords, recordToJson, StreamWriter } from "jsr:@zsend/zsend";
 * const w = new StreamWriter();
 * const bytes = [...w.begin({ toname: "p/fs@a", toguid: 255n, objset_type: 2 }),
 *   ...w.write({ type: 4, object: 3n, offset: 0n, length: 2n ** 64n - 1n }), ...w.end()];
 * const out = [];
 * for await (const r of readRecords(bytes)) out.push(recordToJson(r));
 * const free = out[1]!;
 * if (free.type !== "FREE" || free.offset !== "312") throw new Error(JSON.stringify(free));
 * const fields = free.fields as { length: string; toguid: string };
 * if (fields.length !== "18446744073709551615" || fields.toguid !== "0x00000000000000ff") {
 *   throw new Error(JSON.stringify(free));
 * }
 * ```
 */
export function recordToJson(r: StreamRecord): JsonObject {
  const h = r.header;
  const out: JsonObject = {
    index: r.index,
    offset: u64Json(r.offset),
    substream: r.substream,
    type: recordTypeName(h.type),
    drr_type: h.type,
    fields: recordFieldsJson(h),
    payload_size: r.payload.length,
  };
  if (h.type === DRR.BEGIN && r.payload.length >= 2) {
    try {
      out.nvlist = nvlistToJson(decodeNvlist(r.payload), streamNvlistGuid);
    } catch (e) {
      out.nvlist_error = (e as Error).message;
    }
  }
  return out;
}

/**
 * A stream fault as JSON: `kind` `"stream"`, the `message` as printed, and where: the record's
 * `index`, its byte `offset`, its `type` (name; `null` when the header could not be read) and
 * `drr_type`, and the `fault` without the position.
 *
 * @example
 * ```ts
 * import { streamErrorJson } from "./json.ts";
 * import { StreamError } from "jsr:@zsend/zsend";
 * const j = streamErrorJson(new StreamError({ index: 3, type: 3, offset: 936 }, "bad"));
 * if (j.index !== 3 || j.offset !== "936" || j.type !== "WRITE" || j.fault !== "bad") {
 *   throw new Error(JSON.stringify(j));
 * }
 * ```
 */
export function streamErrorJson(e: StreamError): JsonObject {
  return {
    kind: "stream",
    message: e.message,
    index: e.index,
    offset: u64Json(e.offset),
    type: e.type < 0 ? null : recordTypeName(e.type),
    drr_type: e.type < 0 ? null : e.type,
    fault: e.fault,
  };
}

/**
 * A successful verification as `verify --json` prints it: `ok`, `records`, `bytes` (a decimal
 * string), `substreams`, `compound`, `record_checksums` and `snapshots`.
 *
 * @example
 * ```ts
 * import { verifyReportJson } from "jsr:@zsend/zsend";
 * const j = verifyReportJson({ records: 2, bytes: 624, substreams: 1, compound: false,
 *   recordChecksums: true, snapshots: ["p/fs@a"] });
 * if (j.bytes !== "624" || j.record_checksums !== true || j.ok !== true) throw new Error();
 * ```
 */
export function verifyReportJson(report: VerifyReport): JsonObject {
  return {
    ok: true,
    records: report.records,
    bytes: u64Json(report.bytes),
    substreams: report.substreams,
    compound: report.compound,
    record_checksums: report.recordChecksums,
    snapshots: [...report.snapshots],
  };
}
