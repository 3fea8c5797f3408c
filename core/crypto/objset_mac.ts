/**
 * The portable MAC of an encrypted objset (`zio_crypt_do_objset_hmacs`), which a raw send
 * carries in `crypt_keydata` (`portable_mac`, with the meta dnode's fields `mdn_*`): HMAC-SHA512
 * with the dataset's HMAC key over the objset type (LE u64), its portable flags (none), the meta
 * dnode's core and its block pointers, the first 32 bytes kept. The meta dnode's level-0 blocks
 * are the dnode blocks, whose MACs the OBJECT_RANGE records carry; OpenZFS writes them
 * uncompressed (`dmu_write_policy`: ZIO_COMPRESS_EMPTY for encrypted dnode blocks), so each
 * block pointer is known from the MAC alone. Matching it proves the whole tree of dnodes: every
 * dnode block MAC, and through them every block MAC of the snapshot.
 *
 * @module
 */

import type { NvObject } from "../stream/nvlist.ts";
import { type BpAuth, dnodeCore, dnodePointers, l0Prop } from "./dnode_mac.ts";

/** Length of the objset MACs (`ZIO_OBJSET_MAC_LEN`). */
export const OBJSET_MAC_LEN = 32;
const DMU_OT_DNODE = 10;
const COMPRESS_OFF = 2;

/** The meta dnode's fields and the portable MAC, from `crypt_keydata`. */
export interface ObjsetAuth {
  portableMac: Uint8Array;
  checksum: number;
  compress: number;
  nlevels: number;
  blksz: number;
  indblkshift: number;
  nblkptr: number;
  maxblkid: bigint;
}

/** The objset fields of `crypt_keydata` (as an object), or null when it lacks them. */
export function parseObjsetAuth(kd: NvObject): ObjsetAuth | null {
  const n = (k: string) => {
    const v = kd[k];
    return typeof v === "bigint" ? v : typeof v === "number" ? BigInt(v) : null;
  };
  const mac = kd["portable_mac"];
  const f = ["mdn_checksum", "mdn_compress", "mdn_nlevels", "mdn_blksz", "mdn_indblkshift"]
    .map(n);
  const nblkptr = n("mdn_nblkptr");
  const maxblkid = n("mdn_maxblkid");
  if (
    !(mac instanceof Uint8Array) || mac.length < OBJSET_MAC_LEN || f.some((x) => x === null) ||
    nblkptr === null || maxblkid === null
  ) {
    return null;
  }
  return {
    portableMac: mac.subarray(0, OBJSET_MAC_LEN),
    checksum: Number(f[0]),
    compress: Number(f[1]),
    nlevels: Number(f[2]),
    blksz: Number(f[3]),
    indblkshift: Number(f[4]),
    nblkptr: Number(nblkptr),
    maxblkid,
  };
}

/**
 * The portable MAC of an objset of type `osType` (2 filesystem, 3 volume) whose dnode blocks
 * (by block id: first object / objects per block) have the MACs `dnodeBlocks`.
 *
 * @param hmac HMAC-SHA512 with the dataset's HMAC key (all 64 bytes)
 */
export async function objsetPortableMac(
  hmac: (data: Uint8Array) => Promise<Uint8Array>,
  os: ObjsetAuth,
  osType: number,
  dnodeBlocks: Map<number, Uint8Array>,
  littleEndian: boolean,
): Promise<Uint8Array> {
  const blocks = new Map<number, BpAuth>();
  const l0 = l0Prop({
    lsize: os.blksz,
    psize: os.blksz,
    compress: COMPRESS_OFF,
    type: DMU_OT_DNODE,
    littleEndian,
  });
  for (const [id, mac] of dnodeBlocks) blocks.set(id, { prop: l0, mac });
  const mdn = {
    object: 0,
    type: DMU_OT_DNODE,
    indblkshift: os.indblkshift,
    nlevels: os.nlevels,
    nblkptr: os.nblkptr,
    bonustype: 0,
    checksum: os.checksum,
    compress: os.compress,
    flags: 0,
    blksz: os.blksz,
    bonuslen: 0,
    dnSlots: 1,
    maxblkid: os.maxblkid,
    bonus: new Uint8Array(0),
    spill: null,
    blocks,
  };
  const head = new Uint8Array(16);
  // zio_crypt_do_objset_hmacs swaps os_type exactly when the block needs no swap to be
  // little-endian: a little-endian objset MACs its type big-endian.
  new DataView(head.buffer).setBigUint64(0, BigInt(osType), !littleEndian);
  const core = dnodeCore(mdn);
  const bps = await dnodePointers(mdn);
  const all = new Uint8Array(head.length + core.length + bps.length);
  all.set(head);
  all.set(core, head.length);
  all.set(bps, head.length + core.length);
  return (await hmac(all)).subarray(0, OBJSET_MAC_LEN);
}
