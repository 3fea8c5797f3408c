/**
 * `zsend image send|recv`: a raw image or block device as a volume stream (what `zfs send` of a
 * zvol holding those bytes would send), and a volume stream straight onto an image or device,
 * without a store.
 *
 * @module
 */

import { parseArgs } from "@std/cli";
import { readRecords } from "../core/stream/reader.ts";
import { DEFAULT_VOLBLOCKSIZE } from "../core/send/volume.ts";
import { receiveImage, sendImage } from "../io/image.ts";
import { openStreamInput } from "../io/source.ts";
import { nameArg, notDirectoryArg, storeArg, streamInputArg } from "./args.ts";
import { engine, rejectUnknown, UsageError, warn } from "./common.ts";
import { refuseTerminalOutput } from "./redup.ts";
import { writeStreamOutput } from "../io/stream_output.ts";
import { progressFor, trackedInput } from "../io/progress.ts";

/** Usage of the verb. */
export const USAGE =
  `zsend image send [--from OLD_IMAGE | --from-store STORE VOL@SNAP] [--name POOL/VOL@SNAP] [--block-size N]
                  [--guid G] [--from-guid G] [-v] [--progress] IMAGE|DEVICE > STREAM
zsend image recv [-F] [-g FROMGUID] [--guid-file PATH | --no-guid-file] [-v] [--progress] IMAGE|DEVICE
                  [STREAM|-]

send: the records a zfs send of a volume holding these bytes would contain: object 1 (volume
  data, --block-size is its volblocksize, default ${DEFAULT_VOLBLOCKSIZE}) with a WRITE per
  block that is not all zeros and FREE records for the rest, object 2 (its size). The image's
  size must be a multiple of the block size. With --from, an incremental carrying only the
  blocks that differ from OLD_IMAGE.
  Guids: a snapshot's guid is derived from the content (SHA-256 of the block size, the size
  and every block's fletcher-4), so the same bytes always get the same guid and --from finds
  the older stream's guid by reading OLD_IMAGE. --guid and --from-guid set them
  instead (hex with 0x, or decimal). The default name is zsend/<file name>@<guid in hex>.
recv: WRITE becomes pwrite, FREE zeros where there is data (a file keeps its holes, its tail
  is cut with ftruncate). A full stream creates or replaces the image (-F to replace a
  non-empty file or a device). An incremental must come from the guid the image holds: the
  one in IMAGE.zsend-guid, written after each receive (none for a device unless --guid-file
  names one), or -g FROMGUID.
-v, --progress: progress on stderr (on a terminal always, one line redrawn; elsewhere a plain
  line every 5 s and one at the end); -v also says what was sent or received when done.`;

/**
 * Parses a guid: `0x` and hex, or decimal digits (as `zfs get guid` prints it), or hex with
 * letters.
 *
 * @example
 * ```ts
 * import { parseGuid } from "./image.ts";
 * if (parseGuid("0x1f") !== 31n || parseGuid("31") !== 31n || parseGuid("abc") !== 0xabcn) {
 *   throw new Error();
 * }
 * ```
 */
export function parseGuid(text: string): bigint {
  const t = text.trim().toLowerCase();
  let n: bigint;
  if (/^0x[0-9a-f]{1,16}$/.test(t)) n = BigInt(t);
  else if (/^[0-9]{1,20}$/.test(t)) n = BigInt(t);
  else if (/^[0-9a-f]{1,16}$/.test(t)) n = BigInt(`0x${t}`);
  else throw new UsageError(`'${text}' is not a guid (hex with 0x, or decimal)`);
  if (n === 0n || n >= 1n << 64n) throw new UsageError(`guid ${text} is out of range`);
  return n;
}

/**
 * Parses a block size: bytes, or with a K or M suffix.
 *
 * @example
 * ```ts
 * import { parseSize } from "./image.ts";
 * if (parseSize("16K") !== 16384 || parseSize("1m") !== 1048576 || parseSize("512") !== 512) {
 *   throw new Error();
 * }
 * ```
 */
