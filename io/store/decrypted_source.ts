/**
 * A raw stored snapshot as a plain {@linkcode SendSource} (`send --decrypt`): objects with their
 * bonus buffers decrypted, blocks decrypted and authenticated as they are sent, every crypt
 * field (salt, IV, MAC, the dedup key of the ciphertext) cleared, as OpenZFS sends an encrypted
 * dataset without `-w`. The sender reads blocks synchronously, so the blocks are opened with a
 * synchronous AEAD: OpenSSL's libcrypto, or `node:crypto` for GCM where libcrypto is missing.
 *
 * @module
 */

import { nodeCrypto } from "../node_crypto.ts";
import type { AeadEngine } from "../../core/crypto/aead.ts";
import { isEncryptedType } from "../../core/crypto/block.ts";
import { FEATURE } from "../../core/stream/constants.ts";
import type { SendBlock, SendObject, SendSource } from "../../core/send/send.ts";
import type { DecryptedSnapshotView } from "./crypt_view.ts";
import { StoreSendSource } from "./send_source.ts";
import { decode } from "./snapshot_view.ts";
import type { SnapshotRow, Store } from "./store.ts";

const DMU_OT_SA = 44;
const ZIO_COMPRESS_OFF = 2;
const DRR_OBJECT_SPILL = 4;

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** GCM through node:crypto: for where libcrypto cannot be loaded. */
const nodeGcm: AeadEngine = {
  name: "node:crypto",
  open(mode, key, iv, cipher, mac, aad) {
    if (mode !== "gcm") throw new TypeError("AES-CCM needs OpenSSL's libcrypto here");
    const d = nodeCrypto().createDecipheriv(
      `aes-${key.length * 8}-gcm` as "aes-256-gcm",
      key,
      iv,
      { authTagLength: 16 },
    );
    d.setAuthTag(mac.subarray(0, 16));
    if (aad.length > 0) d.setAAD(aad);
    try {
      const a = d.update(cipher);
      const b = d.final();
      const out = new Uint8Array(a.length + b.length);
      out.set(a);
      out.set(b, a.length);
      return out;
    } catch {
      return null;
    }
  },
};

/** A WRITE's stored fields as a plain send carries them. */
function plainWriteMeta(m: Uint8Array): Uint8Array {
  const out = m.slice();
  out[48] = 0; // checksum type: OFF, no dedup key (it was the ciphertext's)
  out[49] = 0; // flags: no RAW_BYTESWAP, no CHECKSUM_DEDUP
  out.fill(0, 56, 96); // the dedup key
  out.fill(0, 104, 140); // salt, IV, MAC
  if (out[50] === ZIO_COMPRESS_OFF) {
    out[50] = 0;
    out.fill(0, 96, 104); // compressed_size
  }
  return out;
}

/** A SPILL's stored fields as a plain send carries them (its data decompressed). */
function plainSpillMeta(m: Uint8Array): Uint8Array {
  const out = m.slice();
  out[32] = 0;
  out[33] = 0;
  out.fill(0, 40, 88); // compressed_size, salt, IV, MAC, type
  return out;
}

/**
 * The plain send source of a raw stored snapshot that `view` (its decrypting view) opens.
 * Throws a `TypeError` when a block cannot be opened synchronously here.
 */
export async function decryptedSendSource(
  store: Store,
  row: SnapshotRow,
  view: DecryptedSnapshotView,
  engine: AeadEngine | null,
): Promise<SendSource> {
  const inner = new StoreSendSource(store, row);
  const aead = engine ?? nodeGcm;
  const mode = view.crypt.keys.suite.mode;
  const hmacKey = view.crypt.keys.hmac;
  // Every salt's block key, derived now: the sender cannot wait for Web Crypto.
  const keys = new Map<string, Uint8Array>();
  const salts = store.stmt(
    `SELECT DISTINCT substr(meta, 105, 8) AS s FROM block_map WHERE snapshot = ? AND kind = 0
     UNION SELECT DISTINCT substr(spill_meta, 49, 8) FROM objects
     WHERE snapshot = ? AND spill_meta IS NOT NULL`,
  ).all(row.id, row.id) as { s: Uint8Array }[];
  for (const { s } of salts) {
    if (s.length === 8) keys.set(hex(s), (await view.crypt.blockKey(s)).raw);
  }
  // Every bonus buffer, decrypted and authenticated (dnode block by dnode block).
  const objects: SendObject[] = [];
  const spills = new Map<number, Uint8Array>();
  for (const o of inner.objects()) {
    const info = await view.object(o.object);
    if (info === null) continue;
    const bonus = new Uint8Array((info.bonuslen + 7) & ~7);
    bonus.set(info.bonus.subarray(0, info.bonuslen));
    if (o.spill !== null) spills.set(o.spill.block, o.spill.meta);
    objects.push({
      ...o,
      bonus,
      rawBonuslen: 0,
      flags: o.flags & DRR_OBJECT_SPILL,
      spill: o.spill === null ? null : { block: o.spill.block, meta: plainSpillMeta(o.spill.meta) },
    });
  }
  const writes = new Map<number, Uint8Array>();

  const open = (
    type: number,
    m: Uint8Array,
    at: { salt: number; iv: number; mac: number },
    data: Uint8Array,
    where: string,
  ): Uint8Array => {
    const mac = m.subarray(at.mac, at.mac + 16);
    if (!isEncryptedType(type)) {
      const h = nodeCrypto().createHmac("sha512", hmacKey).update(data).digest();
      for (let i = 0; i < 16; i++) {
        if (h[i] !== mac[i]) throw new TypeError(`${where} fails its MAC (HMAC-SHA512 mismatch)`);
      }
      return data;
    }
    const key = keys.get(hex(m.subarray(at.salt, at.salt + 8)));
    if (key === undefined) throw new TypeError(`${where}: no key for its salt`);
    const out = aead.open(
      mode,
      key,
      m.subarray(at.iv, at.iv + 12),
      data,
      mac,
      new Uint8Array(0),
    );
    if (out === null) throw new TypeError(`${where} fails its MAC`);
    return out;
  };

  const source: SendSource = {
    guid: inner.guid,
    creationTime: inner.creationTime,
    objsetType: inner.objsetType,
    features: inner.features & ~BigInt(FEATURE.RAW),
    beginFlags: inner.beginFlags,
    redactSnaps: inner.redactSnaps,
    objects: () => objects,
    blocks(object: number): SendBlock[] {
      return inner.blocks(object).map((b) => {
        if (b.kind !== 0 || b.block === null) return b;
        writes.set(b.block, b.meta);
        return { ...b, meta: plainWriteMeta(b.meta) };
      });
    },
    blockData(block: number): Uint8Array {
      const stored = inner.blockData(block).slice();
      const spill = spills.get(block);
      if (spill !== undefined) {
        const v = new DataView(spill.buffer, spill.byteOffset, spill.byteLength);
        const where = `a spill block (${block})`;
        const physical = open(
          v.getUint32(84, true) || DMU_OT_SA,
          spill,
          { salt: 48, iv: 56, mac: 68 },
          stored,
          where,
        );
        return decode(spill[33]!, physical, Number(v.getBigUint64(16, true)), where);
      }
      const m = writes.get(block);
      if (m === undefined) return stored; // embedded: never encrypted
      const type = new DataView(m.buffer, m.byteOffset, m.byteLength).getUint32(16, true);
      return open(type, m, { salt: 104, iv: 112, mac: 124 }, stored, `block ${block}`);
    },
    blockHash(block: number): Uint8Array {
      return nodeCrypto().createHash("sha256").update(source.blockData(block)).digest();
    },
  };
  return source;
}
