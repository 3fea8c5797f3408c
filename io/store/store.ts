/**
 * The on-disk store: a directory with an SQLite index (`index.sqlite`, WAL) and pack files
 * of blocks, each kept once by its content hash: BLAKE3 in stores made now, SHA-256 in stores
 * made before (the index's `meta` row `block_hash` says which). Receives take an exclusive
 * lock; readers do not.
 *
 * @module
 */

import { nodeCrypto } from "../node_crypto.ts";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { KnownSnapshot, TargetState } from "../../core/receive/begin_plan.ts";
import { bestBlake3 } from "../native/blake3_native.ts";
import { PackSet } from "./packs.ts";
import { MIGRATIONS, SCHEMA, SCHEMA_VERSION } from "./schema.ts";

/** A dataset row. */
export interface DatasetRow {
  id: number;
  name: string;
  objsetType: number;
  /** The snapshot this dataset is a clone of, or null. */
  origin: number | null;
  /** When the store received its first snapshot (seconds since the epoch). */
  created: number;
}

/** A partial receive (`recv -s` cut short): kept, never shown as a snapshot. */
export interface PartialReceiveRow {
  id: number;
  dataset: number;
  datasetName: string;
  /** The snapshot's name once complete. */
  name: string;
  guid: bigint;
  fromguid: bigint;
  /** The snapshot it grows from (incremental or clone origin), or null. */
  parent: number | null;
  /** Stream bytes applied so far. */
  streamBytes: number;
  /** Its receive_resume_token (OpenZFS's format). */
  token: string;
}

/** A snapshot row. */
export interface SnapshotRow {
  id: number;
  dataset: number;
  datasetName: string;
  name: string;
  guid: bigint;
  fromguid: bigint;
  creationTime: number;
  parent: number | null;
  features: bigint;
  beginFlags: number;
  littleEndian: boolean;
  recordChecksums: boolean;
  received: number;
  streamBytes: number;
  /** The snapshots it is redacted with respect to; null when it is not redacted. */
  redactSnaps: bigint[] | null;
  /** Whether some of its ranges are redacted (left out of the stream). */
  redactedRanges: boolean;
  /** Whether its dataset holds blocks over 128 KiB (`large_blocks` active). */
  largeBlocks: boolean;
}

/** The `redact_snaps` column as guids: null (not redacted), '' (none or unknown), or hex list. */
export function parseRedactSnaps(text: string | null): bigint[] | null {
  if (text === null) return null;
  return text === "" ? [] : text.split(",").map((g) => BigInt("0x" + g));
}

/** Guids as the `redact_snaps` column keeps them. */
export function formatRedactSnaps(guids: bigint[] | null): string | null {
  return guids === null ? null : guids.map((g) => g.toString(16).padStart(16, "0")).join(",");
}

const hexGuid = (g: bigint) => g.toString(16).padStart(16, "0");

/** The content hashes a store may key its blocks by. */
export type BlockHash = "blake3" | "sha256";

/** What a new store keys its blocks by: BLAKE3, several times faster than SHA-256 here. */
const NEW_STORE_HASH: BlockHash = "blake3";

function sha256(data: Uint8Array): Uint8Array {
  return nodeCrypto().createHash("sha256").update(data).digest();
}

/** A store directory, opened. */
export class Store implements TargetState {
  readonly dir: string;
  readonly db: DatabaseSync;
  readonly packs: PackSet;
  /** The hash that keys the store's blocks. */
  readonly blockHash: BlockHash;
  /** Hashes bytes as the store keys blocks. */
  readonly hashBlock: (data: Uint8Array) => Uint8Array;
  #lockFile: Deno.FsFile | null = null;
  /** A shared lock on the packs directory while this store may read packs (see gc.ts). */
  #readerLock: Deno.FsFile | null = null;
  #stmts = new Map<string, StatementSync>();

