/**
 * `zstream recompress`: every WRITE payload decompressed and compressed again with one codec, as
 * OpenZFS stores blocks (padded with zeros to a multiple of 512 bytes; stored uncompressed when
 * that saves nothing), checksums recomputed, and the BEGIN feature flags made to match as OpenZFS
 * master sets them (COMPRESSED, and LZ4 or ZSTD, for a codec; without one, COMPRESSED cleared,
 * LZ4 and ZSTD too unless EMBED_DATA keeps them). Raw (encrypted) streams are refused: their
 * blocks cannot be recompressed without their keys. The compressors are zsend's own
 * (`compress/encode.ts`), so compressed payloads differ from what OpenZFS writes while holding
 * the same data; there is no zstd compressor.
 *
 * @module
 */

import { compressBlock } from "../compress/encode.ts";
import { decompressBlock, ZIO_COMPRESS } from "../compress/mod.ts";
import { DRR, FEATURE } from "../stream/constants.ts";
import { StreamError } from "../stream/errors.ts";
import type { Fletcher4Engine } from "../checksum/fletcher4.ts";
import type { StreamRecord } from "../stream/reader.ts";
import { featureFlags } from "../stream/record.ts";
import { hasRecordChecksum, StreamWriter } from "../stream/writer.ts";

const SPA_MINBLOCKSIZE = 512;

/** The codec names `zstream recompress` takes, to `enum zio_compress`. */
export const RECOMPRESS_CODECS: Record<string, number> = {
  off: ZIO_COMPRESS.OFF,
  lzjb: ZIO_COMPRESS.LZJB,
  gzip: ZIO_COMPRESS.GZIP_6,
  "gzip-1": ZIO_COMPRESS.GZIP_1,
  "gzip-2": ZIO_COMPRESS.GZIP_2,
  "gzip-3": ZIO_COMPRESS.GZIP_3,
  "gzip-4": ZIO_COMPRESS.GZIP_4,
  "gzip-5": ZIO_COMPRESS.GZIP_5,
  "gzip-6": ZIO_COMPRESS.GZIP_6,
  "gzip-7": ZIO_COMPRESS.GZIP_7,
  "gzip-8": ZIO_COMPRESS.GZIP_8,
  "gzip-9": ZIO_COMPRESS.GZIP_9,
  zle: ZIO_COMPRESS.ZLE,
  lz4: ZIO_COMPRESS.LZ4,
};

/** The feature flags of a BEGIN after recompression to `codec`. */
export function recompressedFeatures(features: bigint, codec: number): bigint {
  const has = (f: number) => (features & BigInt(f)) !== 0n;
  let f = features;
  if (codec === ZIO_COMPRESS.OFF) {
    f &= ~BigInt(FEATURE.COMPRESSED);
    if (!has(FEATURE.EMBED_DATA) && !has(FEATURE.RAW)) {
      f &= ~BigInt(FEATURE.LZ4 | FEATURE.ZSTD);
    }
  } else {
    f |= BigInt(FEATURE.COMPRESSED);
    if (codec === ZIO_COMPRESS.ZSTD) f |= BigInt(FEATURE.ZSTD);
    else if (codec >= ZIO_COMPRESS.LZ4) f |= BigInt(FEATURE.LZ4);
  }
  return f;
}

/** Options of {@linkcode recompressRecords}. */
export interface RecompressOptions {
  /** The fletcher-4 implementation for the new checksums. */
  fletcher4?: Fletcher4Engine;
}

/**
 * The stream with every WRITE payload recompressed with `codec` (`off` stores them plain).
 *
 * @param records the stream's records (from {@linkcode readRecords})
 * @param codec the `enum zio_compress` value (see {@link RECOMPRESS_CODECS})
 * @returns the new stream's bytes
 * @throws {StreamError} for a raw or deduplicated stream, and a block that does not decode
 * @throws {TypeError} for a codec zsend cannot compress with (zstd)
 * @example
 * ```ts
 * import { readRecords, recompressRecords, StreamWriter } from "jsr:@zsend/zsend";
 * const w = new StreamWriter();
 * const stream = [
 *   ...w.begin({ toname: "p/fs@a", toguid: 7n, objset_type: 2 }),
 *   ...w.write({ type: 1, object: 2n, object_type: 19, bonustype: 0, blksz: 4096, toguid: 7n }),
 *   ...w.write({ type: 3, object: 2n, object_type: 19, offset: 0n, logical_size: 4096n,
 *     toguid: 7n }, new Uint8Array(4096).fill(1)),
 *   ...w.end(),
 * ];
 * const out = await Array.fromAsync(recompressRecords(readRecords(stream), 15));
 * const wr = (await Array.fromAsync(readRecords(out)))[2]!;
 * if (wr.header.type !== 3 || wr.header.compressiontype !== 15 || wr.payload.length !== 512) {
 *   throw new Error();
 * }
 * ```
 */
export async function* recompressRecords(
  records: AsyncIterable<StreamRecord>,
  codec: number,
  options: RecompressOptions = {},
): AsyncGenerator<Uint8Array> {
  if (codec !== ZIO_COMPRESS.OFF && compressBlock(codec, new Uint8Array(0)) === null) {
    throw new TypeError(`zsend cannot compress with codec ${codec} (no compressor)`);
  }
  let writer: StreamWriter | null = null;
  for await (const r of records) {
    writer ??= new StreamWriter({
      littleEndian: r.littleEndian,
      ...(options.fletcher4 ? { fletcher4: options.fletcher4 } : {}),
    });
    const h = r.header;
    const at = { index: r.index, type: h.type, offset: r.offset };
    if (h.type === DRR.WRITE_BYREF) {
      throw new StreamError(
        at,
        "recompress does not take deduplicated streams (zsend redup first)",
      );
    }
    if (h.type === DRR.BEGIN) {
      const features = featureFlags(h.versioninfo);
      if ((features & BigInt(FEATURE.RAW)) !== 0n) {
        throw new StreamError(at, "recompress does not take raw (encrypted) streams");
      }
      const versioninfo = (h.versioninfo & 3n) | (recompressedFeatures(features, codec) << 2n);
      yield* writer.write((h.versioninfo & 3n) === 1n ? { ...h, versioninfo } : h, r.payload);
      continue;
    }
    if (h.type !== DRR.WRITE) {
      yield* writer.write(h, r.payload, { recordChecksum: hasRecordChecksum(h) });
      continue;
    }
    const lsize = Number(h.logical_size);
    let data: Uint8Array;
    try {
      data = decompressBlock(h.compressiontype, r.payload, lsize);
    } catch (e) {
      throw new StreamError(
        at,
        `decompression type ${h.compressiontype} failed for ino ${h.object} offset ${h.offset}: ` +
          (e as Error).message,
      );
    }
    let header = { ...h, compressiontype: 0, compressed_size: 0n };
    let payload = data;
    if (codec !== ZIO_COMPRESS.OFF) {
      const c = compressBlock(codec, data)!;
      const rounded = Math.ceil(c.length / SPA_MINBLOCKSIZE) * SPA_MINBLOCKSIZE;
      if (rounded < lsize) {
        payload = new Uint8Array(rounded);
        payload.set(c);
        header = { ...h, compressiontype: codec, compressed_size: BigInt(rounded) };
      }
    }
    yield* writer.write(header, payload, { recordChecksum: hasRecordChecksum(h) });
  }
}
