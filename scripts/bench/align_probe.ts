/**
 * The machine's penalty for misaligned I/O buffers: the bench's stream read with `readSync`
 * into a page-aligned buffer, the same 16 and 64 bytes further on, a plain `Uint8Array` (where
 * V8 put it) and the bytes of a `WebAssembly.Memory` (how `io/aligned_buffer.ts` aligns without
 * `--allow-ffi`); a file and a pipe (to `cat > /dev/null`) written with `writeSync` from an
 * aligned buffer and from 16 bytes further on. Best and median of N, runs interleaved.
 *
 *   deno run -A scripts/bench/align_probe.ts FILE [RUNS]
 *
 * @module
 */

import { alignedBytes, misalignment, PAGE_SIZE } from "../../io/aligned_buffer.ts";
import { CHUNK_SIZE } from "../../io/source.ts";

/** One buffer placement, timed. */
export interface ProbeRow {
  /** "read", "write" (a file) or "pipe" (a write into a pipe). */
  op: "read" | "write" | "pipe";
  /** What the buffer is. */
  buffer: string;
  /** Its address past a page boundary, when known. */
  pageOffset: number | null;
  best: number;
  median: number;
  bytes: number;
}

/** What the probe found. */
export interface AlignProbeResult {
  chunkBytes: number;
  runs: number;
  rows: ProbeRow[];
}

/** Bytes written by each write probe (to a file in `scratch`, removed after). */
const WRITE_BYTES = 256 << 20;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

function readAll(path: string, buf: Uint8Array): number {
  using f = Deno.openSync(path, { read: true });
  let n = 0;
  for (;;) {
    const got = f.readSync(buf);
    if (got === null || got === 0) return n;
    n += got;
  }
}

function writeAll(path: string, buf: Uint8Array, bytes: number): number {
  using f = Deno.openSync(path, { write: true, create: true, truncate: true });
  let n = 0;
  while (n < bytes) n += f.writeSync(buf.subarray(0, Math.min(buf.length, bytes - n)));
  return n;
}

/**
 * Times reads of `path` (and writes into `scratch`) through buffers at different alignments.
 *
 * @param path the stream, read whole each run (warm in the page cache)
 * @param runs runs per row
 * @param scratch a directory for the write probe's file
 */
export function alignProbe(path: string, runs: number, scratch: string): AlignProbeResult {
  const size = CHUNK_SIZE;
  const base = alignedBytes(size + PAGE_SIZE, { align: PAGE_SIZE });
  const buffers: { buffer: string; view: Uint8Array; pageOffset: number | null }[] = [
    { buffer: "page-aligned", view: base.subarray(0, size), pageOffset: 0 },
    { buffer: "page-aligned + 16 bytes", view: base.subarray(16, 16 + size), pageOffset: 16 },
    { buffer: "page-aligned + 64 bytes", view: base.subarray(64, 64 + size), pageOffset: 64 },
  ];
  const plain = new Uint8Array(size);
  buffers.push({
    buffer: "plain `new Uint8Array` (before this change)",
    view: plain,
    pageOffset: misalignment(plain, PAGE_SIZE),
  });
  const wasm = alignedBytes(size, { method: "wasm-memory" });
  buffers.push({
    buffer: "WebAssembly.Memory (aligned without --allow-ffi)",
    view: wasm,
    pageOffset: misalignment(wasm, PAGE_SIZE),
  });
  const times = buffers.map(() => [] as number[]);
  let bytes = 0;
  for (let r = 0; r < runs; r++) {
    buffers.forEach((b, i) => {
      const t0 = performance.now();
      bytes = readAll(path, b.view);
      times[i]!.push((performance.now() - t0) / 1000);
    });
  }
  const rows: ProbeRow[] = buffers.map((b, i) => ({
    op: "read",
    buffer: b.buffer,
    pageOffset: b.pageOffset,
    best: Math.min(...times[i]!),
    median: median(times[i]!),
    bytes,
  }));
  // Writes: the kernel's copy out of the buffer into the page cache.
  const out = `${scratch}/align-probe.out`;
  const writers = buffers.slice(0, 2);
  const wtimes = writers.map(() => [] as number[]);
  try {
    for (let r = 0; r < runs; r++) {
      writers.forEach((b, i) => {
        const t0 = performance.now();
        writeAll(out, b.view, WRITE_BYTES);
        wtimes[i]!.push((performance.now() - t0) / 1000);
        Deno.removeSync(out);
      });
    }
  } finally {
    try {
      Deno.removeSync(out);
    } catch { /* removed after each run */ }
  }
  writers.forEach((b, i) =>
    rows.push({
      op: "write",
      buffer: b.buffer,
      pageOffset: b.pageOffset,
      best: Math.min(...wtimes[i]!),
      median: median(wtimes[i]!),
      bytes: WRITE_BYTES,
    })
  );
  rows.push(...pipeProbe(writers, runs, scratch));
  return { chunkBytes: size, runs, rows };
}

/** Writes into a pipe that `cat` empties to /dev/null, from each buffer. */
function pipeProbe(
  writers: { buffer: string; view: Uint8Array; pageOffset: number | null }[],
  runs: number,
  scratch: string,
): ProbeRow[] {
  const fifo = `${scratch}/align-probe.fifo`;
  const made = new Deno.Command("mkfifo", { args: [fifo] }).outputSync();
  if (!made.success) return [];
  const cat = new Deno.Command("sh", {
    args: ["-c", 'exec cat "$1" > /dev/null', "sh", fifo],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const times = writers.map(() => [] as number[]);
  try {
    using pipe = Deno.openSync(fifo, { write: true });
    for (let r = 0; r < runs; r++) {
      writers.forEach((b, i) => {
        const t0 = performance.now();
        let n = 0;
        while (n < WRITE_BYTES) {
          n += pipe.writeSync(b.view.subarray(0, Math.min(b.view.length, WRITE_BYTES - n)));
        }
        times[i]!.push((performance.now() - t0) / 1000);
      });
    }
  } finally {
    Deno.removeSync(fifo);
  }
  // cat ends when the write end closes (above).
  void cat.status;
  return writers.map((b, i) => ({
    op: "pipe",
    buffer: b.buffer,
    pageOffset: b.pageOffset,
    best: Math.min(...times[i]!),
    median: median(times[i]!),
    bytes: WRITE_BYTES,
  }));
}

if (import.meta.main) {
  const [path, runs] = Deno.args;
  if (path === undefined) {
    console.error("usage: deno run -A scripts/bench/align_probe.ts FILE [RUNS]");
    Deno.exit(2);
  }
  const dir = await Deno.makeTempDir();
  try {
    console.log(JSON.stringify(alignProbe(path, Number(runs ?? 3), dir), null, 2));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
