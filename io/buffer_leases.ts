/**
 * Buffers that a reader fills again and again, lent to a writer that writes straight from
 * them (a receive's pack writes take block payloads where the reader read them, without a
 * copy). The reader registers its buffers and, before it fills one again, waits until no
 * write holds it.
 *
 * @module
 */

/**
 * The lending book of one reader's buffers.
 *
 * @example
 * ```ts
 * import { BufferLeases } from "./buffer_leases.ts";
 * const leases = new BufferLeases();
 * const buf = new Uint8Array(16);
 * leases.register(buf.buffer);
 * const release = leases.hold(buf.buffer);
 * let freed = false;
 * const waiting = leases.free(buf.buffer).then(() => void (freed = true));
 * await Promise.resolve();
 * if (freed) throw new Error("freed while held");
 * release();
 * await waiting;
 * if (!freed) throw new Error();
 * ```
 */
export class BufferLeases {
  #holds = new Map<ArrayBufferLike, number>();
  #waiters = new Map<ArrayBufferLike, (() => void)[]>();
  /**
   * Called when the reader has to wait for a buffer: the writer should start the writes that
   * hold it now, rather than gather more first.
   */
  onWait: (() => void) | null = null;

  /** Makes `buffer` one that may be lent. */
  register(buffer: ArrayBufferLike): void {
    if (!this.#holds.has(buffer)) this.#holds.set(buffer, 0);
  }

  /** Whether `buffer` is one of the reader's (else a writer must copy what it keeps). */
  owns(buffer: ArrayBufferLike): boolean {
    return this.#holds.has(buffer);
  }

  /** Whether a write holds `buffer` now. */
  held(buffer: ArrayBufferLike): boolean {
    return (this.#holds.get(buffer) ?? 0) > 0;
  }

  /** Holds a registered buffer; returns the call that gives it back (once). */
  hold(buffer: ArrayBufferLike): () => void {
    const n = this.#holds.get(buffer);
    if (n === undefined) throw new RangeError("hold of a buffer that was not registered");
    this.#holds.set(buffer, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.#holds.get(buffer)! - 1;
      this.#holds.set(buffer, left);
      if (left === 0) {
        const ws = this.#waiters.get(buffer) ?? [];
        this.#waiters.delete(buffer);
        for (const w of ws) w();
      }
    };
  }

  /** Settles when no write holds `buffer`. */
  free(buffer: ArrayBufferLike): Promise<void> {
    if ((this.#holds.get(buffer) ?? 0) === 0) return Promise.resolve();
    const wait = new Promise<void>((resolve) => {
      const ws = this.#waiters.get(buffer) ?? [];
      ws.push(resolve);
      this.#waiters.set(buffer, ws);
    });
    this.onWait?.();
    return wait;
  }
}
