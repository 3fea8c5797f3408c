/**
 * `zsend recv [-F] [-d | -e] [-n] [-v] [--progress] STORE TARGET [FILE|-]`: receives a stream
 * into a store, as `zfs receive TARGET` does into a pool.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { type NameMode, receiveStream } from "../io/receive.ts";
import { Store } from "../io/store/store.ts";
import { openStreamInput } from "../io/source.ts";
import { Progress } from "../io/progress.ts";
import { engine, rejectUnknown, UsageError } from "./common.ts";

/** Usage of the verb. */
export const USAGE = "zsend recv [-F] [-d | -e] [-n] [-v] [--progress] STORE TARGET [FILE|-]";

/** Runs the verb; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    boolean: ["F", "d", "e", "n", "v", "progress", "help"],
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  if (flags.d && flags.e) throw new UsageError("-d and -e exclude each other");
  const [storeDir, target, input, ...extra] = flags._.map(String);
  if (storeDir === undefined || target === undefined || extra.length > 0) {
    throw new UsageError("recv takes STORE TARGET [FILE|-]");
  }
  const names: NameMode = flags.d ? "discard-pool" : flags.e ? "last-component" : "as-given";
  let total: number | null = null;
  if (input !== undefined && input !== "-") total = (await Deno.stat(input)).size;
  const progress = flags.progress || Deno.stderr.isTerminal() ? new Progress(total) : null;
  const store = Store.open(storeDir, { create: true });
  try {
    // The reader lends its buffers to the pack writes: payloads go to the packs uncopied.
    const source = openStreamInput(input, { reuse: true, leases: store.packs.leases });
    const got = await receiveStream(store, source, {
      target,
      names,
      force: flags.F,
      dryRun: flags.n,
      fletcher4: engine(),
      ...(progress ? { onProgress: (b: number, r: number) => progress.update(b, r) } : {}),
      onSnapshot: (s) => {
        if (!flags.v && !flags.n) return;
        progress?.done();
        for (const r of s.rolledBack) console.log(`destroyed ${r} (rolled back by -F)`);
        console.log(
          `${s.dryRun ? "would receive" : "received"} ${s.kind} stream of ` +
            `${s.dataset}@${s.snapshot} (guid ${s.guid.toString(16)}): ${s.records} records, ` +
            `${s.bytes} bytes, ${s.newBytes} bytes new to the store`,
        );
      },
    });
    progress?.done();
    if (got.length === 0) console.error("zsend recv: the stream held no snapshot");
    return 0;
  } finally {
    progress?.done();
    store.close();
  }
}
