/**
 * Append-only pack files of block bytes. Only what the index has committed counts: bytes past
 * a pack's committed length (from a receive that failed or was killed) are cut off before the
 * next append.
 *
 * @module
 */

/** Packs grow to about this size before a new one starts. */
export const PACK_LIMIT = 1 << 30;

/**
 * Appended bytes between background flushes: the disk writes them while the receive goes on,
 * so that the flush before the commit finds little left to do.
 */
const FLUSH_EVERY = 64 << 20;

/** Where a block's bytes lie. */
export interface PackLocation {
  pack: number;
  offset: number;
}

/**
 * The pack files of one store directory.
 *
 * @example
 * ```ts
 * import { PackSet } from "./packs.ts";
 * const dir = await Deno.makeTempDir();
 * const packs = new PackSet(dir, [{ id: 1, committed: 0 }]);
 * const at = packs.append(new Uint8Array([1, 2, 3]));
 * packs.sync();
 * const back = packs.read(at.pack, at.offset, 3);
 * packs.close();
 * await Deno.remove(dir, { recursive: true });
 * if (back.join() !== "1,2,3") throw new Error();
 * ```
 */
export class PackSet {
  #dir: string;
  #current: number;
  #length: number;
  #appender: Deno.FsFile | null = null;
  #readers = new Map<number, Deno.FsFile>();
  #dirty = false;
  #unflushed = 0;
  #flushing: Promise<void> | null = null;
  #flushError: unknown = null;
  /** Bumped when files are closed on purpose, so a flush that then fails is not an error. */
  #generation = 0;
  /** Full packs, kept open until a background flush of theirs cannot still be running. */
  #retired: Deno.FsFile[] = [];

  /**
   * @param dir the store's `packs` directory
   * @param known each pack and its committed length (at least one)
   */
  constructor(dir: string, known: { id: number; committed: number }[]) {
    this.#dir = dir;
    const last = known.reduce((a, b) => (b.id > a.id ? b : a), known[0]!);
    this.#current = last.id;
    this.#length = last.committed;
  }

  /** The path of a pack. */
  path(pack: number): string {
    return `${this.#dir}/${String(pack).padStart(6, "0")}.pack`;
  }

  /** The pack being appended to and its length so far. */
  get position(): { pack: number; length: number } {
    return { pack: this.#current, length: this.#length };
  }

  #open(): Deno.FsFile {
    if (this.#appender === null) {
      const f = Deno.openSync(this.path(this.#current), { read: true, write: true, create: true });
      // Drop whatever a failed receive left past the committed length.
      f.truncateSync(this.#length);
      f.seekSync(this.#length, Deno.SeekMode.Start);
      this.#appender = f;
    }
    return this.#appender;
  }

  /** Starts a new pack when the current one is full; returns its id when it did. */
  rotateIfFull(): number | null {
    if (this.#length < PACK_LIMIT) return null;
    this.sync();
    if (this.#appender !== null) this.#retired.push(this.#appender);
    this.#appender = null;
    this.#current++;
    this.#length = 0;
    return this.#current;
  }

  /** Appends bytes; returns where they went. */
  append(data: Uint8Array): PackLocation {
    const f = this.#open();
    const at = { pack: this.#current, offset: this.#length };
    let done = 0;
    while (done < data.length) done += f.writeSync(data.subarray(done));
    this.#length += data.length;
    this.#dirty = true;
    this.#unflushed += data.length;
    if (this.#unflushed >= FLUSH_EVERY && this.#flushing === null) {
      this.#unflushed = 0;
      const generation = this.#generation;
      this.#flushing = f.syncData()
        .catch((e) => {
          if (generation === this.#generation) this.#flushError = e;
        })
        .finally(() => void (this.#flushing = null));
    }
    return at;
  }

  /** Flushes appended bytes to disk (what a background flush missed, and checks it worked). */
  sync(): void {
    if (this.#dirty && this.#appender !== null) this.#appender.syncDataSync();
    this.#dirty = false;
    this.#unflushed = 0;
    const failed = this.#flushError;
    this.#flushError = null;
    if (failed !== null) throw failed;
  }

  /** Forgets appends since the last commit (the index rolled back): cuts them off. */
  rollback(pack: number, length: number): void {
    this.#generation++;
    this.#flushError = null;
    if (this.#appender !== null) {
      this.#appender.close();
      this.#appender = null;
    }
    this.#current = pack;
    this.#length = length;
    try {
      const f = Deno.openSync(this.path(pack), { write: true });
      f.truncateSync(length);
      f.close();
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }

  /** Reads `length` bytes at `offset` of a pack, into a new buffer. */
  read(pack: number, offset: number, length: number): Uint8Array {
    return this.readInto(pack, offset, new Uint8Array(length));
  }

  /** Fills `out` from `offset` of a pack (for callers that reuse one buffer). */
  readInto(pack: number, offset: number, out: Uint8Array): Uint8Array {
    const length = out.length;
    let f = this.#readers.get(pack);
    if (f === undefined) {
      f = Deno.openSync(this.path(pack), { read: true });
      this.#readers.set(pack, f);
    }
    f.seekSync(offset, Deno.SeekMode.Start);
    let done = 0;
    while (done < length) {
      const n = f.readSync(out.subarray(done));
      if (n === null || n === 0) {
        throw new RangeError(
          `pack ${pack} ends before byte ${offset + length}: the store is damaged`,
        );
      }
      done += n;
    }
    return out;
  }

  /** Closes every file. */
  close(): void {
    this.#generation++;
    for (const f of this.#retired) f.close();
    this.#retired = [];
    this.#appender?.close();
    this.#appender = null;
    for (const f of this.#readers.values()) f.close();
    this.#readers.clear();
  }
}
