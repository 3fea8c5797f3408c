/**
 * zsend: read, verify and write ZFS send streams in TypeScript, without ZFS.
 *
 * ```ts
 * import { readRecords, StreamWriter, verifyStream } from "./mod.ts";
 * const w = new StreamWriter();
 * const stream = [...w.begin({ toname: "tank/fs@now", toguid: 42n, objset_type: 2 }), ...w.end()];
 * const report = await verifyStream(stream);
 * if (report.snapshots[0] !== "tank/fs@now") throw new Error();
 * for await (const r of readRecords(stream)) console.log(r.index, r.header.type);
 * ```
 *
 * @module
 */

export * from "./core/stream/constants.ts";
export * from "./core/stream/record.ts";
export * from "./core/stream/errors.ts";
export * from "./core/checksum/fletcher4.ts";
export * from "./core/checksum/fletcher4_records.ts";
export * from "./core/stream/byte_source.ts";
export * from "./core/stream/reader.ts";
export * from "./core/stream/writer.ts";
export * from "./core/stream/nvlist.ts";
export * from "./core/stream/dump.ts";
export * from "./core/stream/record_rules.ts";
export * from "./core/stream/verify.ts";
export { bestFletcher4, nativeFletcher4 } from "./io/native/fletcher4_native.ts";
export * from "./core/transform/transcode.ts";
export * from "./core/receive/snapshot_view.ts";
export * from "./core/receive/begin_plan.ts";
export * from "./core/receive/names.ts";
export * from "./core/receive/receive.ts";
export * from "./core/stream/pending.ts";
export * from "./core/send/send.ts";
export * from "./core/send/resume_sender.ts";
export * from "./core/compress/mod.ts";
export * from "./core/crypto/mod.ts";
export { nativeAead } from "./io/native/aead_native.ts";
export * from "./core/resume/resume_token.ts";
export * from "./core/resume/resume_point.ts";
export * from "./core/transform/surgery.ts";
export * from "./core/transform/recompress.ts";
export * from "./core/zpl/zap.ts";
export * from "./core/zpl/znode.ts";
export * from "./core/zpl/sa.ts";
export * from "./core/zpl/fs.ts";
export * from "./core/zpl/path.ts";
