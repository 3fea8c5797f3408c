/**
 * `zsend send [-i SNAP | -I SNAP] [-D] [-R] [-p] [-L] [-e] [-c] [-v] [-P] [-n] STORE
 * DATASET@SNAP`: a stored snapshot as a send stream on stdout, for `zfs receive`. `-L`, `-e`
 * and `-c` are `zfs send`'s: large blocks whole, embedded blocks embedded, compressed blocks
 * compressed. `-v` and `-P` print `zfs send`'s estimate lines (on stdout with `-n`, as zfs
 * does), sizes from a pass over the records that reads no block.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { sendStream, type SendStreamOptions } from "../io/send.ts";
import { estimateLines, type SendEstimate } from "../core/send/verbose.ts";
import { progressFor } from "../io/progress.ts";
import { RECORD_SIZE } from "../core/stream/constants.ts";
import { Store } from "../io/store/store.ts";
import { writeStreamOutput } from "../io/stream_output.ts";
import { nameArg, storeArg } from "./args.ts";
import { engine, rejectUnknown, UsageError } from "./common.ts";
import { KEY_FLAGS, keyMaterial, promptKey } from "./keys.ts";
import type { SendSource } from "../core/send/send.ts";
import { openSnapshotView } from "../io/store/open_snapshot.ts";
import type { DecryptedSnapshotView } from "../io/store/crypt_view.ts";
import { decryptedSendSource } from "../io/store/decrypted_source.ts";
import { nativeAead } from "../io/native/aead_native.ts";

/** Usage of the verb. */
export const USAGE =
  "zsend send [-i SNAP | -I SNAP] [-D] [-R] [-p] [-L] [-e] [-c] [-v] [-P] [-n] " +
  "[--progress] [--decrypt [--key-file PATH | --passphrase-file PATH]] STORE DATASET@SNAP";

/** Runs the verb; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    boolean: ["D", "R", "p", "v", "P", "n", "L", "e", "c", "help", "decrypt", "progress"],
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
  if (flags.decrypt && (flags.R || flags.I !== undefined)) {
    throw new UsageError("--decrypt sends one snapshot (or -i): not with -R or -I");
  }
  const opened: { store: Store }[] = [];
  const sources = new Map<number, SendSource>();
  if (flags.decrypt) {
    // Each raw snapshot the stream needs, opened with the key (a wrong key is refused here,
    // before a byte is written), as a plain source.
    const dataset = target.slice(0, target.indexOf("@"));
    const names = [target];
    if (from !== undefined) {
      names.push(
        from.startsWith("@") ? dataset + from : from.includes("@") ? from : `${dataset}@${from}`,
      );
    }
    try {
      for (const name of names) {
        const o = await openSnapshotView(pos[0]!, name, key, (info) => promptKey(name, info));
        opened.push(o);
        if (!o.stored.raw) {
          throw new TypeError(`${name} is not encrypted: send it without --decrypt`);
        }
        sources.set(
          o.stored.snapshot.id,
          await decryptedSendSource(
            o.store,
            o.stored.snapshot,
            o.view as DecryptedSnapshotView,
            // The sender reads blocks synchronously: Web Crypto cannot open them there.
            nativeAead({ evenIfDisabled: true }),
          ),
        );
      }
    } catch (e) {
      for (const o of opened) o.store.close();
      throw e;
    }
  }
  const store = Store.open(pos[0]!);
  try {
    const options: SendStreamOptions = {
      sourceFor: (row) => sources.get(row.id) ?? null,
      ...(from !== undefined ? { from } : {}),
      intermediate: flags.I !== undefined,
      replicate: flags.R,
      dedup: flags.D,
      props: flags.p,
      largeBlocks: flags.L,
      embed: flags.e,
      compressed: flags.c,
      fletcher4: engine(),
      payloadRefs: true,
    };
    const verbose = flags.v || flags.P;
    let total: number | null = null;
    if (verbose) {
      const compound = flags.R || flags.I !== undefined;
      const { parts, streamBytes } = estimate(store, target, options, compound, from);
      total = streamBytes;
      const text = estimateLines(parts, { parsable: flags.P, compound });
      // As zfs send: on stdout for a dry run, else on stderr (stdout holds the stream).
      if (flags.n) console.log(text.replace(/\n$/, ""));
      else Deno.stderr.writeSync(new TextEncoder().encode(text));
    }
    if (flags.n) return 0;
    const progress = progressFor({
      asked: flags.v || flags.progress,
      total,
      label: "zsend send: ",
    });
    let sent: number | undefined;
    try {
      sent = writeStreamOutput(sendStream(store, target, options), {
        ...(progress ? { onProgress: (b: number) => progress.update(b) } : {}),
      }).bytes;
    } finally {
      progress?.done(sent);
    }
    return 0;
  } finally {
    store.close();
    for (const o of opened) o.store.close();
  }
}

/**
 * Each snapshot's part of the send and its bytes, and the whole stream's bytes, from a pass over its records (payloads as
 * references: no block is read). A single send (not `-R`, `-I`) is one part named by its
 * source in full, as `zfs send -i` names it; the parts of a compound one name their source by
 * its short name, and a clone's first snapshot is a full send there, as `zfs send -R` says.
 */
function estimate(
  store: Store,
  target: string,
  options: SendStreamOptions,
  compound: boolean,
  from: string | undefined,
): { parts: SendEstimate[]; streamBytes: number } {
  const parts: SendEstimate[] = [];
  let streamBytes = 0;
  for (
    const c of sendStream(store, target, {
      ...options,
      onSubstream: (s) => {
        const short = s.from === null || s.clone ? null : s.from.slice(s.from.indexOf("@") + 1);
        parts.push({ to: s.to, from: short, bytes: 0 });
      },
    })
  ) {
    // The compound stream's own BEGIN is counted in no snapshot's part, as zfs counts.
    const last = parts[parts.length - 1];
    if (last !== undefined) last.bytes += c.length;
    streamBytes += c.length;
  }
  // Nor is the END that closes a compound stream (-R, -I, -p), one record after the last.
  const wrapped = options.replicate || options.intermediate || options.props;
  const last = parts[parts.length - 1];
  if (wrapped && last !== undefined) last.bytes -= RECORD_SIZE;
  if (compound) return { parts, streamBytes };
  const dataset = target.slice(0, target.indexOf("@"));
  const source = from === undefined
    ? null
    : from.startsWith("@")
    ? dataset + from
    : from.includes("@")
    ? from
    : `${dataset}@${from}`;
  const bytes = parts.reduce((n, p) => n + p.bytes, 0);
  return { parts: [{ to: target, from: source, bytes }], streamBytes };
}
