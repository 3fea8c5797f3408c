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
  // The high word of al * bl from 16-bit pieces; every partial sum stays below 2^32.
  const p00 = a0 * b0;
  const m1 = a1 * b0 + (p00 >>> 16);
  const m2 = a0 * b1 + (m1 & 0xffff);
  const high = a1 * b1 + (m1 >>> 16) + (m2 >>> 16);
  rh = (high + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
  rl = Math.imul(al, bl) >>> 0;
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

/** The four accumulators of the 32-byte stripes, as [high, low] pairs. */
const lanes = new Uint32Array(8);

/**
 * Runs accumulator `k` (0..3) over the stripes `[from, to)` (whole stripes of 32 bytes): the
 * four accumulators are independent, so each takes its lane of every stripe in a tight loop
 * of its own, with the 64-bit round written out on local variables.
 */
function lanePass(view: DataView, k: number, from: number, to: number): void {
  let acch = lanes[2 * k]!, accl = lanes[2 * k + 1]!;
  for (let i = from + 8 * k; i < to; i += 32) {
    const inl = view.getUint32(i, true), inh = view.getUint32(i + 4, true);
    // x = input * P2 (the high word of the low halves' product from 16-bit pieces)
    let a0 = inl & 0xffff, a1 = inl >>> 16;
    let p00 = a0 * (P2L & 0xffff);
    let m1 = a1 * (P2L & 0xffff) + (p00 >>> 16);
    let m2 = a0 * (P2L >>> 16) + (m1 & 0xffff);
    let xh = (a1 * (P2L >>> 16) + (m1 >>> 16) + (m2 >>> 16) + Math.imul(inh, P2L) +
      Math.imul(inl, P2H)) >>> 0;
    let xl = Math.imul(inl, P2L) >>> 0;
    // x += acc
    const sum = xl + accl;
    xl = sum >>> 0;
    xh = (xh + acch + (sum > 0xffffffff ? 1 : 0)) >>> 0;
    // rotate left by 31
    const yh = ((xh << 31) | (xl >>> 1)) >>> 0;
    const yl = ((xl << 31) | (xh >>> 1)) >>> 0;
    // acc = y * P1
    a0 = yl & 0xffff, a1 = yl >>> 16;
    p00 = a0 * (P1L & 0xffff);
    m1 = a1 * (P1L & 0xffff) + (p00 >>> 16);
    m2 = a0 * (P1L >>> 16) + (m1 & 0xffff);
    acch = (a1 * (P1L >>> 16) + (m1 >>> 16) + (m2 >>> 16) + Math.imul(yh, P1L) +
      Math.imul(yl, P1H)) >>> 0;
    accl = Math.imul(yl, P1L) >>> 0;
  }
  lanes[2 * k] = acch;
  lanes[2 * k + 1] = accl;
}

/** Bytes of stripes each accumulator takes in one pass (cache-sized). */
const PASS = 16384;

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
    const v = lanes;
    add(P1H, P1L, P2H, P2L);
    v[0] = rh, v[1] = rl;
    v[2] = P2H, v[3] = P2L;
    v[4] = 0, v[5] = 0;
    add(~P1H >>> 0, ~P1L >>> 0, 0, 1);
    v[6] = rh, v[7] = rl;
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const stripes = n - (n % 32);
    for (; i < stripes; i += PASS) {
      const to = Math.min(stripes, i + PASS);
      for (let k = 0; k < 4; k++) lanePass(view, k, i, to);
    }
    i = stripes;
    const v1h = v[0]!, v1l = v[1]!, v2h = v[2]!, v2l = v[3]!;
    const v3h = v[4]!, v3l = v[5]!, v4h = v[6]!, v4l = v[7]!;
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
