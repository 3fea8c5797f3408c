/**
 * Proves a stream intact: on top of what the reader checks (every checksum, BEGIN/END nesting,
 * payload limits, truncation), every structural and field rule a receiver applies, zero unused
 * bytes, and the order in which the sender writes.
 *
 * @module
 */

import { DRR, FEATURE } from "./constants.ts";
import { StreamError } from "./errors.ts";
import { decodeNvlist } from "./nvlist.ts";
import { type ReadOptions, readRecordBatches, type StreamRecord } from "./reader.ts";
import { checkBegin, checkRecordFields } from "./record_rules.ts";
import { type DrrBegin, featureFlags, firstStrayByte, hasFeature, hdrtype } from "./record.ts";
import type { ByteChunks } from "./byte_source.ts";
import { isZeroChecksum } from "../checksum/fletcher4.ts";

/** What a successful verification found. */
export interface VerifyReport {
  /** Records read. */
  records: number;
  /** Bytes read. */
  bytes: number;
  /** Substreams (snapshots) in the stream. */
  substreams: number;
  /** Whether the stream is compound (`-R`, `-I`). */
  compound: boolean;
  /** Whether records carry their own checksums (modern streams). */
  recordChecksums: boolean;
  /** The toname of each substream. */
  snapshots: string[];
}

/** Blocks written so far, per dataset guid: object -> offset -> length (dedup streams only). */
type WrittenBlocks = Map<bigint, Map<bigint, Map<bigint, bigint>>>;

/**
 * Checks records one by one; throws {@linkcode StreamError} at the first fault. Feed it the
 * records of {@linkcode readRecords} in order, then call {@linkcode StreamVerifier.finish}.
 *
 * @example
 * ```ts
 * import { readRecords, StreamVerifier, StreamWriter } from "jsr:@zsend/zsend";
 * const w = new StreamWriter();
 * const bytes = [
 *   ...w.begin({ toname: "p/fs@a", toguid: 7n, objset_type: 2 }),
 *   ...w.write({ type: 2, firstobj: 1n, numobjs: 31n, toguid: 8n }),
 *   ...w.end(),
 * ];
 * const v = new StreamVerifier();
 * let fault = "";
 * try {
 *   for await (const r of readRecords(bytes)) v.check(r);
 * } catch (e) {
 *   fault = (e as Error).message;
 * }
 * if (!fault.includes("toguid")) throw new Error(fault);
 * ```
 */
export class StreamVerifier {
  #begin: DrrBegin | null = null;
  #features = 0n;
  #beginFlags = 0;
  #checksummed = false;
  #recordsInSubstream = 0;
  #objectCursor = 0n;
  #dataObject = -1n;
  #dataEnd = 0n;
  #guids = new Set<bigint>();
  #written: WrittenBlocks = new Map();
  #records = 0;
  #bytes = 0;
  #compound = false;
  #anyRecordChecksums = false;
  #snapshots: string[] = [];

