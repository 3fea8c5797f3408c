/**
 * A ZPL filesystem read from a {@linkcode SnapshotView}: the tree of a filesystem snapshot,
 * with each file's attributes, directory entries, symlink targets, contents and extended
 * attributes (OpenZFS `include/sys/zfs_znode.h`, `zfs_sa.h`, `module/zfs/zfs_sa.c`).
 *
 * - The master node (object 1, a ZAP) gives `VERSION`, `ROOT`, `SA_ATTRS` (ZPL 5 and later),
 *   `DELETE_QUEUE` and the naming properties.
 * - A file's attributes are a `znode_phys_t` (bonus type 17) or system attributes (bonus type
 *   44, with a spill block when they overflow); see `znode.ts` and `sa.ts`.
 * - A directory is a ZAP: name -> one u64 whose low 48 bits are the object and whose top 4
 *   bits are the file type (`mode >> 12`).
 * - Extended attributes are a hidden directory of files (`xattr`) and, with `xattr=sa`, a
 *   packed nvlist of name -> byte array (`ZPL_DXATTR`).
 *
 * Everything read is treated as hostile: numbers are range-checked, directory names are
 * checked (no `/`, no NUL, not `.`, `..` or empty), a directory reached twice is an error, and
 * depth is limited. Faults are {@linkcode ZplError}s (or {@linkcode ZapError}s from ZAPs), all
 * `SyntaxError`s naming the object; `walk` and `readdir` can report faults per entry and go on.
 *
 * @module
 */

import { DATA_TYPE, decodeNvlist } from "../stream/nvlist.ts";
import type { SnapshotView } from "../receive/snapshot_view.ts";
import { readSaAttrs, readSaTable, type SaTable, saZplAttrs } from "./sa.ts";
import { readZap, type ZapEntry, zapMap } from "./zap.ts";
import { BONUS_TYPE, parseZnode, S_IF, type Timespec, type ZplAttrs, ZplError } from "./znode.ts";

/** The master node's object number (`MASTER_NODE_OBJ`). */
export const MASTER_NODE_OBJ = 1;

/** DMU object types of ZPL objects (`dmu_object_type_t`). */
export const DMU_OT = {
  PLAIN_FILE_CONTENTS: 19,
  DIRECTORY_CONTENTS: 20,
  MASTER_NODE: 21,
  UNLINKED_SET: 22,
  SA: 44,
  SA_MASTER_NODE: 45,
  SA_ATTR_REGISTRATION: 46,
  SA_ATTR_LAYOUTS: 47,
} as const;

/** The kinds of file, from the mode's type bits. */
export type InodeKind = "file" | "dir" | "symlink" | "fifo" | "socket" | "chardev" | "blockdev";

const KIND_OF_TYPE: Record<number, InodeKind> = {
  [S_IF.REG >> 12]: "file",
  [S_IF.DIR >> 12]: "dir",
  [S_IF.LNK >> 12]: "symlink",
  [S_IF.FIFO >> 12]: "fifo",
  [S_IF.SOCK >> 12]: "socket",
  [S_IF.CHR >> 12]: "chardev",
  [S_IF.BLK >> 12]: "blockdev",
};

/**
 * The kind of file a mode's type bits (`mode & 0o170000`, or a directory entry's 4-bit type)
 * name, or null for none.
 *
 * @param type the type bits shifted down by 12 (0..15)
 * @example
 * ```ts
 * import { kindOfType } from "./fs.ts";
 * if (kindOfType(0o04) !== "dir" || kindOfType(0o12) !== "symlink" || kindOfType(3) !== null) {
 *   throw new Error();
 * }
 * ```
 */
export function kindOfType(type: number): InodeKind | null {
  return KIND_OF_TYPE[type] ?? null;
}

/**
 * How a device number was encoded by the system that wrote it: `glibc` is Linux userland's
 * `dev_t` (what zfs-fuse stores), `linux-kernel` the kernel's `major << 20 | minor` (OpenZFS on
 * Linux), `illumos` the 64-bit `major << 32 | minor` (illumos and FreeBSD `zfs_expldev`).
 */
export type RdevEncoding = "glibc" | "linux-kernel" | "illumos";

/**
 * Splits a stored device number into major and minor.
 *
 * @param rdev the stored `rdev`
 * @param encoding how the writing system encoded it
 * @returns `[major, minor]`
 * @example
 * ```ts
 * import { splitRdev } from "./fs.ts";
 * const [maj, min] = splitRdev(0x103n, "glibc");
 * if (maj !== 1 || min !== 3) throw new Error();
 * const [kmaj, kmin] = splitRdev((8n << 20n) | 1n, "linux-kernel");
 * if (kmaj !== 8 || kmin !== 1) throw new Error();
 * ```
 */
