/**
 * Opening the blocks of an encrypted dataset with its unwrapped keys, as OpenZFS's
 * `zio_do_crypt_data` does: each block's AES key is HKDF-SHA512 of the master key with the
 * block's 8-byte salt as the info (no HKDF salt); the block's 12-byte IV and 16-byte MAC come
 * from its block pointer (in a raw stream: the WRITE, SPILL or OBJECT_RANGE record). Data of an
 * encrypted object type is the AEAD of the whole physical (compressed) block, with no additional
 * data; data of other types (the ZPL master node, for one) is not encrypted, only authenticated:
 * its MAC is HMAC-SHA512 of the physical block with the HMAC key, truncated to 16 bytes.
 *
 * @module
 */

import {
  type AeadEngine,
  type AeadKey,
  ctrXor,
  importAeadKey,
  MAC_LEN,
  MacMismatch,
  openAead,
} from "./aead.ts";
import type { DatasetKeys } from "./keys.ts";

/** `ot_encrypt` of `dmu_ot[]`, by object type below DMU_OT_NUMTYPES. */
const ENCRYPTED_TYPES = new Set([
  9,
  10,
  18,
  19,
  20,
  22,
  23,
  25,
  26,
  33,
  34,
  35,
  38,
  39,
  44,
  45,
  46,
  47,
  50,
]);

/**
 * Whether blocks (or bonus buffers) of this object type are encrypted (`DMU_OT_IS_ENCRYPTED`);
 * the others are only authenticated.
 *
 * @example
 * ```ts
 * import { isEncryptedType } from "./block.ts";
 * if (!isEncryptedType(19) || isEncryptedType(21) || !isEncryptedType(0x80 | 0x20)) throw new Error();
 * ```
 */
export function isEncryptedType(ot: number): boolean {
  if ((ot & 0x80) !== 0) return (ot & 0x20) !== 0;
  return ENCRYPTED_TYPES.has(ot);
}

/** A block's crypt parameters from its record. */
export interface BlockParams {
  salt: Uint8Array;
  iv: Uint8Array;
  mac: Uint8Array;
}

/** Opens the blocks of one dataset: keeps the per-salt keys it derives. */
export class BlockCrypt {
  readonly keys: DatasetKeys;
  #hkdf: Promise<CryptoKey>;
  #hmac: Promise<CryptoKey>;
  #bySalt = new Map<string, Promise<AeadKey>>();
  #engine: AeadEngine | null;

  /**
   * @param keys the dataset's unwrapped keys
   * @param engine a native AEAD to decrypt with (else Web Crypto, and CCM in TypeScript)
   */
  constructor(keys: DatasetKeys, engine: AeadEngine | null = null) {
    this.keys = keys;
    this.#engine = engine;
    this.#hkdf = crypto.subtle.importKey("raw", keys.master.slice(), "HKDF", false, [
      "deriveBits",
    ]);
    this.#hmac = crypto.subtle.importKey(
      "raw",
      keys.hmac.slice(),
      { name: "HMAC", hash: "SHA-512" },
      false,
      ["sign"],
    );
  }

  /** The AES key of blocks written with `salt` (`hkdf_sha512(master, salt as info)`). */
  blockKey(salt: Uint8Array): Promise<AeadKey> {
    const id = Array.from(salt, (b) => b.toString(16).padStart(2, "0")).join("");
    let k = this.#bySalt.get(id);
    if (k === undefined) {
      k = (async () => {
        const bits = await crypto.subtle.deriveBits(
          { name: "HKDF", hash: "SHA-512", salt: new Uint8Array(0), info: salt.slice() },
          await this.#hkdf,
          this.keys.suite.keyLen * 8,
        );
        return await importAeadKey(this.keys.suite.mode, new Uint8Array(bits));
      })();
      if (this.#bySalt.size > 256) this.#bySalt.clear();
      this.#bySalt.set(id, k);
    }
    return k;
  }

  /** HMAC-SHA512 of `data` with the HMAC key, truncated to the MAC length. */
  async hmac(data: Uint8Array): Promise<Uint8Array> {
    return (await this.hmacFull(data)).subarray(0, MAC_LEN);
  }

  /** HMAC-SHA512 of `data` with the HMAC key, all 64 bytes. */
  async hmacFull(data: Uint8Array): Promise<Uint8Array> {
    const d = data.buffer instanceof ArrayBuffer ? data as Uint8Array<ArrayBuffer> : data.slice();
    return new Uint8Array(await crypto.subtle.sign("HMAC", await this.#hmac, d));
  }

  /**
   * The physical (still compressed) bytes of a data or spill block of object type `type`:
   * decrypted and authenticated, or (types that are not encrypted) authenticated. Throws
   * {@linkcode MacMismatch} when the MAC does not match.
   */
  async openBlock(type: number, p: BlockParams, payload: Uint8Array): Promise<Uint8Array> {
    if (isEncryptedType(type)) {
      return await openAead(
        await this.blockKey(p.salt),
        p.iv,
        payload,
        p.mac,
        new Uint8Array(0),
        this.#engine,
      );
    }
    const mac = await this.hmac(payload);
    let diff = 0;
    for (let i = 0; i < MAC_LEN; i++) diff |= mac[i]! ^ p.mac[i]!;
    if (diff !== 0) throw new MacMismatch("HMAC-SHA512 mismatch");
    return payload;
  }

  /**
   * The encrypted parts of a dnode block (see {@linkcode dnodeBonuses}) decrypted and
   * authenticated with the rest of the block as additional data (`dnode_mac.ts` rebuilds it).
   * Throws {@linkcode MacMismatch} when the MAC does not match.
   */
  async openDnodeBlock(p: BlockParams, cipher: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    return await openAead(await this.blockKey(p.salt), p.iv, cipher, p.mac, aad, this.#engine);
  }

  /**
   * The encrypted parts of a dnode block (the bonus buffers of encrypted bonus types, each
   * `DN_MAX_BONUS_LEN` bytes, in dnode order, concatenated) decrypted with the block's
   * parameters. The tag covers the dnodes' cores and block pointers as the pool holds them,
   * which a stream does not carry: this decrypts without authenticating.
   */
  async dnodeBonuses(p: BlockParams, concatenated: Uint8Array): Promise<Uint8Array> {
    return await ctrXor(await this.blockKey(p.salt), p.iv, concatenated);
  }
}
