/**
 * A raw (encrypted) stored snapshot opened with its key: a {@linkcode SnapshotView} whose
 * bonus buffers, spill blocks and data blocks are decrypted (and, where the stream carries
 * what the MAC covers, authenticated) as they are read. The store keeps the sealed bytes; the
 * plaintext lives only in memory.
 *
 * @module
 */

import { BlockCrypt, type BlockParams, isEncryptedType } from "../../core/crypto/block.ts";
import { MacMismatch } from "../../core/crypto/aead.ts";
import {
  type BpAuth,
  dnodeBlockAuth,
  type DnodeForMac,
  l0Prop,
} from "../../core/crypto/dnode_mac.ts";
import {
  type DatasetKeys,
  keyformatName,
  type KeyMaterial,
  openKeys,
  parseCryptKeydata,
  SUITES,
} from "../../core/crypto/keys.ts";
import { decodeNvlist, nvlistToObject } from "../../core/stream/nvlist.ts";
import { objsetPortableMac, parseObjsetAuth } from "../../core/crypto/objset_mac.ts";
import type { ObjectInfo, SnapshotView } from "../../core/receive/snapshot_view.ts";
import type { BlockPlace, SealedPlace } from "../../core/zpl/fs.ts";
import type { AeadKey } from "../../core/crypto/aead.ts";
import { sealedBlocksOpenable } from "../native/device.ts";
import { nativePbkdf2Sha1 } from "../native/aead_native.ts";
import { KIND } from "./snapshot_builder.ts";
import type { Store } from "./store.ts";
import {
  decode,
  decodeEmbedded,
  type MapRow,
  type RawObjectRow,
  type StoreSnapshotView,
} from "./snapshot_view.ts";

const DMU_OT_SA = 44;
const RAW_BYTESWAP = 2;

/** What a raw snapshot says about its key (for `list`, and messages). */
export interface CryptInfo {
  suite: string;
  keyformat: string;
  guid: bigint;
}

/** The key facts of a raw stored snapshot, or null when it has none. */
export function cryptInfo(view: StoreSnapshotView): CryptInfo | null {
  return cryptInfoOf(view.cryptNvlist());
}

/** The key facts of the raw snapshot with id `snapshot` in `store`, or null. */
export function snapshotCryptInfo(store: Store, snapshot: number): CryptInfo | null {
  const r = store.stmt("SELECT begin_nvlist FROM snapshot_crypt WHERE snapshot = ?").get(
    snapshot,
  ) as { begin_nvlist: Uint8Array } | undefined;
  return cryptInfoOf(r?.begin_nvlist ?? null);
}

function cryptInfoOf(nv: Uint8Array | null): CryptInfo | null {
  if (nv === null) return null;
  const kd = parseCryptKeydata(nvlistToObject(decodeNvlist(nv)));
  if (kd === null) return null;
  return {
    suite: SUITES[kd.suite]!.name,
    keyformat: keyformatName(kd.keyformat),
    guid: kd.guid,
  };
}

/**
 * The keys of a raw stored snapshot from the user's key or passphrase. Throws `WrongKey` when
 * they do not open it, a `TypeError` when the snapshot carries no key.
 */
export async function unlockSnapshot(
  view: StoreSnapshotView,
  material: KeyMaterial,
): Promise<DatasetKeys> {
  const nv = view.cryptNvlist();
  const kd = nv === null ? null : parseCryptKeydata(nvlistToObject(decodeNvlist(nv)));
  if (kd === null) {
    throw new TypeError(
      "the store kept no crypt_keydata for this raw snapshot (it was received before zsend " +
        "kept the keys of raw streams): receive its stream again to open it with the key",
    );
  }
  return await openKeys(kd, material, nativePbkdf2Sha1);
}

/**
 * Checks the snapshot's objset MAC (the portable MAC its raw stream carried) against its dnode
 * blocks' MACs: true when it matches, false when the stream carried none; throws a
 * `TypeError` when it does not match (a dnode block is missing, added or changed).
 */
