/**
 * Exact-length reads over a sequence of byte chunks, without copying when the bytes asked
 * for lie within one chunk.
 *
 * @module
 */

/** Bytes in chunks of any size: a `ReadableStream`, an async generator, an array. */
export type ByteChunks = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

const EMPTY: Uint8Array = new Uint8Array(0);

/** Options of {@linkcode ByteSource}. */
export interface ByteSourceOptions {
  /**
   * Copy bytes that span chunks into one buffer used again by the next such read, instead of
   * a new one each time: what {@linkcode ByteSource.take} returns is then valid only until the
   * next read, as it is anyway for a source that refills its buffers. Saves an allocation and
   * a copy per chunk boundary.
   */
  reuseSpans?: boolean;
}

/**
 * Reads exact lengths from chunks. What it returns may be a view into a chunk, valid as long
 * as the chunk is: a source that refills one buffer (see `readerChunks(..., { reuse: true })`)
 * makes views valid only until the next read. Bytes that span chunks are always copied.
 *
 * @example
 * ```ts
 * import { ByteSource } from "./byte_source.ts";
 * const src = new ByteSource([new Uint8Array([1, 2]), new Uint8Array([3, 4, 5])]);
 * const a = await src.take(3);
 * const b = await src.take(5);
 * if (a.join() !== "1,2,3" || b.join() !== "4,5" || src.consumed !== 5) throw new Error();
 * ```
 */
export class ByteSource {
  #iterator: AsyncIterator<Uint8Array> | Iterator<Uint8Array>;
  #chunk: Uint8Array = EMPTY;
  #pos = 0;
  #ended = false;
  /** Bytes handed out so far. */
  consumed = 0;
  #reuseSpans: boolean;
  #spans: Uint8Array = EMPTY;

  /**
   * @param chunks the input
   * @param options whether bytes that span chunks go to a reused buffer
   */
  constructor(chunks: ByteChunks, options: ByteSourceOptions = {}) {
    this.#reuseSpans = options.reuseSpans === true;
    this.#iterator = Symbol.asyncIterator in chunks
      ? chunks[Symbol.asyncIterator]()
      : (chunks as Iterable<Uint8Array>)[Symbol.iterator]();
  }

  /** Returns exactly `n` bytes when they are already buffered in one chunk, else `null`. */
  takeSync(n: number): Uint8Array | null {
    const pos = this.#pos;
    if (this.#chunk.length - pos < n) return null;
    this.#pos = pos + n;
    this.consumed += n;
    return this.#chunk.subarray(pos, pos + n);
  }

  /**
   * Returns exactly `n` bytes, or fewer only when the input ends first. Memory grows with the
   * bytes that actually arrive, never with `n` alone.
   */
  async take(n: number): Promise<Uint8Array> {
    const direct = this.takeSync(n);
    if (direct !== null) return direct;
    if (this.#reuseSpans) return await this.#takeSpanning(n);
    const pieces: Uint8Array[] = [];
    let have = 0;
    while (have < n) {
      if (this.#pos >= this.#chunk.length && !(await this.#next())) break;
      const want = Math.min(n - have, this.#chunk.length - this.#pos);
      if (pieces.length === 0 && want === n) {
        return this.takeSync(n)!;
      }
      // A copy: the chunk's buffer may be refilled by the next read.
      pieces.push(this.#chunk.slice(this.#pos, this.#pos + want));
      this.#pos += want;
      have += want;
    }
    this.consumed += have;
    if (pieces.length === 1) return pieces[0]!;
    const out = new Uint8Array(have);
    let off = 0;
    for (const p of pieces) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }

  /** {@linkcode ByteSource.take} into the reused buffer, grown as the bytes arrive. */
  async #takeSpanning(n: number): Promise<Uint8Array> {
    let have = 0;
    while (have < n) {
      if (this.#pos >= this.#chunk.length && !(await this.#next())) break;
      const want = Math.min(n - have, this.#chunk.length - this.#pos);
      if (have === 0 && want === n) return this.takeSync(n)!;
      if (this.#spans.length < have + want) {
        const grown = new Uint8Array(Math.max(have + want, Math.min(n, 2 * this.#spans.length)));
        grown.set(this.#spans.subarray(0, have));
        this.#spans = grown;
      }
      this.#spans.set(this.#chunk.subarray(this.#pos, this.#pos + want), have);
      this.#pos += want;
      have += want;
    }
    this.consumed += have;
    return this.#spans.subarray(0, have);
  }

  async #next(): Promise<boolean> {
    while (!this.#ended) {
      const r = await this.#iterator.next();
      if (r.done) {
        this.#ended = true;
        break;
      }
      if (r.value.length > 0) {
        this.#chunk = r.value;
        this.#pos = 0;
        return true;
      }
    }
    this.#chunk = EMPTY;
    this.#pos = 0;
    return false;
  }
}