export function splitRdev(rdev: bigint, encoding: RdevEncoding): [number, number] {
  switch (encoding) {
    case "glibc":
      return [
        Number(((rdev >> 8n) & 0xFFFn) | ((rdev >> 32n) & ~0xFFFn & 0xFFFFFFFFn)),
        Number((rdev & 0xFFn) | ((rdev >> 12n) & ~0xFFn & 0xFFFFFFFFn)),
      ];
    case "linux-kernel":
      return [Number((rdev >> 20n) & 0xFFFn), Number(rdev & 0xFFFFFn)];
    case "illumos":
      return [Number((rdev >> 32n) & 0xFFFFFFFFn), Number(rdev & 0xFFFFFFFFn)];
  }
}

/**
 * A device's major and minor numbers, decoded as the system that most likely wrote them
 * encoded them. Attributes in a `znode_phys_t` (ZPL 4 and older) are read as glibc's `dev_t`,
 * what zfs-fuse stores. System attributes (ZPL 5+) are written by OpenZFS: on Linux
 * `ZPL_RDEV` holds the kernel's 32-bit `dev_t` (`major << 20 | minor`, stored as it is); on
 * FreeBSD and illumos `zfs_expldev` makes `major << 32 | minor`, so a value of 2^32 or more
 * is read that way.
 *
 * @param inode the device's attributes (`rdev`, and whether they are system attributes)
 * @returns `[major, minor]`
 * @example
 * ```ts
 * import { deviceNumbers } from "./fs.ts";
 * const [maj, min] = deviceNumbers({ rdev: (1n << 20n) | 3n, sa: true });
 * if (maj !== 1 || min !== 3) throw new Error();
 * const [fmaj, fmin] = deviceNumbers({ rdev: 0x103n, sa: false });
 * if (fmaj !== 1 || fmin !== 3) throw new Error();
 * ```
 */
export function deviceNumbers(inode: Pick<Inode, "rdev" | "sa">): [number, number] {
  if (!inode.sa) return splitRdev(inode.rdev, "glibc");
  return splitRdev(inode.rdev, inode.rdev >= 1n << 32n ? "illumos" : "linux-kernel");
}

/** One file's attributes, uniform over ZPL versions. */
export interface Inode {
  /** Its object number. */
  object: number;
  /** The kind of file. */
  kind: InodeKind;
  /** The whole mode: type bits and permission bits. */
  mode: number;
  /** The permission bits, with setuid (0o4000), setgid (0o2000) and sticky (0o1000). */
  perm: number;
  /** Owner (a FUID index when it is above 2^31 and the filesystem maps SIDs). */
  uid: number;
  /** Group. */
  gid: number;
  /** Size in bytes (for symlinks, the target's length). */
  size: number;
  /** Hard link count. */
  links: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  /** Creation time. */
  crtime: Timespec;
  /** Device number of devices (as the writing system encoded it), 0 otherwise. */
  rdev: bigint;
  /** The hidden xattr directory's object, 0 when none. */
  xattrDir: number;
  /** The parent directory's object (the root's is itself). */
  parent: number;
  /** `ZFS_*` persistent flags. */
  flags: bigint;
  /** Generation (the txg that created it). */
  gen: bigint;
  /** Project id, when stored. */
  projid: bigint | null;
  /** Extended attributes stored as system attributes (`xattr=sa`), by name. */
  saXattrs: Map<string, Uint8Array>;
  /** Whether the attributes came from system attributes (else a `znode_phys_t`). */
  sa: boolean;
}

/** One entry of a directory. */
export interface DirEntry {
  /** The name, decoded as UTF-8. */
  name: string;
  /** The name's bytes exactly. */
  nameBytes: Uint8Array;
  /** The object it names. */
  object: number;
  /** The 4-bit file type the entry records (`mode >> 12`; 0 when unrecorded). */
  type: number;
}

/** A directory entry that cannot be used (bad name, bad value, duplicate). */
export class DirEntryError extends ZplError {
  /** The directory's object. */
  readonly dir: number;
  /** The entry's name as decoded. */
  readonly entryName: string;
  /** The entry's name bytes. */
  readonly nameBytes: Uint8Array;

  /**
   * @param dir the directory
   * @param entry the entry's name (bytes)
   * @param fault what is wrong
   * @example
   * ```ts
   * import { DirEntryError } from "./fs.ts";
   * const e = new DirEntryError(3, new TextEncoder().encode("a/b"), "the name holds '/'");
   * if (!(e instanceof SyntaxError) || e.dir !== 3 || e.entryName !== "a/b") throw new Error();
   * ```
   */
  constructor(dir: number, entry: Uint8Array, fault: string) {
    const name = new TextDecoder().decode(entry);
    super(dir, `directory entry ${JSON.stringify(name)}: ${fault}`);
    this.name = "DirEntryError";
    this.dir = dir;
    this.entryName = name;
    this.nameBytes = entry;
  }
}

