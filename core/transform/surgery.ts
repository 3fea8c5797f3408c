/**
 * Stream surgery, as OpenZFS's `zstream` verbs do it, with every checksum recomputed:
 *
 * - {@linkcode dropRecords}: `zstream drop_record` (OpenZFS master): the WRITE and
 *   WRITE_EMBEDDED records named by (object, offset) are left out.
 * - {@linkcode decompressRecords}: `zstream decompress` (OpenZFS 2.3): the WRITE records named
 *   are decompressed with the codec named for them (LZ4 when none is), their compression type
 *   and compressed size set to 0 (`off` only resets the type of a block that is not really
 *   compressed). A block that does not decode with that codec is kept as it is, with a warning.
 *
 * Records keep the stream's byte order, and a trailing checksum where they had one (old streams
 * and compound stream headers have none), as `transcode.ts` writes them; BEGIN feature flags
 * are not changed (`zstream` does not change them either).
 *
 * @module
 */

import { decompressBlock, ZIO_COMPRESS } from "../compress/mod.ts";
import { DRR } from "../stream/constants.ts";
import { StreamError } from "../stream/errors.ts";
import type { Fletcher4Engine } from "../checksum/fletcher4.ts";
import type { StreamRecord } from "../stream/reader.ts";
import type { DrrWrite } from "../stream/record.ts";
import { hasRecordChecksum, StreamWriter } from "../stream/writer.ts";

/** `"OBJECT,OFFSET"` in decimal: the key records are named by. */
export function recordKey(object: bigint, offset: bigint): string {
  return `${object},${offset}`;
}

/**
 * Parses `OBJECT,OFFSET[,TYPE]` as `zstream` does: numbers as `strtoull` with base 0 takes them
 * (decimal, `0x` hex, leading-`0` octal), TYPE one of `off`, `lz4`, `lzjb`, `gzip`, `zle`,
 * `zstd` (only where `types` is true).
 *
 * @param arg the argument
 * @param types whether a third, TYPE, field is allowed
 * @returns the key and the `enum zio_compress` value of TYPE (LZ4 when absent)
 * @throws {TypeError} naming what is wrong
 * @example
 * ```ts
 * import { parseRecordArg } from "./surgery.ts";
 * const a = parseRecordArg("0x10,131072,zstd", true);
 * if (a.key !== "16,131072" || a.compression !== 16) throw new Error(a.key);
 * ```
 */
export function parseRecordArg(
  arg: string,
  types: boolean,
): { key: string; compression: number } {
  const parts = arg.split(",");
  if (parts.length < 2 || parts.length > (types ? 3 : 2)) {
    throw new TypeError(`'${arg}': expected OBJECT,OFFSET${types ? "[,TYPE]" : ""}`);
  }
  const num = (s: string, what: string): bigint => {
    const m = /^\s*\+?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
    if (m === null) throw new TypeError(`'${arg}': invalid value for ${what}`);
    const t = m[1]!;
    const v = /^0[xX]/.test(t)
      ? BigInt(t)
      : t.length > 1 && t[0] === "0"
      ? BigInt(`0o${t.slice(1)}`)
      : BigInt(t);
    if (v >= 1n << 64n) throw new TypeError(`'${arg}': invalid value for ${what}`);
    return v;
  };
  const key = recordKey(num(parts[0]!, "object"), num(parts[1]!, "offset"));
  let compression: number = ZIO_COMPRESS.LZ4;
  if (parts[2] !== undefined) {
    const t = COMPRESSION_ARGS[parts[2]];
    if (t === undefined) {
      throw new TypeError(
        `Invalid compression type ${
          parts[2]
        }. Supported types are off, lz4, lzjb, gzip, zle, and zstd`,
      );
    }
    compression = t;
  }
  return { key, compression };
}

const COMPRESSION_ARGS: Record<string, number> = {
  off: ZIO_COMPRESS.OFF,
  lz4: ZIO_COMPRESS.LZ4,
  lzjb: ZIO_COMPRESS.LZJB,
  gzip: ZIO_COMPRESS.GZIP_1,
  zle: ZIO_COMPRESS.ZLE,
  zstd: ZIO_COMPRESS.ZSTD,
};

/** Options of the surgery functions. */
export interface SurgeryOptions {
  /** The fletcher-4 implementation for the new checksums. */
  fletcher4?: Fletcher4Engine;
  /**
   * Told of each record changed or dropped (`warning` false), and of each block that did not
   * decode (`warning` true).
   */
  log?: (message: string, warning: boolean) => void;
}

function rewriter(options: SurgeryOptions) {
  let writer: StreamWriter | null = null;
  return (r: StreamRecord): Uint8Array[] => {
    writer ??= new StreamWriter({
      littleEndian: r.littleEndian,
      ...(options.fletcher4 ? { fletcher4: options.fletcher4 } : {}),
    });
    const h = r.header;
    return h.type === DRR.BEGIN
      ? writer.write(h, r.payload)
      : writer.write(h, r.payload, { recordChecksum: hasRecordChecksum(h) });
  };
}

function refuseDedup(r: StreamRecord, verb: string): void {
  if (r.header.type === DRR.WRITE_BYREF) {
    throw new StreamError(
      { index: r.index, type: r.header.type, offset: r.offset },
      `${verb} does not take deduplicated streams (zsend redup makes a plain one)`,
    );
  }
}

