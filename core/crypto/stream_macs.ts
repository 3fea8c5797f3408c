/**
 * Checks the MACs of a raw stream's blocks with the user's key, record by record, beside the
 * structural checks of `verify`: each substream's `crypt_keydata` is unwrapped with the key
 * (a wrong key is a fault of that BEGIN), then every WRITE and SPILL payload is opened: the
 * AEAD tag of an encrypted block, the HMAC of an authenticated one. Dnode blocks (OBJECT_RANGE)
 * are counted, not checked: their MAC covers the block pointers as the pool held them, which a
 * stream does not carry.
 *
 * @module
 */

import { DRR, FEATURE, HDRTYPE } from "../constants.ts";
import { StreamError } from "../errors.ts";
import { decodeNvlist, nvlistToObject } from "../nvlist.ts";
import type { StreamRecord } from "../reader.ts";
import { featureFlags, hasFeature, hdrtype } from "../record.ts";
import { MacMismatch } from "./aead.ts";
import { BlockCrypt } from "./block.ts";
import { deriveWrappingKey, type KeyMaterial, parseCryptKeydata, unwrapKeys } from "./keys.ts";

const DMU_OT_SA = 44;

/** What {@linkcode StreamMacChecker} found. */
export interface MacReport {
  /** Raw substreams whose key the given key opened. */
  keys: number;
  /** WRITE and SPILL blocks whose MAC matched. */
  blocks: number;
  /** OBJECT_RANGE (dnode) blocks seen, whose MAC a stream cannot prove. */
  dnodeBlocks: number;
  /** Substreams that are not raw (nothing to check). */
  plain: number;
}

/** Checks block MACs record by record; call {@linkcode check} on every record in order. */
export class StreamMacChecker {
  #material: KeyMaterial;
  #wrapping = new Map<string, Promise<Uint8Array>>();
  #crypt: BlockCrypt | null = null;
  readonly report: MacReport = { keys: 0, blocks: 0, dnodeBlocks: 0, plain: 0 };

  /** @param material the user's key or passphrase */
  constructor(material: KeyMaterial) {
    this.#material = material;
  }

  /** Checks one record; throws {@linkcode StreamError} for a wrong key or a bad MAC. */
  async check(r: StreamRecord): Promise<void> {
    const h = r.header;
    const at = { index: r.index, type: h.type, offset: r.offset };
    if (h.type === DRR.BEGIN) {
      if (hdrtype(h.versioninfo) === HDRTYPE.COMPOUNDSTREAM) return;
      this.#crypt = null;
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
        this.#crypt = new BlockCrypt(await unwrapKeys(kd, await w));
      } catch (e) {
        throw new StreamError(at, `${h.toname}: ${(e as Error).message}`);
      }
      this.report.keys++;
      return;
    }
    const crypt = this.#crypt;
    if (crypt === null) return;
    try {
      if (h.type === DRR.WRITE) {
        await crypt.openBlock(h.object_type, h, r.payload);
        this.report.blocks++;
      } else if (h.type === DRR.SPILL && r.payload.length > 0) {
        await crypt.openBlock(h.object_type || DMU_OT_SA, h, r.payload);
        this.report.blocks++;
      } else if (h.type === DRR.OBJECT_RANGE) {
        this.report.dnodeBlocks++;
      }
    } catch (e) {
      if (!(e instanceof MacMismatch)) throw e;
      const where = h.type === DRR.WRITE
        ? `the block at offset ${h.offset} of object ${h.object}`
        : `the spill block of object ${(h as { object: bigint }).object}`;
      throw new StreamError(at, `${where} fails its MAC (${e.message})`);
    }
  }
}
