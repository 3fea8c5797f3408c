/**
 * `zsend send`: streams of stored snapshots, as `zfs send` makes them: full, incremental
 * (`-i`), every snapshot in between (`-I`), a dataset and its children (`-R`), dedup (`-D`),
 * and a clone as a clone stream of its origin.
 *
 * @module
 */

import { HDRTYPE } from "../core/stream/constants.ts";
import type { Fletcher4Engine } from "../core/checksum/fletcher4.ts";
import { decodeNvlist, encodeNvlist, nv, type NvList, type NvPair } from "../core/stream/nvlist.ts";
import { RecordSender } from "../core/stream/pending.ts";
import { makeVersioninfo } from "../core/stream/record.ts";
import { DedupState, type SendFlags, sendRecords, type SendSource } from "../core/send/send.ts";
import { type StreamChunk, StreamWriter } from "../core/stream/writer.ts";
import { StoreSendSource } from "./store/send_source.ts";
import type { SnapshotRow, Store } from "./store/store.ts";
import { datasetCrypt } from "./store/dataset_crypt.ts";
import { datasetProps } from "./store/dataset_props.ts";
import type { FsCrypt } from "../core/receive/replication_crypt.ts";

/** Options of {@linkcode sendStream}. */
export interface SendStreamOptions extends SendFlags {
  /** `-i SNAP`: incremental from this snapshot (`@snap`, `snap` or `dataset@snap`). */
  from?: string;
  /** `-I`: include every snapshot between `from` and the target. */
  intermediate?: boolean;
  /** `-R`: the dataset and its children, every snapshot up to the target. */
  replicate?: boolean;
  /** `-D`: WRITE_BYREF for blocks sent before. */
  dedup?: boolean;
  /** `-p`: a compound stream with the properties nvlist (zsend stores no properties). */
  props?: boolean;
  fletcher4?: Fletcher4Engine;
  /**
   * Give blocks whose checksum the store holds as payload references (see
   * `io/stream_output.ts`) instead of their bytes.
   */
  payloadRefs?: boolean;
  /** Told each substream as it starts (`-v`), before any of its bytes. */
  onSubstream?: (part: SubstreamInfo) => void;
  /**
   * The source to send a stored snapshot from, instead of the store's own (`send --decrypt`:
   * a raw snapshot opened with its key); null or absent: the store's.
   */
  sourceFor?: (row: SnapshotRow) => SendSource | null;
  /** `send --decrypt`: raw snapshots go out opened (`sourceFor`), so the header is not raw. */
  decrypted?: boolean;
}

/** What a substream of a send is. */
export interface SubstreamInfo {
  /** The snapshot it sends, `DATASET@SNAP`. */
  to: string;
  /** The snapshot it is relative to, `DATASET@SNAP`, or null for a full stream. */
  from: string | null;
  /** A clone stream: `from` is the origin, in another dataset. */
  clone: boolean;
}

/** One substream to send: `to`, relative to `from` (null: full). */
export interface Part {
  to: SnapshotRow;
  from: SnapshotRow | null;
  clone: boolean;
}

function findFrom(store: Store, dataset: string, name: string): SnapshotRow {
  const full = name.startsWith("@")
    ? `${dataset}${name}`
    : name.includes("@")
    ? name
    : `${dataset}@${name}`;
  const row = store.snapshotByName(full);
  if (row === null) throw new TypeError(`incremental source ${full} is not in the store`);
  return row;
}

