/**
 * What changed between two snapshots of a filesystem, decided object by object as `zfs diff`
 * decides it (OpenZFS `lib/libzfs/libzfs_diff.c` over `module/zfs/dmu_diff.c` and
 * `zfs_obj_to_stats`):
 *
 * - an object whose dnode is free in the later snapshot was removed (`-`), unless it was not
 *   a file in the earlier one or sat on its delete queue;
 * - an object only the later snapshot names (or names through a path) was added (`+`);
 * - the same object number with another generation, or another file type, was removed and
 *   another added (`-` then `+`);
 * - the same file with another change time was modified (`M`), renamed (`R`, when its path
 *   differs) or linked or unlinked (`M` with the change of its link count, not for
 *   directories).
 *
 * A file's path is found as the kernel finds it: up through each object's parent attribute,
 * each name the first entry of the parent directory (in ZAP cursor order) that holds the
 * object; `<xattrdir>` for an extended attribute directory; `(on_delete_queue)` for a file on
 * the delete queue. Objects that are not ZPL files (no znode or SA bonus) are not reported.
 *
 * @module
 */

import type { ZplFilesystem } from "./fs.ts";
import { readZap, type Zap } from "./zap.ts";
import { zapValueSearch } from "./zap_cursor.ts";
import { BONUS_TYPE, S_IF, type Timespec, ZNODE_PHYS_SIZE, ZplError } from "./znode.ts";

/** What `zfs diff` reads of a file (`zfs_stat_t`). */
export interface DiffStat {
  /** The whole mode, type bits included. */
  mode: number;
  /** Generation: the txg that created the file. */
  gen: bigint;
  /** Hard link count. */
  links: bigint;
  /** Change time. */
  ctime: Timespec;
}

/** One line of `zfs diff`. */
export interface DiffChange {
  /** `+` added, `-` removed, `M` modified (or linked), `R` renamed. */
  type: "+" | "-" | "M" | "R";
  /** The object. */
  object: number;
  /** The file's attributes the line shows (its type, its change time). */
  stat: DiffStat;
  /** Its path below the mountpoint, starting with `/` (bytes as stored). */
  path: Uint8Array;
  /** `R`: the new path. */
  newPath?: Uint8Array;
  /** `M` of a link or unlink: the change of the link count. */
  linkDelta?: number;
}

/** A file `zfs diff` could not describe (it goes on with the others). */
export interface DiffFault {
  object: number;
  /** Which snapshot: the earlier or the later. */
  side: "from" | "to";
  message: string;
}

const ZERO_STAT: DiffStat = { mode: 0, gen: 0n, links: 0n, ctime: { sec: 0, nsec: 0 } };
const DIRENT_OBJ_MASK = (1n << 48n) - 1n;
const ZFS_XATTR = 1n;
const MAX_DEPTH = 4096;
const enc = new TextEncoder();
const ON_DELETE_QUEUE = enc.encode("(on_delete_queue)");
const XATTRDIR = enc.encode("<xattrdir>");

/** What the kernel answers for one object of one snapshot (`ZFS_IOC_OBJ_TO_STATS`). */
interface ObjectStats {
  /** 0, or the error: no such object (or no path), not a ZPL file, anything else. */
  error: 0 | "ENOENT" | "ENOTSUP" | "EIO";
  /** Zeros when the error came before the attributes were read. */
  stat: DiffStat;
  path: Uint8Array;
  /** On the delete queue: the path is `(on_delete_queue)`. */
  stale?: boolean;
  fault?: string;
}

const isDir = (mode: bigint | number) => (Number(BigInt(mode) & 0xF000n) === S_IF.DIR);

/** Paths and attributes of one snapshot's objects, as `zfs_obj_to_stats` gives them. */
class Namer {
  readonly fs: ZplFilesystem;
  #dirs = new Map<number, Zap>();
  #deleteQueue: Set<string> | null = null;

  constructor(fs: ZplFilesystem) {
    this.fs = fs;
  }

