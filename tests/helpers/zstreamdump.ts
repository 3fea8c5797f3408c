/**
 * A parser for the text that `zstreamdump -v` prints (zfs-fuse 0.7, Debian's package), which
 * also reads OpenZFS's `zstream dump -v`: record by record, every field it prints, and the
 * SUMMARY.
 *
 * What the text looks like (zfs-fuse):
 * - `BEGIN record` followed by tab-indented `\tname = value` lines (hdrtype, features, magic,
 *   creation_time, type, flags, toguid, fromguid, toname) and a blank line; after the BEGIN of a
 *   compound stream, the packed nvlist as `nvlist version: 0` and indented lines (kept as text).
 * - one line records: `OBJECT ...`, `FREEOBJECTS ...`, `FREE ...`, `END checksum = a/b/c/d`.
 * - records whose fields go on over the next lines: `WRITE object = .. type = .. checksum type
 *   = ..` then `offset = .. length = .. props = ..`; `WRITE_BYREF` over four lines.
 * - `Expected checksum differs from checksum in stream.` and `Expected checksum = a/b/c/d`
 *   before an END whose checksum is wrong.
 * - `SUMMARY:` and tab-indented `Total ... = N` lines. zfs-fuse counts WRITE_BYREF records in
 *   no line of its summary, not even in `Total records`.
 *
 * Numbers are bigints. zstreamdump prints some fields in hex without a prefix (BEGIN's magic,
 * creation_time, toguid, fromguid, features, version; WRITE's and WRITE_BYREF's props;
 * toguid and refguid); those are read as hex, as are values written `0x...`. END's checksum
 * becomes four bigints. Values that are not numbers (toname, OpenZFS's salt/iv/mac) stay
 * strings.
 *
 * @module
 */

/** A field's value: a number, END's four checksum words, or text. */
export type DumpValue = bigint | readonly bigint[] | string;

/** One record as zstreamdump printed it. */
export interface DumpRecord {
  /** BEGIN, OBJECT, FREEOBJECTS, WRITE, FREE, END, WRITE_BYREF, SPILL, WRITE_EMBEDDED, ... */
  type: string;
  /** Every field printed for the record, in the order printed, by the name printed. */
  fields: Map<string, DumpValue>;
  /** The 1-based line where the record starts. */
  line: number;
  /** The text of the nvlist printed after a BEGIN (compound streams), without its last newline. */
  nvlist?: string;
  /** The checksum zstreamdump computed, when it printed "Expected checksum differs". */
  expectedChecksum?: readonly bigint[];
}

/** The SUMMARY at the end of the dump. */
export interface DumpSummary {
  /** `Total DRR_<TYPE> records = N`, by TYPE (BEGIN, END, OBJECT, ...). */
  counts: Map<string, bigint>;
  /** OpenZFS: `Total DRR_<TYPE> records = N (M bytes)`, the M by TYPE. */
  bytes: Map<string, bigint>;
  /** `Total records`. */
  totalRecords: bigint;
  /** Every other `Total <what> = N` line (write size, stream length, payload size, ...). */
  totals: Map<string, bigint>;
}

/** A whole dump. */
export interface ParsedDump {
  records: DumpRecord[];
  summary: DumpSummary | null;
  /** Lines that are neither records nor summary (INVALID record found, Aborting, ...). */
  messages: { line: number; text: string }[];
}

const HEX_FIELDS: Record<string, ReadonlySet<string>> = {
  BEGIN: new Set(["version", "magic", "creation_time", "toguid", "fromguid", "features"]),
  WRITE: new Set(["props"]),
  WRITE_BYREF: new Set(["props", "toguid", "refguid"]),
  WRITE_EMBEDDED: new Set(["toguid"]),
  SPILL: new Set([]),
};
/** Byte strings printed as hex digits: kept as text. */
const TEXT_FIELDS: ReadonlySet<string> = new Set(["toname", "salt", "iv", "mac"]);

const RECORD_START = /^([A-Z][A-Z_]*)(?: |$)/;
const CONTINUATION = /^[a-z_][a-z_ ]* = /;

/** Reads a value as zstreamdump prints the field `name` of a record of type `type`. */
export function parseValue(type: string, name: string, text: string): DumpValue {
  if (TEXT_FIELDS.has(name)) return text;
  if (type === "END" && name === "checksum") return parseChecksum(text) ?? text;
  if (/^0x[0-9a-f]+$/i.test(text)) return BigInt(text);
  if (HEX_FIELDS[type]?.has(name) && /^[0-9a-f]+$/i.test(text)) return BigInt("0x" + text);
  if (/^-?[0-9]+$/.test(text)) return BigInt(text);
  return text;
}

function parseChecksum(text: string): bigint[] | null {
  const words = text.split("/");
  if (words.length !== 4 || !words.every((w) => /^[0-9a-f]+$/i.test(w))) return null;
  return words.map((w) => BigInt("0x" + w));
}

/**
 * Splits `a = 1 b c = 2` into [["a", "1"], ["b c", "2"]]: a name is every word since the last
 * value, a value the one word after `=`.
 */
export function splitFields(text: string): [string, string][] {
  const words = text.trim().split(/\s+/).filter((w) => w !== "");
  const out: [string, string][] = [];
  let name: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === "=" && name.length > 0 && i + 1 < words.length) {
      out.push([name.join(" "), words[i + 1]!]);
      name = [];
      i++;
    } else {
      name.push(word);
    }
  }
  if (name.length > 0) throw new Error(`words without a value: ${JSON.stringify(name.join(" "))}`);
  return out;
}

