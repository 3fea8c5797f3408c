/**
 * OpenZFS's `receive_resume_token`: what `zfs receive -s` keeps of a cut receive and what
 * `zfs send -t` takes to send the rest.
 *
 * The text is `1-<checksum>-<packed length>-<payload>` (`get_receive_resume_token_impl` in
 * OpenZFS `module/zfs/dsl_dataset.c`, `zfs_send_resume_token_to_nvlist` in
 * `lib/libzfs/libzfs_sendrecv.c`): the version (1), the first word of the fletcher-4 (native,
 * little-endian words on the machines OpenZFS runs on) of the compressed payload in lowercase
 * hex, the length of the packed nvlist before compression in lowercase hex, then the zlib
 * stream of the packed nvlist (NATIVE encoding) as two lowercase hex digits a byte. The kernel
 * compresses with zlib at level 6; libzfs only needs a zlib stream that inflates to exactly the
 * packed length, so the compressor of `compress/deflate.ts` makes tokens that libzfs takes.
 *
 * The nvlist holds, in the kernel's order: `fromguid` (incrementals), `object`, `offset`,
 * `bytes`, `toguid`, `toname`, the booleans `largeblockok`, `embedok`, `compressok`, `rawok`
 * (the original stream's LARGE_BLOCKS, EMBED_DATA, COMPRESSED and RAW features), and for
 * redacted receives `redact_snaps` and `book_redact_snaps` (uint64 arrays).
 *
 * @module
 */

import { gzipDecompress } from "../compress/gzip.ts";
import { zlibCompress } from "../compress/deflate.ts";
import { fletcher4 } from "../checksum/fletcher4.ts";
import {
  DATA_TYPE,
  decodeNvlist,
  encodeNvlist,
  nv,
  type NvList,
  nvlistGet,
  type NvPair,
} from "../stream/nvlist.ts";

/** The only token version OpenZFS writes and reads (`ZFS_SEND_RESUME_TOKEN_VERSION`). */
export const RESUME_TOKEN_VERSION = 1;

/**
 * A token that cannot be decoded; the message names the cause as libzfs does
 * (`resume token is corrupt (incorrect checksum)`).
 *
 * @example
 * ```ts
 * import { decodeResumeToken, ResumeTokenError } from "jsr:@zsend/zsend";
 * let e: unknown;
 * try {
 *   decodeResumeToken("2-0-0-");
 * } catch (x) {
 *   e = x;
 * }
 * if (!(e instanceof ResumeTokenError) || !e.message.includes("invalid version 2")) {
 *   throw new Error(String(e));
 * }
 * ```
 */
export class ResumeTokenError extends SyntaxError {
  /**
   * An error that says the token is corrupt, and why.
   *
   * @param cause what is wrong, as libzfs words it (`invalid format`, ...)
   */
  constructor(cause: string) {
    super(`resume token is corrupt (${cause})`);
    this.name = "ResumeTokenError";
  }
}

/** The fields of a resume token that `zfs send -t` uses. */
export interface ResumeState {
  /** Object of the last record received whole (OBJECT, WRITE or WRITE_EMBEDDED). */
  object: bigint;
  /** Its offset (0 for an OBJECT record). */
  offset: bigint;
  /** Stream bytes received up to the end of that record, the BEGIN record not counted. */
  bytes: bigint;
  /** The snapshot being received. */
  toguid: bigint;
  /** Its name as the sender called it (the stream's `toname`). */
  toname: string;
  /** The incremental source's guid; absent for a full stream. */
  fromguid?: bigint;
  /** The stream had LARGE_BLOCKS (`zfs send -L`). */
  largeblockok: boolean;
  /** The stream had EMBED_DATA (`zfs send -e`). */
  embedok: boolean;
  /** The stream had COMPRESSED (`zfs send -c`). */
  compressok: boolean;
  /** The stream had RAW (`zfs send -w`). */
  rawok: boolean;
  /** The received dataset's redaction snapshots (redacted receives). */
  redactSnaps?: bigint[];
  /** The BEGIN nvlist's `redact_from_snaps` (a send from a redaction bookmark). */
  bookRedactSnaps?: bigint[];
}

