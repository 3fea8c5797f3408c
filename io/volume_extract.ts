/**
 * Writes a volume snapshot to an image file or a raw block device. When the target is known
 * to hold an earlier snapshot of the same volume (its sidecar `TARGET.zsend-guid` says so, or
 * `from` is given), only the blocks that differ are written.
 *
 * @module
 */

import { Device } from "./native/device.ts";
import { readZap } from "../core/zpl/zap.ts";
import type { StoreSnapshotView } from "./store/snapshot_view.ts";
import type { SnapshotView } from "../core/receive/snapshot_view.ts";
import type { Store } from "./store/store.ts";
import { StoreSendSource } from "./store/send_source.ts";
import { alignedBytes } from "./aligned_buffer.ts";

/** The data object and properties ZAP of a volume (`zvol.c`). */
const ZVOL_OBJ = 1;
const ZVOL_ZAP_OBJ = 2;

/** What a volume extraction wrote. */
export interface VolumeReport {
  size: number;
  blocks: number;
  zeroed: number;
  incremental: boolean;
}

/** Where the guid of the snapshot an image holds is kept. */
export function guidSidecar(target: string): string {
  return `${target}.zsend-guid`;
}

/** The volume's size from its properties ZAP (`size`). */
export async function volumeSize(view: SnapshotView): Promise<number> {
  for (const e of (await readZap(view, ZVOL_ZAP_OBJ)).entries) {
    if (e.name === "size" && !(e.value instanceof Uint8Array) && e.value.length === 1) {
      return Number(e.value[0]!);
    }
  }
  throw new TypeError("the volume has no size property");
}

/**
 * Writes the volume in `view` to `target` (a file, made or resized to the volume's size, or
 * a block device at least that large). `reader` reads its blocks (by default `view` itself; a
 * raw snapshot's decrypting view).
 */
export async function extractVolume(
  store: Store,
  view: StoreSnapshotView,
  target: string,
  reader: SnapshotView = view,
): Promise<VolumeReport> {
  if (view.objsetType !== 3) {
    throw new TypeError(`the snapshot is not a volume (objset type ${view.objsetType})`);
  }
  if (view.snapshot.redactedRanges) {
    // Never a redacted range as zeros: a volume is one file, refused whole.
    const ranges = view.redactedRanges(ZVOL_OBJ);
    throw new TypeError(
      `the volume is redacted (zfs send --redact): ${ranges.length} of its blocks were left ` +
        `out of the stream, so it cannot be written as an image`,
    );
  }
  const size = await volumeSize(reader);
  const info = await reader.object(ZVOL_OBJ);
  if (info === null) throw new TypeError("the volume has no data object");
  const to = new StoreSendSource(store, view.snapshot);
  const toBlocks = new Map(to.blocks(ZVOL_OBJ).map((b) => [b.offset, b]));

  // Is the target an earlier snapshot of this volume? Then write only what changed.
  let base: Map<number, { block: number | null; meta: Uint8Array }> | null = null;
  try {
    const guid = BigInt("0x" + (await Deno.readTextFile(guidSidecar(target))).trim());
    const row = store.snapshotsByGuid(guid).find((s) => s.dataset === view.snapshot.dataset);
    if (row !== undefined) {
      base = new Map(new StoreSendSource(store, row).blocks(ZVOL_OBJ).map((b) => [b.offset, b]));
    }
  } catch { /* no sidecar: a full write */ }

  let isDevice = false;
  try {
    const st = await Deno.stat(target);
    isDevice = st.isBlockDevice === true || st.isCharDevice === true;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (!isDevice) {
    // A fresh file of the volume's size is all hole; an earlier image keeps its blocks.
    if (base === null) await Deno.writeFile(target, new Uint8Array(0));
    await Deno.truncate(target, size);
  }
  const dev = Device.open(target, { write: true });
  const report: VolumeReport = { size, blocks: 0, zeroed: 0, incremental: base !== null };
  try {
    if (isDevice && dev.size() < size) {
      throw new RangeError(`${target} has ${dev.size()} bytes; the volume needs ${size}`);
    }
    const bs = info.blksz;
    for (const [offset, b] of toBlocks) {
      const was = base?.get(offset);
      if (was !== undefined && was.block === b.block && equal(was.meta, b.meta)) continue;
      const data = await reader.readBlock(ZVOL_OBJ, Math.floor(offset / bs));
      if (data === null) continue;
      dev.pwrite(data.subarray(0, Math.min(data.length, size - offset)), offset);
      report.blocks++;
    }
    if (base !== null) {
      const zeros = alignedBytes(bs);
      for (const offset of base.keys()) {
        if (toBlocks.has(offset) || offset >= size) continue;
        dev.pwrite(zeros.subarray(0, Math.min(bs, size - offset)), offset);
        report.zeroed++;
      }
    }
    dev.fsync();
  } finally {
    dev.close();
  }
  await Deno.writeTextFile(guidSidecar(target), view.snapshot.guid.toString(16) + "\n");
  return report;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
