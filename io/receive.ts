/**
 * `zsend recv`: reads a stream, checks it as `verify` does, and applies each substream to the
 * store in its own transaction, which commits only after the substream's END has been checked.
 *
 * @module
 */

import {
  type BeginDetails,
  beginDetails,
  type BeginPlan,
  type KnownSnapshot,
  planBegin,
  ReceiveRefused,
  type TargetState,
} from "../core/receive/begin_plan.ts";
import type { ByteChunks } from "../core/stream/byte_source.ts";
import { DRR, FEATURE, HDRTYPE } from "../core/stream/constants.ts";
import { StreamError } from "../core/stream/errors.ts";
import type { Fletcher4Engine } from "../core/checksum/fletcher4.ts";
import { checkName, nameProblem, quoteName } from "../core/receive/names.ts";
import { decodeNvlist, nvlistToObject } from "../core/stream/nvlist.ts";
import { readRecordBatches, type StreamRecord } from "../core/stream/reader.ts";
import { RecordApplier } from "../core/receive/receive.ts";
import { type DrrBegin, featureFlags, hasFeature, hdrtype } from "../core/stream/record.ts";
import { StreamVerifier } from "../core/stream/verify.ts";
import { SnapshotBuilder } from "./store/snapshot_builder.ts";
import { formatRedactSnaps, hexGuid, type Store } from "./store/store.ts";

/** How names in the stream map to names in the store (`zfs receive` without, `-d`, `-e`). */
export type NameMode = "as-given" | "discard-pool" | "last-component";

/** Options of {@linkcode receiveStream}. */
export interface ReceiveOptions {
  /** The target: `DATASET` or, for a single snapshot, `DATASET@SNAP`. */
  target: string;
  /** `-d` or `-e`. */
  names?: NameMode;
  /** `-F`: roll back an incremental's dataset to its source snapshot first. */
  force?: boolean;
  /** `-n`: do everything but commit. */
  dryRun?: boolean;
  /** Reports each snapshot as it is received (`-v`). */
  onSnapshot?: (s: ReceivedSnapshot) => void;
  /** Reports progress every few records. */
  onProgress?: (bytes: number, records: number) => void;
  fletcher4?: Fletcher4Engine;
}

/** One snapshot as received. */
export interface ReceivedSnapshot {
  /** The snapshot's name in the stream (BEGIN's `toname`). */
  toname: string;
  dataset: string;
  snapshot: string;
  guid: bigint;
  kind: BeginPlan["kind"];
  records: number;
  bytes: number;
  newBlocks: number;
  newBytes: number;
  /** Snapshots destroyed first by `-F`. */
  rolledBack: string[];
  dryRun: boolean;
}

/** A snapshot being received. */
interface Pending {
  begin: DrrBegin;
  plan: BeginPlan;
  builder: SnapshotBuilder;
  applier: RecordApplier;
  first: StreamRecord;
  records: number;
  rolledBack: string[];
  recordChecksums: boolean;
  /** What it will be known as once committed. */
  redactSnaps: bigint[] | null;
  /** The parent's (incremental or clone origin) redacted ranges and large blocks. */
  parentRedacted: boolean;
  parentLargeBlocks: boolean;
}

function splitName(toname: string): [string, string] {
  const at = toname.indexOf("@");
  return at < 0 ? [toname, ""] : [toname.slice(0, at), toname.slice(at + 1)];
}

/** Where a substream named `toname` goes. */
export function targetName(
  toname: string,
  top: string | null,
  options: Pick<ReceiveOptions, "target" | "names">,
): [string, string] {
  const [sentDataset, sentSnap] = splitName(toname);
  const [target, targetSnap] = splitName(options.target);
  const mode = options.names ?? "as-given";
  let dataset: string;
  if (mode === "discard-pool") {
    const slash = sentDataset.indexOf("/");
    dataset = slash < 0 ? target : `${target}/${sentDataset.slice(slash + 1)}`;
  } else if (mode === "last-component") {
    const base = top ?? sentDataset;
    const last = base.slice(base.lastIndexOf("/") + 1);
    dataset = `${target}/${last}${top !== null ? sentDataset.slice(top.length) : ""}`;
  } else if (top !== null && (sentDataset === top || sentDataset.startsWith(top + "/"))) {
    dataset = target + sentDataset.slice(top.length);
  } else dataset = target;
  const snapshot = targetSnap !== "" && top === null ? targetSnap : sentSnap;
  const sent = nameProblem(toname, "snapshot", { internal: true });
  if (sent !== null) {
    throw new ReceiveRefused(`the stream names its snapshot '${quoteName(toname)}': ${sent}`);
  }
  const name = `${dataset}@${snapshot}`;
  const why = nameProblem(name, "snapshot", { internal: true });
  if (why !== null) {
    throw new ReceiveRefused(`cannot receive ${toname} as '${quoteName(name)}': ${why}`);
  }
  return [dataset, snapshot];
}

