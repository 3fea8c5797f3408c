/**
 * Path lookup in a ZPL filesystem: `/a/b/c` to an object, without following symlinks.
 *
 * @module
 */

import { type DirEntryError, ZplFilesystem } from "./fs.ts";

/**
 * The object a path names, from the root. Symlinks are not followed; `.` and empty components
 * are skipped; `..` is refused. Unusable entries of a directory (bad names, duplicates) do not
 * stop the lookup of another name in it.
 *
 * @throws `Deno`-free `TypeError` naming the component that is missing, unusable or not a
 * directory
 */
export async function resolvePath(fs: ZplFilesystem, path: string): Promise<number> {
  let object = fs.root();
  let walked = "";
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") throw new TypeError(`'..' is not allowed in ${path}`);
    const st = await fs.stat(object);
    if (st.kind !== "dir") throw new TypeError(`${walked || "/"} is a ${st.kind}, not a directory`);
    const faults: DirEntryError[] = [];
    const entries = await fs.readdir(object, { onError: (e) => faults.push(e) });
    const entry = entries.find((e) => e.name === part);
    walked += "/" + part;
    if (entry === undefined) {
      const fault = faults.find((e) => e.entryName === part);
      if (fault !== undefined) throw new TypeError(`${walked}: ${fault.message}`);
      throw new TypeError(`${walked}: no such file or directory`);
    }
    object = entry.object;
  }
  return object;
}
