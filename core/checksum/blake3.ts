/**
 * BLAKE3 in hash mode with the default 32-byte output, in pure TypeScript: the content hash of
 * the block store, and the reference the native library (io/native/blake3.c) must agree with.
 *
 * Written from the BLAKE3 specification. The input is cut into 1024-byte chunks (the empty
 * input is one empty chunk) and each chunk into 64-byte blocks, the last zero-padded; a
 * chunk's chaining value starts as the IV and is replaced by the compression of each of its
 * blocks (counter = the chunk's index, flags CHUNK_START on the first block and CHUNK_END on
 * the last). Chaining values are joined by parents (the IV as key, the two children as the
 * message, counter 0, flag PARENT) in a binary tree whose left subtrees are complete; the
 * root (a lone chunk's last block, or the top parent) also gets ROOT, and the hash is the
 * first eight words of its output, little-endian.
 *
 * The tree is built with a stack of subtree chaining values: after each chunk but the last,
 * two subtrees of equal size merge while the number of chunks so far is even (more input
 * follows, so none of them is the root); after the last chunk the stack is folded from the
 * top, the final parent being the root.
 *
 * @module
 */

const IV = new Uint32Array([
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
]);

const CHUNK_START = 1;
const CHUNK_END = 2;
const PARENT = 4;
const ROOT = 8;
const CHUNK_LEN = 1024;
const BLOCK_LEN = 64;
const TWO32 = 4294967296;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Message words of a block read byte by byte (the last block, or unaligned input). */
const scratch = new Uint32Array(16);
/**
 * Chaining values of complete subtrees, eight words each, with room for one more: the chunk
 * being hashed sits right above the top, so a parent's message (top, new) is contiguous.
 */
const stack = new Uint32Array(8 * 66);

/**
 * One compression: the 8-word chaining value at `cv[cvOff]`, the 16-word block at `m[mOff]`;
 * writes the first 8 output words to `out[outOff]` (which may overlap either input).
 */
