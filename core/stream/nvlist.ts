/**
 * Packed nvlists, as libnvpair writes them: the payload of a BEGIN record (the header of a
 * compound stream, and e.g. `redact_snaps` or `crypt_keydata` in substreams).
 *
 * - {@link decodeNvlist} reads both encodings: XDR (big-endian 4-byte units) and NATIVE (the
 *   sender's in-memory `nvpair_t` layout, either byte order), every data type 1..27. Input is
 *   treated as hostile: every length and count is checked against the bytes that remain
 *   before anything is allocated, nesting is limited, and a bad nvlist throws an
 *   {@link NvlistError} (a `SyntaxError`) naming the byte offset and the fault.
 * - {@link encodeNvlist} writes either encoding, byte for byte as `nvlist_pack()` does.
 * - {@link printNvlist} reproduces libnvpair's `nvlist_print()` text exactly.
 * - {@link nvlistLookup}, {@link nvlistGet}, {@link nvlistToObject} and {@link nvlistToJson}
 *   read values; {@link nv} builds pairs.
 *
 * Facts from OpenZFS `module/nvpair/nvpair.c`, `lib/libnvpair/libnvpair.c`,
 * `include/sys/nvpair.h` and `module/os/linux/spl/spl-xdr.c`.
 *
 * Names and strings are UTF-8: bytes that are not valid UTF-8 decode to U+FFFD.
 *
 * @module
 */

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/**
 * The nvpair data types (`data_type_t`).
 *
 * @example
 * ```ts
 * import { DATA_TYPE } from "jsr:@zsend/zsend";
 * if (DATA_TYPE.UINT64 !== 8 || DATA_TYPE.NVLIST !== 19 || DATA_TYPE.DOUBLE !== 27) {
 *   throw new Error();
 * }
 * ```
 */
export const DATA_TYPE = {
  BOOLEAN: 1,
  BYTE: 2,
  INT16: 3,
  UINT16: 4,
  INT32: 5,
  UINT32: 6,
  INT64: 7,
  UINT64: 8,
  STRING: 9,
  BYTE_ARRAY: 10,
  INT16_ARRAY: 11,
  UINT16_ARRAY: 12,
  INT32_ARRAY: 13,
  UINT32_ARRAY: 14,
  INT64_ARRAY: 15,
  UINT64_ARRAY: 16,
  STRING_ARRAY: 17,
  HRTIME: 18,
  NVLIST: 19,
  NVLIST_ARRAY: 20,
  BOOLEAN_VALUE: 21,
  INT8: 22,
  UINT8: 23,
  BOOLEAN_ARRAY: 24,
  INT8_ARRAY: 25,
  UINT8_ARRAY: 26,
  DOUBLE: 27,
} as const;

/**
 * One of the {@link DATA_TYPE} numbers.
 *
 * @example
 * ```ts
 * import { DATA_TYPE, type DataType } from "jsr:@zsend/zsend";
 * const t: DataType = DATA_TYPE.STRING;
 * if (t !== 9) throw new Error();
 * ```
 */
export type DataType = (typeof DATA_TYPE)[keyof typeof DATA_TYPE];

/**
 * The `nvl_nvflag` bit that makes names unique: adding a pair replaces any pair of the same
 * name. Lists that {@link encodeNvlist} writes carry it unless told otherwise.
 *
 * @example
 * ```ts
 * import { NV_UNIQUE_NAME } from "./nvlist.ts";
 * if (NV_UNIQUE_NAME !== 1) throw new Error();
 * ```
 */
export const NV_UNIQUE_NAME = 1;

/**
 * The `nvl_nvflag` bit that makes (name, type) couples unique.
 *
 * @example
 * ```ts
 * import { NV_UNIQUE_NAME_TYPE } from "./nvlist.ts";
 * if (NV_UNIQUE_NAME_TYPE !== 2) throw new Error();
 * ```
 */
export const NV_UNIQUE_NAME_TYPE = 2;

/**
 * An nvlist: its pairs in order (duplicates kept, as libnvpair keeps them), with the list's
 * `nvl_version` and `nvl_nvflag`. The decoder leaves out `version` when it is 0 and `nvflag`
 * when it is {@link NV_UNIQUE_NAME} (1), and the encoder assumes those values when they are
 * absent, so that lists written by hand round-trip unchanged.
 *
 * @example
 * ```ts
 * import { DATA_TYPE, type NvList } from "jsr:@zsend/zsend";
 * const list: NvList = { pairs: [{ name: "tosnap", type: DATA_TYPE.STRING, value: "s1" }] };
 * if (list.pairs[0]?.value !== "s1") throw new Error();
 * ```
 */
export interface NvList {
  /** `nvl_version` (0 when absent). */
  version?: number;
  /** `nvl_nvflag` ({@link NV_UNIQUE_NAME} when absent). */
  nvflag?: number;
  /** The pairs in order. */
  pairs: NvPair[];
}

/**
 * One name-value pair. `type` selects the JavaScript type of `value`: 64-bit integers
 * (INT64, UINT64, HRTIME and their arrays) are `bigint`; BYTE_ARRAY and UINT8_ARRAY are
 * `Uint8Array`; other integers and DOUBLE are `number`; BOOLEAN (a name with no value) has
 * `value: true`; BOOLEAN_VALUE is a `boolean`.
 *
 * @example
 * ```ts
 * import { DATA_TYPE, type NvPair } from "jsr:@zsend/zsend";
 * const p: NvPair = { name: "guid", type: DATA_TYPE.UINT64, value: 0x1234n };
 * if (p.type === DATA_TYPE.UINT64 && p.value !== 0x1234n) throw new Error();
 * ```
 */
export type NvPair =
  | { name: string; type: typeof DATA_TYPE.BOOLEAN; value: true }
  | { name: string; type: typeof DATA_TYPE.BYTE; value: number }
  | { name: string; type: typeof DATA_TYPE.INT16; value: number }
  | { name: string; type: typeof DATA_TYPE.UINT16; value: number }
  | { name: string; type: typeof DATA_TYPE.INT32; value: number }
  | { name: string; type: typeof DATA_TYPE.UINT32; value: number }
  | { name: string; type: typeof DATA_TYPE.INT64; value: bigint }
  | { name: string; type: typeof DATA_TYPE.UINT64; value: bigint }
  | { name: string; type: typeof DATA_TYPE.STRING; value: string }
  | { name: string; type: typeof DATA_TYPE.BYTE_ARRAY; value: Uint8Array }
  | { name: string; type: typeof DATA_TYPE.INT16_ARRAY; value: number[] }
  | { name: string; type: typeof DATA_TYPE.UINT16_ARRAY; value: number[] }
  | { name: string; type: typeof DATA_TYPE.INT32_ARRAY; value: number[] }
  | { name: string; type: typeof DATA_TYPE.UINT32_ARRAY; value: number[] }
  | { name: string; type: typeof DATA_TYPE.INT64_ARRAY; value: bigint[] }
  | { name: string; type: typeof DATA_TYPE.UINT64_ARRAY; value: bigint[] }
  | { name: string; type: typeof DATA_TYPE.STRING_ARRAY; value: string[] }
  | { name: string; type: typeof DATA_TYPE.HRTIME; value: bigint }
  | { name: string; type: typeof DATA_TYPE.NVLIST; value: NvList }
  | { name: string; type: typeof DATA_TYPE.NVLIST_ARRAY; value: NvList[] }
  | { name: string; type: typeof DATA_TYPE.BOOLEAN_VALUE; value: boolean }
  | { name: string; type: typeof DATA_TYPE.INT8; value: number }
  | { name: string; type: typeof DATA_TYPE.UINT8; value: number }
  | { name: string; type: typeof DATA_TYPE.BOOLEAN_ARRAY; value: boolean[] }
  | { name: string; type: typeof DATA_TYPE.INT8_ARRAY; value: number[] }
  | { name: string; type: typeof DATA_TYPE.UINT8_ARRAY; value: Uint8Array }
  | { name: string; type: typeof DATA_TYPE.DOUBLE; value: number };

/**
 * The pair variant of one data type.
 *
 * @example
 * ```ts
 * import { DATA_TYPE, type NvPairOf } from "jsr:@zsend/zsend";
 * const p: NvPairOf<typeof DATA_TYPE.STRING> = { name: "n", type: DATA_TYPE.STRING, value: "v" };
 * if (p.value.length !== 1) throw new Error();
 * ```
 */
export type NvPairOf<T extends DataType> = Extract<NvPair, { type: T }>;

/**
 * The value type of one data type.
 *
 * @example
 * ```ts
 * import { DATA_TYPE, type NvValueOf } from "jsr:@zsend/zsend";
 * const v: NvValueOf<typeof DATA_TYPE.UINT64_ARRAY> = [1n, 2n];
 * if (v.length !== 2) throw new Error();
 * ```
 */
export type NvValueOf<T extends DataType> = NvPairOf<T>["value"];

const TYPE_NAMES = [
  "UNKNOWN",
  "BOOLEAN",
  "BYTE",
  "INT16",
  "UINT16",
  "INT32",
  "UINT32",
  "INT64",
  "UINT64",
  "STRING",
  "BYTE_ARRAY",
  "INT16_ARRAY",
  "UINT16_ARRAY",
  "INT32_ARRAY",
  "UINT32_ARRAY",
  "INT64_ARRAY",
  "UINT64_ARRAY",
  "STRING_ARRAY",
  "HRTIME",
  "NVLIST",
  "NVLIST_ARRAY",
  "BOOLEAN_VALUE",
  "INT8",
  "UINT8",
  "BOOLEAN_ARRAY",
  "INT8_ARRAY",
  "UINT8_ARRAY",
  "DOUBLE",
];

