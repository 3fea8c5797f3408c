/**
 * `zsend destroy [-n] [-p] [-r] [-v] STORE DATASET@SNAP|DATASET`: removes snapshots or whole
 * datasets from a store, as `zfs destroy` does, then deletes the packs nothing uses any more
 * (compacting packs still partly used is `zsend gc`'s).
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { collectGarbage } from "../io/store/gc.ts";
import { applyDestroy, planDestroy, planNames, planReclaims } from "../io/store/destroy.ts";
import { Store } from "../io/store/store.ts";
import { nameArg, storeArg } from "./args.ts";
import { rejectUnknown, UsageError } from "./common.ts";
import { niceBytes } from "./zfs_format.ts";

/** Usage of the verb. */
export const USAGE = "zsend destroy [-n] [-p] [-r] [-v] STORE DATASET@SNAP[%SNAP][,...]\n" +
  "       zsend destroy [-n] [-p] [-r] [-v] STORE DATASET";

/**
 * Checks DATASET or DATASET@SPEC, where SPEC is zfs destroy's: snapshot names, ranges
 * FIRST%LAST (an end may be left out), separated by commas.
 */
function checkTarget(name: string): void {
  const at = name.indexOf("@");
  if (at < 0) {
    nameArg(name, "dataset", "DATASET", { lookup: true });
    return;
  }
  nameArg(name.slice(0, at), "dataset", "DATASET", { lookup: true });
  for (const item of name.slice(at + 1).split(",")) {
    const parts = item.split("%");
    if (item === "" || parts.length > 2) {
      throw new UsageError(`DATASET@SNAP '${name}': '${item}' is not a snapshot, nor FIRST%LAST`);
    }
    for (const p of parts) {
      if (p !== "") {
        nameArg(`${name.slice(0, at)}@${p}`, "snapshot", "DATASET@SNAP", { lookup: true });
      }
    }
  }
}

/** Runs the verb; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    boolean: ["n", "p", "r", "v", "help"],
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const [dir, name, ...extra] = flags._.map(String);
  if (dir === undefined || name === undefined || extra.length > 0) {
    throw new UsageError("destroy takes STORE and one DATASET or DATASET@SNAP");
  }
  storeArg(dir);
  checkTarget(name);
  const verbose = flags.v || flags.p;
  const store = Store.open(dir);
  try {
    await store.lock();
    const plan = planDestroy(store, name, { recursive: flags.r });
    const reclaim = planReclaims(store, plan);
    const say = (names: string[], bytes: number, dry: boolean) => {
      for (const n of names) {
        console.log(flags.p ? `destroy\t${n}` : `${dry ? "would" : "will"} destroy ${n}`);
      }
      if (flags.p) console.log(`reclaim\t${bytes}`);
      else console.log(`${dry ? "would" : "will"} reclaim ${niceBytes(bytes)}`);
    };
    if (flags.n) {
      say(planNames(plan), reclaim, true);
      return 0;
    }
    if (verbose) say(planNames(plan), reclaim, false);
    store.begin();
    try {
      applyDestroy(store, plan);
    } catch (e) {
      await store.abort();
      throw e;
    }
    await store.commit();
    // Packs that held only what was destroyed go at once; the rest waits for zsend gc.
    const gc = await collectGarbage(store, { onlyDead: true });
    if (verbose) {
      const held = gc.packs.filter((p) => p.action === "keep")
        .reduce((a, p) => a + p.size - p.live, 0);
      const freed = gc.before - gc.after;
      console.log(
        flags.p
          ? `freed\t${freed}\nunused\t${held}`
          : `freed ${niceBytes(freed)} of pack files; ${niceBytes(held)} unused in packs still ` +
            `in use (zsend gc gives it back)`,
      );
    }
    return 0;
  } finally {
    store.close();
  }
}
