/**
 * Manifests: a file tree as text, one line a path, in the format of the fixtures'
 * `*.manifest.txt` (see `/work/shared/fixtures/README.md` and `scripts/make_streams.sh`):
 *
 * ```text
 * PATH d MODE UID GID                                   directory
 * PATH l MODE UID GID -> TARGET                         symbolic link
 * PATH f MODE UID GID SIZE NLINK MTIME SHA256           regular file
 * PATH p MODE UID GID                                   fifo
 * PATH s MODE UID GID                                   socket
 * PATH c MODE UID GID MAJOR MINOR                       character device
 * PATH b MODE UID GID MAJOR MINOR                       block device
 * ```
 *
 * Paths are `./a/b` (the root itself not listed), sorted by their bytes (C locale); MODE is the
 * octal permission bits as `stat -c %a` prints them (setuid/setgid/sticky included); MTIME is
 * whole seconds since the epoch.
 *
 * {@linkcode manifestOfFilesystem} makes one from a {@linkcode ZplFilesystem},
 * {@linkcode manifestOfDirectory} from a real directory, so tests compare them line by line.
 *
 * @module
 */

import { type RdevEncoding, splitRdev, type ZplFilesystem } from "../../core/zpl/fs.ts";

/** The kinds of manifest line. */
export type ManifestKind = "d" | "l" | "f" | "p" | "s" | "c" | "b";

/** One parsed manifest line. */
export interface ManifestLine {
  path: string;
  kind: ManifestKind;
  /** Octal permission bits as printed (`644`, `1777`). */
  mode: string;
  uid: number;
  gid: number;
  /** Files: size, link count, mtime seconds, sha256 (hex). */
  size?: number;
  nlink?: number;
  mtime?: number;
  sha256?: string;
  /** Symlinks: the target. */
  target?: string;
  /** Devices: major and minor. */
  major?: number;
  minor?: number;
}

const encoder = new TextEncoder();

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * Sorts manifest lines by their path's bytes, as `LC_ALL=C sort` sorts them.
 *
 * @example
 * ```ts
 * import { sortManifest } from "./manifest.ts";
 * const s = sortManifest(["./docs/deep d 755 0 0", "./docs-x d 755 0 0", "./docs d 755 0 0"]);
 * if (s.join("|") !== "./docs d 755 0 0|./docs-x d 755 0 0|./docs/deep d 755 0 0") {
 *   throw new Error(s.join("|"));
 * }
 * ```
 */
export function sortManifest(lines: string[]): string[] {
  const key = (l: string) => encoder.encode(parseManifestLine(l).path);
  return lines
    .map((l) => [key(l), l] as const)
    .sort(([a], [b]) => compareBytes(a, b))
    .map(([, l]) => l);
}

/**
 * Formats one manifest line.
 *
 * @example
 * ```ts
 * import { formatManifestLine } from "./manifest.ts";
 * const l = formatManifestLine({ path: "./a", kind: "l", mode: "777", uid: 0, gid: 0, target: "b c" });
 * if (l !== "./a l 777 0 0 -> b c") throw new Error(l);
 * ```
 */
export function formatManifestLine(m: ManifestLine): string {
  const head = `${m.path} ${m.kind} ${m.mode} ${m.uid} ${m.gid}`;
  switch (m.kind) {
    case "f":
      return `${head} ${m.size} ${m.nlink} ${m.mtime} ${m.sha256}`;
    case "l":
      return `${head} -> ${m.target}`;
    case "c":
    case "b":
      return `${head} ${m.major} ${m.minor}`;
    default:
      return head;
  }
}

/**
 * Parses one manifest line. Paths hold no spaces (the fixtures make none), symlink targets may.
 *
 * @throws {SyntaxError} for a line that does not fit the format
 * @example
 * ```ts
 * import { parseManifestLine } from "./manifest.ts";
 * const m = parseManifestLine(`./x f 640 1001 2002 7 2 981173106 ${"ab".repeat(32)}`);
 * if (m.kind !== "f" || m.size !== 7 || m.nlink !== 2 || m.mtime !== 981173106) throw new Error();
 * ```
 */
export function parseManifestLine(line: string): ManifestLine {
  const bad = (): never => {
    throw new SyntaxError(`Cannot parse the manifest line ${JSON.stringify(line)}`);
  };
  const arrow = line.indexOf(" -> ");
  const fields = (arrow >= 0 ? line.slice(0, arrow) : line).split(" ");
  const [path, kind, mode, uid, gid, ...rest] = fields;
  if (path === undefined || gid === undefined || !/^[dlfpscb]$/.test(kind!)) return bad();
  if (!/^[0-7]+$/.test(mode!) || !/^\d+$/.test(uid!) || !/^\d+$/.test(gid)) return bad();
  const m: ManifestLine = {
    path,
    kind: kind as ManifestKind,
    mode: mode!,
    uid: Number(uid),
    gid: Number(gid),
  };
  const ints = (n: number) => {
    if (!rest.slice(0, n).every((v) => /^-?\d+$/.test(v))) bad();
  };
  switch (m.kind) {
    case "f":
      if (rest.length !== 4 || !/^[0-9a-f]{64}$/.test(rest[3]!)) bad();
      ints(3);
      m.size = Number(rest[0]);
      m.nlink = Number(rest[1]);
      m.mtime = Number(rest[2]);
      m.sha256 = rest[3]!;
      break;
    case "l":
      if (arrow < 0 || rest.length !== 0) bad();
      m.target = line.slice(arrow + 4);
      break;
    case "c":
    case "b":
      if (rest.length !== 2) bad();
      ints(2);
      m.major = Number(rest[0]);
      m.minor = Number(rest[1]);
      break;
    default:
      if (rest.length !== 0) bad();
  }
  return m;
}

