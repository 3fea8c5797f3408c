/**
 * The blocks of a dedup stream kept on disk while `redup` runs, so that memory stays small
 * whatever the size of the stream.
 *
 * Where the data lives: when the stream is a regular file, nowhere new: a WRITE is read back
 * from the stream itself at the offset where it was read (as `zstream redup` does). Otherwise
 * (a pipe) every WRITE record and its payload are appended to a spool file.
 *
 * How it is found: the sender writes the blocks of a substream in increasing (object, offset)
 * order, so the index is a file of 64-byte entries (object, offset, position, and the payload's
 * fletcher-4 when the reader gave it) made of sorted runs, one run per substream (a new run
 * starts wherever the order breaks or the toguid changes). The file is read in pages of 64
 * entries; memory holds a few numbers per run, the first key of each page (16 bytes per 64
 * blocks: 2.6 MiB for 11 million blocks), a 64 KiB buffer of entries not yet written and a 4 MiB
 * cache of pages. A lookup is a binary search over the first keys of the run's pages, then one
 * page read (or a cache hit), then one read of the WRITE record with its payload
 * ({@linkcode DiskRedupIndex.find}), or of the record alone when the payload's checksum is kept
 * and the payload stays where it lies in the stream's file ({@linkcode DiskRedupIndex.locate}).
 *
 * @module
 */

import { DRR, RECORD_SIZE } from "../core/stream/constants.ts";
import {
  type Checksum,
  decodeRecord,
  type DrrRecord,
  type DrrWrite,
  payloadSize,
} from "../core/stream/record.ts";
import type { StreamRecord } from "../core/stream/reader.ts";
import type { IndexedWrite, LocatedWrite, RedupIndex } from "../core/transform/redup.ts";
import { alignedBytes } from "./aligned_buffer.ts";
import { Device } from "./native/device.ts";

/** An entry: object, offset, position, 1 when a checksum follows, the payload's fletcher-4. */
const ENTRY = 64;
/** Entries per index page: 64 * 64 = 4096 bytes. */
const PAGE_ENTRIES = 64;
const PAGE_BYTES = PAGE_ENTRIES * ENTRY;
/** Entries buffered before they are written to the index file (64 KiB). */
const BUFFER_ENTRIES = 1024;
/** Index pages kept in memory. */
const CACHE_PAGES = 1024;

/** Options of {@linkcode DiskRedupIndex.create}. */
export interface DiskRedupIndexOptions {
  /**
   * The stream's path, when it is a regular file that stays as it is while `redup` runs:
   * WRITE records are read back from it instead of being copied.
   */
  source?: string;
  /** Where to make the temporary directory (the system's temporary directory by default). */
  tmpDir?: string;
  /**
   * Read every block found into one reused buffer: a payload that `find` gives is then valid
   * only until the next `find` (for a consumer that writes each record out before the next,
   * as `zsend redup` does); else each is a new buffer.
   */
  reuse?: boolean;
}

/** One sorted run of entries: the WRITEs of one substream (usually). */
interface Run {
  guid: bigint;
  /** Index of its first entry in the index file. */
  start: number;
  count: number;
  firstObject: bigint;
  firstOffset: bigint;
  lastObject: bigint;
  lastOffset: bigint;
}

function compare(ao: bigint, aoff: bigint, bo: bigint, boff: bigint): number {
  if (ao !== bo) return ao < bo ? -1 : 1;
  if (aoff !== boff) return aoff < boff ? -1 : 1;
  return 0;
}

