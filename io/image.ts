/**
 * Raw images and block devices as volume streams, and volume streams onto images and devices,
 * without a store. Positional I/O through {@linkcode Device} (the native library's
 * `pread`/`pwrite` when it is loaded).
 *
 * Sending reads the image once, taking each block's fletcher-4 (which says whether it holds
 * data, goes in its WRITE as the block's key, and makes the content guid) and, with an older
 * image, which blocks differ from it (byte for byte); without one only the checksums are kept,
 * each piece checksummed as it is read. The WRITE payloads then go from the image to the
 * output in the kernel, in runs of records with the checksums taken while scanning (see
 * io/stream_output.ts); for a volume of more than {@linkcode KEPT_CHECKSUMS} blocks the
 * checksums are not kept and the blocks are read again. An image that changes while it is
 * sent makes a stream whose checksums fail at the receiver.
 *
 * Guids: unless given, a snapshot's guid is the first 64 bits (little-endian) of SHA-256 over
 * `zsend-volume-guid-v2`, the block size and the volume size (u64 little-endian each) and the
 * fletcher-4 of every block in order (four u64 little-endian each; all zero for an all-zero
 * block). The same content always gets the same guid, so `--from OLD` finds the older stream's
 * guid by reading OLD. Two volumes get the same guid only if every block's fletcher-4 agrees,
 * which changes made by accident do not bring about (fletcher-4 is what ZFS checksums data
 * with by default); it is not a defence against images made to collide.
 *
 * Receiving keeps the guid of the last snapshot received into an image in a sidecar file
 * (`IMAGE.zsend-guid`, JSON: `guid` in hex, `volsize`, `name`), so that an incremental can be
 * checked against it. It is removed before the first byte of the image changes and written
 * again after the END, so that an interrupted receive leaves no guid and the next incremental
 * is refused.
 *
 * @module
 */

import type { Fletcher4Engine } from "../core/checksum/fletcher4.ts";
import type { StreamRecord } from "../core/stream/reader.ts";
import {
  allZero,
  BlockBitmap,
  checkVolumeGeometry,
  dnodeLevels,
  type VolumeBlocks,
  VolumeReceiver,
  type VolumeResult,
  volumeStream,
  type VolumeStreamOptions,
} from "../core/send/volume.ts";
import type { StreamChunk } from "../core/stream/writer.ts";
import { bytesEqual } from "./native/blocks.ts";
import { GuidHash } from "./guid_hash.ts";
import { Device } from "./native/device.ts";
import { alignedBytes } from "./aligned_buffer.ts";
import type { FilePlace } from "./stream_output.ts";

/** Bytes read per `pread` while scanning. */
const SCAN_CHUNK = 4 << 20;
/**
 * Bytes per call when only the checksums are kept (no buffer to hold them): each call costs a
 * hand-off to a thread and back, ~0.2 ms, which at 4 MiB a call made a third of the scan.
 */
const SUMS_CHUNK = 64 << 20;
/** Granularity of "write zeros only where there is data". */
const ZERO_PAGE = 4096;
/**
 * Volumes of up to this many blocks keep every block's checksum from the scan (32 bytes
 * each: 32 MiB at most), so that their payloads need not be read again to be sent.
 */
export const KEPT_CHECKSUMS = 1 << 20;

/** What a scan of an image (and maybe an older one) found. */
export interface ImageScan extends VolumeBlocks {
  /** The volume's size in bytes. */
  volsize: number;
  /** The block size used. */
  blockSize: number;
  /** The content guid of the image. */
  guid: bigint;
  /** With an older image: its size, and its content guid. */
  from?: { volsize: number; guid: bigint };
  /** Whether the older image's size differs. */
  sizeChanged: boolean;
  /** Modification time of the image, seconds (now for a block device). */
  mtime: bigint;
  /** Whether the image is a block device. */
  device: boolean;
  /**
   * Each block's fletcher-4 (four u64 a block), for volumes of up to
   * {@linkcode KEPT_CHECKSUMS} blocks; null for larger ones.
   */
  checksums: BigUint64Array | null;
}

function isBlockDevice(path: string): boolean {
  return Deno.statSync(path).isBlockDevice === true;
}

