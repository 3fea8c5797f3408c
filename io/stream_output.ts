/**
 * Writes a stream that a sender made of bytes and payload references to standard output:
 * bytes are gathered into large writes, and each payload that lies in a file (a store's pack,
 * an image) goes from that file to the output in the kernel (`sendfile`), never through this
 * process. Its checksum came with the reference, so its bytes are not read here at all. A run
 * of records with such payloads (an image's WRITEs) goes out in one native call, headers and
 * `sendfile`s alike (into a file or a device, `writev` of the headers and the image mapped:
 * a few calls for the run instead of two per record). Where the native library is not loaded, or the output does not take
 * `sendfile`, the payload is read from its file and written like any other bytes.
 *
 * @module
 */

import { RECORD_SIZE } from "../core/stream/constants.ts";
import type { Checksum } from "../core/stream/record.ts";
import {
  isPayloadRun,
  type PayloadRef,
  type PayloadRun,
  type StreamChunk,
} from "../core/stream/writer.ts";
import { cString, loadNative, nativeDisabled, type NativeLib } from "./native/ffi.ts";
import { SyncChunkOutput } from "./output.ts";
import { alignedBytes } from "./aligned_buffer.ts";

/** Where a referenced payload lies: a byte offset in a file. */
export interface FilePlace {
  path: string;
  offset: number;
}

/** The pipe buffer asked for: 1 MiB, what an unprivileged process may set by default. */
const PIPE_SIZE = 1 << 20;
const EINVAL = 22;
const ENOSYS = 38;
const EPIPE = 32;
const EIO = 5;
const EFAULT = 14;
/** The checksum of a payload read back: not needed to write it. */
const NO_SUM: Checksum = [0n, 0n, 0n, 0n];

/** What {@linkcode writeStreamOutput} did. */
export interface StreamOutputResult {
  /** Bytes written. */
  bytes: number;
  /** Of those, payload bytes that the kernel copied from their files. */
  kernelCopied: number;
}

/**
 * Writes `chunks` to `Deno.stdout` (fd 1); the place of every payload reference is a
 * {@linkcode FilePlace}.
 *
 * @param chunks the stream, as `sendStream` or `sendImage` give it
 * @param options `fd`: the descriptor that `Deno.stdout` writes to (1); `onProgress`: told the
 *   bytes written so far every 256 chunks
 */
export function writeStreamOutput(
  chunks: Iterable<StreamChunk>,
  options: { fd?: number; onProgress?: (bytes: number) => void } = {},
): StreamOutputResult {
  // Synchronous writes: the kernel's copies interleave with them on the same descriptor, and
  // an await per record header would cost a thread hand-off each.
  const out = new SyncChunkOutput(Deno.stdout);
  const copier = new KernelCopier(options.fd ?? 1);
  const result: StreamOutputResult = { bytes: 0, kernelCopied: 0 };
  const onProgress = options.onProgress;
  let n = 0;
  try {
    for (const c of chunks) {
      result.bytes += c.length;
      // Told every 256 chunks (records or runs of them): nothing per record in the loop.
      if (onProgress !== undefined && (++n & 255) === 0) onProgress(result.bytes);
      if (c instanceof Uint8Array) {
        out.write(c);
        continue;
      }
      out.flush();
      if (isPayloadRun(c)) {
        result.kernelCopied += copier.run(c as PayloadRun<FilePlace>, out);
        continue;
      }
      const ref = c as PayloadRef<FilePlace>;
      if (copier.copy(ref)) {
        result.kernelCopied += ref.length;
        continue;
      }
      out.write(copier.read(ref));
    }
    out.flush();
  } finally {
    copier.close();
  }
  return result;
}

/** Files opened natively, copied to the output with `sendfile` while it takes it. */
class KernelCopier {
  #lib: NativeLib | null;
  #fd: number;
  #open = new Map<string, number>();
  #files = new Map<string, Deno.FsFile>();
  /** `zs_send_records`'s count of bytes written. */
  #done = new BigUint64Array(1);

  constructor(fd: number) {
    this.#lib = nativeDisabled() ? null : loadNative();
    this.#fd = fd;
    // Into a pipe, a 128 KiB block then goes in one move instead of two waits for the reader
    // (not a pipe, or over the limit: nothing changes).
    this.#lib?.symbols.zs_pipe_grow(fd, PIPE_SIZE);
  }