/** The substreams a send is made of, in order. */
function plan(store: Store, target: SnapshotRow, options: SendStreamOptions): Part[] {
  const parts: Part[] = [];
  const dataset = store.datasetByName(target.datasetName)!;
  const snaps = store.snapshots(dataset.id);
  const at = snaps.findIndex((s) => s.id === target.id);
  const origin = dataset.origin === null ? null : store.snapshot(dataset.origin);

  if (options.from !== undefined) {
    const from = findFrom(store, target.datasetName, options.from);
    if (from.dataset !== target.dataset) {
      // From another dataset: only the clone's origin, as a clone stream.
      if (origin === null || origin.id !== from.id) {
        throw new TypeError(
          `${from.datasetName}@${from.name} is not an earlier snapshot of ${target.datasetName} ` +
            `nor its origin`,
        );
      }
      const first = snaps[0]!;
      parts.push({ to: first, from, clone: true });
      if (options.intermediate) {
        for (let i = 1; i <= at; i++) {
          parts.push({ to: snaps[i]!, from: snaps[i - 1]!, clone: false });
        }
      } else if (first.id !== target.id) parts.push({ to: target, from: first, clone: false });
      return parts;
    }
    const fromAt = snaps.findIndex((s) => s.id === from.id);
    if (fromAt >= at) throw new TypeError(`${from.name} is not earlier than ${target.name}`);
    if (options.intermediate) {
      for (let i = fromAt + 1; i <= at; i++) {
        parts.push({ to: snaps[i]!, from: snaps[i - 1]!, clone: false });
      }
    } else parts.push({ to: target, from, clone: false });
    return parts;
  }
  parts.push({ to: target, from: null, clone: false });
  return parts;
}

/** One dataset of a `-R` send: its snapshots up to the target's name, what goes out of it. */
interface ReplicatedDataset {
  name: string;
  /** Every snapshot up to the one named like the target, oldest first (the nvlist's `snaps`). */
  snaps: SnapshotRow[];
  origin: SnapshotRow | null;
  /** The guid of the snapshot its children count from (`parent_fromsnap_guid`). */
  fromsnapGuid: bigint;
  /** The guid the nvlist gives as `parentfromsnap`: its parent's `fromsnapGuid`, 0 at the top. */
  parentFromsnap: bigint;
  /** A raw dataset's encryption facts (`is_encroot`, `keylocation`); null when not raw. */
  crypt: FsCrypt | null;
  /** The properties a stream gave it, as kept by the store; null when none. */
  props: NvList | null;
}

const U64 = (1n << 64n) - 1n;

/** FNV-1a (64-bit) of a name: a stable way to tell apart keys that would repeat. */
function nameHash(name: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(name)) h = ((h ^ BigInt(b)) * 0x100000001b3n) & U64;
  return h;
}

/** Properties that only a raw send carries: a plain stream of the data must not set them. */
const KEY_PROPS = new Set(["encryption", "keyformat", "keylocation", "pbkdf2iters", "pbkdf2salt"]);

/**
 * The datasets of `zfs send -R` of `top@tosnap` (libzfs `send_iterate_fs`): the top and every
 * descendant that has a snapshot named `tosnap` (one without it is left out, with its
 * children), parents before children and clones after their origin's dataset.
 */
function replicatedDatasets(
  store: Store,
  top: string,
  tosnap: string,
  fromsnap: string | null,
): ReplicatedDataset[] {
  const byName = new Map<string, ReplicatedDataset>();
  for (const d of store.datasets()) {
    if (d.name !== top && !d.name.startsWith(top + "/")) continue;
    const all = store.snapshots(d.id);
    const at = all.findIndex((s) => s.name === tosnap);
    if (at < 0) continue;
    const snaps = all.slice(0, at + 1);
    // The fromsnap, or else the tosnap (send_iterate_snap).
    const from = fromsnap === null ? undefined : snaps.find((s) => s.name === fromsnap);
    byName.set(d.name, {
      name: d.name,
      snaps,
      origin: d.origin === null ? null : store.snapshot(d.origin),
      fromsnapGuid: (from ?? snaps[at]!).guid,
      parentFromsnap: 0n,
      crypt: datasetCrypt(store, d.id),
      props: datasetProps(store, d.id),
    });
  }
  const out: ReplicatedDataset[] = [];
  const parentOf = (name: string) => name.slice(0, name.lastIndexOf("/"));
  // A dataset whose parent is not sent is not sent (its parent's iteration never reaches it).
  const reachable = (name: string): boolean =>
    name === top || (byName.has(parentOf(name)) && reachable(parentOf(name)));
  const pending = [...byName.values()].filter((d) => reachable(d.name));
  for (const d of pending) {
    if (d.name !== top) d.parentFromsnap = byName.get(parentOf(d.name))!.fromsnapGuid;
  }
  // Parents first, then clones once their origin's dataset has gone (dump_filesystems).
  const sent = new Set<string>();
  while (pending.length > 0) {
    const i = pending.findIndex((d) =>
      (d.name === top || sent.has(parentOf(d.name))) &&
      (d.origin === null || !pending.some((p) => p.name === d.origin!.datasetName))
    );
    const d = pending.splice(i < 0 ? 0 : i, 1)[0]!;
    sent.add(d.name);
    out.push(d);
  }
  return out;
}

