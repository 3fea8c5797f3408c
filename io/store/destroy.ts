/**
 * Destroying snapshots and datasets of a store, with `zfs destroy`'s refusals: a snapshot that
 * a clone (or a partial receive, which OpenZFS keeps as the hidden clone `DATASET/%recv`)
 * grew from, a dataset with children without `-r`. Snapshots are materialised (each has its
 * own object table and block map), so a destroyed snapshot takes nothing from the snapshots
 * after it: blocks stay while any snapshot row refers to them.
 *
 * @module
 */

import type { DatasetRow, PartialReceiveRow, SnapshotRow, Store } from "./store.ts";
import { freedBy } from "./space.ts";

/** What a destroy removes. */
export interface DestroyPlan {
  /** Snapshots, by dataset (children first) and age. */
  snapshots: SnapshotRow[];
  /** Partial receives (`recv -s`) of the datasets destroyed. */
  partials: PartialReceiveRow[];
  /** Datasets, children before their parents. */
  datasets: DatasetRow[];
}

/** A destroy that `zfs destroy` would refuse; the message is zfs's, on one line. */
export class DestroyRefused extends TypeError {
  /** @param message what is refused and why */
  constructor(message: string) {
    super(message);
    this.name = "DestroyRefused";
  }
}

const TYPE_NAMES: Record<number, string> = { 2: "filesystem", 3: "volume" };

/** The name OpenZFS gives the hidden clone that holds a dataset's partial receive. */
export function partialName(p: PartialReceiveRow): string {
  return `${p.datasetName}/%recv`;
}

/**
 * What `destroy [-r] NAME` removes, or why it is refused.
 *
 * @param name `DATASET@SNAP` (SNAP may be a range or a list: {@linkcode matchSnapspec}; with
 *   `recursive`, those snapshots of every descendant too) or
 *   `DATASET` (its snapshots and partial receive; with `recursive`, its descendants too)
 */
export function planDestroy(
  store: Store,
  name: string,
  options: { recursive?: boolean } = {},
): DestroyPlan {
  const recursive = options.recursive === true;
  const at = name.indexOf("@");
  const dname = at < 0 ? name : name.slice(0, at);
  const top = store.datasetByName(dname);
  const below = store.datasets().filter((d) => d.name.startsWith(`${dname}/`));
  // A store keeps no row for the parents of what it received (`recv -d` into POOL): such a
  // name stands for its descendants, as a pool's root dataset does.
  if (top === null && below.length === 0) {
    throw new DestroyRefused(`cannot open '${dname}': dataset does not exist`);
  }
  const tops = top === null ? [] : [top];
  if (at >= 0) {
    const spec = name.slice(at + 1);
    const snapshots = [...tops, ...(recursive ? below : [])].flatMap((d) =>
      matchSnapspec(store.snapshots(d.id), spec)
    );
    if (snapshots.length === 0) {
      throw new DestroyRefused(
        `could not find any snapshots to destroy; check snapshot names (${name})`,
      );
    }
    for (const s of snapshots) refuseDependents(store, s, new Set(), `${s.datasetName}@${s.name}`);
    return { snapshots, partials: [], datasets: [] };
  }
  const kind = top === null ? "filesystem" : TYPE_NAMES[top.objsetType] ?? "dataset";
  if (!recursive && below.length > 0) {
    throw new DestroyRefused(
      `cannot destroy '${dname}': ${kind} has children; use '-r' to destroy the following ` +
        `datasets: ${below.map((d) => d.name).join(", ")}`,
    );
  }
  // Children before parents, as zfs destroys them.
  const datasets = [...tops, ...below].sort((
    a,
    b,
  ) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0));
  const gone = new Set(datasets.map((d) => d.id));
  const snapshots = datasets.flatMap((d) => store.snapshots(d.id));
  const partials = store.partialReceives().filter((p) => gone.has(p.dataset));
  for (const s of snapshots) refuseDependents(store, s, gone, dname, kind);
  return { snapshots, partials, datasets };
}

/**
 * The snapshots of one dataset that a `zfs destroy` snapshot spec names, oldest first: `SNAP`,
 * a range `FIRST%LAST` (either end may be left out: from the oldest, to the newest; `%` alone is
 * every snapshot), or a comma-separated list of these. A name that is not there names nothing,
 * as in zfs (`zfs_iter_snapspec`).
 *
 * @param snapshots the dataset's snapshots, oldest first
 * @param spec what follows the `@`
 */