export function parseSize(text: string): number {
  const m = /^([0-9]+)([kKmM]?)$/.exec(text.trim());
  if (m === null) throw new UsageError(`'${text}' is not a size (bytes, or with K or M)`);
  const unit = { "": 1, k: 1024, m: 1 << 20 }[m[2]!.toLowerCase() as "" | "k" | "m"];
  return Number(m[1]) * unit;
}

function flagString(v: unknown, name: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v === "") throw new UsageError(`--${name} needs a value`);
  return v;
}

async function send(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    string: ["from", "from-store", "name", "block-size", "guid", "from-guid"],
    boolean: ["v", "help", "progress"],
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const positional = flags._.map(String);
  const fromStore = flagString(flags["from-store"], "from-store");
  // --from-store STORE VOL@SNAP: the older image is a volume snapshot in a store.
  const storedSnapshot = fromStore === undefined ? undefined : positional.shift();
  const [path, ...extra] = positional;
  if (path === undefined || extra.length > 0) throw new UsageError("image send takes one IMAGE");
  notDirectoryArg(path, "IMAGE");
  if (fromStore !== undefined && flags.from !== undefined) {
    throw new UsageError("--from and --from-store exclude each other");
  }
  let from = flagString(flags.from, "from");
  if (from !== undefined) notDirectoryArg(from, "--from IMAGE");
  let fromGuid = flagString(flags["from-guid"], "from-guid");
  let scratch: string | null = null;
  if (fromStore !== undefined) {
    if (storedSnapshot === undefined || !storedSnapshot.includes("@")) {
      throw new UsageError("--from-store takes STORE VOL@SNAP");
    }
    // Written out sparse, the stored snapshot is an older image like any other. The store's
    // modules (SQLite, node:crypto) load only here: they would slow every start-up.
    storeArg(fromStore);
    nameArg(storedSnapshot, "snapshot", "VOL@SNAP", { lookup: true });
    const { openSnapshot } = await import("../io/store/open_snapshot.ts");
    const { extractVolume } = await import("../io/volume_extract.ts");
    const { store, view } = openSnapshot(fromStore, storedSnapshot);
    try {
      scratch = await Deno.makeTempFile({ prefix: "zsend-from-" });
      await extractVolume(store, view, scratch);
      from = scratch;
      fromGuid ??= `0x${view.snapshot.guid.toString(16)}`;
    } finally {
      store.close();
    }
  }
  try {
    return await sendFrom(path, from, fromGuid, flags);
  } finally {
    if (scratch !== null) {
      await Deno.remove(scratch).catch(() => {});
      const { guidSidecar } = await import("../io/volume_extract.ts");
      await Deno.remove(guidSidecar(scratch)).catch(() => {});
    }
  }
}