/** A directory reached a second time in a walk (a loop, or a directory linked twice). */
export class DirCycleError extends ZplError {
  /** The path where it was reached again. */
  readonly path: string;

  /**
   * @param object the directory
   * @param path where it was reached again
   * @param first where it was reached first
   * @example
   * ```ts
   * import { DirCycleError } from "./fs.ts";
   * const e = new DirCycleError(4, "./a/b", "./a");
   * if (!(e instanceof SyntaxError) || e.path !== "./a/b" || !e.message.includes("./a")) {
   *   throw new Error();
   * }
   * ```
   */
  constructor(object: number, path: string, first: string) {
    super(object, `directory reached again at ${path} (first at ${first})`);
    this.name = "DirCycleError";
    this.path = path;
  }
}

/** One piece of a file's data. */
export interface FilePiece {
  /** Byte offset in the file. */
  offset: number;
  /** The bytes (a block, the last one cut at the file's size); a view: do not change it. */
  data: Uint8Array;
}

/** One extended attribute. */
export interface Xattr {
  /** Its name as stored (Linux keeps the namespace: `user.foo`). */
  name: string;
  /** Its value. */
  value: Uint8Array;
  /** Where it is stored: system attributes or the xattr directory. */
  source: "sa" | "dir";
}

/** One path of a walk. */
export interface WalkEntry {
  /** The path: `.` for the root, `./a/b` below it (names decoded as UTF-8). */
  path: string;
  /** The exact name bytes of each level below the start (empty for the root). */
  components: Uint8Array[];
  /** Depth: 0 for the root. */
  depth: number;
  /** The file's attributes. */
  inode: Inode;
  /** The directory entry that led here (null for the root). */
  entry: DirEntry | null;
}

/** Options of {@linkcode ZplFilesystem.walk}. */
export interface WalkOptions {
  /** The deepest directory level walked into (default 1024; the root is level 0). */
  maxDepth?: number;
  /** Where to start (default: the root). */
  start?: number;
  /**
   * Called for each fault (a bad entry, a cycle, an unreadable file) with the path where it
   * was met; the walk leaves that path out and goes on. Without it the walk throws.
   */
  onError?: (error: Error, path: string) => void;
}

/** Options of {@linkcode ZplFilesystem.readdir}. */
export interface ReaddirOptions {
  /** Called for each unusable entry, which is left out; without it readdir throws. */
  onError?: (error: DirEntryError) => void;
}

/**
 * A view that can list the blocks an object holds (optional; {@linkcode ZplFilesystem} then
 * skips holes without asking for each block of a sparse file).
 */
export interface BlockLister {
  /** The block ids of an object that hold data, in increasing order. */
  blockIds(id: number): AsyncIterable<number>;
}

function hasBlockIds(view: SnapshotView): view is SnapshotView & BlockLister {
  return typeof (view as Partial<BlockLister>).blockIds === "function";
}

/** Where a block's logical bytes lie as they are, in a file of the view's. */
export interface BlockPlace {
  path: string;
  offset: number;
  /** The block's size. */
  length: number;
}

/**
 * A view that can say where a block's bytes lie in a file (optional; a writer can then have
 * the kernel copy them rather than read them).
 */
export interface BlockPlacer {
  /**
   * The place of a block stored as its logical bytes (not compressed, not encrypted, in one
   * piece) that is known not to be all zeros; null otherwise (then read it).
   */
  blockPlace(id: number, blkid: number): BlockPlace | null;
}

/**
 * Where a sealed (encrypted) block's bytes lie in a file of the view's, with what opens them:
 * a writer can read, decrypt, authenticate and write it without the view's help.
 */
export interface SealedPlace extends BlockPlace {
  /** The AEAD of the block's dataset. */
  mode: "gcm" | "ccm";
  /** The block's own AES key. */
  key: Uint8Array;
  iv: Uint8Array;
  mac: Uint8Array;
  /** Where the block is, for messages (`the block at offset 0 of object 2`). */
  where: string;
}

/**
 * A view of an encrypted snapshot that can say where a data block lies sealed (optional).
 */
export interface SealedPlacer {
  /**
   * The place and key of a block that is its logical bytes once opened (encrypted, not
   * compressed, in one piece, `length` = the block size); null otherwise (then read it).
   */
  sealedPlace(id: number, blkid: number): Promise<SealedPlace | null>;
}

function hasSealedPlaces(view: SnapshotView): view is SnapshotView & SealedPlacer {
  return typeof (view as Partial<SealedPlacer>).sealedPlace === "function";
}

