/**
 * Small files written whole, many per native call, on a thread of the runtime's: each is
 * created new (never through an existing name), its data copied from packs in the kernel or
 * written from memory, then its length, owner, mode and times set, all by file descriptor. The
 * caller goes on (walking a tree) while the kernel makes the files, and pays one call a batch,
 * not a call per step per file.
 *
 * @module
 */

import { cString, loadNative, nativeDisabled, type NativeLib } from "./ffi.ts";
import { granted, osError } from "./device.ts";

/** A run of a file's data: bytes of a pack (copied in the kernel) or bytes in memory. */
export type BatchRun =
  | { source: string; from: number; length: number; to: number }
  | { data: Uint8Array; to: number };

/** One file of a batch, whole. */
export interface BatchFile {
  /** Where it is made (created new). */
  path: string;
  /** Its length (set when `truncate`: a hole to the end). */
  size: number;
  /** Whether its length is set after its runs are written. */
  truncate: boolean;
  /** Permission bits. */
  perm: number;
  /** Owner, applied when `chown`. */
  uid: number;
  gid: number;
  chown: boolean;
  /** Access and modification times, seconds and nanoseconds. */
  atime: [number, number];
  mtime: [number, number];
  /** Its data, in order; what no run covers stays a hole. */
  runs: BatchRun[];
}

/** A file of a batch that failed (and was removed, unless `notRemoved` says why not). */
export interface BatchFailure {
  /** Its index in the batch. */
  index: number;
  error: Error;
  notRemoved: Error | null;
}

const STEPS = ["", "open", "copy to", "write", "truncate", "chown", "chmod", "utime", "close"];
/** Doubles a file's record takes before its runs, and a run. */
const HEAD = 11;
const RUN = 4;

