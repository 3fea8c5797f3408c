/**
 * Positional I/O on a file or block device: through the native library (`pread`/`pwrite`,
 * `BLKGETSIZE64`) when it is loaded, else through Deno's `FsFile` (`seek` + `read`/`write`),
 * with the same results either way.
 *
 * @module
 */

import { cString, loadNative, nativeDisabled, type NativeLib, ZS_O } from "./ffi.ts";
import { blockFletcher4 } from "./blocks.ts";
import { alignedBytes } from "../aligned_buffer.ts";

/** How to open a {@linkcode Device}. */
export interface DeviceOpenOptions {
  /** Open read-write (default: read-only). */
  write?: boolean;
  /** Create the file if missing (needs `write`). */
  create?: boolean;
  /** Fail if the file exists (needs `write`; implies `create`). */
  createNew?: boolean;
  /** Truncate to zero length (needs `write`). */
  truncate?: boolean;
  /** Permission bits for a created file (default 0o666, less the umask). */
  mode?: number;
  /**
   * `true`: the native library, or throw; `false`: Deno's `FsFile`. Default: native when it is
   * loaded, `ZSEND_NO_NATIVE` is not `1` and Deno's read (and write) permission covers the path
   * (FFI would bypass Deno's permission checks), else `FsFile`.
   */
  native?: boolean;
}

const ERRNO_CLASS: Record<number, new (message: string) => Error> = {
  1: Deno.errors.PermissionDenied, // EPERM
  2: Deno.errors.NotFound, // ENOENT
  13: Deno.errors.PermissionDenied, // EACCES
  16: Deno.errors.Busy, // EBUSY
  17: Deno.errors.AlreadyExists, // EEXIST
  20: Deno.errors.NotADirectory, // ENOTDIR
  21: Deno.errors.IsADirectory, // EISDIR
};

/** An errno as the error Deno would throw for it (`what` says what failed). */
export function osError(lib: NativeLib, errno: number, what: string): Error {
  const p = lib.symbols.zs_strerror(errno);
  const text = p === null ? `errno ${errno}` : Deno.UnsafePointerView.getCString(p);
  const Class = ERRNO_CLASS[errno] ?? Error;
  return new Class(`${text} (os error ${errno}): ${what}`);
}

/** Whether Deno's permission `desc` is granted (queried, never requested). */
export function granted(desc: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(desc).state === "granted";
  } catch {
    return false;
  }
}

/** Bytes read at a time by `Device.scanBlocks` without the native library. */
const SCAN_PIECE = 4 << 20;

function checkOffset(offset: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new RangeError(`bad offset ${offset}`);
  }
}

/**
 * An open file or block device with positional reads and writes.
 *
 * Methods are synchronous (the native calls block, as `pread` does).
 *
 * @example
 * ```ts
 * import { Device } from "./device.ts";
 * const path = Deno.makeTempFileSync();
 * using dev = Device.open(path, { write: true });
 * dev.pwrite(new Uint8Array([1, 2, 3, 4]), 10);
 * const buf = new Uint8Array(8);
 * const n = dev.pread(buf, 8); // bytes 8..13 exist; 14.. is past the end
 * if (n !== 6 || dev.size() !== 14 || buf[2] !== 1 || buf[5] !== 4) throw new Error();
 * Deno.removeSync(path);
 * ```
 */
let sealedOk: boolean | undefined;

/**
 * Whether sealed blocks can be opened natively here ({@linkcode Device.openSealedAsync}): the
 * native library loaded (and not disabled with `ZSEND_NO_NATIVE=1`) and libcrypto's AES-GCM and
 * AES-CCM loadable by it.
 */
export function sealedBlocksOpenable(): boolean {
  if (sealedOk === undefined) {
    const lib = nativeDisabled() ? null : loadNative();
    sealedOk = lib !== null && lib.symbols.zs_open_blocks_available() === 1;
  }
  return sealedOk;
}

/** Bytes of one block's descriptor for {@linkcode Device.openSealedAsync}. */
export const SEALED_DESC_BYTES = 96;

