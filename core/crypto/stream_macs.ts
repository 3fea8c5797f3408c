/**
 * Checks the MACs of a raw stream's blocks with the user's key, record by record, beside the
 * structural checks of `verify`: each substream's `crypt_keydata` is unwrapped with the key
 * (a wrong key is a fault of that BEGIN), then every WRITE and SPILL payload is opened: the
 * AEAD tag of an encrypted block, the HMAC of an authenticated one. In a full substream, which
 * carries every block, each dnode block (OBJECT_RANGE) is checked too, over the dnodes and block
 * pointers rebuilt from the records (`dnode_mac.ts`), and at END the objset's portable MAC over
 * the dnode blocks' MACs: the whole snapshot is then proven. An incremental substream leaves
 * unchanged blocks out, so its dnode blocks and objset MAC cannot be checked from it alone
 * (they are, once received into a store, by `extract` and `ls`).
 *
 * @module
 */

import { DRR, FEATURE, HDRTYPE } from "../stream/constants.ts";
import { StreamError } from "../stream/errors.ts";
import { decodeNvlist, nvlistToObject } from "../stream/nvlist.ts";
import type { StreamRecord } from "../stream/reader.ts";
import { featureFlags, hasFeature, hdrtype } from "../stream/record.ts";
import { type AeadEngine, MacMismatch } from "./aead.ts";
import { BlockCrypt, type BlockParams } from "./block.ts";
import { deriveWrappingKey, type KeyMaterial, parseCryptKeydata, unwrapKeys } from "./keys.ts";
import { dnodeBlockAuth, type DnodeForMac, l0Prop } from "./dnode_mac.ts";
import { type ObjsetAuth, objsetPortableMac, parseObjsetAuth } from "./objset_mac.ts";
import type { NvObject } from "../stream/nvlist.ts";

const DMU_OT_SA = 44;
const RAW_BYTESWAP = 2;

/** What {@linkcode StreamMacChecker} found. */
export interface MacReport {
  /** Raw substreams whose key the given key opened. */
  keys: number;
  /** WRITE and SPILL blocks whose MAC matched. */
  blocks: number;
  /** OBJECT_RANGE (dnode) blocks whose MAC matched (full substreams). */
  dnodeBlocks: number;
  /** OBJECT_RANGE blocks of incremental substreams, not checkable from the stream alone. */
  dnodeUnchecked: number;
  /** Objset MACs that matched (full substreams that carry one). */
  objsets: number;
  /** Substreams that are not raw (nothing to check). */
  plain: number;
}

