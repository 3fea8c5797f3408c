/**
 * fletcher-4, the checksum of send streams, in pure TypeScript.
 *
 * Four 64-bit accumulators a, b, c, d; for each 32-bit word w of the data, in the stream's
 * byte order: a += w, b += a, c += b, d += c (mod 2^64). Trailing bytes beyond a multiple of
 * four are ignored. The state is kept as eight 32-bit halves (`lo, hi` per accumulator, the
 * memory layout of `uint64_t[4]` on a little-endian host), so the native library can update
 * the same state in place.
 *
 * @module
 */

import type { Checksum } from "../stream/record.ts";

/** Something that folds bytes into a fletcher-4 state. */
export interface Fletcher4Engine {
  /** A short name for reports ("typescript", "native-avx2", ...). */
  readonly name: string;
  /**
   * Folds `data` into `state` (eight u32 halves: a.lo, a.hi, b.lo, b.hi, ...).
   *
   * @param littleEndian whether the data's 32-bit words are little-endian
   */
  update(state: Uint32Array, data: Uint8Array, littleEndian: boolean): void;
  /**
   * Optional: {@linkcode Fletcher4.append} in one step, `ck` as four u64 (the native library's:
   * the BigInt arithmetic costs more than a call); same results. `length` is at most 2^32 - 1.
   */
  append?(state: Uint32Array, ck: BigUint64Array, length: number): void;
  /**
   * Optional: {@linkcode foldRecords} of ./fletcher4_records.ts in one step (the native
   * library's, for runs of thousands of WRITE records); same arguments, same results.
   */
  updateRecords?(
    state: Uint32Array,
    headers: Uint8Array,
    sums: BigUint64Array,
    payloadLength: number,
    littleEndian: boolean,
    recordChecksums: boolean,
  ): void;
}

const TWO32 = 4294967296;
/** Words between normalisations: small enough that no low half passes 2^53. */
const BLOCK_WORDS = 64;

function updateTs(state: Uint32Array, data: Uint8Array, littleEndian: boolean): void {
  const nwords = data.byteLength >>> 2;
  if (nwords === 0) return;
  let alo = state[0]!, ahi = state[1]!, blo = state[2]!, bhi = state[3]!;
  let clo = state[4]!, chi = state[5]!, dlo = state[6]!, dhi = state[7]!;
  const aligned = littleEndian && (data.byteOffset & 3) === 0;
  const words = aligned ? new Uint32Array(data.buffer, data.byteOffset, nwords) : null;
  const view = aligned ? null : new DataView(data.buffer, data.byteOffset, nwords * 4);
  let i = 0;
  while (i < nwords) {
    const end = Math.min(nwords, i + BLOCK_WORDS);
    if (words !== null) {
      for (; i < end; i++) {
        alo += words[i]!;
        blo += alo;
        bhi += ahi;
        clo += blo;
        chi += bhi;
        dlo += clo;
        dhi += chi;
      }
    } else {
      for (; i < end; i++) {
        alo += view!.getUint32(i * 4, littleEndian);
        blo += alo;
        bhi += ahi;
        clo += blo;
        chi += bhi;
        dlo += clo;
        dhi += chi;
      }
    }
    let carry = Math.floor(alo / TWO32);
    alo -= carry * TWO32;
    ahi = (ahi + carry) >>> 0;
    carry = Math.floor(blo / TWO32);
    blo -= carry * TWO32;
    bhi = (bhi + carry) % TWO32;
    carry = Math.floor(clo / TWO32);
    clo -= carry * TWO32;
    chi = (chi + carry) % TWO32;
    carry = Math.floor(dlo / TWO32);
    dlo -= carry * TWO32;
    dhi = (dhi + carry) % TWO32;
  }
  state[0] = alo;
  state[1] = ahi;
  state[2] = blo;
  state[3] = bhi;
  state[4] = clo;
  state[5] = chi;
  state[6] = dlo;
  state[7] = dhi;
}

/**
 * The pure-TypeScript fletcher-4: the reference the native library must agree with.
 *
 * @example
 * ```ts
 * import { tsFletcher4 } from "jsr:@zsend/zsend";
 * const state = new Uint32Array(8);
 * tsFletcher4.update(state, new Uint8Array([1, 0, 0, 0, 2, 0, 0, 0]), true);
 * // a = 1 + 2, b = 1 + 3, c = 1 + 4, d = 1 + 5
 * if (state[0] !== 3 || state[2] !== 4 || state[4] !== 5 || state[6] !== 6) throw new Error();
 * ```
 */
export const tsFletcher4: Fletcher4Engine = { name: "typescript", update: updateTs };

/** The checksum handed to an engine's `append` (one, reused: engines do not keep it). */
const APPEND_CK = new BigUint64Array(4);