  private constructor(dir: string, db: DatabaseSync, blockHash: BlockHash) {
    this.dir = dir;
    this.db = db;
    this.blockHash = blockHash;
    this.hashBlock = blockHash === "blake3" ? bestBlake3() : sha256;
    const known = this.db.prepare("SELECT id, committed FROM packs ORDER BY id").all() as {
      id: number;
      committed: number;
    }[];
    if (known.length === 0) {
      this.db.prepare("INSERT INTO packs (id, committed) VALUES (1, 0)").run();
      known.push({ id: 1, committed: 0 });
    }
    this.packs = new PackSet(`${dir}/packs`, known);
    this.#readerLock = lockPacksDir(dir);
  }

  /** Each pack's id and committed length, as the index holds them. */
  packRows(): { id: number; committed: number }[] {
    return this.stmt("SELECT id, committed FROM packs ORDER BY id").all() as {
      id: number;
      committed: number;
    }[];
  }

  /**
   * Opens a store; creates it when `create` is set and it does not exist.
   *
   * @example
   * ```ts
   * import { Store } from "./store.ts";
   * const dir = await Deno.makeTempDir();
   * const store = Store.open(`${dir}/s`, { create: true });
   * const empty = store.datasets().length === 0;
   * store.close();
   * await Deno.remove(dir, { recursive: true });
   * if (!empty) throw new Error();
   * ```
   */
  static open(dir: string, options: { create?: boolean } = {}): Store {
    // An empty name would put the store's files under `/`.
    if (dir === "") throw new TypeError("the store directory's name is empty");
    let exists = true;
    try {
      Deno.statSync(`${dir}/index.sqlite`);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      exists = false;
    }
    if (!exists) {
      if (!options.create) throw new Deno.errors.NotFound(`no zsend store at ${dir}`);
      Deno.mkdirSync(`${dir}/packs`, { recursive: true });
    }
    const db = new DatabaseSync(`${dir}/index.sqlite`);
    db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;");
    db.exec("PRAGMA busy_timeout = 10000;");
    db.exec(SCHEMA);
    const version = db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as
      | { value: string }
      | undefined;
    if (version === undefined) {
      db.prepare("INSERT INTO meta (key, value) VALUES ('schema', ?)").run(String(SCHEMA_VERSION));
    } else if (Number(version.value) !== SCHEMA_VERSION) {
      let at = Number(version.value);
      if (!(at < SCHEMA_VERSION && MIGRATIONS[at] !== undefined)) {
        db.close();
        throw new TypeError(
          `store ${dir} has schema ${version.value}; this zsend knows ${SCHEMA_VERSION}`,
        );
      }
      db.exec("BEGIN IMMEDIATE");
      try {
        for (; at < SCHEMA_VERSION; at++) {
          const step = MIGRATIONS[at]!;
          if (typeof step === "string") db.exec(step);
          else step(db);
        }
        db.prepare("UPDATE meta SET value = ? WHERE key = 'schema'").run(String(SCHEMA_VERSION));
        db.exec("COMMIT");
      } catch (e) {
        db.exec("ROLLBACK");
        db.close();
        throw e;
      }
    }
    // Stores made before the key was kept used SHA-256.
    db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('block_hash', ?)").run(
      version === undefined ? NEW_STORE_HASH : "sha256",
    );
    const hash = (db.prepare("SELECT value FROM meta WHERE key = 'block_hash'").get() as {
      value: string;
    }).value;
    if (hash !== "blake3" && hash !== "sha256") {
      db.close();
      throw new TypeError(`store ${dir} keys its blocks by ${hash}, which this zsend lacks`);
    }
    return new Store(dir, db, hash);
  }

  /** A cached prepared statement. */
  stmt(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  /**
   * Takes the store's write lock (one receive, destroy or gc at a time); waits when another
   * holds it. The reader lock is let go first: a gc holds the write lock while it waits for
   * readers to finish, and a writer does not need it (no gc runs while it holds the write
   * lock). The packs are then taken as the index says now: a gc may have run since opening.
   */
  async lock(): Promise<void> {
    if (this.#lockFile !== null) return;
    this.#releaseReaderLock();
    const f = await Deno.open(`${this.dir}/lock`, { read: true, write: true, create: true });
    await f.lock(true);
    this.#lockFile = f;
    this.packs.resync(this.packRows());
  }

  /**
   * Waits until no other process reads this store's packs, and keeps new readers out until the
   * returned function is called: a gc unlinks packs only then, so that a reader that looked up
   * a block in the index before the gc switched it never finds its pack gone. Take
   * {@linkcode Store.lock} first.
   */
  async excludeReaders(): Promise<() => void> {
    if (this.#lockFile === null) throw new Error("excludeReaders needs the write lock");
    const f = await Deno.open(`${this.dir}/packs`, { read: true });
    await f.lock(true);
    return () => f.close();
  }

  #releaseReaderLock(): void {
    this.#readerLock?.close();
    this.#readerLock = null;
  }

  /** Where a stored block's bytes lie in the packs. */
  blockPlace(id: number): { pack: number; offset: number; length: number } {
    const r = this.stmt("SELECT pack, offset, length FROM blocks WHERE id = ?").get(id) as
      | { pack: number; offset: number; length: number }
      | undefined;
    if (r === undefined) throw new RangeError(`block ${id} is not in the store's index`);
    return r;
  }

  /** A stored block's bytes, in a new buffer. */
  blockBytes(id: number): Uint8Array {
    const at = this.blockPlace(id);
    return this.packs.read(at.pack, at.offset, at.length);
  }

  /** Every dataset, by name. */
  datasets(): DatasetRow[] {
    return this.#datasetRows("1");
  }

  /** A dataset by name, or null. */
  datasetByName(name: string): DatasetRow | null {
    return this.#datasetRows("name = ?", name)[0] ?? null;
  }

  #datasetRows(where: string, ...args: string[]): DatasetRow[] {
    const rows = this.stmt(
      `SELECT id, name, objset_type, origin, created FROM datasets WHERE ${where} ORDER BY name`,
    ).all(...args) as {
      id: number;
      name: string;
      objset_type: number;
      origin: number | null;
      created: number;
    }[];
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      objsetType: r.objset_type,
      origin: r.origin,
      created: r.created,
    }));
  }

  #snapshotRows(where: string, ...args: (string | number)[]): SnapshotRow[] {
    return this.#rows(`s.resume_token IS NULL AND (${where})`, ...args);
  }

  /**
   * A partial receive as a snapshot row (what it holds so far), for `send --saved`; every
   * other lookup leaves partial receives out.
   */
  partialSnapshot(p: PartialReceiveRow): SnapshotRow {
    return this.#rows("s.resume_token IS NOT NULL AND s.id = ?", p.id)[0]!;
  }

  #rows(where: string, ...args: (string | number)[]): SnapshotRow[] {
    const rows = this.stmt(
      `SELECT s.*, d.name AS dname FROM snapshots s JOIN datasets d ON d.id = s.dataset
       WHERE ${where} ORDER BY s.id`,
    ).all(...args) as Record<string, unknown>[];
    return rows.map((r) => ({
      id: r.id as number,
      dataset: r.dataset as number,
      datasetName: r.dname as string,
      name: r.name as string,
      guid: BigInt("0x" + (r.guid as string)),
      fromguid: BigInt("0x" + (r.fromguid as string)),
      creationTime: r.creation_time as number,
      parent: r.parent as number | null,
      features: BigInt("0x" + (r.features as string)),
      beginFlags: r.begin_flags as number,
      littleEndian: r.little_endian === 1,
      recordChecksums: r.record_checksums === 1,
      received: r.received as number,
      streamBytes: r.stream_bytes as number,
      redactSnaps: parseRedactSnaps(r.redact_snaps as string | null),
      redactedRanges: r.redacted_ranges === 1,
      largeBlocks: r.large_blocks === 1,
    }));
  }

  /** The snapshots of a dataset, oldest first. */
  snapshots(dataset: number): SnapshotRow[] {
    return this.#snapshotRows("s.dataset = ?", dataset);
  }

  /** A snapshot by id. */
  snapshot(id: number): SnapshotRow | null {
    return this.#snapshotRows("s.id = ?", id)[0] ?? null;
  }

  /** `DATASET@SNAP` to its row, or null. */
  snapshotByName(full: string): SnapshotRow | null {
    const at = full.lastIndexOf("@");
    if (at < 0) return null;
    return this.#snapshotRows(
      "d.name = ? AND s.name = ?",
      full.slice(0, at),
      full.slice(at + 1),
    )[0] ??
      null;
  }

  /** Every snapshot with this guid, oldest first. */
  snapshotsByGuid(guid: bigint): SnapshotRow[] {
    return this.#snapshotRows("s.guid = ?", hexGuid(guid));
  }

  /** Every partial receive (`recv -s` cut short), by dataset name. */
  partialReceives(): PartialReceiveRow[] {
    return this.#partialRows("1");
  }

  /** The partial receive of a dataset, or null. */
  partialReceive(dataset: string): PartialReceiveRow | null {
    return this.#partialRows("d.name = ?", dataset)[0] ?? null;
  }

  #partialRows(where: string, ...args: string[]): PartialReceiveRow[] {
    const rows = this.stmt(
      `SELECT s.id, s.name, s.guid, s.fromguid, s.parent, s.stream_bytes, s.resume_token,
       d.name AS dname, d.id AS did FROM snapshots s JOIN datasets d ON d.id = s.dataset
       WHERE s.resume_token IS NOT NULL AND (${where}) ORDER BY d.name`,
    ).all(...args) as Record<string, unknown>[];
    return rows.map((r) => ({
      id: r.id as number,
      dataset: r.did as number,
      datasetName: r.dname as string,
      name: r.name as string,
      guid: BigInt("0x" + (r.guid as string)),
      fromguid: BigInt("0x" + (r.fromguid as string)),
      parent: r.parent as number | null,
      streamBytes: r.stream_bytes as number,
      token: r.resume_token as string,
    }));
  }

  /**
   * Drops a partial receive (`recv -A`): its objects and blocks, and its dataset when the
   * partial receive was the dataset's first (a full or clone stream); the caller commits.
   */
  dropPartialReceive(p: PartialReceiveRow): void {
    this.deleteSnapshotRows([p.id]);
    const left = this.stmt("SELECT count(*) AS n FROM snapshots WHERE dataset = ?").get(
      p.dataset,
    ) as { n: number };
    if (left.n === 0) {
      this.stmt("DELETE FROM dataset_crypt WHERE dataset = ?").run(p.dataset);
      this.stmt("DELETE FROM dataset_props WHERE dataset = ?").run(p.dataset);
      this.stmt("DELETE FROM datasets WHERE id = ?").run(p.dataset);
    }
  }

  /** {@linkcode TargetState}: a dataset's type and snapshots. */
  dataset(name: string): { objsetType: number; snapshots: KnownSnapshot[] } | null {
    const d = this.datasetByName(name);
    if (d === null) return null;
    return {
      objsetType: d.objsetType,
      snapshots: this.snapshots(d.id).map((s) => ({
        dataset: name,
        name: s.name,
        guid: s.guid,
        redactSnaps: s.redactSnaps,
        largeBlocks: s.largeBlocks,
      })),
    };
  }

  /** {@linkcode TargetState}: a snapshot by guid. */
  snapshotByGuid(guid: bigint, near = ""): KnownSnapshot | null {
    const common = (a: string) => {
      let i = 0;
      while (i < a.length && i < near.length && a[i] === near[i]) i++;
      return i;
    };
    let best: SnapshotRow | undefined;
    for (const s of this.snapshotsByGuid(guid)) {
      if (best === undefined || common(s.datasetName) > common(best.datasetName)) best = s;
    }
    return best === undefined ? null : {
      dataset: best.datasetName,
      name: best.name,
      guid: best.guid,
      redactSnaps: best.redactSnaps,
      largeBlocks: best.largeBlocks,
    };
  }

  #txStart: { pack: number; length: number } | null = null;
  #reading = false;

  /**
   * Reads everything after this from one snapshot of the index, until {@linkcode Store.close}:
   * a reader that asks thousands of questions (an extraction) then takes SQLite's locks once,
   * not once per query, and sees nothing change under it.
   */
  beginRead(): void {
    if (this.#reading || this.#txStart !== null) return;
    this.db.exec("BEGIN");
    this.db.prepare("SELECT count(*) FROM meta").get(); // a deferred BEGIN reads on first use
    this.#reading = true;
  }

  /** Starts a write transaction (take {@linkcode Store.lock} first). */
  begin(): void {
    if (this.#txStart !== null || this.#reading) throw new Error("a transaction is already open");
    this.#txStart = this.packs.position;
    this.db.exec("BEGIN IMMEDIATE");
  }

  /** Makes the transaction durable: pack bytes flushed first, then the index committed. */
  async commit(): Promise<void> {
    if (this.#txStart === null) throw new Error("no transaction is open");
    await this.packs.flush();
    const end = this.packs.position;
    this.stmt("INSERT OR REPLACE INTO packs (id, committed) VALUES (?, ?)").run(
      end.pack,
      end.length,
    );
    this.db.exec("COMMIT");
    this.#txStart = null;
  }

  /** Undoes the transaction: the index rolls back and appended pack bytes are cut off. */
  async abort(): Promise<void> {
    if (this.#txStart === null) return;
    const start = this.#txStart;
    this.#txStart = null;
    this.db.exec("ROLLBACK");
    await this.packs.rollback(start.pack, start.length);
  }

  /** Destroys a snapshot and what only it used (not one a clone grew from). */
  destroySnapshot(id: number): void {
    const clones = this.stmt("SELECT name FROM datasets WHERE origin = ?").all(id) as {
      name: string;
    }[];
    if (clones.length > 0) {
      throw new TypeError(`snapshot is the origin of ${clones.map((c) => c.name).join(", ")}`);
    }
    this.deleteSnapshotRows([id]);
  }

  /**
   * Deletes snapshot rows (snapshots or partial receives) with their objects, block maps and
   * keys; the snapshots that grew from them keep their own copies and lose only the link.
   * Their blocks stay until {@linkcode Store.dropUnusedBlocks}. The caller commits.
   */
  deleteSnapshotRows(ids: number[]): void {
    const set = JSON.stringify(ids);
    for (const table of ["block_map", "objects", "object_ranges", "snapshot_crypt"]) {
      this.stmt(`DELETE FROM ${table} WHERE snapshot IN (SELECT value FROM json_each(?))`).run(set);
    }
    this.stmt("UPDATE snapshots SET parent = NULL WHERE parent IN (SELECT value FROM json_each(?))")
      .run(set);
    this.stmt("DELETE FROM snapshots WHERE id IN (SELECT value FROM json_each(?))").run(set);
  }

  /**
   * Forgets blocks no snapshot (nor partial receive) uses any more; their pack bytes stay
   * until a gc. The caller commits.
   *
   * @returns how many blocks and how many stored bytes were released
   */
  dropUnusedBlocks(): { blocks: number; bytes: number } {
    const unused =
      `FROM blocks WHERE id NOT IN (SELECT block FROM block_map WHERE block IS NOT NULL)
       AND id NOT IN (SELECT spill_block FROM objects WHERE spill_block IS NOT NULL)`;
    const r = this.stmt(`SELECT count(*) AS c, coalesce(sum(length), 0) AS n ${unused}`).get() as {
      c: number;
      n: number;
    };
    if (r.c > 0) this.stmt(`DELETE ${unused}`).run();
    return { blocks: r.c, bytes: r.n };
  }

  /** Closes the index and the packs, and lets go of the lock. */
  close(): void {
    if (this.#reading) {
      this.#reading = false;
      this.db.exec("ROLLBACK");
    }
    for (const s of this.#stmts.values()) void s;
    this.#stmts.clear();
    this.packs.close();
    this.db.close();
    this.#releaseReaderLock();
    if (this.#lockFile !== null) {
      this.#lockFile.close();
      this.#lockFile = null;
    }
  }
}

/**
 * Takes a shared lock on a store's packs directory, held while the store may read packs;
 * null when the directory cannot be opened.
 */
function lockPacksDir(dir: string): Deno.FsFile | null {
  let f: Deno.FsFile;
  try {
    f = Deno.openSync(`${dir}/packs`, { read: true });
  } catch {
    return null;
  }
  f.lockSync(false);
  return f;
}

export { hexGuid };
