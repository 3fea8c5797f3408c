/**
 * `zsend extract STORE DATASET@SNAP DIR`, `zsend extract STORE VOL@SNAP --image PATH|DEVICE`,
 * `zsend extract --stream [--snapshot NAME] FILE... DIR`: a snapshot as a directory tree, or a
 * volume as an image.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { ZplFilesystem } from "../core/zpl/fs.ts";
import { extractTree } from "../io/extract.ts";
import type { ReceivedSnapshot } from "../io/receive.ts";
import type { KeyMaterial } from "../core/crypto/keys.ts";
import { openSnapshotView } from "../io/store/open_snapshot.ts";
import { Store } from "../io/store/store.ts";
import { openStreamInput } from "../io/source.ts";
import { progressFor, trackedInput } from "../io/progress.ts";
import { nameArg, notDirectoryArg, outputDirArg, storeArg, streamInputArg } from "./args.ts";
import { engine, rejectUnknown, UsageError, warn } from "./common.ts";
import { KEY_FLAGS, KEY_USAGE, keyMaterial } from "./key_flags.ts";
import { promptKey } from "./keys.ts";

/** Usage of the verb. */
export const USAGE = `zsend extract [-q] [--progress] ${KEY_USAGE} STORE DATASET@SNAP DIR\n` +
  "       zsend extract [-q] STORE VOL@SNAP --image PATH|DEVICE\n" +
  `       zsend extract [-q] [--progress] ${KEY_USAGE} --stream [--snapshot NAME] FILE... ` +
  "DIR|--image PATH|DEVICE";

/** Runs the verb; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    boolean: ["stream", "help", "quiet", "progress"],
    string: ["image", "snapshot", ...KEY_FLAGS],
    alias: { q: "quiet" },
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  if (flags.image === "") throw new UsageError("--image needs a PATH or a DEVICE");
  if (flags.image !== undefined) notDirectoryArg(flags.image, "--image PATH|DEVICE");
  const pos = flags._.map(String);
  const key = keyMaterial(flags);
  const shown: Shown = { quiet: flags.quiet, progress: flags.progress };
  if (flags.stream) {
    if (pos.length < (flags.image === undefined ? 2 : 1)) {
      throw new UsageError("extract --stream takes FILE... DIR (or FILE... --image PATH)");
    }
    const dir = flags.image === undefined ? outputDirArg(pos.pop()!) : "";
    for (const file of pos) streamInputArg(file);
    const wanted = flags.snapshot === undefined ? null : snapshotArg(flags.snapshot);
    return await extractStreams(pos, wanted, dir, flags.image, shown, key);
  }
  if (flags.snapshot !== undefined) {
    throw new UsageError(
      "--snapshot goes with --stream; a store's snapshot is named as DATASET@SNAP",
    );
  }
  if (flags.image !== undefined) {
    if (pos.length !== 2) throw new UsageError("extract STORE VOL@SNAP --image PATH|DEVICE");
    storeArg(pos[0]!);
    nameArg(pos[1]!, "snapshot", "VOL@SNAP", { lookup: true });
    return await extractOne(pos[0]!, pos[1]!, "", flags.image, shown, key);
  }
  if (pos.length !== 3) throw new UsageError("extract takes STORE DATASET@SNAP DIR");
  storeArg(pos[0]!);
  outputDirArg(pos[2]!);
  nameArg(pos[1]!, "snapshot", "DATASET@SNAP", { lookup: true });
  return await extractOne(pos[0]!, pos[1]!, pos[2]!, undefined, shown, key);
}

/** `--snapshot`: `SNAP` or `@SNAP` (of the streams' top dataset), or `POOL/...@SNAP`. */
function snapshotArg(text: string): { name: string; full: boolean } {
  if (text.includes("@") && !text.startsWith("@")) {
    return { name: nameArg(text, "snapshot", "--snapshot NAME", { lookup: true }), full: true };
  }
  const snap = text.startsWith("@") ? text.slice(1) : text;
  nameArg(`x@${snap}`, "snapshot", "--snapshot NAME", { lookup: true });
  return { name: snap, full: false };
}

/**
 * Receives stream files into a scratch store, then extracts one of their snapshots: the one
 * `--snapshot` names, else the last snapshot the streams make of their top dataset (the first
 * dataset they name: the one a `-R` stream was sent from).
 */
/** What is said on the way: the summary line (unless quiet), progress lines when asked. */
interface Shown {
  quiet: boolean;
  progress: boolean;
}

