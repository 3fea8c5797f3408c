/**
 * core/crypto against outside references: AES-CCM against Python's `cryptography` (AESCCM,
 * 16-byte tag), PBKDF2-HMAC-SHA1 and HKDF-SHA512 against Python's hashlib / cryptography, and
 * the key unwrap and block open round trips with their refusals.
 */

import { assertEquals, assertRejects } from "@std/assert";
import { importAeadKey, MacMismatch, openAead, sealAead } from "../core/crypto/aead.ts";
import { BlockCrypt, isEncryptedType } from "../core/crypto/block.ts";
import { deriveWrappingKey, KEYFORMAT, unwrapKeys, WrongKey } from "../core/crypto/keys.ts";
import { nativeAead } from "../io/native/aead_native.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string) => new Uint8Array(s.match(/../g)!.map((x) => parseInt(x, 16)));

Deno.test("sealAead() ccm equals Python cryptography's AESCCM", async () => {
  const k1 = await importAeadKey("ccm", new Uint8Array(32).fill(7));
  const s1 = await sealAead(
    k1,
    new Uint8Array(12).fill(1),
    new Uint8Array(40).fill(5),
    unhex("010203"),
  );
  assertEquals(
    hex(s1),
    "ccee69e8a7045b315d3787cf491c9cbcf1276e643c3d56bf90402c638c86eb36e883ff1d3ad9a2ae" +
      "a8537466b0a9f98455de1fe41b27be13",
  );
  const k2 = await importAeadKey("ccm", new Uint8Array(16).fill(3));
  const s2 = await sealAead(
    k2,
    new Uint8Array(12).fill(9),
    Uint8Array.from({ length: 33 }, (_, i) => i),
  );
  assertEquals(
    hex(s2),
    "4fcd6d4fcfd62bb549e08ff940299849575b4d1541422a84faf49e2441b7821ba00355cb5a87eaed56" +
      "77a984c389841c68",
  );
});

Deno.test("openAead() refuses every flipped bit of cipher, tag and AAD", async () => {
  for (const mode of ["gcm", "ccm"] as const) {
    const k = await importAeadKey(mode, new Uint8Array(32).fill(1));
    const iv = new Uint8Array(12).fill(2);
    const aad = unhex("0a0b0c");
    const s = await sealAead(k, iv, new Uint8Array(20).fill(0x55), aad);
    assertEquals(
      hex(await openAead(k, iv, s.subarray(0, 20), s.subarray(20), aad)),
      "55".repeat(20),
    );
    for (let bit = 0; bit < s.length * 8; bit += 7) {
      const bad = s.slice();
      bad[bit >> 3]! ^= 1 << (bit & 7);
      await assertRejects(
        () => openAead(k, iv, bad.subarray(0, 20), bad.subarray(20), aad),
        MacMismatch,
      );
    }
    await assertRejects(
      () => openAead(k, iv, s.subarray(0, 20), s.subarray(20), unhex("0a0b0d")),
      MacMismatch,
    );
  }
});

Deno.test("deriveWrappingKey() passphrase is PBKDF2-HMAC-SHA1 with the salt as LE u64", async () => {
  const k = await deriveWrappingKey(
    { kind: "passphrase", text: "correct horse battery" },
    { keyformat: KEYFORMAT.PASSPHRASE, salt: 0x6a73cdea7d3d8546n, iters: 1000 },
  );
  assertEquals(hex(k), "2536603ceec19725d8230104f84f1daeacfdc34d4e3ccc38a29abbe132302a8a");
  await assertRejects(
    () =>
      deriveWrappingKey({ kind: "key", bytes: new Uint8Array(31) }, {
        keyformat: KEYFORMAT.RAW,
        salt: 0n,
        iters: 0,
      }),
    TypeError,
    "32 bytes",
  );
  await assertRejects(
    () =>
      deriveWrappingKey({ kind: "key", bytes: new TextEncoder().encode("xy".repeat(32)) }, {
        keyformat: KEYFORMAT.HEX,
        salt: 0n,
        iters: 0,
      }),
    TypeError,
    "hexadecimal",
  );
});

