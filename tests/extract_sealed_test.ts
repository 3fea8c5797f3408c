/**
 * extractTree with sealed pieces (an encrypted snapshot opened with its key): large files'
 * blocks are queued for native calls on other threads while the walk goes on; every file
 * equals its plaintext, and a block whose tag fails removes its file (never written whole,
 * named by the file's first failing block) while the other files are written.
 *
 * @module
 */

import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { importAeadKey, sealAead } from "../core/crypto/aead.ts";
import type { Inode, SealedPiece, WalkEntry, ZplFilesystem } from "../core/zpl/fs.ts";
import { extractTree } from "../io/extract.ts";
import { sealedBlocksOpenable } from "../io/native/device.ts";
import { xorshift32 } from "./helpers/prng.ts";

const BLOCK = 128 << 10;

function bytes(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const next = xorshift32(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = next() & 0xff;
  return out;
}

function inode(object: number, kind: "dir" | "file", size: number): Inode {
  const t = { sec: 1_700_000_000, nsec: 0 };
  return {
    object,
    kind,
    mode: (kind === "dir" ? 0o040000 : 0o100000) | 0o644,
    perm: kind === "dir" ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    size,
    links: 1,
    atime: t,
    mtime: t,
    ctime: t,
    crtime: t,
    rdev: 0n,
    xattrDir: 0,
    parent: 1,
    flags: 0n,
    gen: 1n,
    projid: null,
    saXattrs: new Map(),
    sa: true,
  };
}

/** Files of `sizes` bytes, their blocks sealed one after another in one pack. */
async function sealedTree(dir: string, sizes: number[], badBlocks: Map<number, number[]>) {
  const raw = bytes(32, 5);
  const key = await importAeadKey("gcm", raw);
  const plains = sizes.map((n, i) => bytes(n, 100 + i));
  const pack: Uint8Array[] = [];
  const pieces = new Map<number, SealedPiece[]>();
  let at = 0;
  for (const [f, plain] of plains.entries()) {
    const list: SealedPiece[] = [];
    for (let off = 0, b = 0; off < plain.length; off += BLOCK, b++) {
      const block = new Uint8Array(BLOCK);
      block.set(plain.subarray(off, off + BLOCK));
      const iv = bytes(12, 1000 * f + b + 1);
      const sealed = await sealAead(key, iv, block);
      const mac = sealed.slice(-16);
      if (badBlocks.get(f)?.includes(b)) mac[3]! ^= 1;
      list.push({
        offset: off,
        sealed: {
          path: `${dir}/pack`,
          offset: at,
          length: BLOCK,
          mode: "gcm",
          key: raw,
          iv,
          mac,
          where: `the block at offset ${off} of object ${f + 2}`,
          keep: Math.min(BLOCK, plain.length - off),
        },
      });
      pack.push(sealed.subarray(0, BLOCK));
      at += BLOCK;
    }
    pieces.set(f + 2, list);
  }
  const all = new Uint8Array(at);
  pack.forEach((p, i) => all.set(p, i * BLOCK));
  await Deno.writeFile(`${dir}/pack`, all);
  const entries: WalkEntry[] = [
    { path: ".", components: [], depth: 0, inode: inode(1, "dir", 0), entry: null },
    ...sizes.map((n, i) => ({
      path: `./f${i}`,
      components: [new TextEncoder().encode(`f${i}`)],
      depth: 1,
      inode: inode(i + 2, "file", n),
      entry: null,
    })),
  ];
  const fs = {
    async *walk() {
      yield* entries;
    },
    async *filePieces(object: number) {
      yield* pieces.get(object)!;
    },
    xattrs: () => Promise.resolve([]),
  } as unknown as ZplFilesystem;
  return { fs, plains };
}

Deno.test({
  name: "extractTree: large sealed files opened on other threads while the walk goes on",
  ignore: !sealedBlocksOpenable(),
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      // Large files (over the 1 MiB that goes to other threads), small ones among them.
      const sizes = [5 * BLOCK + 7, 3000, 40 * BLOCK, 100, 9 * BLOCK + 1, 17 * BLOCK, 2 * BLOCK];
      // File 2: a bad tag in its blocks 30 and 12 (12 is named: the first in the file).
      // File 5: its last block's tag bad. File 1 (small, opened on this thread): its only one.
      const bad = new Map([[2, [30, 12]], [5, [16]], [1, [0]]]);
      for (const badBlocks of [new Map<number, number[]>(), bad]) {
        const out = `${dir}/out${badBlocks.size}`;
        const { fs, plains } = await sealedTree(dir, sizes, badBlocks);
        const r = await extractTree(fs, out);
        for (const [i, plain] of plains.entries()) {
          if (badBlocks.has(i)) {
            await assertRejects(() => Deno.lstat(`${out}/f${i}`), Deno.errors.NotFound);
            continue;
          }
          assertEquals(await Deno.readFile(`${out}/f${i}`), plain, `f${i}`);
          assertEquals((await Deno.stat(`${out}/f${i}`)).mode! & 0o777, 0o644);
        }
        assertEquals(r.failed, badBlocks.size);
        assertEquals(r.files, sizes.length - badBlocks.size);
        assertEquals(r.errors.length, badBlocks.size);
        for (const [i, blocks] of badBlocks) {
          const first = Math.min(...blocks) * BLOCK;
          const line = r.errors.find((e) => e.startsWith(`./f${i}:`));
          assert(line !== undefined, `f${i} named`);
          assertMatch(line, new RegExp(`offset ${first} of object ${i + 2} fails its MAC`));
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
