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
import { type FsCrypt, replicationCrypt } from "../core/receive/replication_crypt.ts";
import { setDatasetCrypt } from "./store/dataset_crypt.ts";
import { setDatasetProps } from "./store/dataset_props.ts";
import { replicationProps } from "../core/receive/replication_props.ts";
import { readRecordBatches, type StreamRecord } from "../core/stream/reader.ts";
import { RecordApplier } from "../core/receive/receive.ts";
import { type DrrBegin, featureFlags, hasFeature, hdrtype } from "../core/stream/record.ts";
import { StreamVerifier } from "../core/stream/verify.ts";
import { SnapshotBuilder } from "./store/snapshot_builder.ts";
import { formatRedactSnaps, hexGuid, type PartialReceiveRow, type Store } from "./store/store.ts";
import { ResumeTracker } from "../core/resume/resume_point.ts";
import {
  decodeResumeToken,
  encodeResumeToken,
  type ResumeState,
  resumeState,
} from "../core/resume/resume_token.ts";

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
  /**
   * `-s`: when the stream ends early or breaks inside a snapshot, keep what was applied (up to
   * where the kernel's receive would resume) as a partial receive with a resume token.
   */
  resumable?: boolean;
  /** Reports the partial receive kept by `-s` (before the error is thrown). */
  onPartial?: (p: PartialReceive) => void;
  /**
   * `-s`: how often (ms) what was applied so far is committed as the partial receive while the
   * stream goes on (5000 by default, as the kernel's transaction groups), so that a kill of
   * zsend itself leaves it too.
   */
  checkpointMs?: number;
  fletcher4?: Fletcher4Engine;
}

/** A partial receive kept by `recv -s` when its stream broke. */
export interface PartialReceive {
  dataset: string;
  snapshot: string;
  guid: bigint;
  /** Its receive_resume_token. */
  token: string;
  state: ResumeState;
}