  #native(lib: NativeLib, path: string): number {
    let fd = this.#open.get(path);
    if (fd === undefined) {
      fd = lib.symbols.zs_open(cString(path), 0, 0);
      if (fd < 0) throw new Error(`cannot open ${path}: ${stringError(lib, -fd)} (errno ${-fd})`);
      this.#open.set(path, fd);
    }
    return fd;
  }

  /**
   * Writes a run: its headers and payloads in one native call while the output takes
   * `sendfile`, else (or from where it stopped taking it) through `out`. Returns the payload
   * bytes the kernel copied.
   */
  run(run: PayloadRun<FilePlace>, out: SyncChunkOutput): number {
    const { headers, payloadLength: len, place } = run;
    const count = run.offsets.length;
    const offsets = place.offset === 0 ? run.offsets : run.offsets.map((o) => o + place.offset);
    let from = 0, headerWritten = false;
    const lib = this.#lib;
    if (lib !== null) {
      const fd = this.#native(lib, place.path);
      const r = lib.symbols.zs_send_records(
        this.#fd,
        fd,
        headers,
        RECORD_SIZE,
        count,
        offsets,
        len,
        this.#done,
      );
      if (r === 0) return count * len;
      // Where it stopped: records done, and maybe the header of the next.
      const done = Number(this.#done[0]);
      from = Math.floor(done / (RECORD_SIZE + len));
      headerWritten = done - from * (RECORD_SIZE + len) === RECORD_SIZE;
      if (r !== -EINVAL && r !== -ENOSYS) this.#fail(lib, r, place.path, offsets[from]!, len);
      // This output does not take sendfile (nothing of this payload was written).
      this.#closeNative();
      this.#lib = null;
    }
    for (let i = from; i < count; i++) {
      if (i > from || !headerWritten) {
        out.write(headers.subarray(i * RECORD_SIZE, (i + 1) * RECORD_SIZE));
      }
      out.write(
        this.read({
          length: len,
          fletcher4: NO_SUM,
          place: { path: place.path, offset: offsets[i]! },
        }),
      );
    }
    return from * len;
  }

  /** Copies the payload; false when it cannot (nothing was written then). */
  copy(ref: PayloadRef<FilePlace>): boolean {
    const lib = this.#lib;
    if (lib === null) return false;
    const { path, offset } = ref.place;
    const fd = this.#native(lib, path);
    const n = Number(lib.symbols.zs_sendfile(this.#fd, fd, BigInt(offset), BigInt(ref.length)));
    if (n === ref.length) return true;
    if (n === -EINVAL || n === -ENOSYS) {
      // This output does not take sendfile (nothing of this payload was written): copy
      // through memory from now on.
      this.#closeNative();
      this.#lib = null;
      return false;
    }
    if (n < 0) this.#fail(lib, n, path, offset, ref.length);
    throw new RangeError(`${path} ends before byte ${offset + ref.length}`);
  }

  /** Throws for `-errno` from copying `length` bytes of `path` at `offset` to the output. */
  #fail(lib: NativeLib, r: number, path: string, offset: number, length: number): never {
    copyFailed(lib, r, path, offset + length);
  }

  /** The payload's bytes, read from its file. */
  read(ref: PayloadRef<FilePlace>): Uint8Array {
    const { path, offset } = ref.place;
    let f = this.#files.get(path);
    if (f === undefined) {
      f = Deno.openSync(path, { read: true });
      this.#files.set(path, f);
    }
    f.seekSync(offset, Deno.SeekMode.Start);
    const out = alignedBytes(ref.length);
    let done = 0;
    while (done < out.length) {
      const n = f.readSync(out.subarray(done));
      if (n === null || n === 0) {
        throw new RangeError(`${path} ends before byte ${offset + out.length}`);
      }
      done += n;
    }
    return out;
  }

  #closeNative(): void {
    if (this.#lib !== null) {
      for (const fd of this.#open.values()) {
        this.#lib.symbols.zs_close(fd);
      }
    }
    this.#open.clear();
  }

  close(): void {
    this.#closeNative();
    for (const f of this.#files.values()) f.close();
    this.#files.clear();
  }
}

/**
 * Throws for `-errno` from copying bytes of `path` (up to byte `end`) to the output: a closed
 * pipe, a file that shrank, or the system's error.
 */
export function copyFailed(lib: NativeLib, r: number, path: string, end: number): never {
  if (r === -EPIPE) throw new Deno.errors.BrokenPipe("Broken pipe (os error 32)");
  // -EIO: the file ended before the payload did (or could not be read); -EFAULT: a mapped
  // window of it was cut while the kernel copied from it.
  if ((r === -EIO || r === -EFAULT) && fileSize(path) < end) {
    throw new RangeError(`${path} ends before byte ${end}: did it shrink?`);
  }
  throw new Error(`writing the stream: ${stringError(lib, -r)} (errno ${-r})`);
}

/** A file's size, or Infinity when it cannot be told (a device, gone). */
function fileSize(path: string): number {
  try {
    const st = Deno.statSync(path);
    return st.isFile ? st.size : Infinity;
  } catch {
    return Infinity;
  }
}

/** The system's text for an errno. */
export function stringError(lib: NativeLib, errno: number): string {
  const p = lib.symbols.zs_strerror(errno);
  return p === null ? "error" : Deno.UnsafePointerView.getCString(p);
}
