/**
 * The text of `zstream dump`: each record as the newest OpenZFS `zstream dump` prints it, the
 * payload hex of `-d`, and the SUMMARY block (`json.ts` has the records as JSON).
 *
 * @module
 */

import { DRR, DRR_NUMTYPES, RECORD_SIZE, recordTypeName } from "./constants.ts";
import { decodeNvlist, printNvlist } from "./nvlist.ts";
import { type JsonObject, u64Json } from "./json.ts";
import type { StreamRecord } from "./reader.ts";
import { type Checksum, type DrrRecord, featureFlags, hdrtype } from "./record.ts";

/** What to print, as `zstream dump`'s flags select it. */
export interface DumpOptions {
  /** `-v`: every record, not just BEGIN and END. */
  allRecords?: boolean;
  /** `-vv`: each record's trailing checksum. */
  checksums?: boolean;
  /** `-d`: payload bytes as hex and ASCII. */
  data?: boolean;
}

const hex = (n: bigint | number) => n.toString(16);
/** Two hex digits of each byte value. */
const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
/** Bytes as hex digits: a loop over a table (a per-byte callback cost most of `dump -v`). */
function bytesHex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += HEX2[b[i]!]!;
  return s;
}
const cksumText = (c: Checksum) => c.map(hex).join("/");
/** `%lld` of a u64 field. */
const signed = (n: bigint) => BigInt.asIntN(64, n).toString();

function cryptoFields(r: { salt: Uint8Array; iv: Uint8Array; mac: Uint8Array }): string {
  return `salt = ${bytesHex(r.salt)} iv = ${bytesHex(r.iv)} mac = ${bytesHex(r.mac)}`;
}

const BYTES_PER_LINE = 16;
const GROUPING = 4;
const ASCII_START = BYTES_PER_LINE * 3 + BYTES_PER_LINE / GROUPING + 2;

/** Payload bytes as `zstream dump -d` prints them: hex in groups of four, then ASCII. */
export function formatBlock(buf: Uint8Array): string {
  const lines: string[] = [];
  for (let i = 0; i < buf.length; i += BYTES_PER_LINE) {
    const n = Math.min(BYTES_PER_LINE, buf.length - i);
    let line = "";
    for (let j = 0; j < n; j++) {
      if ((i + j) % GROUPING === 0) line += " ";
      line += buf[i + j]!.toString(16).padStart(2, "0") + " ";
    }
    line += " ".repeat(Math.max(1, ASCII_START - line.length));
    for (let j = 0; j < n; j++) {
      if (j !== 0 && j % GROUPING === 0) line += " ";
      const c = buf[i + j]!;
      line += c >= 0x20 && c <= 0x7e ? String.fromCharCode(c) : ".";
    }
    lines.push(line + "\n");
  }
  return lines.join("");
}

function formatBegin(r: StreamRecord, h: DrrRecord & { type: 0 }, o: DumpOptions): string {
  let s = "BEGIN record\n" +
    `\thdrtype = ${hdrtype(h.versioninfo)}\n` +
    `\tfeatures = ${hex(featureFlags(h.versioninfo))}\n` +
    `\tmagic = ${hex(h.magic)}\n` +
    `\tcreation_time = ${hex(h.creation_time)}\n` +
    `\ttype = ${h.objset_type}\n` +
    `\tflags = 0x${hex(h.flags)}\n` +
    `\ttoguid = ${hex(h.toguid)}\n` +
    `\tfromguid = ${hex(h.fromguid)}\n` +
    `\ttoname = ${h.toname}\n` +
    `\tpayloadlen = ${h.payloadlen}\n`;
  if (o.allRecords) s += "\n";
  if (h.payloadlen >= 2) {
    const p = r.payload;
    s += p[0] === 1
      ? "nvlist encoding = NV_ENCODE_XDR\n"
      : `nvlist encoding = NV_ENCODE_NATIVE (${p[1] === 0 ? "big" : "little"}-endian)\n`;
    try {
      s += printNvlist(decodeNvlist(p));
    } catch (e) {
      s += `failed to unpack DRR_BEGIN nvlist: ${(e as Error).message}\n`;
    }
  } else if (h.payloadlen !== 0) {
    s += `unexpected packed nvlist length ${h.payloadlen}\n`;
  }
  return s;
}

