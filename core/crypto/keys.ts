/**
 * The key of an encrypted dataset as a raw send carries it: BEGIN's `crypt_keydata` nvlist
 * (`dsl_crypto_populate_key_nvlist` of OpenZFS): the suite, the key's guid and version, the
 * master and HMAC keys wrapped (AES-GCM or AES-CCM with a 32-byte wrapping key, the guid, suite
 * and version as additional data), and how the wrapping key is made from what the user holds
 * (`keyformat`: raw or hex key, or a passphrase through PBKDF2-HMAC-SHA1 with `pbkdf2salt` and
 * `pbkdf2iters`, as libzfs derives it).
 *
 * @module
 */

import type { NvObject } from "../stream/nvlist.ts";
import { type AeadMode, importAeadKey, MAC_LEN, MacMismatch, openAead } from "./aead.ts";

/** `keyformat`: ZFS_KEYFORMAT_*. */
export const KEYFORMAT = { NONE: 0, RAW: 1, HEX: 2, PASSPHRASE: 3 } as const;

/** One encryption suite (`zio_crypt_table`). */
export interface Suite {
  /** `aes-256-gcm`, as `zfs get encryption` says it. */
  name: string;
  mode: AeadMode;
  /** Master key length in bytes. */
  keyLen: number;
}

/** Suites by `enum zio_encrypt` value. */
export const SUITES: Record<number, Suite> = {
  3: { name: "aes-128-ccm", mode: "ccm", keyLen: 16 },
  4: { name: "aes-192-ccm", mode: "ccm", keyLen: 24 },
  5: { name: "aes-256-ccm", mode: "ccm", keyLen: 32 },
  6: { name: "aes-128-gcm", mode: "gcm", keyLen: 16 },
  7: { name: "aes-192-gcm", mode: "gcm", keyLen: 24 },
  8: { name: "aes-256-gcm", mode: "gcm", keyLen: 32 },
};

/** Length of the wrapping key (`WRAPPING_KEY_LEN`), whatever the suite. */
export const WRAPPING_KEY_LEN = 32;
/** Length of the HMAC key (`SHA512_HMAC_KEYLEN`). */
export const HMAC_KEY_LEN = 64;

/** The fields of `crypt_keydata`. */
export interface CryptKeydata {
  suite: number;
  guid: bigint;
  version: bigint;
  masterWrapped: Uint8Array;
  hmacWrapped: Uint8Array;
  iv: Uint8Array;
  mac: Uint8Array;
  keyformat: number;
  salt: bigint;
  iters: number;
}

function field(o: NvObject, name: string): NonNullable<NvObject[string]> {
  const v = o[name];
  if (v === undefined) throw new TypeError(`crypt_keydata has no ${name}`);
  return v;
}

function u64(o: NvObject, name: string, fallback?: bigint): bigint {
  const v = o[name];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v === "bigint") return v;
  if (typeof v === "number") return BigInt(v);
  throw new TypeError(`crypt_keydata: ${name} is not an integer`);
}

function bytes(o: NvObject, name: string, length: number, max = length): Uint8Array {
  const v = field(o, name);
  if (!(v instanceof Uint8Array) || v.length < length || v.length > max) {
    throw new TypeError(`crypt_keydata: ${name} is not ${length} bytes`);
  }
  return v.subarray(0, length);
}

/**
 * The `crypt_keydata` of a raw stream's BEGIN nvlist (the nvlist as an object), or null when
 * it has none.
 *
 * @example
 * ```ts
 * import { parseCryptKeydata } from "./keys.ts";
 * if (parseCryptKeydata({}) !== null) throw new Error();
 * ```
 */
