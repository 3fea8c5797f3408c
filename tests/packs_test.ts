/**
 * PackSet: appends that keep the reader's lent buffers instead of copying them, the stage of
 * copied bytes, reads of bytes not yet in their file, flush and rollback.
 */

import { assert, assertEquals } from "@std/assert";
import { PackSet } from "../io/store/packs.ts";
import { mulberry32 } from "./helpers/prng.ts";

function randomBytes(n: number, seed: number): Uint8Array {
  const next = mulberry32(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = next() & 0xff;
  return out;
}

async function withPacks(fn: (packs: PackSet, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "zsend-packs-" });
  const packs = new PackSet(dir, [{ id: 1, committed: 0 }]);
  try {
    await fn(packs, dir);
  } finally {
    packs.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("PackSet.append() of lent buffers writes what they held, and lends them back only when written", async () => {
  await withPacks(async (packs) => {
    const reader = new Uint8Array(1 << 20);
    packs.leases.register(reader.buffer);
    const want: Uint8Array[] = [];
    const places = [];
    for (let round = 0; round < 6; round++) {
      reader.set(randomBytes(reader.length, round));
      // Blocks of the chunk, between the "headers" a stream has between them.
      for (let at = 312; at + 4096 <= reader.length; at += 4096 + 312) {
        const block = reader.subarray(at, at + 4096);
        want.push(block.slice());
        places.push(packs.append(block));
      }
      // Read back before any write is done: from memory.
      const last = places.at(-1)!;
      assertEquals(packs.read(last.pack, last.offset, 4096), want.at(-1));
      // The reader waits for its buffer; then it may fill it again at once.
      await packs.leases.free(reader.buffer);
      reader.fill(0xee);
    }
    // Copied appends (a buffer that is not lent) go between lent ones.
    const loose = randomBytes(1000, 99);
    const at = packs.append(loose);
    loose.fill(0);
    await packs.flush();
    for (let i = 0; i < places.length; i++) {
      assertEquals(packs.read(places[i]!.pack, places[i]!.offset, 4096), want[i], `block ${i}`);
    }
    assertEquals(packs.read(at.pack, at.offset, 1000), randomBytes(1000, 99));
    assertEquals(packs.position.length, places.length * 4096 + 1000);
  });
});

Deno.test("PackSet.rollback() cuts off what was appended, lent or copied, and lends the buffers back", async () => {
  await withPacks(async (packs, dir) => {
    const reader = new Uint8Array(64 << 10);
    packs.leases.register(reader.buffer);
    reader.set(randomBytes(reader.length, 7));
    packs.append(reader.subarray(0, 8192));
    await packs.flush();
    const committed = packs.position.length;
    packs.append(reader.subarray(8192, 16384));
    packs.append(randomBytes(512, 8));
    let freed = false;
    const free = packs.leases.free(reader.buffer).then(() => void (freed = true));
    await packs.rollback(1, committed);
    await free;
    assert(freed);
    assertEquals(packs.position.length, committed);
    assertEquals((await Deno.stat(packs.path(1))).size, committed);
    assertEquals(packs.read(1, 0, 8192), reader.subarray(0, 8192));
    assert(dir.length > 0);
  });
});
