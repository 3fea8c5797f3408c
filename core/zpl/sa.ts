/**
 * System attributes (OpenZFS `include/sys/sa_impl.h`, `module/zfs/sa.c`, `zfs_sa.c`): how ZPL
 * version 5 and later keep a file's attributes in the bonus buffer (bonus type 44) and, when
 * they do not fit, in a spill block.
 *
 * - The master node's `SA_ATTRS` names the SA master node (a ZAP) with `REGISTRY` and
 *   `LAYOUTS`. `REGISTRY` maps an attribute name to `length << 24 | byteswap << 16 | number`;
 *   `LAYOUTS` maps a decimal layout number to an array of u16 attribute numbers. Attribute
 *   numbers belong to the filesystem: the ZPL's first sixteen (`ZPL_ATIME` 0 .. `ZPL_ZNODE_ACL`
 *   15) have fixed numbers and lengths even when unregistered; layout 0 is those sixteen in
 *   order and layout 1 is empty.
 * - A buffer (bonus or spill) starts with a header: magic `0x2F505A` (u32, in the writer's byte
 *   order: it tells the order), `layout_info` (u16: bits 0..9 the layout, 10..15 the header size
 *   / 8), then a u16 length for each variable-length attribute of the layout, in layout order.
 *   The attributes follow from `roundup8(6 + 2 * nvar)`, each padded to 8 bytes. Layout 0 in a
 *   bonus of type SA means layout 1.
 *
 * Faults throw {@linkcode ZplError} naming the object (or the SA master objects).
 *
 * @module
 */

import type { SnapshotView } from "../receive/snapshot_view.ts";
import { readZap, type ZapEntry, zapFirstInt, zapMap } from "./zap.ts";
import { readTimespec, type Timespec, type ZplAttrs, ZplError } from "./znode.ts";

/** The SA header's magic (`SA_MAGIC`). */
export const SA_MAGIC = 0x2F505A;

/** Byteswap kinds of registered attributes (`sa_bswap_type_t`). */
export const SA_BSWAP = { UINT64: 0, UINT32: 1, UINT16: 2, UINT8: 3, ACL: 4 } as const;

/** One attribute as the filesystem registers it. */
export interface SaAttrDef {
  /** Its number in this filesystem. */
  num: number;
  /** Its name (`ZPL_MODE`, ...). */
  name: string;
  /** Its length in bytes; 0 for variable-length attributes. */
  length: number;
  /** How it is byte-swapped ({@linkcode SA_BSWAP}). */
  byteswap: number;
}

/** The ZPL's fixed attributes (`sa_legacy_attrs`): numbers 0..15. */
const LEGACY: readonly [string, number, number][] = [
  ["ZPL_ATIME", 16, SA_BSWAP.UINT64],
  ["ZPL_MTIME", 16, SA_BSWAP.UINT64],
  ["ZPL_CTIME", 16, SA_BSWAP.UINT64],
  ["ZPL_CRTIME", 16, SA_BSWAP.UINT64],
  ["ZPL_GEN", 8, SA_BSWAP.UINT64],
  ["ZPL_MODE", 8, SA_BSWAP.UINT64],
  ["ZPL_SIZE", 8, SA_BSWAP.UINT64],
  ["ZPL_PARENT", 8, SA_BSWAP.UINT64],
  ["ZPL_LINKS", 8, SA_BSWAP.UINT64],
  ["ZPL_XATTR", 8, SA_BSWAP.UINT64],
  ["ZPL_RDEV", 8, SA_BSWAP.UINT64],
  ["ZPL_FLAGS", 8, SA_BSWAP.UINT64],
  ["ZPL_UID", 8, SA_BSWAP.UINT64],
  ["ZPL_GID", 8, SA_BSWAP.UINT64],
  ["ZPL_PAD", 32, SA_BSWAP.UINT64],
  ["ZPL_ZNODE_ACL", 88, SA_BSWAP.UINT8],
];

/** The attributes and layouts of one filesystem. */
export interface SaTable {
  /** Attribute definitions by number. */
  attrs: Map<number, SaAttrDef>;
  /** Layouts by number: the attribute numbers in storage order. */
  layouts: Map<number, number[]>;
}

/**
 * The table a filesystem has before anything is registered: the sixteen legacy attributes,
 * layout 0 (all of them) and layout 1 (none).
 *
 * @example
 * ```ts
 * import { legacySaTable } from "./sa.ts";
 * const t = legacySaTable();
 * if (t.attrs.get(5)?.name !== "ZPL_MODE" || t.layouts.get(0)?.length !== 16) throw new Error();
 * ```
 */