/**
 * A running fletcher-4 checksum.
 *
 * @example
 * ```ts
 * import { Fletcher4 } from "jsr:@zsend/zsend";
 * const f = new Fletcher4();
 * f.update(new Uint8Array([1, 0, 0, 0]), true);
 * const [a, b, c, d] = f.value();
 * if (a !== 1n || b !== 1n || c !== 1n || d !== 1n) throw new Error();
 * ```
 */
export class Fletcher4 {
  /** The state as `uint64_t[4]`; `halves` views the same memory. */
  readonly words: BigUint64Array = new BigUint64Array(4);
  /** The state as eight u32 halves, for engines. */
  readonly halves: Uint32Array = new Uint32Array(this.words.buffer);
  #engine: Fletcher4Engine;

  /**
   * A checksum at its start (all zero).
   *
   * @param engine the implementation to use (pure TypeScript unless told otherwise)
   */
  constructor(engine: Fletcher4Engine = tsFletcher4) {
    this.#engine = engine;
  }

  /** The engine in use. */
  get engine(): Fletcher4Engine {
    return this.#engine;
  }

  /** Folds data in, words read in the given byte order. */
  update(data: Uint8Array, littleEndian: boolean): void {
    this.#engine.update(this.halves, data, littleEndian);
  }

  /**
   * Folds in `length` bytes that this checksum has not seen, from their own fletcher-4 (taken
   * from zero, in the same byte order): the result is what {@linkcode update} with the bytes
   * would give. fletcher-4 is linear in its starting state, so a block's checksum stored once
   * stands for its bytes in any stream that carries them.
   *
   * @example
   * ```ts
   * import { Fletcher4, fletcher4 } from "jsr:@zsend/zsend";
   * const head = new Uint8Array([1, 0, 0, 0, 9, 0, 0, 0]);
   * const tail = new Uint8Array([7, 0, 0, 0, 3, 0, 0, 0, 5, 0, 0, 0]);
   * const whole = new Fletcher4();
   * whole.update(head, true);
   * whole.update(tail, true);
   * const folded = new Fletcher4();
   * folded.update(head, true);
   * folded.append(fletcher4(tail, true), tail.length);
   * if (!folded.equals(whole.value())) throw new Error();
   * ```
   */
  append(ck: Checksum, length: number): void {
    const fast = this.#engine.append;
    if (fast !== undefined && length <= 0xffffffff) {
      APPEND_CK[0] = ck[0];
      APPEND_CK[1] = ck[1];
      APPEND_CK[2] = ck[2];
      APPEND_CK[3] = ck[3];
      fast(this.halves, APPEND_CK, length);
      return;
    }
    const n = BigInt(Math.floor(length / 4));
    const t2 = n * (n + 1n) / 2n;
    const t3 = t2 * (n + 2n) / 3n;
    const w = this.words;
    const a = w[0]!, b = w[1]!, c = w[2]!;
    // Each accumulator of the joined data: its own part plus what the earlier state adds over
    // n more words (a once per word into b, b and a's triangular sums into c and d).
    w[3] = w[3]! + n * c + t2 * b + t3 * a + ck[3];
    w[2] = c + n * b + t2 * a + ck[2];
    w[1] = b + n * a + ck[1];
    w[0] = a + ck[0];
  }

  /** Starts again from zero. */
  reset(): void {
    this.halves.fill(0);
  }

  /** The current value. */
  value(): Checksum {
    const w = this.words;
    return [w[0]!, w[1]!, w[2]!, w[3]!];
  }

  /** Whether the current value equals `ck`. */
  equals(ck: Checksum): boolean {
    const w = this.words;
    return w[0] === ck[0] && w[1] === ck[1] && w[2] === ck[2] && w[3] === ck[3];
  }
}

/**
 * Whether a checksum is all zero ("not checked" in a non-END record).
 *
 * @example
 * ```ts
 * import { isZeroChecksum } from "jsr:@zsend/zsend";
 * if (!isZeroChecksum([0n, 0n, 0n, 0n]) || isZeroChecksum([0n, 0n, 0n, 1n])) throw new Error();
 * ```
 */
export function isZeroChecksum(ck: Checksum): boolean {
  return ck[0] === 0n && ck[1] === 0n && ck[2] === 0n && ck[3] === 0n;
}

/**
 * fletcher-4 of one buffer from zero.
 *
 * @example
 * ```ts
 * import { fletcher4 } from "jsr:@zsend/zsend";
 * const [a] = fletcher4(new Uint8Array([0, 0, 0, 5]), false);
 * if (a !== 5n) throw new Error();
 * ```
 */
export function fletcher4(
  data: Uint8Array,
  littleEndian: boolean,
  engine: Fletcher4Engine = tsFletcher4,
): Checksum {
  const f = new Fletcher4(engine);
  f.update(data, littleEndian);
  return f.value();
}
