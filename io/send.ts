/**
 * `zsend send`: streams of stored snapshots, as `zfs send` makes them: full, incremental
 * (`-i`), every snapshot in between (`-I`), a dataset and its children (`-R`), dedup (`-D`),
 * and a clone as a clone stream of its origin.
 *
 * @module
 */

import { HDRTYPE } from "../core/constants.ts";
import type { Fletcher4Engine } from "../core/fletcher4.ts";
import { encodeNvlist, nv, type NvPair } from "../core/nvlist.ts";
import { RecordSender } from "../core/pending.ts";
import { makeVersioninfo } from "../core/record.ts";
import { DedupState, sendRecords } from "../core/send.ts";
import { type StreamChunk, StreamWriter } from "../core/writer.ts";
import { StoreSendSource } from "./store/send_source.ts";
import type { SnapshotRow, Store } from "./store/store.ts";

/** Options of {@linkcode sendStream}. */
export interface SendStreamOptions {
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
  /** Told each substream as it starts (`-v`). */
  onSubstream?: (what: string) => void;
}

/** One substream to send: `to`, relative to `from` (null: full). */
interface Part {
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
  if (options.replicate) {
    // Every snapshot up to the target, the first full (or a clone of its origin).
    parts.push({ to: snaps[0]!, from: origin, clone: origin !== null });
    for (let i = 1; i <= at; i++) parts.push({ to: snaps[i]!, from: snaps[i - 1]!, clone: false });
    return parts;
  }
  parts.push({ to: target, from: null, clone: false });
  return parts;
}

/** The `-R` header nvlist: `fss` with each dataset's snapshots, as libzfs writes it. */
function replicationHeader(
  store: Store,
  top: SnapshotRow,
  datasets: { name: string; snaps: SnapshotRow[] }[],
  from: SnapshotRow | null,
): Uint8Array {
  const fss: NvPair[] = [];
  for (const d of datasets) {
    const first = d.snaps[0];
    if (first === undefined) continue;
    const row = store.datasetByName(d.name)!;
    const origin = row.origin === null ? null : store.snapshot(row.origin);
    const pairs: NvPair[] = [
      nv.string("name", d.name),
      nv.uint64("parentfromsnap", from?.guid ?? 0n),
    ];
    if (origin !== null) pairs.push(nv.uint64("origin", origin.guid));
    pairs.push(
      nv.nvlist("props", nv.list()),
      nv.nvlist("snaps", nv.list(...d.snaps.map((s) => nv.uint64(s.name, s.guid)))),
      nv.nvlist("snapprops", nv.list(...d.snaps.map((s) => nv.nvlist(s.name, nv.list())))),
    );
    fss.push(nv.nvlist(`0x${first.guid.toString(16)}`, nv.list(...pairs)));
  }
  const top_pairs: NvPair[] = [nv.string("tosnap", top.name)];
  if (from !== null) top_pairs.push(nv.string("fromsnap", from.name));
  top_pairs.push(nv.nvlist("fss", nv.list(...fss)));
  return encodeNvlist(nv.list(...top_pairs), { encoding: "xdr" });
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
  const target = store.snapshotByName(name);
  if (target === null) throw new TypeError(`no snapshot ${name} in the store`);
  const writer = new StreamWriter({
    littleEndian: target.littleEndian,
    ...(options.fletcher4 ? { fletcher4: options.fletcher4 } : {}),
  });
  const sender = new RecordSender(writer);
  const dedup = options.dedup ? new DedupState() : undefined;

  let parts: Part[];
  const compound = options.replicate || options.intermediate || options.props;
  if (options.replicate) {
    const children = store.datasets().filter((d) =>
      d.name === target.datasetName || d.name.startsWith(target.datasetName + "/")
    );
    const lists = children.map((d) => {
      const snaps = store.snapshots(d.id);
      const upTo = snaps.findIndex((s) => s.name === target.name);
      return { name: d.name, snaps: upTo < 0 ? [] : snaps.slice(0, upTo + 1) };
    }).filter((d) => d.snaps.length > 0);
    parts = lists.flatMap((d) => plan(store, d.snaps[d.snaps.length - 1]!, { replicate: true }));
    const header = replicationHeader(store, target, lists, null);
    yield* compoundBegin(writer, name, header);
  } else {
    parts = plan(store, target, options);
    if (compound) {
      const header = options.props
        ? encodeNvlist(
          nv.list(
            nv.string("tosnap", target.name),
            nv.boolean("not_recursive"),
            nv.nvlist("fss", nv.list()),
          ),
          { encoding: "xdr" },
        )
        : new Uint8Array(0);
      yield* compoundBegin(writer, name, header);
    }
  }
  for (const part of parts) {
    const toname = `${part.to.datasetName}@${part.to.name}`;
    options.onSubstream?.(
      part.from === null
        ? `full ${toname}`
        : `${
          part.clone ? "clone" : "incremental"
        } ${part.from.datasetName}@${part.from.name} -> ${toname}`,
    );
    yield* sendRecords(
      sender,
      new StoreSendSource(store, part.to, { payloadRefs: options.payloadRefs === true }),
      part.from === null ? null : new StoreSendSource(store, part.from),
      { toname, clone: part.clone, ...(dedup ? { dedup } : {}) },
    );
  }
  if (compound) yield* writer.finalEnd();
}

/** The BEGIN of a compound stream, its nvlist, and the END that closes the header. */
function* compoundBegin(
  writer: StreamWriter,
  name: string,
  header: Uint8Array,
): Generator<Uint8Array> {
  yield* writer.begin({
    versioninfo: makeVersioninfo(HDRTYPE.COMPOUNDSTREAM, 0),
    toname: name,
  }, header.length > 0 ? header : undefined);
  yield* writer.end(0n, { recordChecksum: false });
}