/**
 * The substreams of one dataset of a `-R` send (libzfs `dump_filesystem`, `dump_snapshot`):
 * from `fromsnap` when the dataset has it, else from its first snapshot (full, or a clone
 * stream of its origin); with `-I` (or without a fromsnap) every snapshot in between, with
 * `-i` only the tosnap and the snapshots that are origins of clones sent with it.
 */
function replicatedParts(
  d: ReplicatedDataset,
  fromsnap: string | null,
  intermediate: boolean,
  origins: Set<number>,
): Part[] {
  const to = d.snaps[d.snaps.length - 1]!;
  const fromAt = fromsnap === null ? -1 : d.snaps.findIndex((s) => s.name === fromsnap);
  if (fromAt === d.snaps.length - 1) {
    throw new TypeError(
      `cannot send ${d.name}@${to.name}: incremental source ${d.name}@${fromsnap} ` +
        `is not earlier than it`,
    );
  }
  const doall = fromsnap === null || intermediate;
  const candidates = d.snaps.slice(fromAt + 1);
  const sending = doall
    ? candidates
    : candidates.filter((s) => s.id === to.id || origins.has(s.id));
  const parts: Part[] = [];
  let prev: SnapshotRow | null = fromAt < 0 ? null : d.snaps[fromAt]!;
  for (const s of sending) {
    if (prev === null) parts.push({ to: s, from: d.origin, clone: d.origin !== null });
    else parts.push({ to: s, from: prev, clone: false });
    prev = s;
  }
  return parts;
}

