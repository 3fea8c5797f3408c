/**
 * The attributes of a ZPL file, and the ZPL v1..4 `znode_phys_t` that holds them in the bonus
 * buffer of objects with bonus type 17 (OpenZFS `include/sys/zfs_sa.h`).
 *
 * `znode_phys_t` is 264 bytes of u64s in the object's byte order: atime, mtime, ctime, crtime
 * (two u64 each: seconds, nanoseconds) @0/16/32/48, gen @64, mode @72, size @80, parent @88,
 * links @96, xattr @104, rdev @112, flags @120, uid @128, gid @136, zap @144, padding @152 and
 * the ACL (88 bytes) @176. A symbolic link's target follows at 264 when
 * `264 + size <= bonuslen`; otherwise it is the start of data block 0.
 *
 * @module
 */

/** Size of `znode_phys_t` (`ZFS_OLD_ZNODE_PHYS_SIZE`), where an inline symlink target starts. */
export const ZNODE_PHYS_SIZE = 264;

/** Bonus types of ZPL objects. */
export const BONUS_TYPE = { ZNODE: 17, SA: 44 } as const;

/** File type bits of a mode (`S_IFMT` and the types). */
export const S_IF = {
  MT: 0o170000,
  SOCK: 0o140000,
  LNK: 0o120000,
  REG: 0o100000,
  BLK: 0o060000,
  DIR: 0o040000,
  CHR: 0o020000,
  FIFO: 0o010000,
} as const;

/** A time as ZFS stores it: seconds since the epoch (signed) and nanoseconds. */
export interface Timespec {
  /** Seconds since 1970-01-01 UTC; negative before it. */
  sec: number;
  /** Nanoseconds, 0..999999999 in well-formed data. */
  nsec: number;
}

/**
 * A ZPL file's attributes as stored, whether in a znode or in system attributes. Integers that
 * are u64 on disk stay bigints here; {@linkcode ZplFilesystem} checks and converts them.
 */
export interface ZplAttrs {
  mode: bigint;
  size: bigint;
  gen: bigint;
  uid: bigint;
  gid: bigint;
  /** The parent directory's object (for the root, itself). */
  parent: bigint;
  links: bigint;
  /** The hidden xattr directory's object, 0 when none. */
  xattr: bigint;
  /** Device number of block and character devices (Linux `dev_t` encoding on Linux). */
  rdev: bigint;
  /** `ZFS_*` persistent flags (immutable, append-only, ...). */
  flags: bigint;
  /** Project id, when stored. */
  projid: bigint | null;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  crtime: Timespec;
  /** A symlink target stored with the attributes; null when it lives in data block 0 or none. */
  symlink: Uint8Array | null;
  /** SA-based xattrs (`ZPL_DXATTR`): a packed nvlist, or null. */
  dxattr: Uint8Array | null;
}

/**
 * Any fault in a ZPL structure of one object (znode, SA buffer, directory, symlink, file).
 *
 * @example
 * ```ts
 * import { ZplError } from "./znode.ts";
 * const e = new ZplError(12, "bonus of 100 bytes is too short for a znode");
 * if (!(e instanceof SyntaxError) || e.object !== 12 || !e.message.includes("object 12")) {
 *   throw new Error();
 * }
 * ```
 */
export class ZplError extends SyntaxError {
  /** The object the fault is in. */
  readonly object: number;
  /** What is wrong, without the object. */
  readonly fault: string;

  /**
   * @param object the object number
   * @param fault what is wrong
   */
  constructor(object: number, fault: string) {
    super(`Cannot read object ${object}: ${fault}`);
    this.name = "ZplError";
    this.object = object;
    this.fault = fault;
  }
}

/**
 * Reads a time stored as two u64s (seconds as a two's-complement int64, then nanoseconds).
 *
 * @example
 * ```ts
 * import { readTimespec } from "./znode.ts";
 * const b = new Uint8Array(16);
 * new DataView(b.buffer).setBigInt64(0, -5n, true);
 * new DataView(b.buffer).setBigUint64(8, 7n, true);
 * const t = readTimespec(new DataView(b.buffer), 0, true);
 * if (t.sec !== -5 || t.nsec !== 7) throw new Error();
 * ```
 */
export function readTimespec(d: DataView, at: number, littleEndian: boolean): Timespec {
  return {
    sec: Number(d.getBigInt64(at, littleEndian)),
    nsec: Number(d.getBigUint64(at + 8, littleEndian)),
  };
}

/**
 * Parses a `znode_phys_t` bonus buffer (ZPL version 4 and older, bonus type 17).
 *
 * @param object the object number, for errors
 * @param bonus the bonus buffer (`bonuslen` bytes, at least 264)
 * @param littleEndian the sender's byte order
 * @returns the attributes; `symlink` is set for a symlink whose target is in the bonus
 * @throws {ZplError} when the bonus is too short
 * @example
 * ```ts
 * import { parseZnode, S_IF } from "./znode.ts";
 * const bonus = new Uint8Array(264 + 3);
 * const d = new DataView(bonus.buffer);
 * d.setBigUint64(72, BigInt(S_IF.LNK | 0o777), true);
 * d.setBigUint64(80, 3n, true);
 * bonus.set([0x61, 0x62, 0x63], 264);
 * const a = parseZnode(9, bonus, true);
 * if (new TextDecoder().decode(a.symlink!) !== "abc" || a.size !== 3n) throw new Error();
 * ```
 */
export function parseZnode(object: number, bonus: Uint8Array, littleEndian: boolean): ZplAttrs {
  if (bonus.length < ZNODE_PHYS_SIZE) {
    throw new ZplError(object, `bonus of ${bonus.length} bytes is too short for a znode (264)`);
  }
  const d = new DataView(bonus.buffer, bonus.byteOffset, bonus.byteLength);
  const u = (at: number) => d.getBigUint64(at, littleEndian);
  const mode = u(72);
  const size = u(80);
  let symlink: Uint8Array | null = null;
  if (
    (Number(mode & 0xFFFFn) & S_IF.MT) === S_IF.LNK &&
    size <= BigInt(bonus.length - ZNODE_PHYS_SIZE)
  ) {
    symlink = bonus.slice(ZNODE_PHYS_SIZE, ZNODE_PHYS_SIZE + Number(size));
  }
  return {
    atime: readTimespec(d, 0, littleEndian),
    mtime: readTimespec(d, 16, littleEndian),
    ctime: readTimespec(d, 32, littleEndian),
    crtime: readTimespec(d, 48, littleEndian),
    gen: u(64),
    mode,
    size,
    parent: u(88),
    links: u(96),
    xattr: u(104),
    rdev: u(112),
    flags: u(120),
    uid: u(128),
    gid: u(136),
    projid: null,
    symlink,
    dxattr: null,
  };
}
