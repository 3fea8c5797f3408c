/**
 * Writes a filesystem snapshot out as a directory tree, safely: every path is made from
 * validated names below the target, files are created new (never through an existing link),
 * holes stay holes, and what the machine cannot apply is reported, not guessed.
 *
 * @module
 */

import type { Inode, WalkEntry, ZplFilesystem } from "../core/zpl/fs.ts";
import type { Timespec } from "../core/zpl/znode.ts";
import { deviceNumbers } from "../core/zpl/fs.ts";
import { Device, SEALED_DESC_BYTES, sealedDescriptor } from "./native/device.ts";
import type { FilePiece, PlacedPiece, SealedPiece } from "../core/zpl/fs.ts";
import { setXattr } from "./xattr.ts";
import type { AeadEngine } from "../core/crypto/aead.ts";
import { nativeAead } from "./native/aead_native.ts";
import { setTimes } from "./native/file_times.ts";
import {
  type BatchFailure,
  type BatchFile,
  type BatchRun,
  FileBatches,
} from "./native/file_batch.ts";

/** What an extraction did and could not do. */
export interface ExtractReport {
  /** Regular files written. */
  files: number;
  /** Directories made. */
  directories: number;
  /** Symbolic links made. */
  symlinks: number;
  /** Hard links made (names beyond a file's first). */
  hardlinks: number;
  /** Fifos and device nodes made. */
  special: number;
  /** Bytes of file data written. */
  bytes: number;
  /**
   * Faults met (bad entries, unreadable files), one line each naming its path. A path whose
   * entry failed was left out: a file whose data could not be produced whole is removed, not
   * left short.
   */
  errors: string[];
  /** Paths left out or removed because they could not be written whole. */
  failed: number;
  /** Things not applied (owners when not root, xattrs, ACLs, sockets). */
  notes: string[];
}

/** Options of {@linkcode extractTree}. */
export interface ExtractOptions {
  /** Apply owners (default: when running as root). */
  owners?: boolean;
  /** Called after each path, with the report so far (bytes and files written). */
  onPath?: (path: string, report: Readonly<ExtractReport>) => void;
}

const isRoot = (() => {
  try {
    return Deno.uid() === 0;
  } catch {
    return false;
  }
})();

/**
 * node:fs, for a symlink's own owner and times (Deno has neither lchown nor lutimes): loaded
 * when the first symlink is met, as loading it costs about 20 ms of start-up.
 */
let nodeFs: Promise<typeof import("node:fs")> | null = null;
const linkCalls = () => nodeFs ??= import("node:fs");

function seconds(t: Timespec): number {
  return t.sec + t.nsec / 1e9;
}

