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
import { countedChunks, inputSize, progressFor } from "../io/progress.ts";
import { firstMissing, nameArg, storeArg, type StoreState, streamInputArg } from "./args.ts";
import { engine, rejectUnknown, UsageError } from "./common.ts";

/** Usage of the verb. */
export const USAGE =
  "zsend recv [-F] [-d | -e] [-n] [-v] [-s] [--progress] STORE TARGET [FILE|-]\n       zsend recv -A STORE TARGET";

/** Runs the verb; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    boolean: ["F", "d", "e", "n", "v", "s", "A", "progress", "help"],
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  if (flags.d && flags.e) throw new UsageError("-d and -e exclude each other");
  if (flags.A) return await abortPartial(flags._.map(String), flags);
  const [storeDir, target, given, ...extra] = flags._.map(String);
  if (storeDir === undefined || target === undefined || extra.length > 0) {
    throw new UsageError("recv takes STORE TARGET [FILE|-]");
  }
  nameArg(target, flags.d || flags.e ? "dataset" : "dataset or snapshot", "TARGET");
  const input = streamInputArg(given);
  const state = storeArg(storeDir, { create: true });
  // What a failed first receive takes back: the directories it made on the way to STORE.
  const made = state === "absent" ? firstMissing(storeDir) : null;
  const names: NameMode = flags.d ? "discard-pool" : flags.e ? "last-component" : "as-given";
  const progress = progressFor({
    asked: flags.progress || flags.v,
    total: inputSize(input),
    label: "zsend recv: ",
  });
  // -n touches nothing: without a store yet, the trial runs in a scratch store.
  const scratch = flags.n && state !== "store"
    ? await Deno.makeTempDir({ prefix: "zsend-recv-n-" })
    : null;
  const dir = scratch === null ? storeDir : `${scratch}/store`;
  let store: Store;
  try {
    store = Store.open(dir, { create: true });
  } catch (e) {
    if (scratch !== null) await Deno.remove(scratch, { recursive: true });
    else if (state !== "store") await unmake(made ?? storeDir, state);
    throw e;
  }
  let received = 0;
  try {
    // The reader lends its buffers to the pack writes: payloads go to the packs uncopied.
    const source = countedChunks(
      openStreamInput(input, { reuse: true, leases: store.packs.leases }),
      progress,
    );
    const got = await receiveStream(store, source, {
      target,
      names,
      force: flags.F,
      dryRun: flags.n,
      resumable: flags.s,
      // How often -s commits its partial receive as it goes (ms); tests make it every record.
      ...(Deno.env.get("ZSEND_RECV_CHECKPOINT_MS")
        ? { checkpointMs: Number(Deno.env.get("ZSEND_RECV_CHECKPOINT_MS")) }
        : {}),
      onPartial: (p) => {
        progress?.interrupt();
        received++; // the store now holds it: never taken back as a failed first receive
        console.error(
          `zsend recv: kept a partial receive of ${p.dataset}@${p.snapshot} (resume at object ` +
            `${p.state.object} offset ${p.state.offset}, ${p.state.bytes} bytes); ` +
            `receive_resume_token ${p.token}`,
        );
      },
      fletcher4: engine(),
      ...(progress ? { onProgress: (b: number, r: number) => progress.update(b, r) } : {}),
      onSnapshot: (s) => {
        if (!s.dryRun) received++;
        if (!flags.v && !flags.n) return;
        progress?.interrupt();
        const [destroyed, got, fresh] = s.dryRun
          ? ["would destroy", "would receive", "would be new"]
          : ["destroyed", "received", "new"];
        for (const r of s.rolledBack) console.log(`${destroyed} ${r} (rolled back by -F)`);
        console.log(
          `${got} ${s.kind} stream of ${s.dataset}@${s.snapshot} ` +
            `(guid ${s.guid.toString(16)}): ${s.records} records, ${s.bytes} bytes, ` +
            `${s.newBytes} bytes ${fresh} to the store`,
        );
      },
    });
    progress?.done();
    if (got.length === 0) console.error("zsend recv: the stream held no snapshot");
    return 0;
  } finally {
    progress?.done();
    store.close();
    if (scratch !== null) await Deno.remove(scratch, { recursive: true });
    else if (state !== "store" && received === 0) await unmake(made ?? storeDir, state);
  }
}

/** `recv -A STORE TARGET`: drops the partial receive of TARGET. */
async function abortPartial(
  args: string[],
  flags: { F: boolean; d: boolean; e: boolean; n: boolean; s: boolean; v: boolean },
): Promise<number> {
  if (flags.F || flags.d || flags.e || flags.n || flags.s) {
    throw new UsageError("-A takes no other flag");
  }
  const [storeDir, target, ...extra] = args;
  if (storeDir === undefined || target === undefined || extra.length > 0) {
    throw new UsageError("recv -A takes STORE TARGET");
  }
  nameArg(target, "dataset", "TARGET");
  storeArg(storeDir);
  const store = Store.open(storeDir);
  try {
    await store.lock();
    const p = store.partialReceive(target);
    if (p === null) {
      console.error(`zsend recv: '${target}' does not have any resumable receive state to abort`);
      return 1;
    }
    store.begin();
    store.dropPartialReceive(p);
    await store.commit();
    if (flags.v) console.log(`dropped the partial receive of ${target}@${p.name}`);
    return 0;
  } finally {
    store.close();
  }
}

/**
 * Takes back a store this run made and received nothing into: a first receive that fails
 * leaves the directory as it found it (absent, or empty).
 */
async function unmake(dir: string, state: Exclude<StoreState, "store">): Promise<void> {
  if (state === "absent") {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    return;
  }
  for (const e of Deno.readDirSync(dir)) {
    await Deno.remove(`${dir}/${e.name}`, { recursive: true }).catch(() => {});
  }
}
