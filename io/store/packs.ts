/**
 * Append-only pack files of block bytes. Only what the index has committed counts: bytes past
 * a pack's committed length (from a receive that failed or was killed) are cut off before the
 * next append.
 *
 * Appends are written while the receive goes on: with the native library, on the runtime's
 * threads (the copy into the page cache then costs the receive's own thread nothing), straight
 * from the reader's buffers when they are lent ({@linkcode PackSet.leases}: `pwritev` of runs
 * of payloads, no copy at all), else gathered into large buffers first; without the library,
 * by synchronous writes of those buffers. Either way {@linkcode PackSet.flush} makes them
 * durable before the index commits, and bytes not yet written are read back from memory.
 *
 * @module
 */

import { alignedBytes } from "../aligned_buffer.ts";
import { BufferLeases } from "../buffer_leases.ts";
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

/** Lent payloads in one `pwritev` at most. */
const MAX_PIECES = 1024;

/** Where a block's bytes lie. */
export interface PackLocation {
  pack: number;
  offset: number;
}

/** Bytes appended but maybe not yet in their file: pieces one after another from `offset`. */
interface Pending {
  pack: number;
  offset: number;
  pieces: Uint8Array[];
  length: number;
  /** Settles when the bytes are in the file (native writes only). */
  done: Promise<void> | null;
  /** A staging buffer to use again once written. */
  recycle: Uint8Array | null;
}