function addFields(record: DumpRecord, text: string, lineNo: number): void {
  let pairs: [string, string][];
  try {
    pairs = splitFields(text);
  } catch (e) {
    throw new Error(`line ${lineNo}: ${(e as Error).message}`);
  }
  for (const [name, value] of pairs) {
    // OpenZFS: "SPILL block for object = 5 ..."
    const key = record.type === "SPILL" && name === "block for object" ? "object" : name;
    record.fields.set(key, parseValue(record.type, key, value));
  }
}

/** Parses the whole text of `zstreamdump -v` (or `zstream dump -v`). */
export function parseZstreamdump(text: string): ParsedDump {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const records: DumpRecord[] = [];
  const messages: { line: number; text: string }[] = [];
  let summary: DumpSummary | null = null;
  let expected: bigint[] | undefined;
  let last: DumpRecord | null = null;

  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    const lineNo = i + 1;

    if (summary !== null) {
      readSummaryLine(summary, line, lineNo);
      i++;
      continue;
    }
    if (line === "SUMMARY:") {
      summary = { counts: new Map(), bytes: new Map(), totalRecords: -1n, totals: new Map() };
      last = null;
      i++;
      continue;
    }
    if (line.startsWith("Expected checksum differs")) {
      i++;
      continue;
    }
    const exp = /^Expected checksum = (\S+)$/.exec(line);
    if (exp) {
      expected = parseChecksum(exp[1]!) ?? undefined;
      i++;
      continue;
    }
    if (line === "BEGIN record") {
      const record: DumpRecord = { type: "BEGIN", fields: new Map(), line: lineNo };
      i++;
      for (; i < lines.length && lines[i]!.startsWith("\t"); i++) {
        const m = /^\t([^=]+?) = (.*)$/.exec(lines[i]!);
        if (!m) throw new Error(`line ${i + 1}: not a BEGIN field: ${JSON.stringify(lines[i])}`);
        record.fields.set(m[1]!, parseValue("BEGIN", m[1]!, m[2]!));
      }
      if (i < lines.length && lines[i] === "") i++; // the blank line of -v
      // The nvlist of a compound stream's BEGIN: everything up to the next record.
      const start = i;
      while (i < lines.length && !isRecordLine(lines[i]!)) i++;
      if (i > start) {
        let end = i;
        while (end > start && lines[end - 1] === "") end--;
        record.nvlist = lines.slice(start, end).join("\n");
      }
      if (expected) record.expectedChecksum = expected;
      expected = undefined;
      records.push(record);
      last = record;
      continue;
    }
    const start = RECORD_START.exec(line);
    if (start && !line.startsWith("INVALID ")) {
      const type = start[1]!;
      const record: DumpRecord = { type, fields: new Map(), line: lineNo };
      addFields(record, line.slice(type.length), lineNo);
      if (expected) record.expectedChecksum = expected;
      expected = undefined;
      records.push(record);
      last = record;
      i++;
      continue;
    }
    if (last !== null && last.type !== "BEGIN" && CONTINUATION.test(line)) {
      addFields(last, line, lineNo);
      i++;
      continue;
    }
    messages.push({ line: lineNo, text: line });
    i++;
  }
  return { records, summary, messages };
}

function isRecordLine(line: string): boolean {
  return line === "SUMMARY:" || line.startsWith("Expected checksum") ||
    (RECORD_START.test(line) && !line.startsWith("nvlist"));
}

function readSummaryLine(summary: DumpSummary, line: string, lineNo: number): void {
  if (line.trim() === "") return;
  let m = /^\tTotal DRR_([A-Z_]+) records = (\d+)(?: \((\d+) bytes\))?$/.exec(line);
  if (m) {
    summary.counts.set(m[1]!, BigInt(m[2]!));
    if (m[3] !== undefined) summary.bytes.set(m[1]!, BigInt(m[3]));
    return;
  }
  m = /^\tTotal records = (\d+)$/.exec(line);
  if (m) {
    summary.totalRecords = BigInt(m[1]!);
    return;
  }
  m = /^\tTotal ([a-z ]+) = (\d+)(?: \(0x([0-9a-f]+)\))?$/.exec(line);
  if (m) {
    const value = BigInt(m[2]!);
    if (m[3] !== undefined && BigInt("0x" + m[3]) !== value) {
      throw new Error(`line ${lineNo}: decimal and hex differ: ${line}`);
    }
    summary.totals.set(m[1]!, value);
    return;
  }
  throw new Error(`line ${lineNo}: not a SUMMARY line: ${JSON.stringify(line)}`);
}

/** Number of records of each type, as parsed. */
export function countByType(records: readonly DumpRecord[]): Map<string, bigint> {
  const counts = new Map<string, bigint>();
  for (const r of records) counts.set(r.type, (counts.get(r.type) ?? 0n) + 1n);
  return counts;
}

/** A field that must be a number. */
export function num(record: DumpRecord, name: string): bigint {
  const v = record.fields.get(name);
  if (typeof v !== "bigint") {
    throw new Error(`line ${record.line}: ${record.type} has no number ${name} (${String(v)})`);
  }
  return v;
}

/** A field that must be text. */
export function str(record: DumpRecord, name: string): string {
  const v = record.fields.get(name);
  if (typeof v !== "string") {
    throw new Error(`line ${record.line}: ${record.type} has no text ${name} (${String(v)})`);
  }
  return v;
}
