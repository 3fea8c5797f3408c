/**
 * Where the tests find streams made by real ZFS, and how they say a set is absent.
 *
 * @module
 */

const here = new URL(".", import.meta.url).pathname;

/** The repository's root. */
export const ROOT = new URL("..", import.meta.url).pathname;

/** The zfs-fuse streams shipped in the repository. */
export const ZFS_FUSE_DIR = `${here}fixtures/zfs-fuse`;

/** Whether the run is CI's, where nothing that needs real ZFS or fixtures may be skipped. */
export const IN_CI = (() => {
  try {
    return Deno.env.get("CI") === "true";
  } catch {
    return false;
  }
})();

/** The OpenZFS test streams: read in place from ../shared, never copied. */
export function openzfsDir(): string | null {
  let dir: string | undefined;
  try {
    dir = Deno.env.get("ZSEND_OPENZFS_FIXTURES");
  } catch { /* no env permission */ }
  dir ??= `${ROOT}../shared/fixtures/openzfs`;
  try {
    Deno.statSync(`${dir}/dedup.zsend.bz2`);
    return dir;
  } catch {
    if (IN_CI) throw new Error(`OpenZFS fixtures not found at ${dir} (set ZSEND_OPENZFS_FIXTURES)`);
    return null;
  }
}

/** Names of the zfs-fuse streams, without their `.zstream` ending. */
export function zfsFuseStreams(): string[] {
  return [...Deno.readDirSync(ZFS_FUSE_DIR)]
    .map((e) => e.name)
    .filter((n) => n.endsWith(".zstream"))
    .map((n) => n.slice(0, -".zstream".length))
    .sort();
}

const unpacked = new Map<string, string>();

/** Decompresses an OpenZFS `.bz2` fixture into a temporary file (once per run). */
export async function unpackBz2(path: string): Promise<string> {
  const known = unpacked.get(path);
  if (known !== undefined) return known;
  const out = await Deno.makeTempFile({
    suffix: "-" + path.split("/").pop()!.replace(/\.bz2$/, ""),
  });
  const bz = new Deno.Command("bzcat", { args: [path], stdout: "piped" }).spawn();
  const file = await Deno.open(out, { write: true, truncate: true });
  await bz.stdout.pipeTo(file.writable);
  const status = await bz.status;
  if (!status.success) throw new Error(`bzcat ${path} failed`);
  unpacked.set(path, out);
  return out;
}

/** Says once, visibly, why a group of tests is skipped. */
export function skipNote(what: string, why: string): void {
  console.log(`SKIPPED ${what}: ${why}`);
}
