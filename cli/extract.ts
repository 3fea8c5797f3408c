/**
 * `zsend extract STORE DATASET@SNAP DIR`, `zsend extract STORE VOL@SNAP --image PATH|DEVICE`,
 * `zsend extract --stream FILE... DIR`: a snapshot as a directory tree, or a volume as an image.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { ZplFilesystem } from "../core/zpl/fs.ts";
import { extractTree } from "../io/extract.ts";
import { receiveStream } from "../io/receive.ts";
import { openSnapshot } from "../io/store/open_snapshot.ts";
import { Store } from "../io/store/store.ts";
import { openStreamInput } from "../io/source.ts";
import { extractVolume } from "../io/volume_extract.ts";
import { engine, rejectUnknown, UsageError, warn } from "./common.ts";

/** Usage of the verb. */
export const USAGE = "zsend extract STORE DATASET@SNAP DIR\n" +
  "       zsend extract STORE VOL@SNAP --image PATH|DEVICE\n" +
  "       zsend extract --stream FILE... DIR";

/** Runs the verb; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    boolean: ["stream", "help", "quiet"],
    string: ["image"],
    alias: { q: "quiet" },
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const pos = flags._.map(String);
  if (flags.stream) {
    if (pos.length < 2) throw new UsageError("extract --stream takes FILE... DIR");
    const dir = pos.pop()!;
    const tmp = await Deno.makeTempDir({ prefix: "zsend-extract-" });
    try {
      const store = Store.open(`${tmp}/store`, { create: true });
      let last = "";
      try {
        for (const file of pos) {
          const got = await receiveStream(store, openStreamInput(file, { reuse: true }), {
            target: "stream",
            names: "discard-pool",
            fletcher4: engine(),
          });
          const top = got.find((g) => g.dataset.split("/").length === 2) ?? got[got.length - 1];
          if (top) last = `${top.dataset}@${top.snapshot}`;
        }
      } finally {
        store.close();
      }
      if (last === "") throw new TypeError("the streams held no snapshot");
      return await extractOne(`${tmp}/store`, last, dir, flags.image, flags.quiet);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  }
  if (flags.image !== undefined) {
    if (pos.length !== 2) throw new UsageError("extract STORE VOL@SNAP --image PATH|DEVICE");
    return await extractOne(pos[0]!, pos[1]!, "", flags.image, flags.quiet);
  }
  if (pos.length !== 3) throw new UsageError("extract takes STORE DATASET@SNAP DIR");
  return await extractOne(pos[0]!, pos[1]!, pos[2]!, undefined, flags.quiet);
}

async function extractOne(
  storeDir: string,
  name: string,
  dir: string,
  image: string | undefined,
  quiet: boolean,
): Promise<number> {
  const { store, view } = openSnapshot(storeDir, name);
  try {
    if (image !== undefined || view.objsetType === 3) {
      if (image === undefined) throw new UsageError(`${name} is a volume: use --image PATH|DEVICE`);
      const r = await extractVolume(store, view, image);
      if (!quiet) {
        console.log(
          `${name} -> ${image}: ${r.size} bytes, ${r.blocks} blocks written` +
            (r.incremental ? `, ${r.zeroed} freed (only changes since the image's snapshot)` : ""),
        );
      }
      return 0;
    }
    const fs = await ZplFilesystem.open(view);
    const r = await extractTree(fs, dir);
    for (const e of r.errors) warn(`zsend extract: ${e}`);
    if (view.snapshot.redactedRanges) {
      warn(
        `zsend extract: ${name} is redacted (zfs send --redact): the files that hold redacted ` +
          `ranges were not written (each is named above)`,
      );
    }
    for (const n of r.notes) warn(`zsend extract: note: ${n}`);
    if (!quiet) {
      console.log(
        `${name} -> ${dir}: ${r.files} files (${r.bytes} bytes), ${r.directories} directories, ` +
          `${r.symlinks} symlinks, ${r.hardlinks} hard links, ${r.special} special files`,
      );
    }
    return r.errors.length > 0 ? 1 : 0;
  } finally {
    store.close();
  }
}
