/**
 * ZAP objects (OpenZFS `zap_impl.h`, `zap_leaf.h`, `zap_micro.c`, `zap_fat.c`, `zap_leaf.c`):
 * the name/value maps that hold directories, the master node and the SA registry.
 *
 * - A micro ZAP is one block: a 64-byte header (block type `ZBT_MICRO`, salt, normalisation
 *   flags) and 64-byte entries (u64 value, u32 cd, u16 pad, a NUL-terminated name of up to 49
 *   bytes); an entry whose name starts with NUL is free.
 * - A fat ZAP has a header block (`ZBT_HEADER`, magic `0x2F52AB2AB`, the pointer table's
 *   place and size, the next free block, leaf and entry counts, salt, flags), a pointer table
 *   either in the second half of block 0 or in blocks of its own, and leaf blocks. A leaf
 *   (`ZBT_LEAF`, magic `0x2AB1EAF`) has a 48-byte header, a hash table of `2^(bs-5)` u16 chunk
 *   numbers, then 24-byte chunks: entries (value int size, next in hash chain, name and value
 *   chains and their lengths, cd, hash) and arrays (21 bytes and the next chunk). Header
 *   fields are in the object's byte order; integers inside arrays are big-endian always.
 *
 * Everything is read as hostile input: every chunk number, chain, length, table size and
 * block number is checked, each chunk may be used once only (so a looping or shared chain is
 * caught), and any fault throws {@linkcode ZapError} (a `SyntaxError`) naming the object.
 *
 * @module
 */

import type { SnapshotView } from "../receive/snapshot_view.ts";

/** Block types: the first u64 of a ZAP block. */
export const ZBT = {
  LEAF: 0x8000000000000000n,
  HEADER: 0x8000000000000001n,
  MICRO: 0x8000000000000003n,
} as const;

/** The fat ZAP header's magic (`ZAP_MAGIC`). */
export const ZAP_MAGIC = 0x2F52AB2ABn;
/** A leaf's magic (`ZAP_LEAF_MAGIC`). */
export const ZAP_LEAF_MAGIC = 0x2AB1EAF;
/** `zap_flags`: 64-bit hashes, u64-array keys, keys that are their own hash. */
export const ZAP_FLAG = { HASH64: 1, UINT64_KEY: 2, PRE_HASHED_KEY: 4 } as const;

const MZAP_ENT_LEN = 64;
const MZAP_NAME_LEN = 50;
const CHUNK_SIZE = 24;
const ARRAY_BYTES = 21;
const CHAIN_END = 0xFFFF;
const CHUNK_ENTRY = 252;
const CHUNK_ARRAY = 251;
const LEAF_HEADER = 48;

/**
 * One entry of a ZAP.
 *
 * `value` holds the integers: a `Uint8Array` for 1-byte integers, otherwise an array of
 * bigints (2-, 4- and 8-byte integers alike).
 */
export interface ZapEntry {
  /** The name, decoded as UTF-8 (bytes that are not UTF-8 become U+FFFD). */
  name: string;
  /**
   * The name's bytes without the terminating NUL (for u64-key ZAPs: the key words,
   * big-endian, and `name` is them in hex joined by commas).
   */
  nameBytes: Uint8Array;
  /** The value's integers. */
  value: bigint[] | Uint8Array;
  /** Bytes per integer of the value: 1, 2, 4 or 8. */
  intSize: number;
  /** The collision differentiator (`mze_cd`, `le_cd`), as stored. */
  cd?: number;
  /** The entry's hash as a fat ZAP leaf stores it (micro ZAPs store none). */
  hash?: bigint;
}

/** A whole ZAP object as read. */
export interface Zap {
  /** The object number. */
  object: number;
  /** Whether it is a micro ZAP. */
  micro: boolean;
  /** Hash salt. */
  salt: bigint;
  /** Name normalisation flags (`zap_normflags`). */
  normflags: bigint;
  /** `zap_flags` (fat ZAPs; 0 for micro ones). */
  flags: bigint;
  /** Every entry, in the order they were found (micro: chunk order; fat: hash order). */
  entries: ZapEntry[];
}

/**
 * A malformed ZAP object.
 *
 * @example
 * ```ts
 * import { ZapError } from "./zap.ts";
 * const e = new ZapError(34, "leaf block 1: bad magic");
 * if (!(e instanceof SyntaxError) || e.object !== 34 || !e.message.includes("ZAP object 34")) {
 *   throw new Error();
 * }
 * ```
 */