/**
 * The stream without the WRITE and WRITE_EMBEDDED records named in `drop`, as `zstream
 * drop_record` writes it.
 *
 * @param records the stream's records (from {@linkcode readRecords})
 * @param drop keys of {@linkcode recordKey}
 * @param options checksum engine, log
 * @returns the new stream's bytes
 * @throws {StreamError} for a deduplicated stream (WRITE_BYREF)
 * @example
 * ```ts
 * import { dropRecords, readRecords, StreamWriter, verifyStream } from "jsr:@zsend/zsend";
 * const w = new StreamWriter();
 * const stream = [
 *   ...w.begin({ toname: "p/fs@a", toguid: 7n, objset_type: 2 }),
 *   ...w.write({ type: 1, object: 2n, object_type: 19, bonustype: 0, blksz: 512, toguid: 7n }),
 *   ...w.write({ type: 3, object: 2n, object_type: 19, offset: 0n, logical_size: 512n,
 *     toguid: 7n }, new Uint8Array(512)),
 *   ...w.end(),
 * ];
 * const out = await Array.fromAsync(dropRecords(readRecords(stream), new Set(["2,0"])));
 * const report = await verifyStream(out);
 * if (report.records !== 3) throw new Error(String(report.records));
 * ```
 */
export async function* dropRecords(
  records: AsyncIterable<StreamRecord>,
  drop: ReadonlySet<string>,
  options: SurgeryOptions = {},
): AsyncGenerator<Uint8Array> {
  const write = rewriter(options);
  for await (const r of records) {
    refuseDedup(r, "drop-record");
    const h = r.header;
    if (
      (h.type === DRR.WRITE || h.type === DRR.WRITE_EMBEDDED) &&
      drop.has(recordKey(h.object, h.offset))
    ) {
      options.log?.(
        `dropping ${h.type === DRR.WRITE ? "WRITE" : "WRITE_EMBEDDED"} record for object ` +
          `${h.object} offset ${h.offset}`,
        true,
      );
      continue;
    }
    yield* write(r);
  }
}

/**
 * The stream with the WRITE records named in `targets` decompressed, as `zstream decompress`
 * writes it.
 *
 * @param records the stream's records (from {@linkcode readRecords})
 * @param targets keys of {@linkcode recordKey} to the `enum zio_compress` codec to decode with
 * @param options checksum engine, log
 * @returns the new stream's bytes
 * @throws {StreamError} for a deduplicated stream (WRITE_BYREF), and for `off` named for a
 * block whose payload is shorter than its logical size (`zstream` would write a broken stream)
 * @example
 * ```ts
 * import { decompressRecords, readRecords, StreamWriter } from "jsr:@zsend/zsend";
 * const w = new StreamWriter();
 * // A zlib stream, as gzip-N stores a block.
 * const deflate = new CompressionStream("deflate");
 * const block = new Blob([new Uint8Array(512).fill(0x78)]).stream().pipeThrough(deflate);
 * const z = new Uint8Array(await new Response(block).arrayBuffer());
 * const stream = [
 *   ...w.begin({ toname: "p/fs@a", toguid: 7n, objset_type: 2 }),
 *   ...w.write({ type: 1, object: 2n, object_type: 19, bonustype: 0, blksz: 512, toguid: 7n }),
 *   ...w.write({ type: 3, object: 2n, object_type: 19, offset: 0n, logical_size: 512n,
 *     toguid: 7n, compressiontype: 10, compressed_size: BigInt(z.length) }, z),
 *   ...w.end(),
 * ];
 * const out = await Array.fromAsync(decompressRecords(readRecords(stream), new Map([["2,0", 5]])));
 * const wr = (await Array.fromAsync(readRecords(out)))[2]!;
 * if (wr.header.type !== 3 || wr.header.compressiontype !== 0 || wr.payload[511] !== 0x78) {
 *   throw new Error();
 * }
 * ```
 */
export async function* decompressRecords(
  records: AsyncIterable<StreamRecord>,
  targets: ReadonlyMap<string, number>,
  options: SurgeryOptions = {},
): AsyncGenerator<Uint8Array> {
  const write = rewriter(options);
  for await (const r of records) {
    refuseDedup(r, "decompress");
    const h = r.header;
    const codec = h.type === DRR.WRITE ? targets.get(recordKey(h.object, h.offset)) : undefined;
    if (h.type !== DRR.WRITE || codec === undefined) {
      yield* write(r);
      continue;
    }
    const where = `ino ${h.object} offset ${h.offset}`;
    if (codec === ZIO_COMPRESS.OFF) {
      if (BigInt(r.payload.length) !== h.logical_size) {
        throw new StreamError(
          { index: r.index, type: h.type, offset: r.offset },
          `cannot reset the compression type of a block stored in ${r.payload.length} of ` +
            `its ${h.logical_size} bytes (name its codec to decompress it)`,
        );
      }
      options.log?.(`Resetting compression type to off for ${where}`, false);
      yield* write({ ...r, header: uncompressed(h) });
      continue;
    }
    let data: Uint8Array | null = null;
    try {
      data = decompressBlock(codec, r.payload, Number(h.logical_size));
    } catch {
      data = null;
    }
    if (data === null) {
      options.log?.(`decompression failed for ${where}`, true);
      yield* write(r);
      continue;
    }
    options.log?.(`successfully decompressed ${where}`, false);
    yield* write({ ...r, header: uncompressed(h), payload: data });
  }
}

function uncompressed(h: DrrWrite): DrrWrite {
  return { ...h, compressiontype: 0, compressed_size: 0n };
}
