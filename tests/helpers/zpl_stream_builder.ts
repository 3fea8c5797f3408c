/**
 * Builds small ZPL (version 4, znode bonus buffers) filesystems as full send streams with the
 * encoder ({@linkcode StreamWriter}), for end-to-end tests that receive and extract them.
 *
 * The filesystem starts with the master node (object 1: a micro ZAP with `VERSION`, `ROOT`,
 * `DELETE_QUEUE`), the delete queue (object 2, an empty micro ZAP) and the root directory
 * (object 3). Directories are micro ZAPs, or fat ZAPs (one leaf, embedded pointer table) when
 * a name does not fit a micro ZAP or `fat` is asked for; each entry's value is
 * `object | type << 60`. Files and symlinks are objects of type 19 with a `znode_phys_t` bonus
 * (bonus type 17, 264 bytes); file data goes in WRITE records, a symlink target in the bonus at
 * 264 when it fits the 320-byte bonus, else in data block 0 (FORMAT.md section 4).
 *
 * Everything can be overridden, so that tests can build the lies they need: any znode field,
 * any entry value, raw objects, extra records.
 *
 * @module
 */

import { BACKUP_MAGIC, DRR, HDRTYPE } from "../../core/stream/constants.ts";
import { makeVersioninfo, type RecordInit } from "../../core/stream/record.ts";
import { StreamWriter } from "../../core/stream/writer.ts";
import { concat } from "@std/bytes";

const enc = new TextEncoder();

/** Mode type bits. */
export const S_IFMT = {
  DIR: 0o040000,
  REG: 0o100000,
  LNK: 0o120000,
  FIFO: 0o010000,
} as const;

/** Directory entry types (`mode >> 12`). */
export const DT = { FIFO: 1, DIR: 4, REG: 8, LNK: 10 } as const;

/** DMU object types used here. */
export const OT = {
  ZNODE: 17,
  PLAIN_FILE_CONTENTS: 19,
  DIRECTORY_CONTENTS: 20,
  MASTER_NODE: 21,
  UNLINKED_SET: 22,
} as const;

/** A directory entry's value: the object in the low 48 bits, the type in the top 4. */
export function direntValue(object: number | bigint, type: number): bigint {
  return (BigInt(type) << 60n) | BigInt(object);
}

/** Fields of a `znode_phys_t`; what is left out gets a plain default. */
export interface ZnodeFields {
  mode: number | bigint;
  size?: number | bigint;
  links?: number | bigint;
  parent?: number | bigint;
  uid?: number | bigint;
  gid?: number | bigint;
  gen?: number | bigint;
  xattr?: number | bigint;
  rdev?: number | bigint;
  flags?: number | bigint;
  /** Seconds; nanoseconds 0. */
  atime?: number;
  mtime?: number;
  ctime?: number;
  crtime?: number;
}

/** The default times of built znodes (2023-11-14). */
export const DEFAULT_TIME = 1_700_000_000;

/**
 * A `znode_phys_t` bonus buffer: 264 bytes at the FORMAT.md offsets, then `tail` (a symlink's
 * inline target).
 */
export function znodeBonus(
  f: ZnodeFields,
  le = true,
  tail: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const b = new Uint8Array(264 + tail.length);
  const d = new DataView(b.buffer);
  const u = (at: number, v: number | bigint | undefined, dflt: number | bigint) =>
    d.setBigUint64(at, BigInt.asUintN(64, BigInt(v ?? dflt)), le);
  u(0, f.atime, DEFAULT_TIME);
  u(16, f.mtime, DEFAULT_TIME);
  u(32, f.ctime, DEFAULT_TIME);
  u(48, f.crtime, DEFAULT_TIME);
  u(64, f.gen, 5);
  u(72, f.mode, 0);
  u(80, f.size, 0);
  u(88, f.parent, 3);
  u(96, f.links, 1);
  u(104, f.xattr, 0);
  u(112, f.rdev, 0);
  u(120, f.flags, 0);
  u(128, f.uid, 0);
  u(136, f.gid, 0);
  b.set(tail, 264);
  return b;
}

/** A name as text or as exact bytes. */
export type Name = string | Uint8Array;

function nameBytes(name: Name): Uint8Array {
  return typeof name === "string" ? enc.encode(name) : name;
}

/**
 * A micro ZAP block: a 64-byte header, then one 64-byte entry per name (value @0, cd @8,
 * name @14, NUL-terminated, at most 49 bytes). The block is the smallest multiple of 512 that
 * holds them.
 */