/** One snapshot as received. */
export interface ReceivedSnapshot {
  /** The snapshot's name in the stream (BEGIN's `toname`). */
  toname: string;
  /** The dataset it went into. */
  dataset: string;
  /** Its name in the dataset (after `@`). */
  snapshot: string;
  /** Its guid. */
  guid: bigint;
  /** What kind of stream made it. */
  kind: "full" | "incremental" | "clone";
  /** Records of its substream. */
  records: number;
  /** Bytes of its substream. */
  bytes: number;
  /** Blocks the store did not hold before. */
  newBlocks: number;
  /** Bytes of those blocks. */
  newBytes: number;
  /** Snapshots destroyed first by `-F`. */
  rolledBack: string[];
  /** It was received with `-n`: nothing was kept. */
  dryRun: boolean;
  /** It completed a partial receive (a resuming stream). */
  resumed: boolean;
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
  /** A resuming stream: the partial receive it continues. */
  resumes: PartialReceiveRow | null;
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
  /** What a -R (or -p) stream's header says of each filesystem, by snapshot guid. */
  let replication: ReplicationFacts | null = null;
  let current: Pending | null = null;
  let lastProgress = 0;
  // Snapshots received from this stream: a clone's origin is looked for among them first.
  const here = new Map<bigint, KnownSnapshot>();
  const state: TargetState = {
    dataset: (name) => store.dataset(name),
    snapshotByGuid: (guid, near) => here.get(guid) ?? store.snapshotByGuid(guid, near),
  };
  // -s: a record is applied only once the header after it was read and checked (its checksum
  // covers the record's payload), as the kernel applies them; `held` waits for that header.
  const tracker = options.resumable ? new ResumeTracker() : null;
  let held: StreamRecord | null = null;
  /** What threw: the rule check of a record whose header was read, or the held record. */
  let failedAt: "check" | "held" | null = null;
  const checkpointMs = options.checkpointMs ?? 5000;
  let lastCheckpoint = Date.now();
  /** The partial receive the last checkpoint committed (of the snapshot being received). */
  let checkpointed: PartialReceive | null = null;

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
        failedAt = "check";
        verifier.check(r);
        failedAt = null;
        const h = r.header;
        if (options.onProgress && r.index - lastProgress >= 256) {
          lastProgress = r.index;
          options.onProgress(r.offset, r.index);
        }
        if (h.type === DRR.BEGIN) {
          tracker?.observe(r);
          if (hdrtype(h.versioninfo) === HDRTYPE.COMPOUNDSTREAM) {
            top = splitName(h.toname)[0];
            if (r.payload.length > 0) {
              const header = decodeNvlist(r.payload);
              replication = {
                crypt: replicationCrypt(nvlistToObject(header)),
                props: replicationProps(header),
              };
            } else {
              replication = null;
            }
            continue;
          }
          try {
            current = startSnapshot(store, state, r, h, top, replication, options);
          } catch (e) {
            // A name the rules refuse (targetName): said with the record, as the others are.
            if (!(e instanceof ReceiveRefused)) throw e;
            throw new StreamError({ index: r.index, type: DRR.BEGIN, offset: r.offset }, e.message);
          }
          continue;
        }
        if (current === null) {
          tracker?.observe(r);
          continue; // the END of a compound header, or the final END
        }
        if (held !== null) {
          failedAt = "held";
          current.applier.apply(held);
          failedAt = null;
          held = null;
        }
        tracker?.observe(r);
        if (
          tracker !== null && !options.dryRun && h.type !== DRR.END &&
          Date.now() - lastCheckpoint >= checkpointMs
        ) {
          // As the kernel saves its position once per transaction group: what is applied so
          // far is committed as the partial receive, so that even a kill -9 leaves it.
          checkpointed = await checkpoint(store, current, tracker) ?? checkpointed;
          lastCheckpoint = Date.now();
        }
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
            resumed: done.resumes !== null,
          };
          if (done.resumes !== null) snap.bytes += done.resumes.streamBytes;
          const largeBlocks = done.parentLargeBlocks || done.builder.largeBlocks;
          // Ranges stay redacted until written: look only when there may be some.
          const redacted = (done.parentRedacted || done.builder.redacted) &&
            store.stmt(
                "SELECT 1 AS x FROM block_map WHERE snapshot = ? AND kind = 2 LIMIT 1",
              ).get(done.builder.snapshot) !== undefined;
          store.stmt(
            `UPDATE snapshots SET stream_bytes = ?, record_checksums = ?, large_blocks = ?,
             redacted_ranges = ?, resume_token = NULL WHERE id = ?`,
          ).run(
            snap.bytes,
            done.recordChecksums ? 1 : 0,
            largeBlocks ? 1 : 0,
            redacted ? 1 : 0,
            done.builder.snapshot,
          );
          if (options.dryRun) await store.abort();
          else await store.commit();
          checkpointed = null;
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
        if (tracker !== null) {
          // Kept until the next header is read: the reader's buffer is lent again meanwhile.
          held = { ...r, payload: r.payload.slice() };
        } else current.applier.apply(r);
      }
    }
  } catch (e) {
    if (
      tracker !== null && current !== null && !options.dryRun &&
      (e instanceof StreamError || e instanceof Deno.errors.UnexpectedEof ||
        e instanceof Deno.errors.Interrupted || e instanceof Deno.errors.ConnectionReset ||
        e instanceof Deno.errors.BrokenPipe)
    ) {
      const kept = await keepPartial(store, current, tracker, held, e, failedAt);
      if (kept !== null) options.onPartial?.(kept);
    } else {
      await store.abort();
      // What the last checkpoint committed stays.
      if (current !== null && checkpointed !== null) options.onPartial?.(checkpointed);
    }
    throw e;
  }
  return received;
}