/** A decoded token: its header and its nvlist as they were. */
export interface DecodedResumeToken {
  /** The version field (always {@link RESUME_TOKEN_VERSION} once decoded). */
  version: number;
  /** fletcher-4 word 0 of the compressed payload, as the token states it. */
  checksum: bigint;
  /** Length of the packed nvlist. */
  packedLength: number;
  /** The compressed payload. */
  compressed: Uint8Array;
  /** The nvlist, every pair in order. */
  nvlist: NvList;
}

const HEAD =
  /^[ \t\n\v\f\r]*\+?([0-9]+)-[ \t\n\v\f\r]*(?:0[xX])?([0-9a-fA-F]+)-[ \t\n\v\f\r]*(?:0[xX])?([0-9a-fA-F]+)-/;

/**
 * Decodes a token as libzfs does (`zfs_send_resume_token_to_nvlist`): header, hex payload
 * (taken after the last `-`; an odd last digit is ignored), checksum, decompression to exactly
 * the stated length, nvlist.
 *
 * @param token the token text
 * @returns the header and the nvlist
 * @throws {ResumeTokenError} with libzfs's wording of the fault
 * @example
 * ```ts
 * import { decodeResumeToken, encodeResumeToken } from "jsr:@zsend/zsend";
 * const t = encodeResumeToken({
 *   object: 5n, offset: 0n, bytes: 1000n, toguid: 0xabcn, toname: "pool/fs@s1",
 *   largeblockok: false, embedok: true, compressok: false, rawok: false,
 * });
 * const d = decodeResumeToken(t);
 * if (d.version !== 1 || d.nvlist.pairs[0]?.name !== "object") throw new Error(t);
 * ```
 */
export function decodeResumeToken(token: string): DecodedResumeToken {
  const m = HEAD.exec(token);
  if (m === null) throw new ResumeTokenError("invalid format");
  const version = Number(m[1]!);
  if (version !== RESUME_TOKEN_VERSION) {
    throw new ResumeTokenError(`invalid version ${m[1]!.replace(/^0+(?=.)/, "")}`);
  }
  const checksum = BigInt(`0x${m[2]!}`);
  const packedBig = BigInt(`0x${m[3]!}`);
  const hex = token.slice(token.lastIndexOf("-") + 1);
  const compressed = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < compressed.length; i++) {
    const pair = hex.slice(2 * i, 2 * i + 2);
    if (!/^[0-9a-fA-F]{2}$/.test(pair)) {
      throw new ResumeTokenError("payload is not hex-encoded");
    }
    compressed[i] = parseInt(pair, 16);
  }
  if (fletcher4(compressed, true)[0] !== checksum) {
    throw new ResumeTokenError("incorrect checksum");
  }
  if (packedBig > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ResumeTokenError("decompression failed");
  }
  const packedLength = Number(packedBig);
  let packed: Uint8Array;
  try {
    packed = gzipDecompress(compressed, packedLength);
  } catch {
    throw new ResumeTokenError("decompression failed");
  }
  let nvlist: NvList;
  try {
    nvlist = decodeNvlist(packed);
  } catch {
    throw new ResumeTokenError("nvlist_unpack failed");
  }
  return { version, checksum, packedLength, compressed, nvlist };
}

/**
 * The fields of a decoded token that `zfs send -t` uses.
 *
 * @param list the token's nvlist
 * @returns its fields; `object`, `offset`, `bytes`, `toguid` and `toname` are required
 * @throws {ResumeTokenError} when one of those is missing or of another type
 * @example
 * ```ts
 * import { decodeResumeToken, encodeResumeToken, resumeState } from "jsr:@zsend/zsend";
 * const t = encodeResumeToken({
 *   object: 5n, offset: 0x20000n, bytes: 1000n, toguid: 0xabcn, toname: "pool/fs@s1",
 *   fromguid: 0x99n, largeblockok: true, embedok: true, compressok: false, rawok: false,
 * });
 * const s = resumeState(decodeResumeToken(t).nvlist);
 * if (s.offset !== 0x20000n || s.fromguid !== 0x99n || !s.largeblockok || s.rawok) {
 *   throw new Error();
 * }
 * ```
 */