/**
 * The text `zstream dump` prints for one record (nothing for most records without `-v`).
 *
 * @example
 * ```ts
 * import { formatRecord, readRecords, StreamWriter } from "jsr:@zsend/zsend";
 * const w = new StreamWriter();
 * const bytes = [...w.begin({ toname: "p/fs@s", toguid: 1n, objset_type: 2 }), ...w.end()];
 * const text = [];
 * for await (const r of readRecords(bytes)) text.push(formatRecord(r, {}));
 * if (!text[1]!.startsWith("END checksum = ")) throw new Error(text[1]);
 * ```
 */
export function formatRecord(r: StreamRecord, o: DumpOptions): string {
  const h = r.header;
  let s = "";
  const all = o.allRecords === true;
  const data = o.data === true;
  switch (h.type) {
    case DRR.BEGIN:
      s = formatBegin(r, h, o);
      break;
    case DRR.END:
      s = `END checksum = ${cksumText(h.checksum)}\n`;
      break;
    case DRR.OBJECT:
      if (all) {
        s = `OBJECT object = ${h.object} type = ${h.object_type} bonustype = ${h.bonustype} ` +
          `blksz = ${h.blksz} bonuslen = ${h.bonuslen} dn_slots = ${h.dn_slots} ` +
          `raw_bonuslen = ${h.raw_bonuslen} flags = ${h.flags} maxblkid = ${h.maxblkid} ` +
          `indblkshift = ${h.indblkshift} nlevels = ${h.nlevels} nblkptr = ${h.nblkptr}\n`;
      }
      if (data && h.bonuslen > 0) s += formatBlock(r.payload);
      break;
    case DRR.FREEOBJECTS:
      if (all) s = `FREEOBJECTS firstobj = ${h.firstobj} numobjs = ${h.numobjs}\n`;
      break;
    case DRR.WRITE:
      if (all) {
        s =
          `WRITE object = ${h.object} type = ${h.object_type} checksum type = ${h.checksumtype} ` +
          `compression type = ${h.compressiontype} flags = ${h.flags} offset = ${h.offset} ` +
          `logical_size = ${h.logical_size} compressed_size = ${h.compressed_size} ` +
          `payload_size = ${r.payload.length} props = ${hex(h.key_prop)} ${cryptoFields(h)}\n`;
      }
      if (data) s += formatBlock(r.payload);
      break;
    case DRR.WRITE_BYREF:
      if (all) {
        s = `WRITE_BYREF object = ${h.object} checksum type = ${h.checksumtype} ` +
          `props = ${hex(h.key_prop)} offset = ${h.offset} length = ${h.length} ` +
          `toguid = ${hex(h.toguid)} refguid = ${hex(h.refguid)} ` +
          `refobject = ${h.refobject} refoffset = ${h.refoffset}\n`;
      }
      break;
    case DRR.FREE:
      if (all) s = `FREE object = ${h.object} offset = ${h.offset} length = ${signed(h.length)}\n`;
      break;
    case DRR.SPILL:
      if (all) {
        s = `SPILL block for object = ${h.object} length = ${h.length} flags = ${h.flags} ` +
          `compression type = ${h.compressiontype} compressed_size = ${h.compressed_size} ` +
          `payload_size = ${r.payload.length} ${cryptoFields(h)}\n`;
      }
      if (data) s += formatBlock(r.payload);
      break;
    case DRR.WRITE_EMBEDDED:
      if (all) {
        s = `WRITE_EMBEDDED object = ${h.object} offset = ${h.offset} length = ${h.length} ` +
          `toguid = ${hex(h.toguid)} comp = ${h.compression} etype = ${h.etype} ` +
          `lsize = ${h.lsize} psize = ${h.psize}\n`;
      }
      if (data) s += formatBlock(r.payload);
      break;
    case DRR.OBJECT_RANGE:
      if (all) {
        s = `OBJECT_RANGE firstobj = ${h.firstobj} numslots = ${h.numslots} flags = ${h.flags} ` +
          `${cryptoFields(h)}\n`;
      }
      break;
    case DRR.REDACT:
      if (all) s = `REDACT object = ${h.object} offset = ${h.offset} length = ${h.length}\n`;
      break;
  }
  if (h.type !== DRR.BEGIN && o.checksums) {
    s += `    checksum = ${cksumText(h.record_checksum)}\n`;
  }
  return s;
}