/**
 * `-s`: the stream broke inside `current`: applies the held record when the kernel would have
 * (the header after it was read and checked), then commits what was applied as a partial
 * receive with its resume token.
 */
async function keepPartial(
  store: Store,
  current: Pending,
  tracker: ResumeTracker,
  held: StreamRecord | null,
  e: unknown,
  failedAt: "check" | "held" | null,
): Promise<PartialReceive | null> {
  const fault = e instanceof StreamError ? e : null;
  let point;
  if (failedAt === "held") point = tracker.resumeAfter(fault, false);
  else {
    const covered = failedAt === "check" ||
      (held !== null && fault !== null && fault.index === held.index + 1 &&
        /^truncated: the stream ends \d+ bytes into a payload/.test(fault.fault));
    point = tracker.resumeAfter(fault, covered);
    if (covered && held !== null) {
      try {
        current.applier.apply(held);
      } catch (e2) {
        if (!(e2 instanceof StreamError || e2 instanceof ReceiveRefused)) {
          await store.abort();
          throw e2;
        }
        point = tracker.resumeAfter(null, false);
      }
    }
  }
  if (point === null) {
    await store.abort();
    return null;
  }
  const partial = recordPartial(store, current, point.state);
  await store.commit();
  return partial;
}

/**
 * Writes the partial receive's state at `s` (its token, the bytes so far, whether it holds
 * large blocks) into the open transaction, and says what was kept.
 */
function recordPartial(store: Store, current: Pending, s: ResumeState): PartialReceive {
  // A resumed receive cut again: the kernel counts the bytes of the receives before it too.
  s.bytes += BigInt(current.resumes?.streamBytes ?? 0);
  const token = encodeResumeToken(s);
  store.stmt(
    `UPDATE snapshots SET stream_bytes = ?, resume_token = ?, large_blocks = ? WHERE id = ?`,
  ).run(
    Number(s.bytes),
    token,
    current.parentLargeBlocks || current.builder.largeBlocks ? 1 : 0,
    current.builder.snapshot,
  );
  return {
    dataset: current.plan.dataset,
    snapshot: current.plan.snapshot,
    guid: current.begin.toguid,
    token,
    state: s,
  };
}

/**
 * `-s`, while the stream goes on: commits the records applied so far (the held one is not) as
 * the partial receive, with the token of that point, and opens the next transaction.
 */
async function checkpoint(
  store: Store,
  current: Pending,
  tracker: ResumeTracker,
): Promise<PartialReceive | null> {
  const point = tracker.resumeAfter(null, false);
  if (point === null) return null;
  const partial = recordPartial(store, current, point.state);
  await store.commit();
  store.begin();
  return partial;
}

