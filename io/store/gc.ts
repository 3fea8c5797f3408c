/**
 * Garbage collection of a store's packs: the bytes of blocks no snapshot uses any more (left by
 * `destroy`, `recv -F` rollbacks, `recv -A`, failed receives) are given back to the disk.
 *
 * A pack none of whose blocks is used is deleted; a pack whose unused share is at least the
 * threshold is rewritten: its used blocks are copied (each checked against its content hash)
 * into new packs, which are flushed to disk with their directory entry before one SQLite
 * transaction points the blocks at their new places and drops the old packs' rows. Only then
 * are the old files unlinked, once no reader that looked blocks up before the switch is left
 * ({@linkcode Store.excludeReaders}). A `kill -9` at any moment leaves either the old index
 * with the old packs, or the new index with the new packs (and old files nobody refers to,
 * which the next gc deletes); every snapshot reads the same either way.
 *
 * @module
 */

import { PACK_LIMIT } from "./packs.ts";
import type { Store } from "./store.ts";

/** Rewrite a pack when at least this share of it is unused, by default. */
export const DEFAULT_THRESHOLD = 0.1;

/** Bytes gathered before they are written to a new pack. */
const STAGE = 8 << 20;

/** What {@linkcode collectGarbage} does. */
export interface GcOptions {
  /** Change nothing: say what would be done. */
  dryRun?: boolean;
  /** Rewrite a pack when at least this share (0..1] of it is unused. */
  threshold?: number;
  /** Only delete packs that are wholly unused and files the index does not know (no copying). */
  onlyDead?: boolean;
}

/** One pack as gc found it. */
export interface PackUse {
  id: number;
  /** Bytes of its file (0 when the file is missing). */
  size: number;
  /** Stored bytes of the used blocks in it. */
  live: number;
  /** What gc does with it. */
  action: "keep" | "delete" | "rewrite";
}

/** What {@linkcode collectGarbage} did (or, with `dryRun`, would do). */
export interface GcReport {
  dryRun: boolean;
  /** Block rows no snapshot used, forgotten. */
  releasedBlocks: number;
  packs: PackUse[];
  /** Pack files the index does not know (from a gc or receive killed midway), deleted. */
  orphans: { id: number; size: number }[];
  /** New packs written, with their sizes. */
  written: { id: number; size: number }[];
  /** Bytes past the last pack's committed length (a failed receive's), cut off. */
  tail: number;
  /** Bytes of pack files before and after. */
  before: number;
  after: number;
}

/**
 * Collects the garbage of a store (see the module doc). Takes the store's write lock.
 *
 * @param store an open store
 * @param options see {@linkcode GcOptions}
 * @returns what was done
 */