/** Lent payloads gathered for one write. */
interface LentRun {
  at: PackLocation;
  pieces: Uint8Array[];
  releases: (() => void)[];
  length: number;
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
  #lent: LentRun | null = null;
  #unflushed = 0;
  #background: Promise<void> | null = null;
  #error: unknown = null;
  /**
   * The reader's buffers that appends may keep instead of copying (native library only):
   * give them to the reader (`ChunkOptions.leases`). Its wait for a buffer starts the writes
   * that hold it.
   */
  readonly leases: BufferLeases = new BufferLeases();

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
    this.leases.onWait = () => this.#dispatchLent();
  }

  /**
   * Takes the packs as the index now says (after the write lock was taken: a gc may have
   * rewritten them since this set was made). Only before any append.
   */
  resync(known: { id: number; committed: number }[]): void {
    if (this.#appender !== null || this.#pending.length > 0) {
      throw new Error("the packs were appended to before the write lock was taken");
    }
    for (const f of this.#readers.values()) f.close();
    this.#readers.clear();
    const last = known.reduce((a, b) => (b.id > a.id ? b : a), known[0] ?? { id: 1, committed: 0 });
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
    this.#dispatchLent();
    // The full pack stays open (in #dirty) until its writes are flushed.
    this.#appender = null;
    this.#current++;
    this.#length = 0;
    return this.#current;
  }

  /**
   * Appends bytes; returns where they go. Bytes in a buffer of {@linkcode PackSet.leases} are
   * written from it (it is held until then); others are copied, so `data` may be reused at
   * once.
   */
  append(data: Uint8Array): PackLocation {
    this.#throwIfFailed();
    this.#open();
    const at = { pack: this.#current, offset: this.#length };
    if (data.length === 0) return at;
    if (this.#lib !== null && this.leases.owns(data.buffer)) {
      // Each of the stage and a lent run covers one stretch of the pack: end the other first.
      this.#dispatch();
      const run = this.#lent ??= { at, pieces: [], releases: [], length: 0 };
      run.pieces.push(data);
      run.releases.push(this.leases.hold(data.buffer));
      run.length += data.length;
      this.#length += data.length;
      if (run.length >= STAGE_SIZE || run.pieces.length >= MAX_PIECES) this.#dispatchLent();
      return at;
    }
    this.#dispatchLent();
    if (this.#stage !== null && this.#staged + data.length > this.#stage.length) this.#dispatch();
    if (this.#stage === null) {
      this.#stage = data.length > STAGE_SIZE
        ? alignedBytes(data.length)
        : this.#spare.pop() ?? alignedBytes(STAGE_SIZE);
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
    const recycle = stage.length === STAGE_SIZE ? stage : null;
    const p: Pending = { pack, offset, pieces: [bytes], length: bytes.length, done: null, recycle };
    if (a.fd >= 0) {
      p.done = this.#lib!.symbols.zs_pwrite_async(
        a.fd,
        bytes,
        BigInt(bytes.length),
        BigInt(offset),
      ).then((n) => checkWritten(pack, Number(n), bytes.length));
      this.#pending.push(p);
    } else {
      const f = a.file!;
      f.seekSync(offset, Deno.SeekMode.Start);
      let done = 0;
      while (done < bytes.length) done += f.writeSync(bytes.subarray(done));
      if (recycle !== null) this.#spare.push(recycle);
    }
    this.#written(a, bytes.length);
  }

  /** Hands the lent payloads gathered to one `pwritev`; their buffers go back when it is done. */
  #dispatchLent(): void {
    const run = this.#lent;
    if (run === null) return;
    this.#lent = null;
    const a = this.#appender!;
    const iov = new BigUint64Array(run.pieces.length * 2);
    run.pieces.forEach((piece, i) => {
      iov[2 * i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(piece)));
      iov[2 * i + 1] = BigInt(piece.length);
    });
    const { pack, offset } = run.at;
    const done = this.#lib!.symbols.zs_pwritev_async(a.fd, iov, run.pieces.length, BigInt(offset))
      .then((n) => checkWritten(pack, Number(n), run.length))
      .finally(() => {
        void iov; // the addresses stay valid while the write runs: the pieces are held
        for (const release of run.releases) release();
      });
    this.#pending.push({
      pack,
      offset,
      pieces: run.pieces,
      length: run.length,
      done,
      recycle: null,
    });
    this.#written(a, run.length);
  }

  /** Counts bytes handed to writes, and every so often starts the disk on them. */
  #written(a: Appender, length: number): void {
    this.#unflushed += length;
    if (this.#unflushed >= FLUSH_EVERY && this.#background === null) {
      this.#unflushed = 0;
      this.#background = this.#syncInBackground(a).finally(() => void (this.#background = null));
    }
  }

  /** Starts the disk on what was written so far, without waiting for it. */
  async #syncInBackground(a: Appender): Promise<void> {
    try {
      await this.#settle(this.#pending.length);
      await this.#syncAppender(a);
    } catch (e) {
      this.#error ??= e;
    }
  }

  /** Flushes a pack's written bytes to disk (on a thread of the runtime's). */
  async #syncAppender(a: Appender): Promise<void> {
    if (a.fd < 0) return await a.file!.syncData();
    const r = await this.#lib!.symbols.zs_fsync_async(a.fd);
    if (r < 0) throw new Error(`flushing pack ${a.pack}: errno ${-r}`);
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
        if (p.recycle !== null) this.#spare.push(p.recycle);
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
    for (const p of this.#pending) inFlight += p.length;
    let over = 0;
    for (const p of this.#pending) {
      if (inFlight <= IN_FLIGHT_LIMIT) break;
      inFlight -= p.length;
      over++;
    }
    if (over > 0) await this.#settle(over);
    this.#throwIfFailed();
  }

  /** Writes every appended byte and flushes them to disk. */
  async flush(): Promise<void> {
    this.#dispatch();
    this.#dispatchLent();
    await this.#background;
    await this.#settle(this.#pending.length);
    this.#throwIfFailed();
    for (const a of this.#dirty) await this.#syncAppender(a);
    // Full packs are done with; the current one stays open.
    for (const a of this.#dirty) if (a !== this.#appender) this.#closeAppender(a);
    this.#dirty = this.#appender === null ? [] : [this.#appender];
    this.#unflushed = 0;
  }

  /** Forgets appends since the last commit (the index rolled back): cuts them off. */
  async rollback(pack: number, length: number): Promise<void> {
    this.#stage = null;
    this.#staged = 0;
    if (this.#lent !== null) { for (const release of this.#lent.releases) release(); }
    this.#lent = null;
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
    return this.readInto(pack, offset, alignedBytes(length));
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
    const places: { pack: number; offset: number; pieces: Uint8Array[] }[] = [...this.#pending];
    if (this.#stage !== null) {
      places.push({ ...this.#stageAt, pieces: [this.#stage.subarray(0, this.#staged)] });
    }
    if (this.#lent !== null) places.push({ ...this.#lent.at, pieces: this.#lent.pieces });
    for (const p of places) {
      if (p.pack !== pack) continue;
      // A block went in as one piece: find the piece that holds all of it.
      let at = p.offset;
      for (const piece of p.pieces) {
        if (offset >= at && offset + out.length <= at + piece.length) {
          out.set(piece.subarray(offset - at, offset - at + out.length));
          return true;
        }
        at += piece.length;
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

function checkWritten(pack: number, n: number, want: number): void {
  if (n !== want) {
    throw new Error(
      `writing pack ${pack}: ${n < 0 ? `errno ${-n}` : `${n} of ${want} bytes written`}`,
    );
  }
}