  /** The object's attributes when it has a ZPL bonus; the error otherwise. */
  async #attrs(object: number) {
    const info = await this.fs.view.object(object);
    if (info === null) return "ENOENT" as const;
    const znodeOk = info.bonustype === BONUS_TYPE.ZNODE && info.bonus.length >= ZNODE_PHYS_SIZE;
    if (!znodeOk && info.bonustype !== BONUS_TYPE.SA) return "ENOTSUP" as const;
    return await this.fs.attrs(object);
  }

  async #onDeleteQueue(object: number): Promise<boolean> {
    if (this.#deleteQueue === null) {
      const e = this.fs.master.get("DELETE_QUEUE");
      const dq = e === undefined || e.value instanceof Uint8Array ? null : e.value[0];
      this.#deleteQueue = new Set(
        dq === undefined || dq === null
          ? []
          : (await readZap(this.fs.view, Number(dq))).entries.map((x) => x.name),
      );
    }
    return this.#deleteQueue.has(object.toString(16));
  }

  async #dir(object: number): Promise<Zap> {
    let zap = this.#dirs.get(object);
    if (zap === undefined) {
      zap = await readZap(this.fs.view, object);
      if (this.#dirs.size > 256) this.#dirs.clear();
      this.#dirs.set(object, zap);
    }
    return zap;
  }

  async stats(object: number): Promise<ObjectStats> {
    let a;
    try {
      a = await this.#attrs(object);
    } catch (e) {
      return { error: "EIO", stat: ZERO_STAT, path: new Uint8Array(), fault: (e as Error).message };
    }
    if (typeof a === "string") return { error: a, stat: ZERO_STAT, path: new Uint8Array() };
    const stat: DiffStat = { mode: Number(a.mode), gen: a.gen, links: a.links, ctime: a.ctime };
    try {
      if (await this.#onDeleteQueue(object)) {
        return { error: 0, stat, path: ON_DELETE_QUEUE, stale: true };
      }
      const path = await this.#path(object, a);
      return typeof path === "string"
        ? { error: path, stat, path: new Uint8Array() }
        : { error: 0, stat, path };
    } catch (e) {
      return { error: "EIO", stat, path: new Uint8Array(), fault: (e as Error).message };
    }
  }

  /** `zfs_obj_to_path`: the components up to the root, or the error that stopped it. */
  async #path(
    object: number,
    attrs: { parent: bigint; flags: bigint; mode: bigint },
  ): Promise<Uint8Array | "ENOENT" | "ENOTSUP"> {
    const parts: Uint8Array[] = [];
    let obj = object;
    let a = attrs;
    for (let depth = 0;; depth++) {
      if (depth > MAX_DEPTH) throw new ZplError(object, `a path deeper than ${MAX_DEPTH} levels`);
      if (a.parent >= 1n << 48n) throw new ZplError(obj, `parent ${a.parent}`);
      const parent = Number(a.parent);
      const pa = await this.#attrs(parent);
      if (typeof pa === "string") return pa;
      const xattrDir = (a.flags & ZFS_XATTR) !== 0n && isDir(a.mode);
      if (!xattrDir && !isDir(pa.mode)) {
        throw new ZplError(obj, `the parent, object ${parent}, is not a directory`);
      }
      if (parent === obj) break;
      let name: Uint8Array;
      if (xattrDir) name = XATTRDIR;
      else {
        const e = zapValueSearch(await this.#dir(parent), BigInt(obj), DIRENT_OBJ_MASK);
        if (e === null) return "ENOENT";
        name = e.nameBytes;
      }
      parts.push(name);
      obj = parent;
      a = pa;
    }
    if (parts.length === 0) return enc.encode("/");
    const out: number[] = [];
    for (const p of parts.reverse()) out.push(0x2F, ...p);
    return new Uint8Array(out);
  }
}

function sameTime(a: Timespec, b: Timespec): boolean {
  return a.sec === b.sec && a.nsec === b.nsec;
}

