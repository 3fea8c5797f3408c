/**
 * A stream made of bytes and ranges of one file (`redup`'s output: record headers, and payloads
 * that lie in its input), written to standard output with few calls. Bytes are gathered in a
 * buffer, ranges are kept as (offset, length), and up to 1024 pieces go out in one native call
 * (`zs_write_pieces`: into a file or a device, `writev` from the file mapped; into a pipe,
 * `sendfile`), so that the ranges' bytes never pass through this process. Without the native
 * library the ranges are read from the file and written like the rest.
 *
 * @module
 */

import { alignedBytes } from "./aligned_buffer.ts";
import { cString, loadNative, nativeDisabled, type NativeLib } from "./native/ffi.ts";
import type { SyncByteWriter } from "./output.ts";
import { copyFailed, stringError } from "./stream_output.ts";

/** The pipe buffer asked for: 1 MiB, what an unprivileged process may set by default. */
const PIPE_SIZE = 1 << 20;
/** Bytes gathered before a write. */
const BUFFER = 1 << 20;
/** The descriptor that `Deno.stdout` writes to. */
const STDOUT = 1;
/** Pieces per native call. */
const PIECES = 1024;

/**
 * Writes bytes and ranges of a file, in order, to standard output (or a writer). Bytes given
 * are copied: the caller may reuse them at once. Nothing is written until the buffer fills or
 * {@linkcode FilePieceOutput.flush}.
 *
 * @example
 * ```ts
 * import { FilePieceOutput } from "./piece_output.ts";
 * const src = Deno.makeTempFileSync();
 * Deno.writeFileSync(src, new TextEncoder().encode("hello world"));
 * const got: number[] = [];
 * const writer = { writeSync: (b: Uint8Array) => (got.push(...b), b.length) };
 * {
 *   using out = FilePieceOutput.open(src, writer);
 *   out.writeRange(6, 5);
 *   out.write(new TextEncoder().encode(", "));
 *   out.writeRange(0, 5);
 *   out.flush();
 *   if (out.bytes !== 12) throw new Error();
 * }
 * Deno.removeSync(src);
 * const text = new TextDecoder().decode(new Uint8Array(got));
 * if (text !== "world, hello") throw new Error(text);
 * ```
 */
export class FilePieceOutput implements Disposable {
  #lib: NativeLib | null;
  #path: string;
  /** The file, open natively (with the library) or through Deno. */
  #in: number | Deno.FsFile;
  #out: SyncByteWriter;
  #mem = alignedBytes(BUFFER);
  #used = 0;
  /** (at, length) pairs: `at` a byte offset in the file, or -(offset in the buffer + 1). */
  #pieces = new Float64Array(2 * PIECES);
  #count = 0;
  /** Where the furthest range of the batch ends, for the error of a file that shrank. */
  #end = 0;
  #done = new BigUint64Array(1);
  #closed = false;
  /** Bytes given so far. */
  bytes = 0;

  private constructor(
    lib: NativeLib | null,
    path: string,
    input: number | Deno.FsFile,
    out: SyncByteWriter,
  ) {
    this.#lib = lib;
    this.#path = path;
    this.#in = input;
    this.#out = out;
  }

  /**
   * An output of bytes and ranges of the file `path`, to standard output (fd 1: by the native
   * library when it is loaded) or to `writer` (the ranges read from the file).
   *
   * @param path the file the ranges are of
   * @param writer where to write, instead of standard output
   */
  static open(path: string, writer?: SyncByteWriter): FilePieceOutput {
    const lib = writer === undefined && !nativeDisabled() ? loadNative() : null;
    if (lib === null) {
      const file = Deno.openSync(path, { read: true });
      return new FilePieceOutput(null, path, file, writer ?? Deno.stdout);
    }
    const fd = lib.symbols.zs_open(cString(path), 0, 0);
    if (fd < 0) throw new Error(`cannot open ${path}: ${stringError(lib, -fd)} (errno ${-fd})`);
    // Into a pipe, a 128 KiB block then goes in one move (not a pipe: nothing changes).
    lib.symbols.zs_pipe_grow(STDOUT, PIPE_SIZE);
    return new FilePieceOutput(lib, path, fd, Deno.stdout);
  }

  /** Adds bytes (copied). */
  write(bytes: Uint8Array): void {
    this.bytes += bytes.length;
    if (bytes.length === 0) return;
    if (bytes.length > this.#mem.length) {
      // Larger than the whole buffer: written at once, from where it is.
      this.flush();
      this.#add(-1, bytes.length);
      this.#send(bytes);
      return;
    }
    if (this.#used + bytes.length > this.#mem.length || this.#full()) this.flush();
    const at = this.#used;
    this.#mem.set(bytes, at);
    this.#used += bytes.length;
    const p = this.#pieces;
    const last = 2 * (this.#count - 1);
    // Right after the bytes before (records without a payload): the same piece.
    if (this.#count > 0 && p[last]! < 0 && p[last + 1]! - p[last]! - 1 === at) {
      p[last + 1]! += bytes.length;
    } else this.#add(-(at + 1), bytes.length);
  }

  /** Adds `length` bytes of the file from byte `offset`. */
  writeRange(offset: number, length: number): void {
    this.bytes += length;
    if (length === 0) return;
    if (this.#full()) this.flush();
    this.#add(offset, length);
    if (offset + length > this.#end) this.#end = offset + length;
  }

  /** Writes everything given so far. */
  flush(): void {
    this.#send(this.#mem);
  }

  #full(): boolean {
    return this.#count === PIECES;
  }

  /** Adds a piece (there is room). */
  #add(at: number, length: number): void {
    this.#pieces[2 * this.#count] = at;
    this.#pieces[2 * this.#count + 1] = length;
    this.#count++;
  }

  /** Writes the pieces, whose bytes are in `mem`, and starts a new batch. */
  #send(mem: Uint8Array): void {
    const count = this.#count;
    const end = this.#end;
    this.#count = 0;
    this.#used = 0;
    this.#end = 0;
    if (count === 0) return;
    const lib = this.#lib;
    if (lib === null) return this.#sendByReads(mem, count);
    const r = lib.symbols.zs_write_pieces(
      STDOUT,
      this.#in as number,
      mem,
      BigInt(mem.length),
      this.#pieces,
      count,
      this.#done,
    );
    if (r < 0) copyFailed(lib, r, this.#path, end);
  }

  /** {@linkcode FilePieceOutput.#send} without the native library. */
  #sendByReads(mem: Uint8Array, count: number): void {
    const file = this.#in as Deno.FsFile;
    const p = this.#pieces;
    for (let i = 0; i < count; i++) {
      const at = p[2 * i]!, length = p[2 * i + 1]!;
      let bytes: Uint8Array;
      if (at < 0) bytes = mem.subarray(-at - 1, -at - 1 + length);
      else {
        bytes = alignedBytes(length);
        file.seekSync(at, Deno.SeekMode.Start);
        for (let done = 0; done < length;) {
          const n = file.readSync(bytes.subarray(done));
          if (n === null || n === 0) {
            throw new RangeError(`${this.#path} ends before byte ${at + length}: did it shrink?`);
          }
          done += n;
        }
      }
      for (let done = 0; done < bytes.length;) done += this.#out.writeSync(bytes.subarray(done));
    }
  }

  /** Closes the file (what was not flushed is not written). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (typeof this.#in === "number") this.#lib?.symbols.zs_close(this.#in);
    else this.#in.close();
  }

  /** The same as {@linkcode FilePieceOutput.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
