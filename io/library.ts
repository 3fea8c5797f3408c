/**
 * The store as library functions, for code that imports zsend rather than running its command
 * line: receive a stream into a store, list what it holds, send a stored snapshot back as a
 * stream, extract a filesystem snapshot as a directory tree. Each opens the store at `dir` and
 * closes it again; the verbs of `cli/` do the same with their flags.
 *
 * @module
 */

import type { ByteChunks } from "../core/stream/byte_source.ts";
import type { KeyMaterial } from "../core/crypto/keys.ts";
import { ZplFilesystem } from "../core/zpl/fs.ts";
import { type ExtractReport, extractTree } from "./extract.ts";
import { bestFletcher4 } from "./native/fletcher4_native.ts";
import { type NameMode, type ReceivedSnapshot, receiveStream } from "./receive.ts";
import { sendStream } from "./send.ts";
import { openStreamInput } from "./source.ts";
import { openSnapshotView } from "./store/open_snapshot.ts";
import { Store } from "./store/store.ts";

export type { ExtractReport, KeyMaterial, NameMode, ReceivedSnapshot };

/** Options of {@linkcode receiveIntoStore}: `zfs receive`'s `-F`, `-d`/`-e`, `-n`. */
export interface StoreReceiveOptions {
  /** `-F`: roll an incremental's dataset back to its source snapshot first. */
  force?: boolean;
  /** `-d` (`"discard-pool"`) or `-e` (`"last-component"`); `"as-given"` by default. */
  names?: NameMode;
  /** `-n`: check everything, keep nothing. */
  dryRun?: boolean;
}

/** One snapshot of a store, as {@linkcode listStore} gives it. */
export interface StoredSnapshot {
  /** `DATASET@SNAP`. */
  name: string;
  /** `"filesystem"` or `"volume"` (`"objset type N"` for another). */
  type: string;
  /** Its guid. */
  guid: bigint;
  /** The guid of the snapshot it was received as an incremental from; null for a full one. */
  fromguid: bigint | null;
  /** Its creation time. */
  creation: Date;
  /** The clone's origin (`DATASET@SNAP`), or null. */
  origin: string | null;
}

/** Options of {@linkcode sendFromStore}: `zfs send`'s flags. */
export interface StoreSendOptions {
  /** `-i SNAP`: an incremental from this snapshot (`@snap`, `snap` or `dataset@snap`). */
  from?: string;
  /** `-I`: every snapshot between `from` and the target, as a compound stream. */
  intermediate?: boolean;
  /** `-R`: the dataset and its children. */
  replicate?: boolean;
  /** `-D`: WRITE_BYREF for repeated blocks. */
  dedup?: boolean;
  /** `-L`: blocks over 128 KiB whole. */
  largeBlocks?: boolean;
  /** `-e`: embedded blocks as WRITE_EMBEDDED. */
  embed?: boolean;
  /** `-c`: compressed blocks as stored. */
  compressed?: boolean;
}

const TYPES: Record<number, string> = { 2: "filesystem", 3: "volume" };