export function legacySaTable(): SaTable {
  const attrs = new Map<number, SaAttrDef>();
  LEGACY.forEach(([name, length, byteswap], num) =>
    attrs.set(num, { num, name, length, byteswap })
  );
  return { attrs, layouts: new Map([[0, LEGACY.map((_, i) => i)], [1, []]]) };
}

/**
 * Decodes a `REGISTRY` value: `length << 24 | byteswap << 16 | number`.
 *
 * @example
 * ```ts
 * import { decodeSaRegistration } from "./sa.ts";
 * const r = decodeSaRegistration(0x10000000n);
 * if (r.num !== 0 || r.length !== 16 || r.byteswap !== 0) throw new Error();
 * ```
 */
export function decodeSaRegistration(value: bigint): Omit<SaAttrDef, "name"> {
  return {
    num: Number(value & 0xFFFFn),
    byteswap: Number((value >> 16n) & 0xFFn),
    length: Number((value >> 24n) & 0xFFFFn),
  };
}

function single(obj: number, e: ZapEntry, what: string): bigint {
  if (e.intSize !== 8 || e.value.length !== 1) {
    throw new ZplError(obj, `${what} ${e.name} is not one 8-byte integer`);
  }
  return zapFirstInt(e);
}

/**
 * Reads a filesystem's SA registry and layouts from its SA master node.
 *
 * @param view the snapshot
 * @param saMaster the SA master node's object (the master node's `SA_ATTRS`)
 * @returns the table: the registry over the legacy attributes, layouts 0 and 1 added
 * @throws {ZplError} or {@linkcode ZapError} when the objects are malformed
 * @example
 * ```ts
 * import { readSaTable } from "./sa.ts";
 * import type { SnapshotView } from "../receive/snapshot_view.ts";
 * const empty: SnapshotView = {
 *   objsetType: 2,
 *   littleEndian: true,
 *   object: () => Promise.resolve(null),
 *   readBlock: () => Promise.resolve(null),
 *   objectIds: async function* () {},
 * };
 * let failed = false;
 * try {
 *   await readSaTable(empty, 32);
 * } catch (e) {
 *   failed = e instanceof SyntaxError;
 * }
 * if (!failed) throw new Error();
 * ```
 */
export async function readSaTable(view: SnapshotView, saMaster: number): Promise<SaTable> {
  const table = legacySaTable();
  const master = zapMap(await readZap(view, saMaster));
  const objOf = (name: string): number | null => {
    const e = master.get(name);
    if (e === undefined) return null;
    const v = single(saMaster, e, "SA master entry");
    if (v < 1n || v >= 1n << 48n) throw new ZplError(saMaster, `${name} names object ${v}`);
    return Number(v);
  };
  const registry = objOf("REGISTRY");
  const layouts = objOf("LAYOUTS");
  if (registry !== null) {
    const registered = new Set<number>();
    for (const e of (await readZap(view, registry)).entries) {
      const def = decodeSaRegistration(single(registry, e, "registration"));
      if (registered.has(def.num)) {
        throw new ZplError(registry, `attribute number ${def.num} is registered twice`);
      }
      registered.add(def.num);
      table.attrs.set(def.num, { ...def, name: e.name });
    }
  }
  if (layouts !== null) {
    for (const e of (await readZap(view, layouts)).entries) {
      if (!/^(0|[1-9][0-9]*)$/.test(e.name) || Number(e.name) > 1023) {
        throw new ZplError(layouts, `layout name "${e.name}" is not a layout number`);
      }
      if (e.intSize !== 2 || e.value instanceof Uint8Array) {
        throw new ZplError(layouts, `layout ${e.name} is not an array of 2-byte integers`);
      }
      const attrs = e.value.map(Number);
      for (const a of attrs) {
        if (!table.attrs.has(a)) {
          throw new ZplError(
            layouts,
            `layout ${e.name} names attribute ${a}, which is not registered`,
          );
        }
      }
      table.layouts.set(Number(e.name), attrs);
    }
  }
  // Layouts 0 (the legacy znode order) and 1 (empty) always exist.
  const legacy = legacySaTable();
  table.layouts.set(0, legacy.layouts.get(0)!);
  table.layouts.set(1, []);
  return table;
}

/** The attributes found in one SA buffer. */
export interface SaBuffer {
  /** The layout number (after mapping 0 to 1 for SA bonus buffers). */
  layout: number;
  /** The byte order the magic shows. */
  littleEndian: boolean;
  /** Each attribute's bytes, by attribute number. */
  attrs: Map<number, Uint8Array>;
}