/** A piece of a file's data that lies sealed in a file: `sealed.length` bytes once opened. */
export interface SealedPiece {
  /** Byte offset in the file. */
  offset: number;
  /** Where the sealed bytes lie and their key; `keep`: the bytes to write (cut at the size). */
  sealed: SealedPlace & { keep: number };
}

/** A view that can list the byte ranges of an object that a redacted send left out. */
export interface RedactionLister {
  /** The object's redacted byte ranges, in increasing order (empty: none). */
  redactedRanges(id: number): { offset: number; length: number }[];
}

function hasRedactions(view: SnapshotView): view is SnapshotView & RedactionLister {
  return typeof (view as Partial<RedactionLister>).redactedRanges === "function";
}

/** Ranges as `a..b` text, adjacent ones merged, at most `max` of them named. */
function rangesText(ranges: { offset: number; length: number }[], max = 4): string {
  const merged: [number, number][] = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last !== undefined && last[1] === r.offset) last[1] = r.offset + r.length;
    else merged.push([r.offset, r.offset + r.length]);
  }
  const named = merged.slice(0, max).map(([a, b]) => `${a}..${b}`).join(", ");
  return merged.length > max ? `${named} and ${merged.length - max} more` : named;
}

function hasBlockPlaces(view: SnapshotView): view is SnapshotView & BlockPlacer {
  return typeof (view as Partial<BlockPlacer>).blockPlace === "function";
}

/**
 * A view that lists an object's blocks with their places, many per call (optional; else
 * {@linkcode BlockLister.blockIds} then {@linkcode BlockPlacer.blockPlace} for each block).
 */
export interface BlockMapper {
  /**
   * The block ids from `from` on that hold data, in increasing order, each with its place as
   * `blockPlace` gives it; none past the last. `next` is the block id to ask from next.
   */
  placedBlocks(
    id: number,
    from: number,
  ): { blocks: { blkid: number; place: BlockPlace | null }[]; next: number };
}

function hasPlacedBlocks(view: SnapshotView): view is SnapshotView & BlockMapper {
  return typeof (view as Partial<BlockMapper>).placedBlocks === "function";
}

/**
 * A piece of a file's data that lies as it is in a file: `length` bytes at `place` (a block,
 * or blocks that follow one another both in the file and where they lie).
 */
export interface PlacedPiece {
  /** Byte offset in the file. */
  offset: number;
  /** Where the bytes lie; `place.length` is cut at the file's size. */
  place: BlockPlace;
}

const MAX_OBJECT = 2 ** 48;
const DIRENT_OBJ_MASK = (1n << 48n) - 1n;

function safe(object: number, what: string, v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ZplError(object, `${what} ${v} is out of range`);
  }
  return Number(v);
}