export function microZapBlock(entries: [Name, bigint][], le = true): Uint8Array {
  const size = Math.max(512, Math.ceil((64 * (entries.length + 1)) / 512) * 512);
  const b = new Uint8Array(size);
  const d = new DataView(b.buffer);
  d.setBigUint64(0, 0x8000000000000003n, le);
  entries.forEach(([name, value], i) => {
    const at = 64 * (i + 1);
    const bytes = nameBytes(name);
    if (bytes.length > 49) throw new RangeError("test builder: a micro ZAP name of > 49 bytes");
    d.setBigUint64(at, value, le);
    d.setUint32(at + 8, i, le);
    b.set(bytes, at + 14);
  });
  return b;
}

/**
 * A fat ZAP of one leaf, as blocks of `2^bs` bytes: block 0 is the header with the pointer
 * table embedded in its second half (every pointer names leaf block 1), block 1 the leaf. Names
 * are stored exactly as given plus a NUL (so a name may hold NULs, be empty or be long).
 */
export function fatZapBlocks(entries: [Name, bigint][], le = true, bs = 12): Uint8Array[] {
  const size = 1 << bs;
  const header = new Uint8Array(size);
  const h = new DataView(header.buffer);
  const shift = bs - 4;
  h.setBigUint64(0, 0x8000000000000001n, le); // ZBT_HEADER
  h.setBigUint64(8, 0x2F52AB2ABn, le); // ZAP_MAGIC
  h.setBigUint64(16, 0n, le); // zt_blk
  h.setBigUint64(24, 0n, le); // zt_numblks: 0, embedded
  h.setBigUint64(32, BigInt(shift), le); // zt_shift
  h.setBigUint64(56, 2n, le); // zap_freeblk
  h.setBigUint64(64, 1n, le); // zap_num_leafs
  h.setBigUint64(72, BigInt(entries.length), le); // zap_num_entries
  h.setBigUint64(80, 0x1234n, le); // salt
  for (let i = 0; i < 1 << shift; i++) h.setBigUint64(size / 2 + 8 * i, 1n, le);

  const leaf = new Uint8Array(size);
  const d = new DataView(leaf.buffer);
  const hashEntries = 1 << (bs - 5);
  d.setBigUint64(0, 0x8000000000000000n, le); // ZBT_LEAF
  d.setBigUint64(16, 0n, le); // prefix
  d.setUint32(24, 0x2AB1EAF, le); // ZAP_LEAF_MAGIC
  d.setUint16(30, entries.length, le); // nentries
  d.setUint16(32, 0, le); // prefix_len
  d.setUint16(34, 0xFFFF, le); // freelist
  for (let i = 0; i < hashEntries; i++) d.setUint16(48 + 2 * i, 0xFFFF, le);
  const chunksAt = 48 + 2 * hashEntries;
  const numChunks = Math.floor((size - 2 * hashEntries) / 24) - 2;
  let next = 0;
  const alloc = (): number => {
    if (next >= numChunks) throw new RangeError("test builder: the fat ZAP leaf is full");
    return next++;
  };
  const array = (bytes: Uint8Array): number => {
    const ids: number[] = [];
    for (let at = 0; at < bytes.length; at += 21) {
      const id = alloc();
      ids.push(id);
      const c = chunksAt + 24 * id;
      leaf[c] = 251; // ZAP_CHUNK_ARRAY
      leaf.set(bytes.subarray(at, at + 21), c + 1);
    }
    ids.forEach((id, i) => d.setUint16(chunksAt + 24 * id + 22, ids[i + 1] ?? 0xFFFF, le));
    return ids[0]!;
  };
  entries.forEach(([name, value], i) => {
    const entry = alloc();
    const raw = nameBytes(name);
    const nameWithNul = new Uint8Array(raw.length + 1);
    nameWithNul.set(raw);
    const valueBytes = new Uint8Array(8);
    new DataView(valueBytes.buffer).setBigUint64(0, value, false); // arrays are big-endian
    const nameChunk = array(nameWithNul);
    const valueChunk = array(valueBytes);
    const c = chunksAt + 24 * entry;
    const bucket = i % hashEntries;
    leaf[c] = 252; // ZAP_CHUNK_ENTRY
    leaf[c + 1] = 8; // value int size
    d.setUint16(c + 2, d.getUint16(48 + 2 * bucket, le), le); // next in the hash chain
    d.setUint16(c + 4, nameChunk, le);
    d.setUint16(c + 6, nameWithNul.length, le);
    d.setUint16(c + 8, valueChunk, le);
    d.setUint16(c + 10, 1, le);
    d.setUint32(c + 12, 0, le);
    d.setBigUint64(c + 16, (BigInt(bucket) << 57n) | BigInt(i), le);
    d.setUint16(48 + 2 * bucket, entry, le);
  });
  d.setUint16(28, numChunks - next, le); // nfree
  return [header, leaf];
}

