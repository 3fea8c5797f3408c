/**
 * The two AEAD modes OpenZFS encrypts with, over Web Crypto: AES-GCM as Web Crypto has it, and
 * AES-CCM (which Web Crypto lacks) built from AES-CTR for the data and AES-CBC with a zero IV
 * for the CBC-MAC (RFC 3610). Both with OpenZFS's parameters: a 12-byte nonce and a 16-byte tag
 * (so CCM's length field L is 3 bytes, enough for 16 MiB). Also the bare CTR keystream of
 * either mode, for data whose tag cannot be checked here (the bonus buffers of a dnode block).
 *
 * @module
 */

/** `gcm` or `ccm`. */
export type AeadMode = "gcm" | "ccm";

/** Nonce (IV) length of OpenZFS's data and key encryption. */
export const IV_LEN = 12;
/** Tag (MAC) length. */
export const MAC_LEN = 16;

/** The tag does not match: wrong key, or data that is not what was encrypted. */
export class MacMismatch extends Error {
  /** @param message what failed to authenticate */
  constructor(message: string) {
    super(message);
    this.name = "MacMismatch";
  }
}

/**
 * A synchronous AEAD decryption (a native library's, e.g. OpenSSL's libcrypto through FFI):
 * the plaintext, or null when the tag does not match. `core/` never loads one; `io/` may pass
 * one in.
 */
export interface AeadEngine {
  /** What it is, for reports (`libcrypto`). */
  name: string;
  /** Decrypts `cipher` with the raw AES `key`, checking `mac` over `aad` and the data. */
  open(
    mode: AeadMode,
    key: Uint8Array,
    iv: Uint8Array,
    cipher: Uint8Array,
    mac: Uint8Array,
    aad: Uint8Array,
  ): Uint8Array | null;
}

/** An AES key ready for the calls of one mode. */
export interface AeadKey {
  mode: AeadMode;
  /** The key's bytes (for an {@linkcode AeadEngine}). */
  raw: Uint8Array;
  /** AES-GCM key (gcm), or AES-CTR key (ccm and keystreams). */
  ctr: CryptoKey;
  gcm: CryptoKey | null;
  /** AES-CBC key for CCM's CBC-MAC. */
  cbc: CryptoKey | null;
}

const subtle = globalThis.crypto.subtle;

function buf(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return (b.buffer instanceof ArrayBuffer ? b : b.slice()) as Uint8Array<ArrayBuffer>;
}

/**
 * Imports raw AES key bytes (16, 24 or 32) for `mode`.
 *
 * @example
 * ```ts
 * import { importAeadKey } from "./aead.ts";
 * const k = await importAeadKey("ccm", new Uint8Array(32));
 * if (k.cbc === null) throw new Error();
 * ```
 */
export async function importAeadKey(mode: AeadMode, raw: Uint8Array): Promise<AeadKey> {
  const bytes = buf(raw);
  const ctr = await subtle.importKey("raw", bytes, "AES-CTR", false, ["encrypt"]);
  if (mode === "gcm") {
    const gcm = await subtle.importKey("raw", bytes, "AES-GCM", false, ["decrypt", "encrypt"]);
    return { mode, raw: bytes.slice(), ctr, gcm, cbc: null };
  }
  const cbc = await subtle.importKey("raw", bytes, "AES-CBC", false, ["encrypt"]);
  return { mode, raw: bytes.slice(), ctr, gcm: null, cbc };
}

/** The counter block that encrypts the first byte of data (GCM: inc32(J0); CCM: A_1). */
function firstCounter(mode: AeadMode, iv: Uint8Array): Uint8Array<ArrayBuffer> {
  const c = new Uint8Array(16);
  if (mode === "gcm") {
    c.set(iv, 0);
    c[15] = 2;
  } else {
    c[0] = 2; // L - 1, L = 15 - 12
    c.set(iv, 1);
    c[15] = 1;
  }
  return c;
}

/**
 * `data` XOR the mode's keystream for `iv` (starting where the mode starts on data): decrypts
 * (or encrypts) without touching the tag.
 *
 * @example
 * ```ts
 * import { ctrXor, importAeadKey, sealAead } from "./aead.ts";
 * const k = await importAeadKey("gcm", new Uint8Array(32).fill(7));
 * const iv = new Uint8Array(12).fill(1);
 * const sealed = await sealAead(k, iv, new Uint8Array([1, 2, 3]));
 * const plain = await ctrXor(k, iv, sealed.subarray(0, 3));
 * if (plain[2] !== 3) throw new Error();
 * ```
 */
export async function ctrXor(key: AeadKey, iv: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  if (data.length === 0) return new Uint8Array(0);
  const out = await subtle.encrypt(
    // CCM's counter is 24 bits: Web Crypto takes 32 at least, which is the same for data below
    // 2^24 blocks (256 MiB; OpenZFS blocks are at most 16 MiB).
    { name: "AES-CTR", counter: firstCounter(key.mode, iv), length: 32 },
    key.ctr,
    buf(data),
  );
  return new Uint8Array(out);
}

/** E(K, A_0) of CCM: encrypts the tag. */
async function ccmS0(key: AeadKey, iv: Uint8Array): Promise<Uint8Array> {
  const a0 = new Uint8Array(16);
  a0[0] = 2;
  a0.set(iv, 1);
  return new Uint8Array(
    await subtle.encrypt({ name: "AES-CTR", counter: a0, length: 32 }, key.ctr, new Uint8Array(16)),
  );
}