export function resumeState(list: NvList): ResumeState {
  const u64 = (name: string): bigint => {
    const v = nvlistGet(list, name, DATA_TYPE.UINT64);
    if (v === undefined) throw new ResumeTokenError(`no uint64 ${name}`);
    return v;
  };
  const object = u64("object");
  const offset = u64("offset");
  const bytes = u64("bytes");
  const toguid = u64("toguid");
  const toname = nvlistGet(list, "toname", DATA_TYPE.STRING);
  if (toname === undefined) throw new ResumeTokenError("no string toname");
  const flag = (name: string) => nvlistGet(list, name, DATA_TYPE.BOOLEAN) === true;
  const state: ResumeState = {
    object,
    offset,
    bytes,
    toguid,
    toname,
    largeblockok: flag("largeblockok"),
    embedok: flag("embedok"),
    compressok: flag("compressok"),
    rawok: flag("rawok"),
  };
  const fromguid = nvlistGet(list, "fromguid", DATA_TYPE.UINT64);
  if (fromguid !== undefined) state.fromguid = fromguid;
  const redact = nvlistGet(list, "redact_snaps", DATA_TYPE.UINT64_ARRAY);
  if (redact !== undefined) state.redactSnaps = redact;
  const book = nvlistGet(list, "book_redact_snaps", DATA_TYPE.UINT64_ARRAY);
  if (book !== undefined) state.bookRedactSnaps = book;
  return state;
}

/**
 * The nvlist the kernel builds for a resume state, in its order.
 *
 * @param s the state
 * @returns the list
 * @example
 * ```ts
 * import { resumeNvlist } from "jsr:@zsend/zsend";
 * const l = resumeNvlist({
 *   object: 1n, offset: 0n, bytes: 0n, toguid: 7n, toname: "p/fs@a", fromguid: 3n,
 *   largeblockok: false, embedok: false, compressok: true, rawok: false,
 * });
 * const names = l.pairs.map((p) => p.name).join();
 * if (names !== "fromguid,object,offset,bytes,toguid,toname,compressok") throw new Error(names);
 * ```
 */
export function resumeNvlist(s: ResumeState): NvList {
  const pairs: NvPair[] = [];
  if (s.fromguid !== undefined) pairs.push(nv.uint64("fromguid", s.fromguid));
  pairs.push(
    nv.uint64("object", s.object),
    nv.uint64("offset", s.offset),
    nv.uint64("bytes", s.bytes),
    nv.uint64("toguid", s.toguid),
    nv.string("toname", s.toname),
  );
  if (s.largeblockok) pairs.push(nv.boolean("largeblockok"));
  if (s.embedok) pairs.push(nv.boolean("embedok"));
  if (s.compressok) pairs.push(nv.boolean("compressok"));
  if (s.rawok) pairs.push(nv.boolean("rawok"));
  if (s.redactSnaps !== undefined) pairs.push(nv.uint64Array("redact_snaps", s.redactSnaps));
  if (s.bookRedactSnaps !== undefined) {
    pairs.push(nv.uint64Array("book_redact_snaps", s.bookRedactSnaps));
  }
  return nv.list(...pairs);
}

/**
 * Encodes a resume state (or any nvlist) as a token that libzfs decodes: the nvlist packed
 * NATIVE little-endian as the kernel packs it, zlib-compressed, checksummed, in hex.
 *
 * @param state the fields, or an nvlist to carry as it is
 * @returns the token text
 * @example
 * ```ts
 * import { decodeResumeToken, encodeResumeToken, resumeState } from "jsr:@zsend/zsend";
 * const t = encodeResumeToken({
 *   object: 4178n, offset: 655360n, bytes: 8012360n, toguid: 0x63db7614ad467c53n,
 *   toname: "zc/fs@a", largeblockok: false, embedok: false, compressok: true, rawok: false,
 * });
 * if (!/^1-[0-9a-f]+-d0-789c[0-9a-f]+$/.test(t)) throw new Error(t);
 * if (resumeState(decodeResumeToken(t).nvlist).offset !== 655360n) throw new Error();
 * ```
 */