/** One object of the stream, as its OBJECT record and data will say. */
export interface ObjectSpec {
  object: number | bigint;
  type: number;
  bonustype: number;
  /** The bonus bytes (padded to 8 in the payload). */
  bonus: Uint8Array;
  /** `bonuslen` (default: the bonus's length). */
  bonuslen?: number;
  blksz: number;
  /** `maxblkid` (default: the last block written, or 0). */
  maxblkid?: bigint;
  /** Data blocks by block id, each `blksz` bytes (shorter ones are padded). */
  blocks: Map<number | bigint, Uint8Array>;
  /**
   * Blocks written compressed, by block id: the codec number and the stored bytes, sent as
   * they are (`compressed_size` is their length). The stream needs the features they ask for
   * (see {@linkcode BuilderOptions.features}).
   */
  compressed?: Map<number | bigint, { compression: number; payload: Uint8Array }>;
}

/** A directory being built. */
interface DirSpec {
  entries: { name: Name; object: number | bigint; type: number | null; value?: bigint }[];
  znode: ZnodeFields;
  fat: boolean;
}

/** Options of {@linkcode ZplStreamBuilder}. */
export interface BuilderOptions {
  /** `pool/fs@snap` (default `src/fs@s1`). */
  toname?: string;
  toguid?: bigint;
  /** Byte order (default little-endian). */
  littleEndian?: boolean;
  /** ZPL version in the master node (default 4). */
  version?: number;
  /** The root directory's object (default 3). */
  root?: number;
  /** BEGIN's feature flags (default none), e.g. `FEATURE.COMPRESSED | FEATURE.ZSTD`. */
  features?: number;
}

/**
 * A ZPL v4 filesystem as a full stream.
 *
 * @example
 * ```ts
 * import { ZplStreamBuilder } from "./zpl_stream_builder.ts";
 * const b = new ZplStreamBuilder();
 * b.file(4, new TextEncoder().encode("hi\n"));
 * b.entry(3, "hello.txt", 4);
 * const bytes = b.stream();
 * if (bytes.length % 8 !== 0) throw new Error();
 * ```
 */
export class ZplStreamBuilder {
  readonly toname: string;
  readonly toguid: bigint;
  readonly le: boolean;
  readonly rootObject: number;
  readonly features: number;
  /** Master node entries (name -> value). */
  readonly master: [Name, bigint][];
  readonly #dirs = new Map<bigint, DirSpec>();
  readonly #objects = new Map<bigint, ObjectSpec>();
  /** Records written after all objects, before END. */
  readonly #extra: { rec: RecordInit; payload?: Uint8Array }[] = [];

  /** @param options name, guid, byte order, version, root */
  constructor(options: BuilderOptions = {}) {
    this.toname = options.toname ?? "src/fs@s1";
    this.toguid = options.toguid ?? 0x1234_5678_9ABC_DEFn;
    this.le = options.littleEndian ?? true;
    this.rootObject = options.root ?? 3;
    this.features = options.features ?? 0;
    this.master = [
      ["VERSION", BigInt(options.version ?? 4)],
      ["ROOT", BigInt(this.rootObject)],
      ["DELETE_QUEUE", 2n],
    ];
    this.raw({
      object: 2,
      type: OT.UNLINKED_SET,
      bonustype: 0,
      bonus: new Uint8Array(0),
      blksz: 512,
      blocks: new Map([[0, microZapBlock([], this.le)]]),
    });
    this.dir(this.rootObject, this.rootObject, { mode: S_IFMT.DIR | 0o755, links: 2 });
  }