/**
 * Parses one SA buffer: a bonus of type SA, or a spill block.
 *
 * @param object the object, for errors
 * @param buf the buffer
 * @param table the filesystem's {@linkcode SaTable}
 * @param where `bonus` or `spill`, for errors
 * @returns the layout, byte order and attributes
 * @throws {ZplError} on a bad magic, an unknown layout, a header size that does not match the
 * layout, or attributes that pass the end of the buffer
 * @example
 * ```ts
 * import { legacySaTable, parseSaBuffer, SA_MAGIC } from "./sa.ts";
 * const t = legacySaTable();
 * t.layouts.set(2, [5, 6]); // ZPL_MODE, ZPL_SIZE
 * const b = new Uint8Array(24);
 * const d = new DataView(b.buffer);
 * d.setUint32(0, SA_MAGIC, false);
 * d.setUint16(4, (1 << 10) | 2, false); // header of 8 bytes, layout 2
 * d.setBigUint64(8, 0o100644n, false);
 * d.setBigUint64(16, 12n, false);
 * const sa = parseSaBuffer(3, b, t, "bonus");
 * if (sa.littleEndian || sa.attrs.get(6)?.length !== 8) throw new Error();
 * ```
 */
export function parseSaBuffer(
  object: number,
  buf: Uint8Array,
  table: SaTable,
  where: "bonus" | "spill",
): SaBuffer {
  const bad = (fault: string): never => {
    throw new ZplError(object, `SA ${where}: ${fault}`);
  };
  if (buf.length < 8) bad(`${buf.length} bytes is too short for an SA header`);
  const d = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let le: boolean;
  if (d.getUint32(0, true) === SA_MAGIC) le = true;
  else if (d.getUint32(0, false) === SA_MAGIC) le = false;
  else if (d.getUint32(0, true) === 0 && d.getUint16(4, true) === 0 && where === "bonus") {
    // A bonus never given attributes: the empty layout.
    return { layout: 1, littleEndian: true, attrs: new Map() };
  } else {
    return bad(`bad magic ${d.getUint32(0, true).toString(16)}`);
  }
  const info = d.getUint16(4, le);
  let layout = info & 0x3FF;
  if (layout === 0 && where === "bonus") layout = 1;
  const hdrSize = (info >> 10) * 8;
  const attrNums = table.layouts.get(layout);
  if (attrNums === undefined) return bad(`unknown layout ${layout}`);
  const defs = attrNums.map((n) => table.attrs.get(n) ?? bad(`layout ${layout}: attribute ${n}?`));
  const nvar = defs.filter((a) => a.length === 0).length;
  const dataStart = Math.ceil((6 + 2 * nvar) / 8) * 8;
  if (hdrSize !== dataStart) {
    bad(`header size ${hdrSize} does not fit layout ${layout} (${nvar} variable attributes)`);
  }
  if (dataStart > buf.length) bad(`a ${dataStart}-byte header in ${buf.length} bytes`);
  const attrs = new Map<number, Uint8Array>();
  let at = dataStart;
  let varIndex = 0;
  for (const def of defs) {
    const length = def.length !== 0 ? def.length : d.getUint16(6 + 2 * varIndex++, le);
    if (length > buf.length - at) {
      bad(`${def.name} (${length} bytes at ${at}) passes the end of the ${buf.length}-byte buffer`);
    }
    if (attrs.has(def.num)) bad(`layout ${layout} holds ${def.name} twice`);
    attrs.set(def.num, buf.subarray(at, at + length));
    at = Math.ceil((at + length) / 8) * 8;
  }
  return { layout, littleEndian: le, attrs };
}

/** All system attributes of one object, by name, with the byte order each was stored in. */
export interface SaAttrs {
  /** Each attribute's bytes by name (unregistered numbers appear as `SA_ATTR_<n>`). */
  byName: Map<string, Uint8Array>;
  /** Byte order of the bonus (and of the spill, which must agree). */
  littleEndian: boolean;
}

/**
 * Reads the system attributes of an object: its bonus, and its spill block when present.
 *
 * @param object the object number, for errors
 * @param bonus the bonus buffer (bonus type 44)
 * @param spill the spill block, or null
 * @param table the filesystem's {@linkcode SaTable}
 * @returns the attributes by name
 * @throws {ZplError} when a buffer is malformed or an attribute is in both
 * @example
 * ```ts
 * import { legacySaTable, readSaAttrs, SA_MAGIC } from "./sa.ts";
 * const t = legacySaTable();
 * t.layouts.set(2, [5]);
 * const b = new Uint8Array(16);
 * new DataView(b.buffer).setUint32(0, SA_MAGIC, true);
 * new DataView(b.buffer).setUint16(4, (1 << 10) | 2, true);
 * new DataView(b.buffer).setBigUint64(8, 0o40755n, true);
 * const sa = readSaAttrs(4, b, null, t);
 * if (new DataView(sa.byName.get("ZPL_MODE")!.buffer).getBigUint64(8, true) !== 0o40755n) {
 *   throw new Error();
 * }
 * ```
 */