Deno.test("unwrapKeys() opens what was wrapped with the guid, suite and version, else WrongKey", async () => {
  for (const [suite, mode, len] of [[8, "gcm", 32], [3, "ccm", 16]] as const) {
    const wrapping = new Uint8Array(32).fill(0x42);
    const master = Uint8Array.from({ length: len }, (_, i) => i);
    const hmac = Uint8Array.from({ length: 64 }, (_, i) => 255 - i);
    const aad = new Uint8Array(24);
    const v = new DataView(aad.buffer);
    v.setBigUint64(0, 0x1234n, true);
    v.setBigUint64(8, BigInt(suite), true);
    v.setBigUint64(16, 1n, true);
    const iv = new Uint8Array(12).fill(6);
    const plain = new Uint8Array(len + 64);
    plain.set(master);
    plain.set(hmac, len);
    const sealed = await sealAead(await importAeadKey(mode, wrapping), iv, plain, aad);
    const kd = {
      suite,
      guid: 0x1234n,
      version: 1n,
      masterWrapped: sealed.subarray(0, len),
      hmacWrapped: sealed.subarray(len, len + 64),
      iv,
      mac: sealed.subarray(len + 64),
      keyformat: KEYFORMAT.RAW,
      salt: 0n,
      iters: 0,
    };
    const keys = await unwrapKeys(kd, wrapping);
    assertEquals(hex(keys.master), hex(master));
    assertEquals(hex(keys.hmac), hex(hmac));
    await assertRejects(() => unwrapKeys(kd, new Uint8Array(32)), WrongKey, "key is wrong");
    await assertRejects(() => unwrapKeys({ ...kd, guid: 0x1235n }, wrapping), WrongKey);
  }
});

Deno.test("BlockCrypt.blockKey() is HKDF-SHA512 of the master key with the salt as info", async () => {
  const keys = {
    suite: { name: "aes-256-gcm", mode: "gcm" as const, keyLen: 32 },
    suiteNo: 8,
    guid: 1n,
    version: 1n,
    master: Uint8Array.from({ length: 32 }, (_, i) => i),
    hmac: new Uint8Array(64),
  };
  const bc = new BlockCrypt(keys);
  // The derived key, from Python's cryptography HKDF(SHA512, salt=None, info=salt).
  const derived = unhex("6560bf6b99dd63caf03e138a300c4ca0095915b2c6b76e7186d889f0c1422989");
  const salt = unhex("cedcb1ef3d496c2a");
  const iv = new Uint8Array(12).fill(3);
  const sealed = await sealAead(
    await importAeadKey("gcm", derived),
    iv,
    new Uint8Array(64).fill(9),
  );
  const params = { salt, iv, mac: sealed.subarray(64) };
  assertEquals(hex(await bc.openBlock(19, params, sealed.subarray(0, 64))), "09".repeat(64));
  const bad = sealed.slice(0, 64);
  bad[10]! ^= 4;
  await assertRejects(() => bc.openBlock(19, params, bad), MacMismatch);
  // A type that is only authenticated: HMAC-SHA512 truncated to 16 bytes.
  const data = new Uint8Array(32).fill(1);
  const mac = await bc.hmac(data);
  assertEquals(await bc.openBlock(21, { salt, iv, mac }, data), data);
  await assertRejects(() => bc.openBlock(21, { salt, iv, mac }, new Uint8Array(32)), MacMismatch);
  assertEquals([19, 20, 44, 21, 17].map(isEncryptedType), [true, true, true, false, false]);
});

Deno.test("nativeAead() (libcrypto, where the system has it) opens what Web Crypto seals", async () => {
  const e = nativeAead();
  if (e === null) return; // no libcrypto here: Web Crypto does the work
  for (const mode of ["gcm", "ccm"] as const) {
    for (const len of [16, 24, 32]) {
      const k = await importAeadKey(mode, Uint8Array.from({ length: len }, (_, i) => i * 3));
      const iv = new Uint8Array(12).fill(len);
      for (const aad of [new Uint8Array(0), unhex("0102030405")]) {
        for (const n of [1, 16, 33, 4096]) {
          const plain = Uint8Array.from({ length: n }, (_, i) => i * 31);
          const s = await sealAead(k, iv, plain, aad);
          const p = await openAead(k, iv, s.subarray(0, n), s.subarray(n), aad, e);
          assertEquals(hex(p), hex(plain), `${mode} ${len} ${n}`);
          const bad = s.slice();
          bad[n >> 1]! ^= 0x40;
          await assertRejects(
            () => openAead(k, iv, bad.subarray(0, n), bad.subarray(n), aad, e),
            MacMismatch,
          );
        }
      }
    }
  }
});