export function parseCryptKeydata(begin: NvObject): CryptKeydata | null {
  const kd = begin["crypt_keydata"];
  if (kd === undefined) return null;
  if (typeof kd !== "object" || kd instanceof Uint8Array || Array.isArray(kd)) {
    throw new TypeError("crypt_keydata is not an nvlist");
  }
  const o = kd as NvObject;
  const suiteNo = Number(u64(o, "DSL_CRYPTO_SUITE"));
  const suite = SUITES[suiteNo];
  if (suite === undefined) throw new TypeError(`crypt_keydata: unknown suite ${suiteNo}`);
  const version = u64(o, "DSL_CRYPTO_VERSION", 0n);
  if (version > 1n) throw new TypeError(`crypt_keydata: unknown key version ${version}`);
  return {
    suite: suiteNo,
    guid: u64(o, "DSL_CRYPTO_GUID"),
    version,
    // The array is MASTER_KEY_MAX_LEN (32) bytes whatever the suite; the key is its start.
    masterWrapped: bytes(o, "DSL_CRYPTO_MASTER_KEY_1", suite.keyLen, 32),
    hmacWrapped: bytes(o, "DSL_CRYPTO_HMAC_KEY_1", HMAC_KEY_LEN),
    iv: bytes(o, "DSL_CRYPTO_IV", 12),
    mac: bytes(o, "DSL_CRYPTO_MAC", MAC_LEN),
    keyformat: Number(u64(o, "keyformat", 0n)),
    salt: u64(o, "pbkdf2salt", 0n),
    iters: Number(u64(o, "pbkdf2iters", 0n)),
  };
}

/** What the user gives: the key file's bytes, or a passphrase. */
export type KeyMaterial = { kind: "key"; bytes: Uint8Array } | {
  kind: "passphrase";
  text: string;
};

/** The name of a key format, as `zfs get keyformat` says it. */
export function keyformatName(f: number): string {
  return ["none", "raw", "hex", "passphrase"][f] ?? `unknown (${f})`;
}

/**
 * The wrapping key from what the user gives, as libzfs derives it for the dataset's key
 * format: a raw key is its 32 bytes, a hex key 64 hex digits, a passphrase goes through
 * PBKDF2-HMAC-SHA1 with the dataset's salt (as 8 little-endian bytes) and iterations.
 *
 * @example
 * ```ts
 * import { deriveWrappingKey } from "./keys.ts";
 * const k = await deriveWrappingKey(
 *   { kind: "key", bytes: new TextEncoder().encode("ab".repeat(32)) },
 *   { keyformat: 2, salt: 0n, iters: 0 },
 * );
 * if (k.length !== 32 || k[0] !== 0xab) throw new Error();
 * ```
 */
export async function deriveWrappingKey(
  material: KeyMaterial,
  kd: Pick<CryptKeydata, "keyformat" | "salt" | "iters">,
  pbkdf2: Pbkdf2Sha1 | null = null,
): Promise<Uint8Array> {
  switch (kd.keyformat) {
    case KEYFORMAT.RAW: {
      if (material.kind !== "key") {
        throw new TypeError("the dataset's keyformat is raw: give --key-file, not a passphrase");
      }
      if (material.bytes.length !== WRAPPING_KEY_LEN) {
        throw new TypeError(
          `a raw key is ${WRAPPING_KEY_LEN} bytes; the key file has ${material.bytes.length}`,
        );
      }
      return material.bytes;
    }
    case KEYFORMAT.HEX: {
      if (material.kind !== "key") {
        throw new TypeError("the dataset's keyformat is hex: give --key-file, not a passphrase");
      }
      const text = new TextDecoder().decode(material.bytes).replace(/\n$/, "");
      if (!/^[0-9a-fA-F]{64}$/.test(text)) {
        throw new TypeError(
          "a hex key is 64 hexadecimal digits; the key file holds something else",
        );
      }
      const out = new Uint8Array(WRAPPING_KEY_LEN);
      for (let i = 0; i < WRAPPING_KEY_LEN; i++) {
        out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
      }
      return out;
    }
    case KEYFORMAT.PASSPHRASE: {
      const text = material.kind === "passphrase"
        ? material.text
        : new TextDecoder().decode(material.bytes).replace(/\n$/, "");
      const pass = new TextEncoder().encode(text);
      if (pass.length < 8 || pass.length > 512) {
        throw new TypeError("a passphrase is 8 to 512 bytes long");
      }
      if (kd.iters <= 0) throw new TypeError("crypt_keydata has no pbkdf2iters");
      const salt = new Uint8Array(8);
      new DataView(salt.buffer).setBigUint64(0, kd.salt, true);
      const fast = pbkdf2?.(pass, salt, kd.iters, WRAPPING_KEY_LEN) ?? null;
      if (fast !== null) return fast;
      const base = await crypto.subtle.importKey("raw", pass, "PBKDF2", false, ["deriveBits"]);
      const bits = await crypto.subtle.deriveBits(
        { name: "PBKDF2", hash: "SHA-1", salt, iterations: kd.iters },
        base,
        WRAPPING_KEY_LEN * 8,
      );
      return new Uint8Array(bits);
    }
    default:
      throw new TypeError(`the dataset's keyformat is ${keyformatName(kd.keyformat)}`);
  }
}

