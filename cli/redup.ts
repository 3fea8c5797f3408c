/**
 * `zsend redup [-v] [FILE|-]`: a dedup stream as a plain one, on stdout, as OpenZFS `zstream
 * redup` makes it (which a `zfs receive` that refuses dedup streams then takes).
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { readRecordBatches, readRecords } from "../core/stream/reader.ts";
import { redupByReference, redupRecords, type RedupStats } from "../core/transform/redup.ts";
import { DiskRedupIndex } from "../io/redup_index.ts";
import { alignedBytes } from "../io/aligned_buffer.ts";
import { type ByteWriter, writeAll } from "../io/output.ts";
import { FilePieceOutput } from "../io/piece_output.ts";
import { openStreamInput } from "../io/source.ts";
import { trackedInput } from "../io/progress.ts";
import { engine, oneInput, rejectUnknown, warn } from "./common.ts";
import { streamInputArg } from "./args.ts";

/** Usage of the verb. */
export const USAGE = "zsend redup [-v] [--progress] [FILE|-] > PLAIN_STREAM";

/** Size of the pieces written to the output. */
const OUT_BLOCK = 1 << 20;

/**
 * Writes chunks to `out` in pieces of about 1 MiB (small chunks are gathered, large ones go as
 * they are).
 *
 * @example
 * ```ts
 * import { pipeChunks } from "./redup.ts";
 * const sizes: number[] = [];
 * const out = { write: (b: Uint8Array) => (sizes.push(b.length), Promise.resolve(b.length)) };
 * const n = await pipeChunks([new Uint8Array(3), new Uint8Array(4)], out);
 * if (n !== 7 || sizes.join() !== "7") throw new Error(sizes.join());
 * ```
 */
export async function pipeChunks(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  out: ByteWriter,
): Promise<number> {
  const block = alignedBytes(OUT_BLOCK);
  let filled = 0;
  let total = 0;
  for await (const c of chunks) {
    total += c.length;
    if (filled + c.length > OUT_BLOCK) {
      if (filled > 0) await writeAll(out, block.subarray(0, filled));
      filled = 0;
    }
    if (c.length >= OUT_BLOCK) {
      await writeAll(out, c);
      continue;
    }
    block.set(c, filled);
    filled += c.length;
  }
  if (filled > 0) await writeAll(out, block.subarray(0, filled));
  return total;
}

/**
 * Refuses a terminal as stdout, where a binary stream does no good.
 *
 * @example
 * ```ts
 * import { refuseTerminalOutput } from "./redup.ts";
 * refuseTerminalOutput({ isTerminal: () => false }); // a pipe or a file: fine
 * let threw = false;
 * try {
 *   refuseTerminalOutput({ isTerminal: () => true });
 * } catch (e) {
 *   threw = e instanceof TypeError;
 * }
 * if (!threw) throw new Error();
 * ```
 */
export function refuseTerminalOutput(out: { isTerminal(): boolean } = Deno.stdout): void {
  if (out.isTerminal()) {
    throw new TypeError(
      "refusing to write a send stream to a terminal: redirect stdout to a file or a pipe",
    );
  }
}

function isRegularFile(path: string | undefined): path is string {
  if (path === undefined || path === "-") return false;
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Runs the verb; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    boolean: ["v", "help", "progress"],
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const input = streamInputArg(oneInput(flags._, "redup"));
  refuseTerminalOutput();
  const source = isRegularFile(input) ? input : null;
  // Each record goes out before the next is read: the input's and the index's buffers are
  // reused.
  using index = DiskRedupIndex.create({ reuse: true, ...(source ? { source } : {}) });
  const stats: RedupStats = { records: 0, byref: 0, writes: 0, begins: 0 };
  const fletcher4 = engine();
  const { chunks, progress } = trackedInput(openStreamInput(input, { reuse: true }), input, {
    asked: flags.v || flags.progress,
    label: "zsend redup: ",
  });
  // A payload that spans two chunks is copied into one reused buffer, not a new one each.
  const read = { fletcher4, payloadChecksums: true, reuseSpans: true };
  let bytes: number;
  try {
    if (source === null) {
      bytes = await pipeChunks(
        redupRecords(readRecords(chunks, read), index, { fletcher4, stats }),
        Deno.stdout,
      );
    } else {
      // The payloads go from the input file to the output in the kernel, never read here
      // (their checksums came with them).
      using out = FilePieceOutput.open(source);
      await redupByReference(readRecordBatches(chunks, read), index, out, { fletcher4, stats });
      out.flush();
      bytes = out.bytes;
    }
  } finally {
    progress?.done();
  }
  if (flags.v) {
    warn(
      `zsend redup: ${stats.records} records, ${stats.byref} WRITE_BYREF replaced, ` +
        `${bytes} bytes written; index: ${index.entries} blocks in ${index.runs} runs, ` +
        (index.spooledBytes > 0
          ? `${index.spooledBytes} bytes spooled`
          : "read back from the input file"),
    );
  }
  return 0;
}
