/**
 * A {@linkcode SnapshotView} built in memory from a full send stream, for tests of the ZPL
 * layer: no store, no receive rules beyond what placing the data needs.
 *
 * - OBJECT: the object's fields and its bonus (the payload without the 8-byte padding; raw
 *   streams' bonus is kept as sent). An OBJECT for an object that exists replaces it and its data.
 * - WRITE: the block at `offset / blksz`, decompressed with `core/compress` when the record is
 *   compressed; blocks of raw (encrypted) streams and codecs without a decoder (zstd) are kept
 *   as errors that `readBlock` throws as `TypeError`.
 * - WRITE_EMBEDDED: the payload's first `psize` bytes decompressed to `lsize` bytes and placed
 *   at `offset` in a zeroed block (`dump_write_embedded` / `receive_write_embedded`).
 * - WRITE_BYREF: a copy of `length` bytes at (`refobject`, `refoffset`) of the snapshot named by
 *   `refguid`: this stream's own, or an earlier substream of the same compound stream.
 * - SPILL: the object's spill block. FREE: drops blocks inside the range, zeroes the parts of
 *   blocks it covers. FREEOBJECTS: drops objects. REDACT: marks blocks as redacted.
 * - Compound (`-R`) streams give one view per substream; incremental substreams are refused,
 *   or skipped with `{ incremental: "skip" }`.
 *
 * @module
 */

import { FEATURE } from "../../core/stream/constants.ts";
import { DRR } from "../../core/stream/constants.ts";
import type { ByteChunks } from "../../core/stream/byte_source.ts";
import { compressionName, decompressBlock } from "../../core/compress/mod.ts";
import { readRecords } from "../../core/stream/reader.ts";
import { featureFlags, hasFeature } from "../../core/stream/record.ts";
import type { ObjectInfo, SnapshotView } from "../../core/receive/snapshot_view.ts";

/** A block that is stored but cannot be read, and why. */
interface Unreadable {
  unreadable: string;
}

type Slot = Uint8Array | Unreadable;

/**
 * One snapshot received into memory.
 *
 * @example
 * ```ts
 * import { MemoryView } from "./memory_view.ts";
 * const v = new MemoryView({ objsetType: 2, littleEndian: true, toguid: 1n, toname: "p/fs@s" });
 * v.putObject({
 *   object: 5, type: 19, bonustype: 0, blksz: 512, bonuslen: 0, bonus: new Uint8Array(0),
 *   maxblkid: 0, dnSlots: 1, spill: null,
 * });
 * v.putBlock(5, 0, new Uint8Array(512).fill(7));
 * if ((await v.readBlock(5, 0))![0] !== 7 || (await v.readBlock(5, 1)) !== null) throw new Error();
 * ```
 */
export class MemoryView implements SnapshotView {
  readonly objsetType: number;
  readonly littleEndian: boolean;
  /** The snapshot's guid (`toguid`). */
  readonly toguid: bigint;
  /** The snapshot's name as the stream gives it (`pool/fs@snap`). */
  readonly toname: string;
  readonly #objects = new Map<number, ObjectInfo>();
  readonly #blocks = new Map<number, Map<number, Slot>>();

  /** @param init the snapshot's identity and byte order */
  constructor(
    init: { objsetType: number; littleEndian: boolean; toguid: bigint; toname: string },
  ) {
    this.objsetType = init.objsetType;
    this.littleEndian = init.littleEndian;
    this.toguid = init.toguid;
    this.toname = init.toname;
  }

  /** The object, or null when it is free. */
  object(id: number): Promise<ObjectInfo | null> {
    return Promise.resolve(this.#objects.get(id) ?? null);
  }

  /** A block's logical bytes; null for a hole; rejects with `TypeError` when unreadable. */
  readBlock(id: number, blkid: number): Promise<Uint8Array | null> {
    const slot = this.#blocks.get(id)?.get(blkid);
    if (slot === undefined) return Promise.resolve(null);
    if (slot instanceof Uint8Array) return Promise.resolve(slot);
    return Promise.reject(new TypeError(slot.unreadable));
  }