/** Checks block MACs record by record; call {@linkcode check} on every record in order. */
export class StreamMacChecker {
  #material: KeyMaterial;
  #wrapping: Map<string, Promise<Uint8Array>>;
  #engine: AeadEngine | null;
  #crypt: BlockCrypt | null = null;
  readonly report: MacReport = {
    keys: 0,
    blocks: 0,
    dnodeBlocks: 0,
    dnodeUnchecked: 0,
    objsets: 0,
    plain: 0,
  };
  #full = false;
  #objset: ObjsetAuth | null = null;
  #objsetType = 0;
  #littleEndian = true;
  #dnodeMacs = new Map<number, Uint8Array>();
  #range: {
    at: { index: number; type: number; offset: number };
    firstobj: number;
    numslots: number;
    params: BlockParams;
    dnodes: Map<number, DnodeForMac>;
  } | null = null;

  /**
   * @param material the user's key or passphrase
   * @param wrappingKeys wrapping keys derived so far (by key format, salt and iterations),
   *   to share between checkers of the same material: PBKDF2 is slow on purpose
   * @param engine a native AEAD to open blocks with (else Web Crypto)
   */
  constructor(
    material: KeyMaterial,
    wrappingKeys: Map<string, Promise<Uint8Array>> = new Map(),
    engine: AeadEngine | null = null,
  ) {
    this.#material = material;
    this.#wrapping = wrappingKeys;
    this.#engine = engine;
  }

  /** Checks one record; throws {@linkcode StreamError} for a wrong key or a bad MAC. */
  async check(r: StreamRecord): Promise<void> {
    const h = r.header;
    const at = { index: r.index, type: h.type, offset: r.offset };
    if (h.type === DRR.BEGIN) {
      if (hdrtype(h.versioninfo) === HDRTYPE.COMPOUNDSTREAM) return;
      this.#crypt = null;
      this.#range = null;
      this.#dnodeMacs.clear();
      if (!hasFeature(featureFlags(h.versioninfo), FEATURE.RAW)) {
        this.report.plain++;
        return;
      }
      const kd = r.payload.length === 0
        ? null
        : parseCryptKeydata(nvlistToObject(decodeNvlist(r.payload)));
      if (kd === null) throw new StreamError(at, "a raw substream without crypt_keydata");
      const id = `${kd.keyformat}:${kd.salt}:${kd.iters}`;
      let w = this.#wrapping.get(id);
      if (w === undefined) {
        w = deriveWrappingKey(this.#material, kd);
        this.#wrapping.set(id, w);
      }
      try {
        this.#crypt = new BlockCrypt(await unwrapKeys(kd, await w), this.#engine);
      } catch (e) {
        throw new StreamError(at, `${h.toname}: ${(e as Error).message}`);
      }
      this.report.keys++;
      this.#full = h.fromguid === 0n;
      const kdo = nvlistToObject(decodeNvlist(r.payload))["crypt_keydata"] as NvObject;
      this.#objset = parseObjsetAuth(kdo);
      this.#objsetType = h.objset_type;
      this.#littleEndian = r.littleEndian;
      return;
    }
    const crypt = this.#crypt;
    if (crypt === null) return;
    const le = (flags: number) => r.littleEndian !== ((flags & RAW_BYTESWAP) !== 0);
    try {
      if (h.type === DRR.WRITE) {
        await crypt.openBlock(h.object_type, h, r.payload);
        this.report.blocks++;
        const d = this.#range?.dnodes.get(Number(h.object));
        if (d !== undefined) {
          const lsize = Number(h.logical_size);
          d.blocks.set(Math.floor(Number(h.offset) / d.blksz), {
            prop: l0Prop({
              lsize,
              psize: Number(h.compressed_size) || lsize,
              compress: h.compressiontype,
              type: h.object_type,
              littleEndian: le(h.flags),
            }),
            mac: h.mac.slice(),
          });
        }
      } else if (h.type === DRR.SPILL && r.payload.length > 0) {
        const type = h.object_type || DMU_OT_SA;
        await crypt.openBlock(type, h, r.payload);
        this.report.blocks++;
        const d = this.#range?.dnodes.get(Number(h.object));
        if (d !== undefined) {
          const lsize = Number(h.length);
          d.spill = {
            prop: l0Prop({
              lsize,
              psize: Number(h.compressed_size) || lsize,
              compress: h.compressiontype,
              type,
              littleEndian: le(h.flags),
            }),
            mac: h.mac.slice(),
          };
        }
      } else if (h.type === DRR.OBJECT_RANGE) {
        await this.#finishRange(crypt);
        if (!this.#full) {
          this.report.dnodeUnchecked++;
          return;
        }
        this.#range = {
          at,
          firstobj: Number(h.firstobj),
          numslots: Number(h.numslots),
          params: { salt: h.salt.slice(), iv: h.iv.slice(), mac: h.mac.slice() },
          dnodes: new Map(),
        };
      } else if (h.type === DRR.OBJECT) {
        const range = this.#range;
        const object = Number(h.object);
        if (
          range !== null && object >= range.firstobj && object < range.firstobj + range.numslots
        ) {
          range.dnodes.set(object, {
            object,
            type: h.object_type,
            indblkshift: h.indblkshift,
            nlevels: h.nlevels,
            nblkptr: h.nblkptr,
            bonustype: h.bonustype,
            checksum: h.checksumtype,
            compress: h.compress,
            flags: h.flags,
            blksz: h.blksz,
            bonuslen: h.bonuslen,
            dnSlots: h.dn_slots,
            maxblkid: h.maxblkid,
            bonus: r.payload.slice(),
            spill: null,
            blocks: new Map(),
          });
        }
      } else if (h.type === DRR.END) {
        await this.#finishRange(crypt);
        await this.#finishObjset(crypt, at);
      }
    } catch (e) {
      if (!(e instanceof MacMismatch)) throw e;
      const where = h.type === DRR.WRITE
        ? `the block at offset ${h.offset} of object ${h.object}`
        : `the spill block of object ${(h as { object: bigint }).object}`;
      throw new StreamError(at, `${where} fails its MAC (${e.message})`);
    }
  }

  /** Checks the dnode block gathered since its OBJECT_RANGE (full substreams). */
  async #finishRange(crypt: BlockCrypt): Promise<void> {
    const range = this.#range;
    this.#range = null;
    if (range === null) return;
    const auth = await dnodeBlockAuth(range.firstobj, range.numslots, range.dnodes);
    try {
      await crypt.openDnodeBlock(range.params, auth.cipher, auth.aad);
    } catch (e) {
      if (!(e instanceof MacMismatch)) throw e;
      throw new StreamError(
        range.at,
        `the dnode block of objects ${range.firstobj}..${range.firstobj + range.numslots - 1} ` +
          `fails its MAC (${e.message})`,
      );
    }
    this.#dnodeMacs.set(range.firstobj, range.params.mac);
    this.report.dnodeBlocks++;
  }

  /** At END of a full substream: the objset MAC over the dnode blocks' MACs. */
  async #finishObjset(
    crypt: BlockCrypt,
    at: { index: number; type: number; offset: number },
  ): Promise<void> {
    const os = this.#objset;
    if (!this.#full || os === null) return;
    const perBlock = os.blksz >>> 9;
    const blocks = new Map<number, Uint8Array>();
    for (const [firstobj, mac] of this.#dnodeMacs) blocks.set(Math.floor(firstobj / perBlock), mac);
    const mac = await objsetPortableMac(
      (d) => crypt.hmacFull(d),
      os,
      this.#objsetType,
      blocks,
      this.#littleEndian,
    );
    if (mac.some((b, i) => b !== os.portableMac[i])) {
      throw new StreamError(at, "the objset MAC does not match the stream's dnode blocks");
    }
    this.report.objsets++;
  }
}
