/**
 * The properties `zsend list -o` shows: zfs's names and meanings (zfsprops(7)) where the store
 * can answer them honestly, and a few of zsend's own. Space is counted as the store keeps it:
 * each distinct block once, in the bytes the packs hold (compressed blocks compressed); ZFS's
 * metadata (dnodes, indirect blocks) is not counted.
 *
 * @module
 */

import { encryptionRoot } from "../io/store/dataset_crypt.ts";
import { datasetProp } from "../io/store/dataset_props.ts";
import { snapshotCryptInfo } from "../io/store/crypt_view.ts";
import { freedBy, referencedBy, uniqueByRow, writtenSince } from "../io/store/space.ts";
import type { Bytes } from "../io/store/space.ts";
import type { DatasetRow, PartialReceiveRow, SnapshotRow, Store } from "../io/store/store.ts";

/** What a row of `list` is. */
export type EntryType = "filesystem" | "volume" | "snapshot";

/** A dataset or a snapshot, as `list` shows it. */
export interface Entry {
  type: EntryType;
  name: string;
  dataset: DatasetRow;
  /** The snapshot (type `snapshot`); null for a dataset. */
  snapshot: SnapshotRow | null;
}

/**
 * A value: a size, a count or a time (u64), a guid, guids, text; null when the property does
 * not apply or the store does not know it.
 */
export type Value =
  | { kind: "size" | "time"; n: number }
  | { kind: "guid"; g: bigint }
  | { kind: "guids"; g: bigint[] }
  | { kind: "text"; t: string }
  | null;

/** A property `list -o` knows. */
export interface Property {
  name: string;
  /** zfs's column header, also taken as a short name (`refer`, `lused`). */
  header: string;
  /** zsend's own, not a zfs property. */
  own?: boolean;
  /** What it means, for the help. */
  about: string;
  get(ctx: ListContext, e: Entry): Value;
}

const size = (n: number): Value => ({ kind: "size", n });
const text = (t: string): Value => ({ kind: "text", t });
const ofDataset = (e: Entry, v: () => Value): Value => (e.snapshot === null ? v() : null);
const ofSnapshot = (e: Entry, v: (s: SnapshotRow) => Value): Value =>
  e.snapshot === null ? null : v(e.snapshot);

