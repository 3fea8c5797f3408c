/**
 * zsend: read, verify and write ZFS send streams in TypeScript, without ZFS.
 *
 * - **Records**: {@linkcode readRecords} decodes a stream (every checksum checked as it goes),
 *   {@linkcode StreamWriter} encodes one with its running checksum, {@linkcode decodeRecord} and
 *   {@linkcode encodeRecord} handle one 312-byte record.
 * - **Verifying**: {@linkcode verifyStream} applies every rule a receiver applies.
 * - **Checksums**: {@linkcode fletcher4}, and {@linkcode bestFletcher4} (native when the
 *   library is built and `--allow-ffi` granted, else TypeScript).
 * - **Dump and JSON**: {@linkcode formatRecord} (the text of `zstream dump`),
 *   {@linkcode recordToJson} (the JSON of `zsend dump --json`).
 * - **nvlists**: {@linkcode decodeNvlist}, {@linkcode encodeNvlist}, {@linkcode nv}.
 * - **Resume tokens**: {@linkcode decodeResumeToken}, {@linkcode encodeResumeToken},
 *   {@linkcode findResumePoint}.
 * - **Surgery**: {@linkcode dropRecords}, {@linkcode decompressRecords},
 *   {@linkcode recompressRecords}, {@linkcode redupRecords}.
 *
 * ```ts
 * import { readRecords, StreamWriter, verifyStream } from "jsr:@zsend/zsend";
 * const w = new StreamWriter();
 * const stream = [...w.begin({ toname: "tank/fs@now", toguid: 42n, objset_type: 2 }), ...w.end()];
 * const report = await verifyStream(stream);
 * if (report.snapshots[0] !== "tank/fs@now") throw new Error();
 * for await (const r of readRecords(stream)) console.log(r.index, r.header.type);
 * ```
 *
 * The native library (SIMD fletcher-4, BLAKE3, `pread`/`pwrite`, AES through libcrypto) is C
 * source in `io/native/` (`zsend_native.c`, `blake3.c`). Everything works without it, in
 * TypeScript. To use it, build it with a C compiler and name it in `ZSEND_NATIVE_LIB`, then run
 * with `--allow-ffi --allow-env`:
 *
 * ```sh
 * cc -O3 -std=c11 -Wall -fPIC -shared -fvisibility=hidden \
 *   io/native/zsend_native.c io/native/blake3.c -o libzsend_native.so
 * export ZSEND_NATIVE_LIB=$PWD/libzsend_native.so
 * ```
 *
 * @module
 */

export {
  BACKUP_MAGIC,
  DRR,
  FEATURE,
  HDRTYPE,
  OBJSET_TYPE,
  RECORD_SIZE,
  recordTypeName,
} from "./core/stream/constants.ts";
export {
  type Checksum,
  decodeRecord,
  type DrrBegin,
  type DrrEnd,
  type DrrFree,
  type DrrFreeObjects,
  type DrrObject,
  type DrrObjectRange,
  type DrrRecord,
  type DrrRedact,
  type DrrSpill,
  type DrrWrite,
  type DrrWriteByref,
  type DrrWriteEmbedded,
  encodeRecord,
  featureFlags,
  hasFeature,
  hdrtype,
  makeVersioninfo,
  payloadSize,
  type RecordBase,
  type RecordInit,
  type RecordInitOf,
} from "./core/stream/record.ts";
export { StreamError, type StreamPosition } from "./core/stream/errors.ts";
export type { ByteChunks } from "./core/stream/byte_source.ts";
export {
  type ReadOptions,
  readRecordBatches,
  readRecords,
  RecordDecoderStream,
  type StreamRecord,
} from "./core/stream/reader.ts";
export {
  type PayloadRef,
  type PayloadRun,
  type StreamChunk,
  StreamWriter,
  type WriteOptions,
  type WriterOptions,
} from "./core/stream/writer.ts";
export { StreamVerifier, type VerifyReport, verifyStream } from "./core/stream/verify.ts";
export {
  Fletcher4,
  fletcher4,
  type Fletcher4Engine,
  isZeroChecksum,
  tsFletcher4,
} from "./core/checksum/fletcher4.ts";
export { bestFletcher4 } from "./io/native/fletcher4_native.ts";
export { type DumpOptions, DumpSummary, formatRecord } from "./core/stream/dump.ts";
export {
  guidJson,
  type JsonObject,
  recordToJson,
  u64Json,
  verifyReportJson,
} from "./core/stream/json.ts";
export {
  DATA_TYPE,
  type DataType,
  decodeNvlist,
  type DecodeOptions,
  encodeNvlist,
  type EncodeOptions,
  type JsonValue,
  nv,
  type NvBuilders,
  type NvGuidTest,
  type NvList,
  nvlistGet,
  nvlistToJson,
  type NvPair,
  type NvPairOf,
  type NvValueOf,
  type PairMaker,
  printNvlist,
} from "./core/stream/nvlist.ts";
export {
  type DecodedResumeToken,
  decodeResumeToken,
  encodeResumeToken,
  resumeNvlist,
  type ResumeState,
  resumeState,
  ResumeTokenError,
} from "./core/resume/resume_token.ts";
export { findResumePoint, type ResumePoint, type ResumeScan } from "./core/resume/resume_point.ts";
export { decompressRecords, dropRecords, type SurgeryOptions } from "./core/transform/surgery.ts";
export { type RecompressOptions, recompressRecords } from "./core/transform/recompress.ts";
export {
  type IndexedWrite,
  type LocatedWrite,
  MemoryRedupIndex,
  redupByReference,
  type RedupIndex,
  type RedupOptions,
  redupRecords,
  type RedupSink,
  type RedupStats,
} from "./core/transform/redup.ts";
export {
  type ExtractReport,
  extractSnapshot,
  type KeyMaterial,
  listStore,
  type NameMode,
  type ReceivedSnapshot,
  receiveIntoStore,
  sendFromStore,
  type StoredSnapshot,
  type StoreReceiveOptions,
  type StoreSendOptions,
} from "./io/library.ts";
