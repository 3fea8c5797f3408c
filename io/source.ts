/**
 * Stream bytes from files and standard input, in large fresh chunks.
 *
 * @module
 */

/** Default chunk size: large enough that most payloads lie within one chunk. */
export const CHUNK_SIZE = 4 << 20;

/** Where bytes can be read from (`Deno.stdin`, an open file, ...). */
export interface ByteReader {
  read(p: Uint8Array): Promise<number | null>;
}

/**
 * Reads a file (or any reader) to its end, in chunks of `chunkSize` bytes (the last may be
 * shorter). Each chunk is a new buffer, so views into it stay valid.
 *
 * @example
 * ```ts
 * import { readerChunks } from "./source.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeFile(path, new Uint8Array(10).fill(7));
 * using file = await Deno.open(path);
 * const chunks = await Array.fromAsync(readerChunks(file, 4));
 * await Deno.remove(path);
 * if (chunks.map((c) => c.length).join() !== "4,4,2") throw new Error();
 * ```
 */
export async function* readerChunks(
  reader: ByteReader,
  chunkSize: number = CHUNK_SIZE,
): AsyncGenerator<Uint8Array> {
  for (;;) {
    const buf = new Uint8Array(chunkSize);
    let filled = 0;
    let eof = false;
    while (filled < chunkSize) {
      const n = await reader.read(buf.subarray(filled));
      if (n === null) {
        eof = true;
        break;
      }
      filled += n;
    }
    if (filled > 0) yield buf.subarray(0, filled);
    if (eof) return;
  }
}

/**
 * The bytes of a stream named on the command line: a path, or `-` (or nothing) for stdin.
 * Refuses a terminal as input, as `zstream` does.
 */
export async function* openStreamInput(path: string | undefined): AsyncGenerator<Uint8Array> {
  if (path === undefined || path === "-") {
    if (Deno.stdin.isTerminal()) {
      throw new TypeError(
        "the stream cannot be read from a terminal: name a file or take input from a pipe",
      );
    }
    yield* readerChunks(Deno.stdin);
    return;
  }
  using file = await Deno.open(path);
  yield* readerChunks(file);
}
