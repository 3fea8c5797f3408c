/**
 * XXH64, the 64-bit hash whose low 32 bits a Zstandard frame may carry as its content checksum
 * (RFC 8878, section 3.1.1).
 *
 * JavaScript numbers hold 53 bits exactly, so every 64-bit value here is a pair of unsigned
 * 32-bit halves. The helpers leave their result in two module registers (`rh`, `rl`) instead of
 * returning an object: the hash loop allocates nothing.
 *
 * @module
 */

// The five primes of XXH64, as [high, low] halves.
const P1H = 0x9e3779b1, P1L = 0x85ebca87;
const P2H = 0xc2b2ae3d, P2L = 0x27d4eb4f;
const P3H = 0x165667b1, P3L = 0x9e3779f9;
const P4H = 0x85ebca77, P4L = 0xc2b2ae63;
const P5H = 0x27d4eb2f, P5L = 0x165667c5;
const TWO32 = 4294967296;

let rh = 0;
let rl = 0;

/** rh:rl = (ah:al * bh:bl) mod 2^64 */
function mul(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff, a1 = al >>> 16;
  const b0 = bl & 0xffff, b1 = bl >>> 16;
  const cross0 = a0 * b1, cross1 = a1 * b0;
  // The full 64-bit product of the two low halves, from 16-bit pieces (all exact below 2^53).
  const t = a0 * b0 + ((cross0 & 0xffff) + (cross1 & 0xffff)) * 65536;
  const low = t >>> 0;
  const carry = (t - low) / TWO32;
  const high = a1 * b1 + (cross0 >>> 16) + (cross1 >>> 16) + carry;
  rh = (high + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
  rl = low;
}

/** rh:rl = (ah:al + bh:bl) mod 2^64 */
function add(ah: number, al: number, bh: number, bl: number): void {
  const low = al + bl;
  rl = low >>> 0;
  rh = (ah + bh + (low >= TWO32 ? 1 : 0)) >>> 0;
}

/** rh:rl = ah:al rotated left by r bits, 0 < r < 32 */
function rotl(ah: number, al: number, r: number): void {
  rh = ((ah << r) | (al >>> (32 - r))) >>> 0;
  rl = ((al << r) | (ah >>> (32 - r))) >>> 0;
}

/** rh:rl = rotl(acc + input * P2, 31) * P1, the XXH64 round */
function round(acch: number, accl: number, inh: number, inl: number): void {
  mul(inh, inl, P2H, P2L);
  add(acch, accl, rh, rl);
  rotl(rh, rl, 31);
  mul(rh, rl, P1H, P1L);
}

function u32(b: Uint8Array, i: number): number {
  return (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
}

/**
 * Hashes `data` with XXH64 and seed 0.
 *
 * @param data the bytes to hash
 * @returns the 64-bit hash
 * @example
 * ```ts
 * import { xxhash64 } from "./xxhash64.ts";
 * if (xxhash64(new Uint8Array(0)) !== 0xef46db3751d8e999n) throw new Error();
 * ```
 */
export function xxhash64(data: Uint8Array): bigint {
  hashInto(data);
  return (BigInt(rh) << 32n) | BigInt(rl);
}

/**
 * The low 32 bits of XXH64 (seed 0): what a Zstandard frame's content checksum holds.
 *
 * @param data the bytes to hash
 * @returns the low 32 bits, unsigned
 * @example
 * ```ts
 * import { xxhash64Low32 } from "./xxhash64.ts";
 * if (xxhash64Low32(new Uint8Array(0)) !== 0x51d8e999) throw new Error();
 * ```
 */
export function xxhash64Low32(data: Uint8Array): number {
  hashInto(data);
  return rl;
}

function hashInto(b: Uint8Array): void {
  const n = b.length;
  let i = 0;
  let hh: number, hl: number;
  if (n >= 32) {
    // v1 = P1 + P2, v2 = P2, v3 = 0, v4 = -P1 (mod 2^64)
    add(P1H, P1L, P2H, P2L);
    let v1h = rh, v1l = rl;
    let v2h = P2H, v2l = P2L;
    let v3h = 0, v3l = 0;
    add(~P1H >>> 0, ~P1L >>> 0, 0, 1);
    let v4h = rh, v4l = rl;
    for (const stop = n - 32; i <= stop; i += 32) {
      round(v1h, v1l, u32(b, i + 4), u32(b, i));
      v1h = rh, v1l = rl;
      round(v2h, v2l, u32(b, i + 12), u32(b, i + 8));
      v2h = rh, v2l = rl;
      round(v3h, v3l, u32(b, i + 20), u32(b, i + 16));
      v3h = rh, v3l = rl;
      round(v4h, v4l, u32(b, i + 28), u32(b, i + 24));
      v4h = rh, v4l = rl;
    }
    rotl(v1h, v1l, 1);
    hh = rh, hl = rl;
    rotl(v2h, v2l, 7);
    add(hh, hl, rh, rl);
    hh = rh, hl = rl;
    rotl(v3h, v3l, 12);
    add(hh, hl, rh, rl);
    hh = rh, hl = rl;
    rotl(v4h, v4l, 18);
    add(hh, hl, rh, rl);
    hh = rh, hl = rl;
    for (const [vh, vl] of [[v1h, v1l], [v2h, v2l], [v3h, v3l], [v4h, v4l]] as const) {
      round(0, 0, vh, vl);
      mul((hh ^ rh) >>> 0, (hl ^ rl) >>> 0, P1H, P1L);
      add(rh, rl, P4H, P4L);
      hh = rh, hl = rl;
    }
  } else {
    hh = P5H, hl = P5L;
  }
  add(hh, hl, Math.floor(n / TWO32), n >>> 0);
  hh = rh, hl = rl;
  for (; i + 8 <= n; i += 8) {
    round(0, 0, u32(b, i + 4), u32(b, i));
    rotl((hh ^ rh) >>> 0, (hl ^ rl) >>> 0, 27);
    mul(rh, rl, P1H, P1L);
    add(rh, rl, P4H, P4L);
    hh = rh, hl = rl;
  }
  if (i + 4 <= n) {
    mul(0, u32(b, i), P1H, P1L);
    rotl((hh ^ rh) >>> 0, (hl ^ rl) >>> 0, 23);
    mul(rh, rl, P2H, P2L);
    add(rh, rl, P3H, P3L);
    hh = rh, hl = rl;
    i += 4;
  }
  for (; i < n; i++) {
    mul(0, b[i]!, P5H, P5L);
    rotl((hh ^ rh) >>> 0, (hl ^ rl) >>> 0, 11);
    mul(rh, rl, P1H, P1L);
    hh = rh, hl = rl;
  }
  // Avalanche: h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32.
  hl = (hl ^ (hh >>> 1)) >>> 0;
  mul(hh, hl, P2H, P2L);
  hh = rh, hl = rl;
  hl = (hl ^ ((hl >>> 29) | (hh << 3))) >>> 0;
  hh = (hh ^ (hh >>> 29)) >>> 0;
  mul(hh, hl, P3H, P3L);
  rl = (rl ^ rh) >>> 0;
}