/** The `-R` header nvlist: `fss` with each dataset's snapshots, as libzfs writes it. */
function replicationHeader(
  datasets: ReplicatedDataset[],
  tosnap: string,
  fromsnap: string | null,
): Uint8Array {
  const fss: NvPair[] = [];
  const keys = new Set<bigint>();
  for (const d of datasets) {
    const pairs: NvPair[] = [
      nv.string("name", d.name),
      nv.uint64("parentfromsnap", d.parentFromsnap),
    ];
    if (d.origin !== null) pairs.push(nv.uint64("origin", d.origin.guid));
    // An encryption root says so, with its keylocation, which the receiver looks up (a raw
    // receive of it alone would make it "prompt").
    const encroot = d.crypt !== null && d.crypt.encroot;
    // The properties the store kept (a plain send leaves out the key's), and an encryption
    // root's keylocation, which the receiver looks up.
    const props = (d.props?.pairs ?? []).filter((p) => d.crypt !== null || !KEY_PROPS.has(p.name));
    if (encroot && !props.some((p) => p.name === "keylocation")) {
      props.push(nv.string("keylocation", d.crypt!.keylocation ?? "prompt"));
    }
    pairs.push(nv.nvlist("props", nv.list(...props)));
    if (encroot) pairs.push(nv.boolean("is_encroot"));
    pairs.push(
      nv.nvlist("snaps", nv.list(...d.snaps.map((s) => nv.uint64(s.name, s.guid)))),
      nv.nvlist("snapprops", nv.list(...d.snaps.map((s) => nv.nvlist(s.name, nv.list())))),
    );
    // libzfs keys each filesystem by its own guid, which a stream never carries: the store
    // does not know it, and keys by the dataset's first snapshot's guid. Two datasets received
    // from the same stream share that guid, so a repeat is mixed with the dataset's name
    // (receivers find filesystems by their snapshots' guids, never by this key: it need only
    // be unique, as the nvlist's names must be).
    let key = d.snaps[0]!.guid;
    if (keys.has(key)) key ^= nameHash(d.name);
    while (keys.has(key)) key = (key + 1n) & U64;
    keys.add(key);
    fss.push(nv.nvlist(`0x${key.toString(16)}`, nv.list(...pairs)));
  }
  const top: NvPair[] = [];
  if (fromsnap !== null) top.push(nv.string("fromsnap", fromsnap));
  top.push(nv.string("tosnap", tosnap));
  // zfs send -R -w says `raw`: the receiver then sets the encryption hierarchy as sent.
  if (datasets.some((d) => d.crypt !== null)) top.push(nv.boolean("raw"));
  top.push(nv.nvlist("fss", nv.list(...fss)));
  return encodeNvlist(nv.list(...top), { encoding: "xdr" });
}

/**
 * The header of `send -p` without `-R` (`not_recursive`): the dataset's entry with the
 * properties the store kept for it, as libzfs gathers one filesystem; an empty `fss` when it
 * has none.
 */
function propsHeader(store: Store, target: SnapshotRow): Uint8Array {
  const kept = datasetProps(store, target.dataset);
  if (kept === null || kept.pairs.length === 0) {
    return encodeNvlist(
      nv.list(
        nv.string("tosnap", target.name),
        nv.boolean("not_recursive"),
        nv.nvlist("fss", nv.list()),
      ),
      { encoding: "xdr" },
    );
  }
  const all = store.snapshots(target.dataset);
  const snaps = all.slice(0, all.findIndex((s) => s.id === target.id) + 1);
  const d = store.datasetByName(target.datasetName);
  const dataset: ReplicatedDataset = {
    name: target.datasetName,
    snaps,
    origin: d?.origin == null ? null : store.snapshot(d.origin),
    fromsnapGuid: target.guid,
    parentFromsnap: 0n,
    crypt: null,
    props: kept,
  };
  const header = decodeNvlist(replicationHeader([dataset], target.name, null));
  // One filesystem: libzfs says so before the fss list.
  const fss = header.pairs.pop()!;
  header.pairs.push(nv.boolean("not_recursive"), fss);
  return encodeNvlist(header, { encoding: "xdr" });
}

/** The short name of `-R`'s incremental source, which must be a snapshot of `dataset`. */
function replicationFrom(store: Store, target: SnapshotRow, from: string): string {
  const at = from.indexOf("@");
  const fs = at < 0 ? "" : from.slice(0, at);
  const name = at < 0 ? from : from.slice(at + 1);
  if (fs !== "" && fs !== target.datasetName) {
    throw new TypeError(`incremental source ${from} must be in the same filesystem`);
  }
  if (name === "" || name.includes("@") || name.includes("/")) {
    throw new TypeError(`invalid incremental source ${from}`);
  }
  const row = store.snapshotByName(`${target.datasetName}@${name}`);
  if (row === null) {
    throw new TypeError(`incremental source ${target.datasetName}@${name} is not in the store`);
  }
  return name;
}

/** What a send is made of: its substreams, in order, and the compound header, if any. */
export interface SendPlan {
  target: SnapshotRow;
  parts: Part[];
  /** A compound stream: its BEGIN's nvlist (empty: none). */
  compound: Uint8Array | null;
}