async function extractStreams(
  files: string[],
  wanted: { name: string; full: boolean } | null,
  dir: string,
  image: string | undefined,
  shown: Shown,
  key: KeyMaterial | null,
): Promise<number> {
  // The receive side loads only for --stream: every module costs each start.
  const { receiveStream } = await import("../io/receive.ts");
  const tmp = await Deno.makeTempDir({ prefix: "zsend-extract-" });
  try {
    const store = Store.open(`${tmp}/store`, { create: true });
    const made: ReceivedSnapshot[] = [];
    try {
      for (const file of files) {
        const { chunks, progress } = trackedInput(openStreamInput(file, { reuse: true }), file, {
          asked: shown.progress,
          label: `zsend extract: ${file}: `,
        });
        try {
          made.push(
            ...await receiveStream(store, chunks, {
              target: "stream",
              names: "discard-pool",
              fletcher4: engine(),
            }),
          );
        } finally {
          progress?.done();
        }
      }
    } finally {
      store.close();
    }
    if (made.length === 0) throw new TypeError("the streams held no snapshot");
    const top = made[0]!.dataset;
    let pick: ReceivedSnapshot | undefined;
    if (wanted === null) pick = made.findLast((s) => s.dataset === top);
    else if (wanted.full) pick = made.findLast((s) => s.toname === wanted.name);
    else pick = made.findLast((s) => s.dataset === top && s.snapshot === wanted.name);
    if (pick === undefined) {
      const names = [...new Set(made.map((s) => s.toname))];
      throw new Deno.errors.NotFound(
        `--snapshot ${wanted!.name}: the streams make no such snapshot ` +
          `(they make ${names.slice(0, 8).join(", ")}${names.length > 8 ? ", ..." : ""})`,
      );
    }
    const label = wanted === null
      ? `${pick.toname} (the last snapshot the streams make)`
      : pick.toname;
    const stored = `${pick.dataset}@${pick.snapshot}`;
    return await extractOne(`${tmp}/store`, label, dir, image, shown, key, stored);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** Extracts `stored` (by default `name`, which the summary line names) from a store. */
async function extractOne(
  storeDir: string,
  name: string,
  dir: string,
  image: string | undefined,
  shown: Shown,
  key: KeyMaterial | null,
  stored: string = name,
): Promise<number> {
  // A raw snapshot's key is opened here: a wrong key is refused before DIR gets anything.
  const { store, view, stored: sealed } = await openSnapshotView(
    storeDir,
    stored,
    key,
    (info) => promptKey(name, info),
  );
  try {
    if (image !== undefined || view.objsetType === 3) {
      if (image === undefined) throw new UsageError(`${name} is a volume: use --image PATH|DEVICE`);
      // A raw volume's blocks come through its keys (the store keeps them sealed).
      // Loaded here: volumes are the rarer case, and every module costs each start.
      const { extractVolume } = await import("../io/volume_extract.ts");
      const r = await extractVolume(store, sealed, image, view);
      if (!shown.quiet) {
        console.log(
          `${name} -> ${image}: ${r.size} bytes, ${r.blocks} blocks written` +
            (r.incremental ? `, ${r.zeroed} freed (only changes since the image's snapshot)` : ""),
        );
      }
      return 0;
    }
    const fs = await ZplFilesystem.open(view);
    // Bytes and files written; the total is not known before the walk.
    const progress = progressFor({
      asked: shown.progress,
      total: null,
      label: `zsend extract: ${name}: `,
      count: "files",
    });
    let paths = 0;
    let r: Awaited<ReturnType<typeof extractTree>> | undefined;
    try {
      r = await extractTree(fs, dir, {
        ...(progress
          ? {
            onPath: (_: string, so: { bytes: number; files: number }) => {
              if ((++paths & 255) === 0) progress.update(so.bytes, so.files);
            },
          }
          : {}),
      });
    } finally {
      progress?.done(r?.bytes, r?.files);
    }
    for (const e of r.errors) warn(`zsend extract: ${e}`);
    if (sealed.snapshot.redactedRanges) {
      warn(
        `zsend extract: ${name} is redacted (zfs send --redact): the files that hold redacted ` +
          `ranges were not written (each is named above)`,
      );
    }
    for (const n of r.notes) warn(`zsend extract: note: ${n}`);
    if (!shown.quiet) {
      console.log(
        `${name} -> ${dir}: ${r.files} files (${r.bytes} bytes), ${r.directories} directories, ` +
          `${r.symlinks} symlinks, ${r.hardlinks} hard links, ${r.special} special files` +
          (r.failed > 0 ? `, ${r.failed} failed` : ""),
      );
    }
    if (r.failed > 0) {
      warn(
        `zsend extract: ${r.failed} ${r.failed === 1 ? "path" : "paths"} failed (each named ` +
          "above; a file that could not be written whole was removed): the tree is incomplete",
      );
    }
    return r.errors.length > 0 ? 1 : 0;
  } finally {
    store.close();
  }
}
