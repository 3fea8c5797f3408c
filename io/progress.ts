/**
 * Progress of a long verb on stderr. On a terminal: one line redrawn in place (bytes, rate and,
 * when the total is known, percent and time left), at most twice a second. Elsewhere (a log, a
 * pipe): no control codes, only when asked for (`--progress`, `-v`), a plain line every few
 * seconds and one at the end. Callers report at coarse steps (a chunk of input, every few
 * hundred records), so a hot loop pays nothing per record.
 *
 * @module
 */

const enc = new TextEncoder();

/** What a progress line tells. */
export interface ProgressState {
  /** Bytes done. */
  bytes: number;
  /** Bytes in all, when known (an input file's size, an estimate). */
  total: number | null;
  /** Records (or what `count` names) done, when counted. */
  records?: number | null;
  /** What `records` counts (`records` by default; `files`). */
  count?: string;
  /** Milliseconds since the start. */
  elapsedMs: number;
}

/**
 * Bytes in binary units, one decimal above 1 KiB.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./progress.ts";
 * if (formatBytes(512) !== "512 B" || formatBytes(1536) !== "1.5 KiB") throw new Error();
 * if (formatBytes(3 * 2 ** 30) !== "3.0 GiB") throw new Error();
 * ```
 */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** Seconds as `42s`, `3m05s` or `2h07m`. */