/** CCM's CBC-MAC (T, before encryption) of `plain` with `aad`. */
async function ccmCbcMac(
  key: AeadKey,
  iv: Uint8Array,
  aad: Uint8Array,
  plain: Uint8Array,
): Promise<Uint8Array> {
  if (plain.length >= 1 << 24) throw new RangeError("CCM with a 12-byte nonce: data too long");
  if (aad.length >= 0xFF00) throw new RangeError("CCM: AAD too long");
  const aadBlock = aad.length === 0 ? 0 : Math.ceil((aad.length + 2) / 16) * 16;
  const total = 16 + aadBlock + Math.ceil(plain.length / 16) * 16;
  const b = new Uint8Array(total);
  b[0] = (aad.length > 0 ? 0x40 : 0) | (((MAC_LEN - 2) / 2) << 3) | 2;
  b.set(iv, 1);
  b[13] = (plain.length >>> 16) & 0xFF;
  b[14] = (plain.length >>> 8) & 0xFF;
  b[15] = plain.length & 0xFF;
  if (aad.length > 0) {
    b[16] = aad.length >>> 8;
    b[17] = aad.length & 0xFF;
    b.set(aad, 18);
  }
  b.set(plain, 16 + aadBlock);
  const out = new Uint8Array(
    await subtle.encrypt({ name: "AES-CBC", iv: new Uint8Array(16) }, key.cbc!, b),
  );
  // Web Crypto appends one block of PKCS#7 padding: the MAC is the block before it.
  return out.subarray(total - 16, total);
}

/**
 * Decrypts and authenticates `cipher` (without its tag) against `mac`; throws
 * {@linkcode MacMismatch} when the tag does not match.
 *
 * @example
 * ```ts
 * import { importAeadKey, openAead, sealAead } from "./aead.ts";
 * for (const mode of ["gcm", "ccm"] as const) {
 *   const k = await importAeadKey(mode, new Uint8Array(16).fill(3));
 *   const iv = new Uint8Array(12).fill(9);
 *   const aad = new Uint8Array([1, 2]);
 *   const s = await sealAead(k, iv, new Uint8Array(40).fill(5), aad);
 *   const p = await openAead(k, iv, s.subarray(0, 40), s.subarray(40), aad);
 *   if (p[39] !== 5) throw new Error();
 * }
 * ```
 */
export async function openAead(
  key: AeadKey,
  iv: Uint8Array,
  cipher: Uint8Array,
  mac: Uint8Array,
  aad: Uint8Array = new Uint8Array(0),
  engine: AeadEngine | null = null,
): Promise<Uint8Array> {
  if (engine !== null && cipher.length > 0) {
    const out = engine.open(key.mode, key.raw, iv, cipher, mac, aad);
    if (out === null) throw new MacMismatch(`AES-${key.mode.toUpperCase()} tag mismatch`);
    return out;
  }
  if (key.mode === "gcm") {
    const joined = new Uint8Array(cipher.length + MAC_LEN);
    joined.set(cipher);
    joined.set(mac.subarray(0, MAC_LEN), cipher.length);
    try {
      const out = await subtle.decrypt(
        { name: "AES-GCM", iv: buf(iv), additionalData: buf(aad), tagLength: 128 },
        key.gcm!,
        joined,
      );
      return new Uint8Array(out);
    } catch (e) {
      if (e instanceof DOMException && e.name === "OperationError") {
        throw new MacMismatch("AES-GCM tag mismatch");
      }
      throw e;
    }
  }
  const [plain, s0] = await Promise.all([ctrXor(key, iv, cipher), ccmS0(key, iv)]);
  const t = await ccmCbcMac(key, iv, aad, plain);
  let diff = 0;
  for (let i = 0; i < MAC_LEN; i++) diff |= (t[i]! ^ s0[i]!) ^ mac[i]!;
  if (diff !== 0) throw new MacMismatch("AES-CCM tag mismatch");
  return plain;
}

/**
 * Encrypts `plain`: ciphertext followed by the 16-byte tag (tests, and wrapping keys).
 *
 * @example
 * ```ts
 * import { importAeadKey, sealAead } from "./aead.ts";
 * const k = await importAeadKey("ccm", new Uint8Array(16));
 * const s = await sealAead(k, new Uint8Array(12), new Uint8Array(5));
 * if (s.length !== 21) throw new Error();
 * ```
 */
export async function sealAead(
  key: AeadKey,
  iv: Uint8Array,
  plain: Uint8Array,
  aad: Uint8Array = new Uint8Array(0),
): Promise<Uint8Array> {
  if (key.mode === "gcm") {
    const out = await subtle.encrypt(
      { name: "AES-GCM", iv: buf(iv), additionalData: buf(aad), tagLength: 128 },
      key.gcm!,
      buf(plain),
    );
    return new Uint8Array(out);
  }
  const [cipher, s0, t] = await Promise.all([
    ctrXor(key, iv, plain),
    ccmS0(key, iv),
    ccmCbcMac(key, iv, aad, plain),
  ]);
  const out = new Uint8Array(plain.length + MAC_LEN);
  out.set(cipher);
  for (let i = 0; i < MAC_LEN; i++) out[plain.length + i] = t[i]! ^ s0[i]!;
  return out;
}
