/**
 * Small seeded pseudo-random number generators for test data, so that a failure can be
 * replayed from its seed.
 *
 * @module
 */

/**
 * xorshift32: the next unsigned 32-bit number at each call.
 *
 * @example
 * ```ts
 * import { xorshift32 } from "./prng.ts";
 * const a = xorshift32(7), b = xorshift32(7);
 * if (a() !== b() || a() !== b()) throw new Error("not repeatable");
 * ```
 */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/**
 * mulberry32: the next unsigned 32-bit number at each call.
 *
 * @example
 * ```ts
 * import { mulberry32 } from "./prng.ts";
 * const r = mulberry32(1);
 * const n = r();
 * if (!Number.isInteger(n) || n < 0 || n >= 2 ** 32) throw new Error();
 * ```
 */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}
