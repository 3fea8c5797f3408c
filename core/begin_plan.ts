/**
 * What a BEGIN asks of the target, decided as `zfs receive` decides it: a full stream
 * creates a dataset, an incremental applies onto the latest snapshot (or, with `-F`, rolls
 * back to its source first), a clone stream creates a clone of its origin.
 *
 * @module
 */

import { BEGIN_FLAG } from "./constants.ts";
import type { DrrBegin } from "./record.ts";

/** A snapshot as the target knows it. */
export interface KnownSnapshot {
  dataset: string;
  name: string;
  guid: bigint;
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
 * @returns the plan; throws {@linkcode ReceiveRefused} when `zfs receive` would refuse
 * @example
 * ```ts
 * import { planBegin } from "./begin_plan.ts";
 * const state = { dataset: () => null, snapshotByGuid: () => null };
 * const begin = { toguid: 1n, fromguid: 0n, flags: 0, objset_type: 2 } as never;
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
): BeginPlan {
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
  if (latest !== undefined && latest.guid === begin.fromguid) {
    return { kind: "incremental", dataset, snapshot, from: latest, rollback: [] };
  }
  const at = snaps.findIndex((s) => s.guid === begin.fromguid);
  if (at < 0) {
    throw new ReceiveRefused(
      `incremental source (guid ${hex(begin.fromguid)}) does not exist in '${dataset}'`,
    );
  }
  if (!force) {
    throw new ReceiveRefused(
      `most recent snapshot of '${dataset}' ('${latest?.name}') does not match incremental ` +
        `source '${snaps[at]!.name}' (-F rolls back to it)`,
    );
  }
  return {
    kind: "incremental",
    dataset,
    snapshot,
    from: snaps[at]!,
    rollback: snaps.slice(at + 1),
  };
}