  /** Adds (or replaces) a directory; entries come with {@linkcode entry}. */
  dir(
    object: number | bigint,
    parent: number | bigint,
    fields: Partial<ZnodeFields> = {},
    options: { fat?: boolean } = {},
  ): this {
    this.#dirs.set(BigInt(object), {
      entries: [],
      znode: { mode: S_IFMT.DIR | 0o755, links: 2, parent, ...fields },
      fat: options.fat ?? false,
    });
    this.#objects.delete(BigInt(object));
    return this;
  }

  /**
   * Adds an entry to a directory. `type` is the entry's recorded type; by default the type
   * of the object's mode when the builder knows it (else 0). `value` overrides the whole u64.
   */
  entry(
    dir: number | bigint,
    name: Name,
    object: number | bigint,
    type: number | null = null,
    value?: bigint,
  ): this {
    const d = this.#dirs.get(BigInt(dir));
    if (d === undefined) throw new RangeError(`test builder: no directory ${dir}`);
    d.entries.push({ name, object, type, ...(value !== undefined ? { value } : {}) });
    return this;
  }

  /** Makes a directory a fat ZAP even when its names fit a micro ZAP. */
  fat(dir: number | bigint): this {
    this.#dirs.get(BigInt(dir))!.fat = true;
    return this;
  }

  /** A regular file of `content` in blocks of `blksz` (all-zero blocks are left as holes). */
  file(
    object: number | bigint,
    content: Uint8Array,
    fields: Partial<ZnodeFields> = {},
    blksz = 512,
  ): this {
    const blocks = new Map<number | bigint, Uint8Array>();
    for (let at = 0; at < content.length; at += blksz) {
      const part = content.subarray(at, at + blksz);
      if (part.some((x) => x !== 0)) blocks.set(at / blksz, part);
    }
    return this.raw({
      object,
      type: OT.PLAIN_FILE_CONTENTS,
      bonustype: OT.ZNODE,
      bonus: znodeBonus(
        { mode: S_IFMT.REG | 0o644, size: content.length, ...fields },
        this.le,
      ),
      blksz,
      blocks,
    });
  }

  /**
   * A symbolic link: the target inline in the bonus when `264 + length <= 320`, else in data
   * block 0 (or as `where` says).
   */
  symlink(
    object: number | bigint,
    target: Name,
    fields: Partial<ZnodeFields> = {},
    where: "auto" | "bonus" | "block" = "auto",
  ): this {
    const t = nameBytes(target);
    const inline = where === "bonus" || (where === "auto" && 264 + t.length <= 320);
    const znode = { mode: S_IFMT.LNK | 0o777, size: t.length, ...fields };
    return this.raw({
      object,
      type: OT.PLAIN_FILE_CONTENTS,
      bonustype: OT.ZNODE,
      bonus: znodeBonus(znode, this.le, inline ? t : new Uint8Array(0)),
      blksz: 512,
      blocks: inline ? new Map() : new Map([[0, t]]),
    });
  }

  /** A FIFO. */
  fifo(object: number | bigint, fields: Partial<ZnodeFields> = {}): this {
    return this.raw({
      object,
      type: OT.PLAIN_FILE_CONTENTS,
      bonustype: OT.ZNODE,
      bonus: znodeBonus({ mode: S_IFMT.FIFO | 0o644, ...fields }, this.le),
      blksz: 512,
      blocks: new Map(),
    });
  }

  /** Adds or replaces any object, exactly as given. */
  raw(spec: ObjectSpec): this {
    this.#objects.set(BigInt(spec.object), spec);
    this.#dirs.delete(BigInt(spec.object));
    return this;
  }

  /** Changes an object already added (directories are built at {@linkcode stream} time). */
  change(object: number | bigint, f: (spec: ObjectSpec) => void): this {
    const spec = this.#objects.get(BigInt(object));
    if (spec === undefined) throw new RangeError(`test builder: no object ${object}`);
    f(spec);
    return this;
  }

  /** A record to write after the objects (FREE, FREEOBJECTS, ...); `toguid` is filled in. */
  extra(rec: RecordInit, payload?: Uint8Array): this {
    this.#extra.push({ rec: { toguid: this.toguid, ...rec }, ...(payload ? { payload } : {}) });
    return this;
  }

  /** The mode of an object as built, when known. */
  #modeOf(object: bigint): bigint | null {
    if (this.#dirs.has(object)) return BigInt(this.#dirs.get(object)!.znode.mode);
    const o = this.#objects.get(object);
    if (o === undefined || o.bonustype !== OT.ZNODE || o.bonus.length < 80) return null;
    return new DataView(o.bonus.buffer, o.bonus.byteOffset).getBigUint64(72, this.le);
  }

  /** Every object, directories built. */
  objects(): ObjectSpec[] {
    const all = new Map(this.#objects);
    all.set(1n, {
      object: 1,
      type: OT.MASTER_NODE,
      bonustype: 0,
      bonus: new Uint8Array(0),
      blksz: 512,
      blocks: new Map([[0, microZapBlock(this.master, this.le)]]),
    });
    for (const [object, d] of this.#dirs) {
      const entries: [Name, bigint][] = d.entries.map((e) => {
        if (e.value !== undefined) return [e.name, e.value];
        const mode = this.#modeOf(BigInt(e.object));
        const type = e.type ?? (mode === null ? 0 : Number((mode & 0o170000n) >> 12n));
        return [e.name, direntValue(e.object, type)];
      });
      const fat = d.fat ||
        entries.some(([n]) => {
          const b = nameBytes(n);
          return b.length === 0 || b.length > 49 || b.includes(0);
        });
      const blocks = fat ? fatZapBlocks(entries, this.le) : [microZapBlock(entries, this.le)];
      all.set(object, {
        object,
        type: OT.DIRECTORY_CONTENTS,
        bonustype: OT.ZNODE,
        bonus: znodeBonus({ size: entries.length + 2, ...d.znode }, this.le),
        blksz: blocks[0]!.length,
        blocks: new Map(blocks.map((b, i) => [i, b])),
      });
    }
    return [...all.values()].sort((a, b) =>
      BigInt(a.object) < BigInt(b.object) ? -1 : BigInt(a.object) > BigInt(b.object) ? 1 : 0
    );
  }

  /** The whole stream: BEGIN, each object's OBJECT and WRITEs in object order, extras, END. */
  stream(): Uint8Array {
    const w = new StreamWriter({ littleEndian: this.le });
    const chunks: Uint8Array[] = [];
    chunks.push(...w.begin({
      magic: BACKUP_MAGIC,
      versioninfo: makeVersioninfo(HDRTYPE.SUBSTREAM, this.features),
      creation_time: BigInt(DEFAULT_TIME),
      objset_type: 2,
      flags: 0,
      toguid: this.toguid,
      fromguid: 0n,
      toname: this.toname,
    }));
    for (const o of this.objects()) {
      const bonuslen = o.bonuslen ?? o.bonus.length;
      const payload = new Uint8Array(Math.ceil(bonuslen / 8) * 8);
      payload.set(o.bonus.subarray(0, payload.length));
      const blkids = [...new Set([...o.blocks.keys(), ...(o.compressed?.keys() ?? [])].map(BigInt))]
        .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      chunks.push(...w.write({
        type: DRR.OBJECT,
        object: BigInt(o.object),
        object_type: o.type,
        bonustype: o.bonustype,
        blksz: o.blksz,
        bonuslen,
        checksumtype: 7,
        compress: 2,
        dn_slots: 0,
        toguid: this.toguid,
        maxblkid: o.maxblkid ?? blkids[blkids.length - 1] ?? 0n,
      }, payload.length > 0 ? payload : undefined));
      for (const blkid of blkids) {
        const packed = o.compressed?.get(Number(blkid)) ?? o.compressed?.get(blkid);
        if (packed !== undefined) {
          chunks.push(...w.write({
            type: DRR.WRITE,
            object: BigInt(o.object),
            object_type: o.type,
            offset: blkid * BigInt(o.blksz),
            logical_size: BigInt(o.blksz),
            toguid: this.toguid,
            checksumtype: 7,
            compressiontype: packed.compression,
            compressed_size: BigInt(packed.payload.length),
          }, packed.payload));
          continue;
        }
        const data = new Uint8Array(o.blksz);
        const given = o.blocks.get(Number(blkid)) ?? o.blocks.get(blkid)!;
        data.set(given.subarray(0, o.blksz));
        chunks.push(...w.write({
          type: DRR.WRITE,
          object: BigInt(o.object),
          object_type: o.type,
          offset: blkid * BigInt(o.blksz),
          logical_size: BigInt(o.blksz),
          toguid: this.toguid,
          checksumtype: 7,
        }, data));
      }
    }
    for (const x of this.#extra) chunks.push(...w.write(x.rec, x.payload));
    chunks.push(...w.end(this.toguid));
    return concat(chunks);
  }
}

/** The chunks one after another. */
export { concat };
