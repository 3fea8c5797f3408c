/**
 * `zsend send -t TOKEN` and `zsend send --saved`: the rest of a cut receive from a store, and
 * a partial receive's own data, as `zfs send -t` and `zfs send --saved` make them (libzfs
 * `zfs_send_resume_impl_cb_impl` and `zfs_send_saved`; `dmu_send.c`).
 *
 * @module
 */

import type { Fletcher4Engine } from "../core/checksum/fletcher4.ts";
import { FEATURE } from "../core/stream/constants.ts";
import { RecordSender } from "../core/stream/pending.ts";
import { type StreamChunk, StreamWriter } from "../core/stream/writer.ts";
import { type SendFlags, sendRecords, type SendSource } from "../core/send/send.ts";
import { type ResumeState } from "../core/resume/resume_token.ts";
import { StoreSendSource } from "./store/send_source.ts";
import type { SnapshotRow, Store } from "./store/store.ts";

/** Options of {@linkcode sendResumeStream} and {@linkcode sendSavedStream}. */
export interface ResumeSendOptions {
  fletcher4?: Fletcher4Engine;
  /** Give stored blocks as payload references (see `io/stream_output.ts`). */
  payloadRefs?: boolean;
  /** The source to send a stored snapshot from instead of the store's (`--decrypt`). */
  sourceFor?: (row: SnapshotRow) => SendSource | null;
}

/** What a token resumes: the snapshot, and the one it is incremental from (or null). */
export interface ResumeSnapshots {
  to: SnapshotRow;
  from: SnapshotRow | null;
}

const hex = (g: bigint) => `0x${g.toString(16)}`;
const refuse = (why: string): never => {
  throw new TypeError(`cannot resume send: ${why}`);
};

/**
 * The stored snapshots a token names, found as libzfs finds them: the snapshot by `toguid`
 * (the one named `toname` first), the incremental source by `fromguid` (in the same dataset
 * first, then the dataset's origin); refused with libzfs's words when the store lacks them.
 *
 * @param store the open store
 * @param state the token's fields
 * @returns the two rows
 */
export function resumeSnapshots(store: Store, state: ResumeState): ResumeSnapshots {
  const named = store.snapshotByName(state.toname);
  const same = store.snapshotsByGuid(state.toguid);
  const to = same.find((s) => s.id === named?.id) ?? same[0];
  if (to === undefined) {
    refuse(
      named !== null
        ? `'${state.toname}' is no longer the same snapshot used in the initial send ` +
          `(its guid is ${hex(named.guid)}, the token's ${hex(state.toguid)})`
        : `'${state.toname}' used in the initial send (guid ${hex(state.toguid)}) is not ` +
          "in the store",
    );
  }
  let from: SnapshotRow | null = null;
  if (state.fromguid !== undefined && state.fromguid !== 0n) {
    const found = store.snapshotsByGuid(state.fromguid);
    const origin = store.datasetByName(to!.datasetName)?.origin ?? null;
    from = found.find((s) => s.dataset === to!.dataset && s.id < to!.id) ??
      found.find((s) => s.id === origin) ?? null;
    if (from === null) {
      refuse(
        found.length === 0
          ? `incremental source ${hex(state.fromguid)} no longer exists in the store`
          : `incremental source ${hex(state.fromguid)} is not an earlier snapshot of ` +
            `${to!.datasetName} nor its origin`,
      );
    }
  }
  return { to: to!, from };
}

const sameGuids = (a: bigint[] | null | undefined, b: bigint[] | undefined) =>
  a !== null && a !== undefined && b !== undefined && a.length === b.length &&
  a.every((g, i) => g === b[i]);

/** Refuses a token the stored snapshots cannot answer as the original sender would. */
function checkResumable(state: ResumeState, s: ResumeSnapshots, decrypting: boolean): void {
  const name = `${s.to.datasetName}@${s.to.name}`;
  const raw = (s.to.features & BigInt(FEATURE.RAW)) !== 0n;
  if (state.rawok && !raw) {
    refuse(`the token asks for a raw send (rawok) but ${name} is not encrypted in the store`);
  }
  if (!state.rawok && raw && !decrypting) {
    refuse(
      `the token asks for a send that is not raw but ${name} is encrypted in the store: ` +
        "give --decrypt with its key",
    );
  }
  if (state.redactSnaps !== undefined && !sameGuids(s.to.redactSnaps, state.redactSnaps)) {
    refuse(`${name} is not redacted with respect to the token's redact_snaps`);
  }
  if (
    state.bookRedactSnaps !== undefined && !sameGuids(s.from?.redactSnaps, state.bookRedactSnaps)
  ) {
    refuse("the incremental source is not redacted as the token's book_redact_snaps say");
  }
}