function compress(
  cv: Uint32Array,
  cvOff: number,
  m: Uint32Array,
  mOff: number,
  counter: number,
  blockLen: number,
  flags: number,
  out: Uint32Array,
  outOff: number,
): void {
  let m0 = m[mOff]! | 0, m1 = m[mOff + 1]! | 0, m2 = m[mOff + 2]! | 0, m3 = m[mOff + 3]! | 0;
  let m4 = m[mOff + 4]! | 0, m5 = m[mOff + 5]! | 0, m6 = m[mOff + 6]! | 0;
  let m7 = m[mOff + 7]! | 0, m8 = m[mOff + 8]! | 0, m9 = m[mOff + 9]! | 0;
  let m10 = m[mOff + 10]! | 0, m11 = m[mOff + 11]! | 0, m12 = m[mOff + 12]! | 0;
  let m13 = m[mOff + 13]! | 0, m14 = m[mOff + 14]! | 0, m15 = m[mOff + 15]! | 0;
  let v0 = cv[cvOff]! | 0, v1 = cv[cvOff + 1]! | 0, v2 = cv[cvOff + 2]! | 0;
  let v3 = cv[cvOff + 3]! | 0, v4 = cv[cvOff + 4]! | 0, v5 = cv[cvOff + 5]! | 0;
  let v6 = cv[cvOff + 6]! | 0, v7 = cv[cvOff + 7]! | 0;
  let v8 = 0x6a09e667 | 0, v9 = 0xbb67ae85 | 0, v10 = 0x3c6ef372 | 0, v11 = 0xa54ff53a | 0;
  let v12 = counter | 0, v13 = Math.floor(counter / TWO32) | 0, v14 = blockLen | 0;
  let v15 = flags | 0;
  for (let round = 0; round < 7; round++) {
    // Columns: G(0, 4, 8, 12), G(1, 5, 9, 13), G(2, 6, 10, 14), G(3, 7, 11, 15).
    v0 = (v0 + v4 + m0) | 0;
    v12 ^= v0;
    v12 = (v12 >>> 16) | (v12 << 16);
    v8 = (v8 + v12) | 0;
    v4 ^= v8;
    v4 = (v4 >>> 12) | (v4 << 20);
    v0 = (v0 + v4 + m1) | 0;
    v12 ^= v0;
    v12 = (v12 >>> 8) | (v12 << 24);
    v8 = (v8 + v12) | 0;
    v4 ^= v8;
    v4 = (v4 >>> 7) | (v4 << 25);

    v1 = (v1 + v5 + m2) | 0;
    v13 ^= v1;
    v13 = (v13 >>> 16) | (v13 << 16);
    v9 = (v9 + v13) | 0;
    v5 ^= v9;
    v5 = (v5 >>> 12) | (v5 << 20);
    v1 = (v1 + v5 + m3) | 0;
    v13 ^= v1;
    v13 = (v13 >>> 8) | (v13 << 24);
    v9 = (v9 + v13) | 0;
    v5 ^= v9;
    v5 = (v5 >>> 7) | (v5 << 25);

    v2 = (v2 + v6 + m4) | 0;
    v14 ^= v2;
    v14 = (v14 >>> 16) | (v14 << 16);
    v10 = (v10 + v14) | 0;
    v6 ^= v10;
    v6 = (v6 >>> 12) | (v6 << 20);
    v2 = (v2 + v6 + m5) | 0;
    v14 ^= v2;
    v14 = (v14 >>> 8) | (v14 << 24);
    v10 = (v10 + v14) | 0;
    v6 ^= v10;
    v6 = (v6 >>> 7) | (v6 << 25);

    v3 = (v3 + v7 + m6) | 0;
    v15 ^= v3;
    v15 = (v15 >>> 16) | (v15 << 16);
    v11 = (v11 + v15) | 0;
    v7 ^= v11;
    v7 = (v7 >>> 12) | (v7 << 20);
    v3 = (v3 + v7 + m7) | 0;
    v15 ^= v3;
    v15 = (v15 >>> 8) | (v15 << 24);
    v11 = (v11 + v15) | 0;
    v7 ^= v11;
    v7 = (v7 >>> 7) | (v7 << 25);

    // Diagonals: G(0, 5, 10, 15), G(1, 6, 11, 12), G(2, 7, 8, 13), G(3, 4, 9, 14).
    v0 = (v0 + v5 + m8) | 0;
    v15 ^= v0;
    v15 = (v15 >>> 16) | (v15 << 16);
    v10 = (v10 + v15) | 0;
    v5 ^= v10;
    v5 = (v5 >>> 12) | (v5 << 20);
    v0 = (v0 + v5 + m9) | 0;
    v15 ^= v0;
    v15 = (v15 >>> 8) | (v15 << 24);
    v10 = (v10 + v15) | 0;
    v5 ^= v10;
    v5 = (v5 >>> 7) | (v5 << 25);

    v1 = (v1 + v6 + m10) | 0;
    v12 ^= v1;
    v12 = (v12 >>> 16) | (v12 << 16);
    v11 = (v11 + v12) | 0;
    v6 ^= v11;
    v6 = (v6 >>> 12) | (v6 << 20);
    v1 = (v1 + v6 + m11) | 0;
    v12 ^= v1;
    v12 = (v12 >>> 8) | (v12 << 24);
    v11 = (v11 + v12) | 0;
    v6 ^= v11;
    v6 = (v6 >>> 7) | (v6 << 25);

    v2 = (v2 + v7 + m12) | 0;
    v13 ^= v2;
    v13 = (v13 >>> 16) | (v13 << 16);
    v8 = (v8 + v13) | 0;
    v7 ^= v8;
    v7 = (v7 >>> 12) | (v7 << 20);
    v2 = (v2 + v7 + m13) | 0;
    v13 ^= v2;
    v13 = (v13 >>> 8) | (v13 << 24);
    v8 = (v8 + v13) | 0;
    v7 ^= v8;
    v7 = (v7 >>> 7) | (v7 << 25);

    v3 = (v3 + v4 + m14) | 0;
    v14 ^= v3;
    v14 = (v14 >>> 16) | (v14 << 16);
    v9 = (v9 + v14) | 0;
    v4 ^= v9;
    v4 = (v4 >>> 12) | (v4 << 20);
    v3 = (v3 + v4 + m15) | 0;
    v14 ^= v3;
    v14 = (v14 >>> 8) | (v14 << 24);
    v9 = (v9 + v14) | 0;
    v4 ^= v9;
    v4 = (v4 >>> 7) | (v4 << 25);

    // The message permutation [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8].
    const t0 = m0, t1 = m1, t4 = m4, t5 = m5, t8 = m8, t9 = m9;
    m0 = m2;
    m1 = m6;
    m2 = m3;
    m3 = m10;
    m4 = m7;
    m5 = t0;
    m6 = t4;
    m7 = m13;
    m8 = t1;
    m9 = m11;
    m10 = m12;
    m11 = t5;
    m12 = t9;
    m13 = m14;
    m14 = m15;
    m15 = t8;
  }
  out[outOff] = v0 ^ v8;
  out[outOff + 1] = v1 ^ v9;
  out[outOff + 2] = v2 ^ v10;
  out[outOff + 3] = v3 ^ v11;
  out[outOff + 4] = v4 ^ v12;
  out[outOff + 5] = v5 ^ v13;
  out[outOff + 6] = v6 ^ v14;
  out[outOff + 7] = v7 ^ v15;
}

