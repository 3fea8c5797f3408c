/**
 * Writes a stream that a sender made of bytes and payload references to a file descriptor:
 * bytes are gathered into large writes, and each payload held in a store's pack goes from the
 * pack to the output in the kernel (`sendfile`), never through this process. Its checksum
 * came from the store, so its bytes are not read here at all. Where the native library is
 * not loaded, or the output does not take `sendfile`, the payload is read from the pack and
 * written like any other bytes.
 *
 * @module
 */

import { isPayloadRef, type PayloadRef, type StreamChunk } from "../core/writer.ts";
import { cString, loadNative, nativeDisabled, type NativeLib } from "./native/ffi.ts";
import { SyncChunkOutput } from "./output.ts";
import type { PackPlace } from "./store/send_source.ts";
import type { PackSet } from "./store/packs.ts";

/** The pipe buffer asked for: 1 MiB, what an unprivileged process may set by default. */
const PIPE_SIZE = 1 << 20;
const EINVAL = 22;
const ENOSYS = 38;

/** What {@linkcode writeStreamOutput} did. */
export interface StreamOutputResult {
  /** Bytes written. */
  bytes: number;
  /** Of those, payload bytes that the kernel copied from packs. */
  kernelCopied: number;
}

/**
 * Writes `chunks` to `Deno.stdout` (fd 1), resolving payload references in `packs`.
 *
 * @param chunks the stream, as `sendStream` yields it
 * @param packs where the references point
 * @param options `fd`: the descriptor that `Deno.stdout` writes to (1)
 */
export function writeStreamOutput(
  chunks: Iterable<StreamChunk>,
  packs: PackSet,
  options: { fd?: number } = {},
): StreamOutputResult {
  // Synchronous writes: the kernel copies interleave with them on the same descriptor, and an
  // await per record header would cost a thread hand-off each.
  const out = new SyncChunkOutput(Deno.stdout);
  const copier = new KernelCopier(packs, options.fd ?? 1);
  const result: StreamOutputResult = { bytes: 0, kernelCopied: 0 };
  try {
    for (const c of chunks) {
      result.bytes += c.length;
      if (!isPayloadRef(c)) {
        out.write(c);
        continue;
      }
      const ref = c as PayloadRef<PackPlace>;
      out.flush();
      if (copier.copy(ref)) {
        result.kernelCopied += ref.length;
        continue;
      }
      out.write(packs.read(ref.place.pack, ref.place.offset, ref.length));
    }
    out.flush();
  } finally {
    copier.close();
  }
  return result;
}

/** Pack files opened natively, copied to the output with `sendfile` while it takes it. */
class KernelCopier {
  #lib: NativeLib | null;
  #packs: PackSet;
  #fd: number;
  #open = new Map<number, number>();

  constructor(packs: PackSet, fd: number) {
    this.#lib = nativeDisabled() ? null : loadNative();
    this.#packs = packs;
    this.#fd = fd;
    // Into a pipe, a 128 KiB block then goes in one move instead of two waits for the reader
    // (not a pipe, or over the limit: nothing changes).
    this.#lib?.symbols.zs_pipe_grow(fd, PIPE_SIZE);
  }

  /** Copies the payload; false when it cannot (nothing was written then). */
  copy(ref: PayloadRef<PackPlace>): boolean {
    const lib = this.#lib;
    if (lib === null) return false;
    let fd = this.#open.get(ref.place.pack);
    if (fd === undefined) {
      fd = lib.symbols.zs_open(cString(this.#packs.path(ref.place.pack)), 0, 0);
      if (fd < 0) {
        throw new Deno.errors.NotFound(
          `pack ${ref.place.pack} of the store cannot be opened: errno ${-fd}`,
        );
      }
      this.#open.set(ref.place.pack, fd);
    }
    const n = Number(
      lib.symbols.zs_sendfile(this.#fd, fd, BigInt(ref.place.offset), BigInt(ref.length)),
    );
    if (n === ref.length) return true;
    if (n === -EINVAL || n === -ENOSYS) {
      // This output does not take sendfile (nothing of this payload was written): copy
      // through memory from now on.
      this.close();
      this.#lib = null;
      return false;
    }
    if (n === -32) throw new Deno.errors.BrokenPipe("Broken pipe (os error 32)");
    if (n < 0) {
      throw new Error(`writing the stream: ${stringError(lib, -n)} (errno ${-n})`);
    }
    throw new RangeError(
      `pack ${ref.place.pack} ends before byte ${
        ref.place.offset + ref.length
      }: the store is damaged`,
    );
  }

  close(): void {
    if (this.#lib !== null) {
      for (const fd of this.#open.values()) {
        this.#lib.symbols.zs_close(fd);
      }
    }
    this.#open.clear();
  }
}

function stringError(lib: NativeLib, errno: number): string {
  const p = lib.symbols.zs_strerror(errno);
  return p === null ? "error" : Deno.UnsafePointerView.getCString(p);
}
