/**
 * What a BEGIN asks of the target, decided as `zfs receive` decides it: a full stream
 * creates a dataset, an incremental applies onto the latest snapshot (or, with `-F`, rolls
 * back to its source first), a clone stream creates a clone of its origin.
 *
 * @module
 */

import { BEGIN_FLAG, FEATURE } from "../stream/constants.ts";
import { DATA_TYPE, decodeNvlist, nvlistGet } from "../stream/nvlist.ts";
import { type DrrBegin, featureFlags, hasFeature } from "../stream/record.ts";

/** A snapshot as the target knows it. */
export interface KnownSnapshot {
  dataset: string;
  name: string;
  guid: bigint;
  /**
   * The snapshots it is redacted with respect to (`redact_snaps` of the redacted stream it came
   * from), or null (or absent) when it is not redacted.
   */
  redactSnaps?: bigint[] | null;
  /**
   * Whether a block larger than 128 KiB was ever written into its dataset up to it (the
   * dataset's `large_blocks` feature is active): an incremental onto it must then be `-L`.
   */
  largeBlocks?: boolean;
}

/** What the nvlist payload of a substream's BEGIN says (`BEGINNV_*` of `dmu_send.c`). */
export interface BeginDetails {
  /** `redact_snaps`: the snapshots a redacted send is redacted with respect to. */
  redactSnaps: bigint[] | null;
  /** `redact_from_snaps`: those of the redaction bookmark or redacted snapshot sent from. */
  redactFromSnaps: bigint[] | null;
  /** `resume_object` and `resume_offset` of a resuming stream (`zfs send -t`). */
  resumeObject: bigint | null;
  resumeOffset: bigint | null;
}

/**
 * Reads the nvlist payload of a substream's BEGIN (empty: nothing).
 *
 * @param payload the BEGIN's payload
 * @returns what it says; throws `NvlistError` when it is not an nvlist
 * @example
 * ```ts
 * import { beginDetails } from "./begin_plan.ts";
 * const d = beginDetails(new Uint8Array(0));
 * if (d.redactSnaps !== null || d.resumeObject !== null) throw new Error();
 * ```
 */
export function beginDetails(payload: Uint8Array): BeginDetails {
  if (payload.length === 0) {
    return { redactSnaps: null, redactFromSnaps: null, resumeObject: null, resumeOffset: null };
  }
  const list = decodeNvlist(payload);
  return {
    redactSnaps: nvlistGet(list, "redact_snaps", DATA_TYPE.UINT64_ARRAY) ?? null,
    redactFromSnaps: nvlistGet(list, "redact_from_snaps", DATA_TYPE.UINT64_ARRAY) ?? null,
    resumeObject: nvlistGet(list, "resume_object", DATA_TYPE.UINT64) ?? null,
    resumeOffset: nvlistGet(list, "resume_offset", DATA_TYPE.UINT64) ?? null,
  };
}

const NO_DETAILS: BeginDetails = {
  redactSnaps: null,
  redactFromSnaps: null,
  resumeObject: null,
  resumeOffset: null,
};

/** `compatible_redact_snaps`: every one of `snaps` is among `origin`'s. */
function subsetOf(snaps: bigint[], origin: bigint[]): boolean {
  return snaps.length <= origin.length && snaps.every((g) => origin.includes(g));
}

/**
 * `redact_check` of `dmu_recv.c`: whether a stream may be received on top of a redacted
 * snapshot. Null when it may, else why not.
 */
function redactFault(
  begin: DrrBegin,
  details: BeginDetails,
  origin: KnownSnapshot,
): string | null {
  const originSnaps = origin.redactSnaps;
  if (originSnaps === null || originSnaps === undefined || begin.fromguid === 0n) return null;
  const list = (g: bigint[]) => g.map(hex).join(", ") || "none";
  const what = `${origin.dataset}@${origin.name} is redacted (with respect to ${
    list(originSnaps)
  })`;
  if (details.redactFromSnaps !== null) {
    if (subsetOf(details.redactFromSnaps, originSnaps)) return null;
    return `${what}, and the stream was sent from a redaction bookmark or redacted snapshot ` +
      `of other snapshots (${list(details.redactFromSnaps)})`;
  }
  if (hasFeature(featureFlags(begin.versioninfo), FEATURE.REDACTED)) {
    if (details.redactSnaps !== null && subsetOf(details.redactSnaps, originSnaps)) return null;
    return `${what}: a redacted stream onto it must be redacted with respect to a subset of ` +
      `those (the stream: ${list(details.redactSnaps ?? [])})`;
  }
  if (originSnaps.includes(begin.toguid)) return null;
  return `${what}: an unredacted incremental onto it must be of one of those snapshots, or ` +
    `be sent from its redaction bookmark`;
}