export async function collectGarbage(store: Store, options: GcOptions = {}): Promise<GcReport> {
  const dryRun = options.dryRun === true;
  const threshold = options.threshold ?? DEFAULT_THRESHOLD;
  if (!(threshold > 0 && threshold <= 1)) throw new RangeError("the threshold is not in (0, 1]");
  await store.lock();
  let releasedBlocks = 0;
  if (dryRun) {
    releasedBlocks = (store.stmt(`SELECT count(*) AS n FROM blocks WHERE ${UNUSED}`).get() as {
      n: number;
    }).n;
  } else {
    store.begin();
    releasedBlocks = store.dropUnusedBlocks().blocks;
    await store.commit();
  }
  const rows = new Map(store.packRows().map((r) => [r.id, r.committed]));
  const files = packFiles(store);
  const live = new Map(
    (store.stmt(`SELECT pack, sum(length) AS n FROM blocks WHERE NOT (${UNUSED}) GROUP BY pack`)
      .all() as { pack: number; n: number }[]).map((r) => [r.pack, r.n]),
  );
  const lastId = Math.max(...rows.keys());
  const packs: PackUse[] = [...rows.keys()].sort((a, b) => a - b).map((id) => {
    const used = live.get(id) ?? 0;
    // The last pack's bytes past its committed length are a failed receive's: not its size.
    const size = id === lastId ? Math.min(files.get(id) ?? 0, rows.get(id)!) : files.get(id) ?? 0;
    if (used > (files.get(id) ?? 0)) {
      throw new Error(`pack ${id} is shorter than the blocks it holds: the store is damaged`);
    }
    const action = used === 0
      ? size > 0 || id !== lastId ? "delete" : "keep"
      : !options.onlyDead && (size - used) / size >= threshold
      ? "rewrite"
      : "keep";
    return { id, size, live: used, action };
  });
  const orphans = [...files].filter(([id]) => !rows.has(id)).map(([id, size]) => ({ id, size }));
  const tail = Math.max(0, (files.get(lastId) ?? 0) - rows.get(lastId)!);
  const before = [...files.values()].reduce((a, b) => a + b, 0);
  const report: GcReport = {
    dryRun,
    releasedBlocks,
    packs,
    orphans,
    written: [],
    tail,
    before,
    after: before,
  };
  const gone = packs.filter((p) => p.action !== "keep");
  if (dryRun) {
    const kept = packs.filter((p) => p.action === "keep").reduce((a, p) => a + p.size, 0);
    report.after = kept + gone.reduce((a, p) => a + p.live, 0);
    return report;
  }
  const firstNew = Math.max(lastId, ...files.keys()) + 1;
  let moves: Move[];
  try {
    moves = copyLive(store, gone.filter((p) => p.action === "rewrite"), firstNew, report);
  } catch (e) {
    // The index never knew the new packs: they go, and the store is as it was.
    for (const w of report.written) removeIfThere(store.packs.path(w.id));
    removeIfThere(store.packs.path(firstNew + report.written.length));
    throw e;
  }
  faultPoint("copied");
  if (gone.length === 0 && orphans.length === 0 && tail === 0) return report;
  switchIndex(store, moves, report.written, gone.map((p) => p.id), firstNew);
  faultPoint("switched");
  const release = await store.excludeReaders();
  try {
    for (const p of [...gone, ...orphans]) removeIfThere(store.packs.path(p.id));
    // The last pack, when kept, loses what a failed receive left past its committed length.
    const kept = store.packRows().find((r) => r.id === lastId);
    if (kept !== undefined && tail > 0) Deno.truncateSync(store.packs.path(lastId), kept.committed);
    syncDir(store);
  } finally {
    release();
  }
  report.after = [...packFiles(store).values()].reduce((a, b) => a + b, 0);
  return report;
}

/** Bytes of every pack file of a store, as the disk holds them. */
export function packFileBytes(store: Store): number {
  return [...packFiles(store).values()].reduce((a, b) => a + b, 0);
}

/** A block no snapshot row uses (as SQL over `blocks`). */
const UNUSED = `id NOT IN (SELECT block FROM block_map WHERE block IS NOT NULL)
  AND id NOT IN (SELECT spill_block FROM objects WHERE spill_block IS NOT NULL)`;

/** Pack files in the store's packs directory, by id, with their sizes. */
function packFiles(store: Store): Map<number, number> {
  const dir = store.packs.path(1).replace(/\/[^/]*$/, "");
  const out = new Map<number, number>();
  for (const e of Deno.readDirSync(dir)) {
    const m = /^(\d+)\.pack$/.exec(e.name);
    if (m === null || !e.isFile) continue;
    const id = Number(m[1]);
    if (store.packs.path(id) !== `${dir}/${e.name}`) continue;
    out.set(id, Deno.statSync(`${dir}/${e.name}`).size);
  }
  return out;
}

/** A block moved: its id and new place. */
type Move = [block: number, pack: number, offset: number];

/**
 * Copies the used blocks of `victims` into new packs from id `firstNew` on, checking each
 * against its hash; the new packs are flushed to disk, and their directory entries, before
 * this returns.
 */
