/**
 * Append-only pack files of block bytes. Only what the index has committed counts: bytes past
 * a pack's committed length (from a receive that failed or was killed) are cut off before the
 * next append.
 *
 * Appends are gathered into large buffers that are written while the receive goes on: with
 * the native library, by `pwrite` on the runtime's threads (the copy into the page cache then
 * costs the receive's own thread nothing); without it, by synchronous writes. Either way
 * {@linkcode PackSet.flush} makes them durable before the index commits, and bytes not yet
 * written are read back from memory.
 *
 * @module
 */

import { cString, loadNative, nativeDisabled, type NativeLib, ZS_O } from "../native/ffi.ts";

/** Packs grow to about this size before a new one starts. */
export const PACK_LIMIT = 1 << 30;

/**
 * Appended bytes between background flushes: the disk writes them while the receive goes on,
 * so that the flush before the commit finds little left to do.
 */
const FLUSH_EVERY = 64 << 20;

/** Bytes gathered before they are written (one `pwrite`). */
const STAGE_SIZE = 8 << 20;

/** Bytes written in the background at most, before {@linkcode PackSet.drain} waits. */
const IN_FLIGHT_LIMIT = 4 * STAGE_SIZE;

/** Where a block's bytes lie. */
export interface PackLocation {
  pack: number;
  offset: number;
}

/** Bytes appended but maybe not yet in their file. */
interface Pending {
  pack: number;
  offset: number;
  bytes: Uint8Array;
  /** Settles when the bytes are in the file (native writes only). */
  done: Promise<void> | null;
}

/** A pack open for appending. */
interface Appender {
  pack: number;
  /** Native descriptor, or -1 with the Deno file instead. */
  fd: number;
  file: Deno.FsFile | null;
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
 * await packs.flush();
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
  #lib: NativeLib | null;
  #appender: Appender | null = null;
  /** Packs appended to since the last flush, still open: each is made durable by flush. */
  #dirty: Appender[] = [];
  #readers = new Map<number, Deno.FsFile>();
  /** The buffer being filled, and where its first byte goes. */
  #stage: Uint8Array | null = null;
  #staged = 0;
  #stageAt: PackLocation = { pack: 0, offset: 0 };
  /** Buffers handed to writes, oldest first, until they are in the file. */
  #pending: Pending[] = [];
  #spare: Uint8Array[] = [];
  #unflushed = 0;
  #background: Promise<void> | null = null;
  #error: unknown = null;

  /**
   * @param dir the store's `packs` directory
   * @param known each pack and its committed length (at least one)
   */
  constructor(dir: string, known: { id: number; committed: number }[]) {
    this.#dir = dir;
    const last = known.reduce((a, b) => (b.id > a.id ? b : a), known[0]!);
    this.#current = last.id;
    this.#length = last.committed;
    this.#lib = nativeDisabled() ? null : loadNative();
  }

  /** The path of a pack. */
  path(pack: number): string {
    return `${this.#dir}/${String(pack).padStart(6, "0")}.pack`;
  }

