/**
 * Progress on stderr: bytes, records, rate, and time left when the total is known.
 *
 * @module
 */

const enc = new TextEncoder();

function human(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/**
 * Prints a progress line at most every `interval` ms, overwriting the last one.
 *
 * @example
 * ```ts
 * import { Progress } from "./progress.ts";
 * const lines: string[] = [];
 * const p = new Progress(1000, (s) => lines.push(s), 0);
 * p.update(500, 10);
 * p.done();
 * if (!lines.join("").includes("500 B")) throw new Error(lines.join());
 * ```
 */
export class Progress {
  #total: number | null;
  #start = performance.now();
  #last = 0;
  #write: (s: string) => void;
  #interval: number;

  /**
   * @param total bytes expected, or null when unknown (a pipe)
   * @param write where lines go (stderr by default)
   * @param interval least milliseconds between lines
   */
  constructor(
    total: number | null,
    write: (s: string) => void = (s) => Deno.stderr.writeSync(enc.encode(s)),
    interval = 500,
  ) {
    this.#total = total;
    this.#write = write;
    this.#interval = interval;
  }

  /** Reports `bytes` read and `records` decoded so far. */
  update(bytes: number, records: number): void {
    const now = performance.now();
    if (now - this.#last < this.#interval) return;
    this.#last = now;
    const secs = (now - this.#start) / 1000;
    const rate = secs > 0 ? bytes / secs : 0;
    let line = `\r${human(bytes)}`;
    if (this.#total !== null) line += ` of ${human(this.#total)}`;
    line += `, ${records} records, ${human(rate)}/s`;
    if (this.#total !== null && rate > 0) {
      line += `, ${Math.max(0, Math.ceil((this.#total - bytes) / rate))} s left`;
    }
    this.#write(line + "\x1b[K");
  }

  /** Ends the line. */
  done(): void {
    if (this.#last > 0) this.#write("\n");
  }
}
