/**
 * `zsend cat STORE DATASET@SNAP PATH`: one file of a snapshot to stdout.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { ZplFilesystem } from "../core/zpl/fs.ts";
import { resolvePath } from "../core/zpl/path.ts";
import { writeAll } from "../io/output.ts";
import { KEY_FLAGS, KEY_USAGE } from "./key_flags.ts";
import { openSnapshotArgs } from "./keys.ts";
import { rejectUnknown, UsageError } from "./common.ts";

/** Usage of the verb. */
export const USAGE = `zsend cat ${KEY_USAGE} STORE DATASET@SNAP PATH`;

/** Runs the verb; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    boolean: ["help"],
    string: [...KEY_FLAGS],
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const pos = flags._.map(String);
  if (pos.length !== 3) throw new UsageError("cat takes STORE DATASET@SNAP PATH");
  const { store, view } = await openSnapshotArgs(pos[0]!, pos[1]!, flags);
  try {
    const fs = await ZplFilesystem.open(view);
    const object = await resolvePath(fs, pos[2]!);
    const st = await fs.stat(object);
    if (st.kind !== "file") throw new TypeError(`${pos[2]} is a ${st.kind}, not a file`);
    // Holes come out as zeros: fill the gaps between pieces.
    let at = 0;
    const zeros = new Uint8Array(1 << 16);
    const fill = async (to: number) => {
      while (at < to) {
        const n = Math.min(zeros.length, to - at);
        await writeAll(Deno.stdout, zeros.subarray(0, n));
        at += n;
      }
    };
    for await (const piece of fs.readFile(object)) {
      await fill(piece.offset);
      await writeAll(Deno.stdout, piece.data);
      at = piece.offset + piece.data.length;
    }
    await fill(st.size);
    return 0;
  } finally {
    store.close();
  }
}