/** What the target knows, asked by name and guid. */
export interface TargetState {
  /** The dataset's objset type and snapshots, oldest first; null when it does not exist. */
  dataset(name: string): { objsetType: number; snapshots: KnownSnapshot[] } | null;
  /**
   * A snapshot with this guid anywhere in the target, or null; of several, the one whose
   * dataset is nearest (longest common name prefix) to `near`.
   */
  snapshotByGuid(guid: bigint, near?: string): KnownSnapshot | null;
}

/** How to receive one substream. */
export type BeginPlan =
  | { kind: "full"; dataset: string; snapshot: string }
  | {
    kind: "incremental";
    dataset: string;
    snapshot: string;
    from: KnownSnapshot;
    /** Snapshots to destroy first (newer than `from`), with `-F`. */
    rollback: KnownSnapshot[];
  }
  | { kind: "clone"; dataset: string; snapshot: string; origin: KnownSnapshot };

/** A BEGIN the target cannot take; the message is `zfs receive`'s reason. */
export class ReceiveRefused extends Error {
  /** @param message why */
  constructor(message: string) {
    super(message);
    this.name = "ReceiveRefused";
  }
}

const hex = (g: bigint) => g.toString(16);

/**
 * Decides how to receive a substream into `dataset@snapshot`.
 *
 * @param begin the substream's BEGIN
 * @param dataset the target dataset's name
 * @param snapshot the snapshot's name (from the stream's toname unless the user named one)
 * @param state what the target holds
 * @param force `-F`: roll back to the incremental's source when newer snapshots exist
 * @param details what the BEGIN's nvlist payload says ({@linkcode beginDetails})
 * @returns the plan; throws {@linkcode ReceiveRefused} when `zfs receive` would refuse
 * @example
 * ```ts
 * import { planBegin } from "./begin_plan.ts";
 * const state = { dataset: () => null, snapshotByGuid: () => null };
 * const begin = { toguid: 1n, fromguid: 0n, flags: 0, objset_type: 2, versioninfo: 1n } as never;
 * const plan = planBegin(begin, "backup/fs", "s1", state, false);
 * if (plan.kind !== "full") throw new Error();
 * ```
 */