/** Checks that DIR can take a tree: missing (then made) or an empty directory. */
export async function prepareTarget(dir: string): Promise<void> {
  // An empty name joined with the tree's paths would put them under `/`.
  if (dir === "") throw new TypeError("the target directory's name is empty");
  try {
    const st = await Deno.lstat(dir);
    if (!st.isDirectory) throw new TypeError(`${dir} exists and is not a directory`);
    for await (const _ of Deno.readDir(dir)) {
      throw new TypeError(`${dir} is not empty: extract into a new or empty directory`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    await Deno.mkdir(dir, { recursive: true });
  }
}

/** Runs of file data at least this long are copied on a thread of their own. */
const BACKGROUND_COPY = 1 << 20;
/**
 * Sealed blocks opened in one native call (one file's run, one pack): 256 MiB of 128 KiB blocks.
 * Large, so that a file's blocks go in a call or a few, as its plain runs go in one copy: the
 * walk can run on for a long while without giving the event loop a turn to start the next call.
 * The call maps a few MiB of the pack at a time.
 */
const SEALED_BATCH = 2048;
/**
 * Native calls opening sealed blocks at once, at most, over the whole extraction (one a CPU, two
 * to four): each holds a thread and a window of a pack mapped, whatever the count of files.
 */
const SEALED_IN_FLIGHT = Math.min(4, Math.max(2, navigator.hardwareConcurrency));
/** Runs of file data being copied at once (each copy on a thread of its own), at most. */
const FILES_IN_FLIGHT = 2;
/**
 * Small files (data under {@linkcode BACKGROUND_COPY}, no extended attributes, one name) go to
 * the native library this many at a time, made whole on a thread of the runtime's while the
 * walk goes on: creating a file is most of what a small file costs, and it waits on the
 * directory's lock in the kernel, not on this thread.
 */
const BATCH_FILES = 128;
/** The first batch's files: small, so that the kernel starts making files early. */
const FIRST_BATCH_FILES = 16;
/** Bytes of small files' data in memory (decompressed blocks) a batch holds, at most. */
const BATCH_DATA = 8 << 20;
/** Batches sent and not yet written, at most. */
const BATCHES_IN_FLIGHT = 4;
/**
 * Files whose sealed blocks are still queued or being opened, at most: each holds its open file
 * and its blocks' descriptors (96 bytes a block) while the walk goes on.
 */
const QUEUED_IN_FLIGHT = 16;

/**
 * Runs the tasks given at most `limit` at a time, in the order given: a slot passes straight
 * from a task that ends to the oldest waiting one.
 */
function slots(limit: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  const release = () => {
    const next = waiting.shift();
    if (next !== undefined) next();
    else running--;
  };
  return <T>(task: () => Promise<T>): Promise<T> => {
    const slot = running < limit
      ? (running++, Promise.resolve())
      : new Promise<void>((r) => waiting.push(r));
    return slot.then(task).finally(release);
  };
}

/** What one extraction keeps while it writes. */
interface Extraction {
  fs: ZplFilesystem;
  report: ExtractReport;
  owners: boolean;
  note: (s: string) => void;
  /** Objects written, by their first path (later names are hard links to it). */
  linked: Map<number, string>;
  /** Directories made, in walk order: their times and modes are set last. */
  dirs: { path: string; inode: Inode }[];
  /** Packs that file data is copied from, open for the whole extraction. */
  sources: Map<string, Device>;
  /** Opens a small file's sealed blocks synchronously (libcrypto), for batches; null: none. */
  aead: AeadEngine | null;
  /** Files whose data is being copied or opened; each ends its file when done. */
  inFlight: Promise<void>[];
  /** Where copies of large runs queue (by copy_file_range, on threads of their own). */
  copySlot: <T>(task: () => Promise<T>) => Promise<T>;
  /** Small files made in batches, when the native library is there. */
  batches: FileBatches | null;
  /** The batch being made: each file's entry, path, the bytes it counts and its index. */
  batch: { entry: WalkEntry; target: string; bytes: number; seq: number }[];
  batchBytes: number;
  /** Files the batch being made is sent at (growing to {@linkcode BATCH_FILES}). */
  batchFiles: number;
  /** Batches sent, until written (each settles once its failures are reported). */
  batchRuns: Promise<void>[];
  /** Paths of files in batches not yet written: a later entry at the same path waits. */
  pending: Set<string>;
  /** A fault that stops the extraction (met in a batch; thrown by the walk). */
  fatal: Error | null;
  /** The walk's index of the entry being written. */
  seq: number;
  /**
   * Faults met, with the index of the entry they are about: put in the report in the walk's
   * order at the end, as work on other threads ends in no set order.
   */
  faults: { seq: number; text: string }[];
  /**
   * Where the native calls opening sealed blocks queue, for all files: a file's batches are
   * queued at once and the walk goes on (small files, directories) while they are opened on
   * other threads, as a plain file's runs are copied.
   */
  sealedSlot: <T>(task: () => Promise<T>) => Promise<T>;
}

/**
 * Extracts the whole tree of `fs` into `dir` (which must be new or empty).
 *
 * @returns counts, the faults met and what was not applied
 */
export async function extractTree(
  fs: ZplFilesystem,
  dir: string,
  options: ExtractOptions = {},
): Promise<ExtractReport> {
  await prepareTarget(dir);
  const report: ExtractReport = {
    files: 0,
    directories: 0,
    symlinks: 0,
    hardlinks: 0,
    special: 0,
    bytes: 0,
    errors: [],
    failed: 0,
    notes: [],
  };
  const x: Extraction = {
    fs,
    report,
    owners: options.owners ?? isRoot,
    note: (s: string) => {
      if (!report.notes.includes(s)) report.notes.push(s);
    },
    linked: new Map(),
    dirs: [],
    sources: new Map(),
    aead: nativeAead(),
    inFlight: [],
    copySlot: slots(FILES_IN_FLIGHT),
    batches: FileBatches.open(dir),
    batch: [],
    batchBytes: 0,
    batchFiles: FIRST_BATCH_FILES,
    batchRuns: [],
    pending: new Set(),
    fatal: null,
    seq: 0,
    faults: [],
    sealedSlot: slots(SEALED_IN_FLIGHT),
  };
  if (!x.owners) x.note("owners and groups not applied (not running as root)");
  try {
    await writeTree(x, dir, options);
  } finally {
    await drain(x);
    await Promise.all(x.inFlight);
    for (const d of x.sources.values()) d.close();
    await x.batches?.close();
  }
  if (x.fatal !== null) throw x.fatal;
  for (const f of x.faults.sort((a, b) => a.seq - b.seq)) report.errors.push(f.text);
  // Directories last, deepest first: their times and modes after their contents are in.
  for (let i = x.dirs.length - 1; i >= 0; i--) {
    const { path, inode } = x.dirs[i]!;
    try {
      if (x.owners) Deno.chownSync(path, inode.uid, inode.gid);
      Deno.chmodSync(path, inode.perm);
      setTimesOf(path, inode);
    } catch (e) {
      report.errors.push(`${path}: ${(e as Error).message}`);
    }
  }
  return report;
}

/** Writes every entry of the walk (directories' own times and modes come after). */
async function writeTree(x: Extraction, dir: string, options: ExtractOptions): Promise<void> {
  // A fault of the walk's is met on the way to the next entry: after this one's own.
  const walk = x.fs.walk({
    onError: (e, path) => fault(x, `${path}: ${e.message}`, x.seq + 0.5),
  });
  // The walk yields a directory's contents right after it. When a directory could not be made
  // (its path already taken: names that are not UTF-8 all decode to U+FFFD, so a symlink can
  // hold the path of a directory of another name), nothing below it is written: it would go
  // through whatever holds that path, possibly a symlink out of DIR.
  let skipDeeperThan = Infinity;
  let seq = 0;
  for await (const entry of walk) {
    x.seq = seq++;
    if (x.fatal !== null) throw x.fatal;
    if (entry.depth > skipDeeperThan) continue;
    skipDeeperThan = Infinity;
    const target = entry.path === "." ? dir : `${dir}/${entry.path.slice(2)}`;
    const made = x.dirs.length;
    try {
      await writeEntry(x, entry, target);
      options.onPath?.(entry.path, x.report);
    } catch (e) {
      if (e instanceof Deno.errors.PermissionDenied && !isRoot) throw e;
      // writeEntry lists a directory in `dirs` once it has made it.
      const notMade = entry.inode.kind === "dir" && x.dirs.length === made;
      if (notMade) skipDeeperThan = entry.depth;
      x.report.failed++;
      fault(
        x,
        `${entry.path}: ${(e as Error).message}` + (notMade ? " (its contents left out)" : ""),
      );
    }
  }
}

/** Records a fault about the entry `seq` of the walk (by default the one being written). */
function fault(x: Extraction, text: string, seq = x.seq): void {
  x.faults.push({ seq, text });
}

async function writeEntry(x: Extraction, entry: WalkEntry, target: string): Promise<void> {
  const { fs, report, note, owners } = x;
  const inode = entry.inode;
  const seq = x.seq;
  // A path a batch has yet to make (names that are not UTF-8 can decode alike): the batch
  // first, so that the first entry in the walk's order holds it, as when nothing is batched.
  if (x.pending.has(target)) await drain(x);
  if (inode.kind === "dir") {
    if (entry.path !== ".") Deno.mkdirSync(target);
    x.dirs.push({ path: target, inode });
    report.directories++;
    await applyXattrs(fs, inode, target, entry.path, note);
    return;
  }
  // A second name of an object already written is a hard link to it. Only a path this
  // extraction made is remembered as the first name: never one it failed to make (something
  // else holds it).
  if (inode.links > 1) {
    const first = x.linked.get(inode.object);
    if (first !== undefined) {
      Deno.linkSync(first, target);
      report.hardlinks++;
      return;
    }
  }
  const made = () => {
    if (inode.links > 1) x.linked.set(inode.object, target);
  };
  switch (inode.kind) {
    case "file": {
      const copying = await writeFile(x, entry, target);
      made();
      report.files++;
      if (copying === "batched") return;
      if (copying !== null) {
        // Its attributes once its data is in (a write after utime would change mtime).
        const done = copying.done.then(() => finishEntry(x, entry, target)).catch((e) => {
          report.failed++;
          fault(x, `${entry.path}: ${(e as Error).message}`, seq);
        });
        x.inFlight.push(done);
        done.finally(() => x.inFlight.splice(x.inFlight.indexOf(done), 1));
        // The walk goes on while the copies queue; each queued file holds its file open.
        while (x.inFlight.length > QUEUED_IN_FLIGHT) await Promise.race(x.inFlight);
        return;
      }
      break;
    }
    case "symlink": {
      Deno.symlinkSync(await fs.readlink(inode.object), target);
      made();
      const { lchownSync, lutimesSync } = await linkCalls();
      if (owners) lchownSync(target, inode.uid, inode.gid);
      if (!setTimes(target, inode.atime, inode.mtime, true)) {
        lutimesSync(target, seconds(inode.atime), seconds(inode.mtime));
      }
      report.symlinks++;
      return;
    }
    case "fifo":
    case "chardev":
    case "blockdev": {
      if (inode.kind !== "fifo" && !isRoot) {
        note("device nodes not made (not running as root)");
        return;
      }
      const [major, minor] = deviceNumbers(inode);
      const args = inode.kind === "fifo"
        ? [target, "p"]
        : [target, inode.kind === "chardev" ? "c" : "b", String(major), String(minor)];
      const out = await new Deno.Command("mknod", { args, stderr: "piped" }).output();
      if (!out.success) throw new Error(new TextDecoder().decode(out.stderr).trim());
      made();
      report.special++;
      break;
    }
    case "socket":
      note(`sockets not made (${entry.path})`);
      return;
  }
  await finishEntry(x, entry, target);
}

/** An entry's extended attributes, owner, mode and times, once its contents are in. */
async function finishEntry(x: Extraction, entry: WalkEntry, target: string): Promise<void> {
  const inode = entry.inode;
  // Attributes before the mode: a read-only mode would refuse them.
  await applyXattrs(x.fs, inode, target, entry.path, x.note);
  if (x.owners) Deno.chownSync(target, inode.uid, inode.gid);
  Deno.chmodSync(target, inode.perm);
  setTimesOf(target, inode);
}

/** An entry's times, to the nanosecond where the native library is there. */
function setTimesOf(path: string, inode: Inode): void {
  if (!setTimes(path, inode.atime, inode.mtime, false)) {
    Deno.utimeSync(path, seconds(inode.atime), seconds(inode.mtime)); // milliseconds only
  }
}

/**
 * Writes a regular file's data. Large runs of blocks stored as they are go on threads of
 * their own: the promise returned then settles when the file is complete (and closed).
 *
 * @returns null when the file is complete, "batched" when it went to a batch (made whole
 * there, its attributes too), else its background work (in an object: an async function would
 * wait for a promise it returns)
 */
async function writeFile(
  x: Extraction,
  entry: WalkEntry,
  target: string,
): Promise<{ done: Promise<void> } | "batched" | null> {
  const inode = entry.inode;
  const seq = x.seq;
  const pieces = x.fs.filePieces(inode.object, inode);
  // A small file's pieces are gathered first: then it goes to a batch whole.
  const head: Piece[] = [];
  if (
    batchable(x, inode) && await gather(x, pieces, head) &&
    await queueFile(x, entry, target, head)
  ) {
    return "batched";
  }
  // createNew: an existing name (a link planted there) is an error, never followed.
  const file = Device.open(target, { write: true, createNew: true, mode: 0o600 });
  const copies: Promise<void>[] = [];
  // Once a copy fails or the file's data cannot be had, the file is removed: its batches still
  // queued are not opened.
  let failed = false;
  const track = (p: Promise<void>) => {
    const tracked = p.catch((e) => {
      failed = true;
      throw e;
    });
    tracked.catch(() => {}); // seen through `copies`, when the file is done
    copies.push(tracked);
  };
  let end = 0; // where the last bytes written end: the file's length so far
  let written = 0; // bytes counted in the report for this file
  let counted = false; // whether the caller has counted the file (background copies only)
  // A file whose data cannot be produced whole is removed: an empty or short file with the
  // placeholder mode would pass for a real one. The name is ours (created new above).
  const discard = async () => {
    failed = true;
    await Promise.allSettled(copies);
    try {
      file.close();
    } finally {
      x.report.bytes -= written;
      x.report.files -= counted ? 1 : 0;
      try {
        Deno.removeSync(target);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) {
          fault(x, `${target}: not removed after its data failed: ${e}`, seq);
        }
      }
    }
  };
  // Blocks stored as they are go from the pack in the kernel, as cp copies a file; the blocks
  // of a file mostly lie one after another in a pack, so runs of them go in one copy.
  let run: { path: string; from: number; length: number; to: number } | null = null;
  const copyRun = () => {
    if (run === null) return;
    let src = x.sources.get(run.path);
    if (src === undefined) x.sources.set(run.path, src = Device.open(run.path));
    if (run.length >= BACKGROUND_COPY) {
      const { from, length, to } = run;
      track(x.copySlot(() => file.copyRangeAsync(src, from, length, to)));
    } else file.copyRange(src, run.from, run.length, run.to);
    x.report.bytes += run.length;
    written += run.length;
    end = run.to + run.length;
    run = null;
  };
  // Sealed blocks (an encrypted snapshot opened with its key) are read, decrypted,
  // authenticated and written a batch per native call, queued for other threads (opened here
  // when the file is small); a block that is all zeros once opened is not written (a hole), so
  // the file's length is set at the end.
  // A batch is laid out as its blocks come (their descriptors, 96 bytes each, and names for
  // messages): the pieces themselves are not kept while a large file's blocks queue.
  interface Batch {
    path: string;
    mode: "gcm" | "ccm";
    keyLength: number;
    desc: Uint8Array;
    wheres: string[];
    bytes: number;
  }
  let batch: Batch | null = null;
  let sealedUsed = false;
  const openBatch = () => {
    if (batch === null) return;
    const { path, mode, keyLength, wheres, bytes } = batch;
    const n = wheres.length;
    const desc = batch.desc.subarray(0, n * SEALED_DESC_BYTES);
    batch = null;
    let src = x.sources.get(path);
    if (src === undefined) x.sources.set(path, src = Device.open(path));
    if (!file.canOpenSealed(src)) throw new TypeError("no native library to open sealed blocks");
    const m = mode === "gcm" ? 0 : 1;
    const check = (bad: number) => {
      if (bad >= 0) {
        throw new TypeError(
          `${wheres[bad]} fails its MAC: it is damaged (AES-${mode.toUpperCase()} tag mismatch)`,
        );
      }
    };
    sealedUsed = true;
    if (copies.length === 0 && bytes < BACKGROUND_COPY) {
      // A small file's blocks: opened here, as small runs of plain blocks are copied here; a
      // round trip to another thread would cost more.
      check(file.openSealed(src, desc, n, m, keyLength));
      return;
    }
    // The walk goes on; the file is done when its batches are. A block that fails its tag is
    // never written (zs_open_blocks stops before it), and the file is then removed.
    track(x.sealedSlot(async () => {
      if (!failed) check(await file.openSealedAsync(src, desc, n, m, keyLength));
    }));
  };
  const addSealed = (piece: SealedPiece) => {
    const s = piece.sealed;
    if (
      batch !== null &&
      (batch.path !== s.path || batch.mode !== s.mode || batch.keyLength !== s.key.length ||
        batch.wheres.length >= SEALED_BATCH)
    ) {
      openBatch();
    }
    if (batch === null) {
      batch = {
        path: s.path,
        mode: s.mode,
        keyLength: s.key.length,
        desc: new Uint8Array(8 * SEALED_DESC_BYTES),
        wheres: [],
        bytes: 0,
      };
    }
    const i = batch.wheres.length;
    if ((i + 1) * SEALED_DESC_BYTES > batch.desc.length) {
      const grown = new Uint8Array(Math.min(2 * i, SEALED_BATCH) * SEALED_DESC_BYTES);
      grown.set(batch.desc);
      batch.desc = grown;
    }
    sealedDescriptor(batch.desc, i, {
      srcOffset: s.offset,
      offset: piece.offset,
      length: s.length,
      keep: s.keep,
      key: s.key,
      iv: s.iv,
      mac: s.mac,
    });
    batch.wheres.push(s.where);
    batch.bytes += s.length;
    x.report.bytes += s.keep;
    written += s.keep;
    end = piece.offset + s.keep;
  };
  const finish = () => {
    try {
      if (end !== inode.size || sealedUsed) file.truncate(inode.size); // a hole to the end
    } finally {
      file.close();
    }
  };
  try {
    // Synchronous writes: nothing else runs meanwhile, and each async call costs a round trip.
    const take = (piece: Piece) => {
      if ("sealed" in piece) {
        copyRun();
        addSealed(piece);
        return;
      }
      openBatch();
      if ("place" in piece) {
        const { path, offset, length } = piece.place;
        if (
          run !== null && run.path === path && run.from + run.length === offset &&
          run.to + run.length === piece.offset
        ) {
          run.length += length;
          return;
        }
        copyRun();
        run = { path, from: offset, length, to: piece.offset };
        return;
      }
      copyRun();
      if (isZero(piece.data)) return; // holes stay holes
      file.pwrite(piece.data, piece.offset);
      x.report.bytes += piece.data.length;
      written += piece.data.length;
      end = piece.offset + piece.data.length;
    };
    for (const piece of head) take(piece);
    for await (const piece of pieces) take(piece);
    copyRun();
    openBatch();
  } catch (e) {
    await discard();
    throw e;
  }
  if (copies.length === 0) {
    try {
      finish();
    } catch (e) {
      await discard();
      throw e;
    }
    return null;
  }
  // The caller counts the file before its copies end; a failure takes it back.
  counted = true;
  // The first failure in the file's order (not in time): the same message from run to run.
  const all = Promise.allSettled(copies).then((r) => {
    for (const c of r) if (c.status === "rejected") throw c.reason;
  });
  const done = all.then(finish).catch(async (e) => {
    await discard();
    throw e;
  });
  return { done };
}

type Piece = FilePiece | PlacedPiece | SealedPiece;

/** Whether a file may go to a batch: the native library is there, one name, no xattrs. */
function batchable(x: Extraction, inode: Inode): boolean {
  return x.batches !== null && inode.links <= 1 && inode.xattrDir === 0 &&
    inode.saXattrs.size === 0;
}

/**
 * Takes pieces into `head` while the file is small. A sealed block of a small file is opened
 * here, into memory (with libcrypto, synchronously, as the one call a small file's blocks took
 * before), so that the file goes to a batch like a plain one: its making (the file system's
 * part, most of a small file's cost) then runs beside the walk. A block that fails its tag
 * throws, and nothing of the file is made.
 *
 * @returns whether `head` holds the whole file (else the rest is still in `pieces`)
 */
async function gather(
  x: Extraction,
  pieces: AsyncGenerator<Piece>,
  head: Piece[],
): Promise<boolean> {
  let bytes = 0;
  for (;;) {
    // next(), not for-await: leaving that loop would end the generator.
    const r = await pieces.next();
    if (r.done) return true;
    let piece = r.value;
    if ("sealed" in piece) {
      const s = piece.sealed;
      if (x.aead === null || bytes + s.length >= BACKGROUND_COPY) {
        head.push(piece);
        return false;
      }
      piece = { offset: piece.offset, data: openSealed(x, x.aead, s) };
    }
    head.push(piece);
    bytes += "place" in piece ? piece.place.length : piece.data.length;
    if (bytes >= BACKGROUND_COPY) return false;
  }
}

/** A sealed block's bytes to write (`keep` of them), read from its pack and opened. */
function openSealed(x: Extraction, aead: AeadEngine, s: SealedPiece["sealed"]): Uint8Array {
  let src = x.sources.get(s.path);
  if (src === undefined) x.sources.set(s.path, src = Device.open(s.path));
  const cipher = new Uint8Array(s.length);
  if (src.pread(cipher, s.offset) !== s.length) {
    throw new TypeError(`${s.where} is cut short in ${s.path}`);
  }
  const plain = aead.open(s.mode, s.key, s.iv, cipher, s.mac, NO_AAD);
  if (plain === null) {
    throw new TypeError(
      `${s.where} fails its MAC: it is damaged (AES-${s.mode.toUpperCase()} tag mismatch)`,
    );
  }
  return plain.subarray(0, s.keep);
}

const NO_AAD = new Uint8Array(0);

/** A time for a batch: seconds and nanoseconds in 0..999999999, as `utimensat` takes it. */
function batchTime(t: Timespec): [number, number] {
  const carry = Math.floor(t.nsec / 1e9);
  return [t.sec + carry, t.nsec - carry * 1e9];
}

/**
 * Puts a small file, whole in `pieces`, in the batch being made (sent once full).
 *
 * @returns false when it cannot go (a pack Deno's permissions do not cover)
 */
async function queueFile(
  x: Extraction,
  entry: WalkEntry,
  target: string,
  pieces: Piece[],
): Promise<boolean> {
  const inode = entry.inode;
  const runs: BatchRun[] = [];
  let end = 0, bytes = 0, data = 0;
  let last: { source: string; from: number; length: number; to: number } | null = null;
  for (const piece of pieces) {
    if ("sealed" in piece) return false;
    if ("place" in piece) {
      const { path, offset, length } = piece.place;
      if (!x.batches!.canRead(path)) return false;
      // Blocks one after another in a pack go in one copy.
      if (
        last !== null && last.source === path && last.from + last.length === offset &&
        last.to + last.length === piece.offset
      ) {
        last.length += length;
      } else runs.push(last = { source: path, from: offset, length, to: piece.offset });
      bytes += length;
      end = piece.offset + length;
      continue;
    }
    if (isZero(piece.data)) continue; // holes stay holes
    runs.push({ data: piece.data, to: piece.offset });
    last = null;
    bytes += piece.data.length;
    data += piece.data.length;
    end = piece.offset + piece.data.length;
  }
  const file: BatchFile = {
    path: target,
    size: inode.size,
    truncate: end !== inode.size,
    perm: inode.perm,
    uid: inode.uid,
    gid: inode.gid,
    chown: x.owners,
    atime: batchTime(inode.atime),
    mtime: batchTime(inode.mtime),
    runs,
  };
  x.batches!.add(file);
  x.batch.push({ entry, target, bytes, seq: x.seq });
  x.batchBytes += data;
  x.pending.add(target);
  x.report.bytes += bytes;
  if (x.batch.length >= x.batchFiles || x.batchBytes >= BATCH_DATA) await sendBatch(x);
  return true;
}

/**
 * Sends the batch being made; its failures go in the report once it is written. Waits while
 * too many batches are out.
 */
async function sendBatch(x: Extraction): Promise<void> {
  const entries = x.batch;
  x.batch = [];
  x.batchBytes = 0;
  x.batchFiles = Math.min(BATCH_FILES, 2 * x.batchFiles);
  if (entries.length === 0) return;
  let run: Promise<BatchFailure[]>;
  try {
    run = x.batches!.flush();
  } catch (e) {
    // A pack that does not open: no file of the batch was made.
    run = Promise.resolve(
      entries.map((_, index) => ({ index, error: e as Error, notRemoved: null })),
    );
  }
  const done: Promise<void> = run.then((failures) => {
    const { report } = x;
    for (const f of failures) {
      const { entry, target, bytes, seq } = entries[f.index]!;
      report.files--;
      report.bytes -= bytes;
      report.failed++;
      fault(x, `${entry.path}: ${f.error.message}`, seq);
      if (f.notRemoved !== null) {
        fault(x, `${target}: not removed after its data failed: ${f.notRemoved}`, seq);
      }
      // As when a file is made here: not being allowed to write stops the extraction.
      if (f.error instanceof Deno.errors.PermissionDenied && !isRoot) x.fatal ??= f.error;
    }
  }, (e) => {
    x.fatal ??= e as Error; // the native call itself failed: which files are whole is unknown
  }).finally(() => {
    for (const { target } of entries) x.pending.delete(target);
    x.batchRuns.splice(x.batchRuns.indexOf(done), 1);
  });
  x.batchRuns.push(done);
  while (x.batchRuns.length > BATCHES_IN_FLIGHT) await x.batchRuns[0];
}

/** Sends the batch being made and waits for every batch sent. */
async function drain(x: Extraction): Promise<void> {
  if (x.batches === null) return;
  await sendBatch(x);
  await Promise.all([...x.batchRuns]);
}

function isZero(b: Uint8Array): boolean {
  const words = b.byteOffset % 4 === 0 && b.length % 4 === 0
    ? new Uint32Array(b.buffer, b.byteOffset, b.length / 4)
    : b;
  for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
  return true;
}

/** Sets a file's extended attributes where the target takes them; notes the rest. */
async function applyXattrs(
  fs: ZplFilesystem,
  inode: Inode,
  target: string,
  path: string,
  note: (s: string) => void,
): Promise<void> {
  if (inode.xattrDir === 0 && inode.saXattrs.size === 0) return;
  const failed: string[] = [];
  for (const x of await fs.xattrs(inode.object)) {
    const why = setXattr(target, x.name, x.value);
    if (why !== null) {
      failed.push(`${x.name} (${why === "unavailable" ? "no native library" : why})`);
    }
  }
  if (failed.length > 0) note(`extended attributes not applied: ${path}: ${failed.join(", ")}`);
}
