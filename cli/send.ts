/**
 * `zsend send [-i SNAP | -I SNAP] [-D] [-R] [-p] [-L] [-e] [-c] [-v] [-n] STORE DATASET@SNAP`:
 * a stored snapshot as a send stream on stdout, for `zfs receive`. `-L`, `-e` and `-c` are
 * `zfs send`'s: large blocks whole, embedded blocks embedded, compressed blocks compressed.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { sendStream } from "../io/send.ts";
import { Store } from "../io/store/store.ts";
import { writeStreamOutput } from "../io/stream_output.ts";
import { nameArg, storeArg } from "./args.ts";
import { engine, rejectUnknown, UsageError, warn } from "./common.ts";

/** Usage of the verb. */
export const USAGE =
  "zsend send [-i SNAP | -I SNAP] [-D] [-R] [-p] [-L] [-e] [-c] [-v] [-n] STORE DATASET@SNAP";

/** Runs the verb; returns the exit status. */
export function main(args: string[]): number {
  const flags = parseArgs(args, {
    boolean: ["D", "R", "p", "v", "n", "L", "e", "c", "help"],
    string: ["i", "I"],
    alias: { L: "large-block", e: "embed", c: "compressed" },
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  if (flags.i !== undefined && flags.I !== undefined) {
    throw new UsageError("-i and -I exclude each other");
  }
  for (const [flag, value] of [["-i", flags.i], ["-I", flags.I]]) {
    if (value === "") throw new UsageError(`${flag} needs a snapshot: @SNAP, SNAP or DATASET@SNAP`);
  }
  const pos = flags._.map(String);
  if (pos.length !== 2) throw new UsageError("send takes STORE DATASET@SNAP");
  const target = nameArg(pos[1]!, "snapshot", "DATASET@SNAP", { lookup: true });
  const from = flags.i ?? flags.I;
  if (from !== undefined) {
    const flag = flags.i !== undefined ? "-i" : "-I";
    const dataset = target.slice(0, target.indexOf("@"));
    const full = from.startsWith("@")
      ? dataset + from
      : from.includes("@")
      ? from
      : `${dataset}@${from}`;
    nameArg(full, "snapshot", `${flag} SNAP`, { lookup: true });
  }
  storeArg(pos[0]!);
  if (!flags.n && Deno.stdout.isTerminal()) {
    throw new UsageError("the stream cannot be written to a terminal: redirect it or pipe it");
  }
  const store = Store.open(pos[0]!);
  try {
    const chunks = sendStream(store, target, {
      ...(from !== undefined ? { from } : {}),
      intermediate: flags.I !== undefined,
      replicate: flags.R,
      dedup: flags.D,
      props: flags.p,
      largeBlocks: flags.L,
      embed: flags.e,
      compressed: flags.c,
      fletcher4: engine(),
      payloadRefs: !flags.n,
      onSubstream: (what) => {
        if (flags.v || flags.n) warn(`${flags.n ? "would send" : "sending"} ${what}`);
      },
    });
    let bytes = 0;
    if (flags.n) {
      for (const c of chunks) bytes += c.length;
      warn(`total estimated size is ${bytes} bytes`);
      return 0;
    }
    ({ bytes } = writeStreamOutput(chunks));
    if (flags.v) warn(`sent ${bytes} bytes`);
    return 0;
  } finally {
    store.close();
  }
}
