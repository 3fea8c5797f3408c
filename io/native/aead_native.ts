/**
 * AES-GCM and AES-CCM decryption through OpenSSL's libcrypto (EVP), loaded with FFI when the
 * system has it: an {@linkcode AeadEngine} for `core/crypto`, an order of magnitude faster than
 * Web Crypto per 128 KiB block. Without `--allow-ffi`, without libcrypto, or with
 * `ZSEND_NO_NATIVE=1`, there is none and Web Crypto (and CCM in TypeScript) does the work.
 *
 * @module
 */

import type { AeadEngine, AeadMode } from "../../core/crypto/aead.ts";
import { loadNative, nativeDisabled } from "./ffi.ts";

const SYMBOLS = {
  // EVP_CIPHER_CTX *EVP_CIPHER_CTX_new(void);
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  // int EVP_CIPHER_CTX_reset(EVP_CIPHER_CTX *ctx);
  EVP_CIPHER_CTX_reset: { parameters: ["pointer"], result: "i32" },
  // const EVP_CIPHER *EVP_aes_{128,192,256}_{gcm,ccm}(void);
  EVP_aes_128_gcm: { parameters: [], result: "pointer" },
  EVP_aes_192_gcm: { parameters: [], result: "pointer" },
  EVP_aes_256_gcm: { parameters: [], result: "pointer" },
  EVP_aes_128_ccm: { parameters: [], result: "pointer" },
  EVP_aes_192_ccm: { parameters: [], result: "pointer" },
  EVP_aes_256_ccm: { parameters: [], result: "pointer" },
  // int EVP_DecryptInit_ex(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *type, ENGINE *impl,
  //                        const unsigned char *key, const unsigned char *iv);
  EVP_DecryptInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer"],
    result: "i32",
  },
  // int EVP_CIPHER_CTX_ctrl(EVP_CIPHER_CTX *ctx, int type, int arg, void *ptr);
  EVP_CIPHER_CTX_ctrl: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
  // int EVP_DecryptUpdate(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl,
  //                       const unsigned char *in, int inl);
  EVP_DecryptUpdate: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  // int EVP_DecryptFinal_ex(EVP_CIPHER_CTX *ctx, unsigned char *outm, int *outl);
  EVP_DecryptFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

const EVP_CTRL_AEAD_SET_IVLEN = 0x9;
const EVP_CTRL_AEAD_SET_TAG = 0x11;
const PATHS = ["libcrypto.so.3", "libcrypto.so", "libcrypto.dylib"];

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>;

function makeEngine(lib: Lib): AeadEngine {
  const s = lib.symbols;
  const ctx = s.EVP_CIPHER_CTX_new();
  if (ctx === null) throw new Error("EVP_CIPHER_CTX_new failed");
  const ciphers: Record<string, Deno.PointerValue> = {
    "gcm16": s.EVP_aes_128_gcm(),
    "gcm24": s.EVP_aes_192_gcm(),
    "gcm32": s.EVP_aes_256_gcm(),
    "ccm16": s.EVP_aes_128_ccm(),
    "ccm24": s.EVP_aes_192_ccm(),
    "ccm32": s.EVP_aes_256_ccm(),
  };
  const outl = new Int32Array(1);
  const u8 = new Uint8Array(outl.buffer);
  return {
    name: "libcrypto",
    open(mode: AeadMode, key, iv, cipher, mac, aad): Uint8Array | null {
      const c = ciphers[`${mode}${key.length}`];
      if (c === undefined || c === null) throw new RangeError(`no AES-${mode} for that key`);
      const tag = mac.slice(0, 16);
      const out = new Uint8Array(cipher.length + 16);
      s.EVP_CIPHER_CTX_reset(ctx);
      if (s.EVP_DecryptInit_ex(ctx, c, null, null, null) !== 1) return fail("init");
      s.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, iv.length, null);
      if (mode === "ccm") s.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, tag);
      if (s.EVP_DecryptInit_ex(ctx, null, null, key, iv) !== 1) return fail("key");
      if (mode === "ccm") s.EVP_DecryptUpdate(ctx, null, u8, null, cipher.length);
      if (aad.length > 0) s.EVP_DecryptUpdate(ctx, null, u8, aad, aad.length);
      const ok = s.EVP_DecryptUpdate(ctx, out, u8, cipher, cipher.length);
      if (mode === "ccm") return ok === 1 ? out.subarray(0, cipher.length) : null;
      if (ok !== 1) return null;
      s.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, tag);
      return s.EVP_DecryptFinal_ex(ctx, out.subarray(outl[0]!), u8) === 1
        ? out.subarray(0, cipher.length)
        : null;
    },
  };
  function fail(what: string): never {
    throw new Error(`libcrypto: EVP_DecryptInit_ex (${what}) failed`);
  }
}

let engine: AeadEngine | null | undefined;
let forced: AeadEngine | null | undefined;

function load(): AeadEngine | null {
  for (const path of PATHS) {
    try {
      return makeEngine(Deno.dlopen(path, SYMBOLS));
    } catch {
      // Not permitted, not there, or not this OpenSSL: try the next, then go without.
    }
  }
  return null;
}

/**
 * OpenSSL's AES-GCM/CCM, or null (no FFI permission, no libcrypto, or `ZSEND_NO_NATIVE=1`
 * unless `evenIfDisabled`).
 *
 * @example
 * ```ts
 * import { nativeAead } from "./aead_native.ts";
 * const e = nativeAead(); // null where libcrypto cannot be loaded
 * if (e !== null && e.name !== "libcrypto") throw new Error();
 * ```
 */
export function nativeAead(options: { evenIfDisabled?: boolean } = {}): AeadEngine | null {
  if (options.evenIfDisabled) {
    // Where nothing else can do the work (a synchronous AES-CCM): ZSEND_NO_NATIVE aside.
    if (forced === undefined) forced = engine ?? load();
    return forced;
  }
  if (engine === undefined) engine = nativeDisabled() ? null : load();
  return engine;
}

/**
 * PBKDF2-HMAC-SHA1 in the native library with the CPU's SHA extensions (a passphrase's wrapping
 * key, about twice as fast as Web Crypto's on a Xeon), for `deriveWrappingKey`: the key, or
 * null where it cannot (no native library, `ZSEND_NO_NATIVE=1`, no SHA extensions): then Web
 * Crypto derives it.
 *
 * @example
 * ```ts
 * import { nativePbkdf2Sha1 } from "./aead_native.ts";
 * const k = nativePbkdf2Sha1(new TextEncoder().encode("password"), new Uint8Array(8), 2, 32);
 * if (k !== null && k.length !== 32) throw new Error();
 * ```
 */
export function nativePbkdf2Sha1(
  pass: Uint8Array,
  salt: Uint8Array,
  iters: number,
  length: number,
): Uint8Array | null {
  const lib = nativeDisabled() ? null : loadNative();
  if (lib === null) return null;
  const out = new Uint8Array(length);
  const r = lib.symbols.zs_pbkdf2_sha1(
    pass.slice(),
    pass.length,
    salt.slice(),
    salt.length,
    iters,
    out,
    length,
  );
  return r === 0 ? out : null;
}
