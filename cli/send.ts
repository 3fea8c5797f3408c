/**
 * `zsend send [-i SNAP | -I SNAP] [-D] [-R] [-p] [-L] [-e] [-c] [-v] [-n] STORE DATASET@SNAP`:
 * a stored snapshot as a send stream on stdout, for `zfs receive`. `-L`, `-e` and `-c` are
 * `zfs send`'s: large blocks whole, embedded blocks embedded, compressed blocks compressed.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { planSend, sendStream, type SendStreamOptions } from "../io/send.ts";
import { Store } from "../io/store/store.ts";
import { writeStreamOutput } from "../io/stream_output.ts";
import { nameArg, storeArg } from "./args.ts";
import { engine, rejectUnknown, UsageError, warn } from "./common.ts";
import { KEY_FLAGS, keyMaterial, promptKey } from "./keys.ts";
import type { SendSource } from "../core/send/send.ts";
import { openSnapshotView } from "../io/store/open_snapshot.ts";
import type { DecryptedSnapshotView } from "../io/store/crypt_view.ts";
import { decryptedSendSource } from "../io/store/decrypted_source.ts";
import { nativeAead } from "../io/native/aead_native.ts";

/** Usage of the verb. */
export const USAGE = "zsend send [-i SNAP | -I SNAP] [-D] [-R] [-p] [-L] [-e] [-c] [-v] [-n] " +
  "[--decrypt [--key-file PATH | --passphrase-file PATH]] STORE DATASET@SNAP";

/** Runs the verb; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    boolean: ["D", "R", "p", "v", "n", "L", "e", "c", "help", "decrypt"],
    string: ["i", "I", ...KEY_FLAGS],
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
  const key = keyMaterial(flags);
  if (key !== null && !flags.decrypt) {
    throw new UsageError("--key-file and --passphrase-file go with --decrypt");
  }
  const options: SendStreamOptions = {
    ...(from !== undefined ? { from } : {}),
    intermediate: flags.I !== undefined,
    replicate: flags.R,
    decrypted: flags.decrypt,
  };
  const opened: { store: Store }[] = [];
  const sources = new Map<number, SendSource>();
  if (flags.decrypt) {
    // Each raw snapshot the stream reads, opened with the key (a wrong key is refused here,
    // before a byte is written), as a plain source.
    const plan = Store.open(pos[0]!);
    let rows;
    try {
      rows = new Map(
        planSend(plan, target, options).parts.flatMap((p) => p.from ? [p.to, p.from] : [p.to])
          .map((r) => [r.id, r]),
      );
    } finally {
      plan.close();
    }
    let material = key;
    try {
      for (const row of rows.values()) {
        const name = `${row.datasetName}@${row.name}`;
        const o = await openSnapshotView(pos[0]!, name, material, async (info) => {
          // Asked once: the same key opens every snapshot of the send.
          material = await promptKey(name, info);
          return material;
        });
        opened.push(o);
        if (!o.stored.raw) {
          // A plain snapshot in a -R or -I send goes out as it is.
          o.store.close();
          opened.pop();
          continue;
        }
        sources.set(
          row.id,
          await decryptedSendSource(
            o.store,
            o.stored.snapshot,
            o.view as DecryptedSnapshotView,
            // The sender reads blocks synchronously: Web Crypto cannot open them there.
            nativeAead({ evenIfDisabled: true }),
          ),
        );
      }
      if (sources.size === 0) {
        throw new TypeError(`${target} is not encrypted: send it without --decrypt`);
      }
    } catch (e) {
      for (const o of opened) o.store.close();
      throw e;
    }
  }
  const store = Store.open(pos[0]!);
  try {
    const chunks = sendStream(store, target, {
      ...options,
      sourceFor: (row) => sources.get(row.id) ?? null,
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
    for (const o of opened) o.store.close();
  }
}