function copyLive(store: Store, victims: PackUse[], firstNew: number, report: GcReport): Move[] {
  const moves: Move[] = [];
  if (victims.length === 0) return moves;
  let out: Deno.FsFile | null = null;
  let outId = firstNew - 1;
  let outLength = 0;
  const stage = new Uint8Array(STAGE);
  let staged = 0;
  const flushStage = () => {
    let done = 0;
    while (done < staged) done += out!.writeSync(stage.subarray(done, staged));
    staged = 0;
  };
  const finish = () => {
    if (out === null) return;
    flushStage();
    out.syncSync();
    out.close();
    report.written.push({ id: outId, size: outLength });
    out = null;
  };
  for (const v of victims) {
    const blocks = store.stmt(
      "SELECT id, hash, offset, length FROM blocks WHERE pack = ? ORDER BY offset",
    ).all(v.id) as { id: number; hash: Uint8Array; offset: number; length: number }[];
    for (const b of blocks) {
      if (out === null || outLength + b.length > PACK_LIMIT && outLength > 0) {
        finish();
        outId++;
        out = Deno.openSync(store.packs.path(outId), {
          write: true,
          create: true,
          truncate: true,
        });
        outLength = 0;
      }
      // Read straight into the stage (a block larger than it into its own buffer).
      if (staged + b.length > stage.length) flushStage();
      const big = b.length > stage.length;
      const bytes = store.packs.readInto(
        v.id,
        b.offset,
        big ? new Uint8Array(b.length) : stage.subarray(staged, staged + b.length),
      );
      if (!equalBytes(store.hashBlock(bytes), b.hash)) {
        throw new Error(
          `block ${b.id} (pack ${v.id}, offset ${b.offset}) does not match its hash: the store ` +
            `is damaged; nothing was changed`,
        );
      }
      if (big) {
        let done = 0;
        while (done < bytes.length) done += out.writeSync(bytes.subarray(done));
      } else staged += bytes.length;
      moves.push([b.id, outId, outLength]);
      outLength += bytes.length;
      if (moves.length === 1) faultPoint("copying");
    }
  }
  finish();
  syncDir(store);
  return moves;
}

/**
 * One transaction: the moved blocks point at their new places, the new packs are known, the
 * old ones forgotten, and every pack's committed length covers its blocks (a pack that a
 * receive filled and left behind kept the length of an earlier commit; it may now be the last,
 * the one appended to next, and must not be cut there).
 */
function switchIndex(
  store: Store,
  moves: Move[],
  written: { id: number; size: number }[],
  gone: number[],
  firstNew: number,
): void {
  const db = store.db;
  db.exec("BEGIN IMMEDIATE");
  try {
    const move = store.stmt("UPDATE blocks SET pack = ?, offset = ? WHERE id = ?");
    for (const [block, pack, offset] of moves) move.run(pack, offset, block);
    for (const w of written) {
      store.stmt("INSERT INTO packs (id, committed) VALUES (?, ?)").run(w.id, w.size);
    }
    store.stmt("DELETE FROM packs WHERE id IN (SELECT value FROM json_each(?))").run(
      JSON.stringify(gone),
    );
    store.stmt(
      `UPDATE packs SET committed = max(committed,
       coalesce((SELECT max(offset + length) FROM blocks WHERE pack = packs.id), 0))`,
    ).run();
    // Never no pack: a receive appends to the last one. A new id, not one just unlinked.
    const left = store.stmt("SELECT count(*) AS n FROM packs").get() as { n: number };
    if (left.n === 0) {
      store.stmt("INSERT INTO packs (id, committed) VALUES (?, 0)").run(firstNew);
    }
    db.exec("COMMIT");
  } catch (e) {
    db.exec("ROLLBACK");
    throw e;
  }
  store.packs.resync(store.packRows());
}

function removeIfThere(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Makes the packs directory's entries (new files, unlinks) durable. */
function syncDir(store: Store): void {
  const dir = store.packs.path(1).replace(/\/[^/]*$/, "");
  const f = Deno.openSync(dir, { read: true });
  try {
    f.syncSync();
  } finally {
    f.close();
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Fault injection for the crash tests: `ZSEND_GC_FAULT=NAME` has the process kill itself with
 * SIGKILL at that point (`copying`, `copied`, `switched`), as a power cut or `kill -9` would.
 */
function faultPoint(name: string): void {
  let at: string | undefined;
  try {
    at = Deno.env.get("ZSEND_GC_FAULT");
  } catch {
    return;
  }
  if (at === name) Deno.kill(Deno.pid, "SIGKILL");
}
