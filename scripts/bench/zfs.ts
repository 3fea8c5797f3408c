/**
 * zfs-fuse for the peers: whether it can run here, and a file-backed scratch pool with a
 * unique name that is destroyed at the end (also when the bench fails or is interrupted).
 *
 * @module
 */

import { capture } from "./machine.ts";
import { delay, log } from "./harness.ts";

const SBIN = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/** Finds an executable in PATH or the sbin directories (zfs-fuse installs there). */
export function which(name: string): string | null {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":").filter(Boolean), ...SBIN];
  for (const d of dirs) {
    try {
      const st = Deno.statSync(`${d}/${name}`);
      if (st.isFile && (st.mode ?? 0o111) & 0o111) return `${d}/${name}`;
    } catch { /* not here */ }
  }
  return null;
}

/** Whether this process runs as root. */
export function isRoot(): boolean {
  return Deno.uid() === 0;
}

/**
 * Why zfs-fuse cannot be used here, or null when it can (then its daemon answers: it is
 * started with `scripts/zfs_fuse.sh start`, which does nothing when it already runs).
 */
export async function zfsUnavailable(root: string): Promise<string | null> {
  if (!isRoot()) return "not root (zfs-fuse needs root)";
  try {
    if (!Deno.statSync("/dev/fuse").isCharDevice) return "/dev/fuse is not a character device";
  } catch {
    return "/dev/fuse is missing";
  }
  if (which("zfs") === null || which("zpool") === null) {
    return "zfs/zpool not found (apt-get install zfs-fuse)";
  }
  const out = await new Deno.Command("bash", {
    args: [`${root}/scripts/zfs_fuse.sh`, "start"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    return `zfs-fuse does not start: ${new TextDecoder().decode(out.stderr).trim()}`;
  }
  return null;
}

/** The zfs-fuse daemon's pid (its pidfile's, else the one zfs-fuse process), or null. */
export function daemonPid(): number | null {
  for (const path of ["/run/zfs-fuse.pid", "/var/run/zfs-fuse.pid"]) {
    try {
      const pid = Number(Deno.readTextFileSync(path).trim());
      if (pid > 0 && Deno.readTextFileSync(`/proc/${pid}/comm`).trim() === "zfs-fuse") return pid;
    } catch { /* next */ }
  }
  const found: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${e.name}/comm`).trim() === "zfs-fuse") found.push(+e.name);
    } catch { /* gone */ }
  }
  return found.length === 1 ? found[0]! : null;
}

/** User + system CPU seconds a process has used so far (clock ticks of 1/100 s), or null. */
export function cpuSecondsOf(pid: number): number | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // After the command: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}

/** Runs zfs/zpool; throws with its stderr when it fails. */
export async function zcmd(argv: string[], stdin?: string): Promise<string> {
  const [exe, ...args] = argv;
  const path = which(exe!) ?? exe!;
  const out = await new Deno.Command(stdin ? "sh" : path, {
    args: stdin ? ["-c", 'f=$1; shift; exec "$@" <"$f"', "sh", stdin, path, ...args] : args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(`\`${argv.join(" ")}\` failed (${out.code}): ${dec.decode(out.stderr).trim()}`);
  }
  return dec.decode(out.stdout).trim();
}

/** A zfs-fuse pool on a sparse file, for one bench run. */
export class ScratchPool {
  private constructor(readonly name: string, readonly file: string) {}

  /** Creates pool `zsbench<pid>` on a sparse file of `sizeBytes` in `dir` (no mounts). */
  static async create(dir: string, sizeBytes: number): Promise<ScratchPool> {
    const name = `zsbench${Deno.pid}`;
    const file = `${dir}/${name}.vdev`;
    const f = await Deno.open(file, { write: true, create: true, truncate: true });
    await f.truncate(sizeBytes);
    f.close();
    const pool = new ScratchPool(name, file);
    await zcmd(["zpool", "create", "-m", "none", name, file]);
    log(`created pool ${name} on ${file}`);
    return pool;
  }

  /** Whether a dataset (or snapshot) exists. */
  async exists(dataset: string): Promise<boolean> {
    return (await capture([which("zfs") ?? "zfs", "list", "-H", "-o", "name", dataset])) !== null;
  }

  /** Destroys a dataset and everything under it, when it exists. */
  async destroyDataset(dataset: string): Promise<void> {
    if (await this.exists(dataset)) await zcmd(["zfs", "destroy", "-r", dataset]);
  }

  /** Destroys the pool (a few tries: it may still be busy) and removes its file. */
  async destroy(): Promise<void> {
    for (let i = 0; i < 5; i++) {
      const listed = await capture([
        which("zpool") ?? "zpool",
        "list",
        "-H",
        "-o",
        "name",
        this.name,
      ]);
      if (listed === null) break;
      if (await zcmd(["zpool", "destroy", "-f", this.name]).then(() => true, () => false)) break;
      await delay(1000);
    }
    const still = await capture([which("zpool") ?? "zpool", "list", "-H", "-o", "name", this.name]);
    if (still !== null) log(`could not destroy pool ${this.name}: destroy it by hand`);
    else log(`destroyed pool ${this.name}`);
    await Deno.remove(this.file).catch(() => {});
  }
}

/** OpenZFS's userland `zstream`, unpacked into .tools by scripts/openzfs/userland.sh. */
export interface OpenZfsTool {
  /** The executable. */
  path: string;
  /** What it needs in its environment (its libraries). */
  env: Record<string, string>;
  /** The Debian version it came from ("2.3.2-2~bpo12+2"). */
  version: string;
}

/**
 * OpenZFS 2.3's `zstream`, unpacked on first use (needs root and the network once), run
 * directly with `LD_LIBRARY_PATH` (no shell in between); else why not.
 */
export async function openZfsZstream(root: string): Promise<OpenZfsTool | string> {
  const out = await new Deno.Command("bash", {
    args: [`${root}/scripts/openzfs/userland.sh`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dir = new TextDecoder().decode(out.stdout).trim();
  if (!out.success || dir === "") {
    const said = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1) ?? "";
    return `OpenZFS 2.3 userland not available (scripts/openzfs/userland.sh: ${said})`;
  }
  const lib = `${dir}/lib/x86_64-linux-gnu:${dir}/usr/lib/x86_64-linux-gnu`;
  const path = `${dir}/sbin/zstream`;
  const version = dir.replace(/^.*\/userland-/, "");
  log(`OpenZFS ${version} zstream: ${path}`);
  return { path, env: { LD_LIBRARY_PATH: lib }, version };
}
