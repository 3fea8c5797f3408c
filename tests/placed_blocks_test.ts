/**
 * `StoreSnapshotView.placedBlocks` (an object's blocks and their places, many per query, as
 * extract reads them) against `blockIds` then `blockPlace` for each block: the same blocks and
 * places, whatever the page size, with holes, all-zero blocks and a partial last block.
 */

import { assert, assertEquals } from "@std/assert";
import { receiveStream } from "../io/receive.ts";
import { openSnapshot } from "../io/store/open_snapshot.ts";
import { Store } from "../io/store/store.ts";
import type { BlockPlace } from "../core/zpl/fs.ts";
import { ZplStreamBuilder } from "./helpers/zpl_stream_builder.ts";

Deno.test("placedBlocks pages an object's blocks as blockIds and blockPlace give them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zsend-placed-" });
  try {
    const b = new ZplStreamBuilder();
    // 40 blocks of 512 bytes: data, holes (all-zero blocks are left out), a short last one.
    const content = new Uint8Array(40 * 512 - 100);
    for (let blk = 0; blk < 40; blk++) {
      if (blk % 7 === 3 || (blk >= 20 && blk < 26)) continue;
      content.fill(blk + 1, blk * 512, Math.min(content.length, blk * 512 + 300));
    }
    b.file(4, content);
    b.entry(3, "f", 4);
    const store = Store.open(`${dir}/store`, { create: true });
    await receiveStream(store, [b.stream()], { target: "t/fs" });
    store.close();
    const { store: s, view } = openSnapshot(`${dir}/store`, "t/fs@s1");
    try {
      const want: { blkid: number; place: BlockPlace | null }[] = [];
      for await (const blkid of view.blockIds(4)) {
        want.push({ blkid, place: view.blockPlace(4, blkid) });
      }
      assert(want.length > 20 && want.some((w) => w.place !== null), "the file has placed blocks");
      for (const limit of [1, 2, 3, 7, 4096]) {
        const got: typeof want = [];
        for (let from = 0;;) {
          const { blocks, next } = view.placedBlocks(4, from, limit);
          if (blocks.length === 0) break;
          assert(next > from, `limit ${limit}: next ${next} after ${from}`);
          got.push(...blocks);
          from = next;
        }
        assertEquals(got, want, `limit ${limit}`);
      }
      // From a block in the middle: only the blocks from it on.
      assertEquals(view.placedBlocks(4, 22).blocks, want.filter((w) => w.blkid >= 22));
      assertEquals(view.placedBlocks(4, 1000).blocks, []);
    } finally {
      s.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
