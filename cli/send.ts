/**
 * `zsend send [-i SNAP | -I SNAP] [-D] [-R] [-p] [-L] [-e] [-c] [-v] [-P] [-n] STORE
 * DATASET@SNAP`: a stored snapshot as a send stream on stdout, for `zfs receive`. `-L`, `-e`
 * and `-c` are `zfs send`'s: large blocks whole, embedded blocks embedded, compressed blocks
 * compressed. `-v` and `-P` print `zfs send`'s estimate lines (on stdout with `-n`, as zfs
 * does), sizes from a pass over the records that reads no block.
 * `zsend send -t TOKEN STORE` sends the rest of a cut receive (`zfs send -t`), and
 * `zsend send --saved STORE DATASET` a partial receive's own data (`zfs send --saved`).
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { planSend, sendStream, type SendStreamOptions } from "../io/send.ts";
import { estimateLines, type SendEstimate } from "../core/send/verbose.ts";
import { progressFor } from "../io/progress.ts";
import { RECORD_SIZE } from "../core/stream/constants.ts";
import { Store } from "../io/store/store.ts";
import { writeStreamOutput } from "../io/stream_output.ts";
import { nameArg, storeArg } from "./args.ts";
import { engine, rejectUnknown, UsageError, warn } from "./common.ts";
import { KEY_FLAGS, keyMaterial } from "./key_flags.ts";
import { promptKey } from "./keys.ts";
import type { SendSource } from "../core/send/send.ts";
import { openSnapshotView } from "../io/store/open_snapshot.ts";
import type { DecryptedSnapshotView } from "../io/store/crypt_view.ts";
import { decryptedSendSource } from "../io/store/decrypted_source.ts";
import { nativeAead } from "../io/native/aead_native.ts";
import type { StreamChunk } from "../core/stream/writer.ts";
import { decodeResumeToken, resumeState } from "../core/resume/resume_token.ts";
import { resumeSnapshots, sendResumeStream, sendSavedStream } from "../io/send_resume.ts";

/** Usage of the verb. */
export const USAGE =
  "zsend send [-i SNAP | -I SNAP] [-D] [-R] [-p] [-L] [-e] [-c] [-v] [-P] [-n] [--progress] " +
  "[--decrypt [--key-file PATH | --passphrase-file PATH]] STORE DATASET@SNAP\n" +
  "       zsend send -t TOKEN [-e] [-v] [-n] [--decrypt [--key-file PATH | " +
  "--passphrase-file PATH]] STORE\n" +
  "       zsend send --saved [-v] [-n] STORE DATASET";

type Flags = {
  D: boolean;
  R: boolean;
  p: boolean;
  v: boolean;
  P: boolean;
  progress: boolean;
  n: boolean;
  L: boolean;
  e: boolean;
  c: boolean;
  decrypt: boolean;
  saved: boolean;
  i?: string;
  I?: string;
  t?: string;
  "key-file"?: string;
  "passphrase-file"?: string;
};

/**
 * Each raw snapshot of `names` that the stream reads, opened with the key (a wrong key is
 * refused here, before a byte is written), as a plain source by snapshot id. A plain snapshot
 * (in a -R or -I send) goes out as it is; none raw at all is refused.
 */