/** Every property, in the order `list --json` gives them. */
export const PROPERTIES: Property[] = [
  { name: "name", header: "NAME", about: "the dataset or snapshot", get: (_c, e) => text(e.name) },
  {
    name: "type",
    header: "TYPE",
    about: "filesystem, volume or snapshot",
    get: (_c, e) => text(e.type),
  },
  {
    name: "creation",
    header: "CREATION",
    about: "a snapshot's creation time (as its stream says); a dataset's, when it was received",
    get: (_c, e) => ({ kind: "time", n: e.snapshot?.creationTime ?? e.dataset.created }),
  },
  {
    name: "guid",
    header: "GUID",
    about: "a snapshot's guid (decimal, as zfs prints it); a dataset's own guid is not kept",
    get: (_c, e) => ofSnapshot(e, (s) => ({ kind: "guid", g: s.guid })),
  },
  {
    name: "used",
    header: "USED",
    about:
      "what destroying it would give back: a snapshot's blocks no other uses; a dataset's blocks that no snapshot outside it and its descendants uses",
    get: (c, e) => size(c.used(e).stored),
  },
  {
    name: "referenced",
    header: "REFER",
    about:
      "the blocks a snapshot refers to; a dataset's, those of its newest snapshot (or of its partial receive)",
    get: (c, e) => size(c.referenced(e).stored),
  },
  {
    name: "written",
    header: "WRITTEN",
    about:
      "a snapshot's blocks that the snapshot before it (a clone's origin) does not refer to; 0 for a dataset (it is its newest snapshot)",
    get: (c, e) => size(c.written(e)),
  },
  {
    name: "logicalused",
    header: "LUSED",
    about: "used, in logical (uncompressed) bytes; datasets only",
    get: (c, e) => ofDataset(e, () => size(c.used(e).logical)),
  },
  {
    name: "logicalreferenced",
    header: "LREFER",
    about: "referenced, in logical bytes, each block of each file counted",
    get: (c, e) => size(c.referenced(e).logical),
  },
  {
    name: "origin",
    header: "ORIGIN",
    about: "the snapshot a clone was made from; datasets only",
    get: (c, e) => ofDataset(e, () => c.origin(e.dataset)),
  },
  {
    name: "clones",
    header: "CLONES",
    about: "the clones of a snapshot, comma-separated; snapshots only",
    get: (c, e) => ofSnapshot(e, (s) => c.clones(s)),
  },
  {
    name: "encryption",
    header: "ENCRYPTION",
    about: "the suite of a raw (encrypted) snapshot, kept sealed; off otherwise",
    get: (c, e) => text(c.crypt(e)?.suite ?? "off"),
  },
  {
    name: "keyformat",
    header: "KEYFORMAT",
    about: "raw, hex or passphrase for an encrypted dataset, none otherwise; datasets only",
    get: (c, e) => ofDataset(e, () => text(c.crypt(e)?.keyformat ?? "none")),
  },
  {
    name: "encryptionroot",
    header: "ENCROOT",
    about: "the dataset whose key an encrypted one uses (its encryption root)",
    get: (c, e) =>
      c.crypt(e) === null ? null : text(encryptionRoot(c.store, e.dataset.name) ?? "-"),
  },
  {
    name: "keystatus",
    header: "KEYSTATUS",
    about: "unavailable for an encrypted one (the store never holds its key), none otherwise",
    get: (c, e) => text(c.crypt(e) === null ? "none" : "unavailable"),
  },
  {
    name: "keyguid",
    header: "KEYGUID",
    about: "the guid of an encrypted one's key (a hidden zfs property)",
    get: (c, e) => {
      const k = c.crypt(e);
      return k === null ? null : { kind: "guid", g: k.guid };
    },
  },
  {
    name: "receive_resume_token",
    header: "RESUMETOK",
    about: "the token of a dataset's partial receive (recv -s), for zfs send -t; datasets only",
    get: (c, e) =>
      ofDataset(e, () => {
        const p = c.partial(e.dataset);
        return p === null ? null : text(p.token);
      }),
  },
  {
    name: "redact_snaps",
    header: "RSNAPS",
    about:
      "the guids of the snapshots a redacted one (zfs send --redact) is redacted with respect to; none when unknown",
    get: (c, e) => {
      const s = c.newest(e);
      return s === null || s.redactSnaps === null ? null : { kind: "guids", g: s.redactSnaps };
    },
  },
  {
    name: "redacted_ranges",
    header: "RRANGES",
    own: true,
    about: "yes when some of its ranges were left out of its stream (those files cannot be read)",
    get: (c, e) => yesNo(c.newest(e)?.redactedRanges),
  },
  {
    name: "large_blocks",
    header: "LARGE",
    own: true,
    about: "yes when its dataset holds blocks over 128 KiB (incrementals onto it need -L)",
    get: (c, e) => yesNo(c.newest(e)?.largeBlocks),
  },
  {
    name: "fromguid",
    header: "FROMGUID",
    own: true,
    about: "the guid of the snapshot its stream was an incremental from; snapshots only",
    get: (_c, e) =>
      ofSnapshot(e, (s) => (s.fromguid === 0n ? null : { kind: "guid", g: s.fromguid })),
  },
  {
    name: "received",
    header: "RECEIVED",
    own: true,
    about: "when the store received a snapshot",
    get: (_c, e) => ofSnapshot(e, (s) => ({ kind: "time", n: s.received })),
  },
  {
    name: "stream_bytes",
    header: "STREAM",
    own: true,
    about: "the bytes of the (sub)stream a snapshot came in; of a partial receive, those applied",
    get: (c, e) => {
      if (e.snapshot !== null) return size(e.snapshot.streamBytes);
      const p = c.partial(e.dataset);
      return p === null ? null : size(p.streamBytes);
    },
  },
];

function yesNo(v: boolean | undefined): Value {
  return v === undefined ? null : text(v ? "yes" : "no");
}

/**
 * A property by its name or its column header, case-insensitively (`refer`, `REFER`,
 * `referenced`), as zfs takes them; null when unknown.
 */
export function findProperty(name: string): Property | null {
  const n = name.toLowerCase();
  const known = PROPERTIES.find((p) => p.name === n || p.header.toLowerCase() === n);
  if (known !== undefined) return known;
  // zfs's settable properties and user properties (module:name): what a stream's header may
  // carry, shown as it gave them (`-` where none did).
  return SETTABLE.has(n) || /^[a-z0-9_.+-]+:[a-z0-9_.:+-]+$/.test(name) ? keptProperty(name) : null;
}

/**
 * zfs's settable properties (zfsprops(7)) whose values a `-R`/`-p` header carries as text or as
 * a plain number. Index properties (compression, checksum, atime, ...) travel as their enum
 * number, which zsend does not translate: it sends them back as they came but does not show
 * them, rather than show a number where zfs shows a word.
 */
const SETTABLE = new Set([
  "context",
  "defcontext",
  "filesystem_limit",
  "fscontext",
  "keylocation",
  "mlslabel",
  "mountpoint",
  "pbkdf2iters",
  "quota",
  "recordsize",
  "refquota",
  "refreservation",
  "reservation",
  "rootcontext",
  "sharenfs",
  "sharesmb",
  "snapshot_limit",
  "special_small_blocks",
  "volblocksize",
  "volsize",
  "copies",
]);