/**
 * Parses a manifest file's text: its lines, checked, in their order.
 *
 * @example
 * ```ts
 * import { parseManifest } from "./manifest.ts";
 * const lines = parseManifest("./a d 755 0 0\n./a/b p 644 0 0\n");
 * if (lines.length !== 2 || lines[1]!.kind !== "p") throw new Error();
 * ```
 */
export function parseManifest(text: string): ManifestLine[] {
  return text.split("\n").filter((l) => l !== "").map(parseManifestLine);
}

async function sha256Hex(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Options of {@linkcode manifestOfFilesystem}. */
export interface FilesystemManifestOptions {
  /** How device numbers were stored (zfs-fuse: `glibc`, the default). */
  rdevEncoding?: RdevEncoding;
  /** Path prefix for every line instead of `.` (e.g. `./subfs` for a child mounted there). */
  prefix?: string;
}

/**
 * The manifest of a ZPL filesystem, every line sorted as the fixtures sort them. Faults throw.
 *
 * @example
 * ```ts
 * import { manifestOfFilesystem } from "./manifest.ts";
 * import { receiveFull } from "./memory_view.ts";
 * import { ZplFilesystem } from "../../core/zpl/fs.ts";
 * const url = new URL("../fixtures/zfs-fuse/fs-s1.full.zstream", import.meta.url);
 * const fs = await ZplFilesystem.open(await receiveFull([await Deno.readFile(url)]));
 * const lines = await manifestOfFilesystem(fs);
 * if (!lines.includes("./docs/link-to-hello l 777 0 0 -> ../hello.txt")) throw new Error();
 * ```
 */
export async function manifestOfFilesystem(
  fs: ZplFilesystem,
  options: FilesystemManifestOptions = {},
): Promise<string[]> {
  const encoding = options.rdevEncoding ?? "glibc";
  const prefix = options.prefix ?? ".";
  const lines: string[] = [];
  for await (const w of fs.walk()) {
    if (w.depth === 0) continue;
    const i = w.inode;
    const base = {
      path: prefix + w.path.slice(1),
      mode: i.perm.toString(8),
      uid: i.uid,
      gid: i.gid,
    };
    switch (i.kind) {
      case "dir":
        lines.push(formatManifestLine({ ...base, kind: "d" }));
        break;
      case "symlink":
        lines.push(formatManifestLine({ ...base, kind: "l", target: await fs.readlink(i.object) }));
        break;
      case "file":
        lines.push(formatManifestLine({
          ...base,
          kind: "f",
          size: i.size,
          nlink: i.links,
          mtime: i.mtime.sec,
          sha256: await sha256Hex(await fs.readAll(i.object)),
        }));
        break;
      case "fifo":
        lines.push(formatManifestLine({ ...base, kind: "p" }));
        break;
      case "socket":
        lines.push(formatManifestLine({ ...base, kind: "s" }));
        break;
      case "chardev":
      case "blockdev": {
        const [major, minor] = splitRdev(i.rdev, encoding);
        lines.push(
          formatManifestLine({ ...base, kind: i.kind === "chardev" ? "c" : "b", major, minor }),
        );
        break;
      }
    }
  }
  return sortManifest(lines);
}

/**
 * The manifest of a real directory tree (read with `lstat`), e.g. one extracted from a tar.
 *
 * @param dir the directory
 * @returns its lines, sorted
 * @example
 * ```ts
 * import { manifestOfDirectory } from "./manifest.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.txt`, "hi");
 * await Deno.symlink("a.txt", `${dir}/ln`);
 * const lines = await manifestOfDirectory(dir);
 * await Deno.remove(dir, { recursive: true });
 * if (lines.length !== 2 || !lines[1]!.startsWith("./ln l 777")) throw new Error(lines.join());
 * ```
 */
export async function manifestOfDirectory(dir: string): Promise<string[]> {
  const lines: string[] = [];
  const visit = async (abs: string, rel: string) => {
    for await (const e of Deno.readDir(abs)) {
      const p = `${abs}/${e.name}`;
      const r = `${rel}/${e.name}`;
      const st = await Deno.lstat(p);
      const base = {
        path: r,
        mode: ((st.mode ?? 0) & 0o7777).toString(8),
        uid: st.uid ?? 0,
        gid: st.gid ?? 0,
      };
      if (st.isSymlink) {
        lines.push(formatManifestLine({ ...base, kind: "l", target: await Deno.readLink(p) }));
      } else if (st.isDirectory) {
        lines.push(formatManifestLine({ ...base, kind: "d" }));
        await visit(p, r);
      } else if (st.isFile) {
        lines.push(formatManifestLine({
          ...base,
          kind: "f",
          size: st.size,
          nlink: st.nlink ?? 1,
          mtime: Math.floor((st.mtime?.getTime() ?? 0) / 1000),
          sha256: await sha256Hex(await Deno.readFile(p)),
        }));
      } else if (st.isFifo) {
        lines.push(formatManifestLine({ ...base, kind: "p" }));
      } else if (st.isSocket) {
        lines.push(formatManifestLine({ ...base, kind: "s" }));
      } else if (st.isCharDevice || st.isBlockDevice) {
        const [major, minor] = splitRdev(BigInt(st.rdev ?? 0), "glibc");
        lines.push(formatManifestLine({
          ...base,
          kind: st.isCharDevice ? "c" : "b",
          major,
          minor,
        }));
      }
    }
  };
  await visit(dir, ".");
  return sortManifest(lines);
}