/**
 * Receives a whole stream into a store. Snapshots received before a failure stay; the one
 * that failed leaves nothing behind.
 *
 * @returns what was received; throws {@linkcode StreamError} or {@linkcode ReceiveRefused}
 */
export async function receiveStream(
  store: Store,
  source: ByteChunks,
  options: ReceiveOptions,
): Promise<ReceivedSnapshot[]> {
  checkName(options.target, "dataset or snapshot");
  await store.lock();
  const verifier = new StreamVerifier();
  const received: ReceivedSnapshot[] = [];
  let top: string | null = null;
  let current: Pending | null = null;
  let lastProgress = 0;
  // Snapshots received from this stream: a clone's origin is looked for among them first.
  const here = new Map<bigint, KnownSnapshot>();
  const state: TargetState = {
    dataset: (name) => store.dataset(name),
    snapshotByGuid: (guid, near) => here.get(guid) ?? store.snapshotByGuid(guid, near),
  };

  try {
    // Each payload's own fletcher-4 comes free with the running checksum: stored with the
    // block, it lets send checksum the block without reading it.
    const batches = readRecordBatches(source, {
      payloadChecksums: true,
      ...(options.fletcher4 ? { fletcher4: options.fletcher4 } : {}),
    });
    for await (const batch of batches) {
      // Pack bytes are written in the background: wait when too many are still on their way.
      await store.packs.drain();
      for (const r of batch) {
        verifier.check(r);
        const h = r.header;
        if (options.onProgress && r.index - lastProgress >= 256) {
          lastProgress = r.index;
          options.onProgress(r.offset, r.index);
        }
        if (h.type === DRR.BEGIN) {
          if (hdrtype(h.versioninfo) === HDRTYPE.COMPOUNDSTREAM) {
            top = splitName(h.toname)[0];
            if (r.payload.length > 0) nvlistToObject(decodeNvlist(r.payload));
            continue;
          }
          try {
            current = startSnapshot(store, state, r, h, top, options);
          } catch (e) {
            // A name the rules refuse (targetName): said with the record, as the others are.
            if (!(e instanceof ReceiveRefused)) throw e;
            throw new StreamError({ index: r.index, type: DRR.BEGIN, offset: r.offset }, e.message);
          }
          continue;
        }
        if (current === null) continue; // the END of a compound header, or the final END
        if (h.type === DRR.END) {
          const done = current;
          current = null;
          const snap: ReceivedSnapshot = {
            toname: done.begin.toname,
            dataset: done.plan.dataset,
            snapshot: done.plan.snapshot,
            guid: done.begin.toguid,
            kind: done.plan.kind,
            records: done.records + 2,
            bytes: r.offset + r.raw.length - done.first.offset,
            newBlocks: done.builder.newBlocks,
            newBytes: done.builder.newBytes,
            rolledBack: done.rolledBack,
            dryRun: options.dryRun === true,
          };
          const largeBlocks = done.parentLargeBlocks || done.builder.largeBlocks;
          // Ranges stay redacted until written: look only when there may be some.
          const redacted = (done.parentRedacted || done.builder.redacted) &&
            store.stmt(
                "SELECT 1 AS x FROM block_map WHERE snapshot = ? AND kind = 2 LIMIT 1",
              ).get(done.builder.snapshot) !== undefined;
          store.stmt(
            `UPDATE snapshots SET stream_bytes = ?, record_checksums = ?, large_blocks = ?,
             redacted_ranges = ? WHERE id = ?`,
          ).run(
            snap.bytes,
            done.recordChecksums ? 1 : 0,
            largeBlocks ? 1 : 0,
            redacted ? 1 : 0,
            done.builder.snapshot,
          );
          if (options.dryRun) await store.abort();
          else await store.commit();
          received.push(snap);
          if (!snap.dryRun) {
            here.set(snap.guid, {
              dataset: snap.dataset,
              name: snap.snapshot,
              guid: snap.guid,
              redactSnaps: done.redactSnaps,
              largeBlocks,
            });
          }
          options.onSnapshot?.(snap);
          continue;
        }
        if (current.records++ === 0) current.recordChecksums = h.record_checksum[0] !== 0n;
        current.applier.apply(r);
      }
    }
  } catch (e) {
    await store.abort();
    throw e;
  }
  return received;
}