/**
 * The substreams a send of `name` is made of (the snapshots it reads: each part's `to` and
 * `from`), and its compound header.
 *
 * @param name `DATASET@SNAP`
 */
export function planSend(store: Store, name: string, options: SendStreamOptions = {}): SendPlan {
  const target = store.snapshotByName(name);
  if (target === null) throw new TypeError(`no snapshot ${name} in the store`);
  if (options.replicate) {
    const fromsnap = options.from === undefined
      ? null
      : replicationFrom(store, target, options.from);
    const datasets = replicatedDatasets(store, target.datasetName, target.name, fromsnap);
    const top = datasets[0];
    if (fromsnap !== null && top !== undefined) {
      const at = top.snaps.findIndex((s) => s.name === fromsnap);
      if (at < 0 || at === top.snaps.length - 1) {
        throw new TypeError(`${fromsnap} is not earlier than ${target.name}`);
      }
    }
    const origins = new Set(
      datasets.filter((d) => d.origin !== null).map((d) => d.origin!.id),
    );
    const parts = datasets.flatMap((d) =>
      replicatedParts(d, fromsnap, options.intermediate === true, origins)
    );
    // A decrypted send is not raw: its header says nothing of keys.
    if (options.decrypted) { for (const d of datasets) d.crypt = null; }
    return { target, parts, compound: replicationHeader(datasets, target.name, fromsnap) };
  }
  const parts = plan(store, target, options);
  if (!(options.intermediate || options.props)) return { target, parts, compound: null };
  const header = options.props ? propsHeader(store, target) : new Uint8Array(0);
  return { target, parts, compound: header };
}

/**
 * Sends a stored snapshot; yields the stream's bytes in chunks.
 *
 * @param name `DATASET@SNAP`
 */
export function* sendStream(
  store: Store,
  name: string,
  options: SendStreamOptions = {},
): Generator<StreamChunk> {
  const { target, parts, compound } = planSend(store, name, options);
  const writer = new StreamWriter({
    littleEndian: target.littleEndian,
    ...(options.fletcher4 ? { fletcher4: options.fletcher4 } : {}),
  });
  const sender = new RecordSender(writer);
  const dedup = options.dedup ? new DedupState() : undefined;
  const flags: SendFlags = {
    largeBlocks: options.largeBlocks === true,
    embed: options.embed === true,
    compressed: options.compressed === true,
  };
  // send_prelim_records would say SA_SPILL for a filesystem of ZPL 5 or later, but it is handed
  // the snapshot, never a filesystem: the package's BEGIN says no feature (as zfs send's does).
  const packageFeatures = 0n;
  if (compound !== null) yield* compoundBegin(writer, name, compound, packageFeatures);
  for (const part of parts) {
    const toname = `${part.to.datasetName}@${part.to.name}`;
    options.onSubstream?.({
      to: toname,
      from: part.from === null ? null : `${part.from.datasetName}@${part.from.name}`,
      clone: part.clone,
    });
    yield* sendRecords(
      sender,
      options.sourceFor?.(part.to) ??
        new StoreSendSource(store, part.to, { payloadRefs: options.payloadRefs === true }),
      part.from === null
        ? null
        : options.sourceFor?.(part.from) ?? new StoreSendSource(store, part.from),
      { toname, clone: part.clone, ...flags, ...(dedup ? { dedup } : {}) },
    );
  }
  if (compound !== null) yield* writer.finalEnd();
}

/** The BEGIN of a compound stream, its nvlist, and the END that closes the header. */
function* compoundBegin(
  writer: StreamWriter,
  name: string,
  header: Uint8Array,
  features: bigint,
): Generator<Uint8Array> {
  yield* writer.begin({
    versioninfo: makeVersioninfo(HDRTYPE.COMPOUNDSTREAM, features),
    toname: name,
  }, header.length > 0 ? header : undefined);
  yield* writer.end(0n, { recordChecksum: false });
}
