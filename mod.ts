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

export * from "./core/constants.ts";
export * from "./core/record.ts";
export * from "./core/errors.ts";
export * from "./core/fletcher4.ts";
export * from "./core/fletcher4_records.ts";
export * from "./core/byte_source.ts";
export * from "./core/reader.ts";
export * from "./core/writer.ts";
export * from "./core/nvlist.ts";
export * from "./core/dump.ts";
export * from "./core/record_rules.ts";
export * from "./core/verify.ts";
export { bestFletcher4, nativeFletcher4 } from "./io/native/fletcher4_native.ts";
export * from "./core/transcode.ts";
export * from "./core/snapshot_view.ts";
export * from "./core/begin_plan.ts";
export * from "./core/names.ts";
export * from "./core/receive.ts";
export * from "./core/pending.ts";
export * from "./core/send.ts";
export * from "./core/compress/mod.ts";
export * from "./core/crypto/mod.ts";
export { nativeAead } from "./io/native/aead_native.ts";
export * from "./core/resume_token.ts";
export * from "./core/resume_point.ts";
export * from "./core/surgery.ts";
export * from "./core/recompress.ts";
export * from "./core/zpl/zap.ts";
export * from "./core/zpl/znode.ts";
export * from "./core/zpl/sa.ts";
export * from "./core/zpl/fs.ts";
export * from "./core/zpl/path.ts";