export async function checkObjsetMac(
  view: StoreSnapshotView,
  crypt: BlockCrypt,
): Promise<boolean> {
  const nv = view.cryptNvlist();
  const kd = nv === null ? undefined : nvlistToObject(decodeNvlist(nv))["crypt_keydata"];
  const os = kd && typeof kd === "object" && !(kd instanceof Uint8Array) && !Array.isArray(kd)
    ? parseObjsetAuth(kd)
    : null;
  if (os === null) return false;
  const blocks = new Map<number, Uint8Array>();
  const perBlock = os.blksz >>> 9;
  for (const r of view.objectRanges()) {
    blocks.set(Math.floor(r.firstobj / perBlock), r.meta.subarray(52, 68));
  }
  const mac = await objsetPortableMac(
    (d) => crypt.hmacFull(d),
    os,
    view.objsetType,
    blocks,
    view.littleEndian,
  );
  if (mac.some((b, i) => b !== os.portableMac[i])) {
    throw new TypeError(
      "the snapshot's objset MAC does not match its dnode blocks: the store's copy is damaged",
    );
  }
  return true;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function paramsAt(meta: Uint8Array, salt: number, iv: number, mac: number): BlockParams {
  return {
    salt: meta.subarray(salt, salt + 8),
    iv: meta.subarray(iv, iv + 12),
    mac: meta.subarray(mac, mac + 16),
  };
}

/** A raw stored snapshot, read through its keys. */
export class DecryptedSnapshotView implements SnapshotView {
  readonly objsetType: number;
  readonly littleEndian: boolean;
  readonly inner: StoreSnapshotView;
  readonly crypt: BlockCrypt;
  #ranges = new Map<number, Promise<Map<number, Uint8Array>>>();
  #objects = new Map<number, Promise<ObjectInfo | null>>();
  #places = new Map<number, BlockPlace & { meta: Uint8Array }>();
  #placesOf = -1;
  #lastKey: { salt: Uint8Array; key: AeadKey } | null = null;

  /**
   * @param inner the stored snapshot (raw)
   * @param keys its unwrapped keys
   */
  constructor(inner: StoreSnapshotView, keys: DatasetKeys | BlockCrypt) {
    this.inner = inner;
    this.crypt = keys instanceof BlockCrypt ? keys : new BlockCrypt(keys);
    this.objsetType = inner.objsetType;
    this.littleEndian = inner.littleEndian;
  }

  /** The plaintext bonus buffers of the dnode block that holds `id`, by object. */
  #bonuses(id: number): Promise<Map<number, Uint8Array>> {
    const range = this.inner.objectRange(id);
    if (range === null) {
      return Promise.reject(
        new TypeError(`object ${id}: the stream gave no OBJECT_RANGE for its dnode block`),
      );
    }
    let p = this.#ranges.get(range.firstobj);
    if (p === undefined) {
      p = (async () => {
        const rows = this.inner.rawObjects(range.firstobj, range.firstobj + range.numslots);
        const dnodes = new Map<number, DnodeForMac>();
        for (const r of rows) dnodes.set(r.object, this.#forMac(r));
        // zio_crypt_init_uios_dnode: the encrypted bonus buffers, DN_MAX_BONUS_LEN each (the
        // stream's raw_bonuslen), in dnode order, make one ciphertext; the rest of the block
        // is the additional data, rebuilt here.
        const auth = await dnodeBlockAuth(range.firstobj, range.numslots, dnodes);
        let plain: Uint8Array;
        try {
          plain = await this.crypt.openDnodeBlock(
            paramsAt(range.meta, 32, 40, 52),
            auth.cipher,
            auth.aad,
          );
        } catch (e) {
          if (!(e instanceof MacMismatch)) throw e;
          throw new TypeError(
            `the dnode block of objects ${range.firstobj}..` +
              `${range.firstobj + range.numslots - 1} fails its MAC: it is damaged (${e.message})`,
          );
        }
        const out = new Map<number, Uint8Array>();
        let at = 0;
        for (const d of auth.sealed) {
          out.set(d.object, plain.subarray(at, at + d.bonus.length));
          at += d.bonus.length;
        }
        return out;
      })();
      if (this.#ranges.size > 1024) this.#ranges.clear();
      this.#ranges.set(range.firstobj, p);
    }
    return p;
  }

  /** An object row with its block pointers' authenticated parts, for the dnode block MAC. */
  #forMac(r: RawObjectRow): DnodeForMac {
    const writeAuth = (m: Uint8Array): BpAuth => {
      const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
      const lsize = Number(v.getBigUint64(32, true));
      return {
        prop: l0Prop({
          lsize,
          psize: Number(v.getBigUint64(96, true)) || lsize,
          compress: m[50]!,
          type: v.getUint32(16, true),
          littleEndian: this.#littleEndian((m[49]! & RAW_BYTESWAP) !== 0),
        }),
        mac: m.subarray(124, 140),
      };
    };
    const blocks = new Map<number, BpAuth>();
    for (const b of this.inner.blockMetas(r.object)) {
      if (b.kind !== KIND.WRITE) continue;
      blocks.set(Math.floor(b.offset / r.blksz), writeAuth(b.meta));
    }
    let spill: BpAuth | null = null;
    if (r.spill_meta !== null) {
      const m = r.spill_meta;
      const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
      const lsize = Number(v.getBigUint64(16, true));
      const psize = Number(v.getBigUint64(40, true)) || lsize;
      spill = {
        prop: l0Prop({
          lsize,
          psize,
          compress: m[33]!,
          type: v.getUint32(84, true) || DMU_OT_SA,
          littleEndian: this.#littleEndian((m[32]! & RAW_BYTESWAP) !== 0),
        }),
        mac: m.subarray(68, 84),
      };
    }
    return {
      object: r.object,
      type: r.type,
      indblkshift: r.indblkshift,
      nlevels: r.nlevels,
      nblkptr: r.nblkptr,
      bonustype: r.bonustype,
      checksum: r.checksumtype,
      compress: r.compress,
      flags: r.flags,
      blksz: r.blksz,
      bonuslen: r.bonuslen,
      dnSlots: r.dn_slots,
      maxblkid: BigInt.asUintN(64, BigInt(r.maxblkid)),
      bonus: r.bonus,
      spill,
      blocks,
    };
  }

  /** The byte order of a block: the sender's, unless its record says it is swapped. */
  #littleEndian(swapped: boolean): boolean {
    return this.littleEndian !== swapped;
  }

  object(id: number): Promise<ObjectInfo | null> {
    let p = this.#objects.get(id);
    if (p === undefined) {
      p = this.#object(id);
      if (this.#objects.size > 4096) this.#objects.clear();
      this.#objects.set(id, p);
    }
    return p;
  }

  async #object(id: number): Promise<ObjectInfo | null> {
    const info = this.inner.objectSync(id);
    if (info === null) return null;
    const row = this.inner.rawObjects(id, id + 1)[0]!;
    let bonus = info.bonus;
    if (info.type !== 0 && isEncryptedType(info.bonustype) && info.bonuslen !== 0) {
      const plain = (await this.#bonuses(id)).get(id);
      if (plain === undefined) throw new TypeError(`object ${id}: its bonus buffer is missing`);
      bonus = plain.subarray(0, info.bonuslen);
    }
    return {
      ...info,
      bonus,
      spill: row.spill_block === null || row.spill_meta === null ? null : await this.#spill(row),
    };
  }

  async #spill(row: RawObjectRow): Promise<Uint8Array> {
    const m = row.spill_meta!;
    const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
    const length = Number(v.getBigUint64(16, true));
    const type = v.getUint32(84, true) || DMU_OT_SA;
    const where = `the spill block of object ${row.object}`;
    const sealed = this.inner.blockBytes(row.spill_block!);
    let physical: Uint8Array;
    try {
      physical = await this.crypt.openBlock(type, paramsAt(m, 48, 56, 68), sealed);
    } catch (e) {
      if (e instanceof MacMismatch) throw new TypeError(`${where} fails its MAC (${e.message})`);
      throw e;
    }
    return decode(m[33]!, physical, length, where);
  }

  async readBlock(id: number, blkid: number): Promise<Uint8Array | null> {
    const o = this.inner.objectSync(id);
    if (o === null) return null;
    const rows = this.inner.blockRows(id, blkid, o.blksz);
    if (rows.length === 0) return null;
    const start = blkid * o.blksz;
    const first = rows[0]!;
    if (rows.length === 1 && first.offset === start && first.lsize === o.blksz) {
      return await this.#logical(id, first);
    }
    const out = new Uint8Array(o.blksz);
    for (const row of rows) {
      const data = await this.#logical(id, row);
      const at = row.offset - start;
      out.set(data.subarray(0, Math.min(data.length, o.blksz - at)), at);
    }
    return out;
  }

  /** The logical bytes of one block map row: opened, authenticated, decompressed. */
  async #logical(id: number, row: MapRow): Promise<Uint8Array> {
    const where = `the block at offset ${row.offset} of object ${id}`;
    if (row.kind === KIND.REDACTED || row.block === null) {
      throw new TypeError(`${where} was redacted from the stream`);
    }
    const m = row.meta;
    const stored = this.inner.blockBytes(row.block);
    if (row.kind === KIND.EMBEDDED) return decodeEmbedded(row, stored, where);
    const type = new DataView(m.buffer, m.byteOffset, m.byteLength).getUint32(16, true);
    let physical: Uint8Array;
    try {
      physical = await this.crypt.openBlock(type, paramsAt(m, 104, 112, 124), stored);
    } catch (e) {
      if (e instanceof MacMismatch) {
        throw new TypeError(`${where} fails its MAC: it is damaged (${e.message})`);
      }
      throw e;
    }
    return decode(m[50]!, physical, row.lsize, where);
  }

  /**
   * Where a data block lies sealed and the key that opens it, when opening it gives its
   * logical bytes (an encrypted type, not compressed, the whole block in one WRITE), for a
   * writer that opens blocks itself (`zs_open_blocks`); else null (then `readBlock`).
   */
  async sealedPlace(id: number, blkid: number): Promise<SealedPlace | null> {
    if (!sealedBlocksOpenable()) return null;
    // One query for the object's blocks (a file's blocks are asked for in order).
    if (this.#placesOf !== id) {
      this.#places = this.inner.storedPlaces(id);
      this.#placesOf = id;
    }
    const at = this.#places.get(blkid);
    if (at === undefined) return null;
    const m = at.meta;
    const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
    const type = v.getUint32(16, true);
    const lsize = Number(v.getBigUint64(32, true));
    // ZIO_COMPRESS_INHERIT (0) or OFF (2): the block's bytes are its logical bytes.
    if ((m[50] !== 0 && m[50] !== 2) || !isEncryptedType(type) || at.length !== lsize) return null;
    const p = paramsAt(m, 104, 112, 124);
    // Blocks written with one salt (most of a dataset's) share their key.
    const last = this.#lastKey;
    let key: AeadKey;
    if (last !== null && sameBytes(last.salt, p.salt)) key = last.key;
    else {
      key = await this.crypt.blockKey(p.salt);
      this.#lastKey = { salt: p.salt.slice(), key };
    }
    return {
      path: at.path,
      offset: at.offset,
      length: at.length,
      mode: key.mode,
      key: key.raw,
      iv: p.iv,
      mac: p.mac,
      where: `the block at offset ${blkid * lsize} of object ${id}`,
    };
  }

  blockIds(id: number): AsyncIterable<number> {
    return this.inner.blockIds(id);
  }

  objectIds(): AsyncIterable<number> {
    return this.inner.objectIds();
  }
}