/**
 * Counts of records and bytes, per type and in all, as the SUMMARY reports them.
 *
 * @example
 * ```ts
 * import { DumpSummary, readRecords, StreamWriter } from "jsr:@zsend/zsend";
 * const w = new StreamWriter();
 * const bytes = [...w.begin({ toname: "p/fs@a", toguid: 1n, objset_type: 2 }), ...w.end()];
 * const s = new DumpSummary();
 * for await (const r of readRecords(bytes)) s.add(r);
 * if (s.toJSON().summary.bytes !== "624") throw new Error();
 * if (!s.format().includes("Total records = 2")) throw new Error();
 * ```
 */
export class DumpSummary {
  /** Records of each type. */
  readonly records: number[] = new Array(DRR_NUMTYPES).fill(0);
  /** Payload bytes of each type. */
  readonly payloadBytes: number[] = new Array(DRR_NUMTYPES).fill(0);
  /** All records. */
  totalRecords = 0;
  /** All payload bytes. */
  totalPayload = 0;

  /** Counts one record. */
  add(r: StreamRecord): void {
    const t = r.header.type;
    this.records[t]!++;
    this.payloadBytes[t]! += r.payload.length;
    this.totalRecords++;
    this.totalPayload += r.payload.length;
  }

  /** Bytes of record headers. */
  get totalHeader(): number {
    return this.totalRecords * RECORD_SIZE;
  }

  /** The SUMMARY block, in `zstream dump`'s order of types. */
  format(): string {
    const order = [
      DRR.BEGIN,
      DRR.END,
      DRR.OBJECT,
      DRR.FREEOBJECTS,
      DRR.WRITE,
      DRR.WRITE_BYREF,
      DRR.WRITE_EMBEDDED,
      DRR.FREE,
      DRR.SPILL,
      DRR.OBJECT_RANGE,
      DRR.REDACT,
    ];
    let s = "SUMMARY:\n";
    for (const t of order) {
      s += `\tTotal DRR_${recordTypeName(t)} records = ${this.records[t]} ` +
        `(${this.payloadBytes[t]} bytes)\n`;
    }
    const len = this.totalHeader + this.totalPayload;
    s += `\tTotal records = ${this.totalRecords}\n` +
      `\tTotal payload size = ${this.totalPayload} (0x${hex(this.totalPayload)})\n` +
      `\tTotal header overhead = ${this.totalHeader} (0x${hex(this.totalHeader)})\n` +
      `\tTotal stream length = ${len} (0x${hex(len)})\n`;
    return s;
  }

  /**
   * The summary as `dump --json` prints it: per type name its `records` (a number) and
   * `payload_bytes`, then the totals; byte counts as decimal strings.
   */
  toJSON(): { summary: JsonObject } {
    const perType: JsonObject = {};
    for (let t = 0; t < DRR_NUMTYPES; t++) {
      perType[recordTypeName(t)] = {
        records: this.records[t]!,
        payload_bytes: u64Json(this.payloadBytes[t]!),
      };
    }
    return {
      summary: {
        types: perType,
        records: this.totalRecords,
        payload_bytes: u64Json(this.totalPayload),
        header_bytes: u64Json(this.totalHeader),
        bytes: u64Json(this.totalHeader + this.totalPayload),
      },
    };
  }
}
