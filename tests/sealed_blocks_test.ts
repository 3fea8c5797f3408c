/**
 * The native library's `zs_open_blocks` (`Device.openSealedAsync`): sealed blocks read from a
 * pack, opened with AES-GCM or AES-CCM and written where they go; all-zero plaintext left a
 * hole, the last block cut at `keep`, a block whose tag fails named by its index and not
 * written. Checked against Web Crypto's sealing (CCM: the TypeScript CCM over Web Crypto).
 *
 * @module
 */

import { assert, assertEquals } from "@std/assert";
import { importAeadKey, sealAead } from "../core/crypto/aead.ts";
import { nativePbkdf2Sha1 } from "../io/native/aead_native.ts";
import {
  Device,
  SEALED_DESC_BYTES,
  sealedBlocksOpenable,
  sealedDescriptor,
} from "../io/native/device.ts";

const BLOCK = 16384;

function bytes(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

for (const [mode, keyLen] of [["gcm", 32], ["gcm", 16], ["ccm", 16], ["ccm", 32]] as const) {
  Deno.test({
    name: `zs_open_blocks: AES-${mode.toUpperCase()}-${keyLen * 8} blocks opened into place`,
    ignore: !sealedBlocksOpenable(),
    fn: async () => {
      const dir = await Deno.makeTempDir();
      try {
        // Four blocks: random, all zeros, random (bad tag in the second round), a short last.
        const plains = [bytes(BLOCK, 1), new Uint8Array(BLOCK), bytes(BLOCK, 3), bytes(BLOCK, 4)];
        const keep = [BLOCK, BLOCK, BLOCK, 5000];
        const blocks: {
          srcOffset: number;
          length: number;
          key: Uint8Array;
          iv: Uint8Array;
          mac: Uint8Array;
        }[] = [];
        const pack: Uint8Array[] = [new Uint8Array(100)]; // blocks start off a page boundary
        let at = 100;
        for (const [i, plain] of plains.entries()) {
          const raw = bytes(keyLen, 100 + i);
          const iv = bytes(12, 200 + i);
          const sealed = await sealAead(await importAeadKey(mode, raw), iv, plain);
          const cipher = sealed.subarray(0, plain.length);
          blocks.push({
            srcOffset: at,
            length: plain.length,
            key: raw,
            iv,
            mac: sealed.slice(-16),
          });
          pack.push(cipher);
          at += cipher.length;
        }
        await Deno.writeFile(`${dir}/pack`, new Uint8Array(pack.flatMap((p) => [...p])));
        const layout = (macs: Uint8Array[]) => {
          const desc = new Uint8Array(blocks.length * SEALED_DESC_BYTES);
          blocks.forEach((b, i) =>
            sealedDescriptor(desc, i, { ...b, mac: macs[i]!, offset: i * BLOCK, keep: keep[i]! })
          );
          return desc;
        };
        using src = Device.open(`${dir}/pack`);
        {
          using out = Device.open(`${dir}/out`, { write: true, createNew: true });
          assert(out.canOpenSealed(src));
          const bad = await out.openSealedAsync(
            src,
            layout(blocks.map((b) => b.mac)),
            blocks.length,
            mode === "gcm" ? 0 : 1,
            keyLen,
          );
          assertEquals(bad, -1);
          out.truncate(3 * BLOCK + 5000);
        }
        const got = await Deno.readFile(`${dir}/out`);
        const want = new Uint8Array(3 * BLOCK + 5000);
        plains.forEach((p, i) => want.set(p.subarray(0, keep[i]), i * BLOCK));
        assertEquals(got, want);
        // The all-zero block was left a hole (where the filesystem keeps holes).
        const st = await Deno.stat(`${dir}/out`);
        assert(st.blocks === null || st.blocks * 512 <= 3 * BLOCK + 8192);

        // A flipped tag bit in block 2: blocks 0 and 1 written, nothing of 2 or 3.
        const macs = blocks.map((b) => b.mac.slice());
        macs[2]![5]! ^= 1;
        {
          using out = Device.open(`${dir}/out2`, { write: true, createNew: true });
          const bad = await out.openSealedAsync(
            src,
            layout(macs),
            blocks.length,
            mode === "gcm" ? 0 : 1,
            keyLen,
          );
          assertEquals(bad, 2);
        }
        const part = await Deno.readFile(`${dir}/out2`);
        assertEquals(part, plains[0]!);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test("nativePbkdf2Sha1 (SHA extensions) equals Web Crypto's PBKDF2-HMAC-SHA1", async () => {
  const cases: [string, number, number, number][] = [
    ["zsend-corpus-passphrase", 350000, 32, 8],
    ["password", 1, 20, 8],
    ["x".repeat(100), 3, 45, 8],
    ["abcdefgh".repeat(8), 1000, 32, 8],
    ["p".repeat(512), 7, 32, 0],
    ["eightchr", 2, 64, 100],
    ["y".repeat(55), 5, 21, 60],
  ];
  for (const [text, iters, len, saltLen] of cases) {
    const pass = new TextEncoder().encode(text);
    const salt = bytes(saltLen, iters + len);
    const got = nativePbkdf2Sha1(pass, salt, iters, len);
    if (got === null) return; // no native library or no SHA extensions here: Web Crypto is used
    const base = await crypto.subtle.importKey("raw", pass, "PBKDF2", false, ["deriveBits"]);
    const want = new Uint8Array(
      await crypto.subtle.deriveBits(
        { name: "PBKDF2", hash: "SHA-1", salt, iterations: iters },
        base,
        len * 8,
      ),
    );
    assertEquals(got, want, `${text.length}-byte passphrase, ${iters} iterations, ${len} bytes`);
  }
});

Deno.test({
  name: "zs_open_blocks: a batch over several map windows, with a gap and blocks out of order",
  ignore: !sealedBlocksOpenable(),
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      // 40 blocks of 128 KiB (5 MiB: more than one window of the pack is mapped at a time);
      // a 300 KiB gap in the pack after block 10, blocks 20..24 stored in reverse order.
      const size = 128 << 10;
      const n = 40;
      const raw = bytes(32, 7);
      const key = await importAeadKey("gcm", raw);
      const order = [...Array(n).keys()];
      order.splice(20, 5, 24, 23, 22, 21, 20);
      const plains: Uint8Array[] = [];
      const blocks: { srcOffset: number; iv: Uint8Array; mac: Uint8Array }[] = [];
      const pack: Uint8Array[] = [];
      let at = 0;
      for (let i = 0; i < n; i++) plains.push(bytes(size, 1000 + i));
      for (const i of order) {
        if (i === 11) {
          pack.push(new Uint8Array(300 << 10));
          at += 300 << 10;
        }
        const iv = bytes(12, 2000 + i);
        const sealed = await sealAead(key, iv, plains[i]! as Uint8Array<ArrayBuffer>);
        blocks[i] = { srcOffset: at, iv, mac: sealed.slice(-16) };
        pack.push(sealed.subarray(0, size));
        at += size;
      }
      const all = new Uint8Array(at);
      let put = 0;
      for (const p of pack) {
        all.set(p, put);
        put += p.length;
      }
      await Deno.writeFile(`${dir}/pack`, all);
      const layout = (badAt: number) => {
        const desc = new Uint8Array(n * SEALED_DESC_BYTES);
        blocks.forEach((b, i) => {
          const mac = b.mac.slice();
          if (i === badAt) mac[0]! ^= 0x80;
          sealedDescriptor(desc, i, {
            ...b,
            mac,
            key: raw,
            length: size,
            keep: size,
            offset: i * size,
          });
        });
        return desc;
      };
      using src = Device.open(`${dir}/pack`);
      for (const badAt of [-1, 33]) {
        const name = `${dir}/out${badAt}`;
        {
          using out = Device.open(name, { write: true, createNew: true });
          assertEquals(await out.openSealedAsync(src, layout(badAt), n, 0, 32), badAt);
        }
        // Every block before the bad one written, nothing of it or after it.
        const got = await Deno.readFile(name);
        const upTo = badAt < 0 ? n : badAt;
        assertEquals(got.length, upTo * size);
        for (let i = 0; i < upTo; i++) {
          assertEquals(got.subarray(i * size, (i + 1) * size), plains[i], `block ${i}`);
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