export class ZapError extends SyntaxError {
  /** The ZAP's object number. */
  readonly object: number;
  /** What is wrong, without the object. */
  readonly fault: string;

  /**
   * @param object the ZAP's object number
   * @param fault what is wrong
   */
  constructor(object: number, fault: string) {
    super(`Cannot read ZAP object ${object}: ${fault}`);
    this.name = "ZapError";
    this.object = object;
    this.fault = fault;
  }
}

const utf8 = new TextDecoder();

function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function beInt(bytes: Uint8Array, at: number, size: number): bigint {
  let v = 0n;
  for (let i = 0; i < size; i++) v = (v << 8n) | BigInt(bytes[at + i]!);
  return v;
}

/** Splits bytes into big-endian integers of `size` bytes. */
function toInts(bytes: Uint8Array, size: number): bigint[] | Uint8Array {
  if (size === 1) return bytes;
  const out: bigint[] = [];
  if (size === 8) {
    const d = dv(bytes);
    for (let at = 0; at < bytes.length; at += 8) out.push(d.getBigUint64(at, false));
  } else {
    for (let at = 0; at < bytes.length; at += size) out.push(beInt(bytes, at, size));
  }
  return out;
}

function isPow2(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/**
 * Parses a micro ZAP block.
 *
 * @param object the object number, for errors
 * @param block block 0 (any multiple of 64 bytes, at least 128)
 * @param littleEndian the object's byte order
 * @returns the ZAP; throws {@linkcode ZapError} when malformed
 * @example
 * ```ts
 * import { parseMicroZap, ZBT } from "./zap.ts";
 * const b = new Uint8Array(512);
 * const d = new DataView(b.buffer);
 * d.setBigUint64(0, ZBT.MICRO, true);
 * d.setBigUint64(64, 34n, true);
 * b.set(new TextEncoder().encode("ROOT"), 64 + 14);
 * const zap = parseMicroZap(7, b, true);
 * if (zap.entries[0]!.name !== "ROOT" || zap.entries[0]!.value[0] !== 34n) throw new Error();
 * ```
 */
export function parseMicroZap(object: number, block: Uint8Array, littleEndian: boolean): Zap {
  if (block.length < 2 * MZAP_ENT_LEN || block.length % MZAP_ENT_LEN !== 0) {
    throw new ZapError(object, `a micro ZAP block of ${block.length} bytes`);
  }
  const d = dv(block);
  const type = d.getBigUint64(0, littleEndian);
  if (type !== ZBT.MICRO) {
    throw new ZapError(object, `block type ${type.toString(16)} is not micro`);
  }
  const entries: ZapEntry[] = [];
  const n = block.length / MZAP_ENT_LEN - 1;
  for (let i = 0; i < n; i++) {
    const at = MZAP_ENT_LEN * (i + 1);
    if (block[at + 14] === 0) continue;
    const nameField = block.subarray(at + 14, at + 14 + MZAP_NAME_LEN);
    const len = nameField.indexOf(0);
    if (len < 0) throw new ZapError(object, `micro ZAP entry ${i} has a name without a NUL`);
    const nameBytes = nameField.slice(0, len);
    entries.push({
      name: utf8.decode(nameBytes),
      nameBytes,
      value: [d.getBigUint64(at, littleEndian)],
      intSize: 8,
      cd: d.getUint32(at + 8, littleEndian),
    });
  }
  return {
    object,
    micro: true,
    salt: d.getBigUint64(8, littleEndian),
    normflags: d.getBigUint64(16, littleEndian),
    flags: 0n,
    entries,
  };
}

/** What {@linkcode parseLeaf} needs to know about the ZAP. */
interface LeafContext {
  object: number;
  blkid: number;
  littleEndian: boolean;
  uint64Key: boolean;
}

/** A parsed leaf. */
interface Leaf {
  prefix: bigint;
  prefixLen: number;
  entries: ZapEntry[];
}

/**
 * Parses one fat ZAP leaf block.
 *
 * @param block the leaf block (a power of two of at least 512 bytes)
 * @param ctx the ZAP's object, the block id, byte order and key kind
 * @returns the leaf's prefix and entries; throws {@linkcode ZapError} when malformed
 */
function parseLeaf(block: Uint8Array, ctx: LeafContext): Leaf {
  const { object, blkid, littleEndian: le } = ctx;
  const bad = (fault: string): never => {
    throw new ZapError(object, `leaf block ${blkid}: ${fault}`);
  };
  const d = dv(block);
  const type = d.getBigUint64(0, le);
  if (type !== ZBT.LEAF) bad(`block type ${type.toString(16)} is not a leaf`);
  const magic = d.getUint32(24, le);
  if (magic !== ZAP_LEAF_MAGIC) bad(`bad magic ${magic.toString(16)}`);
  const prefix = d.getBigUint64(16, le);
  const nentries = d.getUint16(30, le);
  const prefixLen = d.getUint16(32, le);
  if (prefixLen > 64) bad(`prefix length ${prefixLen}`);

  const bs = Math.log2(block.length);
  const hashEntries = 1 << (bs - 5);
  const chunksAt = LEAF_HEADER + 2 * hashEntries;
  const numChunks = Math.floor((block.length - 2 * hashEntries) / CHUNK_SIZE) - 2;
  const used = new Uint8Array(numChunks);
  const claim = (chunk: number, what: string): number => {
    if (chunk >= numChunks) bad(`${what} chunk ${chunk} is past the last chunk (${numChunks - 1})`);
    if (used[chunk] !== 0) bad(`${what} chunk ${chunk} is reached twice (a loop or shared chain)`);
    used[chunk] = 1;
    return chunksAt + chunk * CHUNK_SIZE;
  };
  const readArray = (first: number, bytes: number, what: string): Uint8Array => {
    const out = new Uint8Array(bytes);
    let chunk = first;
    let done = 0;
    while (done < bytes) {
      if (chunk === CHAIN_END) bad(`the ${what} chain ends after ${done} of ${bytes} bytes`);
      const at = claim(chunk, what);
      if (block[at] !== CHUNK_ARRAY) bad(`${what} chunk ${chunk} has type ${block[at]}`);
      const n = Math.min(ARRAY_BYTES, bytes - done);
      out.set(block.subarray(at + 1, at + 1 + n), done);
      done += n;
      chunk = d.getUint16(at + 22, le);
    }
    if (chunk !== CHAIN_END) bad(`the ${what} chain goes on past its ${bytes} bytes`);
    return out;
  };

  const entries: ZapEntry[] = [];
  for (let h = 0; h < hashEntries; h++) {
    let chunk = d.getUint16(LEAF_HEADER + 2 * h, le);
    while (chunk !== CHAIN_END) {
      const at = claim(chunk, "entry");
      if (block[at] !== CHUNK_ENTRY) bad(`hash chain chunk ${chunk} has type ${block[at]}`);
      const intSize = block[at + 1]!;
      if (intSize !== 1 && intSize !== 2 && intSize !== 4 && intSize !== 8) {
        bad(`entry chunk ${chunk} has integer size ${intSize}`);
      }
      const next = d.getUint16(at + 2, le);
      const nameChunk = d.getUint16(at + 4, le);
      const nameInts = d.getUint16(at + 6, le);
      const valueChunk = d.getUint16(at + 8, le);
      const valueInts = d.getUint16(at + 10, le);
      const hash = d.getBigUint64(at + 16, le);
      if (prefixLen > 0 && hash >> BigInt(64 - prefixLen) !== prefix) {
        bad(`entry chunk ${chunk}'s hash ${hash.toString(16)} is outside the leaf's prefix`);
      }
      let name: string;
      let nameBytes: Uint8Array;
      if (ctx.uint64Key) {
        nameBytes = readArray(nameChunk, nameInts * 8, "name");
        name = [...toInts(nameBytes, 8)].map((w) => "0x" + w.toString(16)).join(",");
      } else {
        if (nameInts === 0) bad(`entry chunk ${chunk} has an empty name`);
        const raw = readArray(nameChunk, nameInts, "name");
        if (raw[nameInts - 1] !== 0) bad(`entry chunk ${chunk}'s name does not end with NUL`);
        nameBytes = raw.subarray(0, nameInts - 1);
        name = utf8.decode(nameBytes);
      }
      const value = toInts(readArray(valueChunk, valueInts * intSize, "value"), intSize);
      entries.push({ name, nameBytes, value, intSize, cd: d.getUint32(at + 12, le), hash });
      chunk = next;
    }
  }
  if (entries.length !== nentries) {
    bad(`the header counts ${nentries} entries, the hash chains hold ${entries.length}`);
  }
  return { prefix, prefixLen, entries };
}

/** Reads a block of the ZAP, or throws when it is a hole. */
async function zapBlock(
  view: SnapshotView,
  object: number,
  blkid: number,
  what: string,
): Promise<Uint8Array> {
  const b = await view.readBlock(object, blkid);
  if (b === null) throw new ZapError(object, `${what} (block ${blkid}) is a hole`);
  return b;
}

/**
 * Reads a whole ZAP object, micro or fat.
 *
 * @param view the snapshot
 * @param object the ZAP's object number
 * @returns the ZAP with every entry
 * @throws {ZapError} (a `SyntaxError`) when the object is missing or malformed
 * @throws {TypeError} when a block cannot be decoded (from the view)
 * @example
 * ```ts
 * import { readZap, ZBT } from "./zap.ts";
 * import type { SnapshotView } from "../receive/snapshot_view.ts";
 * const b = new Uint8Array(512);
 * new DataView(b.buffer).setBigUint64(0, ZBT.MICRO, false);
 * new DataView(b.buffer).setBigUint64(64, 4n, false);
 * b.set([0x56, 0x45, 0x52], 78); // "VER"
 * const view: SnapshotView = {
 *   objsetType: 2,
 *   littleEndian: false,
 *   object: (id) => Promise.resolve(id === 1 ? {
 *     object: 1, type: 21, bonustype: 0, blksz: 512, bonuslen: 0, bonus: new Uint8Array(0),
 *     maxblkid: 0, dnSlots: 1, spill: null,
 *   } : null),
 *   readBlock: (id, blk) => Promise.resolve(id === 1 && blk === 0 ? b : null),
 *   objectIds: async function* () { yield 1; },
 * };
 * const zap = await readZap(view, 1);
 * if (zap.entries.length !== 1 || zap.entries[0]!.name !== "VER") throw new Error();
 * ```
 */
export async function readZap(view: SnapshotView, object: number): Promise<Zap> {
  const info = await view.object(object);
  if (info === null) throw new ZapError(object, "the object does not exist");
  const le = view.littleEndian;
  const block0 = await zapBlock(view, object, 0, "the header block");
  if (block0.length < 16) throw new ZapError(object, `block 0 has ${block0.length} bytes`);
  const d = dv(block0);
  const type = d.getBigUint64(0, le);
  if (type === ZBT.MICRO) return parseMicroZap(object, block0, le);
  if (type !== ZBT.HEADER) {
    throw new ZapError(object, `block 0 has type ${type.toString(16)}, neither micro nor header`);
  }
  const bad = (fault: string): never => {
    throw new ZapError(object, fault);
  };
  const size = block0.length;
  if (!isPow2(size) || size < 512) bad(`a fat ZAP block of ${size} bytes`);
  const bs = Math.log2(size);
  const magic = d.getBigUint64(8, le);
  if (magic !== ZAP_MAGIC) bad(`bad header magic ${magic.toString(16)}`);
  const ztBlk = d.getBigUint64(16, le);
  const ztNumblks = d.getBigUint64(24, le);
  const ztShift = d.getBigUint64(32, le);
  const freeblk = d.getBigUint64(56, le);
  const numLeafs = d.getBigUint64(64, le);
  const numEntries = d.getBigUint64(72, le);
  const salt = d.getBigUint64(80, le);
  const normflags = d.getBigUint64(88, le);
  const flags = d.getBigUint64(96, le);
  const uint64Key = (flags & BigInt(ZAP_FLAG.UINT64_KEY)) !== 0n;
  if (freeblk < 2n || freeblk > BigInt(Number.MAX_SAFE_INTEGER)) bad(`next free block ${freeblk}`);
  const nblocks = Number(freeblk);

  // The pointer table: where entry `idx` lives.
  let tableEntries: number;
  let readPointer: (idx: number) => Promise<bigint>;
  if (ztNumblks === 0n) {
    const shift = bs - 4;
    if (ztShift > BigInt(shift)) bad(`embedded pointer table shift ${ztShift} exceeds ${shift}`);
    tableEntries = 2 ** Number(ztShift);
    const base = size / 2;
    readPointer = (idx) => Promise.resolve(d.getBigUint64(base + idx * 8, le));
  } else {
    if (ztNumblks > BigInt(nblocks) || !isPow2(Number(ztNumblks))) {
      bad(`pointer table of ${ztNumblks} blocks`);
    }
    const perBlock = size / 8;
    if (ztShift !== BigInt(Math.log2(Number(ztNumblks) * perBlock))) {
      bad(`pointer table shift ${ztShift} does not fit its ${ztNumblks} blocks`);
    }
    if (ztBlk < 1n || ztBlk + ztNumblks > freeblk) {
      bad(`pointer table blocks ${ztBlk}..${ztBlk + ztNumblks - 1n} outside 1..${freeblk - 1n}`);
    }
    tableEntries = Number(ztNumblks) * perBlock;
    const first = Number(ztBlk);
    let cachedBlk = -1;
    let cached: DataView | null = null;
    readPointer = async (idx) => {
      const blk = first + Math.floor(idx / perBlock);
      if (blk !== cachedBlk) {
        cached = dv(await zapBlock(view, object, blk, "a pointer table block"));
        if (cached.byteLength !== size) bad(`pointer table block ${blk} has the wrong size`);
        cachedBlk = blk;
      }
      return cached!.getBigUint64((idx % perBlock) * 8, le);
    };
  }
  const tableShift = Math.log2(tableEntries);
  const tableLow = ztNumblks === 0n ? 0 : Number(ztBlk);
  const tableHigh = ztNumblks === 0n ? 0 : Number(ztBlk + ztNumblks);

  const leaves = new Map<number, Leaf>();
  const entries: ZapEntry[] = [];
  for (let idx = 0; idx < tableEntries; idx++) {
    const ptr = await readPointer(idx);
    if (ptr < 1n || ptr >= freeblk) {
      bad(`pointer ${idx} names block ${ptr}, outside 1..${nblocks - 1}`);
    }
    const blkid = Number(ptr);
    if (blkid >= tableLow && blkid < tableHigh) bad(`pointer ${idx} names a pointer table block`);
    let leaf = leaves.get(blkid);
    if (leaf === undefined) {
      const block = await zapBlock(view, object, blkid, "a leaf");
      if (block.length !== size) bad(`leaf block ${blkid} has ${block.length} bytes, not ${size}`);
      leaf = parseLeaf(block, { object, blkid, littleEndian: le, uint64Key });
      leaves.set(blkid, leaf);
      entries.push(...leaf.entries);
    }
    // The leaf must own this pointer: its prefix is the top prefixLen bits of the index.
    if (leaf.prefixLen > tableShift) {
      bad(
        `leaf block ${blkid} has prefix length ${leaf.prefixLen}, longer than the table's ${tableShift}`,
      );
    }
    if (BigInt(idx >> (tableShift - leaf.prefixLen)) !== leaf.prefix) {
      bad(
        `pointer ${idx} names leaf block ${blkid}, whose prefix ${leaf.prefix} does not cover it`,
      );
    }
  }
  if (BigInt(leaves.size) !== numLeafs) {
    bad(`the header counts ${numLeafs} leaves, the pointer table names ${leaves.size}`);
  }
  if (BigInt(entries.length) !== numEntries) {
    bad(`the header counts ${numEntries} entries, the leaves hold ${entries.length}`);
  }
  return { object, micro: false, salt, normflags, flags, entries };
}

/**
 * The first integer of an entry's value as a bigint (what `zap_lookup` with an 8-byte integer
 * size returns for single-integer values).
 *
 * @param entry a ZAP entry
 * @returns the first integer; throws `SyntaxError` when the value is empty
 * @example
 * ```ts
 * import { zapFirstInt } from "./zap.ts";
 * const e = { name: "ROOT", nameBytes: new Uint8Array(), value: [34n], intSize: 8 };
 * if (zapFirstInt(e) !== 34n) throw new Error();
 * ```
 */
export function zapFirstInt(entry: ZapEntry): bigint {
  const v = entry.value;
  if (v.length === 0) throw new SyntaxError(`ZAP entry ${entry.name} has no value`);
  return v instanceof Uint8Array ? BigInt(v[0]!) : v[0]!;
}

/**
 * The entries of a ZAP as a map by name (a later duplicate name replaces an earlier one).
 *
 * @example
 * ```ts
 * import { zapMap } from "./zap.ts";
 * const m = zapMap({
 *   object: 1, micro: true, salt: 0n, normflags: 0n, flags: 0n,
 *   entries: [{ name: "VERSION", nameBytes: new Uint8Array(), value: [5n], intSize: 8 }],
 * });
 * if (m.get("VERSION")?.value[0] !== 5n) throw new Error();
 * ```
 */
export function zapMap(zap: Zap): Map<string, ZapEntry> {
  return new Map(zap.entries.map((e) => [e.name, e]));
}
