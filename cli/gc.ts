/**
 * `zsend gc [-n] [-v] [--threshold PERCENT] STORE`: gives the space of blocks no snapshot uses
 * back to the disk (see io/store/gc.ts for how a kill -9 at any moment stays harmless).
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { collectGarbage, DEFAULT_THRESHOLD } from "../io/store/gc.ts";
import { Store } from "../io/store/store.ts";
import { storeArg } from "./args.ts";
import { rejectUnknown, UsageError } from "./common.ts";
import { niceBytes } from "./zfs_format.ts";

/** Usage of the verb. */
export const USAGE = "zsend gc [-n] [-v] [--threshold PERCENT] STORE";

/** Runs the verb; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    boolean: ["n", "v", "help"],
    string: ["threshold"],
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const [dir, ...extra] = flags._.map(String);
  if (dir === undefined || extra.length > 0) throw new UsageError("gc takes one STORE");
  let threshold = DEFAULT_THRESHOLD;
  if (flags.threshold !== undefined) {
    const pct = Number(flags.threshold);
    if (!/^\d+(\.\d+)?$/.test(flags.threshold) || !(pct > 0 && pct <= 100)) {
      throw new UsageError(`--threshold '${flags.threshold}': expected a percentage in (0, 100]`);
    }
    threshold = pct / 100;
  }
  storeArg(dir);
  const store = Store.open(dir);
  try {
    const r = await collectGarbage(store, { dryRun: flags.n, threshold });
    const did = (now: string, past: string) => (r.dryRun ? `would ${now}` : past);
    if (flags.v || flags.n) {
      for (const p of r.packs) {
        if (p.action === "keep") continue;
        console.log(
          `${did(p.action, p.action === "delete" ? "deleted" : "rewrote")} pack ${p.id}: ` +
            `${niceBytes(p.size)}, ${niceBytes(p.live)} in use`,
        );
      }
      for (const o of r.orphans) {
        console.log(
          `${did("delete", "deleted")} pack file ${o.id}, unknown to the index: ` +
            niceBytes(o.size),
        );
      }
      for (const w of r.written) console.log(`wrote pack ${w.id}: ${niceBytes(w.size)}`);
      if (r.tail > 0) {
        console.log(
          `${did("cut", "cut")} ${niceBytes(r.tail)} a failed receive left at a pack's end`,
        );
      }
      if (r.releasedBlocks > 0) {
        console.log(`${did("forget", "forgot")} ${r.releasedBlocks} blocks no snapshot used`);
      }
      console.log(
        `packs: ${niceBytes(r.before)} -> ${niceBytes(r.after)} ` +
          `(${r.dryRun ? "would give" : "gave"} back ${niceBytes(r.before - r.after)})`,
      );
    }
    return 0;
  } finally {
    store.close();
  }
}