function readFully(dev: Device, buf: Uint8Array, offset: number): number {
  let done = 0;
  while (done < buf.length) {
    const n = dev.pread(buf.subarray(done), offset + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/**
 * The content guid an image would get as a volume of this block size (what `image send` puts
 * in toguid, and what `--from` of it puts in fromguid).
 *
 * @example
 * ```ts
 * import { imageGuid } from "./image.ts";
 * const path = Deno.makeTempFileSync();
 * Deno.writeFileSync(path, new Uint8Array(8192));
 * const a = await imageGuid(path, 4096);
 * Deno.writeFileSync(path, new Uint8Array(8192).fill(1, 100, 101));
 * const b = await imageGuid(path, 4096);
 * Deno.removeSync(path);
 * if (a === b || a === 0n) throw new Error();
 * ```
 */
export async function imageGuid(path: string, blockSize: number): Promise<bigint> {
  return (await scanImage(path, blockSize)).guid;
}

/** A chunk of an image as scanned: its blocks' bytes and their checksums. */
interface ScannedChunk {
  first: number;
  blocks: number;
  /** Empty when the bytes were not asked for. */
  bytes: Uint8Array;
  /** Four u64 a block (see `blockFletcher4`). */
  sums: BigUint64Array;
}

/** Chunks being read and checksummed at once, ahead of the one being looked at. */
const IN_FLIGHT = 2;

/**
 * Reads `extent` blocks of a device in chunks (blocks past its end read as zeros), each with
 * its blocks' checksums, {@linkcode IN_FLIGHT} chunks ahead: they are read and checksummed at
 * once (on the runtime's threads, with the native library), and handed over in order. A chunk
 * is valid until the next one is asked for. Without `withBytes` only the checksums are kept,
 * which is faster.
 */
async function* scannedChunks(
  dev: Device,
  size: number,
  blockSize: number,
  extent: number,
  chunkBlocks: number,
  withBytes: boolean,
): AsyncGenerator<ScannedChunk> {
  const bufs = Array.from({ length: IN_FLIGHT + 1 }, () => ({
    bytes: alignedBytes(withBytes ? chunkBlocks * blockSize : 0),
    sums: new BigUint64Array(chunkBlocks * 4),
  }));
  const read = async (first: number, buf: (typeof bufs)[number]): Promise<ScannedChunk> => {
    const at = first * blockSize;
    const n = Math.min(chunkBlocks, extent - first);
    const want = Math.max(0, Math.min(n * blockSize, size - at));
    const bytes = buf.bytes.subarray(0, n * blockSize);
    const got = withBytes
      ? await dev.preadBlocks(bytes, want, at, buf.sums, blockSize)
      : await dev.scanBlocks(want, n * blockSize, at, buf.sums, blockSize);
    if (got !== want) {
      throw new Error(`${dev.path} ended early at byte ${at + got}: did it shrink while read?`);
    }
    return { first, blocks: n, bytes, sums: buf.sums };
  };
  const queue: Promise<ScannedChunk>[] = [];
  let next = 0;
  let turn = 0;
  const refill = () => {
    while (queue.length < IN_FLIGHT && next < extent) {
      queue.push(read(next, bufs[turn]!));
      turn = (turn + 1) % bufs.length;
      next = Math.min(extent, next + chunkBlocks);
    }
  };
  try {
    refill();
    while (queue.length > 0) {
      const chunk = await queue.shift()!;
      refill(); // into the buffers of chunks already handed over, not this one
      yield chunk;
    }
  } finally {
    // An early end: let the reads still in flight settle before their buffers go.
    await Promise.allSettled(queue);
  }
}

/**
 * Reads an image (and an older one) block by block: which blocks hold data, which differ, the
 * content guids, and each block's checksum.
 *
 * @param path the image or block device to send
 * @param blockSize the volume's block size
 * @param from the older image, for an incremental
 * @returns the blocks, sizes and guids; throws `RangeError` when a size is not a positive
 * multiple of the block size
 * @example
 * ```ts
 * import { scanImage } from "./image.ts";
 * const path = Deno.makeTempFileSync();
 * const bytes = new Uint8Array(4 * 4096);
 * bytes[4096 * 2 + 7] = 1;
 * Deno.writeFileSync(path, bytes);
 * const scan = await scanImage(path, 4096);
 * Deno.removeSync(path);
 * if (scan.count !== 4 || scan.data.count() !== 1 || !scan.data.has(2)) throw new Error();
 * ```
 */
export async function scanImage(
  path: string,
  blockSize: number,
  from?: string,
): Promise<ImageScan> {
  using dev = Device.open(path);
  using old = from === undefined ? null : Device.open(from);
  const volsize = dev.size();
  const bad = checkVolumeGeometry(volsize, blockSize);
  if (bad !== null) throw new RangeError(`Cannot send ${path} as a volume: ${bad}`);
  const oldSize = old?.size() ?? 0;
  if (old !== null) {
    const badOld = checkVolumeGeometry(oldSize, blockSize);
    if (badOld !== null) throw new RangeError(`Cannot send from ${from}: ${badOld}`);
  }
  const count = volsize / blockSize;
  const oldCount = oldSize / blockSize;
  const extent = Math.max(count, oldCount);
  const data = new BlockBitmap(count);
  const changed = old === null ? data : new BlockBitmap(extent);
  const hash = await GuidHash.open(blockSize, volsize, count <= KEPT_CHECKSUMS);
  const oldHash = old === null
    ? null
    : await GuidHash.open(blockSize, oldSize, oldCount <= KEPT_CHECKSUMS);
  // The bytes are needed only to compare blocks with the older image's.
  const withBytes = old !== null;
  const chunkBlocks = Math.max(1, Math.floor((withBytes ? SCAN_CHUNK : SUMS_CHUNK) / blockSize));
  const news = scannedChunks(dev, volsize, blockSize, extent, chunkBlocks, withBytes);
  const olds = old === null
    ? null
    : scannedChunks(old, oldSize, blockSize, extent, chunkBlocks, withBytes);
  for await (const a of news) {
    const b = olds === null ? null : (await olds.next()).value!;
    // Blocks past the end of the image sent are only there to compare with the older one.
    const mine = Math.max(0, Math.min(a.blocks, count - a.first));
    hash.blocks(a.sums.subarray(0, mine * 4));
    if (b !== null) {
      oldHash!.blocks(b.sums.subarray(0, Math.max(0, Math.min(b.blocks, oldCount - b.first)) * 4));
    }
    const halves = new Uint32Array(a.sums.buffer);
    const oldHalves = b === null ? null : new Uint32Array(b.sums.buffer);
    for (let i = 0; i < a.blocks; i++) {
      const block = a.first + i;
      // a (the exact sum of the words) is zero for an all-zero block only.
      const xData = i < mine && (halves[i * 8]! | halves[i * 8 + 1]!) !== 0;
      if (xData) data.set(block);
      if (b === null) continue;
      const yData = block < oldCount && (oldHalves![i * 8]! | oldHalves![i * 8 + 1]!) !== 0;
      if (xData !== yData) changed.set(block);
      else if (xData) {
        const x = a.bytes.subarray(i * blockSize, (i + 1) * blockSize);
        const y = b.bytes.subarray(i * blockSize, (i + 1) * blockSize);
        if (!bytesEqual(x, y)) changed.set(block);
      }
    }
  }
  const device = isBlockDevice(path);
  const mtime = device
    ? BigInt(Math.floor(Date.now() / 1000))
    : BigInt(Math.floor((Deno.statSync(path).mtime?.getTime() ?? Date.now()) / 1000));
  return {
    count,
    data,
    changed,
    levels: dnodeLevels(extent - 1),
    volsize,
    blockSize,
    guid: await hash.guid(),
    ...(old === null ? {} : { from: { volsize: oldSize, guid: await oldHash!.guid() } }),
    sizeChanged: old !== null && oldSize !== volsize,
    mtime,
    device,
    checksums: hash.kept,
  };
}

/** Options of {@linkcode sendImage}. */
export interface SendImageOptions {
  /** The volume's block size (16 KiB by default). */
  blockSize: number;
  /** `pool/volume@snapshot` (default: `zsend/<image name>@<guid in hex>`). */
  name?: string;
  /** The older image: an incremental from it. */
  from?: string;
  /** The snapshot's guid instead of the content guid. */
  guid?: bigint;
  /** The source's guid instead of the older image's content guid. */
  fromGuid?: bigint;
  /** The fletcher-4 implementation. */
  fletcher4?: Fletcher4Engine;
  /**
   * Give the WRITEs as runs of records whose payloads stay in the image (`PayloadRun`s with a
   * {@linkcode FilePlace}), for io/stream_output.ts to copy in the kernel, where the scan kept
   * their checksums; otherwise (the default) every chunk is bytes.
   */
  payloadRefs?: boolean;
}

/** What {@linkcode sendImage} is about to send. */
export interface ImageSendPlan {
  scan: ImageScan;
  toname: string;
  toguid: bigint;
  fromguid: bigint;
  /** The stream; reads the image as it goes. */
  chunks: Generator<StreamChunk>;
}

/**
 * The dataset part of a default name: the image's file name without its extension, with every
 * character a ZFS name cannot hold made `_`.
 *
 * @example
 * ```ts
 * import { defaultVolumeName } from "./image.ts";
 * if (defaultVolumeName("/tmp/my disk.v2.img") !== "zsend/my_disk.v2") throw new Error();
 * if (defaultVolumeName("/dev/loop3") !== "zsend/loop3") throw new Error();
 * ```
 */
export function defaultVolumeName(path: string): string {
  const base = path.split("/").filter((p) => p !== "").pop() ?? "image";
  const stem = base.includes(".") && !base.startsWith(".")
    ? base.slice(0, base.lastIndexOf("."))
    : base;
  return `zsend/${stem.replace(/[^A-Za-z0-9_.:-]/g, "_") || "image"}`;
}

/**
 * Plans a volume stream of an image: scans it (and the older image), settles the names and
 * guids, and returns the chunks to write.
 *
 * @example
 * ```ts
 * import { sendImage } from "./image.ts";
 * import { verifyStream } from "../core/stream/verify.ts";
 * const path = Deno.makeTempFileSync();
 * Deno.writeFileSync(path, new Uint8Array(64 * 1024).fill(3, 5000, 9000));
 * const plan = await sendImage(path, { blockSize: 4096, name: "tank/vol@one" });
 * const report = await verifyStream([...plan.chunks] as Uint8Array[]);
 * Deno.removeSync(path);
 * if (report.snapshots[0] !== "tank/vol@one") throw new Error();
 * ```
 */
export async function sendImage(path: string, options: SendImageOptions): Promise<ImageSendPlan> {
  const scan = await scanImage(path, options.blockSize, options.from);
  const toguid = options.guid ?? scan.guid;
  const fromguid = options.from === undefined ? 0n : options.fromGuid ?? scan.from!.guid;
  if (options.from !== undefined && toguid === fromguid) {
    throw new RangeError(
      `Cannot send ${path} incrementally from ${options.from}: both have the same content ` +
        `(guid ${toguid.toString(16)}); give --guid to send an empty incremental anyway`,
    );
  }
  const toname = options.name ?? `${defaultVolumeName(path)}@${toguid.toString(16)}`;
  const bs = options.blockSize;
  const kept = options.payloadRefs ? scan.checksums : null;
  function* chunks(): Generator<StreamChunk> {
    using dev = Device.open(path);
    const read = (block: number): Uint8Array => {
      const buf = alignedBytes(bs);
      if (readFully(dev, buf, block * bs) !== bs) {
        throw new Error(`${path} ended early at block ${block}: did it change while being sent?`);
      }
      return buf;
    };
    const stream: VolumeStreamOptions = {
      toname,
      toguid,
      fromguid,
      creationTime: scan.mtime,
      blockSize: bs,
      sizeChanged: scan.sizeChanged,
      ...(options.fletcher4 ? { fletcher4: options.fletcher4 } : {}),
    };
    // With the checksums kept, the WRITEs go in runs whose payloads stay in the image.
    const place: FilePlace = { path, offset: 0 };
    if (kept === null) yield* volumeStream(stream, scan, read);
    else yield* volumeStream(stream, scan, read, { checksums: kept, place });
  }
  return { scan, toname, toguid, fromguid, chunks: chunks() };
}

// ---------------------------------------------------------------------------------------------
// Receiving.
// ---------------------------------------------------------------------------------------------

/** What the sidecar file keeps. */
export interface ImageGuidRecord {
  /** The guid of the last snapshot received. */
  guid: bigint;
  /** The volume's size then. */
  volsize: number;
  /** The snapshot's name in the stream. */
  name: string;
}

/**
 * The sidecar file of an image: `IMAGE.zsend-guid`.
 *
 * @example
 * ```ts
 * import { guidFileOf } from "./image.ts";
 * if (guidFileOf("/srv/vm.img") !== "/srv/vm.img.zsend-guid") throw new Error();
 * ```
 */
export function guidFileOf(image: string): string {
  return `${image}.zsend-guid`;
}

/**
 * Reads a sidecar file; `null` when there is none.
 *
 * @example
 * ```ts
 * import { readGuidFile, writeGuidFile } from "./image.ts";
 * const path = Deno.makeTempFileSync();
 * writeGuidFile(path, { guid: 0xabcn, volsize: 4096, name: "p/v@s" });
 * const back = readGuidFile(path);
 * Deno.removeSync(path);
 * if (back?.guid !== 0xabcn || back.volsize !== 4096) throw new Error();
 * if (readGuidFile(path) !== null) throw new Error();
 * ```
 */
export function readGuidFile(path: string): ImageGuidRecord | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  try {
    const j = JSON.parse(text);
    if (typeof j.guid !== "string" || !/^[0-9a-f]{1,16}$/.test(j.guid)) throw new Error("guid");
    if (!Number.isSafeInteger(j.volsize) || j.volsize <= 0) throw new Error("volsize");
    return { guid: BigInt(`0x${j.guid}`), volsize: j.volsize, name: String(j.name ?? "") };
  } catch (e) {
    throw new SyntaxError(`${path} is not a zsend guid file: ${(e as Error).message}`);
  }
}

/** Writes a sidecar file (through a temporary file and a rename). */
export function writeGuidFile(path: string, record: ImageGuidRecord): void {
  const tmp = `${path}.tmp-${Deno.pid}`;
  Deno.writeTextFileSync(
    tmp,
    JSON.stringify({
      guid: record.guid.toString(16),
      volsize: record.volsize,
      name: record.name,
    }) + "\n",
  );
  Deno.renameSync(tmp, path);
}

/** Options of {@linkcode receiveImage}. */
export interface ReceiveImageOptions {
  /** Let a full stream overwrite an existing non-empty image or a device. */
  force?: boolean;
  /** The guid the image holds, instead of the sidecar's. */
  baseGuid?: bigint;
  /**
   * The sidecar file (default: `IMAGE.zsend-guid` for a regular file; none for a device, where
   * an incremental then needs `baseGuid`). `null`: none.
   */
  guidFile?: string | null;
}

/** What {@linkcode receiveImage} did. */
export interface ImageReceipt extends VolumeResult {
  /** Whether the target is a block device. */
  device: boolean;
  /** The volume's size after the receive. */
  finalSize: number;
  /** Bytes written as data (WRITE and WRITE_BYREF). */
  bytesWritten: number;
  /** Bytes of zeros written where there was data. */
  bytesZeroed: number;
  /** The sidecar file written, or null. */
  guidFile: string | null;
}

function removeIfThere(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Zeroes `offset..offset+length` of `dev` where it is not zero, up to `limit`. */
function zeroRange(dev: Device, offset: number, length: number, limit: number): number {
  const end = Math.min(offset + length, limit);
  let zeroed = 0;
  const chunk = alignedBytes(1 << 20);
  const zeros = alignedBytes(1 << 20);
  for (let at = offset; at < end; at += chunk.length) {
    const n = Math.min(chunk.length, end - at);
    const got = readFully(dev, chunk.subarray(0, n), at);
    // Runs of pages with data, written over with zeros in one call each.
    let runStart = -1;
    for (let p = 0; p <= got; p += ZERO_PAGE) {
      const page = chunk.subarray(p, Math.min(p + ZERO_PAGE, got));
      const dirty = p < got && !allZero(page);
      if (dirty && runStart < 0) runStart = p;
      if (!dirty && runStart >= 0) {
        const len = Math.min(p, got) - runStart;
        dev.pwrite(zeros.subarray(0, len), at + runStart);
        zeroed += len;
        runStart = -1;
      }
    }
  }
  return zeroed;
}

/**
 * Receives one volume stream onto an image file or a block device.
 *
 * A full stream makes a regular file anew (truncated, so that holes stay holes); onto an
 * existing non-empty file or a device it needs `force`. An incremental (or clone) stream must
 * come from the guid the image holds (the sidecar's, or `baseGuid`). WRITE is a `pwrite`; FREE
 * writes zeros only where there is data; the end of the volume is cut with `ftruncate` on a
 * file. At the END the file gets the volume's size, everything is synced, and the sidecar names
 * the new guid.
 *
 * @param records the stream, as {@linkcode readRecords} yields it (checksums checked)
 * @param path the image or block device
 * @param options `force`, the base guid, the sidecar file
 * @returns what was received; throws `StreamError` when the stream does not fit the image
 * @example
 * ```ts
 * import { receiveImage, sendImage } from "./image.ts";
 * import { readRecords } from "../core/stream/reader.ts";
 * const src = Deno.makeTempFileSync();
 * const dst = Deno.makeTempFileSync();
 * Deno.removeSync(dst);
 * Deno.writeFileSync(src, new Uint8Array(32768).fill(9, 4096, 8192));
 * const plan = await sendImage(src, { blockSize: 4096 });
 * const got = await receiveImage(readRecords(plan.chunks as Iterable<Uint8Array>), dst);
 * const same = Deno.readFileSync(dst).every((b, i) => b === (i >= 4096 && i < 8192 ? 9 : 0));
 * for (const p of [src, dst, `${dst}.zsend-guid`]) Deno.removeSync(p);
 * if (!same || got.finalSize !== 32768 || got.toguid !== plan.toguid) throw new Error();
 * ```
 */
export async function receiveImage(
  records: AsyncIterable<StreamRecord>,
  path: string,
  options: ReceiveImageOptions = {},
): Promise<ImageReceipt> {
  let exists = true;
  let device = false;
  try {
    const st = Deno.statSync(path);
    device = st.isBlockDevice === true;
    if (!device && !st.isFile) {
      throw new TypeError(`${path} is neither a regular file nor a block device`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    exists = false;
  }
  const guidFile = options.guidFile === undefined
    ? (device ? null : guidFileOf(path))
    : options.guidFile;
  const sidecar = guidFile === null ? null : readGuidFile(guidFile);
  const baseGuid = options.baseGuid ?? sidecar?.guid ?? null;
  const rx = new VolumeReceiver({ baseGuid });

  let dev: Device | null = null;
  let startSize = 0;
  const fits = (end: number) => {
    if (end > startSize) {
      throw new RangeError(
        `the stream writes up to byte ${end}, past the end of the device ${path} ` +
          `(${startSize} bytes)`,
      );
    }
  };
  let bytesWritten = 0;
  let bytesZeroed = 0;
  try {
    for await (const r of records) {
      for (const op of rx.accept(r)) {
        switch (op.op) {
          case "begin": {
            if (op.full) {
              if (exists && !options.force && (device || Deno.statSync(path).size > 0)) {
                throw new TypeError(
                  `${path} exists and is not empty: a full stream replaces all of it (add -F)`,
                );
              }
            } else if (!exists) {
              throw new TypeError(`${path} does not exist: an incremental stream needs its base`);
            }
            if (guidFile !== null) removeIfThere(guidFile);
            dev = Device.open(path, {
              write: true,
              create: !device,
              truncate: op.full && !device,
            });
            startSize = dev.size();
            break;
          }
          case "write":
            if (device) fits(op.offset + op.data.length);
            dev!.pwrite(op.data, op.offset);
            bytesWritten += op.data.length;
            break;
          case "zero":
            bytesZeroed += zeroRange(dev!, op.offset, op.length, dev!.size());
            break;
          case "copy": {
            if (device) fits(op.to + op.length);
            const buf = alignedBytes(op.length);
            readFully(dev!, buf, op.from);
            dev!.pwrite(buf, op.to);
            bytesWritten += op.length;
            break;
          }
          case "size":
            if (device && dev!.size() < op.volsize) {
              throw new RangeError(
                `the volume is ${op.volsize} bytes, the device ${path} only ${dev!.size()}`,
              );
            }
            break;
        }
      }
    }
    const result = rx.result();
    const finalSize = result.volsize ?? sidecar?.volsize ?? startSize;
    if (device) {
      if (dev!.size() < finalSize) {
        throw new RangeError(
          `the volume is ${finalSize} bytes, the device ${path} only ${dev!.size()}`,
        );
      }
      if (result.tail !== null && result.tail < finalSize) {
        bytesZeroed += zeroRange(dev!, result.tail, finalSize - result.tail, finalSize);
      }
    } else {
      // Cut everything past the volume's data, then give the file the volume's size: the tail
      // becomes a hole.
      if (result.tail !== null && result.tail < dev!.size()) Deno.truncateSync(path, result.tail);
      Deno.truncateSync(path, finalSize);
    }
    dev!.fsync();
    dev!.close();
    dev = null;
    if (guidFile !== null) {
      writeGuidFile(guidFile, { guid: result.toguid, volsize: finalSize, name: result.toname });
    }
    return { ...result, device, finalSize, bytesWritten, bytesZeroed, guidFile };
  } finally {
    dev?.close();
  }
}