/**
 * A PBKDF2-HMAC-SHA1 (a native library's) that {@linkcode deriveWrappingKey} may use instead
 * of Web Crypto's: the `length`-byte key, or null when it cannot (then Web Crypto does it).
 */
export type Pbkdf2Sha1 = (
  pass: Uint8Array,
  salt: Uint8Array,
  iters: number,
  length: number,
) => Uint8Array | null;

/** The unwrapped keys of a dataset. */
export interface DatasetKeys {
  suite: Suite;
  suiteNo: number;
  guid: bigint;
  version: bigint;
  /** The master key: each block's key is derived from it with the block's salt. */
  master: Uint8Array;
  /** The HMAC-SHA512 key (MACs of blocks that are authenticated, not encrypted). */
  hmac: Uint8Array;
}

/** The key given does not open the dataset's key. */
export class WrongKey extends TypeError {
  /** @param message what was refused */
  constructor(message: string) {
    super(message);
    this.name = "WrongKey";
  }
}

/**
 * Unwraps the master and HMAC keys with the wrapping key (`zio_crypt_key_unwrap`): the suite's
 * mode with the 32-byte wrapping key, the additional data the guid (version 0) or the guid,
 * suite and version (version 1), each as a little-endian u64. Throws {@linkcode WrongKey} when
 * the tag does not match: the key or passphrase is wrong.
 *
 * @example
 * ```ts
 * import { unwrapKeys, WrongKey } from "./keys.ts";
 * const kd = { suite: 8, guid: 1n, version: 1n, masterWrapped: new Uint8Array(32),
 *   hmacWrapped: new Uint8Array(64), iv: new Uint8Array(12), mac: new Uint8Array(16),
 *   keyformat: 1, salt: 0n, iters: 0 };
 * let refused = false;
 * try { await unwrapKeys(kd, new Uint8Array(32)); } catch (e) { refused = e instanceof WrongKey; }
 * if (!refused) throw new Error();
 * ```
 */
export async function unwrapKeys(kd: CryptKeydata, wrappingKey: Uint8Array): Promise<DatasetKeys> {
  const suite = SUITES[kd.suite]!;
  const key = await importAeadKey(suite.mode, wrappingKey);
  const aad = new Uint8Array(kd.version === 0n ? 8 : 24);
  const v = new DataView(aad.buffer);
  v.setBigUint64(0, kd.guid, true);
  if (kd.version !== 0n) {
    v.setBigUint64(8, BigInt(kd.suite), true);
    v.setBigUint64(16, kd.version, true);
  }
  const cipher = new Uint8Array(suite.keyLen + HMAC_KEY_LEN);
  cipher.set(kd.masterWrapped);
  cipher.set(kd.hmacWrapped, suite.keyLen);
  let plain: Uint8Array;
  try {
    plain = await openAead(key, kd.iv, cipher, kd.mac, aad);
  } catch (e) {
    if (!(e instanceof MacMismatch)) throw e;
    throw new WrongKey(
      `the ${keyformatName(kd.keyformat) === "passphrase" ? "passphrase" : "key"} is wrong: ` +
        `it does not unwrap the dataset's key (guid ${kd.guid.toString(16)}, ${suite.name})`,
    );
  }
  return {
    suite,
    suiteNo: kd.suite,
    guid: kd.guid,
    version: kd.version,
    master: plain.slice(0, suite.keyLen),
    hmac: plain.slice(suite.keyLen),
  };
}

/**
 * {@linkcode deriveWrappingKey} then {@linkcode unwrapKeys}.
 *
 * @example
 * ```ts
 * import { openKeys } from "./keys.ts";
 * const kd = { suite: 8, guid: 1n, version: 1n, masterWrapped: new Uint8Array(32),
 *   hmacWrapped: new Uint8Array(64), iv: new Uint8Array(12), mac: new Uint8Array(16),
 *   keyformat: 3, salt: 1n, iters: 1 };
 * const ok = await openKeys(kd, { kind: "passphrase", text: "12345678" }).then(() => true, () => false);
 * if (ok) throw new Error();
 * ```
 */
export async function openKeys(
  kd: CryptKeydata,
  material: KeyMaterial,
  pbkdf2: Pbkdf2Sha1 | null = null,
): Promise<DatasetKeys> {
  return await unwrapKeys(kd, await deriveWrappingKey(material, kd, pbkdf2));
}