/** Binary search of entries `from..to` of a page for a key: the entry's byte offset, or -1. */
function bisect(v: DataView, from: number, to: number, object: bigint, offset: bigint): number {
  let lo = from;
  let hi = to - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const at = mid * ENTRY;
    const c = compare(v.getBigUint64(at, true), v.getBigUint64(at + 8, true), object, offset);
    if (c === 0) return at;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/**
 * A {@linkcode RedupIndex} on disk, in a temporary directory removed by
 * {@linkcode DiskRedupIndex.close}.
 *
 * @example
 * ```ts
 * import { DiskRedupIndex } from "./redup_index.ts";
 * import { readRecords } from "../core/stream/reader.ts";
 * import { StreamWriter } from "../core/stream/writer.ts";
 * const w = new StreamWriter();
 * const stream = [
 *   ...w.begin({ toname: "p/fs@s", toguid: 5n, objset_type: 2 }),
 *   ...w.write({ type: 3, object: 8n, object_type: 19, offset: 0n, logical_size: 512n, toguid: 5n },
 *     new Uint8Array(512).fill(9)),
 *   ...w.end(),
 * ];
 * using index = DiskRedupIndex.create();
 * for await (const r of readRecords(stream)) if (r.header.type === 3) index.add(r);
 * const got = index.find(5n, 8n, 0n);
 * if (got?.payload[511] !== 9 || index.find(5n, 8n, 512n) !== undefined) throw new Error();
 * ```
 */
export class DiskRedupIndex implements RedupIndex, Disposable {
  /** The temporary directory. */
  readonly dir: string;
  #source: Device | null;
  #spool: Device | null = null;
  #spoolSize = 0;
  #index: Device;
  #indexEntries = 0;
  #buffer = alignedBytes(BUFFER_ENTRIES * ENTRY);
  #bufferView = new DataView(this.#buffer.buffer, this.#buffer.byteOffset, this.#buffer.length);
  #buffered = 0;
  #runs: Run[] = [];
  #runsByGuid = new Map<bigint, Run[]>();
  #cache = new Map<number, DataView>();
  /** The first key of every page: object and offset of entry `page * PAGE_ENTRIES`. */
  #fenceObject = new BigUint64Array(1024);
  #fenceOffset = new BigUint64Array(1024);
  #littleEndian = true;
  /** Payload size of the last WRITE read back: the guess for the next one. */
  #lastPayload = 0;
  /** Whether blocks read back share {@linkcode DiskRedupIndex.#readBuffer}. */
  #reuse: boolean;
  #readBuffer: Uint8Array = new Uint8Array(0);
  /** Where {@linkcode DiskRedupIndex.locate} reads a record back. */
  #headerBuffer = alignedBytes(RECORD_SIZE);
  #closed = false;

  private constructor(dir: string, source: Device | null, index: Device, reuse: boolean) {
    this.#reuse = reuse;
    this.dir = dir;
    this.#source = source;
    this.#index = index;
  }

  /**
   * Makes an empty index in a new temporary directory.
   *
   * @example
   * ```ts
   * import { DiskRedupIndex } from "./redup_index.ts";
   * const index = DiskRedupIndex.create();
   * const dir = index.dir;
   * index.close();
   * let gone = false;
   * try {
   *   Deno.statSync(dir);
   * } catch {
   *   gone = true;
   * }
   * if (!gone) throw new Error();
   * ```
   */
  static create(options: DiskRedupIndexOptions = {}): DiskRedupIndex {
    const dir = Deno.makeTempDirSync({
      prefix: "zsend-redup-",
      ...(options.tmpDir === undefined ? {} : { dir: options.tmpDir }),
    });
    try {
      const source = options.source === undefined ? null : Device.open(options.source);
      const index = Device.open(`${dir}/index`, { write: true, createNew: true, mode: 0o600 });
      return new DiskRedupIndex(dir, source, index, options.reuse === true);
    } catch (e) {
      Deno.removeSync(dir, { recursive: true });
      throw e;
    }
  }

  /** WRITE records kept. */
  get entries(): number {
    return this.#indexEntries + this.#buffered;
  }

  /** Bytes copied to the spool file (0 when blocks are read back from the stream's file). */
  get spooledBytes(): number {
    return this.#spoolSize;
  }

  /** Sorted runs of entries (one per substream for a stream in the sender's order). */
  get runs(): number {
    return this.#runs.length;
  }

  /**
   * Keeps a WRITE record: its position in the stream's file, or a copy in the spool.
   *
   * @example
   * ```ts
   * import { DiskRedupIndex } from "./redup_index.ts";
   * using index = DiskRedupIndex.create();
   * let threw = false;
   * try {
   *   index.add({ header: { type: 5 } } as never);
   * } catch (e) {
   *   threw = e instanceof TypeError;
   * }
   * if (!threw) throw new Error();
   * ```
   */
  add(record: StreamRecord): void {
    this.#check();
    const h = record.header;
    if (h.type !== DRR.WRITE) throw new TypeError("only WRITE records can be indexed");
    this.#littleEndian = record.littleEndian;
    let position: number;
    if (this.#source !== null) {
      position = record.offset;
    } else {
      this.#spool ??= Device.open(`${this.dir}/spool`, {
        write: true,
        createNew: true,
        mode: 0o600,
      });
      position = this.#spoolSize;
      this.#spool.pwrite(record.raw, position);
      this.#spool.pwrite(record.payload, position + RECORD_SIZE);
      this.#spoolSize += RECORD_SIZE + record.payload.length;
    }

    let run = this.#runs.at(-1);
    if (
      run === undefined || run.guid !== h.toguid ||
      compare(h.object, h.offset, run.lastObject, run.lastOffset) <= 0
    ) {
      run = {
        guid: h.toguid,
        start: this.entries,
        count: 0,
        firstObject: h.object,
        firstOffset: h.offset,
        lastObject: h.object,
        lastOffset: h.offset,
      };
      this.#runs.push(run);
      const same = this.#runsByGuid.get(h.toguid);
      if (same === undefined) this.#runsByGuid.set(h.toguid, [run]);
      else same.push(run);
    }
    run.count++;
    run.lastObject = h.object;
    run.lastOffset = h.offset;

    const entry = this.entries;
    if (entry % PAGE_ENTRIES === 0) {
      const page = entry / PAGE_ENTRIES;
      if (page === this.#fenceObject.length) {
        const grow = (a: BigUint64Array) => {
          const b = new BigUint64Array(a.length * 2);
          b.set(a);
          return b;
        };
        this.#fenceObject = grow(this.#fenceObject);
        this.#fenceOffset = grow(this.#fenceOffset);
      }
      this.#fenceObject[page] = h.object;
      this.#fenceOffset[page] = h.offset;
    }
    const at = this.#buffered * ENTRY;
    const v = this.#bufferView;
    v.setBigUint64(at, h.object, true);
    v.setBigUint64(at + 8, h.offset, true);
    v.setBigUint64(at + 16, BigInt(position), true);
    const ck = record.payloadChecksum;
    v.setBigUint64(at + 24, ck === undefined ? 0n : 1n, true);
    for (let i = 0; i < 4; i++) v.setBigUint64(at + 32 + 8 * i, ck?.[i] ?? 0n, true);
    if (++this.#buffered === BUFFER_ENTRIES) this.#flush();
  }

  /**
   * The WRITE written with this toguid, object and offset, read back from disk.
   *
   * @example
   * ```ts
   * import { DiskRedupIndex } from "./redup_index.ts";
   * using index = DiskRedupIndex.create();
   * if (index.find(1n, 1n, 0n) !== undefined) throw new Error();
   * ```
   */
  find(guid: bigint, object: bigint, offset: bigint): IndexedWrite | undefined {
    const entry = this.#lookup(guid, object, offset);
    return entry === undefined ? undefined : this.#read(entry.position, guid, object, offset);
  }

  /**
   * The WRITE written with this toguid, object and offset, without its payload: its header
   * (read back) and where the payload lies in the stream's file, with the payload's fletcher-4
   * as the reader gave it to {@linkcode DiskRedupIndex.add} (`payloadChecksums`); `undefined`
   * when no such WRITE was added, or it was added without that checksum. Only for an index that
   * reads blocks back from the stream's file (made with `source`).
   *
   * @example
   * ```ts
   * import { DiskRedupIndex } from "./redup_index.ts";
   * import { readRecords } from "../core/stream/reader.ts";
   * import { StreamWriter } from "../core/stream/writer.ts";
   * const w = new StreamWriter();
   * const parts = [
   *   ...w.begin({ toname: "p/fs@s", toguid: 5n, objset_type: 2 }),
   *   ...w.write({ type: 3, object: 8n, object_type: 19, offset: 0n, logical_size: 512n, toguid: 5n },
   *     new Uint8Array(512).fill(9)),
   *   ...w.end(),
   * ];
   * const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
   * parts.reduce((at, p) => (bytes.set(p, at), at + p.length), 0);
   * const path = Deno.makeTempFileSync();
   * Deno.writeFileSync(path, bytes);
   * using index = DiskRedupIndex.create({ source: path });
   * for await (const r of readRecords([bytes], { payloadChecksums: true })) {
   *   if (r.header.type === 3) index.add(r);
   * }
   * const got = index.locate(5n, 8n, 0n);
   * Deno.removeSync(path);
   * if (got?.payloadOffset !== 2 * 312 || bytes[got.payloadOffset] !== 9) throw new Error();
   * if (got.header.logical_size !== 512n || index.locate(5n, 8n, 512n) !== undefined) {
   *   throw new Error();
   * }
   * ```
   */
  locate(guid: bigint, object: bigint, offset: bigint): LocatedWrite | undefined {
    if (this.#source === null) {
      throw new TypeError("DiskRedupIndex.locate: the index was made without the stream's file");
    }
    const entry = this.#lookup(guid, object, offset);
    if (entry?.payloadChecksum === undefined) return undefined;
    const buf = this.#headerBuffer;
    const header = this.#header(buf, this.#source.pread(buf, entry.position), entry.position);
    this.#verifyHeader(header, entry.position, guid, object, offset);
    return {
      header: header as DrrWrite,
      raw: buf,
      payloadOffset: entry.position + RECORD_SIZE,
      payloadChecksum: entry.payloadChecksum,
    };
  }

  /** The entry of a key: where its WRITE lies, and its payload's checksum when kept. */
  #lookup(
    guid: bigint,
    object: bigint,
    offset: bigint,
  ): { position: number; payloadChecksum?: Checksum } | undefined {
    this.#check();
    const runs = this.#runsByGuid.get(guid);
    if (runs === undefined) return undefined;
    for (let i = runs.length - 1; i >= 0; i--) {
      const run = runs[i]!;
      if (
        compare(object, offset, run.firstObject, run.firstOffset) < 0 ||
        compare(object, offset, run.lastObject, run.lastOffset) > 0
      ) continue;
      // The run's last page whose first key is at most the one sought (the run's first page
      // when none is: its first key may belong to the run before).
      const end = run.start + run.count;
      const firstPage = Math.floor(run.start / PAGE_ENTRIES);
      let lo = firstPage + 1;
      let hi = Math.floor((end - 1) / PAGE_ENTRIES);
      let page = firstPage;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        const c = compare(this.#fenceObject[mid]!, this.#fenceOffset[mid]!, object, offset);
        if (c <= 0) {
          page = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      const found = this.#search(
        Math.max(page * PAGE_ENTRIES, run.start),
        Math.min((page + 1) * PAGE_ENTRIES, end),
        object,
        offset,
      );
      if (found === undefined) continue;
      const { view: v, at } = found;
      const position = Number(v.getBigUint64(at + 16, true));
      if (v.getBigUint64(at + 24, true) === 0n) return { position };
      const payloadChecksum: Checksum = [
        v.getBigUint64(at + 32, true),
        v.getBigUint64(at + 40, true),
        v.getBigUint64(at + 48, true),
        v.getBigUint64(at + 56, true),
      ];
      return { position, payloadChecksum };
    }
    return undefined;
  }

  /** Writes the buffered entries to the index file. */
  #flush(): void {
    if (this.#buffered === 0) return;
    const first = this.#indexEntries;
    this.#index.pwrite(this.#buffer.subarray(0, this.#buffered * ENTRY), first * ENTRY);
    this.#indexEntries += this.#buffered;
    this.#buffered = 0;
    // A cached page that was partly filled is stale now.
    this.#cache.delete(Math.floor(first / PAGE_ENTRIES));
  }

  /**
   * Binary search of entries `from..to` (within one page) for a key; returns where the entry
   * lies (the view is valid until the next search). The part of the page not written yet is in
   * the buffer.
   */
  #search(
    from: number,
    to: number,
    object: bigint,
    offset: bigint,
  ): { view: DataView; at: number } | undefined {
    const flushed = this.#indexEntries;
    if (from < flushed) {
      const page = Math.floor(from / PAGE_ENTRIES);
      const base = page * PAGE_ENTRIES;
      const view = this.#page(page);
      const at = bisect(view, from - base, Math.min(to, flushed) - base, object, offset);
      if (at >= 0) return { view, at };
      if (to <= flushed) return undefined;
      from = flushed;
    }
    const view = this.#bufferView;
    const at = bisect(view, from - flushed, to - flushed, object, offset);
    return at >= 0 ? { view, at } : undefined;
  }

  #page(page: number): DataView {
    const cache = this.#cache;
    const hit = cache.get(page);
    if (hit !== undefined) {
      cache.delete(page);
      cache.set(page, hit);
      return hit;
    }
    let buf: Uint8Array;
    if (cache.size >= CACHE_PAGES) {
      // Reuse the least recently used page's memory.
      const [oldest, old] = cache.entries().next().value!;
      cache.delete(oldest);
      buf = new Uint8Array(old.buffer, old.byteOffset, PAGE_BYTES);
    } else buf = alignedBytes(PAGE_BYTES);
    const n = this.#index.pread(buf, page * PAGE_BYTES);
    const v = new DataView(buf.buffer, buf.byteOffset, n);
    cache.set(page, v);
    return v;
  }

  #read(position: number, guid: bigint, object: bigint, offset: bigint): IndexedWrite {
    const from = this.#source ?? this.#spool!;
    // One read for the record and (usually) its payload: at most the block's size.
    let buf = this.#blockBuffer(RECORD_SIZE + this.#lastPayload);
    let n = from.pread(buf, position);
    const header = this.#header(buf, n, position);
    this.#verifyHeader(header, position, guid, object, offset);
    const size = payloadSize(header);
    this.#lastPayload = size;
    if (n < RECORD_SIZE + size) {
      if (buf.length < RECORD_SIZE + size) {
        buf = this.#blockBuffer(RECORD_SIZE + size);
      }
      n = RECORD_SIZE +
        from.pread(buf.subarray(RECORD_SIZE, RECORD_SIZE + size), position + RECORD_SIZE);
      if (n < RECORD_SIZE + size) {
        throw new Error(`redup index: ${from.path} ends inside the WRITE at byte ${position}`);
      }
    }
    return { header: header as DrrWrite, payload: buf.subarray(RECORD_SIZE, RECORD_SIZE + size) };
  }

  /** The record header read back into `buf` (`n` bytes read at `position`). */
  #header(buf: Uint8Array, n: number, position: number): DrrRecord {
    if (n < RECORD_SIZE) {
      const from = this.#source ?? this.#spool!;
      throw new Error(
        `redup index: cannot read back the WRITE at byte ${position} of ${from.path}`,
      );
    }
    return decodeRecord(buf.subarray(0, RECORD_SIZE), this.#littleEndian);
  }

  /** Throws unless the record read back is the WRITE indexed there. */
  #verifyHeader(
    header: DrrRecord,
    position: number,
    guid: bigint,
    object: bigint,
    offset: bigint,
  ): void {
    if (
      header.type !== DRR.WRITE || header.toguid !== guid || header.object !== object ||
      header.offset !== offset
    ) {
      const from = this.#source ?? this.#spool!;
      throw new Error(
        `redup index: the record at byte ${position} of ${from.path} is not the WRITE indexed ` +
          "there (did the file change while redup ran?)",
      );
    }
  }

  /** A buffer of `size` bytes to read a block into: the reused one, or a new one. */
  #blockBuffer(size: number): Uint8Array {
    if (!this.#reuse) return alignedBytes(size);
    if (this.#readBuffer.length < size) {
      this.#readBuffer = alignedBytes(Math.max(size, 2 * this.#readBuffer.length));
    }
    return this.#readBuffer.subarray(0, size);
  }

  #check(): void {
    if (this.#closed) throw new Deno.errors.BadResource("the redup index is closed");
  }

  /** Closes the files and removes the temporary directory; later calls do nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#source?.close();
      this.#spool?.close();
      this.#index.close();
    } finally {
      Deno.removeSync(this.dir, { recursive: true });
    }
  }

  /** The same as {@linkcode DiskRedupIndex.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