  /** The pack being appended to and its length so far. */
  get position(): { pack: number; length: number } {
    return { pack: this.#current, length: this.#length };
  }

  #open(): Appender {
    if (this.#appender !== null) return this.#appender;
    const path = this.path(this.#current);
    let a: Appender;
    if (this.#lib !== null) {
      const fd = this.#lib.symbols.zs_open(cString(path), ZS_O.WRITE | ZS_O.CREATE, 0o644);
      if (fd < 0) throw new Error(`cannot open ${path}: errno ${-fd}`);
      a = { pack: this.#current, fd, file: null };
    } else {
      const file = Deno.openSync(path, { read: true, write: true, create: true });
      a = { pack: this.#current, fd: -1, file };
    }
    // Drop whatever a failed receive left past the committed length.
    if (a.file !== null) a.file.truncateSync(this.#length);
    else Deno.truncateSync(path, this.#length);
    this.#appender = a;
    this.#dirty.push(a);
    return a;
  }

  /** Starts a new pack when the current one is full; returns its id when it did. */
  rotateIfFull(): number | null {
    if (this.#length < PACK_LIMIT) return null;
    this.#dispatch();
    // The full pack stays open (in #dirty) until its writes are flushed.
    this.#appender = null;
    this.#current++;
    this.#length = 0;
    return this.#current;
  }

  /** Appends bytes (copied: `data` may be reused at once); returns where they go. */
  append(data: Uint8Array): PackLocation {
    this.#throwIfFailed();
    this.#open();
    const at = { pack: this.#current, offset: this.#length };
    if (this.#stage !== null && this.#staged + data.length > this.#stage.length) this.#dispatch();
    if (this.#stage === null) {
      this.#stage = data.length > STAGE_SIZE
        ? new Uint8Array(data.length)
        : this.#spare.pop() ?? new Uint8Array(STAGE_SIZE);
      this.#staged = 0;
      this.#stageAt = at;
    }
    this.#stage.set(data, this.#staged);
    this.#staged += data.length;
    this.#length += data.length;
    if (this.#staged === this.#stage.length) this.#dispatch();
    return at;
  }

  /** Hands the staged bytes to a write. */
  #dispatch(): void {
    const stage = this.#stage;
    if (stage === null || this.#staged === 0) return;
    const bytes = stage.subarray(0, this.#staged);
    const { pack, offset } = this.#stageAt;
    this.#stage = null;
    this.#staged = 0;
    const a = this.#appender!;
    const p: Pending = { pack, offset, bytes, done: null };
    if (a.fd >= 0) {
      const lib = this.#lib!;
      p.done = lib.symbols.zs_pwrite_async(a.fd, bytes, BigInt(bytes.length), BigInt(offset))
        .then((n) => {
          if (Number(n) !== bytes.length) {
            throw new Error(`writing pack ${pack}: errno ${-Number(n)}`);
          }
        });
      this.#pending.push(p);
    } else {
      const f = a.file!;
      f.seekSync(offset, Deno.SeekMode.Start);
      let done = 0;
      while (done < bytes.length) done += f.writeSync(bytes.subarray(done));
      if (stage.length === STAGE_SIZE) this.#spare.push(stage);
    }
    this.#unflushed += bytes.length;
    if (this.#unflushed >= FLUSH_EVERY && this.#background === null) {
      this.#unflushed = 0;
      this.#background = this.#syncInBackground(a).finally(() => void (this.#background = null));
    }
  }

  /** Starts the disk on what was written so far, without waiting for it. */
  async #syncInBackground(a: Appender): Promise<void> {
    try {
      await this.#settle(this.#pending.length);
      if (a.fd >= 0) {
        const r = await this.#lib!.symbols.zs_fsync_async(a.fd);
        if (r < 0) throw new Error(`flushing pack ${a.pack}: errno ${-r}`);
      } else await a.file!.syncData();
    } catch (e) {
      this.#error ??= e;
    }
  }

  /** Waits for the oldest `count` background writes. */
  async #settle(count: number): Promise<void> {
    for (let i = 0; i < count && this.#pending.length > 0; i++) {
      const p = this.#pending[0]!;
      try {
        await p.done;
      } catch (e) {
        this.#error ??= e;
      }
      // Another waiter may have taken it already.
      if (this.#pending[0] === p) {
        this.#pending.shift();
        if (p.bytes.buffer.byteLength === STAGE_SIZE) {
          this.#spare.push(new Uint8Array(p.bytes.buffer, 0, STAGE_SIZE));
        }
      }
    }
  }

  #throwIfFailed(): void {
    const e = this.#error;
    if (e !== null) {
      this.#error = null;
      throw e;
    }
  }

  /** Waits while more than a few stages are being written (bounds the memory they hold). */
  async drain(): Promise<void> {
    let inFlight = 0;
    for (const p of this.#pending) inFlight += p.bytes.length;
    let over = 0;
    for (const p of this.#pending) {
      if (inFlight <= IN_FLIGHT_LIMIT) break;
      inFlight -= p.bytes.length;
      over++;
    }
    if (over > 0) await this.#settle(over);
    this.#throwIfFailed();
  }

  /** Writes every appended byte and flushes them to disk. */
  async flush(): Promise<void> {
    this.#dispatch();
    await this.#background;
    await this.#settle(this.#pending.length);
    this.#throwIfFailed();
    for (const a of this.#dirty) {
      if (a.fd >= 0) {
        const r = await this.#lib!.symbols.zs_fsync_async(a.fd);
        if (r < 0) throw new Error(`flushing pack ${a.pack}: errno ${-r}`);
      } else a.file!.syncDataSync();
    }
    // Full packs are done with; the current one stays open.
    for (const a of this.#dirty) if (a !== this.#appender) this.#closeAppender(a);
    this.#dirty = this.#appender === null ? [] : [this.#appender];
    this.#unflushed = 0;
  }

  /** Forgets appends since the last commit (the index rolled back): cuts them off. */
  async rollback(pack: number, length: number): Promise<void> {
    this.#stage = null;
    this.#staged = 0;
    // A write still running would land after the cut.
    await this.#background;
    await this.#settle(this.#pending.length);
    this.#error = null;
    for (const a of this.#dirty) this.#closeAppender(a);
    this.#dirty = [];
    this.#appender = null;
    this.#current = pack;
    this.#length = length;
    try {
      Deno.truncateSync(this.path(pack), length);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }

  #closeAppender(a: Appender): void {
    if (a.fd >= 0) this.#lib!.symbols.zs_close(a.fd);
    else a.file!.close();
  }

  /** Reads `length` bytes at `offset` of a pack, into a new buffer. */
  read(pack: number, offset: number, length: number): Uint8Array {
    return this.readInto(pack, offset, new Uint8Array(length));
  }

  /** Fills `out` from `offset` of a pack (for callers that reuse one buffer). */
  readInto(pack: number, offset: number, out: Uint8Array): Uint8Array {
    const length = out.length;
    if (this.#fromMemory(pack, offset, out)) return out;
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

  /** Serves a read of bytes appended but maybe not in their file yet; false if not there. */
  #fromMemory(pack: number, offset: number, out: Uint8Array): boolean {
    const places: { pack: number; offset: number; bytes: Uint8Array }[] = [...this.#pending];
    if (this.#stage !== null) {
      places.push({ ...this.#stageAt, bytes: this.#stage.subarray(0, this.#staged) });
    }
    for (const p of places) {
      if (
        p.pack === pack && offset >= p.offset && offset + out.length <= p.offset + p.bytes.length
      ) {
        out.set(p.bytes.subarray(offset - p.offset, offset - p.offset + out.length));
        return true;
      }
    }
    return false;
  }

  /** Closes every file (after {@linkcode PackSet.flush} or {@linkcode PackSet.rollback}). */
  close(): void {
    for (const a of this.#dirty) this.#closeAppender(a);
    this.#dirty = [];
    this.#appender = null;
    for (const f of this.#readers.values()) f.close();
    this.#readers.clear();
  }
}