/**
 * Lays out block `i`'s descriptor in `desc` for {@linkcode Device.openSealedAsync}: its sealed
 * bytes at `srcOffset` (`length` of them), the `keep` first plaintext bytes written at
 * `offset`, opened with `key` (16, 24 or 32 bytes), `iv` (12) and `mac` (16).
 */
export function sealedDescriptor(
  desc: Uint8Array,
  i: number,
  b: {
    srcOffset: number;
    offset: number;
    length: number;
    keep: number;
    key: Uint8Array;
    iv: Uint8Array;
    mac: Uint8Array;
  },
): void {
  const at = i * SEALED_DESC_BYTES;
  const v = new DataView(desc.buffer, desc.byteOffset + at, SEALED_DESC_BYTES);
  v.setBigUint64(0, BigInt(b.srcOffset), true);
  v.setBigUint64(8, BigInt(b.offset), true);
  v.setUint32(16, b.length, true);
  v.setUint32(20, b.keep, true);
  desc.set(b.key.subarray(0, 32), at + 24);
  desc.set(b.iv.subarray(0, 12), at + 56);
  desc.set(b.mac.subarray(0, 16), at + 68);
}

export class Device {
  /** The path it was opened with. */
  readonly path: string;
  /** Which implementation does the I/O. */
  readonly backend: "native" | "deno";
  #lib: NativeLib | null;
  #fd: number;
  #file: Deno.FsFile | null;
  #closed = false;

  private constructor(path: string, lib: NativeLib | null, fd: number, file: Deno.FsFile | null) {
    this.path = path;
    this.#lib = lib;
    this.#fd = fd;
    this.#file = file;
    this.backend = lib === null ? "deno" : "native";
  }

  /**
   * Opens `path` (see {@linkcode DeviceOpenOptions}).
   *
   * @example
   * ```ts
   * import { Device } from "./device.ts";
   * let threw = false;
   * try {
   *   Device.open("/nonexistent/zsend-device-example");
   * } catch (e) {
   *   threw = e instanceof Deno.errors.NotFound;
   * }
   * if (!threw) throw new Error();
   * ```
   */
  static open(path: string | URL, options: DeviceOpenOptions = {}): Device {
    const p = path instanceof URL ? decodeURIComponent(path.pathname) : path;
    const write = options.write ?? false;
    if ((options.create || options.createNew || options.truncate) && !write) {
      throw new TypeError("create, createNew and truncate need write: true");
    }
    let lib: NativeLib | null = null;
    if (options.native === true) {
      lib = loadNative();
      if (lib === null) throw new Error("native library requested but not loaded");
    } else if (options.native === undefined && !nativeDisabled()) {
      const allowed = granted({ name: "read", path: p }) &&
        (!write || granted({ name: "write", path: p }));
      if (allowed) lib = loadNative();
    }
    if (lib !== null) {
      const flags = (write ? ZS_O.WRITE : 0) |
        (options.create || options.createNew ? ZS_O.CREATE : 0) |
        (options.createNew ? ZS_O.EXCL : 0) | (options.truncate ? ZS_O.TRUNC : 0);
      const fd = lib.symbols.zs_open(cString(p), flags, options.mode ?? 0o666);
      if (fd < 0) throw osError(lib, -fd, `open '${p}'`);
      return new Device(p, lib, fd, null);
    }
    const file = Deno.openSync(p, {
      read: true,
      write,
      create: options.create ?? false,
      createNew: options.createNew ?? false,
      truncate: options.truncate ?? false,
      ...(options.mode === undefined ? {} : { mode: options.mode }),
    });
    return new Device(p, null, -1, file);
  }

  #check(): void {
    if (this.#closed) throw new Deno.errors.BadResource(`device '${this.path}' is closed`);
  }