export function readSaAttrs(
  object: number,
  bonus: Uint8Array,
  spill: Uint8Array | null,
  table: SaTable,
): SaAttrs {
  const parts = [parseSaBuffer(object, bonus, table, "bonus")];
  if (spill !== null) parts.push(parseSaBuffer(object, spill, table, "spill"));
  const first = parts[0]!;
  const byName = new Map<string, Uint8Array>();
  for (const part of parts) {
    if (part.attrs.size > 0 && part.littleEndian !== first.littleEndian && first.attrs.size > 0) {
      throw new ZplError(object, "the bonus and the spill block are in different byte orders");
    }
    for (const [num, bytes] of part.attrs) {
      const name = table.attrs.get(num)?.name ?? `SA_ATTR_${num}`;
      if (byName.has(name)) {
        throw new ZplError(object, `${name} is in both the bonus and the spill`);
      }
      byName.set(name, bytes);
    }
  }
  const le = first.attrs.size > 0 ? first.littleEndian : (parts[1]?.littleEndian ?? true);
  return { byName, littleEndian: le };
}

/**
 * The ZPL attributes of an object from its system attributes. `ZPL_MODE`, `ZPL_SIZE`,
 * `ZPL_GEN`, `ZPL_UID`, `ZPL_GID`, `ZPL_PARENT`, `ZPL_FLAGS`, `ZPL_LINKS` and the four times
 * are required, as `zfs_znode_alloc` requires them; `ZPL_RDEV`, `ZPL_XATTR`, `ZPL_PROJID`,
 * `ZPL_SYMLINK` and `ZPL_DXATTR` are optional.
 *
 * @param object the object number, for errors
 * @param sa the attributes from {@linkcode readSaAttrs}
 * @returns the ZPL attributes
 * @throws {ZplError} when a required attribute is missing or has the wrong length
 * @example
 * ```ts
 * import { saZplAttrs } from "./sa.ts";
 * const u64 = (v: bigint) => {
 *   const b = new Uint8Array(8);
 *   new DataView(b.buffer).setBigUint64(0, v, true);
 *   return b;
 * };
 * const byName = new Map<string, Uint8Array>();
 * for (const n of ["SIZE", "GEN", "UID", "GID", "PARENT", "FLAGS", "LINKS"]) {
 *   byName.set(`ZPL_${n}`, u64(1n));
 * }
 * byName.set("ZPL_MODE", u64(0o100600n));
 * for (const t of ["ATIME", "MTIME", "CTIME", "CRTIME"]) byName.set(`ZPL_${t}`, new Uint8Array(16));
 * const a = saZplAttrs(7, { byName, littleEndian: true });
 * if (a.mode !== 0o100600n || a.links !== 1n || a.dxattr !== null) throw new Error();
 * ```
 */
export function saZplAttrs(object: number, sa: SaAttrs): ZplAttrs {
  const le = sa.littleEndian;
  const get = (name: string, length: number | null, required: boolean): Uint8Array | null => {
    const b = sa.byName.get(name);
    if (b === undefined) {
      if (required) throw new ZplError(object, `the system attribute ${name} is missing`);
      return null;
    }
    if (length !== null && b.length !== length) {
      throw new ZplError(object, `${name} has ${b.length} bytes, not ${length}`);
    }
    return b;
  };
  const u64 = (name: string): bigint => {
    const b = get(name, 8, true)!;
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, le);
  };
  const optU64 = (name: string): bigint | null => {
    const b = get(name, 8, false);
    return b === null ? null : new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, le);
  };
  const time = (name: string): Timespec => {
    const b = get(name, 16, true)!;
    return readTimespec(new DataView(b.buffer, b.byteOffset, 16), 0, le);
  };
  const symlink = get("ZPL_SYMLINK", null, false);
  const dxattr = get("ZPL_DXATTR", null, false);
  return {
    mode: u64("ZPL_MODE"),
    size: u64("ZPL_SIZE"),
    gen: u64("ZPL_GEN"),
    uid: u64("ZPL_UID"),
    gid: u64("ZPL_GID"),
    parent: u64("ZPL_PARENT"),
    links: u64("ZPL_LINKS"),
    flags: u64("ZPL_FLAGS"),
    xattr: optU64("ZPL_XATTR") ?? 0n,
    rdev: optU64("ZPL_RDEV") ?? 0n,
    projid: optU64("ZPL_PROJID"),
    atime: time("ZPL_ATIME"),
    mtime: time("ZPL_MTIME"),
    ctime: time("ZPL_CTIME"),
    crtime: time("ZPL_CRTIME"),
    symlink: symlink === null ? null : symlink.slice(),
    dxattr: dxattr === null ? null : dxattr.slice(),
  };
}
