/**
 * The estimate lines of `zfs send -v` and `-P` (OpenZFS 2.3 `libzfs_sendrecv.c`,
 * `send_print_verbose` and `estimate_size`, numbers by `zfs_nicenum_format`):
 *
 * - `full send of tank/fs@b estimated size is 1.25M`, `send from @a to tank/fs@b ...` (the
 *   source's short name in `-R`/`-I` sends) or `send from tank/fs@a to tank/fs@b ...` (`-i`);
 * - then `total estimated size is 1.25M` (`-R`/`-I`: with a `B` for bytes below 1 KiB, as
 *   every per-snapshot size has one; a single send's total has none);
 * - with `-P`: `full\ttank/fs@b\t1310720`, `incremental\ta\ttank/fs@b\t4096`, `size\t1314816`.
 *
 * @module
 */

/** One snapshot's part of a send, and its size in bytes. */
export interface SendEstimate {
  /** The snapshot sent, `DATASET@SNAP`. */
  to: string;
  /** The snapshot it is sent from, as zfs names it there (`a` or `tank/fs@a`); null: full. */
  from: string | null;
  bytes: number;
}

/**
 * A number as `zfs_nicenum_format` writes it: units of 1024 (`K`, `M`, ... with `bytes`,
 * `B` below 1024), whole multiples without decimals, others with the most decimals (2, 1, 0)
 * that fit five characters.
 *
 * @param n the number
 * @param bytes `zfs_nicebytes` (a `B` for bytes) rather than `zfs_nicenum`
 * @example
 * ```ts
 * import { niceNumber } from "./verbose.ts";
 * const cases: [number, boolean, string][] = [
 *   [512, true, "512B"], [512, false, "512"], [2048, true, "2K"], [1310720, true, "1.25M"],
 *   [12800, false, "12.5K"], [10239, false, "10.0K"], [1023 * 1024 + 1, true, "1023K"],
 * ];
 * for (const [n, b, want] of cases) {
 *   if (niceNumber(n, b) !== want) throw new Error(`${n}: ${niceNumber(n, b)}`);
 * }
 * ```
 */
export function niceNumber(n: number, bytes: boolean): string {
  const units = [bytes ? "B" : "", "K", "M", "G", "T", "P", "E"];
  let index = 0;
  let whole = n;
  while (whole >= 1024 && index < 6) {
    whole = Math.floor(whole / 1024);
    index++;
  }
  const base = 1024 ** index;
  if (index === 0 || n % base === 0) return `${whole}${units[index]}`;
  let text = "";
  for (let digits = 2; digits >= 0; digits--) {
    text = `${(n / base).toFixed(digits)}${units[index]}`;
    if (text.length <= 5) break;
  }
  return text;
}

/**
 * The lines `zfs send -v` (or `-P`, `parsable`) prints before it sends: one per snapshot, then
 * the total.
 *
 * @param parts each snapshot's part and size, in order
 * @param options `parsable` (`-P`); `compound`: a `-R` or `-I` send (its total has units of
 * bytes, as `zfs_send` prints it; a single send's is `zfs_send_one`'s)
 * @returns the lines, each with its newline
 * @example
 * ```ts
 * import { estimateLines } from "./verbose.ts";
 * const parts = [{ to: "tank/fs@b", from: "a", bytes: 4096 }];
 * const text = estimateLines(parts, { parsable: false, compound: true });
 * const want = "send from @a to tank/fs@b estimated size is 4K\ntotal estimated size is 4K\n";
 * if (text !== want) throw new Error(text);
 * const p = estimateLines([{ to: "tank/fs@a", from: null, bytes: 700 }], {
 *   parsable: true, compound: false,
 * });
 * if (p !== "full\ttank/fs@a\t700\nsize\t700\n") throw new Error(p);
 * ```
 */
export function estimateLines(
  parts: SendEstimate[],
  options: { parsable: boolean; compound: boolean },
): string {
  let out = "";
  let total = 0;
  for (const p of parts) {
    total += p.bytes;
    if (options.parsable) {
      out += p.from === null ? `full\t${p.to}` : `incremental\t${p.from}\t${p.to}`;
      out += `\t${p.bytes}\n`;
      continue;
    }
    out += p.from === null
      ? `full send of ${p.to}`
      : p.from.includes("@") || p.from.includes("#")
      ? `send from ${p.from} to ${p.to}`
      : `send from @${p.from} to ${p.to}`;
    if (p.bytes !== 0) out += ` estimated size is ${niceNumber(p.bytes, true)}`;
    out += "\n";
  }
  out += options.parsable
    ? `size\t${total}\n`
    : `total estimated size is ${niceNumber(total, options.compound)}\n`;
  return out;
}