export function planBegin(
  begin: DrrBegin,
  dataset: string,
  snapshot: string,
  state: TargetState,
  force: boolean,
  details: BeginDetails = NO_DETAILS,
): BeginPlan {
  const features = featureFlags(begin.versioninfo);
  if (hasFeature(features, FEATURE.RESUMING)) {
    // The kernel takes a resuming stream only onto the partial state that an interrupted
    // `zfs receive -s` left (a %recv clone or an inconsistent dataset with the same toguid).
    // The store's partial receives (`recv -s`) are looked up before this plan; here there
    // is none.
    const at = details.resumeObject === null
      ? ""
      : ` from object ${details.resumeObject} offset ${details.resumeOffset ?? 0n}`;
    throw new ReceiveRefused(
      `cannot receive resume stream: '${dataset}' has no partially received state of ` +
        `snapshot ${hex(begin.toguid)} to resume${at} (a \`zfs send -t\` stream continues an ` +
        `interrupted \`zfs receive -s\`; receive the cut stream with \`zsend recv -s\` to keep ` +
        `one, or send the whole snapshot again)`,
    );
  }
  if (hasFeature(features, FEATURE.REDACTED) && details.redactSnaps === null) {
    throw new ReceiveRefused(
      "invalid backup stream: a redacted stream without redact_snaps in its BEGIN nvlist",
    );
  }
  const existing = state.dataset(dataset);
  const clone = (begin.flags & BEGIN_FLAG.CLONE) !== 0;
  if (existing !== null) {
    const same = existing.snapshots.find((s) => s.guid === begin.toguid);
    if (same !== undefined) {
      throw new ReceiveRefused(
        `snapshot ${dataset}@${same.name} (guid ${hex(begin.toguid)}) was already received`,
      );
    }
    if (existing.snapshots.some((s) => s.name === snapshot)) {
      throw new ReceiveRefused(`destination '${dataset}@${snapshot}' exists`);
    }
  }

  if (clone) {
    if (existing !== null) throw new ReceiveRefused(`destination '${dataset}' exists`);
    const origin = state.snapshotByGuid(begin.fromguid, dataset);
    if (origin === null) {
      throw new ReceiveRefused(
        `the clone's origin snapshot (guid ${hex(begin.fromguid)}) is not in the store: ` +
          `receive it first`,
      );
    }
    const fault = redactFault(begin, details, origin);
    if (fault !== null) {
      throw new ReceiveRefused(
        `cannot receive new filesystem stream: invalid backup stream: ${fault}`,
      );
    }
    // The kernel checks the large-block rule of a clone against the parent filesystem.
    const slash = dataset.lastIndexOf("/");
    const parent = slash < 0 ? null : state.dataset(dataset.slice(0, slash));
    if (parent?.snapshots[parent.snapshots.length - 1]?.largeBlocks === true) {
      largeBlockCheck(features, "new filesystem");
    }
    return { kind: "clone", dataset, snapshot, origin };
  }

  if (begin.fromguid === 0n) {
    if (existing !== null) {
      throw new ReceiveRefused(
        `destination '${dataset}' exists and has snapshots (e.g. ${dataset}@` +
          `${existing.snapshots[existing.snapshots.length - 1]?.name}): a full stream ` +
          `cannot overwrite it`,
      );
    }
    return { kind: "full", dataset, snapshot };
  }

  if (existing === null) {
    throw new ReceiveRefused(
      `destination '${dataset}' does not exist: an incremental stream needs its source ` +
        `snapshot (guid ${hex(begin.fromguid)})`,
    );
  }
  if (existing.objsetType !== begin.objset_type) {
    throw new ReceiveRefused(
      `destination '${dataset}' is of objset type ${existing.objsetType}, ` +
        `the stream of type ${begin.objset_type}`,
    );
  }
  const snaps = existing.snapshots;
  const latest = snaps[snaps.length - 1];
  const at = snaps.findIndex((s) => s.guid === begin.fromguid);
  if (at < 0) {
    throw new ReceiveRefused(
      `incremental source (guid ${hex(begin.fromguid)}) does not exist in '${dataset}'`,
    );
  }
  if (at !== snaps.length - 1 && !force) {
    throw new ReceiveRefused(
      `most recent snapshot of '${dataset}' ('${latest?.name}') does not match incremental ` +
        `source '${snaps[at]!.name}' (-F rolls back to it)`,
    );
  }
  const from = snaps[at]!;
  const fault = redactFault(begin, details, from);
  if (fault !== null) {
    throw new ReceiveRefused(`cannot receive incremental stream: invalid backup stream: ${fault}`);
  }
  if (from.largeBlocks === true) largeBlockCheck(features, "incremental");
  if (at === snaps.length - 1) {
    return { kind: "incremental", dataset, snapshot, from, rollback: [] };
  }
  return {
    kind: "incremental",
    dataset,
    snapshot,
    from: snaps[at]!,
    rollback: snaps.slice(at + 1),
  };
}

/**
 * `recv_check_large_blocks`: onto a dataset that holds blocks larger than 128 KiB, only a
 * stream sent with `-L` (LARGE_BLOCKS): the kernel would otherwise have to re-aggregate the
 * split blocks.
 */
function largeBlockCheck(features: bigint, what: string): void {
  if (!hasFeature(features, FEATURE.LARGE_BLOCKS)) {
    throw new ReceiveRefused(
      `cannot receive ${what} stream: incremental send stream requires -L (--large-block), ` +
        "to match previous receive.",
    );
  }
}