/** Continues the partial receive of `dataset` with a resuming stream, or says why not. */
function resumePartial(
  store: Store,
  r: StreamRecord,
  begin: DrrBegin,
  dataset: string,
  details: BeginDetails,
): Pending | null {
  const p = store.partialReceive(dataset);
  if (p === null) return null;
  const where = { index: r.index, type: DRR.BEGIN, offset: r.offset };
  const saved = resumeState(decodeResumeToken(p.token).nvlist);
  const expected = `the partial receive of ${dataset}@${p.name} expects a \`zfs send -t\` ` +
    `stream of snapshot ${p.guid.toString(16)}` +
    (p.fromguid !== 0n ? ` from ${p.fromguid.toString(16)}` : " (full)") +
    ` resuming at object ${saved.object} offset ${saved.offset} or before`;
  const refuse = (why: string): never => {
    throw new StreamError(where, `cannot resume: ${why}; ${expected}`);
  };
  if (begin.toguid !== p.guid) refuse(`the stream is of snapshot ${begin.toguid.toString(16)}`);
  if (begin.fromguid !== p.fromguid) {
    refuse(
      begin.fromguid === 0n
        ? "the stream is a full stream"
        : `the stream is incremental from ${begin.fromguid.toString(16)}`,
    );
  }
  if (details.resumeObject === null || details.resumeOffset === null) {
    refuse("its BEGIN nvlist lacks resume_object or resume_offset");
  }
  const object = details.resumeObject!, offset = details.resumeOffset!;
  // The resuming stream sends everything from its position on. The kernel takes only its own
  // saved position (resume_check); zsend also takes an earlier one, since a real receive's
  // token may lag behind what zsend kept of the same bytes: what it sends again is the same.
  if (object > saved.object || (object === saved.object && offset > saved.offset)) {
    refuse(`the stream resumes at object ${object} offset ${offset}, after what was kept`);
  }
  const features = featureFlags(begin.versioninfo);
  const same = (name: keyof ResumeState, feature: number) => {
    if ((saved[name] === true) !== hasFeature(features, feature)) {
      refuse(`the stream ${saved[name] ? "lacks" : "has"} ${name.replace("ok", "")} records`);
    }
  };
  // The kernel compares no flags; a raw stream onto a partial receive that is not raw (or
  // the reverse) cannot go on in a store that keeps raw snapshots sealed.
  same("rawok", FEATURE.RAW);
  store.begin();
  const builder = new SnapshotBuilder(store, p.id, begin.toguid, (guid) => {
    const found = store.snapshotsByGuid(guid);
    return found.length === 0 ? null : found[found.length - 1]!.id;
  });
  const parentRow = p.parent === null ? null : store.snapshot(p.parent);
  const large = store.stmt("SELECT large_blocks AS l FROM snapshots WHERE id = ?").get(p.id) as {
    l: number;
  };
  return {
    redactSnaps: hasFeature(features, FEATURE.REDACTED) ? details.redactSnaps : null,
    parentRedacted: parentRow?.redactedRanges ?? false,
    parentLargeBlocks: (parentRow?.largeBlocks ?? false) || large.l === 1,
    begin,
    plan: { kind: "full", dataset, snapshot: p.name },
    builder,
    applier: new RecordApplier(builder, begin, r.littleEndian),
    first: r,
    records: 0,
    rolledBack: [],
    recordChecksums: false,
    resumes: p,
  };
}

/** What a compound stream's header says of its filesystems, by snapshot guid. */
interface ReplicationFacts {
  /** A raw -R stream's encryption hierarchy; null when the stream is not raw. */
  crypt: Map<bigint, FsCrypt> | null;
  /** Each filesystem's properties (XDR nvlist). */
  props: Map<bigint, Uint8Array>;
}

function startSnapshot(
  store: Store,
  state: TargetState,
  r: StreamRecord,
  begin: DrrBegin,
  top: string | null,
  replication: ReplicationFacts | null,
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
  if (hasFeature(featureFlags(begin.versioninfo), FEATURE.RESUMING)) {
    const resumed = resumePartial(store, r, begin, dataset, details);
    if (resumed !== null) return resumed;
  } else if (store.partialReceive(dataset) !== null) {
    const p = store.partialReceive(dataset)!;
    throw new StreamError(
      where,
      `destination ${dataset} contains partially-complete state from \`zsend recv -s\` ` +
        `(${dataset}@${p.name}, guid ${p.guid.toString(16)}): resume it with the rest of its ` +
        `stream (\`zfs send -t\` of its token), or drop it with \`zsend recv -A\``,
    );
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
    const facts = replication?.crypt?.get(begin.toguid);
    if (facts !== undefined) {
      // The top of a raw -R receive stays its own root: the kernel never makes it inherit.
      const isTop = splitName(begin.toname)[0] === top;
      setDatasetCrypt(store, datasetId, { ...facts, encroot: facts.encroot || isTop });
    }
  }
  // The filesystem's properties as the header gives them (the last stream's win, as a
  // receive sets them).
  const props = replication?.props.get(begin.toguid);
  if (props !== undefined) setDatasetProps(store, datasetId, props);
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
    resumes: null,
  };
}
