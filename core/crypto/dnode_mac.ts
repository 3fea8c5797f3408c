/**
 * The additional authenticated data of a dnode block (`zio_crypt_init_uios_dnode`), rebuilt
 * from what a raw stream carries, so that the block's MAC (OBJECT_RANGE's) can be checked and
 * its bonus buffers authenticated. Per dnode, in slot order: the 64-byte core with `dn_flags`
 * masked to the spill flag and `dn_used` zeroed; for each block pointer (and the spill block
 * pointer) 32 bytes: `blk_prop` with its non-portable bits cleared (little-endian), the MAC,
 * 8 zero bytes; then the bonus area, unless it is encrypted (it is then the ciphertext). A free
 * slot is 512 zero bytes. Block pointers above level 0 carry a MAC of their own: the first 16
 * bytes of SHA-512 over the 32-byte entries of the pointers they hold
 * (`zio_crypt_do_indirect_mac_checksum`).
 *
 * @module
 */

import { isEncryptedType } from "./block.ts";

/** The authenticated part of a block pointer: its portable `blk_prop` and its MAC. */
export interface BpAuth {
  prop: bigint;
  mac: Uint8Array;
}

/**
 * The portable `blk_prop` of a level-0 block pointer of an encrypted dataset: sizes,
 * compression, type, the crypt bit and the byte order (1: little-endian), the checksum and
 * dedup bits cleared.
 *
 * @example
 * ```ts
 * import { l0Prop } from "./dnode_mac.ts";
 * const p = l0Prop({ lsize: 131072, psize: 7680, compress: 15, type: 19, littleEndian: true });
 * if (p !== 0xA013000F000E00FFn) throw new Error(p.toString(16));
 * ```
 */
export function l0Prop(
  b: { lsize: number; psize: number; compress: number; type: number; littleEndian: boolean },
): bigint {
  return BigInt((b.lsize >>> 9) - 1) | (BigInt((b.psize >>> 9) - 1) << 16n) |
    (BigInt(b.compress & 0x7F) << 32n) | (BigInt(b.type & 0xFF) << 48n) | (1n << 61n) |
    (b.littleEndian ? 1n << 63n : 0n);
}

/** A dnode as the MAC sees it: the OBJECT record's fields, bonus, block pointers. */
export interface DnodeForMac {
  object: number;
  type: number;
  indblkshift: number;
  nlevels: number;
  nblkptr: number;
  bonustype: number;
  checksum: number;
  compress: number;
  /** OBJECT's flags: DRR_OBJECT_SPILL (4) is DNODE_FLAG_SPILL_BLKPTR (4). */
  flags: number;
  blksz: number;
  bonuslen: number;
  dnSlots: number;
  maxblkid: bigint;
  /** The bonus area as the raw stream carried it (`raw_bonuslen` bytes). */
  bonus: Uint8Array;
  /** The spill block pointer's, when the dnode has one. */
  spill: BpAuth | null;
  /** Its level-0 block pointers by block id (holes absent). */
  blocks: Map<number, BpAuth>;
}

const CORE = 64;
const BP = 128;
const BAB = 32;
const SPILL_BLKPTR = 4;

function bab(out: Uint8Array, at: number, b: BpAuth): void {
  new DataView(out.buffer, out.byteOffset + at, BAB).setBigUint64(0, b.prop, true);
  out.set(b.mac.subarray(0, 16), at + 8);
}

/**
 * The dnode's own block pointers (`dn_blkptr[]`, null for a hole): those above level 0 with
 * their MACs built level by level from the level-0 ones.
 */
export async function topPointers(
  d: Pick<DnodeForMac, "type" | "indblkshift" | "nlevels" | "nblkptr" | "blocks">,
): Promise<(BpAuth | null)[]> {
  const epbShift = d.indblkshift - 7;
  let level = new Map<number, BpAuth>(d.blocks);
  for (let l = 1; l < d.nlevels; l++) {
    const parents = new Map<number, number[]>();
    for (const id of level.keys()) {
      const p = Math.floor(id / 2 ** epbShift);
      let c = parents.get(p);
      if (c === undefined) parents.set(p, c = []);
      c.push(id);
    }
    const next = new Map<number, BpAuth>();
    const epb = 2 ** epbShift;
    const lsizeField = BigInt(((1 << d.indblkshift) >>> 9) - 1);
    for (const [p, children] of parents) {
      const buf = new Uint8Array(epb * BAB);
      for (const c of children) bab(buf, (c - p * epb) * BAB, level.get(c)!);
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-512", buf));
      next.set(p, {
        // Above level 0: byte order and compression cleared, psize 512 (field 0).
        prop: lsizeField | (BigInt(d.type & 0xFF) << 48n) | (BigInt(l) << 56n) | (1n << 61n),
        mac: digest.subarray(0, 16),
      });
    }
    level = next;
  }
  const out: (BpAuth | null)[] = [];
  for (let j = 0; j < d.nblkptr; j++) out.push(level.get(j) ?? null);
  return out;
}