async function decryptedSources(
  store: string,
  names: string[],
  key: ReturnType<typeof keyMaterial>,
  opened: { store: Store }[],
): Promise<Map<number, SendSource>> {
  const sources = new Map<number, SendSource>();
  let material = key;
  for (const name of names) {
    const o = await openSnapshotView(store, name, material, async (info) => {
      // Asked once: the same key opens every snapshot of the send.
      material = await promptKey(name, info);
      return material;
    });
    if (!o.stored.raw) {
      o.store.close();
      continue;
    }
    opened.push(o);
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
  if (sources.size === 0) {
    throw new TypeError(`${names[0]} is not encrypted: send it without --decrypt`);
  }
  return sources;
}

/** Writes a stream to stdout (or counts it with `-n`); returns the exit status. */
function emit(chunks: Iterable<StreamChunk>, flags: Flags): number {
  let bytes = 0;
  if (flags.n) {
    for (const c of chunks) bytes += c.length;
    warn(`total estimated size is ${bytes} bytes`);
    return 0;
  }
  ({ bytes } = writeStreamOutput(chunks));
  if (flags.v) warn(`sent ${bytes} bytes`);
  return 0;
}

/** `-t TOKEN` and `--saved`. */
async function resumeMain(flags: Flags, pos: string[]): Promise<number> {
  const key = keyMaterial(flags);
  if (flags.t !== undefined) {
    const bad = flags.saved || flags.i !== undefined || flags.I !== undefined || flags.R ||
      flags.p || flags.D || flags.L || flags.c;
    if (bad) throw new UsageError("invalid flags combined with -t (the token says -L, -c and -w)");
    if (pos.length !== 1) throw new UsageError("send -t TOKEN takes STORE");
  } else {
    const bad = flags.i !== undefined || flags.I !== undefined || flags.R || flags.p ||
      flags.D || flags.L || flags.e || flags.c || flags.decrypt;
    if (bad) throw new UsageError("incompatible flags combined with --saved");
    if (pos.length !== 2) throw new UsageError("send --saved takes STORE DATASET");
    if (pos[1]!.includes("@")) {
      throw new UsageError("saved send must name the dataset with partially-received state");
    }
  }
  if (key !== null && !flags.decrypt) {
    throw new UsageError("--key-file and --passphrase-file go with --decrypt");
  }
  storeArg(pos[0]!);
  if (!flags.n && Deno.stdout.isTerminal()) {
    throw new UsageError("the stream cannot be written to a terminal: redirect it or pipe it");
  }
  const opened: { store: Store }[] = [];
  const store = Store.open(pos[0]!);
  try {
    const options = { fletcher4: engine(), payloadRefs: !flags.n };
    if (flags.t === undefined) {
      const p = store.partialReceive(pos[1]!);
      if (p === null) throw new TypeError(`'${pos[1]}' does not have any resumable receive state`);
      const state = resumeState(decodeResumeToken(p.token).nvlist);
      if (flags.v || flags.n) warn(`${flags.n ? "would send" : "sending"} saved ${state.toname}`);
      return emit(sendSavedStream(store, pos[1]!, state, options), flags);
    }
    const state = resumeState(decodeResumeToken(flags.t).nvlist);
    if (flags.e) state.embedok = true;
    if (flags.decrypt && state.rawok) {
      throw new UsageError("the token asks for a raw send (rawok): not with --decrypt");
    }
    let sources = new Map<number, SendSource>();
    if (flags.decrypt) {
      const s = resumeSnapshots(store, state);
      const names = [s.to, ...(s.from === null ? [] : [s.from])].map((r) =>
        `${r.datasetName}@${r.name}`
      );
      sources = await decryptedSources(pos[0]!, names, key, opened);
    }
    if (flags.v || flags.n) {
      warn(
        `${flags.n ? "would send" : "sending"} ${state.toname} from object ${state.object} ` +
          `offset ${state.offset}`,
      );
    }
    return emit(
      sendResumeStream(store, state, {
        ...options,
        sourceFor: (row) => sources.get(row.id) ?? null,
      }),
      flags,
    );
  } finally {
    store.close();
    for (const o of opened) o.store.close();
  }
}

/** Runs the verb; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    boolean: ["D", "R", "p", "v", "P", "n", "L", "e", "c", "help", "decrypt", "saved", "progress"],
    string: ["i", "I", "t", ...KEY_FLAGS],
    alias: { L: "large-block", e: "embed", c: "compressed" },
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  if (flags.t === "") throw new UsageError("-t needs a TOKEN");
  if (flags.t !== undefined || flags.saved) return await resumeMain(flags, flags._.map(String));
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
  let sources = new Map<number, SendSource>();
  if (flags.decrypt) {
    // The snapshots the stream reads, as the send plans them.
    const plan = Store.open(pos[0]!);
    let names: string[];
    try {
      const rows = planSend(plan, target, options).parts.flatMap((p) =>
        p.from ? [p.to, p.from] : [p.to]
      );
      names = [...new Set(rows.map((r) => `${r.datasetName}@${r.name}`))];
    } finally {
      plan.close();
    }
    try {
      sources = await decryptedSources(pos[0]!, names, key, opened);
    } catch (e) {
      for (const o of opened) o.store.close();
      throw e;
    }
  }
  const store = Store.open(pos[0]!);
  try {
    const all: SendStreamOptions = {
      ...options,
      sourceFor: (row) => sources.get(row.id) ?? null,
      dedup: flags.D,
      props: flags.p,
      largeBlocks: flags.L,
      embed: flags.e,
      compressed: flags.c,
      fletcher4: engine(),
      payloadRefs: true,
    };
    let total: number | null = null;
    if (flags.v || flags.P) {
      const compound = flags.R || flags.I !== undefined;
      const { parts, streamBytes } = estimate(store, target, all, compound, from);
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
      sent = writeStreamOutput(sendStream(store, target, all), {
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