async function sendFrom(
  path: string,
  from: string | undefined,
  fromGuid: string | undefined,
  flags: {
    name?: unknown;
    "block-size"?: unknown;
    guid?: unknown;
    v?: boolean;
    progress?: boolean;
  },
): Promise<number> {
  if (fromGuid !== undefined && from === undefined) {
    throw new UsageError("--from-guid needs --from (the older image to compare with)");
  }
  const name = flagString(flags.name, "name");
  if (name !== undefined) nameArg(name, "snapshot", "--name POOL/VOL@SNAP");
  if (name !== undefined && !name.slice(0, name.indexOf("@")).includes("/")) {
    throw new UsageError(`--name ${name}: expected POOL/VOLUME@SNAPSHOT`);
  }
  const bs = flagString(flags["block-size"], "block-size");
  const guid = flagString(flags.guid, "guid");
  refuseTerminalOutput();
  const fletcher4 = engine();
  const plan = await sendImage(path, {
    blockSize: bs === undefined ? DEFAULT_VOLBLOCKSIZE : parseSize(bs),
    ...(name === undefined ? {} : { name }),
    ...(from === undefined ? {} : { from }),
    ...(guid === undefined ? {} : { guid: parseGuid(guid) }),
    ...(fromGuid === undefined ? {} : { fromGuid: parseGuid(fromGuid) }),
    fletcher4,
    payloadRefs: true,
  });
  // The image is read (and checksummed) before the stream starts; the stream holds its blocks'
  // bytes and a record each, which is the total to come, near enough.
  const s0 = plan.scan;
  const blocks = from === undefined ? s0.data.count() : s0.changed.count();
  const progress = progressFor({
    asked: flags.v === true || flags.progress === true,
    total: blocks * s0.blockSize,
    label: "zsend image send: ",
  });
  let bytes = 0;
  try {
    bytes = writeStreamOutput(plan.chunks, {
      ...(progress ? { onProgress: (b: number) => progress.update(b) } : {}),
    }).bytes;
  } finally {
    progress?.done(bytes);
  }
  if (flags.v) {
    const s = plan.scan;
    warn(
      `zsend image send: ${plan.toname} (guid ${plan.toguid.toString(16)}` +
        (from === undefined ? ", full" : `, from guid ${plan.fromguid.toString(16)}`) +
        `): ${s.volsize} bytes in ${s.count} blocks of ${s.blockSize}, ` +
        `${s.data.count()} with data, ${from === undefined ? s.data.count() : s.changed.count()}` +
        ` ${from === undefined ? "sent" : "changed"}; ${bytes} bytes of stream`,
    );
  }
  return 0;
}

async function recv(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    string: ["g", "guid-file"],
    boolean: ["F", "v", "no-guid-file", "help", "progress"],
    unknown: rejectUnknown,
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const [path, input, ...extra] = flags._.map(String);
  if (path === undefined || extra.length > 0) {
    throw new UsageError("image recv takes IMAGE|DEVICE [STREAM|-]");
  }
  notDirectoryArg(path, "IMAGE|DEVICE");
  const guidFile = flagString(flags["guid-file"], "guid-file");
  if (guidFile !== undefined && flags["no-guid-file"]) {
    throw new UsageError("--guid-file and --no-guid-file exclude each other");
  }
  const g = flagString(flags.g, "g");
  const stream = streamInputArg(input, "STREAM");
  const { chunks, progress } = trackedInput(openStreamInput(stream), stream, {
    asked: flags.v || flags.progress,
    label: "zsend image recv: ",
  });
  let got;
  try {
    got = await receiveImage(readRecords(chunks, { fletcher4: engine() }), path, {
      force: flags.F,
      ...(g === undefined ? {} : { baseGuid: parseGuid(g) }),
      ...(flags["no-guid-file"] ? { guidFile: null } : {}),
      ...(guidFile === undefined ? {} : { guidFile }),
    });
  } finally {
    progress?.done();
  }
  if (flags.v) {
    warn(
      `zsend image recv: ${got.toname} (guid ${got.toguid.toString(16)}` +
        (got.fromguid === 0n ? ", full" : `, from guid ${got.fromguid.toString(16)}`) +
        `) onto ${path}: ${got.finalSize} bytes, ${got.bytesWritten} written, ` +
        `${got.bytesZeroed} zeroed` + (got.guidFile ? `; guid kept in ${got.guidFile}` : ""),
    );
  }
  return 0;
}

/** An error of the system (a device that is busy, a disk that is full), said in one line. */
function isOsError(e: unknown): e is Error {
  return e instanceof Error &&
    (Object.values(Deno.errors).some((c) => e instanceof c) || /\(os error \d+\)/.test(e.message));
}

/** Runs the verb; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  try {
    if (sub === "send") return await send(rest);
    if (sub === "recv" || sub === "receive") return await recv(rest);
  } catch (e) {
    if (!isOsError(e) || e instanceof Deno.errors.BrokenPipe) throw e;
    warn(`zsend image ${sub}: ${e.message}`);
    return 1;
  }
  if (sub === "--help" || sub === "-h" || sub === "help") {
    console.log(USAGE);
    return 0;
  }
  throw new UsageError(sub === undefined ? "image needs send or recv" : `unknown: image ${sub}`);
}