function objectNumber(object: number, what: string, v: bigint): number {
  if (v >= BigInt(MAX_OBJECT)) throw new ZplError(object, `${what} ${v} is not an object number`);
  return Number(v);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * Checks a directory entry's name: not empty, not `.` or `..`, no `/` and no NUL.
 *
 * @returns the fault, or null when the name is good
 * @example
 * ```ts
 * import { nameFault } from "./fs.ts";
 * const enc = (s: string) => new TextEncoder().encode(s);
 * if (nameFault(enc("ok.txt")) !== null || nameFault(enc("..")) === null) throw new Error();
 * if (nameFault(enc("a/b")) === null || nameFault(new Uint8Array([0x61, 0])) === null) {
 *   throw new Error();
 * }
 * ```
 */
export function nameFault(name: Uint8Array): string | null {
  if (name.length === 0) return "the name is empty";
  if (name.length === 1 && name[0] === 0x2E) return "the name is '.'";
  if (name.length === 2 && name[0] === 0x2E && name[1] === 0x2E) return "the name is '..'";
  if (name.includes(0x2F)) return "the name holds '/'";
  if (name.includes(0)) return "the name holds a NUL byte";
  return null;
}

/**
 * A ZPL filesystem snapshot, read through a {@linkcode SnapshotView}.
 *
 * @example
 * ```ts
 * import { ZplFilesystem } from "./fs.ts";
 * import type { SnapshotView } from "../receive/snapshot_view.ts";
 * const volume: SnapshotView = {
 *   objsetType: 3,
 *   littleEndian: true,
 *   object: () => Promise.resolve(null),
 *   readBlock: () => Promise.resolve(null),
 *   objectIds: async function* () {},
 * };
 * let refused = false;
 * try {
 *   await ZplFilesystem.open(volume);
 * } catch (e) {
 *   refused = e instanceof TypeError;
 * }
 * if (!refused) throw new Error();
 * ```
 */
export class ZplFilesystem {
  /** The snapshot. */
  readonly view: SnapshotView;
  /** The ZPL version (`VERSION`). */
  readonly version: number;
  /** The root directory's object. */
  readonly rootObject: number;
  /** The master node's entries. */
  readonly master: Map<string, ZapEntry>;
  /** The SA registry and layouts, when the filesystem has them. */
  readonly saTable: SaTable | null;

  private constructor(
    view: SnapshotView,
    version: number,
    rootObject: number,
    master: Map<string, ZapEntry>,
    saTable: SaTable | null,
  ) {
    this.view = view;
    this.version = version;
    this.rootObject = rootObject;
    this.master = master;
    this.saTable = saTable;
  }

  /**
   * Opens the filesystem: reads the master node and, for ZPL 5 and later, the SA tables.
   *
   * @param view a snapshot of a filesystem (objset type 2)
   * @returns the filesystem
   * @throws {TypeError} when the snapshot is not a filesystem
   * @throws {ZplError} or {@linkcode ZapError} when the master node or SA tables are malformed
   */
  static async open(view: SnapshotView): Promise<ZplFilesystem> {
    if (view.objsetType !== 2) {
      throw new TypeError(
        `Cannot open a ZPL filesystem: the snapshot's objset type is ${view.objsetType}, not 2`,
      );
    }
    const info = await view.object(MASTER_NODE_OBJ);
    if (info === null) throw new ZplError(MASTER_NODE_OBJ, "the master node does not exist");
    if (info.type !== DMU_OT.MASTER_NODE) {
      throw new ZplError(MASTER_NODE_OBJ, `the master node has object type ${info.type}`);
    }
    const master = zapMap(await readZap(view, MASTER_NODE_OBJ));
    const int = (name: string): bigint | null => {
      const e = master.get(name);
      if (e === undefined) return null;
      if (e.intSize !== 8 || e.value.length !== 1 || e.value instanceof Uint8Array) {
        throw new ZplError(MASTER_NODE_OBJ, `master node entry ${name} is not one u64`);
      }
      return e.value[0]!;
    };
    const version = int("VERSION");
    if (version === null) throw new ZplError(MASTER_NODE_OBJ, "the master node has no VERSION");
    if (version < 1n || version > 64n) {
      throw new ZplError(MASTER_NODE_OBJ, `ZPL version ${version}`);
    }
    const root = int("ROOT");
    if (root === null) throw new ZplError(MASTER_NODE_OBJ, "the master node has no ROOT");
    const rootObject = objectNumber(MASTER_NODE_OBJ, "ROOT", root);
    const saAttrs = int("SA_ATTRS");
    const saTable = saAttrs === null
      ? null
      : await readSaTable(view, objectNumber(MASTER_NODE_OBJ, "SA_ATTRS", saAttrs));
    return new ZplFilesystem(view, Number(version), rootObject, master, saTable);
  }

  /** The root directory's object. */
  root(): number {
    return this.rootObject;
  }

  /**
   * The attributes of an object as stored, before any conversion (see {@linkcode stat}).
   *
   * @throws {ZplError} when the object is missing or its bonus is not ZPL attributes
   */
  async attrs(object: number): Promise<ZplAttrs & { sa: boolean }> {
    const info = await this.view.object(object);
    if (info === null) throw new ZplError(object, "the object does not exist");
    if (info.bonustype === BONUS_TYPE.ZNODE) {
      return { ...parseZnode(object, info.bonus, this.view.littleEndian), sa: false };
    }
    if (info.bonustype === BONUS_TYPE.SA) {
      if (this.saTable === null) {
        throw new ZplError(object, "system attributes in a filesystem without SA_ATTRS");
      }
      return {
        ...saZplAttrs(object, readSaAttrs(object, info.bonus, info.spill, this.saTable)),
        sa: true,
      };
    }
    throw new ZplError(object, `bonus type ${info.bonustype} holds no ZPL attributes`);
  }

  /**
   * A file's attributes.
   *
   * @param object the file's object
   * @returns its {@linkcode Inode}
   * @throws {ZplError} when the object is missing, its attributes malformed or out of range,
   * its mode names no file type, or its SA xattrs are not an nvlist of byte arrays
   */
  async stat(object: number): Promise<Inode> {
    const a = await this.attrs(object);
    if (a.mode > 0xFFFFn) throw new ZplError(object, `mode ${a.mode.toString(8)} is out of range`);
    const mode = Number(a.mode);
    const kind = kindOfType((mode & S_IF.MT) >> 12);
    if (kind === null) throw new ZplError(object, `mode ${mode.toString(8)} names no file type`);
    const saXattrs = new Map<string, Uint8Array>();
    if (a.dxattr !== null && a.dxattr.length > 0) {
      let pairs;
      try {
        pairs = decodeNvlist(a.dxattr, { maxDepth: 0 }).pairs;
      } catch (e) {
        throw new ZplError(object, `ZPL_DXATTR is not an nvlist: ${(e as Error).message}`);
      }
      for (const p of pairs) {
        if (p.type !== DATA_TYPE.BYTE_ARRAY && p.type !== DATA_TYPE.UINT8_ARRAY) {
          throw new ZplError(object, `SA xattr ${JSON.stringify(p.name)} is not a byte array`);
        }
        if (saXattrs.has(p.name)) {
          throw new ZplError(object, `SA xattr ${JSON.stringify(p.name)} appears twice`);
        }
        saXattrs.set(p.name, p.value);
      }
    }
    return {
      object,
      kind,
      mode,
      perm: mode & 0o7777,
      uid: safe(object, "uid", a.uid),
      gid: safe(object, "gid", a.gid),
      size: safe(object, "size", a.size),
      links: safe(object, "link count", a.links),
      atime: a.atime,
      mtime: a.mtime,
      ctime: a.ctime,
      crtime: a.crtime,
      rdev: a.rdev,
      xattrDir: objectNumber(object, "xattr directory", a.xattr),
      parent: objectNumber(object, "parent", a.parent),
      flags: a.flags,
      gen: a.gen,
      projid: a.projid,
      saXattrs,
      sa: a.sa,
    };
  }

  /**
   * A directory's entries, sorted by name bytes.
   *
   * @param object the directory
   * @param options where to report unusable entries (without it, the first one throws)
   * @returns the usable entries
   * @throws {ZplError} when the object is not a directory; {@linkcode ZapError} when its ZAP is
   * malformed; {@linkcode DirEntryError} for a bad entry when no `onError` is given
   */
  async readdir(object: number, options: ReaddirOptions = {}): Promise<DirEntry[]> {
    const st = await this.stat(object);
    if (st.kind !== "dir") throw new ZplError(object, `not a directory but a ${st.kind}`);
    const info = (await this.view.object(object))!;
    if (info.type !== DMU_OT.DIRECTORY_CONTENTS) {
      throw new ZplError(object, `a directory of object type ${info.type}`);
    }
    const zap = await readZap(this.view, object);
    const report = (e: DirEntryError) => {
      if (options.onError === undefined) throw e;
      options.onError(e);
    };
    const out: DirEntry[] = [];
    const seen = new Set<string>();
    for (const e of zap.entries) {
      const fault = nameFault(e.nameBytes);
      if (fault !== null) {
        report(new DirEntryError(object, e.nameBytes, fault));
        continue;
      }
      if (e.intSize !== 8 || e.value.length !== 1 || e.value instanceof Uint8Array) {
        report(new DirEntryError(object, e.nameBytes, "the value is not one u64"));
        continue;
      }
      const key = [...e.nameBytes].join(",");
      if (seen.has(key)) {
        report(new DirEntryError(object, e.nameBytes, "the name appears twice"));
        continue;
      }
      seen.add(key);
      const v = e.value[0]!;
      const target = Number(v & DIRENT_OBJ_MASK);
      if (target === 0) {
        report(new DirEntryError(object, e.nameBytes, "it names object 0"));
        continue;
      }
      out.push({ name: e.name, nameBytes: e.nameBytes, object: target, type: Number(v >> 60n) });
    }
    return out.sort((a, b) => compareBytes(a.nameBytes, b.nameBytes));
  }

  /**
   * A symbolic link's target, as bytes.
   *
   * @throws {ZplError} when the object is not a symlink, or its target is missing, of the
   * wrong length, or holds a NUL byte
   */
  async readlinkBytes(object: number): Promise<Uint8Array> {
    const a = await this.attrs(object);
    const st = await this.stat(object);
    if (st.kind !== "symlink") throw new ZplError(object, `not a symlink but a ${st.kind}`);
    let target: Uint8Array;
    if (a.symlink !== null) {
      target = a.symlink;
      if (a.sa && target.length !== st.size) {
        throw new ZplError(
          object,
          `the target has ${target.length} bytes, the size says ${st.size}`,
        );
      }
    } else {
      // A target that is not stored with the attributes (inline after a znode_phys_t) is in
      // data block 0, as `zfs_sa_symlink` keeps one that does not fit. OpenZFS keeps an SA
      // symlink's target in ZPL_SYMLINK (bonus or spill block); one without it is read from
      // block 0 only when that block exists.
      const info = (await this.view.object(object))!;
      if (st.size > info.blksz) {
        throw new ZplError(object, `a ${st.size}-byte target in a ${info.blksz}-byte block`);
      }
      const block = await this.view.readBlock(object, 0);
      if (block === null) {
        throw new ZplError(
          object,
          a.sa
            ? "a symlink without ZPL_SYMLINK (in neither its bonus nor its spill block)"
            : "the target's block is a hole",
        );
      }
      if (block.length < st.size) throw new ZplError(object, "the target's block is too short");
      target = block.slice(0, st.size);
    }
    if (target.includes(0)) throw new ZplError(object, "the target holds a NUL byte");
    return target;
  }

  /**
   * A symbolic link's target, decoded as UTF-8 (see {@linkcode readlinkBytes} for the bytes).
   *
   * @throws {ZplError} as {@linkcode readlinkBytes}
   */
  async readlink(object: number): Promise<string> {
    return new TextDecoder().decode(await this.readlinkBytes(object));
  }

  /**
   * A regular file's data: the blocks that hold data, in order, the last cut at the file's
   * size. Holes (blocks never written) are left out: the bytes between pieces are zeros.
   *
   * @param object the file
   * @returns the pieces in increasing offset order
   * @throws {ZplError} when the object is not a regular file or a block is short;
   * `TypeError` from the view for blocks it cannot decode
   */
  async *readFile(object: number): AsyncGenerator<FilePiece> {
    for await (const p of this.#pieces(object, false)) yield p as FilePiece;
  }

  /**
   * {@linkcode readFile}, but a block that lies as it is in a file of the view's (see
   * {@linkcode BlockPlacer}) comes as its place instead of its bytes.
   *
   * @param inode the object's {@linkcode stat}, when the caller has it (a walk's entry)
   * @throws as {@linkcode readFile}
   */
  filePieces(
    object: number,
    inode?: Inode,
  ): AsyncGenerator<FilePiece | PlacedPiece | SealedPiece> {
    return this.#pieces(object, true, inode);
  }

  async *#pieces(
    object: number,
    places: boolean,
    inode?: Inode,
  ): AsyncGenerator<FilePiece | PlacedPiece | SealedPiece> {
    const st = inode !== undefined && inode.object === object ? inode : await this.stat(object);
    if (st.kind !== "file") throw new ZplError(object, `not a regular file but a ${st.kind}`);
    const info = (await this.view.object(object))!;
    const bs = info.blksz;
    if (st.size === 0) return;
    if (bs <= 0) throw new ZplError(object, `block size ${bs}`);
    const nblocks = Math.ceil(st.size / bs);
    if (hasRedactions(this.view)) {
      // Never a redacted range as zeros: the file is refused whole, naming what is missing.
      const missing = this.view.redactedRanges(object).filter((r) => r.offset < st.size);
      if (missing.length > 0) {
        throw new ZplError(
          object,
          `the file is redacted: bytes ${rangesText(missing)} were left out of the stream ` +
            `(zfs send --redact)`,
        );
      }
    }
    const placer = places && hasBlockPlaces(this.view) ? this.view : null;
    const sealer = places && hasSealedPlaces(this.view) ? this.view : null;
    const piece = async (
      blkid: number,
      known?: BlockPlace | null,
    ): Promise<FilePiece | PlacedPiece | SealedPiece | null> => {
      const offset = blkid * bs;
      const want = Math.min(bs, st.size - offset);
      const at = known !== undefined ? known : placer?.blockPlace(object, blkid) ?? null;
      if (at !== null && at.length >= want) {
        return { offset, place: { path: at.path, offset: at.offset, length: want } };
      }
      const sealed = sealer === null ? null : await sealer.sealedPlace(object, blkid);
      if (sealed !== null && sealed.length >= want) {
        return { offset, sealed: { ...sealed, keep: want } };
      }
      const block = await this.view.readBlock(object, blkid);
      if (block === null) return null;
      if (block.length < want) {
        throw new ZplError(object, `block ${blkid} has ${block.length} bytes, ${want} needed`);
      }
      return { offset, data: block.subarray(0, want) };
    };
    if (placer !== null && hasPlacedBlocks(placer)) {
      // The blocks and their places, many a call; placed blocks that follow one another in
      // the file and where they lie come as one piece (a run copied at once).
      let run: PlacedPiece | null = null;
      for (let from = 0; from < nblocks;) {
        const { blocks, next } = placer.placedBlocks(object, from);
        if (blocks.length === 0) break;
        for (const b of blocks) {
          if (b.blkid >= nblocks) break;
          // A placed block's piece is made here: no promise a block.
          const offset = b.blkid * bs, want = Math.min(bs, st.size - offset);
          const p = b.place !== null && b.place.length >= want
            ? { offset, place: { path: b.place.path, offset: b.place.offset, length: want } }
            : await piece(b.blkid, b.place);
          if (p === null) continue;
          if ("place" in p) {
            const r: PlacedPiece | null = run;
            if (
              r !== null && r.offset + r.place.length === p.offset &&
              r.place.path === p.place.path && r.place.offset + r.place.length === p.place.offset
            ) {
              r.place.length += p.place.length;
              continue;
            }
            if (r !== null) yield r;
            run = { offset: p.offset, place: { ...p.place } };
            continue;
          }
          if (run !== null) yield run;
          run = null;
          yield p;
        }
        from = next;
      }
      if (run !== null) yield run;
      return;
    }
    if (hasBlockIds(this.view)) {
      for await (const blkid of this.view.blockIds(object)) {
        if (blkid >= nblocks) break;
        const p = await piece(blkid);
        if (p !== null) yield p;
      }
      return;
    }
    for (let blkid = 0; blkid < nblocks; blkid++) {
      const p = await piece(blkid);
      if (p !== null) yield p;
    }
  }

  /**
   * A regular file's whole contents (holes as zeros).
   *
   * @throws as {@linkcode readFile}; `RangeError` for files larger than `maxSize` (default
   * 1 GiB)
   */
  async readAll(object: number, maxSize = 2 ** 30): Promise<Uint8Array> {
    const st = await this.stat(object);
    if (st.size > maxSize) {
      throw new RangeError(`object ${object} has ${st.size} bytes, more than ${maxSize}`);
    }
    const out = new Uint8Array(st.size);
    for await (const p of this.readFile(object)) out.set(p.data, p.offset);
    return out;
  }

  /**
   * A file's extended attributes: those stored as system attributes, then those in its xattr
   * directory, each group sorted by name. A name may appear in both (Linux reads the SA one).
   *
   * @throws {ZplError} when the xattr directory or one of its files is malformed
   */
  async xattrs(object: number): Promise<Xattr[]> {
    const st = await this.stat(object);
    const out: Xattr[] = [...st.saXattrs]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, value]) => ({ name, value, source: "sa" as const }));
    if (st.xattrDir !== 0) {
      for (const e of await this.readdir(st.xattrDir)) {
        const file = await this.stat(e.object);
        if (file.kind !== "file") {
          throw new ZplError(st.xattrDir, `xattr ${JSON.stringify(e.name)} is a ${file.kind}`);
        }
        out.push({ name: e.name, value: await this.readAll(e.object), source: "dir" });
      }
    }
    return out;
  }

  /**
   * Every path of the tree, depth first: a directory, then its entries sorted by name bytes,
   * each directory's contents right after it.
   *
   * @param options depth limit, start directory, and where to report faults
   * @returns the paths; faults throw unless `onError` is given
   */
  async *walk(options: WalkOptions = {}): AsyncGenerator<WalkEntry> {
    const maxDepth = options.maxDepth ?? 1024;
    const start = options.start ?? this.rootObject;
    const report = (e: Error, path: string) => {
      if (options.onError === undefined) throw e;
      options.onError(e, path);
    };
    const visited = new Map<number, string>();
    let rootInode: Inode;
    try {
      rootInode = await this.stat(start);
      if (rootInode.kind !== "dir") throw new ZplError(start, `the root is a ${rootInode.kind}`);
    } catch (e) {
      report(e as Error, ".");
      return;
    }
    visited.set(start, ".");
    yield { path: ".", components: [], depth: 0, inode: rootInode, entry: null };

    // An explicit stack of directory listings keeps deep trees off the call stack.
    interface Frame {
      object: number;
      path: string;
      components: Uint8Array[];
      depth: number;
      entries: DirEntry[];
      next: number;
    }
    const list = async (object: number, path: string): Promise<DirEntry[]> => {
      try {
        return await this.readdir(object, { onError: (e) => report(e, `${path}/${e.entryName}`) });
      } catch (e) {
        report(e as Error, path);
        return [];
      }
    };
    const stack: Frame[] = [
      {
        object: start,
        path: ".",
        components: [],
        depth: 0,
        entries: await list(start, "."),
        next: 0,
      },
    ];
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      if (frame.next >= frame.entries.length) {
        stack.pop();
        continue;
      }
      const entry = frame.entries[frame.next++]!;
      const path = `${frame.path}/${entry.name}`;
      const components = [...frame.components, entry.nameBytes];
      const depth = frame.depth + 1;
      let inode: Inode;
      try {
        inode = await this.stat(entry.object);
        const recorded = kindOfType(entry.type);
        if (entry.type !== 0 && recorded !== inode.kind) {
          throw new DirEntryError(
            frame.object,
            entry.nameBytes,
            `the entry says ${recorded ?? `type ${entry.type}`}, the file is a ${inode.kind}`,
          );
        }
        if (inode.kind === "dir") {
          const first = visited.get(entry.object);
          if (first !== undefined) throw new DirCycleError(entry.object, path, first);
          if (depth > maxDepth) {
            throw new ZplError(entry.object, `${path} is deeper than ${maxDepth} levels`);
          }
          visited.set(entry.object, path);
        }
      } catch (e) {
        report(e as Error, path);
        continue;
      }
      yield { path, components, depth, inode, entry };
      if (inode.kind === "dir") {
        const entries = await list(entry.object, path);
        stack.push({ object: entry.object, path, components, depth, entries, next: 0 });
      }
    }
  }
}