/**
 * Batches of small files, written one batch after another in the order they were flushed.
 *
 * @example
 * ```ts
 * import { FileBatches } from "./file_batch.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeFileSync(`${dir}/pack`, new Uint8Array([1, 2, 3, 4]));
 * const batches = FileBatches.open();
 * if (batches !== null) {
 *   const file = {
 *     size: 8, truncate: true, perm: 0o640, uid: 0, gid: 0, chown: false,
 *     atime: [1, 0] as [number, number], mtime: [2, 500_000_000] as [number, number],
 *   };
 *   batches.add({ ...file, path: `${dir}/a`, runs: [{ source: `${dir}/pack`, from: 1, length: 2, to: 0 }] });
 *   batches.add({ ...file, path: `${dir}/a`, runs: [] }); // taken: fails, the first stays
 *   const failed = await batches.flush();
 *   batches.close();
 *   const st = Deno.statSync(`${dir}/a`);
 *   if (failed.length !== 1 || failed[0]!.index !== 1) throw new Error();
 *   if (!(failed[0]!.error instanceof Deno.errors.AlreadyExists)) throw new Error();
 *   if (st.size !== 8 || (st.mode! & 0o777) !== 0o640 || st.mtime!.getTime() !== 2500) throw new Error();
 *   if (Deno.readFileSync(`${dir}/a`).join() !== "2,3,0,0,0,0,0,0") throw new Error();
 * }
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export class FileBatches {
  #lib: NativeLib;
  /** Packs open for reading, by path, for all batches. */
  #sources = new Map<string, number>();
  #readable = new Map<string, boolean>();
  #files: BatchFile[] = [];
  /** The last batch sent: the next runs after it. */
  #tail: Promise<unknown> = Promise.resolve();
  /** The buffers of batches sent and not yet written. */
  #held = new Set<object>();

  private constructor(lib: NativeLib) {
    this.#lib = lib;
  }

  /**
   * Batches, or null without the native library (or with `ZSEND_NO_NATIVE=1`), or where
   * Deno's write permission does not cover `under` (FFI would bypass it).
   */
  static open(under = "."): FileBatches | null {
    if (nativeDisabled() || !granted({ name: "write", path: under })) return null;
    const lib = loadNative();
    return lib === null ? null : new FileBatches(lib);
  }

  /** Whether a pack can be a source: Deno's read permission covers it. */
  canRead(path: string): boolean {
    let ok = this.#readable.get(path);
    if (ok === undefined) this.#readable.set(path, ok = granted({ name: "read", path }));
    return ok;
  }

  /** Files added since the last flush. */
  get pending(): number {
    return this.#files.length;
  }

  /** Adds a file to the batch being made. */
  add(file: BatchFile): void {
    this.#files.push(file);
  }

  /**
   * Sends the batch being made; it is written after the batches sent before it.
   *
   * @returns the files that failed (each removed), once the batch is written
   * @throws when a pack cannot be opened (then no file of the batch was made)
   */
  flush(): Promise<BatchFailure[]> {
    const files = this.#files;
    this.#files = [];
    if (files.length === 0) return Promise.resolve([]);
    const { desc, paths, data } = this.#encode(files);
    const out = new Int32Array(3 * files.length);
    // The native call reads and writes these on another thread: they are held here until it
    // returns (Deno itself keeps them alive only since denoland/deno#32775, early 2026).
    const held = { desc, paths, data, out };
    this.#held.add(held);
    const run = this.#tail.then(() =>
      this.#lib.symbols.zs_write_files_async(held.desc, files.length, held.paths, held.data, out)
    ).finally(() => this.#held.delete(held));
    this.#tail = run.catch(() => {});
    return run.then((n) => {
      const failed: BatchFailure[] = [];
      for (let i = 0; n > 0 && i < files.length; i++) {
        if (out[3 * i] === 0) continue;
        n--;
        const path = files[i]!.path;
        const step = STEPS[out[3 * i + 1]!] ?? "write";
        const undone = out[3 * i + 2]!;
        failed.push({
          index: i,
          error: osError(this.#lib, out[3 * i]!, `${step} '${path}'`),
          notRemoved: undone === 0 ? null : osError(this.#lib, undone, `remove '${path}'`),
        });
      }
      return failed;
    });
  }

  /** Closes the packs, once every batch sent is written. */
  async close(): Promise<void> {
    await this.#tail;
    for (const fd of this.#sources.values()) this.#lib.symbols.zs_close(fd);
    this.#sources.clear();
  }

  #source(path: string): number {
    let fd = this.#sources.get(path);
    if (fd === undefined) {
      fd = this.#lib.symbols.zs_open(cString(path), 0, 0);
      if (fd < 0) throw osError(this.#lib, -fd, `open '${path}'`);
      this.#sources.set(path, fd);
    }
    return fd;
  }

  #encode(files: BatchFile[]) {
    let doubles = 0, dataBytes = 0;
    for (const f of files) {
      doubles += HEAD + RUN * f.runs.length;
      for (const r of f.runs) if ("data" in r) dataBytes += r.data.length;
    }
    const desc = new Float64Array(doubles);
    const data = new Uint8Array(Math.max(dataBytes, 1));
    const names = files.map((f) => cString(f.path));
    const paths = new Uint8Array(names.reduce((n, b) => n + b.length, 0));
    let at = 0, pathAt = 0, dataAt = 0;
    files.forEach((f, i) => {
      paths.set(names[i]!, pathAt);
      desc.set([
        pathAt,
        f.size,
        f.perm,
        f.uid,
        f.gid,
        (f.chown ? 1 : 0) | (f.truncate ? 2 : 0),
        ...f.atime,
        ...f.mtime,
        f.runs.length,
      ], at);
      pathAt += names[i]!.length;
      at += HEAD;
      for (const r of f.runs) {
        if ("data" in r) {
          data.set(r.data, dataAt);
          desc.set([-1, dataAt, r.data.length, r.to], at);
          dataAt += r.data.length;
        } else desc.set([this.#source(r.source), r.from, r.length, r.to], at);
        at += RUN;
      }
    });
    return { desc, paths, data };
  }
}