/**
 * The changes between two snapshots of a filesystem, object by object in increasing order, as
 * `zfs diff` prints them.
 *
 * @param from the earlier snapshot
 * @param to the later one (of the same filesystem, or of a clone of it)
 * @param objects every object number whose dnode may differ between them, in increasing order
 * (more does no harm: an unchanged file gives no line)
 * @param onFault where a file that cannot be described goes (the diff goes on)
 * @example
 * ```ts
 * import { diffSnapshots } from "./diff.ts";
 * import type { ZplFilesystem } from "./fs.ts";
 * // The lines of two opened snapshots, for the objects whose dnodes differ.
 * async function lines(a: ZplFilesystem, b: ZplFilesystem, objects: number[]) {
 *   const out: string[] = [];
 *   for await (const c of diffSnapshots(a, b, objects, (f) => out.push(f.message))) {
 *     out.push(`${c.type}\t${new TextDecoder().decode(c.path)}`);
 *   }
 *   return out;
 * }
 * if (typeof lines !== "function") throw new Error();
 * ```
 */
export async function* diffSnapshots(
  from: ZplFilesystem,
  to: ZplFilesystem,
  objects: Iterable<number>,
  onFault: (fault: DiffFault) => void,
): AsyncGenerator<DiffChange> {
  const f = new Namer(from);
  const t = new Namer(to);
  const sharesEntry = to.master.get("SHARES");
  const shares = sharesEntry === undefined || sharesEntry.value instanceof Uint8Array
    ? -1
    : Number(sharesEntry.value[0] ?? -1);
  const fault = (object: number, side: "from" | "to", s: ObjectStats) =>
    onFault({ object, side, message: s.fault ?? String(s.error) });
  for (const object of objects) {
    if (object === shares) continue;
    const fs = await f.stats(object);
    if ((await to.view.object(object)) === null) {
      // A free dnode: dmu_diff reports a free range; the file is gone unless it was not one.
      if (fs.error === "ENOENT" || fs.stale) continue;
      if (fs.error !== 0) {
        fault(object, "from", fs);
        continue;
      }
      yield { type: "-", object, stat: fs.stat, path: fs.path };
      continue;
    }
    const ts = await t.stats(object);
    if (fs.error === "EIO") fault(object, "from", fs);
    if (ts.error === "EIO" && fs.error !== "EIO") fault(object, "to", ts);
    if (fs.error !== 0 && ts.error !== 0) continue;
    const fmode = fs.stat.mode & S_IF.MT;
    const tmode = ts.stat.mode & S_IF.MT;
    const change = fmode === S_IF.DIR || tmode === S_IF.DIR || fs.stat.links === 0n ||
        ts.stat.links === 0n
      ? 0
      : Number(ts.stat.links - fs.stat.links);
    if (fs.error !== 0) {
      yield change !== 0
        ? { type: "M", object, stat: ts.stat, path: ts.path, linkDelta: change }
        : { type: "+", object, stat: ts.stat, path: ts.path };
      continue;
    }
    if (ts.error !== 0) {
      yield change !== 0
        ? { type: "M", object, stat: fs.stat, path: fs.path, linkDelta: change }
        : { type: "-", object, stat: fs.stat, path: fs.path };
      continue;
    }
    const sameGen = fs.stat.gen === ts.stat.gen && fmode === tmode;
    if (!sameGen) {
      yield { type: "-", object, stat: fs.stat, path: fs.path };
      yield { type: "+", object, stat: ts.stat, path: ts.path };
      continue;
    }
    if (sameTime(fs.stat.ctime, ts.stat.ctime)) continue;
    if (change !== 0) {
      yield {
        type: "M",
        object,
        stat: ts.stat,
        path: change > 0 ? fs.path : ts.path,
        linkDelta: change,
      };
    } else if (sameBytes(fs.path, ts.path)) {
      yield { type: "M", object, stat: ts.stat, path: fs.path };
    } else {
      yield { type: "R", object, stat: ts.stat, path: fs.path, newPath: ts.path };
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