export function encodeResumeToken(state: ResumeState | NvList): string {
  const list = "pairs" in state ? state : resumeNvlist(state);
  const packed = encodeNvlist(list, { encoding: "native", littleEndian: true });
  const compressed = zlibCompress(packed);
  const ck = fletcher4(compressed, true)[0];
  let hex = "";
  for (const b of compressed) hex += b.toString(16).padStart(2, "0");
  return `${RESUME_TOKEN_VERSION}-${ck.toString(16)}-${packed.length.toString(16)}-${hex}`;
}

function s32(x: number, bits: number): number {
  return (x << (32 - bits)) >> (32 - bits);
}

/**
 * The text `zstream token` prints for a token's nvlist: libnvpair's `dump_nvlist` at indent 5,
 * one `NAME: VALUE` line a pair (booleans without a value as the bare name, strings in single
 * quotes, arrays as one `NAME[i]: VALUE` line an element, embedded lists below `NAME:` four
 * columns further in; HRTIME, DOUBLE and BOOLEAN_ARRAY as `bad config type N for NAME`).
 *
 * @param list the nvlist
 * @param indent columns before each line (5, as `zstream token` calls it)
 * @returns the text, each line ending in a newline
 * @example
 * ```ts
 * import { DATA_TYPE } from "jsr:@zsend/zsend";
 * import { dumpNvlistText } from "./resume_token.ts";
 * const text = dumpNvlistText({ pairs: [
 *   { name: "object", type: DATA_TYPE.UINT64, value: 7n },
 *   { name: "toname", type: DATA_TYPE.STRING, value: "p/fs@a" },
 *   { name: "embedok", type: DATA_TYPE.BOOLEAN, value: true },
 * ] });
 * if (text !== "     object: 7\n     toname: 'p/fs@a'\n     embedok\n") throw new Error(text);
 * ```
 */
export function dumpNvlistText(list: NvList, indent = 5): string {
  const pad = " ".repeat(indent);
  let out = "";
  for (const p of list.pairs) {
    const line = (v: string | number | bigint) => (out += `${pad}${p.name}: ${v}\n`);
    const lines = (vs: readonly (string | number | bigint)[]) => {
      vs.forEach((v, i) => (out += `${pad}${p.name}[${i}]: ${v}\n`));
    };
    switch (p.type) {
      case DATA_TYPE.BOOLEAN:
        out += `${pad}${p.name}\n`;
        break;
      case DATA_TYPE.BOOLEAN_VALUE:
        line(p.value ? "true" : "false");
        break;
      case DATA_TYPE.BYTE:
      case DATA_TYPE.UINT8:
      case DATA_TYPE.UINT16:
      case DATA_TYPE.UINT32:
      case DATA_TYPE.INT16:
      case DATA_TYPE.INT32:
      case DATA_TYPE.UINT64:
      case DATA_TYPE.INT64:
        line(p.value);
        break;
      case DATA_TYPE.INT8:
        line(s32(p.value, 8));
        break;
      case DATA_TYPE.STRING:
        line(`'${p.value}'`);
        break;
      case DATA_TYPE.BYTE_ARRAY:
      case DATA_TYPE.UINT8_ARRAY:
        lines(Array.from(p.value));
        break;
      case DATA_TYPE.INT8_ARRAY:
        lines(p.value.map((v) => s32(v, 8)));
        break;
      case DATA_TYPE.INT16_ARRAY:
      case DATA_TYPE.UINT16_ARRAY:
      case DATA_TYPE.INT32_ARRAY:
      case DATA_TYPE.UINT32_ARRAY:
      case DATA_TYPE.INT64_ARRAY:
      case DATA_TYPE.UINT64_ARRAY:
        lines(p.value);
        break;
      case DATA_TYPE.STRING_ARRAY:
        lines(p.value.map((v) => `'${v}'`));
        break;
      case DATA_TYPE.NVLIST:
        out += `${pad}${p.name}:\n${dumpNvlistText(p.value, indent + 4)}`;
        break;
      case DATA_TYPE.NVLIST_ARRAY:
        p.value.forEach((l, i) => {
          out += `${pad}${p.name}[${i}]:\n${dumpNvlistText(l, indent + 4)}`;
        });
        break;
      default:
        out += `bad config type ${p.type} for ${p.name}\n`;
    }
  }
  return out;
}