export function matchSnapspec(snapshots: SnapshotRow[], spec: string): SnapshotRow[] {
  const named = new Set<SnapshotRow>();
  for (const item of spec.split(",")) {
    const pct = item.indexOf("%");
    if (pct < 0) {
      const s = snapshots.find((x) => x.name === item);
      if (s !== undefined) named.add(s);
      continue;
    }
    const [first, last] = [item.slice(0, pct), item.slice(pct + 1)];
    const from = first === "" ? 0 : snapshots.findIndex((x) => x.name === first);
    const to = last === "" ? snapshots.length - 1 : snapshots.findIndex((x) => x.name === last);
    if (from < 0 || to < 0) continue;
    for (const s of snapshots.slice(from, to + 1)) named.add(s);
  }
  return snapshots.filter((s) => named.has(s));
}

/**
 * Refuses when a dataset outside `gone` is a clone of `s`, or a partial receive outside the
 * datasets destroyed grew from it, as zfs refuses a snapshot with dependent clones.
 */
function refuseDependents(
  store: Store,
  s: SnapshotRow,
  gone: Set<number>,
  target: string,
  kind = "snapshot",
): void {
  const clones = store.datasets().filter((d) => d.origin === s.id && !gone.has(d.id));
  const partials = store.partialReceives().filter((p) =>
    p.parent === s.id && !gone.has(p.dataset) && !clones.some((c) => c.id === p.dataset)
  );
  if (clones.length === 0 && partials.length === 0) return;
  const names = [
    ...clones.map((c) => c.name),
    ...partials.map((p) =>
      `${partialName(p)} (the partial receive of ${p.datasetName}@${p.name}: zsend recv -A ` +
      `drops it)`
    ),
  ];
  const which = kind === "snapshot" ? "" : ` (${s.datasetName}@${s.name})`;
  throw new DestroyRefused(
    `cannot destroy '${target}': ${kind} has dependent clones${which}: ${names.join(", ")}; ` +
      `destroy them first (zsend has no -R)`,
  );
}

/** The snapshot rows a plan removes: its snapshots and partial receives. */
export function planRows(plan: DestroyPlan): number[] {
  return [...plan.snapshots.map((s) => s.id), ...plan.partials.map((p) => p.id)];
}

/** Stored bytes whose blocks the plan leaves unused (what a gc can then give back). Reads only. */
export function planReclaims(store: Store, plan: DestroyPlan): number {
  return freedBy(store, planRows(plan)).stored;
}

/**
 * Removes what the plan names and forgets the blocks nothing uses any more. Run inside a
 * transaction ({@linkcode Store.begin}); the caller commits.
 */
export function applyDestroy(store: Store, plan: DestroyPlan): void {
  const datasets = JSON.stringify(plan.datasets.map((d) => d.id));
  // A clone destroyed with its origin's dataset: the link goes first.
  store.stmt("UPDATE datasets SET origin = NULL WHERE id IN (SELECT value FROM json_each(?))")
    .run(datasets);
  store.deleteSnapshotRows(planRows(plan));
  for (const table of ["dataset_crypt", "dataset_props"]) {
    store.stmt(`DELETE FROM ${table} WHERE dataset IN (SELECT value FROM json_each(?))`)
      .run(datasets);
  }
  store.stmt("DELETE FROM datasets WHERE id IN (SELECT value FROM json_each(?))").run(datasets);
  store.dropUnusedBlocks();
}

/** Names of what a plan destroys, in zfs's order: per dataset its snapshots, then itself. */
export function planNames(plan: DestroyPlan): string[] {
  const names: string[] = [];
  const named = new Set<number>();
  for (const d of plan.datasets) {
    for (const s of plan.snapshots) if (s.dataset === d.id) names.push(`${d.name}@${s.name}`);
    const own = plan.snapshots.some((s) => s.dataset === d.id);
    // A partial incremental is the hidden clone; a partial full or clone receive, the dataset.
    for (const p of plan.partials) if (p.dataset === d.id && own) names.push(partialName(p));
    names.push(d.name);
    named.add(d.id);
  }
  for (const s of plan.snapshots) {
    if (!named.has(s.dataset)) names.push(`${s.datasetName}@${s.name}`);
  }
  return names;
}