/** Opens the store at `dir`, made when the directory is absent or empty. */
function openOrMake(dir: string): Store {
  try {
    Deno.statSync(`${dir}/index.sqlite`);
    return Store.open(dir);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (entries.length > 0) throw new TypeError(`${dir} is neither a zsend store nor empty`);
  return Store.open(dir, { create: true });
}

/**
 * Receives a stream (a file's path, or its bytes in chunks) into the store at `dir` (made when
 * absent or empty), with the kernel's rules, as `zsend recv` does. Each snapshot is committed
 * after its END checksum; a damaged stream leaves the store as it was before that snapshot.
 *
 * @param dir the store's directory
 * @param target the dataset (or `DATASET@SNAP` for a single snapshot) to receive into
 * @param stream a file's path, or the stream's bytes
 * @param options `-F`, `-d`/`-e`, `-n`
 * @returns every snapshot received
 * @example
 * ```ts
 * import { listStore, receiveIntoStore, StreamWriter } from "jsr:@zsend/zsend";
 * const w = new StreamWriter();
 * const stream = [...w.begin({ toname: "p/fs@a", toguid: 7n, objset_type: 2 }), ...w.end()];
 * const dir = await Deno.makeTempDir();
 * try {
 *   const got = await receiveIntoStore(`${dir}/store`, "backup/fs", stream);
 *   if (got[0]!.snapshot !== "a") throw new Error();
 *   if (listStore(`${dir}/store`)[0]!.name !== "backup/fs@a") throw new Error();
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function receiveIntoStore(
  dir: string,
  target: string,
  stream: string | ByteChunks,
  options: StoreReceiveOptions = {},
): Promise<ReceivedSnapshot[]> {
  const store = openOrMake(dir);
  try {
    const source = typeof stream === "string" ? openStreamInput(stream) : stream;
    return await receiveStream(store, source, {
      target,
      fletcher4: bestFletcher4(),
      ...(options.force ? { force: true } : {}),
      ...(options.names ? { names: options.names } : {}),
      ...(options.dryRun ? { dryRun: true } : {}),
    });
  } finally {
    store.close();
  }
}

/**
 * The snapshots of the store at `dir`, dataset by dataset, oldest first.
 *
 * @param dir the store's directory
 * @returns its snapshots
 * @example
 * ```ts
 * import { listStore, receiveIntoStore, StreamWriter } from "jsr:@zsend/zsend";
 * const w = new StreamWriter();
 * const stream = [...w.begin({ toname: "p/vol@a", toguid: 9n, objset_type: 3 }), ...w.end()];
 * const dir = await Deno.makeTempDir();
 * try {
 *   await receiveIntoStore(dir, "p/vol", stream);
 *   const [s] = listStore(dir);
 *   if (s?.type !== "volume" || s.guid !== 9n || s.fromguid !== null) throw new Error();
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export function listStore(dir: string): StoredSnapshot[] {
  const store = Store.open(dir);
  try {
    const out: StoredSnapshot[] = [];
    for (const d of store.datasets()) {
      const origin = d.origin === null ? null : store.snapshot(d.origin);
      for (const s of store.snapshots(d.id)) {
        out.push({
          name: `${d.name}@${s.name}`,
          type: TYPES[d.objsetType] ?? `objset type ${d.objsetType}`,
          guid: s.guid,
          fromguid: s.fromguid === 0n ? null : s.fromguid,
          creation: new Date(s.creationTime * 1000),
          origin: origin === null ? null : `${origin.datasetName}@${origin.name}`,
        });
      }
    }
    return out;
  } finally {
    store.close();
  }
}

/**
 * Sends a stored snapshot as the stream a real `zfs receive` takes, in chunks of bytes (the
 * store stays open until the generator is done or returned).
 *
 * @param dir the store's directory
 * @param snapshot `DATASET@SNAP`
 * @param options `-i`, `-I`, `-R`, `-D`, `-L`, `-e`, `-c`
 * @returns the stream's bytes, chunk by chunk
 * @example
 * ```ts
 * import { receiveIntoStore, sendFromStore, StreamWriter, verifyStream } from "jsr:@zsend/zsend";
 * const w = new StreamWriter();
 * const stream = [...w.begin({ toname: "p/fs@a", toguid: 7n, objset_type: 2 }), ...w.end()];
 * const dir = await Deno.makeTempDir();
 * try {
 *   await receiveIntoStore(dir, "p/fs", stream);
 *   const report = await verifyStream([...sendFromStore(dir, "p/fs@a")]);
 *   if (report.snapshots[0] !== "p/fs@a") throw new Error();
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export function* sendFromStore(
  dir: string,
  snapshot: string,
  options: StoreSendOptions = {},
): Generator<Uint8Array> {
  const store = Store.open(dir);
  try {
    for (const chunk of sendStream(store, snapshot, { ...options, fletcher4: bestFletcher4() })) {
      // Without payloadRefs every chunk is bytes.
      if (!(chunk instanceof Uint8Array)) {
        throw new TypeError("sendFromStore: a chunk not of bytes");
      }
      yield chunk;
    }
  } finally {
    store.close();
  }
}

/**
 * Extracts a filesystem snapshot of the store at `dir` as a directory tree in `target` (new or
 * empty), as `zsend extract` does; a raw (encrypted) snapshot needs its `key`.
 *
 * @param dir the store's directory
 * @param snapshot `DATASET@SNAP`
 * @param target the directory to fill
 * @param key a raw snapshot's key or passphrase
 * @returns what was written, and the paths that failed
 * @example
 * ```ts
 * import { extractSnapshot, receiveIntoStore } from "jsr:@zsend/zsend";
 * const dir = await Deno.makeTempDir();
 * try {
 *   // A stream zfs-fuse made, shipped in the repository's examples/.
 *   const file = new URL("../examples/fs-s1.full.zstream", import.meta.url).pathname;
 *   await receiveIntoStore(`${dir}/store`, "p/fs", file);
 *   const r = await extractSnapshot(`${dir}/store`, "p/fs@s1", `${dir}/tree`);
 *   if (r.files === 0 || r.errors.length > 0) throw new Error(String(r.errors));
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function extractSnapshot(
  dir: string,
  snapshot: string,
  target: string,
  key: KeyMaterial | null = null,
): Promise<ExtractReport> {
  const { store, view } = await openSnapshotView(dir, snapshot, key);
  try {
    if (view.objsetType !== 2) throw new TypeError(`${snapshot} is not a filesystem`);
    return await extractTree(await ZplFilesystem.open(view), target);
  } finally {
    store.close();
  }
}
