/**
 * Numbers and dates as the zfs command prints them (`zfs list`, `zfs destroy -v`).
 *
 * @module
 */

const UNITS = ["B", "K", "M", "G", "T", "P", "E"];

/**
 * A size as `zfs_nicebytes` prints it (libzutil's `zfs_nicenum_format`): powers of 1024, an
 * exact multiple of its unit without decimals (`128K`, `0B`), otherwise the most decimals (2, 1
 * or 0) that keep it within 5 characters (`1.50M`, `10.0K`), rounded as C's `printf` rounds.
 *
 * @example
 * ```ts
 * import { niceBytes } from "./zfs_format.ts";
 * if (niceBytes(1572864) !== "1.50M" || niceBytes(0) !== "0B") throw new Error();
 * ```
 */
export function niceBytes(n: number | bigint): string {
  // zfs divides the u64 as a double; below 2^53 that is exact, and BigInt keeps it so.
  const num = BigInt(Number(n));
  let index = 0;
  let whole = num;
  while (whole >= 1024n && index < UNITS.length - 1) {
    whole /= 1024n;
    index++;
  }
  const unit = UNITS[index]!;
  const base = 1024n ** BigInt(index);
  if (index === 0 || num % base === 0n) return `${whole}${unit}`;
  let text = "";
  for (let digits = 2; digits >= 0; digits--) {
    text = fixed(num, base, digits) + unit;
    if (text.length <= 5) break;
  }
  return text;
}

/** `num / base` with `digits` decimals, the exact quotient rounded half to even (glibc's). */
function fixed(num: bigint, base: bigint, digits: number): string {
  const scale = 10n ** BigInt(digits);
  let q = (num * scale) / base;
  const r = (num * scale) % base;
  if (2n * r > base || (2n * r === base && q % 2n === 1n)) q++;
  if (digits === 0) return q.toString();
  const s = q.toString().padStart(digits + 1, "0");
  return `${s.slice(0, -digits)}.${s.slice(-digits)}`;
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/**
 * A time as `zfs list` prints `creation`: `strftime("%a %b %e %k:%M %Y")` in local time
 * (`Sun Dec  6  9:05 2026`).
 *
 * @param seconds seconds since the epoch
 */
export function zfsDate(seconds: number): string {
  const d = new Date(seconds * 1000);
  const pad = (n: number, w: number, c: string) => String(n).padStart(w, c);
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${pad(d.getDate(), 2, " ")} ` +
    `${pad(d.getHours(), 2, " ")}:${pad(d.getMinutes(), 2, "0")} ${d.getFullYear()}`;
}