/**
 * The C name of a data type, e.g. `DATA_TYPE_UINT64`; `DATA_TYPE_<n>` for unknown numbers.
 *
 * @example
 * ```ts
 * import { dataTypeName } from "./nvlist.ts";
 * if (dataTypeName(19) !== "DATA_TYPE_NVLIST" || dataTypeName(99) !== "DATA_TYPE_99") {
 *   throw new Error();
 * }
 * ```
 */
export function dataTypeName(type: number): string {
  const n = Number.isInteger(type) && type >= 0 ? TYPE_NAMES[type] : undefined;
  return `DATA_TYPE_${n ?? type}`;
}

/** What a data type holds, for the codecs. */
interface TypeInfo {
  /** flag: BOOLEAN; int/uint: integers; bool: boolean_t; f64: double; str; list: nvlists. */
  kind: "flag" | "int" | "uint" | "bool" | "f64" | "str" | "list";
  /** Bytes per element in memory (0 for strings, 24 for nvlist_t). */
  width: number;
  /** An array type (any number of elements, 0 included). */
  array: boolean;
}

function info(kind: TypeInfo["kind"], width: number, array = false): TypeInfo {
  return { kind, width, array };
}

const TYPE_INFO: readonly (TypeInfo | undefined)[] = [
  undefined,
  info("flag", 0), // BOOLEAN
  info("uint", 1), // BYTE
  info("int", 2), // INT16
  info("uint", 2), // UINT16
  info("int", 4), // INT32
  info("uint", 4), // UINT32
  info("int", 8), // INT64
  info("uint", 8), // UINT64
  info("str", 0), // STRING
  info("uint", 1, true), // BYTE_ARRAY
  info("int", 2, true), // INT16_ARRAY
  info("uint", 2, true), // UINT16_ARRAY
  info("int", 4, true), // INT32_ARRAY
  info("uint", 4, true), // UINT32_ARRAY
  info("int", 8, true), // INT64_ARRAY
  info("uint", 8, true), // UINT64_ARRAY
  info("str", 0, true), // STRING_ARRAY
  info("int", 8), // HRTIME
  info("list", 24), // NVLIST
  info("list", 24, true), // NVLIST_ARRAY
  info("bool", 4), // BOOLEAN_VALUE
  info("int", 1), // INT8
  info("uint", 1), // UINT8
  info("bool", 4, true), // BOOLEAN_ARRAY
  info("int", 1, true), // INT8_ARRAY
  info("uint", 1, true), // UINT8_ARRAY
  info("f64", 8), // DOUBLE
];

function typeInfo(type: number): TypeInfo | undefined {
  return Number.isInteger(type) && type >= 0 ? TYPE_INFO[type] : undefined;
}

/** Types whose array value is a `Uint8Array`. */
function isByteArrayType(type: number): boolean {
  return type === DATA_TYPE.BYTE_ARRAY || type === DATA_TYPE.UINT8_ARRAY;
}

const INT32_MAX = 0x7fffffff;
/** `NVP_SIZE_CALC(1, 0)`: the smallest in-memory pair. */
const MIN_PAIR = 24;
/** `nvpair_max_recursion` in userland (the kernel allows 20). */
const DEFAULT_MAX_DEPTH = 100;

function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

const utf8Decoder = new TextDecoder("utf-8", { ignoreBOM: true });
const utf8Encoder = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/**
 * A malformed, truncated or hostile packed nvlist. The message reads
 * `nvlist: at byte 52: pair "tosnap": decode size 40, expected 32`.
 *
 * @example
 * ```ts
 * import { decodeNvlist, NvlistError } from "./nvlist.ts";
 * try {
 *   decodeNvlist(new Uint8Array([1, 1, 0, 0, 0, 0]));
 *   throw new Error("no error");
 * } catch (e) {
 *   if (!(e instanceof NvlistError) || !(e instanceof SyntaxError) || e.offset !== 4) throw e;
 * }
 * ```
 */
export class NvlistError extends SyntaxError {
  /** Offset of the fault from the start of the packed nvlist (plus `baseOffset`). */
  readonly offset: number;
  /** What is wrong, without the position. */
  readonly fault: string;

