/**
 * `zsend ls [-R] STORE DATASET@SNAP [PATH]`: lists a directory of a snapshot like `ls -l`.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { deviceNumbers, type Inode, ZplFilesystem } from "../core/zpl/fs.ts";
import { resolvePath } from "../core/zpl/path.ts";
import { KEY_FLAGS, KEY_USAGE } from "./key_flags.ts";
import { openSnapshotArgs } from "./keys.ts";
import { rejectUnknown, UsageError, warn } from "./common.ts";

/** Usage of the verb. */
export const USAGE = `zsend ls [-R] ${KEY_USAGE} STORE DATASET@SNAP [PATH]`;

const KIND_CHAR: Record<Inode["kind"], string> = {
  file: "-",
  dir: "d",
  symlink: "l",
  fifo: "p",
  socket: "s",
  chardev: "c",
  blockdev: "b",
};

/** `drwxr-xr-x`-style mode text. */
export function modeText(inode: Inode): string {
  const p = inode.perm;
  const rwx = (bits: number, special: boolean, ch: string) =>
    (bits & 4 ? "r" : "-") + (bits & 2 ? "w" : "-") +
    (special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? "x" : "-");
  return KIND_CHAR[inode.kind] + rwx((p >> 6) & 7, (p & 0o4000) !== 0, "s") +
    rwx((p >> 3) & 7, (p & 0o2000) !== 0, "s") + rwx(p & 7, (p & 0o1000) !== 0, "t");
}

function line(inode: Inode, name: string, target: string | null): string {
  const date = new Date(inode.mtime.sec * 1000).toISOString().slice(0, 16).replace("T", " ");
  // Devices show their numbers where files show their size, as ls -l does.
  const size = inode.kind === "chardev" || inode.kind === "blockdev"
    ? deviceNumbers(inode).join(", ")
    : String(inode.size);
  return `${modeText(inode)} ${String(inode.links).padStart(3)} ${String(inode.uid).padEnd(5)} ` +
    `${String(inode.gid).padEnd(5)} ${size.padStart(10)} ${date} ${name}` +
    (target !== null ? ` -> ${target}` : "");
}

/** Runs the verb; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    boolean: ["help", "R"],
    string: [...KEY_FLAGS],
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const pos = flags._.map(String);
  if (pos.length < 2 || pos.length > 3) throw new UsageError("ls takes STORE DATASET@SNAP [PATH]");
  const { store, view } = await openSnapshotArgs(pos[0]!, pos[1]!, flags);
  try {
    const fs = await ZplFilesystem.open(view);
    const start = await resolvePath(fs, pos[2] ?? "/");
    const st = await fs.stat(start);
    if (st.kind !== "dir") {
      console.log(line(st, pos[2]!, st.kind === "symlink" ? await fs.readlink(start) : null));
      return 0;
    }
    // Like ls: a bad entry is reported and the rest listed; the exit status says it happened.
    let faults = 0;
    const fault = (path: string, err: Error) => {
      faults++;
      warn(`zsend ls: ${path}: ${err.message}`);
    };
    const target = async (inode: Inode): Promise<string | null> =>
      inode.kind === "symlink" ? await fs.readlink(inode.object) : null;
    if (flags.R) {
      for await (const e of fs.walk({ start, onError: (err, path) => fault(path, err) })) {
        try {
          console.log(line(e.inode, e.path, await target(e.inode)));
        } catch (err) {
          fault(e.path, err as Error);
        }
      }
      return faults > 0 ? 1 : 0;
    }
    const entries = await fs.readdir(start, { onError: (err) => fault(err.entryName, err) });
    for (const e of entries) {
      try {
        const inode = await fs.stat(e.object);
        console.log(line(inode, e.name, await target(inode)));
      } catch (err) {
        fault(e.name, err as Error);
      }
    }
    return faults > 0 ? 1 : 0;
  } finally {
    store.close();
  }
}