  /**
   * The size in bytes (of a block device too).
   *
   * @example
   * ```ts
   * import { Device } from "./device.ts";
   * const path = Deno.makeTempFileSync();
   * Deno.writeFileSync(path, new Uint8Array(1234));
   * using dev = Device.open(path);
   * if (dev.size() !== 1234) throw new Error();
   * Deno.removeSync(path);
   * ```
   */
  size(): number {
    this.#check();
    if (this.#lib !== null) {
      const r = Number(this.#lib.symbols.zs_size(this.#fd));
      if (r < 0) throw osError(this.#lib, -r, `size of '${this.path}'`);
      return r;
    }
    return this.#file!.seekSync(0, Deno.SeekMode.End);
  }

  /**
   * Reads into `buf` from byte `offset`; returns the bytes read, fewer than `buf.length` only
   * at the end of the file.
   *
   * @example
   * ```ts
   * import { Device } from "./device.ts";
   * const path = Deno.makeTempFileSync();
   * Deno.writeFileSync(path, new Uint8Array([9, 8, 7]));
   * using dev = Device.open(path);
   * const buf = new Uint8Array(4);
   * if (dev.pread(buf, 1) !== 2 || buf[0] !== 8 || buf[1] !== 7) throw new Error();
   * if (dev.pread(buf, 100) !== 0) throw new Error();
   * Deno.removeSync(path);
   * ```
   */
  pread(buf: Uint8Array, offset: number): number {
    this.#check();
    checkOffset(offset);
    if (buf.length === 0) return 0;
    if (this.#lib !== null) {
      const r = Number(
        this.#lib.symbols.zs_pread(this.#fd, buf, BigInt(buf.length), BigInt(offset)),
      );
      if (r < 0) throw osError(this.#lib, -r, `pread '${this.path}'`);
      return r;
    }
    const file = this.#file!;
    file.seekSync(offset, Deno.SeekMode.Start);
    let done = 0;
    while (done < buf.length) {
      const n = file.readSync(buf.subarray(done));
      if (n === null || n === 0) break;
      done += n;
    }
    return done;
  }

  /**
   * {@linkcode Device.pread} on a thread of the runtime's (native backend), so that the read
   * of the next chunk overlaps work on the last one; `buf` must not be touched until it
   * settles. The Deno backend reads at once.
   *
   * @example
   * ```ts
   * import { Device } from "./device.ts";
   * const path = Deno.makeTempFileSync();
   * Deno.writeFileSync(path, new Uint8Array([4, 5, 6]));
   * using dev = Device.open(path);
   * const buf = new Uint8Array(2);
   * if (await dev.preadAsync(buf, 1) !== 2 || buf[1] !== 6) throw new Error();
   * Deno.removeSync(path);
   * ```
   */
  async preadAsync(buf: Uint8Array, offset: number): Promise<number> {
    this.#check();
    checkOffset(offset);
    if (buf.length === 0 || this.#lib === null) return this.pread(buf, offset);
    const r = Number(
      await this.#lib.symbols.zs_pread_async(this.#fd, buf, BigInt(buf.length), BigInt(offset)),
    );
    if (r < 0) throw osError(this.#lib, -r, `pread '${this.path}'`);
    return r;
  }

  /**
   * Reads `want` bytes at `offset` into `buf`, zeros the rest of `buf`, and puts the fletcher-4
   * of each whole `blockSize`-byte block of `buf` in `out` (see `blockFletcher4`): with the
   * native backend, all on a thread of the runtime's, so that the checksums of one chunk run
   * beside the reading of the next. `buf` and `out` must not be touched until it settles.
   *
   * @returns the bytes read: fewer than `want` only at the end of the file
   * @example
   * ```ts
   * import { Device } from "./device.ts";
   * const path = Deno.makeTempFileSync();
   * Deno.writeFileSync(path, new Uint8Array([0, 0, 0, 0, 7, 0, 0, 0]));
   * using dev = Device.open(path);
   * const out = new BigUint64Array(8);
   * const n = await dev.preadBlocks(new Uint8Array(16), 8, 0, out, 8);
   * // Block 0 (bytes 0..8): b = c = d = a = 7; block 1 (past the end): zeros.
   * if (n !== 8 || out[0] !== 7n || out[1] !== 7n || out[4] !== 0n) throw new Error();
   * Deno.removeSync(path);
   * ```
   */
  async preadBlocks(
    buf: Uint8Array,
    want: number,
    offset: number,
    out: BigUint64Array,
    blockSize: number,
  ): Promise<number> {
    this.#check();
    checkOffset(offset);
    if (want > buf.length || out.length < Math.floor(buf.length / blockSize) * 4) {
      throw new RangeError("preadBlocks: want beyond the buffer, or too little room for sums");
    }
    if (this.#lib === null || buf.length > 0xffffffff) {
      const got = want === 0 ? 0 : await this.preadAsync(buf.subarray(0, want), offset);
      buf.fill(0, got);
      blockFletcher4(out, buf, blockSize);
      return got;
    }
    const r = Number(
      await this.#lib.symbols.zs_pread_blocks_async(
        this.#fd,
        buf,
        want,
        buf.length,
        BigInt(offset),
        out,
        blockSize,
      ),
    );
    if (r < 0) throw osError(this.#lib, -r, `pread '${this.path}'`);
    return r;
  }

  /**
   * {@linkcode Device.preadBlocks} of `length` bytes for their checksums only: with the native
   * backend the bytes pass through a small buffer of the thread's, checksummed while in its
   * cache, rather than into memory that would be read back. `out` must not be touched until it
   * settles.
   *
   * @returns the bytes read: fewer than `want` only at the end of the file
   * @example
   * ```ts
   * import { Device } from "./device.ts";
   * const path = Deno.makeTempFileSync();
   * Deno.writeFileSync(path, new Uint8Array([0, 0, 0, 0, 7, 0, 0, 0]));
   * using dev = Device.open(path);
   * const out = new BigUint64Array(8);
   * const n = await dev.scanBlocks(8, 16, 0, out, 8);
   * if (n !== 8 || out[0] !== 7n || out[3] !== 7n || out[4] !== 0n) throw new Error();
   * Deno.removeSync(path);
   * ```
   */
  async scanBlocks(
    want: number,
    length: number,
    offset: number,
    out: BigUint64Array,
    blockSize: number,
  ): Promise<number> {
    this.#check();
    checkOffset(offset);
    if (want > length || out.length < Math.floor(length / blockSize) * 4) {
      throw new RangeError("scanBlocks: want beyond the length, or too little room for sums");
    }
    if (this.#lib === null || length > 0xffffffff || blockSize % 4 !== 0) {
      // Through one buffer of a few MiB, a whole number of blocks.
      const piece = Math.max(1, Math.floor(SCAN_PIECE / blockSize)) * blockSize;
      const buf = alignedBytes(Math.min(piece, length));
      let got = 0;
      for (let at = 0; at < length; at += piece) {
        const n = Math.min(piece, length - at);
        const w = Math.max(0, Math.min(n, want - at));
        const sums = out.subarray((at / blockSize) * 4);
        const r = await this.preadBlocks(buf.subarray(0, n), w, offset + at, sums, blockSize);
        got += r;
        if (r < w) want = at + r; // the end of the file: zeros from here
      }
      return got;
    }
    const r = Number(
      await this.#lib.symbols.zs_scan_blocks_async(
        this.#fd,
        want,
        length,
        BigInt(offset),
        out,
        blockSize,
      ),
    );
    if (r < 0) throw osError(this.#lib, -r, `pread '${this.path}'`);
    return r;
  }

  /**
   * Writes all of `buf` at byte `offset` (extending the file if needed); returns `buf.length`.
   *
   * @example
   * ```ts
   * import { Device } from "./device.ts";
   * const path = Deno.makeTempFileSync();
   * using dev = Device.open(path, { write: true });
   * if (dev.pwrite(new Uint8Array([5, 6]), 2) !== 2) throw new Error();
   * const got = Deno.readFileSync(path);
   * if (got.length !== 4 || got[0] !== 0 || got[3] !== 6) throw new Error();
   * Deno.removeSync(path);
   * ```
   */
  pwrite(buf: Uint8Array, offset: number): number {
    this.#check();
    checkOffset(offset);
    if (buf.length === 0) return 0;
    if (this.#lib !== null) {
      const r = Number(
        this.#lib.symbols.zs_pwrite(this.#fd, buf, BigInt(buf.length), BigInt(offset)),
      );
      if (r < 0) throw osError(this.#lib, -r, `pwrite '${this.path}'`);
      return r;
    }
    const file = this.#file!;
    file.seekSync(offset, Deno.SeekMode.Start);
    let done = 0;
    while (done < buf.length) done += file.writeSync(buf.subarray(done));
    return done;
  }

  /**
   * Copies `length` bytes of `src` from `srcOffset` to this device at `offset`: in the kernel
   * with the native backend on both (`copy_file_range`, as `cp` copies, or where the two offsets
   * lie differently within a page, writes from `src` mapped a window at a time), else through
   * memory.
   *
   * @example
   * ```ts
   * import { Device } from "./device.ts";
   * const a = Deno.makeTempFileSync(), b = Deno.makeTempFileSync();
   * Deno.writeFileSync(a, new Uint8Array([1, 2, 3, 4]));
   * using src = Device.open(a);
   * using dst = Device.open(b, { write: true });
   * dst.copyRange(src, 1, 2, 5);
   * const got = Deno.readFileSync(b);
   * Deno.removeSync(a);
   * Deno.removeSync(b);
   * if (got.length !== 7 || got[5] !== 2 || got[6] !== 3) throw new Error();
   * ```
   */
  copyRange(src: Device, srcOffset: number, length: number, offset: number): void {
    this.#check();
    src.#check();
    checkOffset(srcOffset);
    checkOffset(offset);
    if (length === 0) return;
    if (this.#lib !== null && src.#lib !== null) {
      const r = Number(
        this.#lib.symbols.zs_copy_data(
          src.#fd,
          BigInt(srcOffset),
          this.#fd,
          BigInt(offset),
          BigInt(length),
        ),
      );
      this.#copied(src, srcOffset, length, r);
      return;
    }
    this.#copyThroughMemory(src, srcOffset, length, offset);
  }

  /**
   * {@linkcode Device.copyRange} on a thread of the runtime's (native backend on both), so
   * that other work goes on meanwhile; neither device may be closed until it settles.
   *
   * @example
   * ```ts
   * import { Device } from "./device.ts";
   * const a = Deno.makeTempFileSync(), b = Deno.makeTempFileSync();
   * Deno.writeFileSync(a, new Uint8Array([1, 2, 3, 4]));
   * using src = Device.open(a);
   * using dst = Device.open(b, { write: true });
   * await dst.copyRangeAsync(src, 2, 2, 0);
   * const got = Deno.readFileSync(b);
   * Deno.removeSync(a);
   * Deno.removeSync(b);
   * if (got.join() !== "3,4") throw new Error();
   * ```
   */
  async copyRangeAsync(
    src: Device,
    srcOffset: number,
    length: number,
    offset: number,
  ): Promise<void> {
    this.#check();
    src.#check();
    checkOffset(srcOffset);
    checkOffset(offset);
    if (length === 0) return;
    if (this.#lib !== null && src.#lib !== null) {
      const r = Number(
        await this.#lib.symbols.zs_copy_data_async(
          src.#fd,
          BigInt(srcOffset),
          this.#fd,
          BigInt(offset),
          BigInt(length),
        ),
      );
      this.#copied(src, srcOffset, length, r);
      return;
    }
    this.#copyThroughMemory(src, srcOffset, length, offset);
  }

  /**
   * Whether {@linkcode Device.openSealedAsync} can work from `src` into this device: the native
   * backend on both and OpenSSL's libcrypto loadable by the native library.
   */
  canOpenSealed(src: Device): boolean {
    if (this.#lib === null || src.#lib === null) return false;
    return sealedBlocksOpenable();
  }

  /**
   * Opens `n` sealed blocks of `src` into this device on a thread of the runtime's
   * (`zs_open_blocks`: read, AES-GCM (`mode` 0) or AES-CCM (1) decrypted and authenticated
   * with each block's key, IV and tag, written unless all zeros). `desc` holds the blocks'
   * 96-byte descriptors ({@linkcode SEALED_DESC_BYTES}, laid out by
   * {@linkcode sealedDescriptor}) and stays the caller's until the promise settles.
   *
   * @returns -1 when every block was written, else the index of the block whose tag does not
   * match (the blocks before it are written, nothing of it)
   */
  async openSealedAsync(
    src: Device,
    desc: Uint8Array,
    n: number,
    mode: 0 | 1,
    keyLen: number,
  ): Promise<number> {
    this.#check();
    src.#check();
    if (!this.canOpenSealed(src)) throw new TypeError("no native library with libcrypto");
    return this.#opened(
      src,
      Number(
        await this.#lib!.symbols.zs_open_blocks_async(src.#fd, this.#fd, desc, n, mode, keyLen),
      ),
    );
  }

  /**
   * {@linkcode Device.openSealedAsync} on this thread: for a few small blocks, which cost less
   * to open than a round trip to another thread.
   */
  openSealed(src: Device, desc: Uint8Array, n: number, mode: 0 | 1, keyLen: number): number {
    this.#check();
    src.#check();
    if (!this.canOpenSealed(src)) throw new TypeError("no native library with libcrypto");
    return this.#opened(
      src,
      Number(this.#lib!.symbols.zs_open_blocks(src.#fd, this.#fd, desc, n, mode, keyLen)),
    );
  }

  #opened(src: Device, r: number): number {
    if (r === 0) return -1;
    if (r > 0) return r - 1;
    if (r === -5) throw new RangeError(`'${src.path}' ends before a sealed block's end`);
    throw osError(this.#lib!, -r, `open sealed blocks from '${src.path}' into '${this.path}'`);
  }

  #copied(src: Device, srcOffset: number, length: number, r: number): void {
    if (r === length) return;
    if (r === -5) throw new RangeError(`'${src.path}' ends before byte ${srcOffset + length}`);
    throw osError(this.#lib!, -r, `copy from '${src.path}' to '${this.path}'`);
  }

  #copyThroughMemory(src: Device, srcOffset: number, length: number, offset: number): void {
    const buf = alignedBytes(Math.min(length, 1 << 20));
    for (let done = 0; done < length;) {
      const n = Math.min(buf.length, length - done);
      const got = src.pread(buf.subarray(0, n), srcOffset + done);
      if (got !== n) throw new RangeError(`'${src.path}' ends before byte ${srcOffset + length}`);
      this.pwrite(buf.subarray(0, n), offset + done);
      done += n;
    }
  }

  /**
   * Sets the file's length (cut, or extended with zeros that take no room).
   *
   * @example
   * ```ts
   * import { Device } from "./device.ts";
   * const path = Deno.makeTempFileSync();
   * using dev = Device.open(path, { write: true });
   * dev.truncate(4096);
   * if (Deno.statSync(path).size !== 4096) throw new Error();
   * Deno.removeSync(path);
   * ```
   */
  truncate(length: number): void {
    this.#check();
    checkOffset(length);
    if (this.#lib !== null) {
      const r = this.#lib.symbols.zs_ftruncate(this.#fd, BigInt(length));
      if (r < 0) throw osError(this.#lib, -r, `truncate '${this.path}'`);
      return;
    }
    this.#file!.truncateSync(length);
  }

  /**
   * Flushes data and metadata to stable storage.
   *
   * @example
   * ```ts
   * import { Device } from "./device.ts";
   * const path = Deno.makeTempFileSync();
   * using dev = Device.open(path, { write: true });
   * dev.pwrite(new Uint8Array([1]), 0);
   * dev.fsync();
   * if (Deno.readFileSync(path)[0] !== 1) throw new Error();
   * Deno.removeSync(path);
   * ```
   */
  fsync(): void {
    this.#check();
    if (this.#lib !== null) {
      const r = this.#lib.symbols.zs_fsync(this.#fd);
      if (r < 0) throw osError(this.#lib, -r, `fsync '${this.path}'`);
      return;
    }
    this.#file!.syncSync();
  }

  /**
   * Closes it; later calls do nothing, other methods then throw `BadResource`.
   *
   * @example
   * ```ts
   * import { Device } from "./device.ts";
   * const path = Deno.makeTempFileSync();
   * const dev = Device.open(path);
   * dev.close();
   * dev.close();
   * let threw = false;
   * try {
   *   dev.size();
   * } catch (e) {
   *   threw = e instanceof Deno.errors.BadResource;
   * }
   * if (!threw) throw new Error();
   * Deno.removeSync(path);
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#lib !== null) {
      const r = this.#lib.symbols.zs_close(this.#fd);
      if (r < 0) throw osError(this.#lib, -r, `close '${this.path}'`);
      return;
    }
    this.#file!.close();
  }

  /** Closes it (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}