/** Loads `data[off .. off + n)` (n <= 64) into `scratch` as little-endian words, zero-padded. */
function loadScratch(data: Uint8Array, off: number, n: number): void {
  scratch.fill(0);
  for (let i = 0; i < n; i++) scratch[i >>> 2]! |= data[off + i]! << (8 * (i & 3));
}

/**
 * BLAKE3 (hash mode) of `data`: 32 bytes. Works on any byte offset (faster when it is a
 * multiple of 4) and allocates nothing per block.
 *
 * @example
 * ```ts
 * import { blake3 } from "./blake3.ts";
 * const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
 * const empty = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
 * if (hex(blake3(new Uint8Array(0))) !== empty) throw new Error("wrong empty digest");
 * // Two chunks and a bit: a parent joins them, and the digest depends on every byte.
 * const data = new Uint8Array(2100).map((_, i) => i % 251);
 * const before = hex(blake3(data));
 * data[2099] = 0; // was 2099 % 251 = 91
 * if (hex(blake3(data)) === before || blake3(data).length !== 32) throw new Error();
 * ```
 */
export function blake3(data: Uint8Array): Uint8Array {
  const len = data.byteLength;
  const nChunks = len === 0 ? 1 : Math.ceil(len / CHUNK_LEN);
  const words = LITTLE_ENDIAN_HOST && (data.byteOffset & 3) === 0
    ? new Uint32Array(data.buffer, data.byteOffset, Math.floor(len / 4))
    : null;
  let n = 0; // complete subtrees on the stack; the current chunk's value is at slot n
  for (let chunk = 0; chunk < nChunks; chunk++) {
    const start = chunk * CHUNK_LEN;
    const end = Math.min(len, start + CHUNK_LEN);
    const last = chunk === nChunks - 1;
    const at = 8 * n;
    stack.set(IV, at);
    let off = start;
    let flags = CHUNK_START;
    // Every block but the chunk's last is whole.
    for (; end - off > BLOCK_LEN; off += BLOCK_LEN, flags = 0) {
      if (words !== null) {
        compress(stack, at, words, off / 4, chunk, BLOCK_LEN, flags, stack, at);
      } else {
        loadScratch(data, off, BLOCK_LEN);
        compress(stack, at, scratch, 0, chunk, BLOCK_LEN, flags, stack, at);
      }
    }
    const rest = end - off;
    flags |= CHUNK_END | (nChunks === 1 ? ROOT : 0);
    if (words !== null && rest === BLOCK_LEN) {
      compress(stack, at, words, off / 4, chunk, BLOCK_LEN, flags, stack, at);
    } else {
      loadScratch(data, off, rest);
      compress(stack, at, scratch, 0, chunk, rest, flags, stack, at);
    }
    if (!last) {
      for (let done = chunk + 1; done % 2 === 0; done /= 2) {
        n--;
        compress(IV, 0, stack, 8 * n, 0, BLOCK_LEN, PARENT, stack, 8 * n);
      }
      n++;
    } else {
      while (n > 0) {
        n--;
        const root = n === 0 ? ROOT : 0;
        compress(IV, 0, stack, 8 * n, 0, BLOCK_LEN, PARENT | root, stack, 8 * n);
      }
    }
  }
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    const w = stack[i]!;
    out[4 * i] = w;
    out[4 * i + 1] = w >>> 8;
    out[4 * i + 2] = w >>> 16;
    out[4 * i + 3] = w >>> 24;
  }
  return out;
}