  /** Checks one record. */
  check(r: StreamRecord): void {
    const h = r.header;
    const fail = (fault: string): never => {
      throw new StreamError({ index: r.index, type: h.type, offset: r.offset }, fault);
    };
    this.#records++;
    this.#bytes = r.offset + r.raw.length + r.payload.length;

    const stray = firstStrayByte(r.raw, h.type);
    if (stray >= 0) fail(`unused byte ${stray} of the record is not zero`);
    if (h.type !== DRR.BEGIN && h.payloadlen !== 0) {
      fail(`drr_payloadlen is ${h.payloadlen}, but only BEGIN carries one`);
    }

    if (h.type === DRR.BEGIN) {
      const bad = checkBegin(h);
      if (bad !== null) fail(bad);
      if (r.substream === 0) {
        this.#compound = true;
        if (h.payloadlen > 0) {
          try {
            decodeNvlist(r.payload);
          } catch (e) {
            fail(`the compound stream's nvlist does not decode: ${(e as Error).message}`);
          }
        }
      } else {
        this.#snapshots.push(h.toname);
        this.#guids.add(h.toguid);
      }
      this.#begin = h;
      this.#features = featureFlags(h.versioninfo);
      this.#beginFlags = h.flags;
      this.#recordsInSubstream = 0;
      this.#objectCursor = 0n;
      this.#dataObject = -1n;
      this.#dataEnd = 0n;
      return;
    }

    const begin = this.#begin!;
    if (h.type === DRR.END && r.substream === 0 && hdrtype(begin.versioninfo) !== 2) {
      // The all-zero END that closes a compound stream.
      if (h.toguid !== 0n || !isZeroChecksum(h.checksum)) {
        fail("the END that closes a compound stream must be all zero");
      }
      return;
    }
    if (h.toguid !== begin.toguid) {
      fail(`toguid ${h.toguid.toString(16)} differs from BEGIN's ${begin.toguid.toString(16)}`);
    }

    // New streams carry a checksum in every record; a zero one then is damage, not "unchecked".
    const hasChecksum = !isZeroChecksum(h.record_checksum);
    if (this.#recordsInSubstream === 0) {
      this.#checksummed = hasChecksum;
      if (hasChecksum) this.#anyRecordChecksums = true;
    } else if (this.#checksummed && !hasChecksum && h.type !== DRR.END) {
      fail("record checksum missing in a stream whose records carry checksums");
    }
    this.#recordsInSubstream++;

    if (h.type === DRR.END) return;
    const bad = checkRecordFields(h, { features: this.#features, beginFlags: this.#beginFlags });
    if (bad !== null) fail(bad);

    switch (h.type) {
      case DRR.OBJECT:
        if (h.object < this.#objectCursor) {
          fail(
            `OBJECT ${h.object} out of order: objects up to ${this.#objectCursor - 1n} came before`,
          );
        }
        this.#objectCursor = h.object + BigInt(Math.max(1, h.dn_slots));
        break;
      case DRR.FREEOBJECTS:
        if (h.numobjs > 0n && h.firstobj < this.#objectCursor) {
          fail(
            `FREEOBJECTS from ${h.firstobj} out of order: objects up to ` +
              `${this.#objectCursor - 1n} came before`,
          );
        }
        if (h.numobjs > 0n) this.#objectCursor = h.firstobj + h.numobjs;
        break;
      case DRR.WRITE:
        this.#dataOrder(h.object, h.offset, h.logical_size, fail);
        if (hasFeature(this.#features, FEATURE.DEDUP)) {
          this.#remember(h.object, h.offset, h.logical_size);
        }
        break;
      case DRR.WRITE_BYREF: {
        this.#dataOrder(h.object, h.offset, h.length, fail);
        if (!this.#guids.has(h.refguid)) {
          fail(`WRITE_BYREF refers to dataset ${h.refguid.toString(16)}, not in this stream`);
        }
        const len = this.#written.get(h.refguid)?.get(h.refobject)?.get(h.refoffset);
        if (len === undefined) {
          fail(
            `WRITE_BYREF refers to object ${h.refobject} offset ${h.refoffset}, ` +
              `which no earlier WRITE wrote`,
          );
        } else if (len !== h.length) {
          fail(`WRITE_BYREF length ${h.length} differs from the referenced block's ${len}`);
        }
        this.#remember(h.object, h.offset, h.length);
        break;
      }
      case DRR.WRITE_EMBEDDED:
      case DRR.REDACT:
        this.#dataOrder(h.object, h.offset, h.length, fail);
        break;
    }
  }

  /** Data comes in increasing (object, offset) order, one record per block. */
  #dataOrder(object: bigint, offset: bigint, length: bigint, fail: (m: string) => never): void {
    if (object < this.#dataObject || (object === this.#dataObject && offset < this.#dataEnd)) {
      fail(
        `data for object ${object} offset ${offset} out of order: ` +
          `object ${this.#dataObject} up to offset ${this.#dataEnd} came before`,
      );
    }
    this.#dataObject = object;
    this.#dataEnd = offset + length;
  }

  #remember(object: bigint, offset: bigint, length: bigint): void {
    const guid = this.#begin!.toguid;
    let objects = this.#written.get(guid);
    if (objects === undefined) this.#written.set(guid, objects = new Map());
    let blocks = objects.get(object);
    if (blocks === undefined) objects.set(object, blocks = new Map());
    blocks.set(offset, length);
  }

  /** The report, once every record has been checked. */
  finish(): VerifyReport {
    return {
      records: this.#records,
      bytes: this.#bytes,
      substreams: this.#snapshots.length,
      compound: this.#compound,
      recordChecksums: this.#anyRecordChecksums,
      snapshots: this.#snapshots,
    };
  }
}

/**
 * Verifies a whole stream.
 *
 * @returns the report; throws {@linkcode StreamError} naming the first faulty record
 * @example
 * ```ts
 * import { StreamWriter, verifyStream } from "jsr:@zsend/zsend";
 * const w = new StreamWriter();
 * const bytes = [...w.begin({ toname: "p/fs@a", toguid: 7n, objset_type: 2 }), ...w.end()];
 * const report = await verifyStream(bytes);
 * if (report.records !== 2 || report.snapshots[0] !== "p/fs@a") throw new Error();
 * ```
 */
export async function verifyStream(
  source: ByteChunks,
  options: ReadOptions = {},
): Promise<VerifyReport> {
  const v = new StreamVerifier();
  for await (const batch of readRecordBatches(source, options)) {
    for (const r of batch) v.check(r);
  }
  return v.finish();
}