  /** Every object number, in increasing order. */
  async *objectIds(): AsyncGenerator<number> {
    yield* [...this.#objects.keys()].sort((a, b) => a - b);
  }

  /** The block ids of an object that hold something, in increasing order. */
  async *blockIds(id: number): AsyncGenerator<number> {
    yield* [...(this.#blocks.get(id)?.keys() ?? [])].sort((a, b) => a - b);
  }

  /** Creates or replaces an object; a replaced object loses its data. */
  putObject(info: ObjectInfo): void {
    this.#objects.set(info.object, info);
    this.#blocks.delete(info.object);
  }

  /** Drops an object and its data. */
  freeObject(id: number): void {
    this.#objects.delete(id);
    this.#blocks.delete(id);
  }

  /** Stores one block, or a reason why it cannot be read. */
  putBlock(id: number, blkid: number, data: Uint8Array | Unreadable): void {
    let blocks = this.#blocks.get(id);
    if (blocks === undefined) this.#blocks.set(id, blocks = new Map());
    blocks.set(blkid, data);
  }

  /** Sets an object's spill block. */
  putSpill(id: number, spill: Uint8Array): void {
    const o = this.#objects.get(id);
    if (o === undefined) throw new RangeError(`SPILL for object ${id}, which does not exist`);
    this.#objects.set(id, { ...o, spill });
  }

  /** Frees bytes [from, to) of an object (`to` null: to its end). */
  freeRange(id: number, from: number, to: number | null): void {
    const o = this.#objects.get(id);
    const blocks = this.#blocks.get(id);
    if (o === undefined || blocks === undefined) return;
    const bs = o.blksz;
    for (const [blkid, slot] of [...blocks]) {
      const start = blkid * bs;
      const end = start + bs;
      const lo = Math.max(start, from);
      const hi = to === null ? end : Math.min(end, to);
      if (lo >= hi) continue;
      if (lo === start && hi === end) blocks.delete(blkid);
      else if (slot instanceof Uint8Array) {
        const copy = slot.slice();
        copy.fill(0, lo - start, hi - start);
        blocks.set(blkid, copy);
      }
    }
  }

  /** Reads `length` logical bytes at `offset` of an object (holes read as zeros). */
  async readBytes(id: number, offset: number, length: number): Promise<Uint8Array> {
    const o = this.#objects.get(id);
    if (o === undefined) throw new RangeError(`object ${id} does not exist`);
    const out = new Uint8Array(length);
    let pos = 0;
    while (pos < length) {
      const at = offset + pos;
      const blkid = Math.floor(at / o.blksz);
      const within = at - blkid * o.blksz;
      const n = Math.min(o.blksz - within, length - pos);
      const block = await this.readBlock(id, blkid);
      if (block !== null) out.set(block.subarray(within, within + n), pos);
      pos += n;
    }
    return out;
  }
}

/** Options of {@linkcode receiveStream}. */
export interface MemoryReceiveOptions {
  /** What to do with an incremental substream: refuse it (default) or leave it out. */
  incremental?: "error" | "skip";
}

function num(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`${what} ${v} is out of range`);
  return Number(v);
}

function placeAt(blksz: number, offset: number, data: Uint8Array): [number, Uint8Array] {
  const blkid = Math.floor(offset / blksz);
  const within = offset - blkid * blksz;
  if (within === 0 && data.length === blksz) return [blkid, data];
  if (within + data.length > blksz) {
    throw new RangeError(`${data.length} bytes at offset ${offset} cross a ${blksz}-byte block`);
  }
  const block = new Uint8Array(blksz);
  block.set(data, within);
  return [blkid, block];
}

/**
 * Receives every substream of a stream into its own {@linkcode MemoryView}, in order.
 *
 * @param source the stream's bytes
 * @param options what to do with incremental substreams
 * @returns one view per full substream
 * @example
 * ```ts
 * import { receiveStream } from "./memory_view.ts";
 * import { StreamWriter } from "../../core/stream/writer.ts";
 * const w = new StreamWriter();
 * const bytes = [
 *   ...w.begin({ toname: "p/fs@a", toguid: 9n, objset_type: 2 }),
 *   ...w.write({ type: 1, object: 3n, object_type: 19, blksz: 512 }),
 *   ...w.write({ type: 3, object: 3n, object_type: 19, offset: 0n, logical_size: 512n },
 *     new Uint8Array(512).fill(1)),
 *   ...w.end(),
 * ];
 * const [view] = await receiveStream(bytes);
 * if ((await view!.readBlock(3, 0))![511] !== 1 || view!.toname !== "p/fs@a") throw new Error();
 * ```
 */
export async function receiveStream(
  source: ByteChunks,
  options: MemoryReceiveOptions = {},
): Promise<MemoryView[]> {
  const views: MemoryView[] = [];
  const byGuid = new Map<bigint, MemoryView>();
  let view: MemoryView | null = null;
  let skipping = false;
  let raw = false;

  for await (const r of readRecords(source)) {
    const h = r.header;
    if (r.substream === 0) continue; // the compound stream's own header
    if (h.type === DRR.BEGIN) {
      if (h.fromguid !== 0n) {
        if (options.incremental !== "skip") {
          throw new TypeError(`${h.toname} is an incremental stream; only full ones are taken`);
        }
        skipping = true;
        continue;
      }
      skipping = false;
      raw = hasFeature(featureFlags(h.versioninfo), FEATURE.RAW);
      view = new MemoryView({
        objsetType: h.objset_type,
        littleEndian: r.littleEndian,
        toguid: h.toguid,
        toname: h.toname,
      });
      continue;
    }
    if (h.type === DRR.END) {
      if (view !== null && !skipping) {
        views.push(view);
        byGuid.set(view.toguid, view);
      }
      view = null;
      skipping = false;
      continue;
    }
    if (skipping) continue;
    if (view === null) throw new SyntaxError(`record ${r.index} outside a substream`);
    const v: MemoryView = view;

    switch (h.type) {
      case DRR.OBJECT: {
        const id = num(h.object, "object");
        const bonuslen = raw && h.raw_bonuslen !== 0 ? h.raw_bonuslen : h.bonuslen;
        v.putObject({
          object: id,
          type: h.object_type,
          bonustype: h.bonustype,
          blksz: h.blksz,
          bonuslen: h.bonuslen,
          bonus: r.payload.slice(0, bonuslen),
          maxblkid: num(h.maxblkid, "maxblkid"),
          dnSlots: h.dn_slots === 0 ? 1 : h.dn_slots,
          spill: null,
        });
        break;
      }
      case DRR.FREEOBJECTS: {
        const first = h.firstobj;
        const end = first + h.numobjs;
        for await (const id of v.objectIds()) {
          if (BigInt(id) >= first && BigInt(id) < end) v.freeObject(id);
        }
        break;
      }
      case DRR.FREE: {
        const id = num(h.object, "object");
        const from = num(h.offset, "offset");
        const to = h.length === 0xFFFF_FFFF_FFFF_FFFFn || h.offset + h.length > 1n << 62n
          ? null
          : num(h.offset + h.length, "end");
        v.freeRange(id, from, to);
        break;
      }
      case DRR.WRITE: {
        const id = num(h.object, "object");
        const o = await v.object(id);
        if (o === null) throw new RangeError(`WRITE to object ${id}, which does not exist`);
        const lsize = num(h.logical_size, "logical_size");
        const offset = num(h.offset, "offset");
        let data: Uint8Array | Unreadable;
        if (raw) {
          data = { unreadable: `block at ${offset} of object ${id} is raw (encrypted) data` };
        } else {
          try {
            data = h.compressiontype !== 0
              ? decompressBlock(h.compressiontype, r.payload, lsize)
              : r.payload.slice(0, lsize);
          } catch (e) {
            if (!(e instanceof TypeError)) throw e;
            data = {
              unreadable: `block at ${offset} of object ${id} is compressed with ` +
                `${compressionName(h.compressiontype)}, which cannot be decoded here: ${e.message}`,
            };
          }
        }
        if (data instanceof Uint8Array) {
          const [blkid, block] = placeAt(o.blksz, offset, data);
          v.putBlock(id, blkid, block);
        } else v.putBlock(id, Math.floor(offset / o.blksz), data);
        break;
      }
      case DRR.WRITE_EMBEDDED: {
        const id = num(h.object, "object");
        const o = await v.object(id);
        if (o === null) throw new RangeError(`WRITE_EMBEDDED to object ${id}, which is free`);
        const offset = num(h.offset, "offset");
        if (h.etype !== 0) {
          const why = `embedded block at ${offset} of object ${id} has etype ${h.etype}, not data`;
          v.putBlock(id, Math.floor(offset / o.blksz), { unreadable: why });
          break;
        }
        const data = decompressBlock(h.compression, r.payload.subarray(0, h.psize), h.lsize);
        const [blkid, block] = placeAt(o.blksz, offset, data);
        v.putBlock(id, blkid, block);
        break;
      }
      case DRR.WRITE_BYREF: {
        const id = num(h.object, "object");
        const o = await v.object(id);
        if (o === null) throw new RangeError(`WRITE_BYREF to object ${id}, which is free`);
        const src = h.refguid === v.toguid ? v : byGuid.get(h.refguid);
        if (src === undefined) {
          throw new RangeError(`WRITE_BYREF names snapshot ${h.refguid.toString(16)}, not seen`);
        }
        const data = await src.readBytes(
          num(h.refobject, "refobject"),
          num(h.refoffset, "refoffset"),
          num(h.length, "length"),
        );
        const [blkid, block] = placeAt(o.blksz, num(h.offset, "offset"), data);
        v.putBlock(id, blkid, block);
        break;
      }
      case DRR.SPILL: {
        const id = num(h.object, "object");
        const length = num(h.length, "length");
        const data = raw
          ? null
          : h.compressiontype !== 0
          ? decompressBlock(h.compressiontype, r.payload, length)
          : r.payload.slice(0, length);
        if (data !== null) v.putSpill(id, data);
        break;
      }
      case DRR.REDACT: {
        const id = num(h.object, "object");
        const o = await v.object(id);
        if (o === null) break;
        const from = num(h.offset, "offset");
        const end = from + num(h.length, "length");
        for (let b = Math.floor(from / o.blksz); b * o.blksz < end; b++) {
          v.putBlock(id, b, { unreadable: `block ${b} of object ${id} is redacted` });
        }
        break;
      }
      default:
        break; // OBJECT_RANGE: nothing to place
    }
  }
  return views;
}

/**
 * Receives a stream that must hold exactly one full snapshot.
 *
 * @example
 * ```ts
 * import { receiveFull } from "./memory_view.ts";
 * import { StreamWriter } from "../../core/stream/writer.ts";
 * const w = new StreamWriter({ littleEndian: false });
 * const view = await receiveFull([...w.begin({ toname: "p/v@a", toguid: 2n, objset_type: 3 }),
 *   ...w.end()]);
 * if (view.littleEndian || view.objsetType !== 3) throw new Error();
 * ```
 */
export async function receiveFull(source: ByteChunks): Promise<MemoryView> {
  const views = await receiveStream(source);
  if (views.length !== 1) throw new RangeError(`expected one snapshot, got ${views.length}`);
  return views[0]!;
}