function formatDuration(secs: number): string {
  const s = Math.max(0, Math.ceil(secs));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/**
 * The text of a progress line: bytes (of the total, with percent), records, rate, time left.
 *
 * @example
 * ```ts
 * import { formatProgress } from "./progress.ts";
 * const line = formatProgress({
 *   bytes: 50 * 2 ** 20, total: 200 * 2 ** 20, records: 1200, elapsedMs: 2000,
 * });
 * if (line !== "50.0 MiB of 200.0 MiB (25%), 1200 records, 25.0 MiB/s, 6s left") {
 *   throw new Error(line);
 * }
 * const open = formatProgress({ bytes: 2048, total: null, elapsedMs: 0 });
 * if (open !== "2.0 KiB") throw new Error(open);
 * ```
 */
export function formatProgress(s: ProgressState): string {
  const secs = s.elapsedMs / 1000;
  const rate = secs > 0 ? s.bytes / secs : 0;
  let line = formatBytes(s.bytes);
  if (s.total !== null) {
    const pct = s.total > 0 ? Math.min(100, Math.floor((s.bytes / s.total) * 100)) : 100;
    line += ` of ${formatBytes(s.total)} (${pct}%)`;
  }
  if (s.records !== undefined && s.records !== null) {
    line += `, ${s.records} ${s.count ?? "records"}`;
  }
  if (rate > 0) line += `, ${formatBytes(rate)}/s`;
  if (s.total !== null && rate > 0 && s.bytes < s.total) {
    line += `, ${formatDuration((s.total - s.bytes) / rate)} left`;
  }
  return line;
}

/** `terminal`: one line redrawn with `\r`; `lines`: plain lines, no control codes. */
export type ProgressMode = "terminal" | "lines";

/** Options of {@linkcode Progress}. */
export interface ProgressOptions {
  /** How lines are drawn (default `terminal`). */
  mode?: ProgressMode;
  /** Where text goes (stderr by default). */
  write?: (s: string) => void;
  /** Least milliseconds between lines (500 on a terminal, 5000 otherwise). */
  interval?: number;
  /** Said before each line (`verify: `). */
  label?: string;
  /** What the second number counts (`records` by default). */
  count?: string;
}

/**
 * Reports progress as {@linkcode ProgressOptions.mode} says, at most every `interval` ms.
 *
 * @example
 * ```ts
 * import { Progress } from "./progress.ts";
 * const out: string[] = [];
 * const p = new Progress(1000, { mode: "lines", write: (s) => out.push(s), interval: 0 });
 * p.update(500, 10);
 * p.done();
 * if (!out[0]!.startsWith("500 B of 1000 B (50%), 10 records") || out.join("").includes("\r")) {
 *   throw new Error(out.join());
 * }
 * ```
 */
export class Progress {
  #total: number | null;
  #start = performance.now();
  #last = 0;
  #shown = false;
  #bytes = 0;
  #records: number | null = null;
  #mode: ProgressMode;
  #write: (s: string) => void;
  #interval: number;
  #label: string;
  #count: string;

  /**
   * @param total bytes expected, or null when unknown (a pipe)
   * @param options how and where to draw
   */
  constructor(total: number | null, options: ProgressOptions = {}) {
    this.#total = total;
    this.#mode = options.mode ?? "terminal";
    this.#write = options.write ?? ((s) => Deno.stderr.writeSync(enc.encode(s)));
    this.#interval = options.interval ?? (this.#mode === "terminal" ? 500 : 5000);
    this.#label = options.label ?? "";
    this.#count = options.count ?? "records";
    // The first line comes one interval in: a short run draws nothing on a terminal.
    this.#last = this.#start;
  }

  /** The total, once it is known (an estimate made after the start). */
  set total(total: number | null) {
    this.#total = total;
  }

  /** Reports `bytes` done so far (and `records`, when counted); the count never goes back. */
  update(bytes: number, records?: number): void {
    this.#bytes = Math.max(this.#bytes, bytes);
    if (records !== undefined) this.#records = records;
    const now = performance.now();
    if (now - this.#last < this.#interval) return;
    this.#last = now;
    this.#draw(now);
  }

  #draw(now: number): void {
    const text = this.#label + formatProgress({
      bytes: this.#bytes,
      total: this.#total,
      records: this.#records,
      count: this.#count,
      elapsedMs: now - this.#start,
    });
    this.#shown = true;
    this.#write(this.#mode === "terminal" ? `\r${text}\x1b[K` : `${text}\n`);
  }

  /** Ends a line drawn on a terminal so that other text can follow; progress goes on. */
  interrupt(): void {
    if (this.#mode === "terminal" && this.#shown) this.#write("\n");
    this.#shown = false;
  }

  /**
   * Ends the progress: on a terminal the line is finished (when one was drawn); as plain lines,
   * a last line with the final count. Later calls do nothing.
   *
   * @param bytes the final count, when the last update was not told it
   * @param records the final count of records (or files)
   */
  done(bytes?: number, records?: number): void {
    if (bytes !== undefined && this.#interval !== Infinity) {
      this.#bytes = bytes;
      if (records !== undefined) this.#records = records;
      if (this.#mode === "terminal" && this.#shown) this.#draw(performance.now());
    }
    if (this.#mode === "terminal") {
      if (this.#shown) this.#write("\n");
    } else if (this.#interval !== Infinity) this.#draw(performance.now());
    this.#shown = false;
    this.#interval = Infinity;
    this.#last = Infinity;
  }
}

function isTerminal(f: { isTerminal(): boolean }): boolean {
  try {
    return f.isTerminal();
  } catch {
    return false;
  }
}

/**
 * The progress a verb shows: on a terminal always (unless its output goes to the same
 * terminal, where a redrawn line would break into it), elsewhere only when asked for.
 *
 * @param options `asked`: `--progress` (or `-v`) was given; `total`: bytes expected;
 * `stdoutIsOutput`: the verb writes its results to stdout as it goes
 * @returns the progress, or null for none
 */
export function progressFor(options: {
  asked: boolean;
  total: number | null;
  stdoutIsOutput?: boolean;
  label?: string;
  count?: string;
}): Progress | null {
  const label = options.label ?? "";
  const count = options.count ?? "records";
  let interval: number | undefined;
  try {
    // Tests make lines come faster than twice a second, or every few seconds.
    const ms = Deno.env.get("ZSEND_PROGRESS_INTERVAL_MS");
    if (ms !== undefined && ms !== "") interval = Number(ms);
  } catch { /* no --allow-env: the default */ }
  const common = { label, count, ...(interval !== undefined ? { interval } : {}) };
  if (isTerminal(Deno.stderr) && !(options.stdoutIsOutput && isTerminal(Deno.stdout))) {
    return new Progress(options.total, { mode: "terminal", ...common });
  }
  if (!options.asked) return null;
  return new Progress(options.total, { mode: "lines", ...common });
}

/**
 * The size of a stream input when it is a regular file (a path, or stdin redirected from one, seen through `/dev/stdin`);
 * null for a pipe, a device or a terminal.
 */
export function inputSize(path: string | undefined): number | null {
  try {
    const st = Deno.statSync(path === undefined || path === "-" ? "/dev/stdin" : path);
    return st.isFile ? st.size : null;
  } catch {
    return null;
  }
}

/**
 * Passes chunks through, reporting the bytes that went by (once per chunk: megabytes apart);
 * without a progress, the chunks themselves (nothing in between).
 *
 * @example
 * ```ts
 * import { countedChunks, Progress } from "./progress.ts";
 * const seen: string[] = [];
 * const p = new Progress(null, { mode: "lines", write: (s) => seen.push(s), interval: 0 });
 * async function* two() {
 *   yield new Uint8Array(3);
 *   yield new Uint8Array(4);
 * }
 * let n = 0;
 * for await (const c of countedChunks(two(), p)) n += c.length;
 * if (n !== 7 || !seen[1]!.startsWith("7 B")) throw new Error(seen.join());
 * ```
 */
export function countedChunks(
  chunks: AsyncIterable<Uint8Array>,
  progress: Progress | null,
): AsyncIterable<Uint8Array> {
  if (progress === null) return chunks;
  return (async function* () {
    let bytes = 0;
    for await (const c of chunks) {
      bytes += c.length;
      progress.update(bytes);
      yield c;
    }
  })();
}

/**
 * A stream input with its progress (see {@linkcode progressFor}): the chunks, counted, and
 * the progress to end with `done()` (null when none is shown).
 *
 * @param chunks the input's chunks
 * @param path the input as given (its size is the total when it is a file)
 * @param options as {@linkcode progressFor}'s
 */
export function trackedInput(
  chunks: AsyncIterable<Uint8Array>,
  path: string | undefined,
  options: { asked: boolean; stdoutIsOutput?: boolean; label?: string },
): { chunks: AsyncIterable<Uint8Array>; progress: Progress | null } {
  const progress = progressFor({ ...options, total: inputSize(path) });
  return { chunks: countedChunks(chunks, progress), progress };
}