function startSnapshot(
  store: Store,
  state: TargetState,
  r: StreamRecord,
  begin: DrrBegin,
  top: string | null,
  options: ReceiveOptions,
): Pending {
  const [dataset, snapshot] = targetName(begin.toname, top, options);
  const where = { index: r.index, type: DRR.BEGIN, offset: r.offset };
  let plan: BeginPlan;
  let details: BeginDetails;
  try {
    details = beginDetails(r.payload);
  } catch (e) {
    throw new StreamError(where, `the BEGIN payload is not an nvlist: ${(e as Error).message}`);
  }
  try {
    plan = planBegin(begin, dataset, snapshot, state, options.force === true, details);
  } catch (e) {
    if (e instanceof ReceiveRefused) throw new StreamError(where, e.message);
    throw e;
  }
  // The kernel marks the new dataset redacted only when the stream is (the origin's
  // redaction is cleared first).
  const redactSnaps = hasFeature(featureFlags(begin.versioninfo), FEATURE.REDACTED)
    ? details.redactSnaps
    : null;
  store.begin();
  const rolledBack: string[] = [];
  let datasetId: number;
  let parent: number | null = null;
  const now = Math.floor(Date.now() / 1000);
  if (plan.kind === "incremental") {
    const d = store.datasetByName(dataset)!;
    datasetId = d.id;
    for (const s of plan.rollback) {
      const row = store.snapshotByName(`${dataset}@${s.name}`)!;
      store.destroySnapshot(row.id);
      rolledBack.push(`${dataset}@${s.name}`);
    }
    parent = store.snapshotByName(`${dataset}@${plan.from.name}`)!.id;
  } else {
    let origin: number | null = null;
    if (plan.kind === "clone") {
      origin = store.snapshotByName(`${plan.origin.dataset}@${plan.origin.name}`)!.id;
      parent = origin;
    }
    datasetId = Number(
      store.stmt("INSERT INTO datasets (name, objset_type, origin, created) VALUES (?, ?, ?, ?)")
        .run(dataset, begin.objset_type, origin, now).lastInsertRowid,
    );
  }
  const snapshotId = Number(
    store.stmt(
      `INSERT INTO snapshots (dataset, name, guid, fromguid, creation_time, parent, features,
       begin_flags, little_endian, record_checksums, received, stream_bytes, redact_snaps)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 0, ?)`,
    ).run(
      datasetId,
      snapshot,
      hexGuid(begin.toguid),
      hexGuid(begin.fromguid),
      Number(begin.creation_time),
      parent,
      featureFlags(begin.versioninfo).toString(16),
      begin.flags,
      r.littleEndian ? 1 : 0,
      now,
      formatRedactSnaps(redactSnaps),
    ).lastInsertRowid,
  );
  if (hasFeature(featureFlags(begin.versioninfo), FEATURE.RAW) && r.payload.length > 0) {
    // The wrapped keys (crypt_keydata) that open this raw snapshot with the user's key.
    store.stmt("INSERT INTO snapshot_crypt (snapshot, begin_nvlist) VALUES (?, ?)")
      .run(snapshotId, r.payload.slice());
  }
  const builder = new SnapshotBuilder(store, snapshotId, begin.toguid, (guid) => {
    const found = store.snapshotsByGuid(guid);
    return found.length === 0 ? null : found[found.length - 1]!.id;
  });
  if (parent !== null) builder.copyFrom(parent);
  const parentRow = parent === null ? null : store.snapshot(parent);
  const applier = new RecordApplier(builder, begin, r.littleEndian);
  return {
    redactSnaps,
    parentRedacted: parentRow?.redactedRanges ?? false,
    parentLargeBlocks: parentRow?.largeBlocks ?? false,
    begin,
    plan,
    builder,
    applier,
    first: r,
    records: 0,
    rolledBack,
    recordChecksums: false,
  };
}