  /**
   * Makes the error and its message.
   *
   * @param offset where the fault is
   * @param fault what is wrong
   */
  constructor(offset: number, fault: string) {
    super(`nvlist: at byte ${offset}: ${fault}`);
    this.name = "NvlistError";
    this.offset = offset;
    this.fault = fault;
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/**
 * Options of {@link decodeNvlist}.
 *
 * @example
 * ```ts
 * import type { DecodeOptions } from "jsr:@zsend/zsend";
 * const o: DecodeOptions = { maxDepth: 20, baseOffset: 312, strict: true };
 * if (o.maxDepth !== 20) throw new Error();
 * ```
 */
export interface DecodeOptions {
  /**
   * Deepest nesting of embedded nvlists accepted (the top list is depth 0). Default 100, as
   * userland libnvpair; the kernel allows 20.
   */
  maxDepth?: number;
  /** Added to every offset in error messages, e.g. the payload's offset in the stream. */
  baseOffset?: number;
  /**
   * Also reject what libnvpair tolerates but no correct encoder writes: an XDR encode size
   * that differs from the one `nvlist_pack()` computes, and non-zero bytes after the list.
   */
  strict?: boolean;
}

/**
 * The 4-byte header of a packed nvlist (`nvs_header_t`).
 *
 * @example
 * ```ts
 * import type { NvlistHeader } from "./nvlist.ts";
 * const h: NvlistHeader = { encoding: "native", littleEndian: true };
 * if (h.encoding !== "native") throw new Error();
 * ```
 */
export interface NvlistHeader {
  /** `NV_ENCODE_XDR` (1) or `NV_ENCODE_NATIVE` (0). */
  encoding: "xdr" | "native";
  /** The endian byte: 1 little-endian, 0 big-endian (it matters only to NATIVE). */
  littleEndian: boolean;
}

/**
 * Reads the 4-byte header of a packed nvlist.
 *
 * @example
 * ```ts
 * import { nvlistHeader } from "./nvlist.ts";
 * const h = nvlistHeader(new Uint8Array([0, 1, 0, 0]));
 * if (h.encoding !== "native" || !h.littleEndian) throw new Error();
 * ```
 *
 * @throws {NvlistError} when shorter than 4 bytes, or the encoding or (NATIVE) byte order is
 * neither 0 nor 1
 */
export function nvlistHeader(bytes: Uint8Array, options: DecodeOptions = {}): NvlistHeader {
  const base = options.baseOffset ?? 0;
  if (bytes.length < 4) {
    throw new NvlistError(base, `${bytes.length} bytes, shorter than the 4-byte header`);
  }
  const encoding = bytes[0]!;
  const endian = bytes[1]!;
  if (encoding === 1) return { encoding: "xdr", littleEndian: endian === 1 };
  if (encoding !== 0) throw new NvlistError(base, `unknown encoding ${encoding}`);
  if (endian > 1) throw new NvlistError(base + 1, `unknown byte order ${endian}`);
  return { encoding: "native", littleEndian: endian === 1 };
}

interface Ctx {
  b: Uint8Array;
  v: DataView;
  le: boolean;
  base: number;
  maxDepth: number;
  strict: boolean;
  /** XDR read position. */
  pos: number;
}

function fail(c: Ctx, at: number, fault: string): never {
  throw new NvlistError(c.base + at, fault);
}

function need(c: Ctx, at: number, n: number, what: string): void {
  const left = c.b.length - at;
  if (n > left) fail(c, at, `${what} needs ${n} bytes, ${Math.max(left, 0)} left`);
}

function makeList(version: number, nvflag: number, pairs: NvPair[]): NvList {
  const list: NvList = { pairs };
  if (version !== 0) list.version = version;
  if (nvflag !== NV_UNIQUE_NAME) list.nvflag = nvflag;
  return list;
}

function quote(name: string): string {
  return JSON.stringify(name);
}

/**
 * `i_get_value_size()` without the strings: the bytes a value takes in memory (an array of
 * strings or nvlists starts with a table of 8-byte pointers; an nvlist_t is 24 bytes).
 */
function fixedValueSize(ti: TypeInfo, nelem: number): number {
  switch (ti.kind) {
    case "flag":
      return 0;
    case "str":
      return ti.array ? 8 * nelem : 0;
    case "list":
      return ti.array ? 32 * nelem : 24;
    default:
      return ti.width * (ti.array ? nelem : 1);
  }
}

/** Validates a type and element count as `i_validate_type_nelem()` does. */
function checkTypeNelem(c: Ctx, at: number, type: number, nelem: number): TypeInfo {
  const ti = type >= 1 && type <= 27 ? TYPE_INFO[type] : undefined;
  if (ti === undefined) fail(c, at, `unknown data type ${type}`);
  const ok = ti.kind === "flag" ? nelem === 0 : ti.array || nelem === 1;
  if (!ok) fail(c, at, `${dataTypeName(type)} with ${nelem} elements`);
  if (fixedValueSize(ti, nelem) > INT32_MAX) {
    fail(c, at, `${dataTypeName(type)} of ${nelem} elements is too large`);
  }
  return ti;
}

/** An embedded list at `depth` (the top list is 0) is allowed up to `maxDepth`. */
function checkDepth(c: Ctx, at: number, depth: number): void {
  if (depth > c.maxDepth) fail(c, at, `nvlists nested more than ${c.maxDepth} deep`);
}

/**
 * Decodes a packed nvlist (XDR or NATIVE of either byte order), validating it as libnvpair's
 * `nvlist_unpack()` does and a little more: strings must hold no NUL byte and XDR padding
 * must be zero (as the kernel's XDR requires), and an XDR array's own count must equal the
 * pair's element count. Bytes after the end of the list are ignored (libnvpair ignores them
 * too) unless `strict` is set.
 *
 * @example
 * ```ts
 * import { DATA_TYPE, decodeNvlist, encodeNvlist } from "jsr:@zsend/zsend";
 * const packed = encodeNvlist({ pairs: [{ name: "tosnap", type: DATA_TYPE.STRING, value: "r1" }] });
 * const list = decodeNvlist(packed);
 * if (list.pairs[0]?.name !== "tosnap" || list.pairs[0].value !== "r1") throw new Error();
 * ```
 *
 * @throws {NvlistError} (a `SyntaxError`) naming the byte offset and the fault
 */
export function decodeNvlist(bytes: Uint8Array, options: DecodeOptions = {}): NvList {
  const header = nvlistHeader(bytes, options);
  const c: Ctx = {
    b: bytes,
    v: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    le: header.littleEndian,
    base: options.baseOffset ?? 0,
    maxDepth: options.maxDepth ?? DEFAULT_MAX_DEPTH,
    strict: options.strict ?? false,
    pos: 4,
  };
  let list: NvList;
  let end: number;
  if (header.encoding === "xdr") {
    list = xdrList(c, 0)[0];
    end = c.pos;
  } else {
    need(c, 4, 8, "nvlist version and flags");
    const version = c.v.getInt32(4, c.le);
    const nvflag = c.v.getUint32(8, c.le);
    const [pairs, after] = nativePairs(c, 12, 0);
    list = makeList(version, nvflag, pairs);
    end = after;
  }
  if (c.strict) {
    for (let i = end; i < bytes.length; i++) {
      if (bytes[i] !== 0) fail(c, i, "non-zero byte after the end of the nvlist");
    }
  }
  return list;
}

// --- XDR -------------------------------------------------------------------------------------

function xdrU32(c: Ctx, what: string): number {
  need(c, c.pos, 4, what);
  const x = c.v.getUint32(c.pos);
  c.pos += 4;
  return x;
}

function xdrI32(c: Ctx, what: string): number {
  need(c, c.pos, 4, what);
  const x = c.v.getInt32(c.pos);
  c.pos += 4;
  return x;
}

/** `NVS_XDR_MAX_LEN()`: the largest decode size plausible with `avail` bytes left. */
function xdrMaxLen(avail: number): number {
  const data = avail <= 20 ? 0 : avail - 20;
  return MIN_PAIR + data * 2 + align4(Math.floor(data / 4));
}

/** `xdr_string()`: a length, the bytes, zero padding; no NUL inside, at most `max` bytes. */
function xdrStringBytes(c: Ctx, max: number, what: string): Uint8Array {
  const at = c.pos;
  const len = xdrU32(c, `${what} length`);
  if (len > max) fail(c, at, `${what} length ${len} exceeds the room of ${Math.max(max, 0)}`);
  const padded = align4(len);
  need(c, c.pos, padded, what);
  const s = c.b.subarray(c.pos, c.pos + len);
  const nul = s.indexOf(0);
  if (nul >= 0) fail(c, c.pos + nul, `${what} contains a NUL byte`);
  for (let i = c.pos + len; i < c.pos + padded; i++) {
    if (c.b[i] !== 0) fail(c, i, `${what}: non-zero padding`);
  }
  c.pos += padded;
  return s;
}

/** One XDR integer unit of `width` bytes (1, 2 or 4) holding an int/uint/boolean_t. */
function xdrSmall(c: Ctx, ti: TypeInfo, what: string): number | boolean {
  const at = c.pos;
  const raw = xdrU32(c, what);
  if (ti.kind === "bool") {
    if (raw > 1) fail(c, at, `${what}: boolean ${raw | 0} is neither 0 nor 1`);
    return raw === 1;
  }
  if (ti.width === 4) return ti.kind === "int" ? raw | 0 : raw;
  // char and short travel in a 4-byte unit: the kernel writes them zero-extended, userland
  // (libtirpc) sign-extends signed ones; take either, refuse anything else.
  const bits = ti.width * 8;
  const max = 2 ** bits - 1;
  if (raw > max && raw < 2 ** 32 - 2 ** (bits - 1)) {
    fail(c, at, `${what}: 0x${raw.toString(16)} does not fit ${bits} bits`);
  }
  const low = raw & max;
  return ti.kind === "int" && low >= 2 ** (bits - 1) ? low - 2 ** bits : low;
}

function xdrBig(c: Ctx, ti: TypeInfo, what: string): bigint {
  need(c, c.pos, 8, what);
  const x = c.v.getBigUint64(c.pos);
  c.pos += 8;
  return ti.kind === "int" ? BigInt.asIntN(64, x) : x;
}

/** A list and the size `nvs_xdr_nvlist()` + `nvs_xdr_nvp_size()` compute for it. */
function xdrList(c: Ctx, depth: number): [NvList, number] {
  const version = xdrI32(c, "nvlist version");
  const nvflag = xdrU32(c, "nvlist flags");
  const pairs: NvPair[] = [];
  let total = 16;
  for (;;) {
    const at = c.pos;
    const encodeSize = xdrI32(c, "pair encode size");
    const decodeSize = xdrI32(c, "pair decode size");
    if (decodeSize === 0) {
      if (c.strict && encodeSize !== 0) fail(c, at, `end of list with encode size ${encodeSize}`);
      break;
    }
    const avail = c.b.length - c.pos;
    if (decodeSize < 0 || decodeSize > xdrMaxLen(avail)) {
      fail(c, at + 4, `pair decode size ${decodeSize} is impossible with ${avail} bytes left`);
    }
    if (decodeSize < MIN_PAIR) {
      fail(c, at + 4, `pair decode size ${decodeSize} is below the minimum ${MIN_PAIR}`);
    }
    const [pair, expected] = xdrPair(c, at, decodeSize, depth);
    if (c.strict && encodeSize !== expected) {
      fail(c, at, `pair ${quote(pair.name)}: encode size ${encodeSize}, expected ${expected}`);
    }
    pairs.push(pair);
    total += expected;
  }
  return [makeList(version, nvflag, pairs), total];
}

/** A pair and its encode size as libnvpair computes it. */
function xdrPair(c: Ctx, at: number, decodeSize: number, depth: number): [NvPair, number] {
  // The name must fit the pair's buffer after the 16-byte nvpair_t, with its NUL.
  const nameBytes = xdrStringBytes(c, decodeSize - 17, "pair name");
  const nameSz = nameBytes.length + 1;
  if (nameSz > 0x7fff) fail(c, at + 8, `pair name of ${nameBytes.length} bytes is too long`);
  const name = utf8Decoder.decode(nameBytes);
  const typeAt = c.pos;
  const type = xdrI32(c, "pair type");
  const nelem = xdrI32(c, "pair element count") >>> 0;
  const what = `pair ${quote(name)}`;
  const ti = checkTypeNelem(c, typeAt, type, nelem);
  const valoff = align8(16 + nameSz);
  const valueAt = c.pos;
  let encodeSize = 20 + align4(nameBytes.length);
  let value: unknown;
  let size: number;
  if (ti.kind === "flag") {
    value = true;
    size = 0;
  } else if (nelem === 0) {
    // Empty arrays carry nothing, not even an XDR array count (which libnvpair counts in the
    // encode size all the same).
    value = isByteArrayType(type) ? new Uint8Array(0) : [];
    size = 0;
    if (ti.kind !== "str" && ti.kind !== "list" && type !== DATA_TYPE.BYTE_ARRAY) encodeSize += 4;
  } else if (ti.kind === "str" && !ti.array) {
    const s = xdrStringBytes(c, decodeSize - valoff - 1, what);
    value = utf8Decoder.decode(s);
    size = s.length + 1;
    encodeSize += 4 + align4(s.length);
  } else if (ti.kind === "str") {
    need(c, c.pos, 4 * nelem, what);
    const strs: string[] = [];
    size = 8 * nelem;
    for (let i = 0; i < nelem; i++) {
      const s = xdrStringBytes(c, c.b.length, `${what}[${i}]`);
      strs.push(utf8Decoder.decode(s));
      size += s.length + 1;
      encodeSize += 4 + align4(s.length);
    }
    value = strs;
  } else if (ti.kind === "list") {
    checkDepth(c, valueAt, depth + 1);
    if (!ti.array) {
      const [l, n] = xdrList(c, depth + 1);
      value = l;
      encodeSize += n;
      size = 24;
    } else {
      need(c, c.pos, 16 * nelem, what);
      const lists: NvList[] = [];
      for (let i = 0; i < nelem; i++) {
        const [l, n] = xdrList(c, depth + 1);
        lists.push(l);
        encodeSize += n;
      }
      value = lists;
      size = 32 * nelem;
    }
  } else if (type === DATA_TYPE.BYTE_ARRAY) {
    // xdr_opaque(): the bytes, zero padding, no count.
    const padded = align4(nelem);
    need(c, c.pos, padded, what);
    value = c.b.slice(c.pos, c.pos + nelem);
    for (let i = c.pos + nelem; i < c.pos + padded; i++) {
      if (c.b[i] !== 0) fail(c, i, `${what}: non-zero padding`);
    }
    c.pos += padded;
    size = nelem;
    encodeSize += padded;
  } else if (!ti.array) {
    value = ti.width === 8
      ? (ti.kind === "f64" ? xdrDouble(c, what) : xdrBig(c, ti, what))
      : xdrSmall(c, ti, what);
    size = ti.width;
    encodeSize += ti.width === 8 ? 8 : 4;
  } else {
    const countAt = c.pos;
    const count = xdrU32(c, `${what} array count`);
    if (count !== nelem) fail(c, countAt, `${what}: array count ${count}, expected ${nelem}`);
    const unit = ti.width === 8 ? 8 : 4;
    need(c, c.pos, unit * nelem, what);
    if (ti.width === 8) {
      const arr: bigint[] = [];
      for (let i = 0; i < nelem; i++) arr.push(xdrBig(c, ti, `${what}[${i}]`));
      value = arr;
    } else if (isByteArrayType(type)) {
      const arr = new Uint8Array(nelem);
      for (let i = 0; i < nelem; i++) arr[i] = xdrSmall(c, ti, `${what}[${i}]`) as number;
      value = arr;
    } else {
      const arr: (number | boolean)[] = [];
      for (let i = 0; i < nelem; i++) arr.push(xdrSmall(c, ti, `${what}[${i}]`));
      value = arr;
    }
    size = ti.width * nelem;
    encodeSize += 4 + unit * nelem;
  }
  // `i_validate_nvpair()`: the decode size must be exactly what the pair needs in memory.
  const expected = valoff + align8(size);
  if (decodeSize !== expected) {
    fail(c, at + 4, `${what}: decode size ${decodeSize}, expected ${expected}`);
  }
  return [{ name, type, value } as NvPair, encodeSize];
}

function xdrDouble(c: Ctx, what: string): number {
  need(c, c.pos, 8, what);
  const x = c.v.getFloat64(c.pos);
  c.pos += 8;
  return x;
}

// --- NATIVE ----------------------------------------------------------------------------------

/** Pairs from `at` up to and including the 4-byte zero that ends the list. */
function nativePairs(c: Ctx, at: number, depth: number): [NvPair[], number] {
  const pairs: NvPair[] = [];
  let pos = at;
  for (;;) {
    need(c, pos, 4, "pair size");
    const size = c.v.getInt32(pos, c.le);
    if (size === 0) return [pairs, pos + 4];
    const left = c.b.length - pos;
    if (size < 0 || size > left) fail(c, pos, `pair size ${size} exceeds the ${left} bytes left`);
    if (size < MIN_PAIR) fail(c, pos, `pair size ${size} is below the minimum ${MIN_PAIR}`);
    const [pair, next] = nativePair(c, pos, size, depth);
    pairs.push(pair);
    pos = next;
  }
}

function nativeScalar(c: Ctx, ti: TypeInfo, at: number, what: string): number | bigint | boolean {
  const v = c.v;
  const le = c.le;
  switch (ti.kind) {
    case "bool": {
      const x = v.getInt32(at, le);
      if (x !== 0 && x !== 1) fail(c, at, `${what}: boolean ${x} is neither 0 nor 1`);
      return x === 1;
    }
    case "f64":
      return v.getFloat64(at, le);
    case "int":
      switch (ti.width) {
        case 1:
          return v.getInt8(at);
        case 2:
          return v.getInt16(at, le);
        case 4:
          return v.getInt32(at, le);
        default:
          return v.getBigInt64(at, le);
      }
    default:
      switch (ti.width) {
        case 1:
          return v.getUint8(at);
        case 2:
          return v.getUint16(at, le);
        case 4:
          return v.getUint32(at, le);
        default:
          return v.getBigUint64(at, le);
      }
  }
}

function nativePair(c: Ctx, at: number, size: number, depth: number): [NvPair, number] {
  const nameSz = c.v.getInt16(at + 4, c.le);
  const nelem = c.v.getInt32(at + 8, c.le) >>> 0;
  const type = c.v.getInt32(at + 12, c.le);
  // `i_validate_nvpair_name()`
  if (nameSz <= 0) fail(c, at + 4, `pair name size ${nameSz}`);
  const valoff = align8(16 + nameSz);
  if (size < valoff) fail(c, at, `pair size ${size} leaves no room for a ${nameSz}-byte name`);
  const nameAt = at + 16;
  const nul = c.b.subarray(nameAt, nameAt + nameSz).indexOf(0);
  if (nul !== nameSz - 1) {
    fail(c, nameAt, nul < 0 ? "pair name is not NUL-terminated" : "pair name contains a NUL");
  }
  const name = utf8Decoder.decode(c.b.subarray(nameAt, nameAt + nameSz - 1));
  const what = `pair ${quote(name)}`;
  const ti = checkTypeNelem(c, at + 12, type, nelem);
  // The value without its strings must fit the pair.
  const fixed = fixedValueSize(ti, nelem);
  if (valoff + align8(fixed) > size) {
    fail(c, at, `${what}: pair size ${size} cannot hold the ${fixed}-byte value`);
  }
  const vs = at + valoff;
  const ve = at + size;
  let next = at + size;
  let value: unknown;
  let vsize: number;
  if (ti.kind === "flag") {
    value = true;
    vsize = 0;
  } else if (ti.kind === "str") {
    if (!ti.array) {
      const end = c.b.subarray(vs, ve).indexOf(0);
      if (end < 0) fail(c, vs, `${what}: string is not NUL-terminated`);
      value = utf8Decoder.decode(c.b.subarray(vs, vs + end));
      vsize = end + 1;
    } else {
      // A table of nelem (meaningless) pointers, then the strings.
      let p = vs + 8 * nelem;
      const strs: string[] = [];
      for (let i = 0; i < nelem; i++) {
        const end = p < ve ? c.b.subarray(p, ve).indexOf(0) : -1;
        if (end < 0) fail(c, p, `${what}[${i}]: string is not NUL-terminated`);
        strs.push(utf8Decoder.decode(c.b.subarray(p, p + end)));
        p += end + 1;
      }
      value = strs;
      vsize = p - vs;
    }
  } else if (ti.kind === "list") {
    checkDepth(c, vs, depth + 1);
    const count = ti.array ? nelem : 1;
    // nvlist_t headers (after the pointer table of an array), then each list's pairs follow
    // the pair itself.
    const headers = ti.array ? vs + 8 * nelem : vs;
    const lists: NvList[] = [];
    for (let i = 0; i < count; i++) {
      const h = headers + 24 * i;
      const version = c.v.getInt32(h, c.le);
      if (version !== 0) fail(c, h, `${what}: embedded nvlist version ${version}`);
      const nvflag = c.v.getUint32(h + 4, c.le);
      const [pairs, after] = nativePairs(c, next, depth + 1);
      lists.push(makeList(version, nvflag, pairs));
      next = after;
    }
    value = ti.array ? lists : lists[0];
    vsize = fixed;
  } else if (!ti.array) {
    value = nativeScalar(c, ti, vs, what);
    vsize = ti.width;
  } else if (isByteArrayType(type)) {
    value = c.b.slice(vs, vs + nelem);
    vsize = nelem;
  } else {
    const arr: (number | bigint | boolean)[] = [];
    for (let i = 0; i < nelem; i++) {
      arr.push(nativeScalar(c, ti, vs + ti.width * i, `${what}[${i}]`));
    }
    value = arr;
    vsize = ti.width * nelem;
  }
  // `i_validate_nvpair()`: the pair size must be exactly what the value needs.
  if (size - valoff !== align8(vsize)) {
    fail(c, at, `${what}: pair size ${size}, expected ${valoff + align8(vsize)}`);
  }
  return [{ name, type, value } as NvPair, next];
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/**
 * Options of {@link encodeNvlist}.
 *
 * @example
 * ```ts
 * import type { EncodeOptions } from "jsr:@zsend/zsend";
 * const o: EncodeOptions = { encoding: "native", littleEndian: false };
 * if (o.encoding !== "native") throw new Error();
 * ```
 */
export interface EncodeOptions {
  /** `"xdr"` (default: what `zfs send` writes for its headers) or `"native"`. */
  encoding?: "xdr" | "native";
  /**
   * The byte order written in the header's endian byte and, for NATIVE, used for every field
   * (default `true`: little-endian).
   */
  littleEndian?: boolean;
  /** Deepest nesting of embedded nvlists allowed (default 100). */
  maxDepth?: number;
  /**
   * XDR only: write BYTE, INT8, UINT8 (and their arrays) and INT16 (and its array) values
   * sign-extended to their 4-byte unit, as userland libnvpair over libtirpc does on x86
   * (`zfs send -R` headers), instead of zero-extended as the kernel does (the default). The
   * kernel's decoder refuses sign-extended units; userland decoders take both.
   */
  xdrSignExtend?: boolean;
}

/** A pair checked and measured for encoding. */
interface Prepared {
  pair: NvPair;
  name: Uint8Array;
  ti: TypeInfo;
  nelem: number;
  /** Strings as UTF-8 (STRING: one). */
  strs: Uint8Array[];
  /** Lists of NVLIST / NVLIST_ARRAY. */
  lists: PreparedList[];
  /** Bytes of the value in memory (`i_get_value_size()`). */
  vsize: number;
  /** The XDR encode size libnvpair computes (`nvs_xdr_nvp_size()`). */
  xdrSize: number;
}

interface PreparedList {
  version: number;
  nvflag: number;
  pairs: Prepared[];
  /** Its XDR size: version, flags, pairs, end. */
  xdrSize: number;
}

function where(path: string): string {
  return path === "" ? "nvlist" : `nvlist pair ${quote(path)}`;
}

function checkInt(ok: boolean, path: string, what: string): void {
  if (!ok) throw new RangeError(`${where(path)}: ${what}`);
}

function encodeText(s: unknown, path: string, what: string): Uint8Array {
  if (typeof s !== "string") throw new TypeError(`${where(path)}: ${what} is not a string`);
  if (s.includes("\0")) throw new RangeError(`${where(path)}: ${what} contains a NUL`);
  return utf8Encoder.encode(s);
}

function checkElement(ti: TypeInfo, x: unknown, path: string): void {
  if (ti.kind === "bool") {
    if (typeof x !== "boolean") throw new TypeError(`${where(path)}: not a boolean`);
  } else if (ti.kind === "f64") {
    if (typeof x !== "number") throw new TypeError(`${where(path)}: not a number`);
  } else if (ti.width === 8) {
    if (typeof x !== "bigint") throw new TypeError(`${where(path)}: not a bigint`);
    const ok = ti.kind === "int" ? BigInt.asIntN(64, x) === x : BigInt.asUintN(64, x) === x;
    checkInt(ok, path, `${x} does not fit ${ti.kind}64`);
  } else {
    if (typeof x !== "number") throw new TypeError(`${where(path)}: not a number`);
    const bits = ti.width * 8;
    const [lo, hi] = ti.kind === "int"
      ? [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1]
      : [0, 2 ** bits - 1];
    checkInt(
      Number.isInteger(x) && x >= lo && x <= hi,
      path,
      `${x} does not fit ${ti.kind}${bits}`,
    );
  }
}

function prepareList(list: NvList, path: string, depth: number, maxDepth: number): PreparedList {
  if (depth > maxDepth) throw new RangeError(`${where(path)}: nested more than ${maxDepth} deep`);
  if (typeof list !== "object" || list === null || !Array.isArray(list.pairs)) {
    throw new TypeError(`${where(path)}: not an nvlist`);
  }
  const version = list.version ?? 0;
  const nvflag = list.nvflag ?? NV_UNIQUE_NAME;
  checkInt(Number.isInteger(version) && version === (version | 0), path, `version ${version}`);
  checkInt(Number.isInteger(nvflag) && nvflag === nvflag >>> 0, path, `nvflag ${nvflag}`);
  const prefix = path === "" ? "" : `${path}.`;
  const pairs = list.pairs.map((p) => preparePair(p, prefix, depth, maxDepth));
  let xdrSize = 16;
  for (const p of pairs) xdrSize += p.xdrSize;
  return { version, nvflag, pairs, xdrSize };
}

function preparePair(pair: NvPair, prefix: string, depth: number, maxDepth: number): Prepared {
  if (typeof pair !== "object" || pair === null) {
    throw new TypeError(`nvlist: pair is not an object`);
  }
  const path = `${prefix}${String(pair.name)}`;
  const name = encodeText(pair.name, path, "name");
  if (name.length + 1 > 0x7fff) throw new RangeError(`${where(path)}: name is too long`);
  const ti = typeInfo(pair.type);
  if (ti === undefined) {
    throw new RangeError(`${where(path)}: unknown data type ${pair.type}`);
  }
  const value: unknown = pair.value;
  const strs: Uint8Array[] = [];
  const lists: PreparedList[] = [];
  let nelem = 1;
  let vsize: number;
  if (ti.kind === "flag") {
    if (value !== true) throw new TypeError(`${where(path)}: a BOOLEAN's value must be true`);
    nelem = 0;
    vsize = 0;
  } else if (!ti.array) {
    if (ti.kind === "str") {
      strs.push(encodeText(value, path, "value"));
      vsize = strs[0]!.length + 1;
    } else if (ti.kind === "list") {
      lists.push(prepareList(value as NvList, path, depth + 1, maxDepth));
      vsize = 24;
    } else {
      checkElement(ti, value, path);
      vsize = ti.width;
    }
  } else {
    if (isByteArrayType(pair.type)) {
      if (!(value instanceof Uint8Array)) throw new TypeError(`${where(path)}: not a Uint8Array`);
    } else if (!Array.isArray(value)) {
      throw new TypeError(`${where(path)}: not an array`);
    }
    const arr = value as ArrayLike<unknown>;
    nelem = arr.length;
    if (ti.kind === "str") {
      vsize = 8 * nelem;
      for (let i = 0; i < nelem; i++) {
        const s = encodeText(arr[i], `${path}[${i}]`, "value");
        strs.push(s);
        vsize += s.length + 1;
      }
    } else if (ti.kind === "list") {
      for (let i = 0; i < nelem; i++) {
        lists.push(prepareList(arr[i] as NvList, `${path}[${i}]`, depth + 1, maxDepth));
      }
      vsize = 32 * nelem;
    } else {
      if (!isByteArrayType(pair.type)) {
        for (let i = 0; i < nelem; i++) checkElement(ti, arr[i], `${path}[${i}]`);
      }
      vsize = ti.width * nelem;
    }
  }
  if (align8(16 + name.length + 1) + align8(vsize) > INT32_MAX) {
    throw new RangeError(`${where(path)}: too large`);
  }
  const prepared = { pair, name, ti, nelem, strs, lists, vsize, xdrSize: 0 };
  prepared.xdrSize = xdrPreparedSize(prepared);
  return prepared;
}

/** `nvs_xdr_nvp_size()`: the encode size libnvpair computes for a pair. */
function xdrPreparedSize(p: Prepared): number {
  let n = 20 + align4(p.name.length);
  const ti = p.ti;
  if (ti.kind === "flag") return n;
  if (ti.kind === "str") {
    for (const s of p.strs) n += 4 + align4(s.length);
  } else if (ti.kind === "list") {
    for (const l of p.lists) n += l.xdrSize;
  } else if (p.pair.type === DATA_TYPE.BYTE_ARRAY) {
    n += align4(p.nelem);
  } else if (!ti.array) {
    n += ti.width === 8 ? 8 : 4;
  } else {
    // The 4 bytes of the array count are counted even when an empty array writes nothing.
    n += 4 + (ti.width === 8 ? 8 : 4) * p.nelem;
  }
  return n;
}

/** A growing output buffer. */
class Out {
  buf = new Uint8Array(256);
  view = new DataView(this.buf.buffer);
  n = 0;

  constructor(readonly le: boolean) {}

  room(k: number): number {
    if (this.n + k > this.buf.length) {
      const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
      bigger.set(this.buf.subarray(0, this.n));
      this.buf = bigger;
      this.view = new DataView(bigger.buffer);
    }
    const at = this.n;
    this.n += k;
    return at;
  }

  // Each writer reserves its room before touching `buf` or `view`, which room() may replace.
  u8(x: number): void {
    const at = this.room(1);
    this.buf[at] = x;
  }

  i16(x: number, le = this.le): void {
    const at = this.room(2);
    this.view.setInt16(at, x, le);
  }

  u32(x: number, le = this.le): void {
    const at = this.room(4);
    this.view.setUint32(at, x >>> 0, le);
  }

  u64(x: bigint, le = this.le): void {
    const at = this.room(8);
    this.view.setBigUint64(at, BigInt.asUintN(64, x), le);
  }

  f64(x: number, le = this.le): void {
    const at = this.room(8);
    this.view.setFloat64(at, x, le);
  }

  bytes(b: Uint8Array): void {
    const at = this.room(b.length);
    this.buf.set(b, at);
  }

  zeros(k: number): void {
    this.room(k); // fresh room is zero: buffers only grow and are never rewound
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.n);
  }
}

/**
 * Packs an nvlist as `nvlist_pack()` does, byte for byte: XDR (the default, as `zfs send`
 * writes its headers) or NATIVE in either byte order. Every data type is supported. The
 * XDR length is the one libnvpair computes, which counts 4 bytes for the count of an empty
 * numeric array although none is written: such lists end in that many zero bytes.
 *
 * @example
 * ```ts
 * import { DATA_TYPE, decodeNvlist, encodeNvlist } from "jsr:@zsend/zsend";
 * const list = { pairs: [{ name: "guid", type: DATA_TYPE.UINT64, value: 7n }] } as const;
 * const xdr = encodeNvlist({ pairs: [...list.pairs] });
 * // header, version, nvflag, encode size 32, decode size 32, ...
 * if (xdr[0] !== 1 || xdr.length !== 4 + 8 + 32 + 8) throw new Error();
 * const native = encodeNvlist({ pairs: [...list.pairs] }, { encoding: "native" });
 * const back = decodeNvlist(native).pairs[0];
 * if (back?.type !== DATA_TYPE.UINT64 || back.value !== 7n) throw new Error();
 * ```
 *
 * @throws {TypeError} when a value has the wrong JavaScript type for its data type
 * @throws {RangeError} when a number is out of its type's range, a name or string holds a NUL,
 * a name is too long, or nesting is too deep
 */
export function encodeNvlist(list: NvList, options: EncodeOptions = {}): Uint8Array {
  const le = options.littleEndian ?? true;
  const prepared = prepareList(list, "", 0, options.maxDepth ?? DEFAULT_MAX_DEPTH);
  const out = new Out(le);
  if ((options.encoding ?? "xdr") === "xdr") {
    out.bytes(new Uint8Array([1, le ? 1 : 0, 0, 0]));
    xdrWriteList(out, prepared, options.xdrSignExtend ?? false);
    // nvlist_pack() returns the size it computed, zero-filled past what it wrote.
    const total = 4 + prepared.xdrSize;
    out.zeros(total - out.n);
  } else {
    out.bytes(new Uint8Array([0, le ? 1 : 0, 0, 0]));
    out.u32(prepared.version);
    out.u32(prepared.nvflag);
    nativeWritePairs(out, prepared.pairs);
  }
  return out.result();
}

function xdrWriteList(out: Out, l: PreparedList, signExtend: boolean): void {
  out.u32(l.version, false);
  out.u32(l.nvflag, false);
  for (const p of l.pairs) xdrWritePair(out, p, signExtend);
  out.u32(0, false);
  out.u32(0, false);
}

function xdrWriteString(out: Out, s: Uint8Array): void {
  out.u32(s.length, false);
  out.bytes(s);
  out.zeros(align4(s.length) - s.length);
}

function xdrWriteSmall(out: Out, ti: TypeInfo, x: unknown, signExtend: boolean): void {
  const n = x as number;
  if (ti.kind === "bool") out.u32(x ? 1 : 0, false);
  // chars and shorts zero-extended, as the kernel writes them (every decoder takes that), or
  // as libtirpc's xdr_char() (every char type) and xdr_short() (INT16 only) on x86.
  else if (ti.width === 1) out.u32(signExtend ? (n << 24) >> 24 : n & 0xff, false);
  else if (ti.width === 2) {
    out.u32(signExtend && ti.kind === "int" ? (n << 16) >> 16 : n & 0xffff, false);
  } else out.u32(n, false);
}

function xdrWriteWide(out: Out, ti: TypeInfo, x: unknown): void {
  if (ti.kind === "f64") out.f64(x as number, false);
  else out.u64(x as bigint, false);
}

function xdrWritePair(out: Out, p: Prepared, signExtend: boolean): void {
  const ti = p.ti;
  out.u32(p.xdrSize, false);
  out.u32(align8(16 + p.name.length + 1) + align8(p.vsize), false);
  xdrWriteString(out, p.name);
  out.u32(p.pair.type, false);
  out.u32(p.nelem, false);
  if (p.nelem === 0) return;
  const value: unknown = p.pair.value;
  if (ti.kind === "str") {
    for (const s of p.strs) xdrWriteString(out, s);
  } else if (ti.kind === "list") {
    for (const l of p.lists) xdrWriteList(out, l, signExtend);
  } else if (p.pair.type === DATA_TYPE.BYTE_ARRAY) {
    const b = value as Uint8Array;
    out.bytes(b);
    out.zeros(align4(b.length) - b.length);
  } else if (!ti.array) {
    if (ti.width === 8) xdrWriteWide(out, ti, value);
    else xdrWriteSmall(out, ti, value, signExtend);
  } else {
    const arr = value as ArrayLike<unknown>;
    out.u32(p.nelem, false);
    for (let i = 0; i < p.nelem; i++) {
      if (ti.width === 8) xdrWriteWide(out, ti, arr[i]);
      else xdrWriteSmall(out, ti, arr[i], signExtend);
    }
  }
}

function nativeWriteElement(out: Out, ti: TypeInfo, x: unknown): void {
  if (ti.kind === "bool") out.u32(x ? 1 : 0);
  else if (ti.kind === "f64") out.f64(x as number);
  else if (ti.width === 8) out.u64(x as bigint);
  else if (ti.width === 4) out.u32(x as number);
  else if (ti.width === 2) out.i16(((x as number) << 16) >> 16);
  else out.u8((x as number) & 0xff);
}

function nativeWritePairs(out: Out, pairs: Prepared[]): void {
  for (const p of pairs) nativeWritePair(out, p);
  out.u32(0);
}

function nativeWritePair(out: Out, p: Prepared): void {
  const ti = p.ti;
  const valoff = align8(16 + p.name.length + 1);
  const start = out.n;
  out.u32(valoff + align8(p.vsize));
  out.i16(p.name.length + 1);
  out.i16(0);
  out.u32(p.nelem);
  out.u32(p.pair.type);
  out.bytes(p.name);
  out.zeros(valoff - 16 - p.name.length);
  const value: unknown = p.pair.value;
  if (ti.kind === "flag") {
    // no value
  } else if (ti.kind === "str") {
    if (ti.array) out.zeros(8 * p.nelem);
    for (const s of p.strs) {
      out.bytes(s);
      out.u8(0);
    }
  } else if (ti.kind === "list") {
    if (ti.array) out.zeros(8 * p.nelem);
    for (const l of p.lists) {
      out.u32(l.version);
      out.u32(l.nvflag);
      out.zeros(16);
    }
  } else if (isByteArrayType(p.pair.type)) {
    out.bytes(value as Uint8Array);
  } else if (!ti.array) {
    nativeWriteElement(out, ti, value);
  } else {
    const arr = value as ArrayLike<unknown>;
    for (let i = 0; i < p.nelem; i++) nativeWriteElement(out, ti, arr[i]);
  }
  out.zeros(start + valoff + align8(p.vsize) - out.n);
  for (const l of p.lists) nativeWritePairs(out, l.pairs);
}

// ---------------------------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------------------------

/**
 * `printf("%f")` of a double, exactly as glibc prints it: the exact binary value rounded to
 * 6 decimals, ties to even.
 */
function formatF(x: number): string {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, x);
  const negative = (dv.getUint8(0) & 0x80) !== 0;
  const sign = negative ? "-" : "";
  if (Number.isNaN(x)) return `${sign}nan`;
  if (!Number.isFinite(x)) return `${sign}inf`;
  const bits = dv.getBigUint64(0);
  const exp = Number((bits >> 52n) & 0x7ffn);
  const frac = bits & ((1n << 52n) - 1n);
  const m = exp === 0 ? frac : frac | (1n << 52n);
  const e = exp === 0 ? -1074 : exp - 1075;
  const scale = 1000000n;
  let q: bigint;
  if (e >= 0) {
    q = (m << BigInt(e)) * scale;
  } else {
    const k = BigInt(-e);
    const n = m * scale;
    q = n >> k;
    const r = n - (q << k);
    const half = 1n << (k - 1n);
    if (r > half || (r === half && (q & 1n) === 1n)) q += 1n;
  }
  return `${sign}${q / scale}.${(q % scale).toString().padStart(6, "0")}`;
}

function hex64(x: bigint): string {
  return BigInt.asUintN(64, x).toString(16);
}

function hex32(x: number): string {
  return (x >>> 0).toString(16);
}

/** The value text of one scalar or array element, as the default printers format it. */
function formatElement(type: number, x: unknown): string {
  switch (type) {
    case DATA_TYPE.BOOLEAN_VALUE:
    case DATA_TYPE.BOOLEAN_ARRAY:
      return x ? "1" : "0";
    case DATA_TYPE.BYTE:
    case DATA_TYPE.BYTE_ARRAY:
      return `0x${((x as number) & 0xff).toString(16).padStart(2, "0")}`;
    case DATA_TYPE.UINT8:
    case DATA_TYPE.UINT8_ARRAY:
      return `0x${((x as number) & 0xff).toString(16)}`;
    case DATA_TYPE.UINT16:
    case DATA_TYPE.UINT16_ARRAY:
      return `0x${((x as number) & 0xffff).toString(16)}`;
    case DATA_TYPE.UINT32:
    case DATA_TYPE.UINT32_ARRAY:
      return `0x${hex32(x as number)}`;
    case DATA_TYPE.UINT64:
    case DATA_TYPE.UINT64_ARRAY:
    case DATA_TYPE.HRTIME:
      return `0x${hex64(x as bigint)}`;
    case DATA_TYPE.DOUBLE:
      return `0x${formatF(x as number)}`;
    default:
      // INT8/16/32/64 and their arrays ("%d", "%lld"), STRING and STRING_ARRAY ("%s")
      return String(x);
  }
}

function printList(list: NvList, depth: number, out: string[]): void {
  const tabs = "\t".repeat(depth);
  const inner = tabs + "\t";
  out.push(`${tabs}nvlist version: ${list.version ?? 0}\n`);
  for (const pair of list.pairs) {
    const { name, type } = pair;
    const ti = typeInfo(type);
    if (ti === undefined) {
      out.push(` unknown data type (${type})`);
      continue;
    }
    if (type === DATA_TYPE.BOOLEAN) {
      out.push(`${inner}${name} = 1`);
    } else if (type === DATA_TYPE.NVLIST) {
      out.push(`${inner}${name} = (embedded nvlist)\n`);
      printList(pair.value, depth + 1, out);
      out.push(`${inner}(end ${name})\n`);
    } else if (type === DATA_TYPE.NVLIST_ARRAY) {
      out.push(`${inner}${name} = (array of embedded nvlists)\n`);
      pair.value.forEach((l, i) => {
        out.push(`${inner}(start ${name}[${i}])\n`);
        printList(l, depth + 1, out);
        out.push(`${inner}(end ${name}[${i}])\n`);
      });
    } else if (ti.array) {
      // All elements on one line; an empty array prints only the end of line.
      const arr = Array.from(pair.value as ArrayLike<unknown>, (x) => formatElement(type, x));
      if (arr.length > 0) out.push(`${inner}${name} = ${arr.join(" ")}`);
    } else {
      out.push(`${inner}${name} = ${formatElement(type, pair.value)}`);
    }
    out.push("\n");
  }
}

/**
 * The text libnvpair's `nvlist_print(stdout, nvl)` prints (what `zstream dump` shows for a
 * BEGIN nvlist): `nvlist version: 0`, then a tab-indented line per pair, `NAME = VALUE`:
 * uint64 and hrtime as `0x%llx`, uint8/16/32 as `0x%x`, byte as `0x%2.2x`, signed integers
 * and booleans in decimal, doubles as `0x%f`, strings as they are, array elements on one
 * line separated by spaces; embedded lists between `NAME = (embedded nvlist)` and
 * `(end NAME)` plus an empty line.
 *
 * @example
 * ```ts
 * import { DATA_TYPE, printNvlist } from "jsr:@zsend/zsend";
 * const text = printNvlist({
 *   pairs: [
 *     { name: "tosnap", type: DATA_TYPE.STRING, value: "r1" },
 *     { name: "snaps", type: DATA_TYPE.NVLIST, value: {
 *       pairs: [{ name: "r1", type: DATA_TYPE.UINT64, value: 0xbeefn }],
 *     } },
 *   ],
 * });
 * const expected = "nvlist version: 0\n\ttosnap = r1\n\tsnaps = (embedded nvlist)\n" +
 *   "\tnvlist version: 0\n\t\tr1 = 0xbeef\n\t(end snaps)\n\n";
 * if (text !== expected) throw new Error(text);
 * ```
 */
export function printNvlist(list: NvList): string {
  const out: string[] = [];
  printList(list, 0, out);
  return out.join("");
}

// ---------------------------------------------------------------------------------------------
// Lookups
// ---------------------------------------------------------------------------------------------

/**
 * Finds a pair as libnvpair's lookups do: the last pair of that name (and of that type, when
 * given). When the list's flags make names unique (`NV_UNIQUE_NAME` without
 * `NV_UNIQUE_NAME_TYPE`) an earlier pair of the same name is hidden even when the last one
 * has another type, as in libnvpair.
 *
 * @example
 * ```ts
 * import { DATA_TYPE, nvlistLookup } from "./nvlist.ts";
 * const list = { pairs: [
 *   { name: "a", type: DATA_TYPE.UINT64, value: 1n },
 *   { name: "a", type: DATA_TYPE.UINT64, value: 2n },
 * ] } as const;
 * const p = nvlistLookup({ pairs: [...list.pairs] }, "a");
 * if (p?.value !== 2n) throw new Error();
 * if (nvlistLookup({ pairs: [...list.pairs] }, "a", DATA_TYPE.STRING) !== undefined) {
 *   throw new Error();
 * }
 * ```
 */
export function nvlistLookup(list: NvList, name: string, type?: DataType): NvPair | undefined {
  const nvflag = list.nvflag ?? NV_UNIQUE_NAME;
  const byNameOnly = (nvflag & NV_UNIQUE_NAME_TYPE) === 0 && (nvflag & NV_UNIQUE_NAME) !== 0;
  for (let i = list.pairs.length - 1; i >= 0; i--) {
    const p = list.pairs[i]!;
    if (p.name !== name) continue;
    if (type === undefined || p.type === type) return p;
    if (byNameOnly) return undefined;
  }
  return undefined;
}

/**
 * The value of the pair of that name and type (see {@link nvlistLookup}), typed after
 * `type`, or `undefined`.
 *
 * @example
 * ```ts
 * import { DATA_TYPE, nvlistGet } from "jsr:@zsend/zsend";
 * const list = { pairs: [{ name: "fromsnap", type: DATA_TYPE.STRING, value: "s1" } as const] };
 * const s: string | undefined = nvlistGet(list, "fromsnap", DATA_TYPE.STRING);
 * if (s !== "s1" || nvlistGet(list, "fromsnap", DATA_TYPE.UINT64) !== undefined) {
 *   throw new Error();
 * }
 * ```
 */
export function nvlistGet<T extends DataType>(
  list: NvList,
  name: string,
  type: T,
): NvValueOf<T> | undefined {
  return nvlistLookup(list, name, type)?.value as NvValueOf<T> | undefined;
}

/**
 * A plain value of {@link nvlistToObject}.
 *
 * @example
 * ```ts
 * import type { NvPlainValue } from "./nvlist.ts";
 * const v: NvPlainValue = { snaps: { s1: 1n } };
 * if (typeof v !== "object") throw new Error();
 * ```
 */
export type NvPlainValue =
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | number[]
  | bigint[]
  | boolean[]
  | string[]
  | NvObject
  | NvObject[];

/**
 * An nvlist as a plain object (see {@link nvlistToObject}).
 *
 * @example
 * ```ts
 * import type { NvObject } from "./nvlist.ts";
 * const o: NvObject = { tosnap: "r1", not_recursive: true };
 * if (o.tosnap !== "r1") throw new Error();
 * ```
 */
export interface NvObject {
  /** A pair's value by the pair's name. */
  [name: string]: NvPlainValue;
}

function defineOwn<T>(o: Record<string, T>, k: string, v: T): void {
  // defineProperty, so that a pair named "__proto__" stays an ordinary property
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/**
 * An nvlist as a plain object for convenient lookups: names to values, embedded lists
 * converted too, the last pair winning when a name repeats. BOOLEAN (a name without a value)
 * becomes `true`. Types are lost: keep the {@link NvList} when they matter.
 *
 * @example
 * ```ts
 * import { DATA_TYPE, nvlistToObject } from "./nvlist.ts";
 * const o = nvlistToObject({ pairs: [
 *   { name: "tosnap", type: DATA_TYPE.STRING, value: "r1" },
 *   { name: "fss", type: DATA_TYPE.NVLIST, value: {
 *     pairs: [{ name: "0x12", type: DATA_TYPE.NVLIST, value: {
 *       pairs: [{ name: "name", type: DATA_TYPE.STRING, value: "pool/fs" }],
 *     } }],
 *   } },
 * ] });
 * const fss = o.fss as Record<string, Record<string, unknown>>;
 * if (o.tosnap !== "r1" || fss["0x12"]?.name !== "pool/fs") throw new Error();
 * ```
 */
export function nvlistToObject(list: NvList): NvObject {
  const o: NvObject = {};
  for (const p of list.pairs) {
    let v: NvPlainValue;
    if (p.type === DATA_TYPE.NVLIST) v = nvlistToObject(p.value);
    else if (p.type === DATA_TYPE.NVLIST_ARRAY) v = p.value.map(nvlistToObject);
    else v = p.value;
    defineOwn(o, p.name, v);
  }
  return o;
}

/**
 * A JSON value (see {@link nvlistToJson}).
 *
 * @example
 * ```ts
 * import type { JsonValue } from "jsr:@zsend/zsend";
 * const v: JsonValue = { a: [1, "2", null] };
 * if (JSON.stringify(v) !== '{"a":[1,"2",null]}') throw new Error();
 * ```
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | {
  [key: string]: JsonValue;
};

/**
 * Which 64-bit pairs of an nvlist hold guids: `name` is the pair's, `path` the names of the
 * nvlists it lies in, outermost first.
 */
export type NvGuidTest = (name: string, path: readonly string[]) => boolean;

const hex2 = (b: number): string => b.toString(16).padStart(2, "0");

/**
 * An nvlist as a JSON-ready object, as zsend's `--json` outputs write it: 64-bit integers
 * (INT64, UINT64, HRTIME and their arrays) as decimal strings, those `guids` names as `0x` and
 * 16 lowercase hex digits; smaller integers as numbers; byte arrays (BYTE_ARRAY, UINT8_ARRAY)
 * as hex strings; non-finite doubles as strings; a BOOLEAN (a name without a value) as `true`.
 *
 * @param list the nvlist
 * @param guids which 64-bit pairs are guids (none when absent)
 * @returns the JSON-ready object
 * @example
 * ```ts
 * import { DATA_TYPE, nvlistToJson } from "jsr:@zsend/zsend";
 * const j = nvlistToJson({ pairs: [
 *   { name: "guid", type: DATA_TYPE.UINT64, value: 0xabcn },
 *   { name: "n", type: DATA_TYPE.UINT64, value: 5n },
 *   { name: "iv", type: DATA_TYPE.UINT8_ARRAY, value: new Uint8Array([0xab, 1]) },
 * ] }, (name) => name === "guid");
 * if (JSON.stringify(j) !== '{"guid":"0x0000000000000abc","n":"5","iv":"ab01"}') {
 *   throw new Error(JSON.stringify(j));
 * }
 * ```
 */
export function nvlistToJson(
  list: NvList,
  guids: NvGuidTest = () => false,
  path: readonly string[] = [],
): { [key: string]: JsonValue } {
  const o: { [key: string]: JsonValue } = {};
  for (const p of list.pairs) {
    const big = guids(p.name, path)
      ? (x: bigint) => "0x" + BigInt.asUintN(64, x).toString(16).padStart(16, "0")
      : (x: bigint) => x.toString();
    const inner = [...path, p.name];
    let v: JsonValue;
    switch (p.type) {
      case DATA_TYPE.NVLIST:
        v = nvlistToJson(p.value, guids, inner);
        break;
      case DATA_TYPE.NVLIST_ARRAY:
        v = p.value.map((l) => nvlistToJson(l, guids, inner));
        break;
      case DATA_TYPE.INT64:
      case DATA_TYPE.UINT64:
      case DATA_TYPE.HRTIME:
        v = big(p.value);
        break;
      case DATA_TYPE.INT64_ARRAY:
      case DATA_TYPE.UINT64_ARRAY:
        v = p.value.map(big);
        break;
      case DATA_TYPE.BYTE_ARRAY:
      case DATA_TYPE.UINT8_ARRAY:
        v = Array.from(p.value, hex2).join("");
        break;
      case DATA_TYPE.DOUBLE:
        v = Number.isFinite(p.value) ? p.value : String(p.value);
        break;
      default:
        v = p.value;
    }
    defineOwn(o, p.name, v);
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

/** A constructor of pairs of one data type. */
export type PairMaker<T extends DataType> = (name: string, value: NvValueOf<T>) => NvPairOf<T>;

function mk<T extends DataType>(type: T): PairMaker<T> {
  return (name: string, value: NvValueOf<T>): NvPairOf<T> => ({ name, type, value }) as NvPairOf<T>;
}

/** The pair constructors of {@linkcode nv}: one per data type, and `list`. */
export interface NvBuilders {
  /** A list of these pairs (version 0, `NV_UNIQUE_NAME`). */
  list: (...pairs: NvPair[]) => NvList;
  /** DATA_TYPE_BOOLEAN: a name with no value. */
  boolean: (name: string) => NvPairOf<typeof DATA_TYPE.BOOLEAN>;
  /** DATA_TYPE_BYTE */
  byte: PairMaker<typeof DATA_TYPE.BYTE>;
  /** DATA_TYPE_INT16 */
  int16: PairMaker<typeof DATA_TYPE.INT16>;
  /** DATA_TYPE_UINT16 */
  uint16: PairMaker<typeof DATA_TYPE.UINT16>;
  /** DATA_TYPE_INT32 */
  int32: PairMaker<typeof DATA_TYPE.INT32>;
  /** DATA_TYPE_UINT32 */
  uint32: PairMaker<typeof DATA_TYPE.UINT32>;
  /** DATA_TYPE_INT64 */
  int64: PairMaker<typeof DATA_TYPE.INT64>;
  /** DATA_TYPE_UINT64 */
  uint64: PairMaker<typeof DATA_TYPE.UINT64>;
  /** DATA_TYPE_STRING */
  string: PairMaker<typeof DATA_TYPE.STRING>;
  /** DATA_TYPE_BYTE_ARRAY */
  byteArray: PairMaker<typeof DATA_TYPE.BYTE_ARRAY>;
  /** DATA_TYPE_INT16_ARRAY */
  int16Array: PairMaker<typeof DATA_TYPE.INT16_ARRAY>;
  /** DATA_TYPE_UINT16_ARRAY */
  uint16Array: PairMaker<typeof DATA_TYPE.UINT16_ARRAY>;
  /** DATA_TYPE_INT32_ARRAY */
  int32Array: PairMaker<typeof DATA_TYPE.INT32_ARRAY>;
  /** DATA_TYPE_UINT32_ARRAY */
  uint32Array: PairMaker<typeof DATA_TYPE.UINT32_ARRAY>;
  /** DATA_TYPE_INT64_ARRAY */
  int64Array: PairMaker<typeof DATA_TYPE.INT64_ARRAY>;
  /** DATA_TYPE_UINT64_ARRAY */
  uint64Array: PairMaker<typeof DATA_TYPE.UINT64_ARRAY>;
  /** DATA_TYPE_STRING_ARRAY */
  stringArray: PairMaker<typeof DATA_TYPE.STRING_ARRAY>;
  /** DATA_TYPE_HRTIME */
  hrtime: PairMaker<typeof DATA_TYPE.HRTIME>;
  /** DATA_TYPE_NVLIST */
  nvlist: PairMaker<typeof DATA_TYPE.NVLIST>;
  /** DATA_TYPE_NVLIST_ARRAY */
  nvlistArray: PairMaker<typeof DATA_TYPE.NVLIST_ARRAY>;
  /** DATA_TYPE_BOOLEAN_VALUE */
  booleanValue: PairMaker<typeof DATA_TYPE.BOOLEAN_VALUE>;
  /** DATA_TYPE_INT8 */
  int8: PairMaker<typeof DATA_TYPE.INT8>;
  /** DATA_TYPE_UINT8 */
  uint8: PairMaker<typeof DATA_TYPE.UINT8>;
  /** DATA_TYPE_BOOLEAN_ARRAY */
  booleanArray: PairMaker<typeof DATA_TYPE.BOOLEAN_ARRAY>;
  /** DATA_TYPE_INT8_ARRAY */
  int8Array: PairMaker<typeof DATA_TYPE.INT8_ARRAY>;
  /** DATA_TYPE_UINT8_ARRAY */
  uint8Array: PairMaker<typeof DATA_TYPE.UINT8_ARRAY>;
  /** DATA_TYPE_DOUBLE */
  double: PairMaker<typeof DATA_TYPE.DOUBLE>;
}

/**
 * Pair constructors, one per data type, and `nv.list(...pairs)` for a list.
 *
 * @example
 * ```ts
 * import { decodeNvlist, encodeNvlist, nv, printNvlist } from "jsr:@zsend/zsend";
 * const list = nv.list(
 *   nv.string("tosnap", "r1"),
 *   nv.boolean("not_recursive"),
 *   nv.nvlist("snaps", nv.list(nv.uint64("r1", 0x10n))),
 * );
 * const text = printNvlist(decodeNvlist(encodeNvlist(list)));
 * if (!text.includes("\tnot_recursive = 1\n") || !text.includes("\t\tr1 = 0x10\n")) {
 *   throw new Error(text);
 * }
 * ```
 */
export const nv: NvBuilders = {
  /** A list of these pairs (version 0, `NV_UNIQUE_NAME`). */
  list: (...pairs: NvPair[]): NvList => ({ pairs }),
  /** DATA_TYPE_BOOLEAN: a name with no value. */
  boolean: (name: string): NvPairOf<typeof DATA_TYPE.BOOLEAN> => ({
    name,
    type: DATA_TYPE.BOOLEAN,
    value: true,
  }),
  /** DATA_TYPE_BYTE */
  byte: mk(DATA_TYPE.BYTE),
  /** DATA_TYPE_INT16 */
  int16: mk(DATA_TYPE.INT16),
  /** DATA_TYPE_UINT16 */
  uint16: mk(DATA_TYPE.UINT16),
  /** DATA_TYPE_INT32 */
  int32: mk(DATA_TYPE.INT32),
  /** DATA_TYPE_UINT32 */
  uint32: mk(DATA_TYPE.UINT32),
  /** DATA_TYPE_INT64 */
  int64: mk(DATA_TYPE.INT64),
  /** DATA_TYPE_UINT64 */
  uint64: mk(DATA_TYPE.UINT64),
  /** DATA_TYPE_STRING */
  string: mk(DATA_TYPE.STRING),
  /** DATA_TYPE_BYTE_ARRAY */
  byteArray: mk(DATA_TYPE.BYTE_ARRAY),
  /** DATA_TYPE_INT16_ARRAY */
  int16Array: mk(DATA_TYPE.INT16_ARRAY),
  /** DATA_TYPE_UINT16_ARRAY */
  uint16Array: mk(DATA_TYPE.UINT16_ARRAY),
  /** DATA_TYPE_INT32_ARRAY */
  int32Array: mk(DATA_TYPE.INT32_ARRAY),
  /** DATA_TYPE_UINT32_ARRAY */
  uint32Array: mk(DATA_TYPE.UINT32_ARRAY),
  /** DATA_TYPE_INT64_ARRAY */
  int64Array: mk(DATA_TYPE.INT64_ARRAY),
  /** DATA_TYPE_UINT64_ARRAY */
  uint64Array: mk(DATA_TYPE.UINT64_ARRAY),
  /** DATA_TYPE_STRING_ARRAY */
  stringArray: mk(DATA_TYPE.STRING_ARRAY),
  /** DATA_TYPE_HRTIME */
  hrtime: mk(DATA_TYPE.HRTIME),
  /** DATA_TYPE_NVLIST */
  nvlist: mk(DATA_TYPE.NVLIST),
  /** DATA_TYPE_NVLIST_ARRAY */
  nvlistArray: mk(DATA_TYPE.NVLIST_ARRAY),
  /** DATA_TYPE_BOOLEAN_VALUE */
  booleanValue: mk(DATA_TYPE.BOOLEAN_VALUE),
  /** DATA_TYPE_INT8 */
  int8: mk(DATA_TYPE.INT8),
  /** DATA_TYPE_UINT8 */
  uint8: mk(DATA_TYPE.UINT8),
  /** DATA_TYPE_BOOLEAN_ARRAY */
  booleanArray: mk(DATA_TYPE.BOOLEAN_ARRAY),
  /** DATA_TYPE_INT8_ARRAY */
  int8Array: mk(DATA_TYPE.INT8_ARRAY),
  /** DATA_TYPE_UINT8_ARRAY */
  uint8Array: mk(DATA_TYPE.UINT8_ARRAY),
  /** DATA_TYPE_DOUBLE */
  double: mk(DATA_TYPE.DOUBLE),
} as const;