/** A property the store shows as a stream's header gave it for a dataset. */
function keptProperty(name: string): Property {
  return {
    name,
    header: name.toUpperCase(),
    about: "as the -R or -p stream's header gave it for the dataset",
    get: (c, e) =>
      ofDataset(e, () => {
        const v = datasetProp(c.store, e.dataset.id, name);
        return v === null ? null : text(v);
      }),
  };
}

/** What the properties are computed from, each fact once per run. */
export class ListContext {
  #store: Store;
  #datasets: DatasetRow[];
  #partials: Map<number, PartialReceiveRow>;
  #snapshots = new Map<number, SnapshotRow[]>();
  #referenced = new Map<number, Bytes>();
  #used = new Map<string, Bytes>();
  #unique: Map<number, Bytes> | null = null;

  /** @param store the store listed, read inside one read transaction */
  constructor(store: Store) {
    this.#store = store;
    this.#datasets = store.datasets();
    this.#partials = new Map(store.partialReceives().map((p) => [p.dataset, p]));
  }

  /** A dataset's snapshots, oldest first. */
  snapshots(d: DatasetRow): SnapshotRow[] {
    let s = this.#snapshots.get(d.id);
    if (s === undefined) this.#snapshots.set(d.id, s = this.#store.snapshots(d.id));
    return s;
  }

  /** A dataset's partial receive, or null. */
  partial(d: DatasetRow): PartialReceiveRow | null {
    return this.#partials.get(d.id) ?? null;
  }

  /** The snapshot an entry is, or a dataset's newest one (null when it has none). */
  newest(e: Entry): SnapshotRow | null {
    return e.snapshot ?? this.snapshots(e.dataset).at(-1) ?? null;
  }

  /** The snapshot row an entry's contents are read from (a dataset's partial when no other). */
  #contentRow(e: Entry): number | null {
    return this.newest(e)?.id ?? this.partial(e.dataset)?.id ?? null;
  }

  /** What an entry refers to (a dataset: its newest snapshot, else its partial receive). */
  referenced(e: Entry): Bytes {
    const id = this.#contentRow(e);
    if (id === null) return { stored: 0, logical: 0 };
    let r = this.#referenced.get(id);
    if (r === undefined) this.#referenced.set(id, r = referencedBy(this.#store, id));
    return r;
  }

  /** What destroying an entry (a dataset with its descendants) would release. */
  used(e: Entry): Bytes {
    if (e.snapshot !== null) {
      this.#unique ??= uniqueByRow(this.#store);
      return this.#unique.get(e.snapshot.id) ?? { stored: 0, logical: 0 };
    }
    const tree = this.#datasets.filter((d) =>
      d.id === e.dataset.id || d.name.startsWith(`${e.dataset.name}/`)
    );
    const rows = tree.flatMap((d) => [
      ...this.snapshots(d).map((s) => s.id),
      ...(this.partial(d) === null ? [] : [this.partial(d)!.id]),
    ]);
    const key = rows.join(",");
    let r = this.#used.get(key);
    if (r === undefined) this.#used.set(key, r = freedBy(this.#store, rows));
    return r;
  }

  /** ZFS's `written`: see {@linkcode writtenSince}. */
  written(e: Entry): number {
    const s = e.snapshot;
    if (s === null) {
      // A dataset is its newest snapshot; only a first receive cut short wrote past none.
      return this.snapshots(e.dataset).length === 0 && this.partial(e.dataset) !== null
        ? this.referenced(e).stored
        : 0;
    }
    const all = this.snapshots(e.dataset);
    const before = all[all.findIndex((x) => x.id === s.id) - 1] ?? null;
    return writtenSince(this.#store, s.id, before?.id ?? e.dataset.origin);
  }

  /** A clone's origin, `DATASET@SNAP`. */
  origin(d: DatasetRow): Value {
    if (d.origin === null) return null;
    const o = this.#store.snapshot(d.origin);
    return o === null ? null : text(`${o.datasetName}@${o.name}`);
  }

  /** The datasets cloned from a snapshot, comma-separated. */
  clones(s: SnapshotRow): Value {
    const names = this.#datasets.filter((d) => d.origin === s.id).map((d) => d.name);
    return names.length === 0 ? null : text(names.join(","));
  }

  /** The store listed. */
  get store(): Store {
    return this.#store;
  }

  /** The key facts of an encrypted (raw) entry, or null. */
  crypt(e: Entry): { suite: string; keyformat: string; guid: bigint } | null {
    const id = this.#contentRow(e);
    return id === null ? null : snapshotCryptInfo(this.#store, id);
  }
}
