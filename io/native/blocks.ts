/**
 * Work on whole blocks of an image chunk: each block's fletcher-4, and whether two blocks hold
 * the same bytes. Native when the library is loaded, else TypeScript, with the same results.
 *
 * @module
 */

import { tsFletcher4 } from "../../core/checksum/fletcher4.ts";
import { loadNative, nativeDisabled, type NativeLib } from "./ffi.ts";

let lib: NativeLib | null | undefined;

function native(): NativeLib | null {
  if (lib === undefined) lib = nativeDisabled() ? null : loadNative();
  return lib;
}

/**
 * The fletcher-4 of each whole `blockSize`-byte block of `data`, each from zero over
 * little-endian words, into `out` (four u64 per block, as {@linkcode Fletcher4.words} holds
 * them). An all-zero block is the one whose first word (`a`, the exact sum of its words) is 0.
 *
 * @param out room for four u64 per block
 * @param data whole blocks (a trailing partial block is left out)
 * @param blockSize bytes per block, a multiple of 4
 * @example
 * ```ts
 * import { blockFletcher4 } from "./blocks.ts";
 * const data = new Uint8Array(1024);
 * data[1020] = 3; // the last word of block 1: a = b = c = d = 3
 * const out = new BigUint64Array(8);
 * blockFletcher4(out, data, 512);
 * if (out[0] !== 0n || out[4] !== 3n || out[7] !== 3n) throw new Error();
 * ```
 */
export function blockFletcher4(out: BigUint64Array, data: Uint8Array, blockSize: number): void {
  const n = Math.floor(data.length / blockSize);
  if (out.length < n * 4) throw new RangeError(`room for ${out.length / 4} blocks, ${n} given`);
  const l = native();
  if (l !== null && data.length <= 0xffffffff) {
    l.symbols.zs_fletcher4_blocks(out, data, data.length, blockSize);
    return;
  }
  const halves = new Uint32Array(out.buffer, out.byteOffset, n * 8);
  for (let i = 0; i < n; i++) {
    const state = halves.subarray(i * 8, i * 8 + 8);
    state.fill(0);
    tsFletcher4.update(state, data.subarray(i * blockSize, (i + 1) * blockSize), true);
  }
}

/**
 * Whether two byte ranges are equal.
 *
 * @example
 * ```ts
 * import { bytesEqual } from "./blocks.ts";
 * if (!bytesEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2]))) throw new Error();
 * if (bytesEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3]))) throw new Error();
 * ```
 */
export function bytesEqual(x: Uint8Array, y: Uint8Array): boolean {
  if (x.length !== y.length) return false;
  const l = native();
  if (l !== null && x.length <= 0xffffffff) return l.symbols.zs_memeq(x, y, x.length) === 1;
  if ((x.byteOffset & 3) === 0 && (y.byteOffset & 3) === 0 && (x.length & 3) === 0) {
    const a = new Uint32Array(x.buffer, x.byteOffset, x.length >>> 2);
    const b = new Uint32Array(y.buffer, y.byteOffset, y.length >>> 2);
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}