/** The flags the token's `*ok` fields ask for (`lzc_flags_from_resume_nvl`). */
function tokenFlags(state: ResumeState): SendFlags {
  return {
    largeBlocks: state.largeblockok,
    embed: state.embedok,
    compressed: state.compressok,
  };
}

/**
 * `zfs send -t TOKEN`: the stream from the token's position on (BEGIN with RESUMING and
 * `resume_object`/`resume_offset`, the records from there, END), with the flags it names.
 *
 * @param store the open store
 * @param state the decoded token
 * @param options checksum engine, payload references, a decrypting source
 */
export function* sendResumeStream(
  store: Store,
  state: ResumeState,
  options: ResumeSendOptions = {},
): Generator<StreamChunk> {
  const s = resumeSnapshots(store, state);
  const source = (row: SnapshotRow, refs: boolean) =>
    options.sourceFor?.(row) ?? new StoreSendSource(store, row, { payloadRefs: refs });
  const to = source(s.to, options.payloadRefs === true);
  checkResumable(state, s, options.sourceFor?.(s.to) != null);
  const writer = new StreamWriter({
    littleEndian: s.to.littleEndian,
    ...(options.fletcher4 ? { fletcher4: options.fletcher4 } : {}),
  });
  yield* sendRecords(
    new RecordSender(writer),
    to,
    s.from === null ? null : source(s.from, false),
    {
      toname: `${s.to.datasetName}@${s.to.name}`,
      clone: s.from !== null && s.from.dataset !== s.to.dataset,
      ...tokenFlags(state),
      resume: { object: state.object, offset: state.offset },
    },
  );
}

/**
 * `zfs send --saved DATASET`: what a partial receive holds, as a stream of the snapshot it is
 * receiving (its toguid and toname, from its incremental source) with the flags of its token,
 * from the start and without END, so that a `zfs receive -s` of it keeps the same partial
 * state. The kernel's BEGIN carries the creation time of the dataset holding the partial
 * receive; the store keeps the original stream's, which goes out instead.
 *
 * @param store the open store
 * @param dataset the dataset with the partial receive
 * @param state its token's fields
 * @param options checksum engine, payload references
 */
export function* sendSavedStream(
  store: Store,
  dataset: string,
  state: ResumeState,
  options: ResumeSendOptions = {},
): Generator<StreamChunk> {
  const p = store.partialReceive(dataset);
  if (p === null) throw new TypeError(`'${dataset}' does not have any resumable receive state`);
  const row = store.partialSnapshot(p);
  const parent = p.parent === null ? null : store.snapshot(p.parent);
  const raw = (row.features & BigInt(FEATURE.RAW)) !== 0n;
  // setup_featureflags: the flags follow the receive's, whatever the data so far needs.
  let features = 0n;
  if (state.largeblockok) features |= BigInt(FEATURE.LARGE_BLOCKS);
  if ((state.embedok || state.rawok) && !raw) features |= BigInt(FEATURE.EMBED_DATA);
  if (state.compressok || state.rawok) features |= BigInt(FEATURE.COMPRESSED);
  if (features !== 0n || raw) features |= BigInt(FEATURE.LZ4);
  const writer = new StreamWriter({
    littleEndian: row.littleEndian,
    ...(options.fletcher4 ? { fletcher4: options.fletcher4 } : {}),
  });
  yield* sendRecords(
    new RecordSender(writer),
    new StoreSendSource(store, row, { payloadRefs: options.payloadRefs === true }),
    parent === null ? null : new StoreSendSource(store, parent),
    {
      toname: state.toname,
      clone: parent !== null && parent.dataset !== row.dataset,
      ...tokenFlags(state),
      features,
      end: false,
    },
  );
}