/**
 * The 64-byte core of a dnode as its MACs cover it: `dn_flags` masked to the spill flag,
 * `dn_used` zero, little-endian.
 */
export function dnodeCore(
  d: Omit<DnodeForMac, "object" | "bonus" | "spill" | "blocks">,
): Uint8Array {
  const slots = Math.max(1, d.dnSlots);
  const spill = (d.flags & SPILL_BLKPTR) !== 0;
  const core = new Uint8Array(CORE);
  const v = new DataView(core.buffer);
  core[0] = d.type;
  core[1] = d.indblkshift;
  core[2] = d.nlevels;
  core[3] = d.nblkptr;
  core[4] = d.bonustype;
  core[5] = d.checksum;
  core[6] = d.compress;
  core[7] = spill ? SPILL_BLKPTR : 0;
  v.setUint16(8, d.blksz >>> 9, true);
  v.setUint16(10, d.bonuslen, true);
  core[12] = slots - 1;
  v.setBigUint64(16, d.maxblkid, true);
  return core;
}

/**
 * `dn_blkptr[]` (and the spill pointer) of a dnode as its MACs cover them: 32 bytes each.
 */
export async function dnodePointers(d: DnodeForMac): Promise<Uint8Array> {
  const spill = (d.flags & SPILL_BLKPTR) !== 0;
  const bps = new Uint8Array((d.nblkptr + (spill ? 1 : 0)) * BAB);
  const tops = await topPointers(d);
  tops.forEach((b, j) => b !== null && bab(bps, j * BAB, b));
  if (spill && d.spill !== null) bab(bps, d.nblkptr * BAB, d.spill);
  return bps;
}

/** What to check a dnode block's MAC over. */
export interface DnodeBlockAuth {
  aad: Uint8Array;
  /** The encrypted bonus areas, concatenated in slot order. */
  cipher: Uint8Array;
  /** The objects whose bonus areas make `cipher`, in order. */
  sealed: DnodeForMac[];
}

/**
 * The AAD and ciphertext of the dnode block of `numslots` slots from `firstobj`, whose
 * allocated dnodes are `dnodes` (the others are free).
 *
 * @example
 * ```ts
 * import { dnodeBlockAuth } from "./dnode_mac.ts";
 * const a = await dnodeBlockAuth(0, 32, new Map());
 * if (a.aad.length !== 32 * 512 || a.cipher.length !== 0) throw new Error();
 * ```
 */
export async function dnodeBlockAuth(
  firstobj: number,
  numslots: number,
  dnodes: Map<number, DnodeForMac>,
): Promise<DnodeBlockAuth> {
  const parts: Uint8Array[] = [];
  const sealed: DnodeForMac[] = [];
  for (let i = 0; i < numslots;) {
    const d = dnodes.get(firstobj + i);
    if (d === undefined) {
      parts.push(new Uint8Array(512));
      i++;
      continue;
    }
    const slots = Math.max(1, d.dnSlots);
    const spill = (d.flags & SPILL_BLKPTR) !== 0;
    const core = dnodeCore(d);
    parts.push(core);
    parts.push(await dnodePointers(d));
    const maxBonus = slots * 512 - CORE - d.nblkptr * BP - (spill ? BP : 0);
    if (d.type !== 0 && isEncryptedType(d.bonustype) && d.bonuslen !== 0) {
      sealed.push(d);
    } else {
      const area = new Uint8Array(maxBonus);
      area.set(d.bonus.subarray(0, maxBonus));
      parts.push(area);
    }
    i += slots;
  }
  const join = (list: Uint8Array[]) => {
    const out = new Uint8Array(list.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of list) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
  return { aad: join(parts), cipher: join(sealed.map((d) => d.bonus)), sealed };
}
