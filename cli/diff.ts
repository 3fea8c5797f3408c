/**
 * `zsend diff [-F] [-H] [-t] [-h] STORE DATASET@A DATASET@B|DATASET`: what changed between two
 * stored snapshots of a filesystem, in `zfs diff`'s words, straight from their object tables.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import type { KeyMaterial } from "../core/crypto/keys.ts";
import { diffSnapshots } from "../core/zpl/diff.ts";
import { formatChange, mountpointPrefix } from "../core/zpl/diff_format.ts";
import { ZplFilesystem } from "../core/zpl/fs.ts";
import { changedObjects, isEarlierSnapshot } from "../io/store/diff_objects.ts";
import { openSnapshotView } from "../io/store/open_snapshot.ts";
import { Store } from "../io/store/store.ts";
import { ChunkOutput } from "../io/output.ts";
import { nameArg, storeArg } from "./args.ts";
import { KEY_FLAGS, KEY_USAGE, keyMaterial } from "./key_flags.ts";
import { promptKey } from "./keys.ts";
import { rejectUnknown, UsageError, warn } from "./common.ts";

/** Usage of the verb. */
export const USAGE = `zsend diff [-F] [-H] [-t] [-h] [--mountpoint PATH] ${KEY_USAGE} STORE ` +
  `DATASET@SNAP DATASET@SNAP|DATASET`;

/**
 * The later snapshot: `DATASET@SNAP`, or `DATASET` for its latest snapshot.
 *
 * @throws `Deno.errors.NotFound` when the dataset has no snapshot
 */
function laterName(store: Store, dir: string, arg: string): string {
  if (arg.includes("@")) return arg;
  const ds = store.datasetByName(arg);
  if (ds === null) throw new Deno.errors.NotFound(`no dataset ${arg} in ${dir}`);
  const snaps = store.snapshots(ds.id);
  const last = snaps[snaps.length - 1];
  if (last === undefined) throw new Deno.errors.NotFound(`${arg} has no snapshot in ${dir}`);
  return `${arg}@${last.name}`;
}

/** Runs the verb; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    boolean: ["F", "H", "t", "h"],
    string: [...KEY_FLAGS, "mountpoint"],
    unknown: rejectUnknown,
  });
  const pos = flags._.map(String);
  if (pos.length !== 3) {
    throw new UsageError("diff takes STORE DATASET@SNAP DATASET@SNAP (or DATASET)");
  }
  const [dir, fromName, toArg] = pos as [string, string, string];
  storeArg(dir);
  nameArg(fromName, "snapshot", "DATASET@SNAP", { lookup: true });
  nameArg(toArg, toArg.includes("@") ? "snapshot" : "dataset", "DATASET@SNAP|DATASET", {
    lookup: true,
  });
  const mountpoint = flags.mountpoint;
  if (mountpoint !== undefined && !mountpoint.startsWith("/")) {
    throw new UsageError(`--mountpoint '${mountpoint}' is not an absolute path`);
  }
  const given = keyMaterial(flags);

  const index = Store.open(dir);
  let toName: string;
  try {
    toName = laterName(index, dir, toArg);
    const from = index.snapshotByName(fromName);
    const to = index.snapshotByName(toName);
    if (from === null) throw new Deno.errors.NotFound(`no snapshot ${fromName} in ${dir}`);
    if (to === null) throw new Deno.errors.NotFound(`no snapshot ${toName} in ${dir}`);
    if (!isEarlierSnapshot(index, from, to)) {
      throw new TypeError(
        `${fromName} is not an earlier snapshot of ${toName} (nor of a filesystem it was ` +
          `cloned from): Not an earlier snapshot from the same fs`,
      );
    }
  } catch (e) {
    index.close();
    throw e;
  }

  // One prompt for both snapshots when the key is typed.
  let typed: Promise<KeyMaterial | null> | null = null;
  const ask = (name: string) => (info: Parameters<typeof promptKey>[1]) =>
    typed ??= promptKey(name, info);
  const a = await openSnapshotView(dir, fromName, given, ask(fromName));
  let b;
  try {
    b = await openSnapshotView(dir, toName, given ?? await typed, ask(toName));
  } catch (e) {
    a.store.close();
    index.close();
    throw e;
  }
  const out = new ChunkOutput();
  let faults = 0;
  try {
    const [fa, fb] = [await ZplFilesystem.open(a.view), await ZplFilesystem.open(b.view)];
    const objects = changedObjects(index, a.stored.snapshot.id, b.stored.snapshot.id);
    const format = {
      classify: flags.F,
      scripted: flags.H,
      timestamped: flags.t,
      noMangle: flags.h,
      mountpoint: mountpointPrefix(mountpoint ?? `/${toName.slice(0, toName.indexOf("@"))}`),
    };
    const onFault = (f: { object: number; side: string; message: string }) => {
      faults++;
      const snap = f.side === "from" ? fromName : toName;
      warn(
        `zsend diff: Unable to determine path or stats for object ${f.object} in ${snap}: ` +
          f.message,
      );
    };
    for await (const change of diffSnapshots(fa, fb, objects, onFault)) {
      await out.write(formatChange(change, format));
    }
    await out.flush();
  } finally {
    a.store.close();
    b.store.close();
    index.close();
  }
  return faults > 0 ? 1 : 0;
}
