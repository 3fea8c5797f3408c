/**
 * Stores filled with zfs-fuse's fixture streams, as several test modules build them.
 *
 * @module
 */

import { assertEquals } from "@std/assert";
import { ZFS_FUSE_DIR } from "../_fixtures.ts";
import { runZsend } from "../_run.ts";

/** The path of a zfs-fuse fixture stream by its name (`fs-s1.full`). */
export const fixtureStream = (name: string): string => `${ZFS_FUSE_DIR}/${name}.zstream`;

/**
 * A new store holding bk/fs@s1..s3 and the clone bk/clone@c1 of bk/fs@s2; with `replicate`,
 * also the -R stream as rep/fs (s1..s3, r1) and rep/fs/child@r1.
 */
export async function fixtureStore(
  options: { prefix?: string; replicate?: boolean } = {},
): Promise<string> {
  const store = `${await Deno.makeTempDir({ prefix: options.prefix ?? "zsend-fx-" })}/store`;
  const recv = async (...args: string[]) => {
    const r = await runZsend(["recv", ...args]);
    assertEquals(r.code, 0, `zsend recv ${args.join(" ")}: ${r.stderr}`);
  };
  await recv(store, "bk/fs", fixtureStream("fs-s1.full"));
  await recv(store, "bk/fs", fixtureStream("fs-s1-s2.incr"));
  await recv(store, "bk/fs", fixtureStream("fs-s2-s3.incr"));
  await recv(store, "bk/clone", fixtureStream("clone-s2-c1.clone"));
  if (options.replicate) await recv("-d", store, "rep", fixtureStream("fs-r1.replicate"));
  return store;
}
