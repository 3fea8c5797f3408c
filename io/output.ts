/**
 * Buffered text and byte output to a writer (stdout by default), quiet on a closed pipe.
 *
 * @module
 */

import { alignedBytes } from "./aligned_buffer.ts";

const encoder = new TextEncoder();

/** Where bytes can be written (`Deno.stdout`, an open file, ...). */
export interface ByteWriter {
  write(p: Uint8Array): Promise<number>;
}

/**
 * Collects text and writes it in large pieces.
 *
 * @example
 * ```ts
 * import { TextOutput } from "./output.ts";
 * const chunks: Uint8Array[] = [];
 * const out = new TextOutput({ write: (b) => (chunks.push(b.slice()), Promise.resolve(b.length)) });
 * out.print("hello ");
 * out.print("world\n");
 * await out.flush();
 * if (new TextDecoder().decode(chunks[0]) !== "hello world\n") throw new Error();
 * ```
 */
export class TextOutput {
  #writer: ByteWriter;
  #pending: string[] = [];
  #size = 0;
  /** Where the text is encoded for the write: aligned, reused. */
  #buf: Uint8Array = new Uint8Array(0);
  #writing: Promise<void> | null = null;
  /** Flush when this many characters are pending. */
  threshold = 1 << 16;

  /** @param writer where the bytes go */
  constructor(writer: ByteWriter = Deno.stdout) {
    this.#writer = writer;
  }

  /** Adds text; returns a promise only when a flush was due. */
  print(text: string): Promise<void> | undefined {
    this.#pending.push(text);
    this.#size += text.length;
    if (this.#size >= this.threshold) return this.flush();
  }

  /** Writes everything pending. */
  async flush(): Promise<void> {
    // A flush not awaited still writes from the buffer.
    while (this.#writing !== null) await this.#writing;
    if (this.#pending.length === 0) return;
    const text = this.#pending.join("");
    this.#pending = [];
    this.#size = 0;
    // At most 3 bytes per UTF-16 unit; into an aligned buffer rather than a fresh one.
    if (this.#buf.length < text.length * 3) {
      this.#buf = alignedBytes(Math.max(text.length * 3, this.threshold * 3));
    }
    const { written } = encoder.encodeInto(text, this.#buf);
    this.#writing = writeAll(this.#writer, this.#buf.subarray(0, written));
    try {
      await this.#writing;
    } finally {
      this.#writing = null;
    }
  }
}

/** Writes all bytes, looping over short writes. */
export async function writeAll(w: ByteWriter, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await w.write(bytes.subarray(off));
}

/** Whether an error is a closed pipe on the other end (`zsend dump | head`). */
export function isBrokenPipe(e: unknown): boolean {
  return e instanceof Deno.errors.BrokenPipe ||
    (e instanceof Error && /broken pipe|EPIPE/i.test(e.message));
}

/**
 * Collects byte chunks and writes them in large pieces (many records are small).
 *
 * @example
 * ```ts
 * import { ChunkOutput } from "./output.ts";
 * const got: number[] = [];
 * const out = new ChunkOutput({ write: (b) => (got.push(b.length), Promise.resolve(b.length)) });
 * await out.write(new Uint8Array(3));
 * await out.write(new Uint8Array(4));
 * await out.flush();
 * if (got.join() !== "7") throw new Error(got.join());
 * ```
 */
export class ChunkOutput {
  #writer: ByteWriter;
  #buf: Uint8Array;
  #used = 0;

  /**
   * @param writer where the bytes go (stdout by default)
   * @param size the buffer's size
   */
  constructor(writer: ByteWriter = Deno.stdout, size = 1 << 20) {
    this.#writer = writer;
    this.#buf = alignedBytes(size);
  }

  /** Adds bytes; large ones go straight through. */
  async write(chunk: Uint8Array): Promise<void> {
    if (this.#used + chunk.length > this.#buf.length) await this.flush();
    if (chunk.length >= this.#buf.length) {
      await writeAll(this.#writer, chunk);
      return;
    }
    this.#buf.set(chunk, this.#used);
    this.#used += chunk.length;
  }

  /** Writes what is buffered. */
  async flush(): Promise<void> {
    if (this.#used === 0) return;
    const n = this.#used;
    this.#used = 0;
    await writeAll(this.#writer, this.#buf.subarray(0, n));
  }
}

/** Where bytes can be written synchronously (`Deno.stdout`, an open file, ...). */
export interface SyncByteWriter {
  writeSync(p: Uint8Array): number;
}

/**
 * {@linkcode ChunkOutput} with synchronous writes, for output interleaved with writes that the
 * kernel makes to the same descriptor (`sendfile`).
 *
 * @example
 * ```ts
 * import { SyncChunkOutput } from "./output.ts";
 * const got: number[] = [];
 * const out = new SyncChunkOutput({ writeSync: (b) => (got.push(b.length), b.length) });
 * out.write(new Uint8Array(3));
 * out.write(new Uint8Array(4));
 * out.flush();
 * if (got.join() !== "7") throw new Error(got.join());
 * ```
 */
export class SyncChunkOutput {
  #writer: SyncByteWriter;
  #buf: Uint8Array;
  #used = 0;

  /**
   * @param writer where the bytes go
   * @param size the buffer's size
   */
  constructor(writer: SyncByteWriter, size = 1 << 20) {
    this.#writer = writer;
    this.#buf = alignedBytes(size);
  }

  /** Adds bytes; large ones go straight through. */
  write(chunk: Uint8Array): void {
    if (this.#used + chunk.length > this.#buf.length) this.flush();
    if (chunk.length >= this.#buf.length) {
      writeAllSync(this.#writer, chunk);
      return;
    }
    this.#buf.set(chunk, this.#used);
    this.#used += chunk.length;
  }

  /** Writes what is buffered. */
  flush(): void {
    if (this.#used === 0) return;
    const n = this.#used;
    this.#used = 0;
    writeAllSync(this.#writer, this.#buf.subarray(0, n));
  }
}

function writeAllSync(w: SyncByteWriter, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += w.writeSync(bytes.subarray(off));
}
